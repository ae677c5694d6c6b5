//! Real parts for the distributed tests: a Kafka-protocol broker (`tansu`) per test on its own
//! port, a fresh PostgreSQL/PostGIS database per test, and each role as its own `udaconnect`
//! process. `scripts/setup` installs the broker and PostGIS.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use udaconnect_testkit::listen::wait_for_listen_file;
use udaconnect_testkit::postgres::TestDb;

pub use udaconnect_testkit::kafka::Broker;
pub use udaconnect_testkit::postgres::admin_url;
pub use udaconnect_testkit::repo_root;

pub const BIN: &str = env!("CARGO_BIN_EXE_udaconnect");

pub fn artifacts() -> PathBuf {
    udaconnect_testkit::local::artifacts("distributed")
}

/// A fresh database ([`TestDb`]), dropped at the end.
pub struct Db {
    pub name: String,
    pub url: String,
    _db: TestDb,
}

impl Db {
    pub async fn create() -> Db {
        let db = TestDb::new().await;
        Db {
            name: db.name.clone(),
            url: db.url.clone(),
            _db: db,
        }
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        udaconnect_testkit::postgres::connect(&self.url).await
    }

    /// Stored location ids, ascending.
    pub async fn location_ids(&self) -> Vec<i64> {
        self.client()
            .await
            .query("SELECT id FROM location ORDER BY id", &[])
            .await
            .map(|rows| rows.iter().map(|r| r.get::<_, i64>(0)).collect())
            .unwrap_or_default()
    }
}

/// One role as its own process, with JSON logs in a file. It listens on a port of its
/// choosing and reports it in its listen file; a restart takes the same ports again.
pub struct RoleProc {
    child: Option<Child>,
    pub role: String,
    pub port: u16,
    /// Its gRPC port, when it serves gRPC.
    pub grpc_port: Option<u16>,
    pub args: Vec<String>,
    env: Vec<(String, String)>,
    pub log: PathBuf,
    restarts: u32,
}

impl RoleProc {
    /// Starts `udaconnect <role> --listen 127.0.0.1:0 <args>` and waits for its addresses.
    pub async fn spawn(role: &str, args: &[String]) -> RoleProc {
        RoleProc::spawn_with_env(role, args, &[]).await
    }

    /// As [`RoleProc::spawn`], with these environment variables set.
    pub async fn spawn_with_env(role: &str, args: &[String], env: &[(&str, &str)]) -> RoleProc {
        let mut p = RoleProc {
            child: None,
            role: role.to_string(),
            port: 0,
            grpc_port: None,
            args: args.to_vec(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log: PathBuf::new(),
            restarts: 0,
        };
        p.start().await;
        p
    }

    async fn start(&mut self) {
        let name = format!(
            "{}-{}",
            udaconnect_testkit::unique(&self.role),
            self.restarts
        );
        self.log = artifacts().join(format!("{name}.log"));
        let listen_file = artifacts().join(format!("{name}.listen.json"));
        self.restarts += 1;
        // A restart listens where the first start did: clients keep their addresses.
        let mut args = self.args.clone();
        if let (Some(port), Some(i)) = (
            self.grpc_port,
            args.iter().position(|a| a == "--grpc-listen"),
        ) {
            args[i + 1] = format!("127.0.0.1:{port}");
        }
        let log = fs::File::create(&self.log).unwrap();
        let child = Command::new(BIN)
            .args(["--log-format", "json", "--log-level"])
            .arg(std::env::var("UDACONNECT_TEST_LOG_LEVEL").unwrap_or_else(|_| "info".into()))
            .arg(&self.role)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--listen-file")
            .arg(&listen_file)
            .args(&args)
            .env_remove("UDACONNECT_STORE")
            .env_remove("UDACONNECT_LOG")
            .env_remove("UDACONNECT_PERSON_API")
            .env_remove("DB_HOST")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("udaconnect starts");
        self.child = Some(child);
        let listening = wait_for_listen_file(&listen_file, &self.log).await;
        assert_eq!(listening.role, self.role);
        self.port = listening.http.port();
        self.grpc_port = listening.grpc.map(|a| a.port());
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn wait_ready(&self, timeout: Duration) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(r) = client.get(format!("{}/ready", self.base())).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} never ready; log:\n{}",
                self.role,
                fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn kill_9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    pub async fn restart(&mut self) {
        self.kill_9();
        self.start().await;
    }

    /// The log lines, parsed.
    pub fn log_lines(&self) -> Vec<Value> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for RoleProc {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// Every role of a distributed deployment, each its own process, on one broker and database.
pub struct Stack {
    pub person_api: RoleProc,
    pub location_api: RoleProc,
    pub grpc_port: u16,
    pub consumer: RoleProc,
    pub connection_api: RoleProc,
    pub web: RoleProc,
}

impl Stack {
    pub async fn start(db: &Db, broker: &Broker) -> Stack {
        let store = vec!["--store".to_string(), db.url.clone()];
        let person_api = RoleProc::spawn("person-api", &store).await;
        // person-api runs the migrations first; the others would wait on its advisory lock.
        person_api.wait_ready(Duration::from_secs(60)).await;
        // Every role but person-api asks person-api about persons.
        let with = |log: String, extra: &[&str]| -> Vec<String> {
            let mut args = vec![
                "--store".to_string(),
                db.url.clone(),
                "--log".to_string(),
                log,
                "--person-api".to_string(),
                person_api.base(),
            ];
            args.extend(extra.iter().map(|a| a.to_string()));
            args
        };
        let location_api = RoleProc::spawn(
            "location-api",
            &with(broker.producer_url(), &["--grpc-listen", "127.0.0.1:0"]),
        )
        .await;
        let consumer = RoleProc::spawn(
            "location-consumer",
            &with(broker.consumer_url("location-consumer-0"), &[]),
        )
        .await;
        // With the log, connection-api also serves the venue live from the topic.
        let connection_api = RoleProc::spawn("connection-api", &with(broker.url(), &[])).await;
        let web = RoleProc::spawn(
            "web",
            &[
                "--person-api".to_string(),
                person_api.base(),
                "--location-api".to_string(),
                location_api.base(),
                "--connection-api".to_string(),
                connection_api.base(),
            ],
        )
        .await;
        for p in [&location_api, &consumer, &connection_api, &web] {
            p.wait_ready(Duration::from_secs(60)).await;
        }
        Stack {
            grpc_port: location_api.grpc_port.expect("location-api serves gRPC"),
            person_api,
            location_api,
            consumer,
            connection_api,
            web,
        }
    }
}

/// Polls `f` until it returns `Some`, or fails after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

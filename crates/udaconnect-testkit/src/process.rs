//! `udaconnect` processes for tests: `serve` or one role, each its own process with JSON logs
//! in a file, listening on port 0 and reporting where in its `--listen-file`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::listen::wait_for_listen_file;
use crate::local::{artifacts, unique};

/// `bin admin <args>`, with none of the environment's store or mail settings: the test alone
/// says where the accounts are.
pub fn run_admin(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .arg("admin")
        .args(args)
        .env_remove("UDACONNECT_STORE")
        .env_remove("UDACONNECT_DATA_DIR")
        .env_remove("UDACONNECT_SMTP")
        .env_remove("DB_HOST")
        .output()
        .expect("the binary runs")
}

/// A finished process's status and both outputs, for an assertion's message.
pub fn output_text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The last line `admin create-token` printed, which holds the token, once it succeeded.
pub fn printed_token(out: &Output) -> String {
    assert!(out.status.success(), "{}", output_text(out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout.lines().last().unwrap_or_default().to_string()
}

/// Runs `bin <args> --data-dir <data>` with `stdin` as its input until it exits, failing the
/// test if it is still running after `patience`.
pub fn run_to_end(
    bin: &Path,
    args: &[&str],
    data: &Path,
    stdin: &str,
    patience: Duration,
) -> Output {
    let mut command = Command::new(bin);
    command.args(args).arg("--data-dir").arg(data);
    output_within(&mut command, Some(stdin), patience)
}

/// Runs `command` with `stdin` as its input (none if `None`) until it exits, and returns its
/// status and outputs; fails the test if it is still running after `patience`.
pub fn output_within(command: &mut Command, stdin: Option<&str>, patience: Duration) -> Output {
    let input = if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = command
        .stdin(input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(text.as_bytes())
            .expect("stdin written");
    }
    let deadline = Instant::now() + patience;
    while child.try_wait().expect("the child's status").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{command:?} did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("the child's output")
}

/// Deletes the embedded location store (its SQLite file, WAL and shared memory) from the data
/// directory `data`, as a lost or deleted store would leave it.
pub fn remove_location_store(data: &Path) {
    for file in [
        "locations.sqlite3",
        "locations.sqlite3-wal",
        "locations.sqlite3-shm",
    ] {
        let _ = fs::remove_file(data.join(file));
    }
}

/// Asserts that `bin <command...> --help` names each of `names`, and returns the help.
pub fn assert_help_names(bin: &Path, command: &[&str], names: &[&str]) -> String {
    let out = Command::new(bin)
        .args(command)
        .arg("--help")
        .output()
        .expect("the binary runs");
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    for name in names {
        assert!(
            help.contains(name),
            "{command:?} --help lacks {name}:\n{help}"
        );
    }
    help
}

/// The group member name of a [`Stack`]'s location-consumer: a process that takes its place
/// under this name takes its partitions at once.
pub const STACK_CONSUMER: &str = "location-consumer-0";

/// One `udaconnect <role>` process. A restart takes the same ports again, so its clients keep
/// their addresses.
pub struct RoleProc {
    child: Option<Child>,
    bin: PathBuf,
    pub role: String,
    pub port: u16,
    /// Its gRPC port, when it serves gRPC.
    pub grpc_port: Option<u16>,
    pub args: Vec<String>,
    env: Vec<(String, String)>,
    /// Its JSON log lines (stderr), under `target/test-artifacts/processes`.
    pub log: PathBuf,
    restarts: u32,
}

impl RoleProc {
    /// Starts `bin <role> --listen 127.0.0.1:0 <args>` and waits for its addresses.
    pub async fn spawn(bin: &Path, role: &str, args: &[String]) -> RoleProc {
        RoleProc::spawn_with_env(bin, role, args, &[]).await
    }

    /// `bin serve --data-dir <data> <args>`, with gRPC off unless `args` says where, once it
    /// is ready (failing the test if it is not within `patience`).
    pub async fn serve_ready(
        bin: &Path,
        data: &Path,
        args: &[&str],
        patience: Duration,
    ) -> RoleProc {
        let mut all = vec!["--data-dir".to_string(), data.display().to_string()];
        if !args.contains(&"--grpc-listen") {
            all.extend(["--grpc-listen".to_string(), "off".to_string()]);
        }
        all.extend(args.iter().map(|a| a.to_string()));
        let server = RoleProc::spawn(bin, "serve", &all).await;
        server.wait_ready(patience).await;
        server
    }

    /// As [`RoleProc::spawn`], with these environment variables set.
    pub async fn spawn_with_env(
        bin: &Path,
        role: &str,
        args: &[String],
        env: &[(&str, &str)],
    ) -> RoleProc {
        let mut p = RoleProc {
            child: None,
            bin: bin.to_path_buf(),
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
        let name = format!("{}-{}", unique(&self.role), self.restarts);
        let dir = artifacts("processes");
        self.log = dir.join(format!("{name}.log"));
        let listen_file = dir.join(format!("{name}.listen.json"));
        self.restarts += 1;
        let mut args = self.args.clone();
        if let (Some(port), Some(i)) = (
            self.grpc_port,
            args.iter().position(|a| a == "--grpc-listen"),
        ) {
            args[i + 1] = format!("127.0.0.1:{port}");
        }
        let log = fs::File::create(&self.log).expect("create the process's log file");
        let child = Command::new(&self.bin)
            .args(["--log-format", "json", "--log-level"])
            .arg(std::env::var("UDACONNECT_TEST_LOG_LEVEL").unwrap_or_else(|_| "info".into()))
            .arg(&self.role)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--listen-file")
            .arg(&listen_file)
            .args(&args)
            // The test's settings only, never the environment's.
            .env_remove("UDACONNECT_STORE")
            .env_remove("UDACONNECT_LOG")
            .env_remove("UDACONNECT_PERSON_API")
            .env_remove("DB_HOST")
            .env_remove("UDACONNECT_GATEWAY_KEY")
            .env_remove("UDACONNECT_GATEWAY_KEY_FILE")
            // The original open contract, which most tests exercise; a test of access control
            // says `--auth on` (or sets UDACONNECT_AUTH in its env).
            .env("UDACONNECT_AUTH", "off")
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

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>` of its gRPC services; panics when it serves none.
    pub fn grpc(&self) -> String {
        let port = self.grpc_port.expect("the process serves gRPC");
        format!("http://127.0.0.1:{port}")
    }

    /// Waits until its `/ready` answers 200; panics with its log after `timeout`.
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

    /// Kills it with SIGKILL.
    pub fn kill_9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill the process");
            c.wait().expect("reap the process");
        }
    }

    /// SIGKILL, then a new process with the same arguments on the same ports.
    pub async fn restart(&mut self) {
        self.kill_9();
        self.start().await;
    }

    /// Stops it with SIGTERM and waits for it to exit; SIGKILL when it is still running after
    /// `grace`. True when it exited by itself.
    pub async fn terminate(&mut self, grace: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Stops it as `how` says, then starts a new process with the same arguments on the same
    /// ports (not waiting until it is ready). False when a SIGTERM took longer than `grace`.
    pub async fn restart_after(&mut self, how: Stop, grace: Duration) -> bool {
        let clean = match how {
            Stop::Kill => {
                self.kill_9();
                true
            }
            Stop::Term => self.terminate(grace).await,
        };
        self.start().await;
        clean
    }

    /// Its log lines, parsed.
    pub fn log_lines(&self) -> Vec<Value> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// How a process is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stop {
    /// SIGKILL: no chance to finish anything.
    Kill,
    /// SIGTERM: the process finishes what it can and exits.
    Term,
}

impl Drop for RoleProc {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// Every role of a distributed deployment, each its own process, on one Kafka-protocol broker
/// and one PostgreSQL/PostGIS database.
pub struct Stack {
    pub person_api: RoleProc,
    pub location_api: RoleProc,
    pub grpc_port: u16,
    pub consumer: RoleProc,
    pub connection_api: RoleProc,
    pub mailer: RoleProc,
    /// The SMTP server the mailer sends to.
    pub smtp: crate::smtp::SmtpServer,
    pub web: RoleProc,
    /// OwnTracks in MQTT mode, on the local Mosquitto.
    pub tracker_mqtt: RoleProc,
    /// tracker-mqtt's session at the broker, cleared once it has stopped (fields drop in
    /// order).
    pub mqtt_session: crate::mqtt::Session,
    /// The key every role of the stack shares for the gateway's assertions
    /// (`UDACONNECT_GATEWAY_KEY`): web signs with it, the roles behind believe only it.
    pub gateway_key: String,
}

impl Stack {
    /// Starts every role on the database at `store` and the broker at `broker` (a `kafka://`
    /// log URL), and waits until each is ready.
    pub async fn start(bin: &Path, store: &str, broker: &crate::kafka::Broker) -> Stack {
        Stack::start_seeded(bin, store, broker, || async {}).await
    }

    /// As [`Stack::start`], running `seed` once person-api has migrated the database and before
    /// any other role starts (so no role has leased ids or read the topic yet).
    pub async fn start_seeded<F, Fut>(
        bin: &Path,
        store: &str,
        broker: &crate::kafka::Broker,
        seed: F,
    ) -> Stack
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        Stack::start_seeded_with_env(bin, store, broker, &[], seed).await
    }

    /// As [`Stack::start_seeded`], every role with these environment variables set (say
    /// `UDACONNECT_AUTH=on` and the roles' `UDACONNECT_SERVICE_TOKEN`).
    pub async fn start_seeded_with_env<F, Fut>(
        bin: &Path,
        store: &str,
        broker: &crate::kafka::Broker,
        env: &[(&str, &str)],
        seed: F,
    ) -> Stack
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let ready = Duration::from_secs(60);
        // A key of the stack's own, as a deployment's Secret holds one: requests reach the
        // roles through web, as they do in production.
        let gateway_key = udaconnect_core::auth::TokenSecret::generate()
            .expect("random bytes")
            .expose()
            .to_string();
        let env: Vec<(&str, &str)> = [("UDACONNECT_GATEWAY_KEY", gateway_key.as_str())]
            .into_iter()
            .chain(env.iter().copied())
            .collect();
        let env = env.as_slice();
        let spawn = |role: &'static str, args: Vec<String>| async move {
            RoleProc::spawn_with_env(bin, role, &args, env).await
        };
        // person-api appends sign-in and welcome mails to the log.
        let person_api = spawn(
            "person-api",
            vec![
                "--store".into(),
                store.into(),
                "--log".into(),
                broker.producer_url(),
            ],
        )
        .await;
        // person-api runs the migrations first; the others would wait on its advisory lock.
        person_api.wait_ready(ready).await;
        seed().await;
        // Every role but person-api asks person-api about persons.
        let with = |log: String, extra: &[&str]| -> Vec<String> {
            let mut args = vec![
                "--store".to_string(),
                store.to_string(),
                "--log".to_string(),
                log,
                "--person-api".to_string(),
                person_api.base(),
            ];
            args.extend(extra.iter().map(|a| a.to_string()));
            args
        };
        let location_api = spawn(
            "location-api",
            with(broker.producer_url(), &["--grpc-listen", "127.0.0.1:0"]),
        )
        .await;
        let consumer = spawn(
            "location-consumer",
            with(broker.consumer_url(STACK_CONSUMER), &[]),
        )
        .await;
        // With the log, connection-api also serves the venue live from the topic.
        let connection_api = spawn("connection-api", with(broker.url(), &[])).await;
        let smtp = crate::smtp::SmtpServer::start().await;
        let mailer = spawn(
            "mailer",
            vec![
                "--store".to_string(),
                store.to_string(),
                "--log".to_string(),
                broker.consumer_url("mailer-0"),
                "--smtp".to_string(),
                smtp.url(),
            ],
        )
        .await;
        let web = spawn(
            "web",
            vec![
                // It looks each request's token up in the store and vouches for it to the roles behind.
                "--store".to_string(),
                store.to_string(),
                "--person-api".to_string(),
                person_api.base(),
                "--location-api".to_string(),
                location_api.base(),
                "--connection-api".to_string(),
                connection_api.base(),
            ],
        )
        .await;
        let mqtt_session = crate::mqtt::Session::new();
        let tracker_mqtt = spawn(
            "tracker-mqtt",
            with(
                broker.producer_url(),
                &[
                    "--mqtt",
                    crate::mqtt::BROKER,
                    "--mqtt-client-id",
                    &mqtt_session.client_id,
                ],
            ),
        )
        .await;
        for p in [
            &location_api,
            &consumer,
            &connection_api,
            &mailer,
            &web,
            &tracker_mqtt,
        ] {
            p.wait_ready(ready).await;
        }
        Stack {
            grpc_port: location_api.grpc_port.expect("location-api serves gRPC"),
            person_api,
            location_api,
            consumer,
            connection_api,
            mailer,
            smtp,
            web,
            tracker_mqtt,
            mqtt_session,
            gateway_key,
        }
    }

    /// Every role's process.
    pub fn roles(&self) -> [&RoleProc; 7] {
        [
            &self.person_api,
            &self.location_api,
            &self.consumer,
            &self.connection_api,
            &self.mailer,
            &self.web,
            &self.tracker_mqtt,
        ]
    }
}

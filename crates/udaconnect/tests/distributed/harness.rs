//! What the distributed tests share: a broker and a fresh PostgreSQL/PostGIS database per
//! test, each role as its own `udaconnect` process (testkit's [`RoleProc`] and [`Stack`]), HTTP
//! helpers, and the original producers' Kafka client. `scripts/setup` installs the broker and
//! PostGIS.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use udaconnect_core::ports::{Log, StartFrom};
use udaconnect_log::{KafkaLog, KafkaOptions};
use udaconnect_testkit::postgres::TestDb;
use udaconnect_testkit::process::{RoleProc, Stack};

pub use udaconnect_testkit::eventually;
pub use udaconnect_testkit::kafka::Broker;
pub use udaconnect_testkit::postgres::admin_url;
pub use udaconnect_testkit::repo_root;

pub const BIN: &str = env!("CARGO_BIN_EXE_udaconnect");

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

/// `udaconnect <role> <args>` as its own process, ready.
pub async fn spawn_ready(role: &str, args: &[&str]) -> RoleProc {
    spawn_ready_with_env(role, args, &[]).await
}

/// As [`spawn_ready`], with these environment variables set.
pub async fn spawn_ready_with_env(role: &str, args: &[&str], env: &[(&str, &str)]) -> RoleProc {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let process = RoleProc::spawn_with_env(Path::new(BIN), role, &args, env).await;
    process.wait_ready(Duration::from_secs(60)).await;
    process
}

/// A broker and a database of the test's own, and every role on them, ready.
pub async fn started() -> (Broker, Db, Stack) {
    let broker = Broker::start().await;
    let db = Db::create().await;
    let stack = Stack::start(Path::new(BIN), &db.url, &broker).await;
    (broker, db, stack)
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub async fn create_person(base: &str, first: &str) -> i64 {
    udaconnect_testkit::http::create_person(&http(), base, first).await
}

pub async fn post_ping(base: &str, body: &Value) -> reqwest::Response {
    http()
        .post(format!("{base}/api/locations"))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Posts a ping, asserts 202, and returns its id.
pub async fn post_acked(base: &str, body: &Value) -> i64 {
    let r = post_ping(base, body).await;
    assert_eq!(r.status(), 202);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// Posts a JSON batch of pings, asserts 202, and returns the answer.
pub async fn post_batch(base: &str, batch: &[Value]) -> Value {
    let r = http()
        .post(format!("{base}/api/locations/batch"))
        .json(batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    r.json().await.unwrap()
}

/// GET `path` at `base` as JSON; panics unless it answers.
pub async fn get_json(base: &str, path: &str) -> Value {
    http()
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The body of `process`'s `/ready` while it answers 503.
pub async fn not_ready(process: &RoleProc) -> Option<Value> {
    let r = http()
        .get(format!("{}/ready", process.base()))
        .send()
        .await
        .ok()?;
    (r.status() == 503).then_some(())?;
    r.json().await.ok()
}

/// Location `id` when it is stored.
pub async fn stored(base: &str, id: i64) -> Option<Value> {
    let r = http()
        .get(format!("{base}/api/locations/{id}"))
        .send()
        .await
        .ok()?;
    (r.status() == 200).then_some(())?;
    r.json().await.ok()
}

/// Produces records with an external Kafka client, exactly as the original producers did.
pub fn produce_original(brokers: &str, lines: &[&str], raw: bool) {
    let script = repo_root().join("scripts/kafka-produce-original");
    let mut cmd = Command::new(script);
    cmd.args(["--brokers", brokers, "--topic", "location"]);
    if raw {
        cmd.arg("--raw");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the original producer runs");
    {
        let stdin = child.stdin.as_mut().unwrap();
        for l in lines {
            writeln!(stdin, "{l}").unwrap();
        }
    }
    assert!(
        child.wait().unwrap().success(),
        "the original producer failed"
    );
}

/// A log client of `broker` that creates no topic of its own, to look at what the stack made.
pub fn onlooker(broker: &Broker) -> KafkaLog {
    let options = KafkaOptions {
        create_topics: Vec::new(),
        ..KafkaOptions::default()
    };
    KafkaLog::connect(&broker.brokers(), options).unwrap()
}

/// The dead-letter reasons on `brokers`' DLQ topic, read from its start for `wait` or until
/// `want` have come.
pub async fn dead_letter_reasons(brokers: &str, want: usize, wait: Duration) -> Vec<String> {
    let dlq = KafkaLog::connect(brokers, KafkaOptions::default()).unwrap();
    let mut reader = dlq
        .consumer("location.dlq", "test-dlq-reader", StartFrom::Earliest)
        .await
        .unwrap();
    let mut reasons = Vec::new();
    let deadline = Instant::now() + wait;
    while reasons.len() < want && Instant::now() < deadline {
        for c in reader.poll(100, Duration::from_millis(500)).await.unwrap() {
            reasons.push(c.record.header_str("dlq_reason").unwrap_or("").to_string());
        }
    }
    reasons.sort();
    reasons
}

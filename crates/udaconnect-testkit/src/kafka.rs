//! Kafka-protocol brokers for tests.
//!
//! Most tests share one broker ([`shared_broker`]): `scripts/kafka start` runs `tansu` on
//! 127.0.0.1:9092, and every test uses topics and groups of its own ([`crate::unique`]), so
//! tests run in parallel on it. A test that stops or restarts its broker starts a private one
//! ([`Broker`]) on a port of its own.

use std::fs::{self, OpenOptions};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cable::Cable;
use crate::local::{artifacts, free_port};

/// How long a starting broker may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The broker tests share: `UDACONNECT_TEST_KAFKA`, or the one `scripts/kafka start` runs.
pub fn shared_broker() -> String {
    std::env::var("UDACONNECT_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// librdkafka's own debug contexts for every client a test makes, when
/// `UDACONNECT_TEST_KAFKA_DEBUG` names them (`broker,cgrp,eos`), as client properties.
pub fn client_debug() -> Vec<(String, String)> {
    std::env::var("UDACONNECT_TEST_KAFKA_DEBUG")
        .map(|contexts| vec![("debug".to_string(), contexts)])
        .unwrap_or_default()
}

/// The `tansu` binary: `UDACONNECT_TANSU`, else the one `scripts/kafka install` put in
/// cargo's bin directory, else the first on `PATH`.
pub fn tansu() -> PathBuf {
    if let Some(path) = std::env::var_os("UDACONNECT_TANSU") {
        return path.into();
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    crate::local::find_program("tansu", cargo_home.map(|home| home.join("bin")), &[])
        .expect("the Kafka-protocol broker `tansu` is not installed: run scripts/kafka install")
}

/// A private broker speaking the Kafka protocol on its own loopback port, keeping everything
/// in memory (a restart starts empty). Killed when dropped; its output goes to
/// `target/test-artifacts/brokers/tansu-<port>.log`.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    /// The port clients are told to use: the broker's own, or its cable's.
    advertised: u16,
    /// Between the broker and its clients, when started with [`Broker::start_behind_cable`].
    cable: Option<Cable>,
    log: PathBuf,
}

impl Broker {
    /// A broker on a free port. The port was free when picked, but another process may take it
    /// before the broker binds it: then the broker exits, and another port is tried.
    pub async fn start() -> Broker {
        let mut failures = Vec::new();
        for _ in 0..3 {
            let mut broker = Broker::new(free_port());
            match broker.spawn().await {
                Ok(()) => return broker,
                Err(e) => failures.push(e),
            }
        }
        panic!("tansu did not start: {failures:#?}");
    }

    /// A broker on `port`: for a client pointed there before any broker listened.
    pub async fn start_at(port: u16) -> Broker {
        let mut broker = Broker::new(port);
        if let Err(e) = broker.spawn().await {
            panic!("tansu did not start: {e}");
        }
        broker
    }

    /// A broker its clients reach through a [`Cable`] only (it advertises the cable's port),
    /// so a test can take it away and bring it back with its topics, groups and committed
    /// offsets intact, as a broker with durable storage comes back from a restart; a restart
    /// of this in-memory broker itself would lose them.
    pub async fn start_behind_cable() -> Broker {
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let cable = Cable::new(port).await;
            let mut broker = Broker::new(port);
            broker.advertised = cable.port;
            broker.cable = Some(cable);
            match broker.spawn().await {
                Ok(()) => return broker,
                Err(e) => failures.push(e),
            }
        }
        panic!("tansu did not start: {failures:#?}");
    }

    fn new(port: u16) -> Broker {
        let log = artifacts("brokers").join(format!("tansu-{port}.log"));
        // An earlier run's broker on the same port: its output is not this one's.
        let _ = fs::remove_file(&log);
        Broker {
            child: None,
            port,
            advertised: port,
            cable: None,
            log,
        }
    }

    /// The cable between the broker and its clients, when it has one.
    pub fn cable(&self) -> Option<&Cable> {
        self.cable.as_ref()
    }

    /// Starts the process and waits until it listens; an error carries its output.
    async fn spawn(&mut self) -> Result<(), String> {
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://127.0.0.1:{}", self.advertised);
        // Appended to, so a restarted broker's output follows its predecessor's.
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("open {:?}: {e}", self.log))?;
        let stderr = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(tansu())
            .args(["broker", "--cluster-id", "udaconnect-test"])
            .args(["--listener-url", &listener])
            .args(["--advertised-listener-url", &advertised])
            .args(["--storage-engine", "memory://tansu/"])
            .env(
                "RUST_LOG",
                std::env::var("UDACONNECT_TEST_BROKER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("run {:?}: {e}", tansu()))?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            // Exited: it could not bind (and whatever answers on the port is not this broker).
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!(
                    "tansu on port {} exited ({status}):\n{}",
                    self.port,
                    fs::read_to_string(&self.log).unwrap_or_default()
                ));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "tansu does not listen on {} after {START_TIMEOUT:?}:\n{}",
                    self.port,
                    fs::read_to_string(&self.log).unwrap_or_default()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bootstrap address, as librdkafka takes it.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.advertised)
    }

    /// The log URL a UdaConnect process takes (`--log`).
    pub fn url(&self) -> String {
        format!("kafka://127.0.0.1:{}", self.advertised)
    }

    /// The URL producers in tests use. tansu 0.6 serves a fetch only from the start of a stored
    /// batch: a consumer resuming at an offset inside a multi-record batch would skip the rest
    /// of it (Apache Kafka does not). One record per batch keeps that from hiding, or faking, a
    /// loss in UdaConnect's code.
    pub fn producer_url(&self) -> String {
        format!("{}?batch.num.messages=1", self.url())
    }

    /// The URL a consumer uses: static group membership, so a consumer restarted after SIGKILL
    /// takes its predecessor's partitions at once instead of after a session timeout. With
    /// librdkafka's debug contexts when `UDACONNECT_TEST_KAFKA_DEBUG` names them ([`client_debug`]).
    pub fn consumer_url(&self, instance: &str) -> String {
        let mut url = format!("{}?group.instance.id={instance}", self.url());
        for (key, value) in client_debug() {
            url.push_str(&format!("&{key}={value}"));
        }
        url
    }

    /// Kills the broker (SIGKILL): its clients see it vanish.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the broker and starts a new, empty one on the same port.
    pub async fn restart(&mut self) {
        self.kill();
        if let Err(e) = self.spawn().await {
            panic!("tansu did not start again: {e}");
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

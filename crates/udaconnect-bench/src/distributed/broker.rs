//! The broker the benchmark produces to: a `tansu` of its own, in memory, so every run starts
//! empty, or one it was given.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use udaconnect::programs;

/// The broker the benchmark uses: its own, or one it was given.
pub enum BrokerHandle {
    Own(Broker),
    External(String),
}

impl BrokerHandle {
    pub fn brokers(&self) -> String {
        match self {
            BrokerHandle::Own(b) => format!("127.0.0.1:{}", b.port),
            BrokerHandle::External(b) => b.clone(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            BrokerHandle::Own(_) => {
                "tansu (Kafka protocol), one broker, in-memory storage, started for the run".into()
            }
            BrokerHandle::External(b) => format!("Kafka at {b}"),
        }
    }
}

/// A `tansu` broker on a free loopback port, in memory, killed when dropped.
pub struct Broker {
    child: Child,
    port: u16,
    log_path: PathBuf,
}

impl Broker {
    pub async fn start() -> anyhow::Result<Broker> {
        let bin = tansu().context(
            "the Kafka-protocol broker `tansu` is not installed (scripts/kafka install), \
             or give --brokers",
        )?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let listener = format!("tcp://127.0.0.1:{port}");
        let log_path = std::env::temp_dir().join(format!("udaconnect-bench-tansu-{port}.log"));
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &listener,
                "--advertised-listener-url",
                &listener,
                "--storage-engine",
                "memory://tansu/",
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("failed to start {}", bin.display()))?;
        let broker = Broker {
            child,
            port,
            log_path: log_path.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                bail!(
                    "tansu does not listen on {port}; its log: {}",
                    log_path.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(broker)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// The broker's program: on `PATH`, else where `cargo install` (`scripts/kafka install`) puts it.
fn tansu() -> Option<PathBuf> {
    let cargo_bin = std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo/bin"));
    programs::find("tansu", programs::path_dirs().into_iter().chain(cargo_bin))
}

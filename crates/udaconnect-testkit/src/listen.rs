//! Where a `udaconnect` process listens, from the file its `--listen-file` writes once its
//! listeners are bound: tests start servers on port 0 and never parse log text.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// What the listen file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listening {
    pub http: SocketAddr,
    pub grpc: Option<SocketAddr>,
    /// `serve`, or the role's name.
    pub role: String,
    pub pid: u32,
}

/// Waits up to 30 s for the listen file at `path` and reads it; panics with the process's log
/// (`log`) when none comes.
pub async fn wait_for_listen_file(path: &Path, log: &Path) -> Listening {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // Written whole or not at all (a temporary file renamed over it).
        if let Ok(bytes) = std::fs::read(path) {
            let v: serde_json::Value =
                serde_json::from_slice(&bytes).expect("the listen file is one JSON object");
            let addr = |key: &str| v[key].as_str().map(|a| a.parse().expect("an address"));
            return Listening {
                http: addr("http").expect("an HTTP address"),
                grpc: addr("grpc"),
                role: v["role"].as_str().expect("a role").to_string(),
                pid: v["pid"].as_u64().expect("a pid") as u32,
            };
        }
        assert!(
            Instant::now() < deadline,
            "no listen file {}; log:\n{}",
            path.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

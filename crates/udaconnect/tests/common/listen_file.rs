//! Where a `udaconnect` process listens, from its `--listen-file` (shared by the test binaries).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The addresses a process reports in its listen file once it has bound them; fails with the
/// process's log when none comes.
pub async fn wait(path: &Path, log: &Path) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(bytes) = std::fs::read(path) {
            return serde_json::from_slice(&bytes).expect("the listen file is one JSON object");
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

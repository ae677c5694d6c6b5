//! The machine the tests run on.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The program `name`: the first found in `first` (directories searched before `PATH`), then
/// `PATH`, then `last` (directories a package puts programs in that `PATH` may lack).
pub fn find_program(
    name: &str,
    first: impl IntoIterator<Item = PathBuf>,
    last: &[&str],
) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    first
        .into_iter()
        .chain(std::env::split_paths(&path))
        .chain(last.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// `target/test-artifacts/<what>`, created: where tests leave logs worth reading after a failure.
pub fn artifacts(what: &str) -> PathBuf {
    let dir = repo_root().join("target/test-artifacts").join(what);
    std::fs::create_dir_all(&dir).expect("create the test artifacts directory");
    dir
}

/// The simulated conference of a measurement run by hand: as many pings as the environment
/// variable `pings_var` asks for, 200,000 without it.
pub fn measured_conference(pings_var: &str) -> udaconnect_sim::SimConfig {
    let pings: u64 = std::env::var(pings_var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let mut config = udaconnect_sim::SimConfig::default();
    config.ping_interval_s = config.interval_for_total(pings);
    config
}

/// A loopback port nothing listens on: bound, then released for whoever uses it next.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// A name no other test, and no earlier run against the same broker or server, uses:
/// `<what>_<pid>_<time>_<n>`. Lowercase letters, digits and underscores only, so it is a valid
/// PostgreSQL database name and Kafka topic or group alike when `what` is.
pub fn unique(what: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "{what}_{}_{nanos:x}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Flips the bits of the byte at `at` of the file at `path`: damage a checksum catches.
pub fn flip_byte(path: &Path, at: u64) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open the file to damage");
    let mut b = [0u8];
    file.read_exact_at(&mut b, at).expect("read the byte");
    file.write_all_at(&[!b[0]], at).expect("write the byte");
}

/// Shows the logs of the code under test when `UDACONNECT_TEST_LOG` asks for them (a filter
/// such as `debug` or `udaconnect_log=trace`); silent otherwise. Safe to call from every test.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env(
            "UDACONNECT_TEST_LOG",
        ))
        .with_test_writer()
        .try_init();
}

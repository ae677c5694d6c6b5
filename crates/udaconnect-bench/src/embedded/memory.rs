//! Memory and start-up: the product binary, `udaconnect serve`, started on the data the
//! benchmark built and on an empty data directory, timed to ready and its resident set read.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The product binary whose start is measured: beside this program, else on `PATH`. Looked
/// for before anything is measured, so a run does not fail at its last stage.
pub fn product_binary() -> anyhow::Result<PathBuf> {
    udaconnect::programs::sibling("udaconnect").context(
        "udaconnect is not built next to this program nor on PATH: build it with \
         `cargo build --release -p udaconnect` (the benchmark measures its start)",
    )
}

/// Starts `product` on `scratch`'s data and on an empty directory, and writes the table.
/// `index_bytes` and `stored` are the benchmark's own index's heap and rows.
pub fn run(
    product: &Path,
    scratch: &Path,
    index_bytes: usize,
    stored: u64,
    report: &mut String,
) -> anyhow::Result<()> {
    let (ready_s, rss) = start_to_ready(product, &scratch.join("data"))?;
    // The part that does not grow with the data (the binary's pages, runtime, caches).
    let empty = scratch.join("empty");
    std::fs::create_dir_all(&empty)?;
    let (_, rss_empty) = start_to_ready(product, &empty)?;
    let per = |bytes: u64| bytes as f64 / stored.max(1) as f64;
    writeln!(
        report,
        "### Memory and start-up\n\n| figure | value |\n| --- | --- |\n\
         | resident memory of `udaconnect serve` after start, per stored location | {:.1} bytes ({:.0} MiB in all) |\n\
         | the same less `udaconnect serve` with nothing stored ({:.0} MiB), per stored location | {:.1} bytes |\n\
         | the contact index's heap, per location (in the benchmark's process, after the queries) | {:.1} bytes |\n\
         | start to ready (`/ready` answers 200) with {} locations stored | {:.2} s |\n",
        per(rss),
        rss as f64 / (1 << 20) as f64,
        rss_empty as f64 / (1 << 20) as f64,
        per(rss.saturating_sub(rss_empty)),
        per(index_bytes as u64),
        stored,
        ready_s
    )?;
    Ok(())
}

fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// Seconds from starting `udaconnect serve` on `data` until `/ready` answers 200, and its
/// resident set then.
fn start_to_ready(product: &Path, data: &Path) -> anyhow::Result<(f64, u64)> {
    let log_path = data.with_extension("serve.log");
    let listen_file = data.with_extension("listen.json");
    let started = Instant::now();
    let mut child = Command::new(product)
        .args([
            "--log-format",
            "json",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--listen-file",
        ])
        .arg(&listen_file)
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path)?)
        .spawn()
        .with_context(|| format!("failed to start {}", product.display()))?;
    let result = (|| -> anyhow::Result<(f64, u64)> {
        let deadline = Instant::now() + Duration::from_secs(120);
        // The address, from the listen file serve writes once it listens (whole or not at all).
        let address = loop {
            let listening = std::fs::read(&listen_file)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
            if let Some(a) = listening.as_ref().and_then(|l| l["http"].as_str()) {
                break a.to_string();
            }
            if Instant::now() > deadline {
                let text = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!("serve did not start:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        loop {
            if http_get_status(&address, "/ready") == Some(200) {
                break;
            }
            if Instant::now() > deadline {
                bail!("serve never ready");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let ready = started.elapsed().as_secs_f64();
        Ok((ready, rss_bytes(child.id())))
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// A minimal HTTP/1.1 GET, to poll readiness without an async runtime in this thread.
fn http_get_status(address: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(address).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = [0u8; 32];
    let n = s.read(&mut buf).ok()?;
    std::str::from_utf8(&buf[..n])
        .ok()?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

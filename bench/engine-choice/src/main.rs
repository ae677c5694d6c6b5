//! Measures the embedded engines UdaConnect ships against the alternatives that were considered:
//! the SQLite location store against raw SQLite with `synchronous = NORMAL` and against redb, and
//! the segment-file log against SQLite used as a log.
//!
//! Every write counts only once it is durable (fsynced), except the `synchronous = NORMAL`
//! variant, which is there to show what durability costs. The figures and the decision they
//! support are in `docs/decisions/embedded-engines.md`.
//!
//! Data goes under `$BENCH_DIR` (default `/tmp`), which must be on the disk under test, not tmpfs.

mod log;
mod store;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use udaconnect_core::model::Location;
use udaconnect_core::time::from_micros;

/// 2020-08-18T00:00:00Z, the day of the original demo data.
const DAY_START_US: i64 = 1_597_708_800_000_000;
const DAY_US: i64 = 86_400_000_000;
const HOUR_US: i64 = 3_600_000_000;

/// One measured variant of a workload.
pub struct Figure {
    pub name: String,
    /// Work units per second (rows, records or reads); higher is better.
    pub rate: f64,
    pub unit: &'static str,
    pub note: String,
}

/// Prints a workload's variants with their speed relative to the first one.
pub fn report(title: &str, figures: &[Figure]) {
    println!("\n== {title}");
    let Some(first) = figures.first() else { return };
    for f in figures {
        println!(
            "  {:<46} {:>12.1} {:<10} {:>6.2}x  {}",
            f.name,
            f.rate,
            f.unit,
            f.rate / first.rate,
            f.note
        );
    }
}

/// A small deterministic generator (SplitMix64): the same data on every run, no extra crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Clocks of phones differ: pings arrive up to this far out of time order.
const JITTER_US: i64 = 5_000_000;

/// `n` pings spread over one day in arrival order (ids rise with time, give or take the jitter),
/// from 10,000 attendees around one venue.
pub fn locations(n: usize, seed: u64) -> Vec<Location> {
    let mut rng = Rng::new(seed);
    // Leaves room for the jitter so every ping falls inside the day.
    let step = (DAY_US - JITTER_US) / n as i64;
    (0..n)
        .map(|i| {
            let jitter = (rng.next_u64() % JITTER_US as u64) as i64;
            Location {
                id: i as i64 + 1,
                person_id: (rng.next_u64() % 10_000) as i64 + 1,
                latitude: 37.55 + rng.unit() * 0.01,
                longitude: -122.29 + rng.unit() * 0.01,
                creation_time: from_micros(DAY_START_US + i as i64 * step + jitter),
            }
        })
        .collect()
}

/// The size of a file, or of the files directly in a directory: the on-disk footprint.
pub fn disk_bytes(path: &Path) -> u64 {
    let meta = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    if path.is_dir() {
        std::fs::read_dir(path)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_file())
                    .map(|e| meta(&e.path()))
                    .sum()
            })
            .unwrap_or(0)
    } else {
        meta(path)
    }
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The floor under every durable write: one 4 KiB append and `fdatasync`, as the log does.
fn fsync_baseline(dir: &Path) -> anyhow::Result<Duration> {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    let block = [0x5au8; 4096];
    const N: u32 = 500;
    let started = Instant::now();
    for _ in 0..N {
        f.write_all(&block)?;
        f.sync_data()?;
    }
    let mean = started.elapsed() / N;
    std::fs::remove_file(&path)?;
    Ok(mean)
}

fn main() -> anyhow::Result<()> {
    let base = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    let tmp = tempfile::Builder::new()
        .prefix("engine-choice-")
        .tempdir_in(&base)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());

    println!("engine-choice: data in {}", tmp.path().display());
    println!("cores: {cores}; load average at start: {}", loadavg());
    println!(
        "fdatasync of a 4 KiB append: mean {:.0} us",
        fsync_baseline(tmp.path())?.as_secs_f64() * 1e6
    );

    let started = Instant::now();
    store::run(&rt, tmp.path())?;
    println!("(load average after the store workload: {})", loadavg());
    log::run(&rt, tmp.path())?;
    println!(
        "\nload average at end: {}; total {:.0} s",
        loadavg(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

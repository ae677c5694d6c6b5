//! Workload 2: the log. 64 appenders each append one record and wait until it is durable (the
//! shape of single-ping HTTP ingest), then one appender with batches of 1000 (the bulk shape).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};
use tokio::runtime::Runtime;
use udaconnect_core::ports::Log;
use udaconnect_core::record::{encode, LogRecord, LOCATION_TOPIC};
use udaconnect_log::EmbeddedLog;

use crate::{disk_bytes, locations, mib, percentile, report, Figure};

const RECORDS: usize = 1_000_000;
const APPENDERS: usize = 64;
const BULK_BATCH: usize = 1000;
/// SQLite as a log falls back to this many records when 1,000,000 would take longer than
/// `SQLITE_BUDGET`.
const SQLITE_FALLBACK: usize = 50_000;
const SQLITE_BUDGET: Duration = Duration::from_secs(300);
const SQLITE_PROBE: usize = 2048;

/// What location-api appends for a ping: the location as JSON, keyed by person.
fn records(n: usize, seed: u64) -> Vec<LogRecord> {
    locations(n, seed).iter().map(|l| encode(l, None)).collect()
}

/// Deals `records` to `APPENDERS` appenders.
fn deal(records: Vec<LogRecord>) -> Vec<Vec<LogRecord>> {
    let per = records.len().div_ceil(APPENDERS);
    let mut out: Vec<Vec<LogRecord>> = (0..APPENDERS).map(|_| Vec::with_capacity(per)).collect();
    for (i, r) in records.into_iter().enumerate() {
        out[i % APPENDERS].push(r);
    }
    out
}

/// Throughput and per-append latency of one run.
struct Run {
    records: usize,
    elapsed: Duration,
    /// Sorted.
    latencies: Vec<Duration>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }

    fn latency_note(&self) -> String {
        format!(
            "append latency p50 {:.1} ms, p99 {:.1} ms",
            percentile(&self.latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&self.latencies, 0.99).as_secs_f64() * 1e3
        )
    }
}

/// Runs one task per appender; each appends its records one at a time with `append`.
fn concurrent<F, Fut>(rt: &Runtime, work: Vec<Vec<LogRecord>>, append: F) -> anyhow::Result<Run>
where
    F: Fn(LogRecord) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let records = work.iter().map(Vec::len).sum();
    rt.block_on(async move {
        let started = Instant::now();
        let tasks: Vec<_> = work
            .into_iter()
            .map(|mine| {
                let append = append.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(mine.len());
                    for r in mine {
                        let t = Instant::now();
                        append(r).await?;
                        latencies.push(t.elapsed());
                    }
                    anyhow::Ok(latencies)
                })
            })
            .collect();
        let mut latencies = Vec::with_capacity(records);
        for t in tasks {
            latencies.extend(t.await??);
        }
        let elapsed = started.elapsed();
        latencies.sort_unstable();
        Ok(Run {
            records,
            elapsed,
            latencies,
        })
    })
}

fn embedded_single(rt: &Runtime, dir: &Path) -> anyhow::Result<(Run, u64)> {
    let log = Arc::new(EmbeddedLog::open(dir, Default::default())?);
    let work = deal(records(RECORDS, 7));
    let appender = log.clone();
    let run = concurrent(rt, work, move |r| {
        let log = appender.clone();
        async move { Ok(log.append(LOCATION_TOPIC, vec![r]).await?) }
    })?;
    anyhow::ensure!(log.end_offset(LOCATION_TOPIC)? == RECORDS as u64, "log end");
    Ok((run, disk_bytes(&dir.join(LOCATION_TOPIC))))
}

fn embedded_bulk(rt: &Runtime, dir: &Path) -> anyhow::Result<Run> {
    let log = EmbeddedLog::open(dir, Default::default())?;
    let mut all = records(RECORDS, 7).into_iter();
    let batches: Vec<Vec<LogRecord>> = std::iter::from_fn(|| {
        let b: Vec<_> = all.by_ref().take(BULK_BATCH).collect();
        (!b.is_empty()).then_some(b)
    })
    .collect();
    let run = rt.block_on(async {
        let mut latencies = Vec::with_capacity(batches.len());
        let started = Instant::now();
        for b in batches {
            let t = Instant::now();
            log.append(LOCATION_TOPIC, b).await?;
            latencies.push(t.elapsed());
        }
        let elapsed = started.elapsed();
        latencies.sort_unstable();
        anyhow::Ok(Run {
            records: RECORDS,
            elapsed,
            latencies,
        })
    })?;
    anyhow::ensure!(log.end_offset(LOCATION_TOPIC)? == RECORDS as u64, "log end");
    Ok(run)
}

/// SQLite as a log: an autoincrement table, one INSERT (one transaction, fsynced) per append,
/// the appenders taking turns on the one connection as the store's writer does.
fn sqlite_log(rt: &Runtime, path: &Path, n: usize) -> anyhow::Result<(Run, u64)> {
    let c = Connection::open(path)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "FULL")?;
    c.pragma_update(None, "cache_size", -65_536)?;
    c.execute_batch(
        "CREATE TABLE log (
             seq          INTEGER PRIMARY KEY AUTOINCREMENT,
             key          BLOB,
             value        BLOB NOT NULL,
             timestamp_ms INTEGER NOT NULL
         );",
    )?;
    let conn = Arc::new(Mutex::new(c));
    let appender = conn.clone();
    let run = concurrent(rt, deal(records(n, 7)), move |r| {
        let conn = appender.clone();
        async move {
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                let c = conn.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                c.prepare_cached("INSERT INTO log (key, value, timestamp_ms) VALUES (?1, ?2, ?3)")?
                    .execute(params![r.key, r.value, r.timestamp_ms])?;
                Ok(())
            })
            .await?
        }
    })?;
    let c = conn.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let end: i64 = c.query_row("SELECT max(seq) FROM log", [], |r| r.get(0))?;
    anyhow::ensure!(end == n as i64, "log end");
    let wal = path.with_extension("sqlite3-wal");
    Ok((run, disk_bytes(path) + disk_bytes(&wal)))
}

pub fn run(rt: &Runtime, dir: &Path) -> anyhow::Result<()> {
    let sample = records(1000, 7);
    let mean_value = sample.iter().map(|r| r.value.len()).sum::<usize>() / sample.len();
    println!(
        "\nlog: {RECORDS} records, JSON values of {mean_value} bytes on average, e.g. {}",
        String::from_utf8_lossy(&sample[0].value)
    );

    let (single, single_bytes) = embedded_single(rt, &dir.join("log-single"))?;
    std::fs::remove_dir_all(dir.join("log-single"))?;

    // Decide the SQLite count from a short probe rather than by running for an hour.
    let (probe, _) = sqlite_log(rt, &dir.join("probe.sqlite3"), SQLITE_PROBE)?;
    let projected = Duration::from_secs_f64(RECORDS as f64 / probe.rate());
    let sqlite_n = if projected > SQLITE_BUDGET {
        SQLITE_FALLBACK
    } else {
        RECORDS
    };
    println!(
        "SQLite log probe: {:.0} records/s, so 1,000,000 would take ~{:.0} s; running {sqlite_n}",
        probe.rate(),
        projected.as_secs_f64()
    );
    for f in ["probe.sqlite3", "probe.sqlite3-wal", "probe.sqlite3-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let (sqlite, sqlite_bytes) = sqlite_log(rt, &dir.join("log.sqlite3"), sqlite_n)?;

    let bulk = embedded_bulk(rt, &dir.join("log-bulk"))?;
    std::fs::remove_dir_all(dir.join("log-bulk"))?;

    report(
        "2. log: durable appends, records/s",
        &[
            Figure {
                name: "EmbeddedLog, 64 appenders x 1 record".into(),
                rate: single.rate(),
                unit: "records/s",
                note: format!(
                    "{} records; {}; {:.0} MiB of files",
                    single.records,
                    single.latency_note(),
                    mib(single_bytes)
                ),
            },
            Figure {
                name: "SQLite log (WAL, FULL), 64 appenders x 1".into(),
                rate: sqlite.rate(),
                unit: "records/s",
                note: format!(
                    "{} records; {}; {:.0} MiB of files",
                    sqlite.records,
                    sqlite.latency_note(),
                    mib(sqlite_bytes)
                ),
            },
            Figure {
                name: "EmbeddedLog, 1 appender x 1000-record batches".into(),
                rate: bulk.rate(),
                unit: "records/s",
                note: format!("{} records; {}", bulk.records, bulk.latency_note()),
            },
        ],
    );
    Ok(())
}

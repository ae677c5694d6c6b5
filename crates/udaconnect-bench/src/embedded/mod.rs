//! `bench`: builds a conference with the simulator, runs it through a real server, and
//! measures ingest, queries, memory and start-up, each next to a baseline measured in the same
//! run. The embedded mode's figures in docs/benchmarks.md come from here.
//!
//! The stages follow each other on one server: ingest (here), queries ([`queries`]), then
//! memory and start-up of the product binary on the data just built ([`memory`]).
//! [`index_only`] measures the contact index alone.

mod index_only;
pub(crate) mod memory;
mod queries;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use udaconnect::progress;
use udaconnect_core::index::ContactIndex;
use udaconnect_core::ports::Log;
use udaconnect_core::record::LogRecord;
use udaconnect_core::time::{format_utc, from_micros};
use udaconnect_log::EmbeddedLog;
use udaconnect_server::access::AuthMode;
use udaconnect_sim::Conference;

use crate::common::{
    admin_token, create_persons, http_client, machine, post, scratch_dir, serve_in_process,
    ConferenceArgs, InFlight,
};
use crate::load;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub conference: ConferenceArgs,
    /// Seconds of single-ping load.
    #[arg(long, env = "UDACONNECT_BENCH_LOAD_SECONDS", default_value_t = 10)]
    pub load_seconds: u64,
    /// Scratch directory for the server's data (default: a new one under the system temp dir,
    /// removed afterwards).
    #[arg(long, env = "UDACONNECT_BENCH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Only the contact index, in this process, on the simulated pings: no server, no storage
    /// (for working on the index).
    #[arg(long, env = "UDACONNECT_BENCH_INDEX_ONLY")]
    pub index_only: bool,
    /// `on`: the server asks who is asking, as `serve` does by default, and the benchmark's
    /// requests carry an admin's token; `off`: the original open contract (`serve --auth off`).
    #[arg(long, env = "UDACONNECT_BENCH_AUTH", default_value = "on")]
    pub auth: AuthMode,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let conference = args.conference.plan();
    let scratch = scratch_dir(args.data_dir.as_deref(), "udaconnect-bench")?;
    let mut report = String::new();
    writeln!(
        report,
        "## {}\n\n\
         Machine: {}. Command: `udaconnect bench --locations {} --queries {} --baseline-queries {} --auth {}`.\n",
        args.conference.title(&conference),
        machine(),
        args.conference.locations,
        args.conference.queries,
        args.conference.baseline_queries,
        match args.auth {
            AuthMode::On => "on",
            AuthMode::Off => "off",
        }
    )?;
    let result = if args.index_only {
        index_only::run(&args.conference, &conference, &mut report)
    } else {
        let product = memory::product_binary()?;
        run_stages(&args, &conference, &product, &scratch, &mut report).await
    };
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    result?;
    args.conference.publish(&report)
}

async fn run_stages(
    args: &BenchArgs,
    conference: &Conference,
    product: &Path,
    scratch: &Path,
    report: &mut String,
) -> anyhow::Result<()> {
    let app = serve_in_process(scratch.join("data"), args.auth).await?;
    let base = format!("http://{}", app.local_addr());
    let token = match args.auth {
        AuthMode::On => Some(admin_token(product, &scratch.join("data"))?),
        AuthMode::Off => None,
    };
    let token = token.as_deref();
    let client = http_client(token)?;

    // Persons: the fresh store numbers them 1..=attendees in order.
    eprintln!("creating {} persons", conference.config.attendees);
    let persons = conference.persons().into_iter().map(|p| {
        serde_json::json!({"first_name": p.first_name, "last_name": p.last_name, "company_name": p.company_name})
    });
    create_persons(&client, &base, persons).await?;

    // Bulk ingest over HTTP: NDJSON batches, 4 in flight; each 202 means durable in the log.
    let bar = progress::bar(args.conference.locations, "ingest");
    let mut in_flight = InFlight::new(4);
    let started = Instant::now();
    let mut sent = 0u64;
    let mut pings = conference.pings().peekable();
    let url = Arc::new(format!("{base}/api/locations/batch"));
    while pings.peek().is_some() {
        let mut body = String::with_capacity(10_000 * 110);
        let mut n = 0u64;
        for p in pings.by_ref().take(10_000) {
            let _ = writeln!(
                body,
                "{{\"person_id\":{},\"latitude\":{},\"longitude\":{},\"creation_time\":\"{}\"}}",
                p.person_id,
                p.latitude,
                p.longitude,
                format_utc(from_micros(p.t))
            );
            n += 1;
        }
        sent += n;
        let (client, url, bar) = (client.clone(), url.clone(), bar.clone());
        let batch = async move {
            let r = post(&client, url.as_str(), "application/x-ndjson", body).await?;
            bar.inc(n);
            if r.status() != 202 {
                bail!("batch refused: {}", r.status());
            }
            Ok(())
        };
        in_flight.spawn(batch).await?;
    }
    in_flight.finish().await?;
    let ingest_s = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let index = app.contact_index();
    settled(&index, sent).await?;
    let stored_s = started.elapsed().as_secs_f64();
    let single_appends = sequential_append_rate(&scratch.join("baseline-log")).await?;
    writeln!(
        report,
        "### Ingest\n\n| what | figure | baseline (same run) | ratio |\n| --- | --- | --- | --- |"
    )?;
    writeln!(
        report,
        "| bulk ingest over HTTP, NDJSON batches of 10,000, 4 in flight, durable (202) | {:.0} pings/s | {:.0} appends/s, one fsync each (no group commit) | {:.1}x |",
        sent as f64 / ingest_s,
        single_appends,
        sent as f64 / ingest_s / single_appends
    )?;
    writeln!(
        report,
        "| ingested, stored in SQLite and indexed (consumer finished) | {:.0} pings/s | | |",
        sent as f64 / stored_s
    )?;

    // Single pings: 64 connections from a separate process; the floor is GET /health.
    let (post, posted) = load::load(
        &format!("{base}/api/locations"),
        conference.config.attendees,
        args.load_seconds,
        token,
    )
    .await?;
    // /health is open either way: the HTTP stack's ceiling, with the same request size.
    let (health, _) = load::load(&format!("{base}/health"), 0, args.load_seconds, token).await?;
    // The queries wait for the consumer to store the single pings: its catching up is not
    // theirs to pay.
    settled(&index, sent + posted).await?;
    writeln!(
        report,
        "| single-ping POST /api/locations, 64 connections, separate load process | {post:.0} requests/s | GET /health, same load: {health:.0} requests/s | {:.2}x |\n",
        post / health
    )?;

    queries::run(
        &args.conference,
        conference,
        &index,
        (&base, token),
        scratch,
        report,
    )
    .await?;

    // Memory and start-up: the product binary on the data just built. The store holds the
    // single pings of the POST test too, a fifth more than the bulk ingest's at 1M.
    let (index_bytes, stored) = index
        .read()
        .map(|i| (i.heap_bytes(), i.len() as u64))
        .unwrap_or_default();
    app.stop().await?;
    memory::run(product, scratch, index_bytes, stored, report)
}

/// Appends one record at a time, each waiting for its own fsync: the rate without group
/// commit.
async fn sequential_append_rate(dir: &Path) -> anyhow::Result<f64> {
    let log = EmbeddedLog::open(dir, Default::default())?;
    let record = LogRecord {
        value: vec![b'x'; 110],
        ..Default::default()
    };
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(2) {
        log.append("t", vec![record.clone()]).await?;
        n += 1;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Waits until the index holds `rows` rows and has laid out any it was due to (see
/// `index::feed`); an error if the consumer has not got there within two minutes.
async fn settled(index: &std::sync::RwLock<ContactIndex>, rows: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (held, due) = index
            .read()
            .map(|i| (i.len() as u64, i.compaction_due()))
            .map_err(|_| anyhow::anyhow!("index poisoned"))?;
        if held >= rows && !due {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the index holds {held} of {rows} pings sent, two minutes on");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

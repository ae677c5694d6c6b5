//! `udaconnect bench`: builds a conference with the simulator, runs it through a real server,
//! and measures ingest, queries, memory and start-up, each next to a baseline measured in the
//! same run. The figures in docs/benchmarks.md come from here.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use tokio::sync::Semaphore;
use udaconnect_core::contact::{self, ConnectionQuery, ContactQuery, Point};
use udaconnect_core::index::ContactIndex;
use udaconnect_core::ports::Log;
use udaconnect_core::record::LogRecord;
use udaconnect_core::simulate::{Conference, Rng, SimConfig};
use udaconnect_core::time::{format_utc, from_micros, Window};
use udaconnect_log::EmbeddedLog;
use udaconnect_server::{Application, ServeSettings};

use crate::http1;
use udaconnect::progress::bar as progress_bar;

const DAY_US: i64 = 86_400_000_000;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Locations in the simulated conference.
    #[arg(long, env = "UDACONNECT_BENCH_LOCATIONS", default_value_t = 1_000_000)]
    pub locations: u64,
    /// Attendees (default: one per thousand locations; the venue grows with them).
    #[arg(long, env = "UDACONNECT_BENCH_ATTENDEES")]
    pub attendees: Option<u32>,
    #[arg(long, env = "UDACONNECT_BENCH_DAYS", default_value_t = 3)]
    pub days: u32,
    /// Random attendees asked per query kind.
    #[arg(long, env = "UDACONNECT_BENCH_QUERIES", default_value_t = 200)]
    pub queries: usize,
    /// Queries answered by the brute-force baseline (it is slow).
    #[arg(long, env = "UDACONNECT_BENCH_BASELINE_QUERIES", default_value_t = 20)]
    pub baseline_queries: usize,
    /// Seconds of single-ping load.
    #[arg(long, env = "UDACONNECT_BENCH_LOAD_SECONDS", default_value_t = 10)]
    pub load_seconds: u64,
    /// Scratch directory for the server's data (default: a new one under the system temp dir,
    /// removed afterwards).
    #[arg(long, env = "UDACONNECT_BENCH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Also write the report (Markdown) to this file.
    #[arg(long, env = "UDACONNECT_BENCH_OUT")]
    pub out: Option<PathBuf>,
    #[arg(long, env = "UDACONNECT_BENCH_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Only the contact index, in this process, on the simulated pings: no server, no storage
    /// (for working on the index).
    #[arg(long)]
    pub index_only: bool,
}

/// Load generator run as a separate process, so its CPU is not the server's.
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// URL to send requests to.
    #[arg(long)]
    pub url: String,
    /// POST pings (for persons 1..=N), or GET when 0.
    #[arg(long, default_value_t = 0)]
    pub persons: u32,
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Instead: GET each URL of this file (one per line) in turn, on one kept-alive connection,
    /// and print each one's time to the whole answer and its size.
    #[arg(long)]
    pub urls_file: Option<PathBuf>,
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Times of a run of queries (ms), and the size of each answer (rows, or bytes over HTTP).
#[derive(Default)]
struct Latencies(Vec<f64>, Vec<f64>);

impl Latencies {
    fn summary(mut self) -> (f64, f64) {
        self.0.sort_by(f64::total_cmp);
        (percentile(&self.0, 0.5), percentile(&self.0, 0.99))
    }

    fn median_size(&self) -> f64 {
        let mut sizes = self.1.clone();
        sizes.sort_by(f64::total_cmp);
        percentile(&sizes, 0.5)
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
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

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let attendees = args
        .attendees
        .unwrap_or(((args.locations / 1000).max(10)) as u32);
    let mut config = SimConfig {
        seed: args.seed,
        attendees,
        days: args.days,
        ..Default::default()
    };
    config.ping_interval_s = config.interval_for_total(args.locations);
    let conference = Conference::plan(&config);
    let scratch = match &args.data_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("udaconnect-bench-{}", std::process::id())),
    };
    if scratch.exists() {
        bail!(
            "{} exists: give an empty or new --data-dir",
            scratch.display()
        );
    }
    let mut report = String::new();
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("model name"))
            .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
    });
    writeln!(
        report,
        "## {} locations: {} attendees, {} days, venue {:.0} m x {:.0} m, a ping every {:.0} s\n\n\
         Machine: {} cores, {}. Command: `udaconnect bench --locations {} --queries {} --baseline-queries {}`.\n",
        args.locations,
        attendees,
        args.days,
        config.venue_side_m(),
        config.venue_side_m(),
        config.ping_interval_s,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu.unwrap_or_default(),
        args.locations,
        args.queries,
        args.baseline_queries
    )?;
    let result = if args.index_only {
        index_only(&args, &conference, &mut report)
    } else {
        run_stages(&args, &conference, &scratch, &mut report).await
    };
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    result?;
    println!("{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report)
            .with_context(|| format!("failed to write {}", out.display()))?;
    }
    Ok(())
}

async fn run_stages(
    args: &BenchArgs,
    conference: &Conference,
    scratch: &Path,
    report: &mut String,
) -> anyhow::Result<()> {
    let app = Application::build(ServeSettings {
        listen: "127.0.0.1:0".parse()?,
        data_dir: scratch.join("data"),
        demo: false,
        demo_attendees: 0,
        web_dir: None,
        cors_origins: Vec::new(),
        grpc: udaconnect_server::GrpcListen::Off,
    })
    .await?;
    let base = format!("http://{}", app.local_addr());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;

    // Persons: the fresh store numbers them 1..=attendees in order.
    eprintln!("creating {} persons", conference.config.attendees);
    for p in conference.persons() {
        let r = client
            .post(format!("{base}/api/persons"))
            .json(&serde_json::json!({"first_name": p.first_name, "last_name": p.last_name, "company_name": p.company_name}))
            .send()
            .await?;
        if r.status() != 201 {
            bail!("creating a person failed: {}", r.status());
        }
    }

    // Bulk ingest over HTTP: NDJSON batches, 4 in flight; each 202 means durable in the log.
    let total_estimate = args.locations;
    let bar = progress_bar(total_estimate, "ingest");
    let permits = Arc::new(Semaphore::new(4));
    let mut tasks = tokio::task::JoinSet::new();
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
        let permit = permits.clone().acquire_owned().await?;
        let (client, url, bar) = (client.clone(), url.clone(), bar.clone());
        tasks.spawn(async move {
            let r = client
                .post(url.as_str())
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await;
            drop(permit);
            bar.inc(n);
            match r {
                Ok(r) if r.status() == 202 => Ok(()),
                Ok(r) => Err(anyhow::anyhow!("batch refused: {}", r.status())),
                Err(e) => Err(e.into()),
            }
        });
        while let Some(done) = tasks.try_join_next() {
            done??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
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
    let exe = std::env::current_exe()?;
    let (post, posted) = load(
        &exe,
        &format!("{base}/api/locations"),
        conference.config.attendees,
        args.load_seconds,
    )
    .await?;
    let (health, _) = load(&exe, &format!("{base}/health"), 0, args.load_seconds).await?;
    // The queries wait for the consumer to store the single pings: its catching up is not
    // theirs to pay.
    settled(&index, sent + posted).await?;
    writeln!(
        report,
        "| single-ping POST /api/locations, 64 connections, separate load process | {post:.0} requests/s | GET /health, same load: {health:.0} requests/s | {:.2}x |\n",
        post / health
    )?;

    // Queries.
    let all: Vec<Point> = {
        let index = index
            .read()
            .map_err(|_| anyhow::anyhow!("index poisoned"))?;
        (0..index.len() as u32).map(|s| index.point(s)).collect()
    };
    let people = asked_attendees(args, conference);
    let start = conference.config.start;
    writeln!(
        report,
        "### Queries ({} random attendees each; baseline: a linear scan of every stored location, on the first {})\n\n\
         Server: the index's search in this process. HTTP: the whole answer received by a client in a separate process, one request at a time on a kept-alive connection, after 0.3 s of untimed requests.\n\n\
         | query | window | server p50 | server p99 | HTTP p50 | HTTP p99 | answer, median (rows / JSON) | baseline p50 | speed-up (p50) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        args.queries, args.baseline_queries
    )?;
    for (label, days) in [
        ("1 day", 1),
        ("3 days", 3.min(conference.config.days as i64)),
    ] {
        let window = Window {
            start,
            end: start + days * DAY_US,
        };
        let date = |d: i64| format_utc(from_micros(start + d * DAY_US))[..10].to_string();
        let (start_date, end_date) = (date(0), date(days - 1));
        // Connection with a time condition.
        let q = |p: i64| ConnectionQuery {
            person_id: p,
            window,
            distance_m: 5.0,
            max_time_gap_us: Some(60_000_000),
        };
        let server = time_each(&people, |p| {
            let i = index.read().expect("index");
            i.connections(&q(p)).len()
        });
        let http = http_each(scratch, &people, |p| {
            format!("{base}/api/persons/{p}/connection?start_date={start_date}&end_date={end_date}&distance=5&max_time_gap=60")
        })
        .await?;
        let baseline = baseline_each(
            &people[..args.baseline_queries.min(people.len())],
            &all,
            |own, p| contact::connections(own, &all, &q(p)),
            |p| {
                let i = index.read().expect("index");
                i.connections(&q(p)).iter().map(|&s| i.point(s)).collect()
            },
        )?;
        row(
            report,
            "connection, distance 5 m, max_time_gap 60 s",
            label,
            server,
            http,
            baseline,
        )?;
        // Contacts. With a gap of 60 s, two pings of one person (64-96 s apart) are never in
        // one encounter, so no contact lasts the minimum and answers are empty: that times the
        // search and the episodes alone. A gap of 120 s joins consecutive pings, and answers
        // hold the persons really met.
        for gap_s in [60i64, 120] {
            let cq = |p: i64| ContactQuery {
                person_id: p,
                window,
                distance_m: 5.0,
                max_time_gap_us: gap_s * 1_000_000,
                min_duration_us: 120_000_000,
            };
            let server = time_each(&people, |p| {
                index.read().expect("index").contacts(&cq(p)).len()
            });
            let http = http_each(scratch, &people, |p| {
                format!("{base}/api/persons/{p}/contacts?start={start_date}&end={end_date}&distance=5&max_time_gap={gap_s}&min_duration=120")
            })
            .await?;
            let baseline = baseline_each(
                &people[..args.baseline_queries.min(people.len())],
                &all,
                |own, p| {
                    let c = cq(p);
                    let matched = contact::connections(
                        own,
                        &all,
                        &ConnectionQuery {
                            person_id: p,
                            window,
                            distance_m: c.distance_m,
                            max_time_gap_us: Some(c.max_time_gap_us),
                        },
                    );
                    contact::summarise(matched, &c)
                },
                |p| index.read().expect("index").contacts(&cq(p)),
            )?;
            row(
                report,
                &format!("contacts summary, 5 m, gap {gap_s} s, min 120 s"),
                label,
                server,
                http,
                baseline,
            )?;
        }
    }

    // The original semantics: no time condition, one day: raw answer throughput.
    let window = Window {
        start,
        end: start + DAY_US,
    };
    let q = |p: i64| ConnectionQuery {
        person_id: p,
        window,
        distance_m: 5.0,
        max_time_gap_us: None,
    };
    let mut rows = 0usize;
    let mut secs = 0.0;
    let mut sizes = Vec::new();
    for &p in &people {
        let t = Instant::now();
        let n = index.read().expect("index").connections(&q(p)).len();
        secs += t.elapsed().as_secs_f64();
        rows += n;
        sizes.push(n as f64);
    }
    let (size_p50, _) = Latencies(sizes.clone(), Vec::new()).summary();
    let max_size = sizes.iter().cloned().fold(0.0, f64::max);
    let mut base_rows = 0usize;
    let mut base_secs = 0.0;
    for &p in people.iter().take(args.baseline_queries) {
        let own: Vec<Point> = all.iter().filter(|x| x.person_id == p).copied().collect();
        let t = Instant::now();
        base_rows += contact::connections(&own, &all, &q(p)).len();
        base_secs += t.elapsed().as_secs_f64();
    }
    writeln!(
        report,
        "\n### The original semantics (no time condition), 1-day window\n\n\
         | figure | index | baseline (linear scan) | ratio |\n| --- | --- | --- | --- |\n\
         | answer locations per second of server time | {:.2} M/s | {:.2} M/s | {:.1}x |\n\
         | answer size, median / largest | {:.0} / {:.0} locations | | |\n",
        rows as f64 / secs / 1e6,
        base_rows as f64 / base_secs / 1e6,
        (rows as f64 / secs) / (base_rows as f64 / base_secs),
        size_p50,
        max_size
    )?;

    // Memory and start-up: the real binary on the data just built. The store holds the
    // single pings of the POST test too, a fifth more than the bulk ingest's at 1M.
    let (index_bytes, stored) = index
        .read()
        .map(|i| (i.heap_bytes(), i.len() as u64))
        .unwrap_or_default();
    drop(all);
    app.stop().await?;
    let (ready_s, rss) = start_to_ready(&exe, &scratch.join("data"))?;
    // The part that does not grow with the data (the binary's pages, runtime, caches).
    let empty = scratch.join("empty");
    std::fs::create_dir_all(&empty)?;
    let (_, rss_empty) = start_to_ready(&exe, &empty)?;
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

fn index_only(
    args: &BenchArgs,
    conference: &Conference,
    report: &mut String,
) -> anyhow::Result<()> {
    let started = Instant::now();
    // Fed in batches, as the consumer does, compactions included.
    let shared = std::sync::RwLock::new(ContactIndex::new());
    let mut n = 0i64;
    let mut batch = Vec::with_capacity(10_000);
    for p in conference.pings() {
        n += 1;
        batch.push(Point {
            id: n,
            person_id: p.person_id,
            lat: p.latitude,
            lon: p.longitude,
            t: p.t,
        });
        if batch.len() == 10_000 {
            udaconnect_core::index::feed(&shared, batch.drain(..));
        }
    }
    udaconnect_core::index::feed(&shared, batch.drain(..));
    let mut index = shared
        .into_inner()
        .map_err(|_| anyhow::anyhow!("index poisoned"))?;
    index.shrink_to_fit();
    let built_s = started.elapsed().as_secs_f64();
    // The bulk layout a restart does, on the same pings.
    let all: Vec<Point> = (0..index.len() as u32).map(|s| index.point(s)).collect();
    let bulk_started = Instant::now();
    let mut builder = udaconnect_core::index::BulkBuilder::with_capacity(all.len());
    for p in &all {
        builder.push(p);
    }
    let pushed = bulk_started.elapsed().as_secs_f64();
    let laid_out = builder.finish();
    writeln!(
        report,
        "bulk layout (a restart's): {pushed:.2} s pushing, {:.2} s in all\n",
        bulk_started.elapsed().as_secs_f64()
    )?;
    drop(all);
    writeln!(
        report,
        "index of {n} pings built in {:.2} s, {:.1} bytes per ping\n",
        built_s,
        index.heap_bytes() as f64 / n as f64
    )?;
    let people = asked_attendees(args, conference);
    let start = conference.config.start;
    let window = |days: i64| Window {
        start,
        end: start + days * DAY_US,
    };
    // Each query on the index as the consumer fed it and on the one a restart lays out from
    // the same pings: their layouts differ (rows arrived since the last compaction, cells
    // grown in place), and a server answers from either.
    writeln!(
        report,
        "| query | window | fed: p50 | fed: p99 | laid out at start: p50 | laid out at start: p99 |\n\
         | --- | --- | --- | --- | --- | --- |"
    )?;
    // One table row: `ask` timed on both indexes.
    let mut row = |query: String, days: i64, ask: &dyn Fn(&ContactIndex, i64) -> usize| {
        let (fed50, fed99) = time_each(&people, |p| ask(&index, p)).summary();
        let (bulk50, bulk99) = time_each(&people, |p| ask(&laid_out, p)).summary();
        writeln!(
            report,
            "| {query} | {days} d | {fed50:.2} ms | {fed99:.2} ms | {bulk50:.2} ms | {bulk99:.2} ms |"
        )
    };
    for (label, days, gap) in [
        ("gap 60 s", 1, Some(60_000_000)),
        ("gap 60 s", 3, Some(60_000_000)),
        ("no gap", 1, None),
    ] {
        let q = |p: i64| ConnectionQuery {
            person_id: p,
            window: window(days),
            distance_m: 5.0,
            max_time_gap_us: gap,
        };
        row(format!("connection, {label}"), days, &|i, p| {
            i.connections(&q(p)).len()
        })?;
    }
    for (days, gap_s) in [(1, 60), (1, 120), (3, 60), (3, 120)] {
        let q = |p: i64| ContactQuery {
            person_id: p,
            window: window(days),
            distance_m: 5.0,
            max_time_gap_us: gap_s * 1_000_000,
            min_duration_us: 120_000_000,
        };
        row(
            format!("contacts, gap {gap_s} s, min 120 s"),
            days,
            &|i, p| i.contacts(&q(p)).len(),
        )?;
    }
    Ok(())
}

/// The attendees the queries ask about: the same for a seed, whatever is measured.
fn asked_attendees(args: &BenchArgs, conference: &Conference) -> Vec<i64> {
    attendees_to_ask(args.seed, args.queries, conference)
}

/// The attendees a benchmark asks about: the same for a seed in every benchmark, so figures of
/// the embedded and the distributed mode concern the same people.
pub(crate) fn attendees_to_ask(seed: u64, queries: usize, conference: &Conference) -> Vec<i64> {
    let mut rng = Rng::new(seed ^ 0xbe_4c);
    (0..queries)
        .map(|_| 1 + rng.below(conference.config.attendees as usize) as i64)
        .collect()
}

fn row(
    report: &mut String,
    what: &str,
    window: &str,
    server: Latencies,
    http: Latencies,
    baseline: Latencies,
) -> anyhow::Result<()> {
    let (rows, bytes) = (server.median_size(), http.median_size());
    let (s50, s99) = server.summary();
    let (h50, h99) = http.summary();
    let (b50, _) = baseline.summary();
    writeln!(
        report,
        "| {what} | {window} | {s50:.2} ms | {s99:.2} ms | {h50:.2} ms | {h99:.2} ms | {rows:.0} / {:.0} KiB | {b50:.1} ms | {:.0}x |",
        bytes / 1024.0,
        b50 / s50
    )?;
    Ok(())
}

fn time_each(people: &[i64], mut f: impl FnMut(i64) -> usize) -> Latencies {
    let mut out = Latencies::default();
    for &p in people {
        let t = Instant::now();
        let n = std::hint::black_box(f(p));
        out.0.push(ms(t.elapsed()));
        out.1.push(n as f64);
    }
    out
}

/// The linear scan, checked against the index's answer as it goes.
fn baseline_each<T: PartialEq>(
    people: &[i64],
    all: &[Point],
    scan: impl Fn(&[Point], i64) -> Vec<T>,
    indexed: impl Fn(i64) -> Vec<T>,
) -> anyhow::Result<Latencies> {
    let mut out = Latencies::default();
    for &p in people {
        let own: Vec<Point> = all.iter().filter(|x| x.person_id == p).copied().collect();
        let t = Instant::now();
        let scanned = scan(&own, p);
        out.0.push(ms(t.elapsed()));
        out.1.push(scanned.len() as f64);
        if indexed(p) != scanned {
            bail!("index and scan disagree for person {p}");
        }
    }
    Ok(out)
}

/// Each URL's answer time over HTTP, asked one after another by a separate client process
/// (as a real client is): in this process, the client's tasks would share the server's
/// runtime threads and queue behind its work.
async fn http_each(
    scratch: &Path,
    people: &[i64],
    url: impl Fn(i64) -> String,
) -> anyhow::Result<Latencies> {
    if people.is_empty() {
        return Ok(Latencies::default());
    }
    let urls = scratch.join("bench-urls.txt");
    let list: Vec<String> = people.iter().map(|&p| url(p)).collect();
    std::fs::write(&urls, list.join("\n"))?;
    let mut client = Command::new(std::env::current_exe()?);
    client
        .args(["bench-load", "--url", &list[0], "--urls-file"])
        .arg(&urls)
        .stderr(Stdio::inherit());
    let out = output_of(client).await?;
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("query client output")?;
    let numbers = |key: &str| -> Vec<f64> {
        v[key]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default()
    };
    if let Some(e) = v["error"].as_str() {
        bail!("{e}");
    }
    Ok(Latencies(numbers("ms"), numbers("bytes")))
}

/// How long the query client asks before it times (see [`get_each`]).
const WARM_UP: Duration = Duration::from_millis(300);

/// The query client's side of [`http_each`]: every URL on one connection to the first URL's
/// host.
async fn get_each(urls_file: &Path) -> anyhow::Result<serde_json::Value> {
    let urls = std::fs::read_to_string(urls_file)?;
    let paths = urls
        .lines()
        .filter(|l| !l.is_empty())
        .map(http1::split_url)
        .collect::<std::io::Result<Vec<_>>>()?;
    let Some((host, _)) = paths.first() else {
        return Ok(serde_json::json!({"ms": [], "bytes": []}));
    };
    let mut connection = http1::Connection::open(host).await?;
    // Untimed requests first, for WARM_UP: a new client process runs slow for its first tenth
    // of a second or so (the first 22 of 200 3-day answers took 5.5-6.6 ms on average against
    // 3.6-4.5 ms for the rest; after a warm-up, on the same connection or a new one, they did
    // not).
    let warming = Instant::now();
    for (_, path) in paths.iter().cycle() {
        connection.get(path).await?;
        if warming.elapsed() >= WARM_UP {
            break;
        }
    }
    let (mut times, mut sizes) = (Vec::new(), Vec::new());
    for (_, path) in &paths {
        let t = Instant::now();
        let answer = connection.get(path).await?;
        times.push(ms(t.elapsed()));
        if answer.status != 200 {
            return Ok(serde_json::json!({"error": format!("{path}: {}", answer.status)}));
        }
        sizes.push(answer.body_bytes);
    }
    Ok(serde_json::json!({"ms": times, "bytes": sizes}))
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

/// Runs the load process; the rate of acknowledged requests, and their number.
async fn load(exe: &Path, url: &str, persons: u32, seconds: u64) -> anyhow::Result<(f64, u64)> {
    let mut process = Command::new(exe);
    process
        .args([
            "bench-load",
            "--url",
            url,
            "--persons",
            &persons.to_string(),
            "--seconds",
            &seconds.to_string(),
        ])
        .stderr(Stdio::inherit());
    let out = output_of(process).await?;
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("load process output")?;
    if v["errors"].as_u64().unwrap_or(0) > 0 {
        bail!("load against {url} had {} errors", v["errors"]);
    }
    let requests = v["requests"].as_u64().unwrap_or(0);
    Ok((
        requests as f64 / v["seconds"].as_f64().unwrap_or(1.0),
        requests,
    ))
}

/// Runs a child process to its end on a blocking thread. The server under test runs on this
/// process's runtime: waiting for the child on a worker would take that worker from the
/// server while the child measures it.
async fn output_of(mut command: Command) -> anyhow::Result<std::process::Output> {
    Ok(tokio::task::spawn_blocking(move || command.output()).await??)
}

fn start_to_ready(exe: &Path, data: &Path) -> anyhow::Result<(f64, u64)> {
    let log_path = data.with_extension("serve.log");
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args([
            "--log-format",
            "json",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path)?)
        .spawn()?;
    let result = (|| -> anyhow::Result<(f64, u64)> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let address = loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(a) = text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|v| v["message"] == "udaconnect is serving")
            {
                break a["address"].as_str().unwrap_or_default().to_string();
            }
            if Instant::now() > deadline {
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

/// The load process: `connections` clients in a loop for `seconds`; prints JSON counts.
pub async fn load_run(args: LoadArgs) -> anyhow::Result<()> {
    if let Some(urls) = args.urls_file {
        // One request at a time on one connection: one thread does it all. On the
        // multi-threaded runtime, the connection's task and the request's could sit on two
        // threads, and every chunk of an answer waited for a thread to wake.
        let answers = tokio::task::spawn_blocking(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(get_each(&urls))
        })
        .await??;
        println!("{answers}");
        return Ok(());
    }
    let (host, path) = http1::split_url(&args.url)?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..args.connections {
        let (host, path, persons) = (host.clone(), path.clone(), args.persons);
        tasks.spawn(async move {
            let mut rng = Rng::new(c as u64 + 1);
            let (mut ok, mut errors) = (0u64, 0u64);
            let mut body = String::new();
            let mut connection = None;
            while Instant::now() < deadline {
                let c = match connection.as_mut() {
                    Some(c) => c,
                    None => match http1::Connection::open(&host).await {
                        Ok(c) => connection.insert(c),
                        Err(_) => {
                            errors += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                };
                let answer = if persons == 0 {
                    c.get(&path).await
                } else {
                    body.clear();
                    let _ = write!(
                        body,
                        "{{\"person_id\":{},\"latitude\":{},\"longitude\":{}}}",
                        1 + rng.below(persons as usize),
                        37.55 + rng.unit() * 0.001,
                        -122.29 + rng.unit() * 0.001
                    );
                    c.post_json(&path, body.as_bytes()).await
                };
                match answer {
                    Ok(a) if (200..300).contains(&a.status) => ok += 1,
                    Ok(_) => errors += 1,
                    // The connection is in an unknown state: a new one for the next request.
                    Err(_) => {
                        errors += 1;
                        connection = None;
                    }
                }
            }
            (ok, errors)
        });
    }
    let (mut ok, mut errors) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let (o, e) = r?;
        ok += o;
        errors += e;
    }
    println!(
        "{}",
        serde_json::json!({"requests": ok, "errors": errors, "seconds": started.elapsed().as_secs_f64()})
    );
    Ok(())
}

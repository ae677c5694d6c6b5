//! `udaconnect bench-distributed`: the distributed mode measured on this machine, on a broker
//! speaking the Kafka protocol and a fresh PostgreSQL/PostGIS database, with the real roles
//! running in this process. Each figure stands next to a baseline measured in the same run. The
//! figures in docs/benchmarks.md come from here.
//!
//! 1. Ingest: the conference produced to `location`, then the location consumer storing it in
//!    PostGIS; against one INSERT per message, each its own transaction, as the original did.
//! 2. End-to-end latency: single pings posted to location-api while a watcher polls the
//!    database for their arrival; against the same load on the embedded mode.
//! 3. Queries: connection-api's engine on PostGIS; against a scan of the whole window.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::NaiveDateTime;
use clap::Args;
use tokio::sync::Semaphore;
use udaconnect_core::contact::{ConnectionQuery, ContactQuery, Point};
use udaconnect_core::model::Location;
use udaconnect_core::ports::{DynLocationStore, DynLog, Log, PersonStore};
use udaconnect_core::record::{self, LOCATION_DLQ_TOPIC, LOCATION_TOPIC};
use udaconnect_core::simulate::{Conference, Rng, SimConfig};
use udaconnect_core::time::{from_micros, Window};
use udaconnect_log::{KafkaLog, KafkaOptions};
use udaconnect_server::backends::{LogUrl, StoreUrl};
use udaconnect_server::contact_engine::{
    ContactEngine, Rows, ScanEngine, SharedIndex, StoreEngine,
};
use udaconnect_server::directory::{DynPersonDirectory, LocalPersons};
use udaconnect_server::location_consumer::{LocationConsumer, OnStored};
use udaconnect_server::metrics::Metrics;
use udaconnect_server::role_app::{RoleApp, RoleSettings};
use udaconnect_server::roles::Role;
use udaconnect_store::postgres::near_sql;

use crate::bench::{attendees_to_ask, ms, percentile};
use udaconnect_server::{Application, GrpcListen, ServeSettings};
use udaconnect_store::{Postgres, PostgresLocationStore, PostgresPersonStore};

use udaconnect::progress::bar as progress_bar;

const DAY_US: i64 = 86_400_000_000;
/// Records per append while producing the conference, and appends in flight.
const PRODUCE_CHUNK: usize = 10_000;
const PRODUCE_IN_FLIGHT: usize = 4;
/// Persons the latency stage's pings name (the embedded baseline creates as many).
const LATENCY_PERSONS: u32 = 100;
/// How often the latency watchers look for newly stored pings.
const WATCH_EVERY: Duration = Duration::from_millis(2);
/// The consumer's fetch wait in the latency stage's second distributed run.
const SHORT_FETCH_WAIT_MS: u32 = 5;

#[derive(Args, Debug)]
pub struct BenchDistributedArgs {
    /// PostgreSQL server with PostGIS: a fresh database `udc_bench_<random>` is created on it
    /// for the run (the URL's own database is only used to create and drop it).
    #[arg(
        long,
        env = "UDACONNECT_BENCH_STORE",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub store: String,
    /// Kafka bootstrap brokers (`host:port[,host:port]`) to use instead of starting a broker
    /// for the run; the `location` topic and the `location-consumer` group must be new there.
    /// Without it, `tansu` (PATH or ~/.cargo/bin; `scripts/kafka install`) is started in memory
    /// on a free port, so every run starts empty.
    #[arg(long, env = "UDACONNECT_BENCH_BROKERS")]
    pub brokers: Option<String>,
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
    /// Queries answered by the scan baseline (it is slow), and by the original semantics.
    #[arg(long, env = "UDACONNECT_BENCH_BASELINE_QUERIES", default_value_t = 20)]
    pub baseline_queries: usize,
    /// Pings stored by the one-INSERT-per-message baseline.
    #[arg(long, default_value_t = 20_000)]
    pub insert_baseline: usize,
    /// Single pings per second posted in the latency stage.
    #[arg(long, default_value_t = 500)]
    pub latency_rate: u32,
    /// Seconds of the latency stage's load (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    pub latency_seconds: u64,
    /// Concurrent clients sharing the latency stage's load.
    #[arg(long, default_value_t = 16)]
    pub latency_clients: usize,
    #[arg(long, env = "UDACONNECT_BENCH_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Also write the report (Markdown) to this file.
    #[arg(long, env = "UDACONNECT_BENCH_OUT")]
    pub out: Option<PathBuf>,
    /// Keep the benchmark's database afterwards (its URL is printed).
    #[arg(long)]
    pub keep: bool,
}

/// Milliseconds, summarised.
struct Latencies(Vec<f64>);

impl Latencies {
    fn sorted(mut self) -> Vec<f64> {
        self.0.sort_by(f64::total_cmp);
        self.0
    }
    fn p50_p99(self) -> (f64, f64) {
        let s = self.sorted();
        (percentile(&s, 0.5), percentile(&s, 0.99))
    }
    fn p50_p99_max(self) -> (f64, f64, f64) {
        let s = self.sorted();
        (
            percentile(&s, 0.5),
            percentile(&s, 0.99),
            s.last().copied().unwrap_or(f64::NAN),
        )
    }
}

/// A ratio to a baseline, with the digits that matter.
fn ratio(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0}x")
    } else {
        format!("{x:.2}x")
    }
}

pub async fn run(args: BenchDistributedArgs) -> anyhow::Result<()> {
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

    let broker = match &args.brokers {
        Some(b) => BrokerHandle::External(b.clone()),
        None => BrokerHandle::Own(Broker::start().await?),
    };
    let db = BenchDb::create(&args.store).await?;
    let mut report = String::new();
    let result = run_stages(&args, &conference, &broker, &db, &mut report).await;
    if args.keep {
        eprintln!("kept the benchmark's database: {}", redacted(&db.url));
    } else if let Err(e) = db.drop_database().await {
        eprintln!("warning: could not drop database {}: {e:#}", db.name);
    }
    drop(broker);
    result?;
    println!("{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report)
            .with_context(|| format!("failed to write {}", out.display()))?;
    }
    Ok(())
}

async fn run_stages(
    args: &BenchDistributedArgs,
    conference: &Conference,
    broker: &BrokerHandle,
    db: &BenchDb,
    report: &mut String,
) -> anyhow::Result<()> {
    let config = &conference.config;
    // Connecting runs the migrations: the schema, PostGIS included.
    let pg = Postgres::connect(&db.url)
        .await
        .context("failed to open the benchmark's database")?;
    let admin = db.client().await?;
    let setting = |rows: Vec<tokio_postgres::Row>| {
        rows.first()
            .and_then(|r| r.try_get::<_, String>(0).ok())
            .unwrap_or_default()
    };
    let server_version = setting(admin.query("SHOW server_version", &[]).await?);
    let shared_buffers = setting(admin.query("SHOW shared_buffers", &[]).await?);
    let sync_commit = setting(admin.query("SHOW synchronous_commit", &[]).await?);
    let postgis = setting(
        admin
            .query(
                "SELECT extversion FROM pg_extension WHERE extname = 'postgis'",
                &[],
            )
            .await
            .unwrap_or_default(),
    );
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("model name"))
            .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
    });
    writeln!(
        report,
        "## Distributed mode, {} locations: {} attendees, {} days, venue {:.0} m x {:.0} m, a ping every {:.0} s\n\n\
         Machine: {} cores, {}. PostgreSQL {} (PostGIS {}, shared_buffers {}, synchronous_commit {}); broker: {}. \
         Everything (broker, database, roles, clients) on this machine.\n\n\
         Command: `udaconnect bench-distributed --locations {} --queries {} --baseline-queries {}`.\n",
        args.locations,
        config.attendees,
        config.days,
        config.venue_side_m(),
        config.venue_side_m(),
        config.ping_interval_s,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu.unwrap_or_default(),
        server_version,
        postgis,
        shared_buffers,
        sync_commit,
        broker.describe(),
        args.locations,
        args.queries,
        args.baseline_queries
    )?;

    // The conference's persons.
    let person_store = Arc::new(PostgresPersonStore::new(&pg));
    person_store.import(conference.persons()).await?;
    let store: DynLocationStore = Arc::new(PostgresLocationStore::new(&pg));

    // Every ping as the ingest path would assign it: ids 1, 2, ... in time order.
    let bar = progress_bar(args.locations, "simulate");
    let mut locations = Vec::with_capacity(args.locations as usize + 1024);
    for (i, p) in conference.pings().enumerate() {
        locations.push(Location {
            id: i as i64 + 1,
            person_id: p.person_id,
            latitude: p.latitude,
            longitude: p.longitude,
            creation_time: from_micros(p.t),
        });
        if i % 10_000 == 0 {
            bar.set_position(i as u64);
        }
    }
    bar.finish_and_clear();
    let n = locations.len();

    let kafka = Arc::new(KafkaLog::connect(
        &broker.brokers(),
        KafkaOptions::default(),
    )?);
    create_topics(&kafka, &[LOCATION_TOPIC, LOCATION_DLQ_TOPIC]).await?;
    let log: DynLog = kafka.clone();

    // 1. Produce: appends of PRODUCE_CHUNK records, a few in flight; each returns once durable.
    let produce_rate = produce(&log, &locations).await?;
    let single_rate = single_append_rate(&broker.brokers()).await?;

    // 1. Consume: the location consumer, from the first record to the last stored.
    let consume_s = consume(&log, &store, person_store.clone(), n as u64).await?;
    let stored: i64 = admin
        .query_one("SELECT count(*) FROM location", &[])
        .await?
        .get(0);
    if stored != n as i64 {
        bail!("the consumer stored {stored} locations, expected {n}");
    }
    let insert_rate = insert_per_message(&admin, &locations[..args.insert_baseline.min(n)]).await?;
    writeln!(
        report,
        "### Ingest: Kafka -> PostGIS\n\n| what | figure | baseline (same run) | ratio |\n| --- | --- | --- | --- |"
    )?;
    writeln!(
        report,
        "| produce to `location`: `KafkaLog::append` of {PRODUCE_CHUNK} records, {PRODUCE_IN_FLIGHT} in flight, acks=all (idempotent producer) | {produce_rate:.0} records/s | one record per append, each awaited (acks=all, linger 0): {single_rate:.0} records/s | {} |",
        ratio(produce_rate / single_rate)
    )?;
    let consume_rate = n as f64 / consume_s;
    writeln!(
        report,
        "| location-consumer from the topic into PostGIS (batches of up to 8192: decode, person check, one multi-row upsert, commit; then offset commit) | {consume_rate:.0} pings/s ({n} in {consume_s:.1} s) | one INSERT per message, each its own transaction, first {} pings, same table shape: {insert_rate:.0} pings/s | {} |\n",
        args.insert_baseline.min(n),
        ratio(consume_rate / insert_rate)
    )?;

    // The planner's statistics and the visibility map, as autovacuum leaves them after a bulk
    // load; without them the first queries would run on guesses.
    let vacuum = Instant::now();
    admin.batch_execute("VACUUM ANALYZE location").await?;
    let vacuum_s = vacuum.elapsed().as_secs_f64();

    // 2. End-to-end latency.
    let persons = LATENCY_PERSONS.min(config.attendees);
    let load = LoadShape {
        rate: args.latency_rate.max(1),
        seconds: args.latency_seconds.max(1),
        warmup: Duration::from_secs(1),
        clients: args.latency_clients.max(1),
        persons,
        origin: (config.origin.latitude, config.origin.longitude),
    };
    let distributed = latency_distributed(db, broker, &load, Vec::new()).await?;
    // tansu answers a fetch only when its wait is over, where Kafka answers as soon as records
    // arrive: a short wait shows the pipeline without the broker's hold.
    let short_wait = vec![(
        "fetch.wait.max.ms".to_string(),
        SHORT_FETCH_WAIT_MS.to_string(),
    )];
    let distributed_short = latency_distributed(db, broker, &load, short_wait).await?;
    let embedded = latency_embedded(&load).await?;
    writeln!(
        report,
        "### End-to-end ingest latency: single pings, {} per second for {} s ({} clients, after 1 s of warm-up)\n\n\
         *202* is the answer to `POST /api/locations` (durable in the log); *stored* is from sending the request until a \
         query sees the ping (polled every {} ms). Ratios: p99 against the baseline's p99.\n\n\
         | mode | pings | 202 p50 | 202 p99 | 202 max | stored p50 | stored p99 | stored max | ratio 202 / stored |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        load.rate,
        load.seconds,
        load.clients,
        WATCH_EVERY.as_millis()
    )?;
    distributed.row(
        report,
        "distributed: location-api -> Kafka -> location-consumer -> PostGIS (`SELECT` on `location`), default client settings",
        &embedded,
    )?;
    distributed_short.row(
        report,
        &format!("distributed, the same with the consumer's `fetch.wait.max.ms={SHORT_FETCH_WAIT_MS}` (`--log kafka://...?fetch.wait.max.ms={SHORT_FETCH_WAIT_MS}`)"),
        &embedded,
    )?;
    embedded.row(
        report,
        "baseline: embedded `udaconnect serve` -> log -> consumer -> SQLite and the contact index (index read)",
        &embedded,
    )?;
    writeln!(report)?;

    // 3. Queries.
    queries(args, conference, &store, &admin, n, vacuum_s, report).await?;
    drop(store);
    pg.close();
    Ok(())
}

/// Creates the topics before anything is timed, waiting for a broker that is still starting.
async fn create_topics(log: &KafkaLog, topics: &[&str]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match log.create_topics(topics).await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(error = %e, "broker not ready yet");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e).context("the broker did not take the topics"),
        }
    }
}

async fn produce(log: &DynLog, locations: &[Location]) -> anyhow::Result<f64> {
    let bar = progress_bar(locations.len() as u64, "produce");
    let permits = Arc::new(Semaphore::new(PRODUCE_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for chunk in locations.chunks(PRODUCE_CHUNK) {
        let records: Vec<_> = chunk.iter().map(|l| record::encode(l, None)).collect();
        let permit = permits.clone().acquire_owned().await?;
        let (log, bar, len) = (log.clone(), bar.clone(), chunk.len() as u64);
        tasks.spawn(async move {
            let r = log.append(LOCATION_TOPIC, records).await;
            drop(permit);
            bar.inc(len);
            r
        });
        while let Some(done) = tasks.try_join_next() {
            done??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok(locations.len() as f64 / secs)
}

/// One record per append, each awaited, with no linger: the rate of a producer that sends and
/// flushes every message, as the original's did. On a topic of its own, which the consumer
/// never reads.
async fn single_append_rate(brokers: &str) -> anyhow::Result<f64> {
    const TOPIC: &str = "bench.single-append";
    let log = KafkaLog::connect(
        brokers,
        KafkaOptions {
            client_config: vec![("linger.ms".into(), "0".into())],
            ..KafkaOptions::default()
        },
    )?;
    create_topics(&log, &[TOPIC]).await?;
    let record = record::encode(
        &Location {
            id: 1,
            person_id: 1,
            latitude: 37.553,
            longitude: -122.2925,
            creation_time: from_micros(1_717_200_000_000_000),
        },
        None,
    );
    // The first append connects the producer: not counted.
    log.append(TOPIC, vec![record.clone()]).await?;
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(3) {
        log.append(TOPIC, vec![record.clone()]).await?;
        n += 1;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Runs the location consumer until it has stored `expected` locations; returns the seconds
/// from its start.
async fn consume(
    log: &DynLog,
    store: &DynLocationStore,
    persons: Arc<PostgresPersonStore>,
    expected: u64,
) -> anyhow::Result<f64> {
    let stored = Arc::new(AtomicU64::new(0));
    let on_stored: OnStored = {
        let stored = stored.clone();
        Arc::new(move |batch: &[Location]| {
            stored.fetch_add(batch.len() as u64, Ordering::Relaxed);
        })
    };
    let directory: DynPersonDirectory = Arc::new(LocalPersons::new(persons));
    let consumer = LocationConsumer {
        log: log.clone(),
        store: store.clone(),
        persons: directory,
        metrics: Arc::new(Metrics::new()),
        on_stored: Some(on_stored),
    };
    let bar = progress_bar(expected, "consume");
    let ticker = {
        let (bar, stored) = (bar.clone(), stored.clone());
        tokio::spawn(async move {
            loop {
                bar.set_position(stored.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    // The consumer as location-consumer runs it, stopped once every ping is in. (Its
    // `catch_up` returns as soon as a poll comes back empty while the lag is unknown, which on
    // Kafka is the case until the group has joined.)
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let running = tokio::spawn(consumer.run(stopped));
    let mut last_progress = (0u64, Instant::now());
    let result = loop {
        let done = stored.load(Ordering::Relaxed);
        if done >= expected {
            break Ok(started.elapsed().as_secs_f64());
        }
        if done > last_progress.0 {
            last_progress = (done, Instant::now());
        } else if last_progress.1.elapsed() > Duration::from_secs(120) {
            break Err(anyhow::anyhow!(
                "the consumer stored {done} of {expected} locations and made no progress for 2 minutes"
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let _ = stop.send(true);
    running.await?;
    ticker.abort();
    bar.finish_and_clear();
    result
}

/// The original consumer's way: one INSERT per message, each its own transaction, into a
/// scratch table shaped like `location` (same columns, constraints and indexes).
async fn insert_per_message(
    client: &tokio_postgres::Client,
    locations: &[Location],
) -> anyhow::Result<f64> {
    client
        .batch_execute(
            "DROP TABLE IF EXISTS location_insert_baseline;
             CREATE TABLE location_insert_baseline (LIKE location INCLUDING ALL);
             ALTER TABLE location_insert_baseline
                 ADD FOREIGN KEY (person_id) REFERENCES person (id);",
        )
        .await?;
    let statement = client
        .prepare(
            "INSERT INTO location_insert_baseline (id, person_id, coordinate, creation_time)
             VALUES ($1, $2, ST_SetSRID(ST_MakePoint($4, $3), 4326), $5)",
        )
        .await?;
    let bar = progress_bar(locations.len() as u64, "insert baseline");
    let started = Instant::now();
    for (i, l) in locations.iter().enumerate() {
        let t: NaiveDateTime = l.creation_time.naive_utc();
        client
            .execute(
                &statement,
                &[&l.id, &l.person_id, &l.latitude, &l.longitude, &t],
            )
            .await?;
        if i % 500 == 0 {
            bar.set_position(i as u64);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    client
        .batch_execute("DROP TABLE location_insert_baseline")
        .await?;
    Ok(locations.len() as f64 / secs)
}

/// The latency stage's load.
#[derive(Debug, Clone, Copy)]
struct LoadShape {
    rate: u32,
    seconds: u64,
    warmup: Duration,
    clients: usize,
    persons: u32,
    origin: (f64, f64),
}

/// Per measured ping, milliseconds from sending.
#[derive(Debug, Default)]
struct LoadResult {
    accepted: Vec<f64>,
    stored: Vec<f64>,
    errors: u64,
}

impl LoadResult {
    fn row(&self, report: &mut String, what: &str, baseline: &LoadResult) -> anyhow::Result<()> {
        let (a50, a99, amax) = Latencies(self.accepted.clone()).p50_p99_max();
        let (s50, s99, smax) = Latencies(self.stored.clone()).p50_p99_max();
        let (_, b_a99, _) = Latencies(baseline.accepted.clone()).p50_p99_max();
        let (_, b_s99, _) = Latencies(baseline.stored.clone()).p50_p99_max();
        writeln!(
            report,
            "| {what} | {} | {a50:.1} ms | {a99:.1} ms | {amax:.1} ms | {s50:.1} ms | {s99:.1} ms | {smax:.1} ms | {} / {} |",
            self.accepted.len(),
            ratio(a99 / b_a99),
            ratio(s99 / b_s99)
        )?;
        Ok(())
    }
}

/// What the senders and the watcher share.
#[derive(Default)]
struct Tracker {
    /// The largest id answered so far. Ids grow with allocation, so a request sent after an
    /// answer gets a larger id than it.
    max_answered: i64,
    /// Requests without an answer yet: request number -> `max_answered` when it was sent, a
    /// bound below its id.
    in_flight: BTreeMap<u64, i64>,
    /// Answered ids not seen stored yet.
    pending: BTreeSet<i64>,
    /// Id -> when a watcher's look first found it stored.
    arrived: HashMap<i64, Instant>,
    /// Id -> (sent, answered, counted: sent after the warm-up).
    answered: HashMap<i64, (Instant, Instant, bool)>,
    errors: u64,
}

impl Tracker {
    /// Every id not seen stored yet is above this.
    fn floor(&self) -> i64 {
        let pending = self.pending.first().map(|id| id - 1);
        let in_flight = self.in_flight.values().min().copied();
        pending
            .into_iter()
            .chain(in_flight)
            .min()
            .unwrap_or(self.max_answered)
    }

    fn saw(&mut self, id: i64, at: Instant) {
        self.arrived.entry(id).or_insert(at);
        self.pending.remove(&id);
    }

    fn settled(&self) -> bool {
        self.in_flight.is_empty() && self.pending.is_empty()
    }

    fn result(&self) -> LoadResult {
        let mut out = LoadResult {
            errors: self.errors,
            ..Default::default()
        };
        for (id, &(sent, answered, counted)) in &self.answered {
            if !counted {
                continue;
            }
            out.accepted.push(ms(answered - sent));
            if let Some(&at) = self.arrived.get(id) {
                out.stored.push(ms(at.saturating_duration_since(sent)));
            }
        }
        out
    }
}

/// Where a watcher looks for stored pings.
enum Watch {
    /// The distributed store: ids above the tracker's floor.
    Postgres(tokio_postgres::Client),
    /// The embedded mode's contact index, which the consumer feeds once SQLite has a batch:
    /// slots are taken in order, so only new slots are read.
    Index(SharedIndex, usize),
}

impl Watch {
    async fn look(&mut self, tracker: &Mutex<Tracker>) -> anyhow::Result<()> {
        match self {
            Watch::Postgres(client) => {
                let floor = lock(tracker).floor();
                let at = Instant::now();
                let rows = client
                    .query(
                        "SELECT id FROM location WHERE id > $1 ORDER BY id",
                        &[&floor],
                    )
                    .await?;
                let mut t = lock(tracker);
                for r in rows {
                    t.saw(r.get(0), at);
                }
            }
            Watch::Index(index, seen) => {
                let at = Instant::now();
                let ids: Vec<i64> = {
                    let index = index
                        .read()
                        .map_err(|_| anyhow::anyhow!("index poisoned"))?;
                    let len = index.len();
                    let ids = (*seen..len).map(|s| index.point(s as u32).id).collect();
                    *seen = len;
                    ids
                };
                let mut t = lock(tracker);
                for id in ids {
                    t.saw(id, at);
                }
            }
        }
        Ok(())
    }
}

fn lock(tracker: &Mutex<Tracker>) -> std::sync::MutexGuard<'_, Tracker> {
    tracker.lock().unwrap_or_else(|e| e.into_inner())
}

/// Posts single pings to `base` at a steady rate from several clients while `watch` looks for
/// them in the store.
/// `last_id` is the largest id stored before.
async fn run_load(
    base: &str,
    load: &LoadShape,
    mut watch: Watch,
    last_id: i64,
) -> anyhow::Result<LoadResult> {
    let tracker = Arc::new(Mutex::new(Tracker {
        max_answered: last_id,
        ..Tracker::default()
    }));
    let sending = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (tracker, sending) = (tracker.clone(), sending.clone());
        tokio::spawn(async move {
            let mut settled_since: Option<Instant> = None;
            loop {
                watch.look(&tracker).await?;
                if !sending.load(Ordering::Acquire) {
                    if lock(&tracker).settled() {
                        return anyhow::Ok(());
                    }
                    let since = *settled_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(60) {
                        bail!("pings answered 202 were not stored within a minute");
                    }
                }
                tokio::time::sleep(WATCH_EVERY).await;
            }
        })
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(load.clients)
        .timeout(Duration::from_secs(30))
        .build()?;
    let total = (load.warmup.as_secs_f64() + load.seconds as f64) * load.rate as f64;
    let total = total as u64;
    let warm = (load.warmup.as_secs_f64() * load.rate as f64) as u64;
    let period = Duration::from_secs_f64(1.0 / load.rate as f64);
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let url = Arc::new(format!("{base}/api/locations"));
    let bar = progress_bar(total, "latency");
    let mut senders = tokio::task::JoinSet::new();
    for c in 0..load.clients {
        let (client, url, tracker, bar, load) = (
            client.clone(),
            url.clone(),
            tracker.clone(),
            bar.clone(),
            *load,
        );
        senders.spawn(async move {
            let mut rng = Rng::new(0x1a7e + c as u64);
            let mut i = c as u64;
            while i < total {
                tokio::time::sleep_until(start + period * i as u32).await;
                let body = format!(
                    "{{\"person_id\":{},\"latitude\":{},\"longitude\":{}}}",
                    1 + rng.below(load.persons as usize),
                    load.origin.0 + rng.unit() * 0.002,
                    load.origin.1 + rng.unit() * 0.002
                );
                {
                    let mut t = lock(&tracker);
                    let bound = t.max_answered;
                    t.in_flight.insert(i, bound);
                }
                let sent = Instant::now();
                let answer = async {
                    let r = client
                        .post(url.as_str())
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await?;
                    let status = r.status();
                    let v: serde_json::Value = r.json().await?;
                    anyhow::Ok((status, v["id"].as_i64()))
                }
                .await;
                let answered = Instant::now();
                let mut t = lock(&tracker);
                t.in_flight.remove(&i);
                match answer {
                    Ok((status, Some(id))) if status == 202 => {
                        t.max_answered = t.max_answered.max(id);
                        if !t.arrived.contains_key(&id) {
                            t.pending.insert(id);
                        }
                        t.answered.insert(id, (sent, answered, i >= warm));
                    }
                    other => {
                        t.errors += 1;
                        tracing::warn!(answer = ?other.map(|(s, _)| s), "a ping was not accepted");
                    }
                }
                drop(t);
                bar.inc(1);
                i += load.clients as u64;
            }
        });
    }
    while let Some(done) = senders.join_next().await {
        done?;
    }
    sending.store(false, Ordering::Release);
    bar.finish_and_clear();
    watcher.await??;
    let result = lock(&tracker).result();
    if result.errors > 0 {
        bail!(
            "{} pings were not accepted during the latency stage",
            result.errors
        );
    }
    Ok(result)
}

/// Posts a few pings and waits until each is stored, so the consumer has joined its group and
/// fetches before anything is timed.
async fn warm_up(client: &reqwest::Client, base: &str, load: &LoadShape) -> anyhow::Result<()> {
    let mut ids = Vec::new();
    for person in 1..=load.persons.min(10) {
        let r = client
            .post(format!("{base}/api/locations"))
            .json(&serde_json::json!({"person_id": person, "latitude": load.origin.0, "longitude": load.origin.1}))
            .send()
            .await?;
        if r.status() != 202 {
            bail!("a warm-up ping was refused: {}", r.status());
        }
        let v: serde_json::Value = r.json().await?;
        ids.push(v["id"].as_i64().context("a 202 without an id")?);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in ids {
        while client
            .get(format!("{base}/api/locations/{id}"))
            .send()
            .await?
            .status()
            != 200
        {
            if Instant::now() > deadline {
                bail!("a warm-up ping was not stored within a minute");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Ok(())
}

async fn wait_ready(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{base}/ready")).send().await {
            if r.status() == 200 {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{base} never became ready");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// location-api and location-consumer in this process, on the benchmark's database and broker;
/// `consumer_config` holds Kafka client properties for the consumer only.
async fn latency_distributed(
    db: &BenchDb,
    broker: &BrokerHandle,
    load: &LoadShape,
    consumer_config: Vec<(String, String)>,
) -> anyhow::Result<LoadResult> {
    let role = |role, config| RoleSettings {
        role,
        listen: "127.0.0.1:0".parse().expect("a socket address"),
        grpc_listen: None,
        store: StoreUrl::Postgres(db.url.clone()),
        log: LogUrl::Kafka {
            brokers: broker.brokers(),
            config,
        },
        upstreams: None,
        web_dir: None,
        cors_origins: Vec::new(),
        engine: Default::default(),
    };
    let api = RoleApp::build(role(Role::LocationApi, Vec::new())).await?;
    let consumer = RoleApp::build(role(Role::LocationConsumer, consumer_config)).await?;
    let http = reqwest::Client::new();
    let base = format!("http://{}", api.local_addr());
    wait_ready(&http, &base).await?;
    wait_ready(&http, &format!("http://{}", consumer.local_addr())).await?;
    let result = async {
        warm_up(&http, &base, load).await?;
        let watcher = db.client().await?;
        let last_id: i64 = watcher
            .query_one("SELECT COALESCE(max(id), 0) FROM location", &[])
            .await?
            .get(0);
        run_load(&base, load, Watch::Postgres(watcher), last_id).await
    }
    .await;
    api.stop().await?;
    consumer.stop().await?;
    result
}

/// The same load on `udaconnect serve` in this process, on a scratch data directory.
async fn latency_embedded(load: &LoadShape) -> anyhow::Result<LoadResult> {
    let dir = std::env::temp_dir().join(format!(
        "udaconnect-bench-distributed-{}",
        std::process::id()
    ));
    if dir.exists() {
        bail!("{} exists: remove it first", dir.display());
    }
    let result = async {
        let app = Application::build(ServeSettings {
            listen: "127.0.0.1:0".parse()?,
            data_dir: dir.join("data"),
            demo: false,
            demo_attendees: 0,
            web_dir: None,
            cors_origins: Vec::new(),
            grpc: GrpcListen::Off,
        })
        .await?;
        let base = format!("http://{}", app.local_addr());
        let http = reqwest::Client::new();
        wait_ready(&http, &base).await?;
        for i in 0..load.persons {
            let r = http
                .post(format!("{base}/api/persons"))
                .json(&serde_json::json!({"first_name": format!("P{i}"), "last_name": "Bench", "company_name": "Bench"}))
                .send()
                .await?;
            if r.status() != 201 {
                bail!("creating a person failed: {}", r.status());
            }
        }
        warm_up(&http, &base, load).await?;
        let index = app.contact_index();
        let seen = index
            .read()
            .map_err(|_| anyhow::anyhow!("index poisoned"))?
            .len();
        let result = run_load(&base, load, Watch::Index(index, seen), 0).await;
        app.stop().await?;
        result
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The attendees the queries ask about: the same choice as `udaconnect bench` for a seed.
fn asked_attendees(args: &BenchDistributedArgs, conference: &Conference) -> Vec<i64> {
    attendees_to_ask(args.seed, args.queries, conference)
}

fn all_rows(rows: &dyn Rows) -> Vec<Point> {
    let mut out = Vec::with_capacity(rows.len());
    rows.read(0, rows.len(), &mut out);
    out
}

async fn queries(
    args: &BenchDistributedArgs,
    conference: &Conference,
    store: &DynLocationStore,
    admin: &tokio_postgres::Client,
    stored: usize,
    vacuum_s: f64,
    report: &mut String,
) -> anyhow::Result<()> {
    let engine = StoreEngine {
        store: store.clone(),
    };
    let scan = ScanEngine {
        store: store.clone(),
    };
    let people = asked_attendees(args, conference);
    let checked = &people[..args.baseline_queries.min(people.len())];
    let start = conference.config.start;
    let windows = [
        ("1 day", 1),
        ("3 days", 3.min(conference.config.days as i64)),
    ];
    let total = (windows.len() * 2 * (people.len() + checked.len()) + 2 * checked.len()) as u64;
    let bar = progress_bar(total, "queries");
    writeln!(
        report,
        "### Connection queries on PostGIS, {stored} locations stored\n\n\
         {} random attendees per query kind (the same as `udaconnect bench` asks), timed in this process as connection-api \
         runs them (`StoreEngine`: one `near` statement on the geography GiST index, then the exact predicate). \
         Baseline: `ScanEngine` on the same database (reads the whole window, then the same predicate) on the first {}; \
         each of its answers is checked equal to `StoreEngine`'s. `VACUUM ANALYZE location` ran first ({vacuum_s:.1} s).\n\n\
         | query | window | p50 | p99 | baseline p50 | speed-up (p50) |\n| --- | --- | --- | --- | --- | --- |",
        people.len(),
        checked.len()
    )?;
    for (label, days) in windows {
        let window = Window {
            start,
            end: start + days * DAY_US,
        };
        let q = |p: i64| ConnectionQuery {
            person_id: p,
            window,
            distance_m: 5.0,
            max_time_gap_us: Some(60_000_000),
        };
        let mut fast = Vec::new();
        for &p in &people {
            let t = Instant::now();
            std::hint::black_box(engine.connections(q(p)).await?.len());
            fast.push(ms(t.elapsed()));
            bar.inc(1);
        }
        let mut slow = Vec::new();
        for &p in checked {
            let t = Instant::now();
            let scanned = scan.connections(q(p)).await?;
            slow.push(ms(t.elapsed()));
            let indexed = engine.connections(q(p)).await?;
            if all_rows(scanned.as_ref()) != all_rows(indexed.as_ref()) {
                bail!("StoreEngine and ScanEngine disagree on the connections of person {p} ({label})");
            }
            bar.inc(1);
        }
        query_row(
            report,
            "connection, distance 5 m, max_time_gap 60 s",
            label,
            fast,
            slow,
        )?;
        let cq = |p: i64| ContactQuery {
            person_id: p,
            window,
            distance_m: 5.0,
            max_time_gap_us: 60_000_000,
            min_duration_us: 120_000_000,
        };
        let mut fast = Vec::new();
        for &p in &people {
            let t = Instant::now();
            std::hint::black_box(engine.contacts(cq(p)).await?.len());
            fast.push(ms(t.elapsed()));
            bar.inc(1);
        }
        let mut slow = Vec::new();
        for &p in checked {
            let t = Instant::now();
            let scanned = scan.contacts(cq(p)).await?;
            slow.push(ms(t.elapsed()));
            if scanned != engine.contacts(cq(p)).await? {
                bail!(
                    "StoreEngine and ScanEngine disagree on the contacts of person {p} ({label})"
                );
            }
            bar.inc(1);
        }
        query_row(
            report,
            "contacts summary, 5 m, gap 60 s, min 120 s",
            label,
            fast,
            slow,
        )?;
    }

    // The original semantics: no time condition, first day.
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
    let (mut rows, mut secs, mut sizes, mut fast) = (0usize, 0.0, Vec::new(), Vec::new());
    let (mut base_rows, mut base_secs, mut slow) = (0usize, 0.0, Vec::new());
    for &p in checked {
        let t = Instant::now();
        let indexed = engine.connections(q(p)).await?;
        let d = t.elapsed();
        secs += d.as_secs_f64();
        fast.push(ms(d));
        rows += indexed.len();
        sizes.push(indexed.len() as f64);
        bar.inc(1);
        let t = Instant::now();
        let scanned = scan.connections(q(p)).await?;
        let d = t.elapsed();
        base_secs += d.as_secs_f64();
        slow.push(ms(d));
        base_rows += scanned.len();
        if all_rows(scanned.as_ref()) != all_rows(indexed.as_ref()) {
            bail!("StoreEngine and ScanEngine disagree on the connections of person {p} (original semantics)");
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let largest = sizes.iter().copied().fold(0.0, f64::max);
    let (size_p50, _) = Latencies(sizes).p50_p99();
    let (f50, f99) = Latencies(fast).p50_p99();
    let (s50, s99) = Latencies(slow).p50_p99();
    let (rate, base_rate) = (rows as f64 / secs, base_rows as f64 / base_secs);
    writeln!(
        report,
        "\n### The original semantics (no time condition), 1-day window, {} attendees\n\n\
         | figure | StoreEngine (PostGIS) | baseline: ScanEngine | ratio |\n| --- | --- | --- | --- |\n\
         | answer locations per second | {:.0} k/s | {:.0} k/s | {} |\n\
         | latency p50 / p99 | {f50:.1} / {f99:.1} ms | {s50:.1} / {s99:.1} ms | {} (p50) |\n\
         | answer size, median / largest | {size_p50:.0} / {largest:.0} locations | | |\n",
        checked.len(),
        rate / 1e3,
        base_rate / 1e3,
        ratio(rate / base_rate),
        ratio(s50 / f50)
    )?;

    // The plan of the statement behind one connection query.
    if let Some(&p) = people.first() {
        let plan = explain_near(admin, p, start, start + DAY_US).await?;
        writeln!(
            report,
            "### Plan of the `near` statement (person {p}, 1 day, gap 60 s)\n\n\
             `EXPLAIN (ANALYZE, BUFFERS)` with the values of one query:\n\n```text\n{}\n```\n",
            plan.join("\n")
        )?;
    }
    Ok(())
}

fn query_row(
    report: &mut String,
    what: &str,
    window: &str,
    fast: Vec<f64>,
    slow: Vec<f64>,
) -> anyhow::Result<()> {
    let (f50, f99) = Latencies(fast).p50_p99();
    let (s50, _) = Latencies(slow).p50_p99();
    writeln!(
        report,
        "| {what} | {window} | {f50:.1} ms | {f99:.1} ms | {s50:.1} ms | {} |",
        ratio(s50 / f50)
    )?;
    Ok(())
}

async fn explain_near(
    client: &tokio_postgres::Client,
    person: i64,
    start: i64,
    end: i64,
) -> anyhow::Result<Vec<String>> {
    let t = |us: i64| from_micros(us).naive_utc();
    // The store's search radius for 5 m: the distance with 0.1% and half a metre of slack.
    let radius = 5.0f64 * 1.001 + 0.5;
    let gap = 60_000_000i64;
    let rows = client
        .query(
            &format!("EXPLAIN (ANALYZE, BUFFERS) {}", near_sql(true)),
            &[&person, &t(start), &t(end), &radius, &gap],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// The benchmark's own database on the given server.
struct BenchDb {
    admin_url: String,
    name: String,
    url: String,
}

impl BenchDb {
    async fn create(admin_url: &str) -> anyhow::Result<BenchDb> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let name = format!(
            "udc_bench_{:x}",
            Rng::new(nanos ^ u64::from(std::process::id())).next_u64() & 0xffff_ffff_ffff
        );
        let url = with_database(admin_url, &name)?;
        let db = BenchDb {
            admin_url: admin_url.to_string(),
            name,
            url,
        };
        let (client, conn) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
            .await
            .with_context(|| {
                format!(
                    "PostgreSQL does not answer at --store {}",
                    redacted(admin_url)
                )
            })?;
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {}", db.name))
            .await
            .context("failed to create the benchmark's database")?;
        Ok(db)
    }

    async fn client(&self) -> anyhow::Result<tokio_postgres::Client> {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        Ok(client)
    }

    async fn drop_database(&self) -> anyhow::Result<()> {
        let (client, conn) =
            tokio_postgres::connect(&self.admin_url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await?;
        Ok(())
    }
}

/// `url` naming database `name` instead of its own.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let Some(scheme_end) = base.find("://") else {
        bail!("--store: give a URL, postgres://user@host:port/db");
    };
    let authority_end = base[scheme_end + 3..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + 3 + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

fn redacted(url: &str) -> String {
    StoreUrl::Postgres(url.to_string()).to_string()
}

/// The broker the benchmark uses: its own, or one it was given.
enum BrokerHandle {
    Own(Broker),
    External(String),
}

impl BrokerHandle {
    fn brokers(&self) -> String {
        match self {
            BrokerHandle::Own(b) => format!("127.0.0.1:{}", b.port),
            BrokerHandle::External(b) => b.clone(),
        }
    }

    fn describe(&self) -> String {
        match self {
            BrokerHandle::Own(_) => {
                "tansu (Kafka protocol), one broker, in-memory storage, started for the run".into()
            }
            BrokerHandle::External(b) => format!("Kafka at {b}"),
        }
    }
}

/// A `tansu` broker on a free loopback port, in memory, killed when dropped.
struct Broker {
    child: Child,
    port: u16,
    log_path: PathBuf,
}

impl Broker {
    async fn start() -> anyhow::Result<Broker> {
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

fn tansu() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin")))
        .map(|d| d.join("tansu"))
        .find(|c| c.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_replace_the_urls_own() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x").unwrap(),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgresql://h:5432", "x").unwrap(),
            "postgresql://h:5432/x"
        );
        assert!(with_database("host=h dbname=d", "x").is_err());
    }

    #[test]
    fn the_floor_stays_below_every_id_not_seen() {
        let mut t = Tracker {
            max_answered: 100,
            ..Default::default()
        };
        assert_eq!(t.floor(), 100);
        t.in_flight.insert(1, 100);
        t.pending.insert(98);
        assert_eq!(t.floor(), 97);
        t.saw(98, Instant::now());
        assert_eq!(t.floor(), 100);
        t.in_flight.clear();
        t.max_answered = 120;
        assert_eq!(t.floor(), 120);
    }
}

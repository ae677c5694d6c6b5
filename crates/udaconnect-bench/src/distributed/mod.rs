//! `bench-distributed`: the distributed mode measured on this machine, on a broker speaking
//! the Kafka protocol and a fresh PostgreSQL/PostGIS database, with the real roles running in
//! this process. Each figure stands next to a baseline measured in the same run. The
//! distributed mode's figures in docs/benchmarks.md come from here.
//!
//! 1. Ingest ([`ingest`]): the conference produced to `location`, then the location consumer
//!    storing it in PostGIS; against one INSERT per message, each its own transaction, as the
//!    original did.
//! 2. End-to-end latency ([`latency`]): single pings posted to location-api while a watcher
//!    polls the database for their arrival; against the same load on the embedded mode.
//! 3. Queries ([`queries`]): connection-api's engine on PostGIS; against a scan of the whole
//!    window.
//!
//! `--latency-only` runs the light-load part of 2 alone, in seconds: the figure for the target
//! `p99 <= 50 ms` from ping to stored, with the consumer's default fetch settings and with a
//! shorter fetch wait, next to the machine's load average (other work on the machine shows in
//! the tail).
//!
//! The benchmark's own database and broker are in [`postgres`] and [`broker`].

mod broker;
mod ingest;
mod latency;
mod postgres;
mod queries;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use udaconnect::progress;
use udaconnect_core::model::Location;
use udaconnect_core::ports::{DynLocationStore, DynLog, PersonStore};
use udaconnect_core::record::{LOCATION_DLQ_TOPIC, LOCATION_TOPIC};
use udaconnect_core::time::from_micros;
use udaconnect_log::{KafkaLog, KafkaOptions};
use udaconnect_sim::Conference;
use udaconnect_store::{Postgres, PostgresLocationStore, PostgresPersonStore};

use self::broker::BrokerHandle;
use self::latency::LoadShape;
use self::postgres::{redacted, BenchDb};
use crate::common::{machine, ConferenceArgs};

/// Persons the latency stage's pings name (the embedded baseline creates as many).
const LATENCY_PERSONS: u32 = 100;
/// The fetch wait the light-load runs compare with the consumer's default.
const SHORT_FETCH_WAIT_MS: &str = "2";

#[derive(Args, Debug)]
pub struct BenchDistributedArgs {
    /// PostgreSQL server with PostGIS: a fresh database `udc_bench_<random>` is created on it
    /// for the run (the URL's own database is only used to create and drop it).
    #[arg(long, env = "UDACONNECT_BENCH_STORE", default_value = postgres::LOCAL_SERVER)]
    pub store: String,
    /// Kafka bootstrap brokers (`host:port[,host:port]`) to use instead of starting a broker
    /// for the run; the `location` topic and the `location-consumer` group must be new there.
    /// Without it, `tansu` (PATH or ~/.cargo/bin; `scripts/kafka install`) is started in memory
    /// on a free port, so every run starts empty.
    #[arg(long, env = "UDACONNECT_BENCH_BROKERS")]
    pub brokers: Option<String>,
    #[command(flatten)]
    pub conference: ConferenceArgs,
    /// Pings stored by the one-INSERT-per-message baseline.
    #[arg(
        long,
        env = "UDACONNECT_BENCH_INSERT_BASELINE",
        default_value_t = 20_000
    )]
    pub insert_baseline: usize,
    /// Single pings per second posted in the latency stage.
    #[arg(long, env = "UDACONNECT_BENCH_LATENCY_RATE", default_value_t = 500)]
    pub latency_rate: u32,
    /// Seconds of the latency stage's load (after one second of warm-up).
    #[arg(long, env = "UDACONNECT_BENCH_LATENCY_SECONDS", default_value_t = 10)]
    pub latency_seconds: u64,
    /// Concurrent clients sharing the latency stage's load.
    #[arg(long, env = "UDACONNECT_BENCH_LATENCY_CLIENTS", default_value_t = 16)]
    pub latency_clients: usize,
    /// Single pings per second from one client in the latency stage's light-load runs: the
    /// load the target `p99 <= 50 ms` is for.
    #[arg(long, env = "UDACONNECT_BENCH_LIGHT_RATE", default_value_t = 50)]
    pub light_rate: u32,
    /// Only the light-load latency runs (no ingest, no queries): the consumer's default fetch
    /// settings, then `fetch.wait.max.ms=2`, then the embedded mode at the same load.
    #[arg(long, env = "UDACONNECT_BENCH_LATENCY_ONLY")]
    pub latency_only: bool,
    /// Keep the benchmark's database afterwards (its URL is printed).
    #[arg(long, env = "UDACONNECT_BENCH_KEEP")]
    pub keep: bool,
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
    let conference = args.conference.plan();
    let broker = match &args.brokers {
        Some(b) => BrokerHandle::External(b.clone()),
        None => BrokerHandle::Own(broker::Broker::start().await?),
    };
    let db = BenchDb::create(&args.store).await?;
    let mut report = String::new();
    let stages = Stages {
        args: &args,
        conference: &conference,
        broker: &broker,
        db: &db,
    };
    let result = run_stages(&stages, &mut report).await;
    if args.keep {
        eprintln!("kept the benchmark's database: {}", redacted(&db.url));
    } else if let Err(e) = db.drop_database().await {
        eprintln!("warning: could not drop database {}: {e:#}", db.name);
    }
    drop(broker);
    result?;
    args.conference.publish(&report)
}

/// What every stage of a run works with.
#[derive(Clone, Copy)]
struct Stages<'a> {
    args: &'a BenchDistributedArgs,
    conference: &'a Conference,
    broker: &'a BrokerHandle,
    db: &'a BenchDb,
}

async fn run_stages(stages: &Stages<'_>, report: &mut String) -> anyhow::Result<()> {
    let Stages {
        args,
        conference,
        broker,
        db,
    } = *stages;
    let config = &conference.config;
    let locations_asked = args.conference.locations;
    // Connecting runs the migrations: the schema, PostGIS included.
    let pg = Postgres::connect(&db.url)
        .await
        .context("failed to open the benchmark's database")?;
    let admin = db.client().await?;

    // The conference's persons.
    let person_store = Arc::new(PostgresPersonStore::new(&pg));
    person_store.import(conference.persons()).await?;
    let store: DynLocationStore = Arc::new(PostgresLocationStore::new(&pg));
    let database = postgres::describe(&admin).await?;
    if args.latency_only {
        let kafka = KafkaLog::connect(&broker.brokers(), KafkaOptions::default())?;
        ingest::create_topics(&kafka, &[LOCATION_TOPIC, LOCATION_DLQ_TOPIC]).await?;
        return light_latency(stages, &database, report).await;
    }
    writeln!(
        report,
        "## Distributed mode, {}\n\n\
         Machine: {}. {}; broker: {}. \
         Everything (broker, database, roles, clients) on this machine.\n\n\
         Command: `udaconnect bench-distributed --locations {} --queries {} --baseline-queries {}`.\n",
        args.conference.title(conference),
        machine(),
        database,
        broker.describe(),
        locations_asked,
        args.conference.queries,
        args.conference.baseline_queries
    )?;

    // Every ping as the ingest path would assign it: ids 1, 2, ... in time order.
    let bar = progress::bar(locations_asked, "simulate");
    let mut locations = Vec::with_capacity(locations_asked as usize + 1024);
    for (i, p) in conference.pings().enumerate() {
        locations.push(Location {
            id: i as i64 + 1,
            person_id: p.person_id,
            latitude: p.latitude,
            longitude: p.longitude,
            creation_time: from_micros(p.t),
            accuracy_m: None,
            telemetry: Default::default(),
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
    ingest::create_topics(&kafka, &[LOCATION_TOPIC, LOCATION_DLQ_TOPIC]).await?;
    let log: DynLog = kafka.clone();

    // 1. Produce: appends of PRODUCE_CHUNK records, a few in flight; each returns once durable.
    // Sealed as location-api seals them, with keys from the key store.
    let key_store = || -> udaconnect_core::ports::DynKeyStore {
        Arc::new(udaconnect_store::PostgresKeyStore::new(&pg))
    };
    let sealing_keys = udaconnect_server::keys::Keyring::new(key_store());
    let produce_rate = ingest::produce(&log, &sealing_keys, &locations).await?;
    let single_rate = ingest::single_append_rate(&broker.brokers()).await?;

    // 1. Consume: the location consumer, from the first record to the last stored, with a
    // keyring of its own, as the location-consumer role has.
    let keys = Arc::new(udaconnect_server::keys::Keyring::new(key_store()));
    let consume_s = ingest::consume(&log, &store, person_store.clone(), keys, n as u64).await?;
    let stored: i64 = admin
        .query_one("SELECT count(*) FROM location", &[])
        .await?
        .get(0);
    if stored != n as i64 {
        bail!("the consumer stored {stored} locations, expected {n}");
    }
    let insert_rate =
        ingest::insert_per_message(&admin, &locations[..args.insert_baseline.min(n)]).await?;
    writeln!(
        report,
        "### Ingest: Kafka -> PostGIS\n\n| what | figure | baseline (same run) | ratio |\n| --- | --- | --- | --- |"
    )?;
    writeln!(
        report,
        "| produce to `location`: each ping sealed with its person's key, `KafkaLog::append` of {} records, {} in flight, acks=all (idempotent producer) | {produce_rate:.0} records/s | one record per append, each awaited (acks=all, linger 0): {single_rate:.0} records/s | {} |",
        ingest::PRODUCE_CHUNK,
        ingest::PRODUCE_IN_FLIGHT,
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
    let load = LoadShape {
        rate: args.latency_rate.max(1),
        seconds: args.latency_seconds.max(1),
        warmup: Duration::from_secs(1),
        clients: args.latency_clients.max(1),
        persons: LATENCY_PERSONS.min(config.attendees),
        origin: (config.origin.latitude, config.origin.longitude),
    };
    let light = LoadShape {
        rate: args.light_rate.max(1),
        clients: 1,
        ..load
    };
    let distributed = latency::distributed(db, broker, &load, Vec::new()).await?;
    let distributed_light = latency::distributed(db, broker, &light, Vec::new()).await?;
    let embedded = latency::embedded(&load).await?;
    let embedded_light = latency::embedded(&light).await?;
    writeln!(
        report,
        "### End-to-end ingest latency: single pings at a steady rate for {} s (after 1 s of warm-up)\n\n\
         *202* is the answer to `POST /api/locations` (durable in the log); *stored* is from sending the request until a \
         query sees the ping (polled every {} ms). Ratios: p99 against the embedded mode's p99 at the same load.\n\n\
         | mode | load | pings | 202 p50 | 202 p99 | 202 max | stored p50 | stored p99 | stored max | ratio 202 / stored |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        load.seconds,
        latency::WATCH_EVERY.as_millis()
    )?;
    let distributed_mode = "distributed: location-api -> Kafka -> location-consumer -> PostGIS (`SELECT` on `location`), default client settings";
    let embedded_mode = "baseline: embedded `udaconnect serve` -> log -> consumer -> SQLite and the contact index (index read)";
    distributed.row(report, distributed_mode, &load, &embedded)?;
    embedded.row(report, embedded_mode, &load, &embedded)?;
    distributed_light.row(report, distributed_mode, &light, &embedded_light)?;
    embedded_light.row(report, embedded_mode, &light, &embedded_light)?;
    writeln!(report)?;

    // 3. Queries.
    queries::run(
        &args.conference,
        conference,
        &store,
        &admin,
        n,
        vacuum_s,
        report,
    )
    .await?;
    drop(store);
    pg.close();
    Ok(())
}

/// The machine's load average over 1, 5 and 15 minutes, as `/proc/loadavg` gives it.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// `--latency-only`: single pings from one client at `--light-rate`, until stored, on the
/// distributed roles with the consumer's default fetch settings and with a shorter fetch
/// wait, and on the embedded mode; the load average before and after.
async fn light_latency(
    stages: &Stages<'_>,
    database: &str,
    report: &mut String,
) -> anyhow::Result<()> {
    let (args, broker, db) = (stages.args, stages.broker, stages.db);
    let config = &stages.conference.config;
    let light = LoadShape {
        rate: args.light_rate.max(1),
        seconds: args.latency_seconds.max(1),
        warmup: Duration::from_secs(1),
        clients: 1,
        persons: LATENCY_PERSONS.min(config.attendees),
        origin: (config.origin.latitude, config.origin.longitude),
    };
    let load_before = load_average();
    let default = latency::distributed(db, broker, &light, Vec::new()).await?;
    let short_wait = vec![(
        "fetch.wait.max.ms".to_string(),
        SHORT_FETCH_WAIT_MS.to_string(),
    )];
    let short = latency::distributed(db, broker, &light, short_wait).await?;
    let embedded = latency::embedded(&light).await?;
    let load_after = load_average();
    writeln!(
        report,
        "## Distributed mode: latency under light load\n\n\
         Machine: {}. {database}; broker: {}. Everything on this machine. Load average (1, 5, \
         15 min): {load_before} before, {load_after} after.\n\n\
         Command: `udaconnect bench-distributed --latency-only --light-rate {} --latency-seconds {}`.\n\n\
         Single pings from one client for {} s (after 1 s of warm-up). *202* is the answer to \
         `POST /api/locations`; *stored* is from sending the request until a query on the \
         location store sees the ping (polled every {} ms). Ratios: p99 against the embedded \
         mode's p99.\n\n\
         | mode | load | pings | 202 p50 | 202 p99 | 202 max | stored p50 | stored p99 | stored max | ratio 202 / stored |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        machine(),
        broker.describe(),
        light.rate,
        light.seconds,
        light.seconds,
        latency::WATCH_EVERY.as_millis()
    )?;
    default.row(
        report,
        "distributed, the consumer's default fetch settings",
        &light,
        &embedded,
    )?;
    short.row(
        report,
        &format!("distributed, consumer `fetch.wait.max.ms={SHORT_FETCH_WAIT_MS}`"),
        &light,
        &embedded,
    )?;
    embedded.row(
        report,
        "baseline: embedded `udaconnect serve`",
        &light,
        &embedded,
    )?;
    writeln!(report)?;
    Ok(())
}

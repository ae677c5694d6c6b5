//! Ingest into the distributed mode: the conference produced to the `location` topic, the
//! location consumer storing it in PostGIS, and their baselines (one record per append; one
//! INSERT per message).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use udaconnect::progress;
use udaconnect_core::clock::{Clock, SystemClock};
use udaconnect_core::model::Location;
use udaconnect_core::ports::{DynLocationStore, DynLog, Log};
use udaconnect_core::record::{self, LOCATION_TOPIC};
use udaconnect_core::time::from_micros;
use udaconnect_log::{KafkaLog, KafkaOptions};
use udaconnect_server::consume::consumer::LocationConsumer;
use udaconnect_server::feed::OnStored;
use udaconnect_server::keys::Keyring;
use udaconnect_server::metrics::Metrics;
use udaconnect_server::persons::{DynPersonDirectory, LocalPersons};
use udaconnect_store::PostgresPersonStore;

use crate::common::InFlight;

/// Records per append while producing the conference, and appends in flight.
pub const PRODUCE_CHUNK: usize = 10_000;
pub const PRODUCE_IN_FLIGHT: usize = 4;

/// Creates the topics before anything is timed, waiting for a broker that is still starting.
pub async fn create_topics(log: &KafkaLog, topics: &[&str]) -> anyhow::Result<()> {
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

/// Produces `locations` as location-api does: each sealed with its person's key (made on a
/// person's first ping, as ingest makes it), so the rate includes sealing.
pub async fn produce(log: &DynLog, keys: &Keyring, locations: &[Location]) -> anyhow::Result<f64> {
    let bar = progress::bar(locations.len() as u64, "produce");
    let mut in_flight = InFlight::new(PRODUCE_IN_FLIGHT);
    let started = Instant::now();
    for chunk in locations.chunks(PRODUCE_CHUNK) {
        let now = SystemClock.now();
        let persons: Vec<i64> = chunk.iter().map(|l| l.person_id).collect();
        let sealing = keys.for_sealing(LOCATION_TOPIC, &persons).await?;
        let records = chunk
            .iter()
            .map(|l| sealing.seal(l, None, now))
            .collect::<udaconnect_core::Result<Vec<_>>>()?;
        let (log, bar, len) = (log.clone(), bar.clone(), chunk.len() as u64);
        let append = async move {
            log.append(LOCATION_TOPIC, records).await?;
            bar.inc(len);
            Ok(())
        };
        in_flight.spawn(append).await?;
    }
    in_flight.finish().await?;
    let secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok(locations.len() as f64 / secs)
}

/// One record per append, each awaited, with no linger: the rate of a producer that sends and
/// flushes every message, as the original's did. On a topic of its own, which the consumer
/// never reads.
pub async fn single_append_rate(brokers: &str) -> anyhow::Result<f64> {
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
            accuracy_m: None,
            telemetry: Default::default(),
        },
        None,
        SystemClock.now(),
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
pub async fn consume(
    log: &DynLog,
    store: &DynLocationStore,
    persons: Arc<PostgresPersonStore>,
    keys: Arc<Keyring>,
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
        on_stored: Some(on_stored),
        ..LocationConsumer::new(
            log.clone(),
            store.clone(),
            directory,
            keys,
            Arc::new(Metrics::new()),
        )
    };
    let bar = progress::bar(expected, "consume");
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
pub async fn insert_per_message(
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
    let bar = progress::bar(locations.len() as u64, "insert baseline");
    let started = Instant::now();
    for (i, l) in locations.iter().enumerate() {
        let t = l.creation_time.naive_utc();
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

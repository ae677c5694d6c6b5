//! Retention on PostgreSQL while ingest runs: the figure in docs/privacy.md. Not part of the
//! suite (it loads a large table); run it with `UDACONNECT_RETENTION_PINGS=1000000 cargo test
//! -p udaconnect-store --test postgres_retention -- --ignored --nocapture`. That the removal
//! is right is the store suite's (`retention_removes_pings_before_the_cut_in_batches`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use udaconnect_core::model::Location;
use udaconnect_core::ports::{LocationStore, PersonStore};
use udaconnect_core::time::from_micros;
use udaconnect_store::{Postgres, PostgresLocationStore, PostgresPersonStore};
use udaconnect_testkit::postgres::TestDb;
use udaconnect_testkit::store_suite::persons;

const PERSONS: i64 = 1000;
const INGEST_BATCH: usize = 500;
const S: i64 = 1_000_000;
/// The job's batch (`udaconnect_server::retention::STORE_BATCH`; the store crate does not
/// depend on the server).
const BATCH: usize = 10_000;

/// `n` pings from id `first`, a second apart per person, from `t0`.
fn pings(first: i64, n: usize, t0: i64) -> Vec<Location> {
    (0..n as i64)
        .map(|i| Location {
            id: first + i,
            person_id: 1 + i % PERSONS,
            latitude: 48.85 + (i % 97) as f64 * 1e-5,
            longitude: 2.35 + (i % 89) as f64 * 1e-5,
            creation_time: from_micros(t0 + (i / PERSONS) * S),
            accuracy_m: None,
            telemetry: Default::default(),
        })
        .collect()
}

/// Ingest in batches of [`INGEST_BATCH`] until `stop`: pings stored and the slowest batch.
async fn ingest(
    store: Arc<PostgresLocationStore>,
    first: i64,
    stop: Arc<AtomicBool>,
) -> (u64, Duration) {
    let (mut id, mut slowest) = (first, Duration::ZERO);
    while !stop.load(Ordering::Relaxed) {
        let batch = pings(id, INGEST_BATCH, 2_000_000_000 * S);
        let t = Instant::now();
        store.upsert(&batch).await.unwrap();
        slowest = slowest.max(t.elapsed());
        id += INGEST_BATCH as i64;
    }
    ((id - first) as u64, slowest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn removal_rate_while_ingest_runs() {
    let n: usize = std::env::var("UDACONNECT_RETENTION_PINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let db = TestDb::new().await;
    let pg = Postgres::connect(&db.url).await.unwrap();
    PostgresPersonStore::new(&pg)
        .import(persons(1..=PERSONS))
        .await
        .unwrap();
    let store = Arc::new(PostgresLocationStore::new(&pg));
    let old = pings(1, n, 1_600_000_000 * S);
    for chunk in old.chunks(10_000) {
        store.upsert(chunk).await.unwrap();
    }
    db.client()
        .await
        .batch_execute("VACUUM ANALYZE location")
        .await
        .unwrap();

    // Ingest alone, for as long as the removal will take about.
    let stop = Arc::new(AtomicBool::new(false));
    let alone = tokio::spawn(ingest(store.clone(), 100_000_000, stop.clone()));
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    let (alone_n, alone_slowest) = alone.await.unwrap();

    // Ingest while every old ping is removed, as the job does it.
    let stop = Arc::new(AtomicBool::new(false));
    let during = tokio::spawn(ingest(store.clone(), 200_000_000, stop.clone()));
    let started = Instant::now();
    let (mut removed, mut slowest_delete) = (0, Duration::ZERO);
    loop {
        let t = Instant::now();
        let k = store.delete_before(1_700_000_000 * S, BATCH).await.unwrap();
        slowest_delete = slowest_delete.max(t.elapsed());
        removed += k;
        if k < BATCH as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (during_n, during_slowest) = during.await.unwrap();
    assert_eq!(removed, n as u64);
    println!(
        "{n} old pings removed in {:.1} s: {:.0} rows/s (slowest statement {} ms); ingest \
         alone {:.0} pings/s (slowest batch of {INGEST_BATCH} {} ms), during the removal \
         {:.0} pings/s (slowest batch {} ms)",
        took.as_secs_f64(),
        removed as f64 / took.as_secs_f64(),
        slowest_delete.as_millis(),
        alone_n as f64 / 5.0,
        alone_slowest.as_millis(),
        during_n as f64 / took.as_secs_f64(),
        during_slowest.as_millis(),
    );
}

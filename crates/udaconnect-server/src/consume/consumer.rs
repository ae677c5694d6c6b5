//! location-consumer: reads the `location` log, stores each location, sends records it cannot
//! store to `location.dlq` with the reason, and commits its position only after both are
//! durable. Writes are upserts keyed by the location id, so a batch delivered twice (after a
//! crash between store and commit) has no second effect.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::watch;
use udaconnect_core::ports::{Consumed, DynLocationStore, DynLog, StartFrom};
use udaconnect_core::record::{DLQ_REASON_HEADER, LOCATION_DLQ_TOPIC};
use udaconnect_core::Result;

use crate::consume::health::ConsumerHealth;
use crate::consume::poll::{self, Batches, Commit, Reader, Until};
use crate::consume::sort_batch;
use crate::feed::{hand_over, hand_over_erased, OnErased, OnStored};
use crate::keys::Keyring;
use crate::metrics::Metrics;
use crate::persons::DynPersonDirectory;

pub const CONSUMER_GROUP: &str = "location-consumer";
/// Records taken per poll: large batches amortise the store's fsync.
pub const CONSUMER_BATCH: usize = 8192;

/// The consumer position is committed at most this often while records keep coming, and as
/// soon as the log goes quiet. Each commit costs two fsyncs; the writes it covers are durable
/// before it, and replaying them after a crash is harmless because writes are idempotent.
const COMMIT_EVERY: Duration = Duration::from_millis(500);

pub struct LocationConsumer {
    pub log: DynLog,
    pub store: DynLocationStore,
    pub persons: DynPersonDirectory,
    /// Opens sealed records.
    pub keys: Arc<Keyring>,
    pub metrics: Arc<Metrics>,
    /// Handed every batch once it is stored (in one process: the contact index, the live view).
    pub on_stored: Option<OnStored>,
    /// Handed every person the log says was erased, once their pings are deleted from the
    /// store (in one process: the contact index).
    pub on_erased: Option<OnErased>,
    /// Told after every poll and stored batch, for `/ready` (see [`ConsumerHealth`]).
    pub health: Option<Arc<ConsumerHealth>>,
}

impl LocationConsumer {
    /// A consumer that tells no one of what it stores and reports to no health check.
    pub fn new(
        log: DynLog,
        store: DynLocationStore,
        persons: DynPersonDirectory,
        keys: Arc<Keyring>,
        metrics: Arc<Metrics>,
    ) -> Self {
        LocationConsumer {
            log,
            store,
            persons,
            keys,
            metrics,
            on_stored: None,
            on_erased: None,
            health: None,
        }
    }

    fn reader(until: Until, wait: Duration) -> Reader {
        Reader {
            topic: udaconnect_core::record::LOCATION_TOPIC,
            group: CONSUMER_GROUP.to_string(),
            start: StartFrom::Earliest,
            batch: CONSUMER_BATCH,
            wait,
            linger: true,
            commit: Commit::Every(COMMIT_EVERY),
            until,
        }
    }

    /// Consumes until `shutdown` turns true, then commits what it stored and returns.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let reader = Self::reader(Until::Stopped, Duration::from_millis(500));
        let log = self.log.clone();
        let mut writer = StoreWriter {
            consumer: self,
            handled: 0,
        };
        // A read until stopped retries every failure; it ends without an error.
        let _ = poll::read(&log, &reader, &mut writer, shutdown).await;
    }

    /// Consumes until the group has caught up with the end of the log, then returns the
    /// number of records handled: for `import`, which runs without a server.
    pub async fn catch_up(self) -> Result<u64> {
        let (_keep, never) = watch::channel(false);
        let reader = Self::reader(Until::CaughtUp, Duration::from_millis(100));
        let log = self.log.clone();
        let mut writer = StoreWriter {
            consumer: self,
            handled: 0,
        };
        poll::read(&log, &reader, &mut writer, never).await?;
        Ok(writer.handled)
    }
}

/// What location-consumer does with a batch: store the pings, hand them on, dead-letter the
/// rest.
struct StoreWriter {
    consumer: LocationConsumer,
    handled: u64,
}

#[async_trait]
impl Batches for StoreWriter {
    async fn handle(&mut self, batch: &[Consumed]) -> Result<()> {
        let c = &self.consumer;
        let started = Instant::now();
        let sorted = sort_batch(batch, &c.persons, &c.keys).await?;
        for r in &sorted.rejected {
            tracing::warn!(
                partition = r.header_str("dlq_source_partition").unwrap_or(""),
                offset = r.header_str("dlq_source_offset").unwrap_or(""),
                reason = r.header_str(DLQ_REASON_HEADER).unwrap_or(""),
                "record sent to the dead-letter topic"
            );
        }
        c.store.upsert(&sorted.locations).await?;
        for &person in &sorted.erased {
            // Deleted by the erasure already; pings this consumer stored since (it was
            // behind) go now.
            c.store.delete_person(person).await?;
        }
        hand_over_erased(&c.on_erased, sorted.erased).await?;
        let (stored, dlq) = (sorted.locations.len(), sorted.rejected.len());
        c.metrics.axes_repaired("log", sorted.axes_repaired);
        if let Some(on_stored) = &c.on_stored {
            hand_over(on_stored, sorted.locations).await?;
        }
        c.log.append(LOCATION_DLQ_TOPIC, sorted.rejected).await?;
        self.handled += batch.len() as u64;
        let outcomes = &c.metrics.consumer_records;
        outcomes
            .get_or_create(&vec![("outcome", "stored".to_string())])
            .inc_by(stored as u64);
        outcomes
            .get_or_create(&vec![("outcome", "dlq".to_string())])
            .inc_by(dlq as u64);
        outcomes
            .get_or_create(&vec![("outcome", "shredded".to_string())])
            .inc_by(sorted.shredded);
        c.metrics
            .consumer_batch_duration
            .observe(started.elapsed().as_secs_f64());
        if let Some(health) = &c.health {
            health.progressed();
        }
        tracing::debug!(stored, dead_lettered = dlq, "batch stored");
        Ok(())
    }

    fn polled(&mut self, lag: Option<u64>, assigned: Option<usize>) {
        if let Some(lag) = lag {
            self.consumer.metrics.consumer_lag.set(lag);
        }
        if let Some(health) = &self.consumer.health {
            health.polled(lag, assigned);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use udaconnect_core::clock::{Clock, SystemClock};
    use udaconnect_core::model::{Location, NewPerson};
    use udaconnect_core::ports::PersonStore;
    use udaconnect_core::record::{self, LogRecord, LOCATION_TOPIC};
    use udaconnect_log::EmbeddedLog;
    use udaconnect_store::{SqliteLocationStore, SqlitePersonStore};

    use crate::persons::LocalPersons;

    fn ping(id: i64, person_id: i64) -> LogRecord {
        record::encode(
            &Location {
                id,
                person_id,
                latitude: 37.55,
                longitude: -122.29,
                creation_time: SystemClock.now(),
                accuracy_m: None,
                telemetry: Default::default(),
            },
            None,
            SystemClock.now(),
        )
    }

    /// How far behind a newcomer to the consumer's group starts: what is not committed.
    async fn uncommitted(log: &DynLog) -> u64 {
        let c = log
            .consumer(LOCATION_TOPIC, CONSUMER_GROUP, StartFrom::Earliest)
            .await
            .unwrap();
        c.lag().unwrap()
    }

    async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done().await {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_position_is_committed_once_the_log_goes_quiet_and_at_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let log: DynLog =
            Arc::new(EmbeddedLog::open(dir.path().join("log"), Default::default()).unwrap());
        let persons =
            Arc::new(SqlitePersonStore::open(dir.path().join("persons.sqlite3")).unwrap());
        let person = persons
            .create(NewPerson {
                first_name: "A".into(),
                last_name: "B".into(),
                company_name: "C".into(),
            })
            .await
            .unwrap();
        let store: DynLocationStore =
            Arc::new(SqliteLocationStore::open(dir.path().join("locations.sqlite3")).unwrap());
        let keys = udaconnect_store::SqliteKeyStore::open(dir.path().join("keys.sqlite3")).unwrap();
        let consumer = LocationConsumer::new(
            log.clone(),
            store.clone(),
            Arc::new(LocalPersons::new(persons)),
            Arc::new(Keyring::new(Arc::new(keys))),
            Arc::new(Metrics::new()),
        );
        let (stop, shutdown) = watch::channel(false);
        let running = tokio::spawn(consumer.run(shutdown));

        let append_and_wait = async |ids: std::ops::RangeInclusive<i64>| {
            let stored = *ids.end() as u64;
            let pings = ids.map(|i| ping(i, person.id)).collect();
            log.append(LOCATION_TOPIC, pings).await.unwrap();
            wait_until("stored", async || store.count().await.unwrap() == stored).await;
        };
        append_and_wait(1..=300).await;
        // Stored, then committed while no more records come.
        wait_until("committed", async || uncommitted(&log).await == 0).await;

        // Records stored just before a stop are committed by the stop.
        append_and_wait(301..=310).await;
        stop.send(true).unwrap();
        running.await.unwrap();
        assert_eq!(uncommitted(&log).await, 0);
    }
}

//! location-consumer: reads the `location` log, stores each location, sends records it cannot
//! store to `location.dlq` with the reason, and commits its position only after both are
//! durable. Writes are upserts keyed by the location id, so a batch delivered twice (after a
//! crash between store and commit) has no second effect.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use udaconnect_core::ports::{
    read_to_end, retry_delay, Consumed, DynLocationStore, DynLog, LogConsumer, StartFrom,
};
use udaconnect_core::record::{DLQ_REASON_HEADER, LOCATION_DLQ_TOPIC, LOCATION_TOPIC};
use udaconnect_core::{Error, Result};

use crate::consume::sort_batch;
use crate::feed::OnStored;
use crate::metrics::Metrics;
use crate::persons::DynPersonDirectory;

pub const CONSUMER_GROUP: &str = "location-consumer";
/// Records taken per poll: large batches amortise the store's fsync.
const BATCH: usize = 8192;

/// A poll that returns fewer records than this waits [`LINGER`] for more before storing them:
/// a few milliseconds more before a ping is stored, for far fewer commits under load.
const LINGER_BELOW: usize = 2048;
const LINGER: Duration = Duration::from_millis(20);

/// The consumer position is committed at most this often while records keep coming, and as
/// soon as the log goes quiet. Each commit costs two fsyncs; the writes it covers are durable
/// before it, and replaying them after a crash is harmless because writes are idempotent.
const COMMIT_EVERY: Duration = Duration::from_millis(500);

pub struct LocationConsumer {
    pub log: DynLog,
    pub store: DynLocationStore,
    pub persons: DynPersonDirectory,
    pub metrics: Arc<Metrics>,
    pub on_stored: Option<OnStored>,
}

impl LocationConsumer {
    /// Consumes until `shutdown` turns true, then commits what it stored and returns.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut consumer = loop {
            match self
                .log
                .consumer(LOCATION_TOPIC, CONSUMER_GROUP, StartFrom::Earliest)
                .await
            {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(error = %e, "location consumer cannot join its group; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            }
        };
        tracing::info!(group = CONSUMER_GROUP, "location consumer started");
        let mut committed_at = Instant::now();
        let mut uncommitted = false;
        while !*shutdown.borrow() {
            let batch = tokio::select! {
                b = consumer.poll(BATCH, Duration::from_millis(500)) => b,
                _ = shutdown.changed() => break,
            };
            // Whether to commit now: once a while under load, at once when the log is quiet.
            let due = match batch {
                Ok(batch) if batch.is_empty() => uncommitted,
                Ok(mut batch) => {
                    if batch.len() < LINGER_BELOW {
                        // A stream of single pings comes a few records per poll, and every
                        // store commit costs an fsync: wait a moment for more.
                        tokio::time::sleep(LINGER).await;
                        if let Ok(more) = consumer.poll(BATCH - batch.len(), Duration::ZERO).await {
                            batch.extend(more);
                        }
                    }
                    if !self.handle(batch, &shutdown).await {
                        // Not stored, so the position must not be committed past it: what
                        // was stored since the last commit is replayed at start, harmlessly.
                        tracing::info!("location consumer stopped");
                        return;
                    }
                    uncommitted = true;
                    committed_at.elapsed() >= COMMIT_EVERY
                }
                Err(e) => {
                    tracing::warn!(error = %e, "location consumer poll failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    false
                }
            };
            if due && self.commit(&mut consumer, &shutdown).await {
                uncommitted = false;
                committed_at = Instant::now();
            }
            if let Some(lag) = consumer.lag() {
                self.metrics.consumer_lag.set(lag);
            }
        }
        // Everything polled so far is stored; one attempt, as the process is stopping.
        if uncommitted {
            self.commit(&mut consumer, &shutdown).await;
        }
        tracing::info!("location consumer stopped");
    }

    /// Consumes until the group has caught up with the end of the log, then returns the
    /// number of records handled: for `import`, which runs without a server.
    pub async fn catch_up(&self) -> Result<u64> {
        let (_keep, never) = watch::channel(false);
        let mut consumer = self
            .log
            .consumer(LOCATION_TOPIC, CONSUMER_GROUP, StartFrom::Earliest)
            .await?;
        let mut handled = 0u64;
        let mut idle_since = Instant::now();
        loop {
            let batch = consumer.poll(BATCH, Duration::from_millis(100)).await?;
            if batch.is_empty() {
                if read_to_end(consumer.lag(), idle_since.elapsed()) {
                    return Ok(handled);
                }
                continue;
            }
            idle_since = Instant::now();
            handled += batch.len() as u64;
            self.handle(batch, &never).await;
            self.commit(&mut consumer, &never).await;
        }
    }

    /// Stores a batch, retrying until it is durable. A batch is never skipped: until a commit
    /// covers it, a restart redelivers it. False when the shutdown came first and the batch is
    /// not stored.
    async fn handle(&self, batch: Vec<Consumed>, shutdown: &watch::Receiver<bool>) -> bool {
        let started = Instant::now();
        let mut attempt = 0;
        let (ok, dlq) = loop {
            match self.store_batch(&batch).await {
                Ok(n) => break n,
                Err(e) if *shutdown.borrow() => {
                    tracing::warn!(error = %e, "stopping with a batch unstored; it is redelivered at start");
                    return false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "storing a batch failed; retrying");
                    tokio::time::sleep(retry_delay(attempt)).await;
                    attempt += 1;
                }
            }
        };
        self.metrics
            .consumer_records
            .get_or_create(&vec![("outcome", "stored".to_string())])
            .inc_by(ok as u64);
        self.metrics
            .consumer_records
            .get_or_create(&vec![("outcome", "dlq".to_string())])
            .inc_by(dlq as u64);
        self.metrics
            .consumer_batch_duration
            .observe(started.elapsed().as_secs_f64());
        tracing::debug!(stored = ok, dead_lettered = dlq, "batch stored");
        true
    }

    /// Commits the position after everything polled so far, retrying; false when the
    /// shutdown came first.
    async fn commit(
        &self,
        consumer: &mut Box<dyn LogConsumer>,
        shutdown: &watch::Receiver<bool>,
    ) -> bool {
        let mut attempt = 0;
        while let Err(e) = consumer.commit().await {
            if *shutdown.borrow() {
                return false;
            }
            tracing::warn!(error = %e, attempt, "committing the consumer position failed; retrying");
            tokio::time::sleep(retry_delay(attempt)).await;
            attempt += 1;
        }
        true
    }

    async fn store_batch(&self, batch: &[Consumed]) -> Result<(usize, usize)> {
        let sorted = sort_batch(batch, &self.persons).await?;
        for r in &sorted.rejected {
            tracing::warn!(
                partition = r.header_str("dlq_source_partition").unwrap_or(""),
                offset = r.header_str("dlq_source_offset").unwrap_or(""),
                reason = r.header_str(DLQ_REASON_HEADER).unwrap_or(""),
                "record sent to the dead-letter topic"
            );
        }
        self.store.upsert(&sorted.locations).await?;
        let (stored, dlq) = (sorted.locations.len(), sorted.rejected.len());
        if let Some(f) = self.on_stored.clone() {
            // Off the runtime's threads, which serve requests: the hook may wait for a lock
            // that a query holds, and the index now and then lays itself out again (a second
            // or more at millions of rows).
            let locations = sorted.locations;
            tokio::task::spawn_blocking(move || f(&locations))
                .await
                .map_err(|e| Error::Internal(format!("the stored-batch hook failed: {e}")))?;
        }
        self.log.append(LOCATION_DLQ_TOPIC, sorted.rejected).await?;
        Ok((stored, dlq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use udaconnect_core::clock::{Clock, SystemClock};
    use udaconnect_core::model::{Location, NewPerson};
    use udaconnect_core::ports::PersonStore;
    use udaconnect_core::record::{self, LogRecord};
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
        let consumer = LocationConsumer {
            log: log.clone(),
            store: store.clone(),
            persons: Arc::new(LocalPersons::new(persons)),
            metrics: Arc::new(Metrics::new()),
            on_stored: None,
        };
        let (stop, shutdown) = watch::channel(false);
        let running = tokio::spawn(consumer.run(shutdown));

        log.append(
            LOCATION_TOPIC,
            (1..=300).map(|i| ping(i, person.id)).collect(),
        )
        .await
        .unwrap();
        wait_until("stored", async || store.count().await.unwrap() == 300).await;
        // Stored, then committed while no more records come.
        wait_until("committed", async || uncommitted(&log).await == 0).await;

        // Records stored just before a stop are committed by the stop.
        log.append(
            LOCATION_TOPIC,
            (301..=310).map(|i| ping(i, person.id)).collect(),
        )
        .await
        .unwrap();
        wait_until("stored", async || store.count().await.unwrap() == 310).await;
        stop.send(true).unwrap();
        running.await.unwrap();
        assert_eq!(uncommitted(&log).await, 0);
    }
}

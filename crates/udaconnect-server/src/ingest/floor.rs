//! The next location id above every id the log holds, for a location-api whose store and log
//! are apart (`serve` checks its own data directory at start instead).
//!
//! Below location-consumer's committed position every record is stored or dead-lettered, so
//! the store's highest id covers it; past that position (records not stored yet, the consumer
//! being down or behind) and in the dead-letter topic, ids are known only to the log. A lease
//! restored from a backup may be below them: a new ping would get the id of an acknowledged one
//! and the upsert would keep only one of the two.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::OnceCell;

use udaconnect_core::envelope::Read;
use udaconnect_core::ports::{Consumed, DynIdLeaser, DynLog, IdLeaser};
use udaconnect_core::record::{FIX_ID_BASE, LOCATION_DLQ_TOPIC, LOCATION_TOPIC};
use udaconnect_core::{Error, Result};

use crate::consume::consumer::CONSUMER_GROUP;
use crate::keys::Keyring;

/// The most records one topic's scan reads; beyond it the scan refuses and is tried again
/// later, as location-consumer stores and commits what waits. A few seconds of reading.
pub const SCAN_LIMIT: u64 = 5_000_000;
/// After a failed scan, leases fail at once for this long before the next try, so a stream
/// of requests does not scan again for each.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often a long scan reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// An id leaser whose first lease waits until the next id is above every id in the log.
pub struct LogFloor {
    leaser: DynIdLeaser,
    log: DynLog,
    /// Opens sealed records, whose ids are inside the envelope.
    keys: Arc<Keyring>,
    raised: OnceCell<()>,
    /// The last failed scan: when, and why.
    failed: Mutex<Option<(Instant, String)>>,
}

impl LogFloor {
    pub fn new(leaser: DynIdLeaser, log: DynLog, keys: Arc<Keyring>) -> LogFloor {
        LogFloor {
            leaser,
            log,
            keys,
            raised: OnceCell::new(),
            failed: Mutex::new(None),
        }
    }

    /// Raises the next id above the log's ids, once; an error (the log away, too much to
    /// read) is retried by the next call after `RETRY_AFTER`.
    pub async fn raise(&self) -> Result<()> {
        if self.raised.initialized() {
            return Ok(());
        }
        if let Some((at, why)) = &*self.failed.lock().unwrap_or_else(PoisonError::into_inner) {
            if at.elapsed() < RETRY_AFTER {
                return Err(Error::Unavailable(why.clone()));
            }
        }
        let raised = self
            .raised
            .get_or_try_init(|| async {
                let max = max_id_in_log(&self.log, &self.keys).await?;
                if max > 0 {
                    self.leaser.reserve_through(max).await?;
                }
                Ok::<_, Error>(())
            })
            .await;
        if let Err(e) = &raised {
            tracing::warn!(error = %e, "cannot raise the next location id above the ids in the log yet; ingest waits");
            *self.failed.lock().unwrap_or_else(PoisonError::into_inner) = Some((
                Instant::now(),
                format!("location ids (the log's ids not read yet: {e})"),
            ));
        }
        raised.map(|_| ())
    }
}

#[async_trait]
impl IdLeaser for LogFloor {
    async fn lease(&self, size: u64) -> Result<i64> {
        self.raise().await?;
        self.leaser.lease(size).await
    }

    async fn reserve_through(&self, id: i64) -> Result<()> {
        self.leaser.reserve_through(id).await
    }
}

/// The highest leased location id in the log where the store may not have it: past
/// location-consumer's committed position, and in the dead-letter topic (0 when none).
/// A shredded record's id is unknown, and need not be avoided: nothing of it is stored again.
pub async fn max_id_in_log(log: &DynLog, keys: &Keyring) -> Result<i64> {
    let started = Instant::now();
    let unstored = max_id_in(log, keys, LOCATION_TOPIC, Some(CONSUMER_GROUP)).await?;
    let dead = max_id_in(log, keys, LOCATION_DLQ_TOPIC, None).await?;
    tracing::info!(
        unstored = unstored.1,
        dead_letters = dead.1,
        max_id = unstored.0.max(dead.0),
        seconds = started.elapsed().as_secs_f64(),
        "read the log's location ids not stored yet"
    );
    Ok(unstored.0.max(dead.0))
}

/// The highest leased id in `topic` from `group`'s position on, and the records read.
pub(crate) async fn max_id_in(
    log: &DynLog,
    keys: &Keyring,
    topic: &str,
    group: Option<&str>,
) -> Result<(i64, u64)> {
    let mut max = 0;
    let mut read = 0u64;
    let mut reported = Instant::now();
    let mut visit = |_: &Consumed, r: std::result::Result<Read, String>| {
        if let Ok(Read::Location(d)) = r {
            // Fix ids (trackers) and derived ids (keyless records) are never leased.
            if d.location.id < FIX_ID_BASE {
                max = max.max(d.location.id);
            }
        }
        read += 1;
        if read.is_multiple_of(65_536) && reported.elapsed() >= PROGRESS_EVERY {
            reported = Instant::now();
            tracing::info!(topic, read, "reading the log for location ids in use");
        }
    };
    let records = keys.scan(log, topic, group, SCAN_LIMIT, &mut visit).await?;
    Ok((max, records))
}

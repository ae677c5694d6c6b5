//! Rebuilding the location store from the log.
//!
//! The log is the record of every accepted ping; the store is a view of it. A replay clears the
//! store and reads the `location` topic from its first record with a consumer group of its own
//! (never committed, so the live consumer's position is untouched), storing each batch exactly
//! as the live consumer does. Records the live consumer dead-lettered are skipped again, without
//! writing them to the dead-letter topic a second time.

use std::time::{Duration, Instant};

use udaconnect_core::ports::{read_to_end, DynLocationStore, DynLog, StartFrom};
use udaconnect_core::record::LOCATION_TOPIC;
use udaconnect_core::Result;

use crate::consume::sort_batch;
use crate::persons::DynPersonDirectory;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    pub records: u64,
    pub stored: u64,
    pub rejected: u64,
}

/// Rebuilds `store` from `log`. `progress(done, still_to_read)` is called after each batch.
pub async fn replay(
    log: &DynLog,
    store: &DynLocationStore,
    persons: &DynPersonDirectory,
    mut progress: impl FnMut(u64, u64),
) -> Result<ReplayReport> {
    store.clear().await?;
    let group = format!("replay-{}", std::process::id());
    let mut consumer = log
        .consumer(LOCATION_TOPIC, &group, StartFrom::Earliest)
        .await?;
    let mut report = ReplayReport::default();
    let mut idle_since = Instant::now();
    loop {
        let batch = consumer.poll(16_384, Duration::from_millis(200)).await?;
        if batch.is_empty() {
            if read_to_end(consumer.lag(), idle_since.elapsed()) {
                break;
            }
            continue;
        }
        idle_since = Instant::now();
        let sorted = sort_batch(&batch, persons).await?;
        store.upsert(&sorted.locations).await?;
        report.records += batch.len() as u64;
        report.stored += sorted.locations.len() as u64;
        report.rejected += sorted.rejected.len() as u64;
        progress(report.records, consumer.lag().unwrap_or(0));
    }
    Ok(report)
}

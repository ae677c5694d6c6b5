//! What `serve` checks in its data directory before any role starts, recovering where the log
//! allows it and refusing with the recovery command where it does not:
//!
//! - a location store that is missing (or whose rebuild never finished) while the log holds
//!   records is rebuilt from the log (replay, progress logged) before the process reports
//!   ready; when the log no longer holds its first record (segments deleted) the start is
//!   refused, and keeps being refused until `udaconnect replay` has run;
//! - the next location id is raised above every id in the store, in the log's records not yet
//!   stored (from location-consumer's committed position on) and in the dead-letter topic, so
//!   a rolled-back `ids/location.next` (a restored backup) never hands out an id again.
//!
//! A committed offset that does not read is handled by the log itself (moved aside, the group
//! reads again from its start).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use udaconnect_core::record::{self, DERIVED_ID_BASE, LOCATION_DLQ_TOPIC, LOCATION_TOPIC};
use udaconnect_log::EmbeddedLog;

use crate::consume::consumer::CONSUMER_GROUP;
use crate::consume::replay::{replay, ReplayMode};
use crate::persons::{DynPersonDirectory, LocalPersons};
use crate::wiring::backends::LOCATION_STORE_FILE;
use crate::wiring::embedded::EmbeddedStack;

/// Records read per poll by the scans at start.
const SCAN_BATCH: usize = 16_384;
/// How often the rebuild at start reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Runs every check on `stack`; an error is a refusal to start, saying how to recover.
pub async fn check(stack: &EmbeddedStack) -> anyhow::Result<()> {
    if stack.location_store_missing {
        rebuild_location_store(stack).await?;
    }
    raise_id_floor(stack).await
}

/// Replays the log into a location store that was just created empty, when the log holds
/// records.
async fn rebuild_location_store(stack: &EmbeddedStack) -> anyhow::Result<()> {
    let log = &stack.embedded_log;
    let end = log.end_offset(LOCATION_TOPIC)?;
    if end == 0 {
        return Ok(());
    }
    let store_path = stack.data_dir.join(LOCATION_STORE_FILE);
    let earliest = log.earliest_offset(LOCATION_TOPIC)?;
    // From here the store opened (and created) is incomplete until the replay ends: a start
    // after a refusal or a crash must not serve it as it is.
    stack.mark_location_store_incomplete(true)?;
    if earliest > 0 {
        anyhow::bail!(
            "the location store {} is missing and the log no longer holds records before offset \
             {earliest}, so it cannot be rebuilt from the log alone: restore {} from a backup \
             (if there is one), then run `udaconnect replay --data-dir {} --partial` to store \
             what the log holds over it, and start again",
            store_path.display(),
            LOCATION_STORE_FILE,
            stack.data_dir.display(),
        );
    }
    tracing::warn!(
        store = %store_path.display(),
        records = end,
        "the location store is missing: rebuilding it from the log before serving"
    );
    let persons: DynPersonDirectory = Arc::new(LocalPersons::new(stack.persons.clone()));
    let started = Instant::now();
    let mut last = Instant::now();
    let rebuild = ReplayMode::Rebuild;
    let report = replay(
        &stack.log,
        &stack.locations,
        &persons,
        rebuild,
        |done, left| {
            if last.elapsed() >= PROGRESS_EVERY {
                last = Instant::now();
                tracing::info!(done, left, "rebuilding the location store");
            }
        },
    )
    .await
    .context("rebuilding the missing location store from the log failed")?;
    stack.mark_location_store_incomplete(false)?;
    tracing::info!(
        records = report.records,
        stored = report.stored,
        rejected = report.rejected,
        seconds = started.elapsed().as_secs_f64(),
        "location store rebuilt from the log"
    );
    Ok(())
}

/// Makes the id leaser's next id higher than every id the data directory holds.
async fn raise_id_floor(stack: &EmbeddedStack) -> anyhow::Result<()> {
    let log = &stack.embedded_log;
    let stored = stack.locations.max_leased_id().await?.unwrap_or(0);
    // Below the committed position every record is stored or dead-lettered.
    let from = log.committed(LOCATION_TOPIC, CONSUMER_GROUP)?.unwrap_or(0);
    let unstored = max_id_in(log, LOCATION_TOPIC, from).await?;
    let dead = max_id_in(log, LOCATION_DLQ_TOPIC, 0).await?;
    let floor = stored.max(unstored).max(dead);
    if floor > 0 {
        stack
            .ids
            .reserve_through(floor)
            .await
            .context("failed to raise the next location id above the ids in use")?;
    }
    tracing::debug!(
        stored,
        unstored,
        dead,
        "next location id above the ids in use"
    );
    Ok(())
}

/// The highest leased id among `topic`'s records from `from` on (0 when none).
async fn max_id_in(log: &EmbeddedLog, topic: &str, from: u64) -> anyhow::Result<i64> {
    if log.end_offset(topic)? <= from {
        return Ok(0);
    }
    let mut reader = log.reader_at(topic, from)?;
    let mut max = 0;
    loop {
        // Nothing appends before the roles start: a poll that waits and gets nothing is the end.
        let batch = reader.poll(SCAN_BATCH, Duration::from_millis(20)).await?;
        for c in &batch {
            if let Ok(d) = record::decode_legacy(&c.record, c.position) {
                if d.location.id < DERIVED_ID_BASE {
                    max = max.max(d.location.id);
                }
            }
        }
        if batch.is_empty() {
            return Ok(max);
        }
    }
}

//! What `serve` checks in its data directory before any role starts, recovering where the log
//! allows it and refusing with the recovery command where it does not:
//!
//! - a location store that is missing (or whose rebuild never finished) while the log holds
//!   records is rebuilt from the log (replay, progress logged) before the process reports
//!   ready; when the log no longer holds its first record (segments deleted) the start is
//!   refused, and keeps being refused until `udaconnect replay` has run;
//! - location-consumer's committed offset, when its file does not hold a number (a torn copy,
//!   a bad restore), is recovered from what the stores hold: the position after the last
//!   record the location store or the dead-letter topic shows handled (`applied_end`), so
//!   the consumer neither replays the whole log nor skips a record;
//! - the next location id is raised above every id in the store, in the log's records not yet
//!   stored (from location-consumer's committed position on) and in the dead-letter topic, so
//!   a rolled-back `ids/location.next` (a restored backup) never hands out an id again.
//!
//! Any other group's unreadable offset is handled by the log itself (moved aside, the group
//! reads again from its start).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use udaconnect_core::envelope::Read;
use udaconnect_core::ports::{Consumed, LogScan};
use udaconnect_core::record::{LOCATION_DLQ_TOPIC, LOCATION_TOPIC};

use crate::consume::consumer::{CONSUMER_BATCH, CONSUMER_GROUP};
use crate::consume::dlq::SOURCE_OFFSET_HEADER;
use crate::consume::replay::{replay, ReplayMode};
use crate::persons::{DynPersonDirectory, LocalPersons};
use crate::wiring::backends::LOCATION_STORE_FILE;
use crate::wiring::embedded::EmbeddedStack;

/// How often the rebuild at start reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Runs every check on `stack`; an error is a refusal to start, saying how to recover.
pub async fn check(stack: &EmbeddedStack) -> anyhow::Result<()> {
    if stack.location_store_missing {
        // A rebuild stores the whole log again: the consumer's position, readable or not,
        // costs nothing more (an unreadable one is moved aside by the log).
        rebuild_location_store(stack).await?;
    } else {
        recover_consumer_position(stack).await?;
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
        &stack.keys,
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
    let stored = stack.locations.max_leased_id().await?.unwrap_or(0);
    // Below the committed position every record is stored or dead-lettered.
    let unstored = max_id_in(stack, LOCATION_TOPIC, Some(CONSUMER_GROUP)).await?;
    let dead = max_id_in(stack, LOCATION_DLQ_TOPIC, None).await?;
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

/// The id a record carries, when it reads as a location.
fn id_of(read: Result<Read, String>) -> Option<i64> {
    match read {
        Ok(Read::Location(d)) => Some(d.location.id),
        _ => None,
    }
}

/// The highest leased id among `topic`'s records from `group`'s committed position on (all of
/// them without a group): 0 when none.
async fn max_id_in(stack: &EmbeddedStack, topic: &str, group: Option<&str>) -> anyhow::Result<i64> {
    let (max, _) = crate::ingest::floor::max_id_in(&stack.log, &stack.keys, topic, group)
        .await
        .with_context(|| format!("failed to read the ids in {topic}"))?;
    Ok(max)
}

/// Replaces an unreadable committed offset of location-consumer with `applied_end`.
async fn recover_consumer_position(stack: &EmbeddedStack) -> anyhow::Result<()> {
    let log = &stack.embedded_log;
    if !log.committed_unreadable(LOCATION_TOPIC, CONSUMER_GROUP)? {
        return Ok(());
    }
    let file = log.offset_file(LOCATION_TOPIC, CONSUMER_GROUP)?;
    let position = applied_end(stack)
        .await
        .with_context(|| format!("failed to recover the position in {}", file.display()))?;
    let moved = log.recover_committed(LOCATION_TOPIC, CONSUMER_GROUP, position)?;
    tracing::warn!(
        file = %file.display(),
        moved_to = %moved.unwrap_or_default().display(),
        position,
        "committed offset unreadable: moved aside; location-consumer resumes after the last \
         record the stores hold"
    );
    Ok(())
}

/// The position after which location-consumer has handled nothing, by what the stores hold.
///
/// The consumer handles its batches (at most [`CONSUMER_BATCH`] records) one after the other,
/// storing a batch's locations and then dead-lettering the rest of it. So a record that was
/// handled, the one holding the store's highest id or the last one dead-lettered, whichever
/// comes later in the log, is in a batch that started at most a batch before it, and every
/// record before that batch was handled. Within that last batch a crash may have come between
/// the store and the dead letters: the first record there that is neither stored nor
/// dead-lettered is where the consumer resumes; failing that, right after the handled record.
/// Records after it are read again, which stores nothing twice. With no record handled, the
/// consumer starts at the log's beginning, as a new group does.
async fn applied_end(stack: &EmbeddedStack) -> anyhow::Result<u64> {
    let mut dead = HashSet::new();
    stack
        .log
        .scan(LogScan {
            topic: LOCATION_DLQ_TOPIC,
            group: None,
            limit: u64::MAX,
            visit: &mut |batch: &[Consumed]| {
                dead.extend(batch.iter().filter_map(|c| {
                    c.record
                        .header_str(SOURCE_OFFSET_HEADER)?
                        .parse::<u64>()
                        .ok()
                }));
            },
        })
        .await?;
    let last_dead = dead.iter().copied().max();
    let top = stack.locations.max_leased_id().await?;
    // The last batch's records up to the handled record, taken as the scan passes it: the
    // first record holding the top id (a record re-driven later may hold it again), or the
    // last one dead-lettered, whichever the scan meets later.
    let mut recent: VecDeque<(u64, Option<i64>)> = VecDeque::with_capacity(CONSUMER_BATCH);
    let mut window = None;
    let mut top_seen = false;
    let mut visit = |c: &Consumed, read: Result<Read, String>| {
        let offset = c.position.offset as u64;
        let id = id_of(read);
        if recent.len() == CONSUMER_BATCH {
            recent.pop_front();
        }
        recent.push_back((offset, id));
        let holds_top = !top_seen && top.is_some() && id == top;
        top_seen |= holds_top;
        if holds_top || Some(offset) == last_dead {
            window = Some(recent.clone());
        }
    };
    stack
        .keys
        .scan(&stack.log, LOCATION_TOPIC, None, u64::MAX, &mut visit)
        .await?;
    let Some(window) = window else {
        return Ok(stack.embedded_log.earliest_offset(LOCATION_TOPIC)?);
    };
    for &(offset, id) in &window {
        let stored = match id {
            Some(id) => stack.locations.get(id).await?.is_some(),
            None => false,
        };
        if !stored && !dead.contains(&offset) {
            return Ok(offset);
        }
    }
    Ok(window.back().map_or(0, |(offset, _)| offset + 1))
}

#[cfg(test)]
mod tests {
    use udaconnect_core::clock::{Clock, SystemClock};
    use udaconnect_core::model::Location;
    use udaconnect_core::record::{self, LogRecord, Position};

    use super::*;
    use crate::consume::dlq::dead_letter_headers;

    fn location(id: i64) -> Location {
        Location {
            id,
            person_id: 1,
            latitude: 37.55,
            longitude: -122.29,
            creation_time: SystemClock.now(),
            accuracy_m: None,
            telemetry: Default::default(),
        }
    }

    fn ping(id: i64) -> LogRecord {
        record::encode(&location(id), None, SystemClock.now())
    }

    fn dead_letter(offset: u64) -> LogRecord {
        let mut r = ping(100 + offset as i64);
        r.headers.extend(dead_letter_headers(
            "person_id: no person with id 1",
            Position {
                partition: 0,
                offset: offset as i64,
            },
            SystemClock.now(),
        ));
        r
    }

    /// A data directory whose log holds `records` pings (id `100 + offset`), of which the
    /// store holds those at `stored` and the dead-letter topic those at `dead`, and whose
    /// consumer offset file is garbage: the position start-up recovers.
    async fn recovered(
        records: u64,
        stored: impl IntoIterator<Item = u64>,
        dead: impl IntoIterator<Item = u64>,
    ) -> u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut stack = EmbeddedStack::open(dir.path()).unwrap();
        // Created by this open, but what follows fills it as a consumer would have.
        stack.location_store_missing = false;
        // Sealed, as ingest writes them: the ids are read inside the envelopes.
        let keys = stack.keys.for_sealing(LOCATION_TOPIC, &[1]).await.unwrap();
        let now = SystemClock.now();
        let sealed = (0..records)
            .map(|o| keys.seal(&location(100 + o as i64), None, now))
            .collect::<udaconnect_core::Result<_>>()
            .unwrap();
        stack.log.append(LOCATION_TOPIC, sealed).await.unwrap();
        let locations: Vec<Location> = stored
            .into_iter()
            .map(|o| location(100 + o as i64))
            .collect();
        stack.locations.upsert(&locations).await.unwrap();
        let dead: Vec<LogRecord> = dead.into_iter().map(dead_letter).collect();
        stack.log.append(LOCATION_DLQ_TOPIC, dead).await.unwrap();
        let file = stack
            .embedded_log
            .offset_file(LOCATION_TOPIC, CONSUMER_GROUP)
            .unwrap();
        std::fs::write(&file, b"\x00\x00garbage").unwrap();
        check(&stack).await.unwrap();
        assert_eq!(
            std::fs::read(file.with_extension("offset.bad")).unwrap(),
            b"\x00\x00garbage",
            "the unreadable file is kept aside"
        );
        stack
            .embedded_log
            .committed(LOCATION_TOPIC, CONSUMER_GROUP)
            .unwrap()
            .expect("a position is committed")
    }

    #[tokio::test]
    async fn an_unreadable_consumer_offset_resumes_after_what_the_stores_hold() {
        // Stored up to 19: the consumer resumes at 20, not at 0.
        assert_eq!(recovered(30, 0..20, []).await, 20);
        // The last record handled was dead-lettered, after the last one stored.
        assert_eq!(recovered(30, 0..20, [3, 20, 21]).await, 22);
        // The store is ahead of the dead letters.
        assert_eq!(recovered(30, (0..25).filter(|o| *o != 7), [7]).await, 25);
    }

    #[tokio::test]
    async fn a_record_neither_stored_nor_dead_lettered_in_the_last_batch_is_read_again() {
        // A crash after the store and before the dead letters: record 12 went nowhere.
        assert_eq!(recovered(30, (0..20).filter(|o| *o != 12), []).await, 12);
    }

    #[tokio::test]
    async fn with_nothing_handled_the_consumer_starts_at_the_beginning() {
        assert_eq!(recovered(30, [], []).await, 0);
    }
}

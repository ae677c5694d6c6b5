//! Rebuilding the location store from the log.
//!
//! The log is the record of every accepted ping; the store is a view of it. A replay clears the
//! store and reads the `location` topic from its first record with a consumer group of its own
//! (never committed, so the live consumer's position is untouched), storing each batch exactly
//! as the live consumer does. Records the live consumer dead-lettered are skipped again, without
//! writing them to the dead-letter topic a second time.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use udaconnect_core::ports::{Consumed, DynLocationStore, DynLog, StartFrom};
use udaconnect_core::Result;

use crate::consume::poll::{self, Batches, Commit, Reader, Until};
use crate::consume::sort_batch;
use crate::keys::Keyring;
use crate::persons::DynPersonDirectory;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    pub records: u64,
    pub stored: u64,
    pub rejected: u64,
    /// Sealed records whose persons were erased (their keys destroyed): skipped.
    pub shredded: u64,
}

/// What a replay does with what the store holds already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayMode {
    /// Clears it first: the store becomes what the log holds.
    Rebuild,
    /// Clears nothing, storing every record the log holds over it: for a log whose older
    /// segments were deleted once stored, where the store is the only copy of them.
    Partial,
}

/// Stores every record of `log` in `store`, after clearing it or not as `mode` says, opening
/// sealed records with `keys` (an erased person's stay unread). `progress(done,
/// still_to_read)` is called after each poll.
pub async fn replay(
    log: &DynLog,
    store: &DynLocationStore,
    persons: &DynPersonDirectory,
    keys: &Keyring,
    mode: ReplayMode,
    progress: impl FnMut(u64, u64) + Send,
) -> Result<ReplayReport> {
    if mode == ReplayMode::Rebuild {
        store.clear().await?;
    }
    let reader = Reader {
        topic: udaconnect_core::record::LOCATION_TOPIC,
        group: format!("replay-{}", std::process::id()),
        start: StartFrom::Earliest,
        batch: 16_384,
        wait: Duration::from_millis(200),
        linger: false,
        commit: Commit::Never,
        until: Until::CaughtUp,
    };
    let mut rebuild = Rebuild {
        store,
        persons,
        keys,
        report: ReplayReport::default(),
        progress,
    };
    let (_keep, never) = watch::channel(false);
    poll::read(log, &reader, &mut rebuild, never).await?;
    Ok(rebuild.report)
}

struct Rebuild<'a, P> {
    store: &'a DynLocationStore,
    persons: &'a DynPersonDirectory,
    keys: &'a Keyring,
    report: ReplayReport,
    progress: P,
}

#[async_trait]
impl<P: FnMut(u64, u64) + Send> Batches for Rebuild<'_, P> {
    async fn handle(&mut self, batch: &[Consumed]) -> Result<()> {
        let sorted = sort_batch(batch, self.persons, self.keys).await?;
        self.store.upsert(&sorted.locations).await?;
        for &person in &sorted.erased {
            // An original producer's plaintext pings of the person, replayed before the
            // erasure record, go again.
            self.store.delete_person(person).await?;
        }
        self.report.shredded += sorted.shredded;
        self.report.records += batch.len() as u64;
        self.report.stored += sorted.locations.len() as u64;
        self.report.rejected += sorted.rejected.len() as u64;
        Ok(())
    }

    fn polled(&mut self, lag: Option<u64>, _assigned: Option<usize>) {
        (self.progress)(self.report.records, lag.unwrap_or(0));
    }
}

//! Reading a partition without gaps: a record is handed on only when every offset before it, from
//! where the member started, has been read.
//!
//! A broker may show an offset before its record is readable: tansu 0.6 raises a partition's
//! high watermark when it gives a produce its offset and stores the batch after, so a fetch
//! made in between, by a consumer reading at the head of the log, answers with the records
//! after the one still being stored. librdkafka then fetches on from after those, and a commit
//! would pass a record no member of the group ever read: an acknowledged ping lost. Apache
//! Kafka never shows a hole below its high watermark, except where a topic is compacted or a
//! transaction's marker sits, which these topics do not have.
//!
//! So a record after a hole is not taken: the partition is fetched again from the hole, until
//! the hole fills or it has lasted [`HOLE_WAIT`] and the broker, asked from the hole, still
//! answers from after it (an offset given to a produce that was never stored).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a hole may last before the records after it are taken anyway. A record being
/// stored shows within milliseconds; an offset whose produce failed after it was given never
/// does, and the partition stands still this long once.
pub(super) const HOLE_WAIT: Duration = Duration::from_secs(3);

/// What to do with a record just read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admit {
    /// In order: take it.
    Take,
    /// The partition's start in this epoch is not known yet: learn it, then ask again.
    Start,
    /// A hole before it: drop it, and fetch the partition again from this offset.
    Refetch(i64),
    /// Taken already in this epoch (read again by a fetch made before the last one): drop it.
    Again,
}

/// Where one partition's reading stands, in one epoch of its assignment.
#[derive(Debug, Clone, Copy)]
struct Next {
    epoch: u64,
    /// The offset the next record must have.
    offset: i64,
    /// Whether a record was taken in this epoch, so that every offset below `offset` was.
    took: bool,
    /// When the hole before the records read after `offset` was first seen.
    hole_since: Option<Instant>,
    /// Whether a fetch from `offset` was asked for since then, so that what comes now was read
    /// from the hole on and not before.
    refetched: bool,
}

/// Per partition, the offset the next record read must have.
#[derive(Debug, Default)]
pub(super) struct InOrder {
    next: HashMap<i32, Next>,
}

impl InOrder {
    /// Whether the partition's start in `epoch` is known, or was looked for.
    fn known(&self, partition: i32, epoch: u64) -> bool {
        self.next.get(&partition).is_some_and(|n| n.epoch == epoch)
    }

    /// The partition's first record in `epoch` is at `start` (the group's commit, or the low
    /// watermark of a group without one); `None` when that could not be learnt, and the first
    /// record read is taken as the start.
    pub(super) fn start(&mut self, partition: i32, epoch: u64, start: Option<i64>) {
        let next = Next {
            epoch,
            offset: start.unwrap_or(-1),
            took: false,
            hole_since: None,
            refetched: false,
        };
        self.next.insert(partition, next);
    }

    /// What to do with the record at `offset` in `partition`, read in `epoch`, at `now`.
    pub(super) fn admit(&mut self, partition: i32, offset: i64, epoch: u64, now: Instant) -> Admit {
        if !self.known(partition, epoch) {
            return Admit::Start;
        }
        let next = self.next.get_mut(&partition).expect("known");
        if next.took && offset < next.offset {
            return Admit::Again;
        }
        // Below the start learnt: the group's commit moved back meanwhile; in order from there.
        let in_order = next.offset < 0 || offset <= next.offset;
        let waited = next.refetched && next.hole_since.is_some_and(|s| now - s >= HOLE_WAIT);
        if in_order || waited {
            if waited {
                tracing::warn!(
                    partition,
                    from = next.offset,
                    to = offset,
                    "kafka partition has offsets without records; reading on after them"
                );
            }
            *next = Next {
                epoch,
                offset: offset.saturating_add(1),
                took: true,
                hole_since: None,
                refetched: false,
            };
            return Admit::Take;
        }
        next.hole_since.get_or_insert(now);
        Admit::Refetch(next.offset)
    }

    /// A fetch of `partition` from its hole was asked for (`done`), or could not be.
    pub(super) fn refetched(&mut self, partition: i32, done: bool) {
        if let Some(next) = self.next.get_mut(&partition) {
            next.refetched = done;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_after_a_hole_is_refetched_until_the_hole_fills() {
        let t0 = Instant::now();
        let mut order = InOrder::default();
        assert_eq!(order.admit(0, 14245, 1, t0), Admit::Start);
        order.start(0, 1, Some(14245));
        for offset in 14245..=14247 {
            assert_eq!(order.admit(0, offset, 1, t0), Admit::Take);
        }
        // 14248 has its offset and is not stored yet; 14249 is.
        assert_eq!(order.admit(0, 14249, 1, t0), Admit::Refetch(14248));
        order.refetched(0, true);
        let soon = t0 + Duration::from_millis(5);
        assert_eq!(order.admit(0, 14249, 1, soon), Admit::Refetch(14248));
        order.refetched(0, true);
        // Stored now: read in order from the hole.
        assert_eq!(order.admit(0, 14248, 1, soon), Admit::Take);
        assert_eq!(order.admit(0, 14249, 1, soon), Admit::Take);
        // What an earlier fetch still brings is handed out already.
        assert_eq!(order.admit(0, 14249, 1, soon), Admit::Again);
        // A later hole waits as long as the first did.
        let later = t0 + HOLE_WAIT * 2;
        assert_eq!(order.admit(0, 14251, 1, later), Admit::Refetch(14250));
    }

    #[test]
    fn a_hole_is_read_past_only_after_the_wait_and_a_refetch_from_it() {
        let t0 = Instant::now();
        let mut order = InOrder::default();
        order.start(3, 7, Some(10));
        assert_eq!(order.admit(3, 12, 7, t0), Admit::Refetch(10));
        // Not refetched (the seek failed): what comes may have been read before the hole.
        order.refetched(3, false);
        assert_eq!(order.admit(3, 12, 7, t0 + HOLE_WAIT), Admit::Refetch(10));
        order.refetched(3, true);
        let before = t0 + HOLE_WAIT - Duration::from_millis(1);
        assert_eq!(order.admit(3, 12, 7, before), Admit::Refetch(10));
        order.refetched(3, true);
        assert_eq!(order.admit(3, 12, 7, t0 + HOLE_WAIT), Admit::Take);
        assert_eq!(order.admit(3, 12, 7, t0 + HOLE_WAIT), Admit::Again);
        assert_eq!(order.admit(3, 13, 7, t0 + HOLE_WAIT), Admit::Take);
    }

    #[test]
    fn the_start_is_learnt_in_each_epoch_and_a_record_taken_is_taken_once() {
        let t0 = Instant::now();
        let mut order = InOrder::default();
        order.start(0, 1, Some(5));
        assert_eq!(order.admit(0, 5, 1, t0), Admit::Take);
        // Revoked and assigned again: the member starts over from the group's commit.
        assert_eq!(order.admit(0, 3, 2, t0), Admit::Start);
        order.start(0, 2, Some(3));
        assert_eq!(order.admit(0, 3, 2, t0), Admit::Take);
        // The group's commit moved back after it was learnt: in order from there.
        order.start(1, 2, Some(9));
        assert_eq!(order.admit(1, 8, 2, t0), Admit::Take);
        assert_eq!(order.admit(1, 9, 2, t0), Admit::Take);
        assert_eq!(order.admit(1, 8, 2, t0), Admit::Again);
        // A start that could not be learnt: the first record read is the start.
        order.start(2, 2, None);
        assert_eq!(order.admit(2, 40, 2, t0), Admit::Take);
        assert_eq!(order.admit(2, 42, 2, t0), Admit::Refetch(41));
    }
}

//! Whether location-consumer is getting anywhere, for `/ready` and the metrics.
//!
//! A consumer can sit still while everything it depends on answers: a Kafka member left
//! holding no partitions (its group gave them to a member that died without leaving), or one
//! whose reads bring nothing while records wait. Pings are then acknowledged and never stored,
//! so the process must not say it is ready: an orchestrator restarts it, and an operator sees
//! `udaconnect_consumer_stalled`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// How long a member may hold no partitions before it is not ready: a rebalance takes seconds,
/// and a static member restarted under its name takes its partitions back at once.
pub const NO_PARTITIONS_GRACE: Duration = Duration::from_secs(30);
/// How long records may wait with none stored before the consumer is stalled: far beyond a
/// batch's time, short enough that pings do not wait unseen for minutes.
pub const STALL_AFTER: Duration = Duration::from_secs(30);

/// What the consumer's reads last said, shared between its loop and the readiness check.
pub struct ConsumerHealth {
    state: Mutex<State>,
    metrics: Arc<Metrics>,
}

#[derive(Debug)]
struct State {
    /// Since when the member has held no partitions; `None` while it holds some, or where
    /// a log has no partitions to share.
    unassigned_since: Option<Instant>,
    /// Records waiting, as the last poll knew.
    lag: Option<u64>,
    /// The last time a batch was stored or the consumer had nothing to read.
    progress_at: Instant,
}

impl ConsumerHealth {
    pub fn new(metrics: Arc<Metrics>) -> Arc<ConsumerHealth> {
        Self::starting_at(metrics, Instant::now())
    }

    fn starting_at(metrics: Arc<Metrics>, now: Instant) -> Arc<ConsumerHealth> {
        Arc::new(ConsumerHealth {
            state: Mutex::new(State {
                unassigned_since: None,
                lag: None,
                progress_at: now,
            }),
            metrics,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// After a poll: the records still to read and the partitions held, when known.
    pub fn polled(&self, lag: Option<u64>, assigned: Option<usize>) {
        self.polled_at(lag, assigned, Instant::now());
    }

    fn polled_at(&self, lag: Option<u64>, assigned: Option<usize>, now: Instant) {
        let mut s = self.state();
        s.lag = lag.or(s.lag);
        if lag == Some(0) {
            // Nothing to read is not standing still.
            s.progress_at = now;
        }
        match assigned {
            Some(0) => {
                s.unassigned_since.get_or_insert(now);
            }
            _ => s.unassigned_since = None,
        }
        self.metrics
            .consumer_partitions
            .set(assigned.map_or(-1, |n| n as i64));
        let stalled = why_not_ready(&s, now).is_some();
        self.metrics.consumer_stalled.set(i64::from(stalled));
    }

    /// A batch was stored.
    pub fn progressed(&self) {
        self.state().progress_at = Instant::now();
    }

    /// `Err` with the reason when the consumer holds no partitions or stores nothing while
    /// records wait.
    pub fn check(&self) -> Result<(), String> {
        self.check_at(Instant::now())
    }

    fn check_at(&self, now: Instant) -> Result<(), String> {
        let why = why_not_ready(&self.state(), now);
        self.metrics.consumer_stalled.set(i64::from(why.is_some()));
        why.map_or(Ok(()), Err)
    }
}

fn why_not_ready(s: &State, now: Instant) -> Option<String> {
    if let Some(since) = s.unassigned_since {
        let idle = now.saturating_duration_since(since);
        if idle >= NO_PARTITIONS_GRACE {
            return Some(format!(
                "holds no partition of the location topic for {} s",
                idle.as_secs()
            ));
        }
    }
    let still = now.saturating_duration_since(s.progress_at);
    match s.lag {
        Some(lag) if lag > 0 && still >= STALL_AFTER => Some(format!(
            "stored nothing for {} s with {lag} records waiting",
            still.as_secs()
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(start: Instant) -> Arc<ConsumerHealth> {
        ConsumerHealth::starting_at(Arc::new(Metrics::new()), start)
    }

    fn stalled(h: &ConsumerHealth) -> i64 {
        h.metrics.consumer_stalled.get()
    }

    #[test]
    fn a_member_without_partitions_is_not_ready_after_the_grace() {
        let t0 = Instant::now();
        let h = health(t0);
        h.polled_at(None, Some(0), t0);
        assert!(h.check_at(t0 + NO_PARTITIONS_GRACE / 2).is_ok());
        let why = h.check_at(t0 + NO_PARTITIONS_GRACE).unwrap_err();
        assert!(why.contains("no partition"), "{why}");
        assert_eq!(stalled(&h), 1);
        assert_eq!(h.metrics.consumer_partitions.get(), 0);
        // Partitions given back: ready again at once.
        h.polled_at(Some(0), Some(3), t0 + NO_PARTITIONS_GRACE);
        assert!(h.check_at(t0 + NO_PARTITIONS_GRACE * 2).is_ok());
        assert_eq!(stalled(&h), 0);
        assert_eq!(h.metrics.consumer_partitions.get(), 3);
    }

    #[test]
    fn records_waiting_with_nothing_stored_is_a_stall() {
        let t0 = Instant::now();
        let h = health(t0);
        h.polled_at(Some(500), Some(2), t0);
        assert!(h.check_at(t0 + STALL_AFTER / 2).is_ok());
        let why = h.check_at(t0 + STALL_AFTER).unwrap_err();
        assert!(why.contains("500 records waiting"), "{why}");
        // A poll that does not know its lag keeps the last one known.
        h.polled_at(None, Some(2), t0 + STALL_AFTER);
        assert_eq!(stalled(&h), 1);
        h.polled_at(Some(0), Some(2), t0 + STALL_AFTER);
        assert!(h.check_at(t0 + STALL_AFTER * 3 / 2).is_ok());
    }

    #[test]
    fn an_idle_log_or_an_unpartitioned_one_is_never_a_stall() {
        let t0 = Instant::now();
        let h = health(t0);
        h.polled_at(Some(0), None, t0);
        assert!(h.check_at(t0 + STALL_AFTER * 10).is_ok());
        assert_eq!(h.metrics.consumer_partitions.get(), -1);
        let h = health(t0);
        h.polled_at(None, None, t0);
        assert!(h.check_at(t0 + STALL_AFTER * 10).is_ok());
    }
}

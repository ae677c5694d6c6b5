//! Cancelling long computations: a flag the caller raises (its client went away, its deadline
//! passed) and the computation reads every so often, stopping with [`Cancelled`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Work items (candidates, cells) a loop handles between two looks at its [`Cancel`]: a look
/// is one relaxed atomic load, so a cancelled query stops within microseconds of work.
pub const CHECK_EVERY: usize = 1024;

/// A cancellation flag shared between whoever asked for some work and the work itself. Clones
/// share the flag.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

/// The work was cancelled before it finished; its partial result is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

impl Cancel {
    /// A flag not raised yet.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once the flag is raised.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }

    /// A guard that raises the flag when dropped, unless [`CancelOnDrop::disarm`]ed: held by a
    /// future whose work runs elsewhere, so dropping the future (the client went away, a
    /// deadline passed) stops the work.
    pub fn on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(Some(self.clone()))
    }
}

/// See [`Cancel::on_drop`].
#[derive(Debug)]
pub struct CancelOnDrop(Option<Cancel>);

impl CancelOnDrop {
    /// The work finished: dropping the guard no longer cancels it.
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.cancel();
        }
    }
}

/// Counts work items and looks at a [`Cancel`] at the first of them, then every
/// [`CHECK_EVERY`]: a piece of work that starts after its query was abandoned (one of many
/// queued on the workers) stops at once instead of after a stretch of work for nobody.
#[derive(Debug)]
pub struct Ticker<'a> {
    cancel: &'a Cancel,
    done: usize,
}

impl<'a> Ticker<'a> {
    pub fn new(cancel: &'a Cancel) -> Self {
        Ticker {
            cancel,
            done: CHECK_EVERY,
        }
    }

    /// Records `items` more done; `Err(Cancelled)` when the flag is found raised.
    pub fn tick(&mut self, items: usize) -> Result<(), Cancelled> {
        self.done += items;
        if self.done >= CHECK_EVERY {
            self.done = 0;
            self.cancel.check()
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_guard_cancels_and_a_disarmed_one_does_not() {
        let cancel = Cancel::new();
        cancel.on_drop().disarm();
        assert!(!cancel.is_cancelled());
        let work = cancel.clone();
        drop(cancel.on_drop());
        assert!(work.is_cancelled());
        assert_eq!(work.check(), Err(Cancelled));
    }

    #[test]
    fn a_ticker_looks_at_once_then_every_so_many_items() {
        let cancel = Cancel::new();
        cancel.cancel();
        assert_eq!(Ticker::new(&cancel).tick(1), Err(Cancelled));
        let cancel = Cancel::new();
        let mut ticker = Ticker::new(&cancel);
        assert_eq!(ticker.tick(1), Ok(()));
        cancel.cancel();
        // Not looked at again before CHECK_EVERY items, then at once.
        assert_eq!(ticker.tick(CHECK_EVERY - 1), Ok(()));
        assert_eq!(ticker.tick(1), Err(Cancelled));
    }
}

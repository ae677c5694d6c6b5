//! Splitting a long query over the cores.

use std::sync::OnceLock;

use super::grid::Level;
use super::ContactIndex;
use crate::contact::ConnectionQuery;

/// Own pings from which a query is split over cores.
pub(super) const PARALLEL_FROM: usize = 256;
static CORES: OnceLock<usize> = OnceLock::new();

pub(super) fn cores() -> usize {
    *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8)
    })
}

/// The result of a scoped worker. A worker's panic goes on in the caller: an index or an
/// answer without that worker's part would look complete.
pub(super) fn joined<T>(worker: std::thread::ScopedJoinHandle<'_, T>) -> T {
    worker
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Pieces per core that [`split_over_cores`] cuts its items into.
const PIECES_PER_CORE: usize = 4;

/// Runs `work` over pieces of `items` on every core and concatenates the results, in no
/// particular order, on rayon's pool of one thread per core (a worker's panic goes on in the
/// caller). A thread started per query ran late: Linux queues a new thread on its parent's
/// core and moves it to an idle one only at a later balancing, so on two cores the second half
/// of a 3-day query began about 1.2 ms after the first (the median, on a virtual machine) and
/// the halves mostly ran one after the other. Waking a sleeping thread puts it on an idle core
/// at once. Pieces smaller than halves let whichever thread runs take the rest.
pub(super) fn split_over_cores<T: Sync>(
    items: &[T],
    work: impl Fn(&[T]) -> Vec<u32> + Sync,
) -> Vec<u32> {
    use rayon::prelude::*;
    let cores = cores();
    if cores < 2 {
        return work(items);
    }
    let piece = items.len().div_ceil(cores * PIECES_PER_CORE).max(1);
    items
        .par_chunks(piece)
        .map(&work)
        .reduce(Vec::new, |mut a, b| {
            a.extend(b);
            a
        })
}

impl ContactIndex {
    /// [`Self::probe_runs`] over parts of the track on several cores: a long track (days of
    /// pings) is answered in a fraction of the time one core takes. Short tracks stay on one
    /// core, where starting threads would cost more than it saves.
    pub(super) fn probe_parallel(
        &self,
        own: &[u32],
        me: Option<u32>,
        q: &ConnectionQuery,
        level: &Level,
        k: i32,
        gap: i64,
    ) -> Vec<u32> {
        if own.len() < PARALLEL_FROM {
            return self.probe_runs(own, me, q, level, k, gap);
        }
        split_over_cores(own, |part| self.probe_runs(part, me, q, level, k, gap))
    }
}

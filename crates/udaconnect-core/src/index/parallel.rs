//! Splitting work over threads: the port the index asks for them through ([`Workers`]), an
//! adapter on threads started per call ([`Threads`]), and the pieces of a long query.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::probe::Asked;
use super::ContactIndex;

/// The threads the index splits its work over: the pieces of a long query, the parts of a
/// bulk layout, and an allocation made while a bulk load is still reading. The index never
/// starts a thread or reaches for a pool itself: whoever builds it hands one of these in (the
/// server and the benchmark an adapter over rayon's pool, tests [`Threads`]).
///
/// The index calls it once per query or per piece, never per row.
pub trait Workers: Send + Sync + 'static {
    /// How many threads work at once: a split is cut into pieces in proportion, and with fewer
    /// than two the work stays on the calling thread.
    fn threads(&self) -> usize;

    /// `piece(i)` for every `i` in `0..pieces`, concatenated in no particular order. Returns
    /// once every piece has run; a piece's panic goes on in the caller (an answer without that
    /// piece's part would look complete).
    fn split(&self, pieces: usize, piece: &(dyn Fn(usize) -> Vec<u32> + Sync)) -> Vec<u32>;

    /// Runs every task at once, each on a thread, and returns when all have finished; a task's
    /// panic goes on in the caller (an index without that task's part would look complete).
    fn run_all<'a>(&self, tasks: Vec<Box<dyn FnOnce() + Send + 'a>>);

    /// Starts `task` on a thread named `name` and returns at once. When no thread can be had,
    /// the task is dropped unrun: the caller then does without what it would have made.
    fn spawn(&self, name: &str, task: Box<dyn FnOnce() + Send>);
}

pub type DynWorkers = Arc<dyn Workers>;

/// [`Workers`] on threads started for each call, the calling thread taking pieces of a split
/// too: no pool to keep, so it suits tests and short-lived tools. (A long-running process
/// answers split queries sooner on a pool: a thread started per query is queued on its
/// parent's core and reaches an idle one only at a later balancing.)
#[derive(Debug, Clone, Copy)]
pub struct Threads {
    threads: usize,
}

impl Threads {
    /// Up to `threads` threads at once (at least one: the caller's).
    pub fn new(threads: usize) -> Self {
        Threads {
            threads: threads.max(1),
        }
    }

    /// One thread per core, up to eight: more pieces than that cost more to hand out and
    /// gather than they save on the machines the product runs on.
    pub fn per_core() -> Self {
        Self::new(
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(8),
        )
    }
}

impl Workers for Threads {
    fn threads(&self) -> usize {
        self.threads
    }

    /// Each thread, the caller's among them, takes the next piece not yet taken until none is
    /// left.
    fn split(&self, pieces: usize, piece: &(dyn Fn(usize) -> Vec<u32> + Sync)) -> Vec<u32> {
        let next = AtomicUsize::new(0);
        let done = Mutex::new(Vec::new());
        let work = || {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= pieces {
                    break;
                }
                out.extend(piece(i));
            }
            done.lock().unwrap_or_else(|e| e.into_inner()).push(out);
        };
        std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..self.threads.min(pieces))
                .map(|_| scope.spawn(work))
                .collect();
            work();
            helpers.into_iter().for_each(joined);
        });
        done.into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .concat()
    }

    fn run_all<'a>(&self, tasks: Vec<Box<dyn FnOnce() + Send + 'a>>) {
        std::thread::scope(|scope| {
            let workers: Vec<_> = tasks.into_iter().map(|t| scope.spawn(t)).collect();
            workers.into_iter().for_each(joined);
        });
    }

    fn spawn(&self, name: &str, task: Box<dyn FnOnce() + Send>) {
        // Without a thread the task is dropped unrun, as the port allows.
        let _ = std::thread::Builder::new().name(name.into()).spawn(task);
    }
}

/// The result of a scoped worker. A worker's panic goes on in the caller: an index or an
/// answer without that worker's part would look complete.
fn joined<T>(worker: std::thread::ScopedJoinHandle<'_, T>) -> T {
    worker
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Own pings from which a query is split over cores.
pub(super) const PARALLEL_FROM: usize = 256;

/// Pieces per thread that [`split_over`] cuts its items into.
const PIECES_PER_CORE: usize = 4;

/// Runs `work` over pieces of `items` on every worker thread and concatenates the results, in
/// no particular order (a worker's panic goes on in the caller). Pieces smaller than an equal
/// share per thread let whichever thread runs take the rest.
pub(super) fn split_over<T: Sync>(
    workers: &dyn Workers,
    items: &[T],
    work: impl Fn(&[T]) -> Vec<u32> + Sync,
) -> Vec<u32> {
    let threads = workers.threads();
    if threads < 2 {
        return work(items);
    }
    let piece = items.len().div_ceil(threads * PIECES_PER_CORE).max(1);
    let pieces = items.len().div_ceil(piece);
    workers.split(pieces, &|i| {
        work(&items[i * piece..((i + 1) * piece).min(items.len())])
    })
}

impl ContactIndex {
    /// [`Self::probe_runs`] over parts of the track on several cores: a long track (days of
    /// pings) is answered in a fraction of the time one core takes. Short tracks stay on one
    /// core, where handing out pieces would cost more than it saves.
    pub(super) fn probe_parallel(&self, own: &[u32], asked: Asked<'_>, gap: i64) -> Vec<u32> {
        if own.len() < PARALLEL_FROM {
            return self.probe_runs(own, asked, gap);
        }
        split_over(&*self.workers, own, |part| {
            self.probe_runs(part, asked, gap)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_run_every_piece_once_whatever_their_number() {
        for threads in [1, 2, 3, 8] {
            let workers = Threads::new(threads);
            for pieces in [0, 1, 2, 7, 40] {
                let mut got = workers.split(pieces, &|i| vec![i as u32, 1000 + i as u32]);
                got.sort_unstable();
                let mut want: Vec<u32> = (0..pieces as u32)
                    .chain(1000..1000 + pieces as u32)
                    .collect();
                want.sort_unstable();
                assert_eq!(got, want, "{threads} threads, {pieces} pieces");
            }
        }
    }

    #[test]
    fn split_over_covers_every_item_in_pieces() {
        let items: Vec<u32> = (0..1001).collect();
        for threads in [1, 2, 5] {
            let mut got = split_over(&Threads::new(threads), &items, |part| part.to_vec());
            got.sort_unstable();
            assert_eq!(got, items, "{threads} threads");
        }
    }

    #[test]
    fn a_panic_in_a_piece_or_a_task_goes_on_in_the_caller() {
        let workers = Threads::new(4);
        let split = std::panic::catch_unwind(|| {
            workers.split(16, &|i| {
                assert_ne!(i, 11, "piece 11 fails");
                vec![i as u32]
            })
        });
        assert!(split.is_err());
        let run = std::panic::catch_unwind(|| {
            workers.run_all(vec![Box::new(|| {}), Box::new(|| panic!("task fails"))])
        });
        assert!(run.is_err());
    }

    #[test]
    fn run_all_lets_tasks_write_disjoint_parts() {
        let mut parts = vec![0u32; 12];
        let tasks: Vec<Box<dyn FnOnce() + Send + '_>> = parts
            .chunks_mut(4)
            .enumerate()
            .map(|(i, part)| {
                Box::new(move || part.fill(i as u32 + 1)) as Box<dyn FnOnce() + Send + '_>
            })
            .collect();
        Threads::new(2).run_all(tasks);
        assert_eq!(parts, [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
    }

    #[test]
    fn a_spawned_task_runs_on_its_named_thread() {
        let (tx, rx) = std::sync::mpsc::channel();
        Threads::new(1).spawn(
            "index-test",
            Box::new(move || {
                let _ = tx.send(std::thread::current().name().map(str::to_string));
            }),
        );
        assert_eq!(rx.recv().unwrap().as_deref(), Some("index-test"));
    }
}

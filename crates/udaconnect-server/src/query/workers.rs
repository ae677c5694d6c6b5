//! The threads the contact index splits its work over, on rayon's pool.

use udaconnect_core::index::{Threads, Workers};

/// [`Workers`] for a long-running process: the pieces of a split query go to rayon's pool of
/// one thread per core. A thread started per query ran late: Linux queues a new thread on its
/// parent's core and moves it to an idle one only at a later balancing, so on two cores the
/// second half of a 3-day query began about 1.2 ms after the first (the median, on a virtual
/// machine) and the halves mostly ran one after the other; a sleeping pool thread that is
/// woken is put on an idle core at once. The parts of a bulk layout, few and long, run on
/// threads of their own ([`Threads`]), as the allocation made while a load reads does.
#[derive(Debug, Clone, Copy)]
pub struct RayonWorkers {
    threads: Threads,
}

impl RayonWorkers {
    /// Pieces cut for one thread per core, up to eight.
    pub fn new() -> Self {
        RayonWorkers {
            threads: Threads::per_core(),
        }
    }
}

impl Default for RayonWorkers {
    fn default() -> Self {
        Self::new()
    }
}

impl Workers for RayonWorkers {
    fn threads(&self) -> usize {
        self.threads.threads()
    }

    /// On rayon's pool, pieces halved among its threads as they steal; a piece's panic goes on
    /// in the caller.
    fn split(&self, pieces: usize, piece: &(dyn Fn(usize) -> Vec<u32> + Sync)) -> Vec<u32> {
        use rayon::prelude::*;
        (0..pieces)
            .into_par_iter()
            .map(piece)
            .reduce(Vec::new, |mut a, b| {
                a.extend(b);
                a
            })
    }

    fn run_all<'a>(&self, tasks: Vec<Box<dyn FnOnce() + Send + 'a>>) {
        self.threads.run_all(tasks);
    }

    fn spawn(&self, name: &str, task: Box<dyn FnOnce() + Send>) {
        self.threads.spawn(name, task);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_piece_runs_once_on_the_pool() {
        let workers = RayonWorkers::new();
        for pieces in [0, 1, 2, 33] {
            let mut got = workers.split(pieces, &|i| vec![i as u32; 2]);
            got.sort_unstable();
            let want: Vec<u32> = (0..pieces as u32).flat_map(|i| [i, i]).collect();
            assert_eq!(got, want, "{pieces} pieces");
        }
    }

    #[test]
    fn a_panic_in_a_piece_goes_on_in_the_caller() {
        let workers = RayonWorkers::new();
        let split = std::panic::catch_unwind(|| {
            workers.split(8, &|i| {
                assert_ne!(i, 5, "piece 5 fails");
                vec![i as u32]
            })
        });
        assert!(split.is_err());
    }
}

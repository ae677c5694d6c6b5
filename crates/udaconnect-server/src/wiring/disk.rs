//! Free space on the file system a process writes its data to (the embedded log, stores and
//! id file): measured every second into `udaconnect_disk_free_bytes`, a warning below the
//! low-space mark, and below the minimum ingest answers 503 and `/ready` fails until space
//! returns. Refusing early keeps a full disk from failing writes halfway.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use udaconnect_core::{Error, Result};

use crate::metrics::Metrics;
use crate::wiring::shutdown::every;

/// How often free space is measured.
const EVERY: Duration = Duration::from_secs(1);

/// Default of `--disk-low-space`: a warning below this.
pub const DEFAULT_LOW_SPACE: u64 = 1 << 30;
/// Default of `--disk-min-free`: ingest refused below this.
pub const DEFAULT_MIN_FREE: u64 = 64 << 20;

pub struct DiskGuard {
    dir: PathBuf,
    low_space: u64,
    min_free: u64,
    /// Bytes free at the last measure (`u64::MAX` before the first, or when it fails).
    free: AtomicU64,
    low: AtomicBool,
    metrics: Arc<Metrics>,
}

impl DiskGuard {
    /// A guard of the file system holding `dir`, measured once now.
    pub fn new(dir: &Path, low_space: u64, min_free: u64, metrics: Arc<Metrics>) -> Arc<Self> {
        let guard = Arc::new(DiskGuard {
            dir: dir.to_path_buf(),
            low_space: low_space.max(min_free),
            min_free,
            free: AtomicU64::new(u64::MAX),
            low: AtomicBool::new(false),
            metrics,
        });
        guard.measure();
        guard
    }

    fn measure(&self) {
        let free = match rustix::fs::statvfs(&self.dir) {
            Ok(s) => s.f_bavail.saturating_mul(s.f_frsize),
            Err(e) => {
                tracing::debug!(dir = %self.dir.display(), error = %e, "free space unknown");
                return;
            }
        };
        let before = self.free.swap(free, Ordering::Relaxed);
        self.metrics.disk_free.set(free.min(i64::MAX as u64) as i64);
        let low = free < self.low_space;
        if low != self.low.swap(low, Ordering::Relaxed) {
            if low {
                tracing::warn!(dir = %self.dir.display(), free_bytes = free, low_space = self.low_space, "disk space low");
            } else {
                tracing::info!(dir = %self.dir.display(), free_bytes = free, "disk space back above the low-space mark");
            }
        }
        let (was_full, full) = (before < self.min_free, free < self.min_free);
        if full && !was_full {
            tracing::error!(dir = %self.dir.display(), free_bytes = free, min_free = self.min_free, "disk nearly full: ingest refused until space returns");
        } else if was_full && !full {
            tracing::info!(dir = %self.dir.display(), free_bytes = free, "disk space returned: ingest accepted again");
        }
    }

    /// `Unavailable` (503 with Retry-After, gRPC `UNAVAILABLE`) while free space is below the
    /// minimum.
    pub fn check(&self) -> Result<()> {
        let free = self.free.load(Ordering::Relaxed);
        if free < self.min_free {
            return Err(Error::Unavailable(format!(
                "disk space (only {free} bytes free, below the minimum of {})",
                self.min_free
            )));
        }
        Ok(())
    }

    /// Measures every second until `stop` turns true.
    pub async fn watch(self: Arc<Self>, stop: watch::Receiver<bool>) {
        every(EVERY, stop, move || self.measure(), |_| {}).await;
    }
}

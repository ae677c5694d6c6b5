//! Hi/lo id blocks from a file: `next` free id, replaced atomically on every lease.
//!
//! It lives outside the location store on purpose: rebuilding that store from the log must
//! never hand out an id that a logged record already carries.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::sync::Mutex;
use udaconnect_core::ports::IdLeaser;
use udaconnect_core::record::FIX_ID_BASE;
use udaconnect_core::{Error, Result};

pub struct FileIdLeaser {
    path: PathBuf,
    /// The next id never leased, once read from the file.
    next: Mutex<Option<i64>>,
}

impl FileIdLeaser {
    /// The leaser of ids named `name` in directory `dir`.
    pub fn new(dir: impl AsRef<Path>, name: &str) -> Result<Self> {
        fs::create_dir_all(dir.as_ref())
            .map_err(|e| Error::Internal(format!("id leaser: create directory: {e}")))?;
        Ok(FileIdLeaser {
            path: dir.as_ref().join(format!("{name}.next")),
            next: Mutex::new(None),
        })
    }

    fn read(path: &Path) -> Result<i64> {
        match fs::read_to_string(path) {
            Ok(s) => s
                .trim()
                .parse::<i64>()
                .map_err(|_| Error::Internal(format!("corrupt id file {}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(1),
            Err(e) => Err(Error::Internal(format!("id leaser: read: {e}"))),
        }
    }

    fn write(path: &Path, next: i64) -> Result<()> {
        // A full or failing disk is a condition to retry later (503), not a server bug.
        let io = |e: std::io::Error| Error::Unavailable(format!("id leaser (write failed: {e})"));
        let tmp = path.with_extension("tmp");
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(next.to_string().as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        fs::rename(&tmp, path).map_err(io)?;
        File::open(path.parent().unwrap_or(Path::new(".")))
            .and_then(|d| d.sync_all())
            .map_err(io)
    }

    async fn advance(&self, to: impl FnOnce(i64) -> i64) -> Result<i64> {
        let mut guard = self.next.lock().await;
        let path = self.path.clone();
        let current = match *guard {
            Some(n) => n,
            None => tokio::task::spawn_blocking({
                let path = path.clone();
                move || Self::read(&path)
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))??,
        };
        let next = to(current).max(current);
        if next >= FIX_ID_BASE {
            return Err(Error::Internal("id space exhausted".into()));
        }
        if next != current {
            tokio::task::spawn_blocking(move || Self::write(&path, next))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??;
        }
        *guard = Some(next);
        Ok(current)
    }
}

#[async_trait]
impl IdLeaser for FileIdLeaser {
    async fn lease(&self, size: u64) -> Result<i64> {
        self.advance(|n| n.saturating_add(size.max(1) as i64)).await
    }

    async fn reserve_through(&self, id: i64) -> Result<()> {
        self.advance(|n| n.max(id.saturating_add(1)))
            .await
            .map(|_| ())
    }
}

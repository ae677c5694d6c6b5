//! Embedded stores on SQLite.
//!
//! Each store is one database file in WAL mode: one writer connection, a small pool of reader
//! connections that read concurrently with it. `synchronous = FULL` because the consumer commits
//! its log offset right after a write returns: the write must survive a power cut, not only a
//! process crash. Calls run on tokio's blocking pool; SQLite has no async interface.

/// Declares a store kept in a SQLite file of its own: the struct, and `open`, which creates the
/// file where it is missing and applies `$schema` (every statement `IF NOT EXISTS`).
macro_rules! sqlite_store {
    ($(#[$doc:meta])* $name:ident, $schema:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            db: super::Db,
        }

        impl $name {
            pub fn open(path: impl AsRef<std::path::Path>) -> udaconnect_core::Result<Self> {
                Ok($name {
                    db: super::Db::open(path, $schema)?,
                })
            }
        }
    };
}

mod accounts;
mod keys;
mod locations;
mod mail;
mod persons;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::config::DbConfig;
use rusqlite::{CachedStatement, Connection, OpenFlags, OptionalExtension, Row};
use udaconnect_core::{Error, Result};

pub use accounts::SqliteAccountStore;
pub use keys::SqliteKeyStore;
pub use locations::SqliteLocationStore;
pub use mail::SqliteSentMail;
pub use persons::SqlitePersonStore;

/// Reader connections: at most this many reads run at once, each on a connection kept open
/// for reuse. A read past them waits for one: opening a connection for it instead (and
/// dropping it after) made every such read parse the schema again, which took most of the
/// time of the tracker endpoints' device reads under 64 concurrent requests.
const POOLED_READERS: usize = 8;
/// Page cache of a reader connection, in KiB. Contact queries read the in-memory index, not
/// SQLite, so a small cache serves single-row reads and keeps memory per stored location low.
const READER_CACHE_KIB: i64 = 4 * 1024;
/// Page cache of the writer: batched upserts touch the upper levels of three B-trees (rows, time
/// index, person-time index) on every insert; keeping those pages cached keeps the consumer's
/// rate from falling as the store grows.
const WRITER_CACHE_KIB: i64 = 48 * 1024;
/// Page cache of a connection opened for one long sequential read (see [`Db::read_through`]).
const SCAN_CACHE_KIB: i64 = 256;

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// One permit per reader connection: held by a read from before it takes a connection
    /// until after it gives it back.
    reading: Arc<tokio::sync::Semaphore>,
}

/// A SQLite database with a writer and pooled readers.
#[derive(Clone)]
pub(crate) struct Db(Arc<Inner>);

pub(crate) fn sql_err(e: rusqlite::Error) -> Error {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            Error::Unavailable(format!("sqlite store ({e})"))
        }
        other => Error::Internal(format!("sqlite store: {other}")),
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

impl Db {
    /// Opens (creating) the database at `path` and applies `schema`, which must be idempotent.
    pub(crate) fn path(&self) -> &Path {
        &self.0.path
    }

    pub(crate) fn open(path: impl AsRef<Path>, schema: &str) -> Result<Db> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Internal(format!("sqlite store: create directory: {e}")))?;
        }
        let writer = Connection::open(&path).map_err(sql_err)?;
        configure(&writer).map_err(sql_err)?;
        writer.execute_batch(schema).map_err(sql_err)?;
        Ok(Db(Arc::new(Inner {
            path,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            reading: Arc::new(tokio::sync::Semaphore::new(POOLED_READERS)),
        })))
    }

    /// Applies each of `steps` (a version and its SQL) this file has not recorded yet, each in
    /// one transaction with its record: for changes `IF NOT EXISTS` cannot say, such as a
    /// column added to a table the schema made.
    pub(crate) fn migrate(&self, steps: &[(i64, &str)]) -> Result<()> {
        let mut conn = self
            .0
            .writer
            .lock()
            .map_err(|_| Error::Internal("sqlite store: writer poisoned".into()))?;
        let apply = |conn: &mut Connection| -> rusqlite::Result<()> {
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS udaconnect_migrations (
                     version    INTEGER PRIMARY KEY,
                     applied_at INTEGER NOT NULL
                 )",
            )?;
            for (version, sql) in steps {
                let tx = conn.transaction()?;
                let done = tx
                    .query_row(
                        "SELECT 1 FROM udaconnect_migrations WHERE version = ?1",
                        [version],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
                if !done {
                    tx.execute_batch(sql)?;
                    tx.execute(
                        "INSERT INTO udaconnect_migrations (version, applied_at)
                         VALUES (?1, unixepoch())",
                        [version],
                    )?;
                }
                tx.commit()?;
            }
            Ok(())
        };
        apply(&mut conn).map_err(sql_err)
    }

    fn open_reader(path: &Path, cache_kib: i64) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "cache_size", -cache_kib)?;
        // One plan per statement, whatever is bound (the query planner stability guarantee):
        // without it, under 64 concurrent requests, SQLite prepared the device reads again
        // (`sqlite3Reprepare`) in a fifth of the OsmAnd endpoint's profile; with it, never.
        // These reads are lookups by key, whose best plan does not depend on the key's value.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        Ok(conn)
    }

    /// Runs `f` on a connection of its own with a small page cache, closed afterwards: for
    /// reads that pass over much of the file once (building the index at start). On a pooled
    /// reader, such a read fills the reader's cache with pages read once, and the cache keeps
    /// them for the life of the process: 8 MiB of the 96 MiB resident after a start at 1M
    /// locations.
    pub(crate) async fn read_through<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let path = self.0.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = Self::open_reader(&path, SCAN_CACHE_KIB).map_err(sql_err)?;
            f(&conn).map_err(sql_err)
        })
        .await
        .map_err(|e| Error::Internal(format!("sqlite store: {e}")))?
    }

    /// Runs `f` on the writer connection.
    pub(crate) async fn write<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner
                .writer
                .lock()
                .map_err(|_| Error::Internal("sqlite store: writer poisoned".into()))?;
            f(&mut conn).map_err(sql_err)
        })
        .await
        .map_err(|e| Error::Internal(format!("sqlite store: {e}")))?
    }

    /// Checkpoints the write-ahead log into the file and truncates it, so no earlier version
    /// of a page stays on disk there. [`Error::Unavailable`] when a reader held it.
    pub(crate) async fn checkpoint(&self) -> Result<()> {
        let busy = self
            .write(|c| {
                c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .await?;
        if busy != 0 {
            return Err(Error::Unavailable(format!(
                "sqlite store {} (a reader held the write-ahead log; its old pages stay until \
                 the next checkpoint)",
                self.path().display()
            )));
        }
        Ok(())
    }

    /// Runs `sql` (a delete taking one id) for an erasure, with the freed bytes overwritten
    /// (`secure_delete`, for this statement only: other writes need not pay for it), then
    /// checkpoints and truncates the write-ahead log, which still holds the pages as they were.
    /// Returns the rows deleted.
    pub(crate) async fn erase(&self, sql: &'static str, id: i64) -> Result<u64> {
        let (deleted, busy) = self
            .write(move |c| {
                c.pragma_update(None, "secure_delete", true)?;
                let deleted = c.execute(sql, [id]);
                c.pragma_update(None, "secure_delete", false)?;
                let deleted = deleted? as u64;
                let busy: i64 = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
                Ok((deleted, busy != 0))
            })
            .await?;
        if busy {
            // Deleted, but a reader held the write-ahead log: its old pages stay until a later
            // checkpoint. Erasing again (idempotent) finishes the job.
            return Err(Error::Unavailable(format!(
                "sqlite store {} (a reader held the write-ahead log; the erasure is incomplete)",
                self.path().display()
            )));
        }
        Ok(deleted)
    }

    /// Runs `f` on a reader connection, waiting for one while all are busy.
    pub(crate) async fn read<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let inner = self.0.clone();
        let permit = inner
            .reading
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("sqlite store: readers closed".into()))?;
        tokio::task::spawn_blocking(move || {
            // Moved in: a caller that stops waiting does not free its reader early.
            let _permit = permit;
            let pooled = inner.readers.lock().ok().and_then(|mut p| p.pop());
            let conn = match pooled {
                Some(c) => c,
                None => Self::open_reader(&inner.path, READER_CACHE_KIB).map_err(sql_err)?,
            };
            let out = f(&conn).map_err(sql_err);
            // Always kept: the permits allow no more connections than the pool holds.
            if let Ok(mut pool) = inner.readers.lock() {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(|e| Error::Internal(format!("sqlite store: {e}")))?
    }

    /// Runs `sql` once per item of `items`, bound by `bind`, in one transaction.
    pub(crate) async fn execute_each<T, F>(&self, sql: String, items: Vec<T>, bind: F) -> Result<()>
    where
        T: Send + 'static,
        F: Fn(&mut CachedStatement<'_>, &T) -> rusqlite::Result<usize> + Send + 'static,
    {
        self.write(move |c| {
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare_cached(&sql)?;
                for item in &items {
                    bind(&mut stmt, item)?;
                }
            }
            tx.commit()
        })
        .await
    }

    /// The row `sql` selects for the id `?1`, read by `row`; `None` when there is none.
    pub(crate) async fn row_by_id<T>(
        &self,
        sql: String,
        id: i64,
        row: fn(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>>
    where
        T: Send + 'static,
    {
        self.read(move |c| c.prepare_cached(&sql)?.query_row([id], row).optional())
            .await
    }

    pub(crate) async fn ping(&self) -> Result<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_past_the_pool_wait_for_a_reader() {
        let dir = tempfile::tempdir().unwrap();
        let schema = "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)";
        let db = Db::open(dir.path().join("t.sqlite3"), schema).unwrap();
        db.write(|c| c.execute("INSERT INTO t (k, v) VALUES (1, 10)", []))
            .await
            .unwrap();
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let reads: Vec<_> = (0..64)
            .map(|_| {
                let (db, running, most) = (db.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    db.read(move |c| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        let v =
                            c.query_row("SELECT v FROM t WHERE k = 1", [], |r| r.get::<_, i64>(0));
                        running.fetch_sub(1, Ordering::SeqCst);
                        v
                    })
                    .await
                })
            })
            .collect();
        for read in reads {
            assert_eq!(read.await.unwrap().unwrap(), 10);
        }
        let most = most.load(Ordering::SeqCst);
        assert!(most <= POOLED_READERS, "{most} reads at once");
        assert!(db.0.readers.lock().unwrap().len() <= POOLED_READERS);
    }
}

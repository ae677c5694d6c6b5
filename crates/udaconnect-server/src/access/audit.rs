//! The audit log's writer: a staff read of someone's data waits until its row is durable,
//! and the rows of the reads waiting at the same moment are written together, in one
//! transaction (a group commit).
//!
//! One task per process takes every row waiting in the queue (at most `MOST_PER_WRITE`),
//! writes them with one `record_reads` (one commit: one sync to disk on SQLite, one WAL
//! flush on PostgreSQL) and then tells each waiting read the outcome. A failure reaches every
//! read of that batch, and each is refused, as a read whose own row failed would be. While
//! one batch is written the next gathers, so under load one sync serves every read that
//! arrived during the last, and a lone read costs what a write of its own did.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use udaconnect_core::audit::AuditEntry;
use udaconnect_core::ports::DynAccountStore;
use udaconnect_core::{Error, Result};

/// Rows waiting at most: past it a read waits for room, so a store that stalls holds
/// requests back instead of growing a queue in memory.
const QUEUE: usize = 1024;
/// Rows written in one transaction at most, so that one write stays short.
const MOST_PER_WRITE: usize = 256;

/// A read's row, and where its outcome goes.
struct Waiting {
    entry: AuditEntry,
    done: oneshot::Sender<Result<()>>,
}

/// Writes audit rows in groups for every read of one process.
pub struct AuditWriter {
    /// Where reads leave their rows; `None` once closed, so a late read is refused rather
    /// than answered unrecorded.
    queue: Mutex<Option<mpsc::Sender<Waiting>>>,
    /// The writing task: [`AuditWriter::close`] waits for it to write what is queued.
    task: Mutex<Option<JoinHandle<()>>>,
    /// Transactions begun and rows taken so far: how well reads are grouped.
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    writes: AtomicU64,
    rows: AtomicU64,
}

impl AuditWriter {
    /// Starts the writing task over `store`.
    pub fn start(store: DynAccountStore) -> AuditWriter {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let counts = Arc::new(Counts::default());
        let task = tokio::spawn(write_groups(store, waiting, counts.clone()));
        AuditWriter {
            queue: Mutex::new(Some(queue)),
            task: Mutex::new(Some(task)),
            counts,
        }
    }

    /// Writes `entry` with the others waiting now; returns once it is durable, or with the
    /// error that kept its group from being written.
    pub async fn record(&self, entry: AuditEntry) -> Result<()> {
        let queue = self
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(closed)?;
        let (done, outcome) = oneshot::channel();
        queue
            .send(Waiting { entry, done })
            .await
            .map_err(|_| closed())?;
        // A writer gone before it answered wrote nothing that can be vouched for.
        outcome.await.unwrap_or_else(|_| Err(closed()))
    }

    /// Refuses further rows, and waits until the ones queued are written.
    pub async fn close(&self) {
        drop(self.queue.lock().unwrap_or_else(|e| e.into_inner()).take());
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "the audit writer failed");
            }
        }
    }

    /// Transactions begun so far (each writes one group).
    pub fn writes(&self) -> u64 {
        self.counts.writes.load(Ordering::SeqCst)
    }

    /// Rows taken by the writer so far (written, or refused with their group).
    pub fn rows(&self) -> u64 {
        self.counts.rows.load(Ordering::SeqCst)
    }

    /// Rows waiting for the writer.
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.queue
            .lock()
            .unwrap()
            .as_ref()
            .map_or(0, |q| q.max_capacity() - q.capacity())
    }
}

fn closed() -> Error {
    Error::Unavailable("audit log (the process is stopping)".into())
}

/// Until every sender is gone: takes what waits, writes it in one transaction, answers each.
async fn write_groups(
    store: DynAccountStore,
    mut waiting: mpsc::Receiver<Waiting>,
    counts: Arc<Counts>,
) {
    let mut group = Vec::with_capacity(MOST_PER_WRITE);
    while waiting.recv_many(&mut group, MOST_PER_WRITE).await > 0 {
        // A read whose client left was never answered, so there is no read to record.
        group.retain(|w: &Waiting| !w.done.is_closed());
        if group.is_empty() {
            continue;
        }
        let entries: Vec<AuditEntry> = group.iter().map(|w| w.entry.clone()).collect();
        counts
            .rows
            .fetch_add(entries.len() as u64, Ordering::SeqCst);
        counts.writes.fetch_add(1, Ordering::SeqCst);
        let outcome = store.record_reads(&entries).await;
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, rows = entries.len(), "audit rows not written, their reads refused");
        }
        for w in group.drain(..) {
            // One that gave up meanwhile needs no answer.
            let _ = w.done.send(match &outcome {
                Ok(()) => Ok(()),
                Err(e) => Err(same(e)),
            });
        }
    }
}

/// `e` again, for each read of the group it failed (an error is not `Clone`): unavailable
/// stays unavailable (503, try again), anything else is internal.
fn same(e: &Error) -> Error {
    match e {
        Error::Unavailable(what) => Error::Unavailable(what.clone()),
        Error::Internal(what) => Error::Internal(what.clone()),
        other => Error::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use chrono::Utc;
    use udaconnect_core::auth::Role;
    use udaconnect_store::SqliteAccountStore;

    use super::*;

    const READS: usize = 50;

    fn read(person: i64) -> AuditEntry {
        AuditEntry {
            person,
            reader: 7,
            role: Role::Admin,
            action: "GetContacts".into(),
            at: Utc::now(),
        }
    }

    fn open(path: &Path) -> (DynAccountStore, Arc<AuditWriter>) {
        let store: DynAccountStore = Arc::new(SqliteAccountStore::open(path).unwrap());
        (store.clone(), Arc::new(AuditWriter::start(store)))
    }

    fn rows_in(path: &Path) -> i64 {
        let db = rusqlite::Connection::open(path).unwrap();
        db.query_row("SELECT count(*) FROM data_read", [], |r| r.get(0))
            .unwrap()
    }

    /// Records one read of each of `persons` at once while another connection holds the
    /// file's write lock: the writer takes a first group and waits for the lock, the rest
    /// queue behind it; once every read is with the writer, the lock goes. The outcome of
    /// each read, in the order of `persons`.
    async fn record_behind_a_lock(
        path: &Path,
        writer: &Arc<AuditWriter>,
        persons: Vec<i64>,
    ) -> Vec<Result<()>> {
        let lock = rusqlite::Connection::open(path).unwrap();
        lock.execute_batch("BEGIN IMMEDIATE").unwrap();
        let total = persons.len() as u64;
        let reads: Vec<_> = persons
            .into_iter()
            .map(|p| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.record(read(p)).await })
            })
            .collect();
        // The store waits up to 5 s for the lock; 50 reads reach the queue in far less.
        let deadline = Instant::now() + Duration::from_secs(4);
        loop {
            // Once the first group is taken the writer waits for the lock: taken and queued
            // no longer move but for reads still arriving.
            if writer.writes() == 1 && writer.rows() + writer.queued() as u64 == total {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the reads did not reach the writer"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        lock.execute_batch("ROLLBACK").unwrap();
        let mut outcomes = Vec::new();
        for r in reads {
            outcomes.push(r.await.unwrap());
        }
        outcomes
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_waiting_together_are_written_in_one_transaction_each_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.sqlite3");
        let (store, writer) = open(&path);

        let outcomes = record_behind_a_lock(&path, &writer, vec![1; READS]).await;
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        assert_eq!(rows_in(&path), READS as i64);
        assert_eq!(store.reads_of(1, 100).await.unwrap().len(), READS);
        // The group taken before the lock (all 50 when they were sent before the writer
        // woke), then every read that queued behind it.
        assert!(writer.writes() <= 2, "{} writes", writer.writes());

        // A lone read is written at once; after close, what is queued is written and a
        // new read is refused, never answered unrecorded.
        writer.record(read(2)).await.unwrap();
        writer.close().await;
        assert!(matches!(
            writer.record(read(2)).await,
            Err(Error::Unavailable(_))
        ));
        let lone = store.reads_of(2, 100).await;
        assert_eq!(lone.as_ref().map(Vec::len).ok(), Some(1), "{lone:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_that_cannot_be_written_refuses_each_of_its_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.sqlite3");
        let (_store, writer) = open(&path);
        // The store refuses the row of a read of person 2, and so the transaction it is in.
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON data_read WHEN NEW.person_id = 2
             BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .unwrap();

        let mut persons = vec![1; READS];
        persons[READS / 2] = 2;
        persons[READS - 1] = 2;
        let outcomes = record_behind_a_lock(&path, &writer, persons.clone()).await;
        // A read is answered exactly when its row is written: the group holding a read of
        // person 2 is refused whole, each of its reads with the store's error.
        let answered = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(rows_in(&path), answered as i64);
        for (person, outcome) in persons.iter().zip(&outcomes) {
            if *person == 2 {
                assert!(matches!(outcome, Err(Error::Internal(_))), "{outcome:?}");
            }
        }
        assert!(answered < READS - 2, "{outcomes:?}");

        // The writer goes on after a failed group.
        db.execute_batch("DROP TRIGGER refuse").unwrap();
        writer.record(read(2)).await.unwrap();
        assert_eq!(rows_in(&path), answered as i64 + 1);
        writer.close().await;
    }
}

//! The embedded log: one directory per topic, holding segment files named by the offset of
//! their first record.
//!
//! Durability: a single writer thread per topic takes every append waiting in its queue, writes
//! them as one buffer and calls `fdatasync` once (group commit); only then are the appenders
//! answered and the records shown to consumers. So an acknowledged record is on disk, and a
//! consumer never sees a record that a crash could take back.
//!
//! Preallocation: the active segment is extended with zeros ahead of its records, so the
//! `fdatasync` of a small group commit writes data only; a sync that also grows the file has to
//! commit the file system's journal, which costs about as much again. Large batches grow the
//! file directly (their sync is amortised anyway), and a segment is cut to its records when it
//! is closed.
//!
//! Recovery: opening the log opens every topic in it. The active (last) segment is read frame
//! by frame; a torn tail, a damaged last write with no intact record after it, was never
//! acknowledged and is overwritten with zeros. A tail of zeros alone is preallocated space, not
//! damage. Damage with an intact record after it, or in a sealed segment, is damage to
//! acknowledged records: opening fails with [`CorruptSegment`] and the file is left untouched
//! for `log check` and `log repair` ([`check`]). Sealed segments are checked at their ends only
//! (see [`check`]); a consumer that meets damage inside one stops there with that error.
//!
//! Consumer groups keep their committed position in `groups/<group>.offset`, replaced atomically
//! (write, fsync, rename, fsync the directory).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{oneshot, watch};
use udaconnect_core::ports::{DynLogConsumer, Log, LogScan, StartFrom};
use udaconnect_core::record::LogRecord;
use udaconnect_core::{Error, Result};

use crate::frame;
use crate::{scan_limit, SCAN_BATCH};

pub mod check;
mod consumer;
mod retention;

use consumer::EmbeddedConsumer;

pub use check::{CorruptSegment, Damage};
pub use retention::Deleted;

const SEGMENT_SUFFIX: &str = ".seg";
/// Where `log repair` keeps a copy of each segment it changes: `<root>/backup/<topic>/`. Not a
/// topic name.
const BACKUP_DIR: &str = "backup";

/// Zeros written ahead of the records of the active segment at a time.
const PREALLOCATE_BYTES: u64 = 4 << 20;
/// A group commit at least this large grows the file itself instead of using preallocated
/// space: writing the zeros first would double its bytes for little gain.
const GROW_DIRECTLY_BYTES: usize = 256 << 10;

/// Tuning of an [`EmbeddedLog`].
#[derive(Debug, Clone)]
pub struct EmbeddedLogOptions {
    /// A segment is closed and a new one started once it holds this many bytes.
    pub segment_bytes: u64,
    /// Upper bound on the bytes written by one group commit.
    pub max_batch_bytes: usize,
}

impl Default for EmbeddedLogOptions {
    fn default() -> Self {
        EmbeddedLogOptions {
            segment_bytes: 128 << 20,
            max_batch_bytes: 8 << 20,
        }
    }
}

/// What opening a topic found and repaired, for the operator's log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    pub topic: String,
    /// The offset after the last record.
    pub records: u64,
    /// Bytes of a torn tail after the last intact record, now zeros.
    pub truncated_bytes: u64,
    pub reason: Option<&'static str>,
}

/// Why an [`EmbeddedLog`] did not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Acknowledged records are damaged: the operator decides (`log check`, `log repair`).
    #[error(transparent)]
    Corrupt(#[from] CorruptSegment),
    #[error(transparent)]
    Log(#[from] Error),
}

impl From<OpenError> for Error {
    fn from(e: OpenError) -> Error {
        match e {
            OpenError::Corrupt(c) => Error::Internal(c.to_string()),
            OpenError::Log(e) => e,
        }
    }
}

/// A durable log of topics in a directory. One process at a time may open a directory.
pub struct EmbeddedLog {
    root: PathBuf,
    options: EmbeddedLogOptions,
    topics: Mutex<HashMap<String, Arc<Topic>>>,
    recoveries: Mutex<Vec<Recovery>>,
    /// Held for the life of the log: a second process on the same directory would interleave
    /// writes and corrupt it.
    _lock: File,
}

struct AppendRequest {
    records: Vec<LogRecord>,
    /// The first offset, and the records handed back, so that they are freed on the
    /// appender's thread: freed on the writer's, each record takes the lock of the allocator
    /// arena it came from, which the appender's thread is using for its next request.
    reply: oneshot::Sender<(Result<u64>, Vec<LogRecord>)>,
}

struct Topic {
    dir: PathBuf,
    /// To the writer thread; the thread ends when the topic is dropped.
    appends: Mutex<mpsc::Sender<AppendRequest>>,
    /// The offset after the last durable record; consumers read below it.
    durable_end: watch::Receiver<u64>,
    /// Base offsets of the segments, ascending.
    segments: Arc<RwLock<Vec<u64>>>,
}

fn io_err(what: &str, e: std::io::Error) -> Error {
    Error::Internal(format!("embedded log: {what}: {e}"))
}

fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}{SEGMENT_SUFFIX}"))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Takes the lock of the log in `root`, held while the file stays open.
fn lock(root: &Path) -> Result<File> {
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join("LOCK"))
        .map_err(|e| io_err("open lock file", e))?;
    lock.try_lock().map_err(|_| {
        Error::Unavailable(format!(
            "embedded log {} (held by another process)",
            root.display()
        ))
    })?;
    Ok(lock)
}

/// The topics of the log in `root`: the directories holding segments.
fn topic_names(root: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if entry.file_type()?.is_dir()
            && valid_topic(&name)
            && !segment_bases(&entry.path())?.is_empty()
        {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn valid_topic(name: &str) -> bool {
    !(name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') || name == BACKUP_DIR)
}

/// The base offsets of the segments in a topic's directory, ascending.
fn segment_bases(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        if let Some(base) = name
            .to_str()
            .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
            .and_then(|n| n.parse::<u64>().ok())
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// The segment files of a topic's directory, oldest first: for tools and tests that look at
/// the files themselves.
pub fn segment_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    Ok(segment_bases(dir)?
        .into_iter()
        .map(|base| segment_path(dir, base))
        .collect())
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log in `root`, and every topic in it: a topic whose
    /// acknowledged records are damaged fails the open with [`OpenError::Corrupt`].
    pub fn open(
        root: impl AsRef<Path>,
        options: EmbeddedLogOptions,
    ) -> std::result::Result<Self, OpenError> {
        let root = root.as_ref().to_path_buf();
        fs::create_dir_all(&root).map_err(|e| io_err("create directory", e))?;
        let lock = lock(&root)?;
        let log = EmbeddedLog {
            root,
            options,
            topics: Mutex::new(HashMap::new()),
            recoveries: Mutex::new(Vec::new()),
            _lock: lock,
        };
        // Now rather than at first use: damage must stop the start, not the first append.
        for name in topic_names(&log.root).map_err(|e| io_err("list topics", e))? {
            log.open_topic(&name)?;
        }
        Ok(log)
    }

    /// What recovery found in each topic opened so far.
    pub fn recoveries(&self) -> Vec<Recovery> {
        self.recoveries
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// The offset after the last durable record of `topic`.
    pub fn end_offset(&self, topic: &str) -> Result<u64> {
        Ok(*self.topic(topic)?.durable_end.borrow())
    }

    /// The offset of the first record `topic` still holds: above 0 once segments were deleted.
    pub fn earliest_offset(&self, topic: &str) -> Result<u64> {
        Ok(self.topic(topic)?.earliest())
    }

    /// The position group `group` committed on `topic`, if any. An offset file that does not
    /// read as one is moved aside (see `read_committed`).
    pub fn committed(&self, topic: &str, group: &str) -> Result<Option<u64>> {
        read_committed(&self.topic(topic)?.offset_path(group))
    }

    /// Deletes the closed segments of `topic` that hold only records below `below` (a
    /// position every reader that matters has passed): the bytes freed. The active segment is
    /// never deleted. A reader still below the new first record moves up to it.
    pub fn delete_segments_below(&self, topic: &str, below: u64) -> Result<u64> {
        let topic = self.topic(topic)?;
        let doomed: Vec<u64> = {
            let mut segments = topic
                .segments
                .write()
                .map_err(|_| Error::Internal("embedded log: poisoned".into()))?;
            let n = segments.windows(2).take_while(|w| w[1] <= below).count();
            segments.drain(..n).collect()
        };
        let mut freed = 0;
        for base in &doomed {
            let path = segment_path(&topic.dir, *base);
            freed += fs::metadata(&path).map_or(0, |m| m.len());
            fs::remove_file(&path).map_err(|e| io_err("delete segment", e))?;
        }
        if !doomed.is_empty() {
            sync_dir(&topic.dir).map_err(|e| io_err("sync directory", e))?;
        }
        Ok(freed)
    }

    /// The file holding group `group`'s committed position on `topic`.
    pub fn offset_file(&self, topic: &str, group: &str) -> Result<PathBuf> {
        Ok(self.topic(topic)?.offset_path(group))
    }

    /// Whether group `group` has an offset file on `topic` that does not hold a number, left
    /// where it is: start-up looks before any reader moves it aside, to recover the position
    /// from elsewhere ([`Self::recover_committed`]).
    pub fn committed_unreadable(&self, topic: &str, group: &str) -> Result<bool> {
        match fs::read(self.topic(topic)?.offset_path(group)) {
            Ok(raw) => Ok(parse_committed(&raw).is_none()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("read committed offset", e)),
        }
    }

    /// Commits `offset` for group `group` on `topic` from outside the group, moving an
    /// unreadable offset file aside first as `<group>.offset.bad`: the path it was moved to,
    /// if it was.
    pub fn recover_committed(
        &self,
        topic: &str,
        group: &str,
        offset: u64,
    ) -> Result<Option<PathBuf>> {
        let path = self.topic(topic)?.offset_path(group);
        let aside = path.with_extension("offset.bad");
        let moved = match fs::rename(&path, &aside) {
            Ok(()) => Some(aside),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("move a bad offset file aside", e)),
        };
        write_committed(&path, offset).map_err(|e| io_err("commit offset", e))?;
        Ok(moved)
    }

    /// A reader of `topic` from `offset` (clamped to what the topic holds) that belongs to no
    /// group: for scans at start that must leave every group's position alone.
    pub fn reader_at(&self, topic: &str, offset: u64) -> Result<DynLogConsumer> {
        let topic = self.topic(topic)?;
        let next = offset.clamp(topic.earliest(), *topic.durable_end.borrow());
        // Never committed: the path only has to differ from every group's.
        let nowhere = topic.dir.join("groups").join(".reader");
        Ok(Box::new(EmbeddedConsumer::new(topic, nowhere, next)))
    }

    fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        Ok(self.open_topic(name)?)
    }

    fn open_topic(&self, name: &str) -> std::result::Result<Arc<Topic>, OpenError> {
        if !valid_topic(name) {
            return Err(Error::Internal(format!("invalid topic name '{name}'")).into());
        }
        let mut topics = self
            .topics
            .lock()
            .map_err(|_| Error::Internal("embedded log: poisoned".into()))?;
        if let Some(t) = topics.get(name) {
            return Ok(t.clone());
        }
        let (topic, recovery) = Topic::open(self.root.join(name), name, &self.options)?;
        if recovery.truncated_bytes > 0 {
            tracing::warn!(
                topic = name,
                truncated_bytes = recovery.truncated_bytes,
                reason = recovery.reason.unwrap_or(""),
                "log tail was torn or corrupt: cleared back to the last intact record"
            );
        }
        if let Ok(mut r) = self.recoveries.lock() {
            r.push(recovery);
        }
        let topic = Arc::new(topic);
        topics.insert(name.to_string(), topic.clone());
        Ok(topic)
    }
}

impl Topic {
    fn open(
        dir: PathBuf,
        name: &str,
        options: &EmbeddedLogOptions,
    ) -> std::result::Result<(Topic, Recovery), OpenError> {
        fs::create_dir_all(dir.join("groups")).map_err(|e| io_err("create topic directory", e))?;
        let mut bases = segment_bases(&dir).map_err(|e| io_err("list segments", e))?;
        if bases.is_empty() {
            File::create(segment_path(&dir, 0)).map_err(|e| io_err("create segment", e))?;
            sync_dir(&dir).map_err(|e| io_err("sync directory", e))?;
            bases.push(0);
        }
        for pair in bases.windows(2) {
            let path = segment_path(&dir, pair[0]);
            if let Some(damage) = check::verify_sealed(&path, pair[0], pair[1])
                .map_err(|e| io_err("read segment", e))?
            {
                return Err(damage.into());
            }
        }
        let base = *bases.last().unwrap_or(&0);
        let path = segment_path(&dir, base);
        let scanned =
            check::scan_segment(&path, base, None).map_err(|e| io_err("read segment", e))?;
        if let Some(damage) = scanned.corruption() {
            return Err(damage.into());
        }
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| io_err("open segment", e))?;
        let torn = scanned.torn_tail();
        if let Some((at, len, _)) = torn {
            // Zeros over the torn write, so the file reads as records then preallocated space.
            file.write_all_at(&vec![0u8; len as usize], at)
                .and_then(|_| file.sync_all())
                .map_err(|e| io_err("clear torn tail", e))?;
        }
        let valid_len = scanned.records_end;
        // The last record's offset, not the count: a repair may have left gaps.
        let end = scanned.last_offset.map_or(base, |o| o + 1);
        let (durable_tx, durable_rx) = watch::channel(end);
        let segments = Arc::new(RwLock::new(bases));
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            dir: dir.clone(),
            file,
            size: valid_len,
            allocated: scanned.file_len,
            next: end,
            durable: durable_tx,
            segments: segments.clone(),
            segment_bytes: options.segment_bytes,
            max_batch_bytes: options.max_batch_bytes,
        };
        std::thread::Builder::new()
            .name(format!("log-writer-{name}"))
            .spawn(move || writer.run(rx))
            .map_err(|e| io_err("start writer thread", e))?;
        let recovery = Recovery {
            topic: name.to_string(),
            records: end,
            truncated_bytes: torn.map_or(0, |(_, len, _)| len),
            reason: torn.map(|(_, _, reason)| reason),
        };
        Ok((
            Topic {
                dir,
                appends: Mutex::new(tx),
                durable_end: durable_rx,
                segments,
            },
            recovery,
        ))
    }

    fn earliest(&self) -> u64 {
        self.segments
            .read()
            .ok()
            .and_then(|s| s.first().copied())
            .unwrap_or(0)
    }

    fn offset_path(&self, group: &str) -> PathBuf {
        let safe: String = group
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join("groups").join(format!("{safe}.offset"))
    }
}

/// A group's committed position. A file that does not hold a number (a torn copy, a bad
/// restore) is renamed `<group>.offset.bad` with a warning and the group starts over from where
/// a new group would: re-reading stored records is harmless (stores keep the first write of an
/// id), reading nothing while reporting ready is not.
fn read_committed(path: &Path) -> Result<Option<u64>> {
    let raw = match fs::read(path) {
        Ok(raw) => raw,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read committed offset", e)),
    };
    if let Some(offset) = parse_committed(&raw) {
        return Ok(Some(offset));
    }
    let aside = path.with_extension("offset.bad");
    fs::rename(path, &aside).map_err(|e| io_err("move a bad offset file aside", e))?;
    tracing::warn!(
        file = %path.display(),
        moved_to = %aside.display(),
        "committed offset unreadable: moved aside; the group reads again from its start"
    );
    Ok(None)
}

fn parse_committed(raw: &[u8]) -> Option<u64> {
    std::str::from_utf8(raw).ok()?.trim().parse().ok()
}

/// Replaces the offset file at `path` with `offset`, atomically: write a copy, sync it, rename
/// it over the file, sync the directory.
fn write_committed(path: &Path, offset: u64) -> std::io::Result<()> {
    let tmp = path.with_extension("offset.tmp");
    let mut f = File::create(&tmp)?;
    std::io::Write::write_all(&mut f, offset.to_string().as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// The one thread that writes a topic.
struct Writer {
    dir: PathBuf,
    file: File,
    /// Bytes of the active segment known to be intact and durable.
    size: u64,
    /// Length of the active segment's file: records, then zeros.
    allocated: u64,
    next: u64,
    durable: watch::Sender<u64>,
    segments: Arc<RwLock<Vec<u64>>>,
    segment_bytes: u64,
    max_batch_bytes: usize,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<AppendRequest>) {
        let mut buf = Vec::with_capacity(1 << 20);
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            let mut estimate = 0usize;
            // Whatever queued up while the last fsync ran joins this one: group commit.
            while estimate < self.max_batch_bytes {
                match rx.try_recv() {
                    Ok(req) => {
                        estimate += req
                            .records
                            .iter()
                            .map(|r| r.value.len() + 64)
                            .sum::<usize>();
                        batch.push(req);
                    }
                    Err(_) => break,
                }
            }
            buf.clear();
            let mut next = self.next;
            let mut firsts = Vec::with_capacity(batch.len());
            for req in &batch {
                firsts.push(next);
                for r in &req.records {
                    frame::encode(&mut buf, next, r);
                    next += 1;
                }
            }
            let written = self.write(&buf);
            match written {
                Ok(()) => {
                    self.size += buf.len() as u64;
                    self.next = next;
                    self.durable.send_replace(next);
                    // Before the answers: once an append is answered the segment files are
                    // settled, so a log closed right after (and the directory opened again,
                    // maybe by another process) never sees a segment appear behind it.
                    self.roll_if_full();
                    for (req, first) in batch.into_iter().zip(firsts) {
                        let _ = req.reply.send((Ok(first), req.records));
                    }
                }
                Err(e) => {
                    // The next batch overwrites whatever part of this one reached the file;
                    // the appenders hear of the failure and nothing of it counts as durable.
                    tracing::error!(error = %e, "log append failed");
                    self.clear_failed(buf.len());
                    for req in batch {
                        let failed =
                            Error::Unavailable(format!("embedded log (write failed: {e})"));
                        let _ = req.reply.send((Err(failed), req.records));
                    }
                }
            }
        }
    }

    /// Closes the active segment and starts the next once it holds `segment_bytes`; a failed
    /// roll is tried again after the next append.
    fn roll_if_full(&mut self) {
        if self.size >= self.segment_bytes {
            if let Err(e) = self.roll() {
                tracing::error!(error = %e, "log segment roll failed; continuing in the current segment");
            }
        }
    }

    /// Writes `buf` after the durable records and syncs it, extending the preallocated space
    /// first when it is short.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let end = self.size + buf.len() as u64;
        if end > self.allocated && buf.len() < GROW_DIRECTLY_BYTES {
            let target = (end + PREALLOCATE_BYTES).min(self.segment_bytes.max(end));
            let zeros = vec![0u8; (target - self.allocated) as usize];
            self.file.write_all_at(&zeros, self.allocated)?;
            self.allocated = target;
        }
        self.file.write_all_at(buf, self.size)?;
        self.allocated = self.allocated.max(end);
        self.file.sync_data()
    }

    /// Zeros over what a failed write of `len` bytes left after the durable records. A shorter
    /// batch written there next would leave this one's later frames intact behind it, and the
    /// next open would take them for acknowledged records after a damaged one and refuse.
    /// Overwriting allocated space needs no new blocks, so this works on a full disk too; the
    /// next successful sync makes it durable.
    fn clear_failed(&mut self, len: usize) {
        let file_len = self.file.metadata().map_or(self.allocated, |m| m.len());
        let reached = (self.size + len as u64).min(file_len);
        if reached > self.size {
            let zeros = vec![0u8; (reached - self.size) as usize];
            if let Err(e) = self.file.write_all_at(&zeros, self.size) {
                tracing::error!(error = %e, "clearing a failed log write failed");
            }
        }
        self.allocated = self.allocated.max(file_len);
    }

    fn roll(&mut self) -> std::io::Result<()> {
        // A closed segment ends at its last record: readers take its end of file as the
        // start of the next segment.
        self.file.set_len(self.size)?;
        self.file.sync_all()?;
        let path = segment_path(&self.dir, self.next);
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        sync_dir(&self.dir)?;
        self.file = file;
        self.size = 0;
        self.allocated = 0;
        if let Ok(mut s) = self.segments.write() {
            s.push(self.next);
        }
        Ok(())
    }
}

#[async_trait]
impl Log for EmbeddedLog {
    async fn append(&self, topic: &str, records: Vec<LogRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        if let Some(why) = records.iter().find_map(frame::unwritable) {
            return Err(Error::Internal(format!(
                "embedded log: cannot append {why}"
            )));
        }
        let topic = self.topic(topic)?;
        let (reply, answer) = oneshot::channel();
        topic
            .appends
            .lock()
            .map_err(|_| Error::Internal("embedded log: poisoned".into()))?
            .send(AppendRequest { records, reply })
            .map_err(|_| Error::Unavailable("embedded log (writer stopped)".into()))?;
        let (appended, records) = answer
            .await
            .map_err(|_| Error::Unavailable("embedded log (writer stopped)".into()))?;
        // Freed here, on the appender's thread (see `AppendRequest::reply`).
        drop(records);
        appended.map(|_| ())
    }

    async fn consumer(&self, topic: &str, group: &str, start: StartFrom) -> Result<DynLogConsumer> {
        let topic = self.topic(topic)?;
        let offset_path = topic.offset_path(group);
        let committed = read_committed(&offset_path)?;
        let earliest = topic.earliest();
        let end = *topic.durable_end.borrow();
        let next = match (committed, start) {
            (Some(c), _) => c.clamp(earliest, end),
            (None, StartFrom::Earliest) => earliest,
            (None, StartFrom::Latest) => end,
        };
        Ok(Box::new(EmbeddedConsumer::new(topic, offset_path, next)))
    }

    async fn scan(&self, scan: LogScan<'_>) -> Result<u64> {
        let LogScan {
            topic,
            group,
            limit,
            visit,
        } = scan;
        let t = self.topic(topic)?;
        let (earliest, end) = (t.earliest(), *t.durable_end.borrow());
        let committed = match group {
            Some(group) => read_committed(&t.offset_path(group))?,
            None => None,
        };
        let from = committed.unwrap_or(earliest).clamp(earliest, end);
        let total = end - from;
        if total > limit {
            return Err(scan_limit(topic, total, limit));
        }
        let mut reader = self.reader_at(topic, from)?;
        let mut read = 0;
        while read < total {
            let batch = reader.poll(SCAN_BATCH, Duration::from_secs(1)).await?;
            if batch.is_empty() {
                // Everything below `end` was durable at the start: only damage stops a read.
                return Err(Error::Internal(format!(
                    "embedded log: {topic} does not read past offset {}",
                    from + read
                )));
            }
            let batch = &batch[..batch.len().min((total - read) as usize)];
            read += batch.len() as u64;
            visit(batch);
        }
        Ok(read)
    }

    async fn ping(&self) -> Result<()> {
        // The writer threads fail loudly on their own; here, check the directory is usable.
        fs::metadata(&self.root)
            .map(|_| ())
            .map_err(|e| Error::Unavailable(format!("embedded log ({e})")))
    }
}

#[cfg(test)]
mod recovery_tests;
#[cfg(test)]
mod tests;

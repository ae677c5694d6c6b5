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
//! Recovery: opening a topic re-reads its last segment frame by frame and stops at the first
//! frame that is torn, fails its checksum or carries the wrong offset. Everything before that
//! point was written by completed syncs and is kept; what follows was never acknowledged and
//! is overwritten with zeros. A tail of zeros alone is preallocated space, not damage.
//!
//! Consumer groups keep their committed position in `groups/<group>.offset`, replaced atomically
//! (write, fsync, rename, fsync the directory).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{oneshot, watch};
use udaconnect_core::ports::{Consumed, Log, LogConsumer, StartFrom};
use udaconnect_core::record::{LogRecord, Position};
use udaconnect_core::{Error, Result};

use crate::frame::{self, Decoded, HEADER_LEN};

const SEGMENT_SUFFIX: &str = ".seg";

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
    pub records: u64,
    /// Bytes after the last intact record that were torn or corrupt, and are now zeros.
    pub truncated_bytes: u64,
    pub reason: Option<&'static str>,
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

impl EmbeddedLog {
    /// Opens (creating if needed) the log in `root`.
    pub fn open(root: impl AsRef<Path>, options: EmbeddedLogOptions) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        fs::create_dir_all(&root).map_err(|e| io_err("create directory", e))?;
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
        Ok(EmbeddedLog {
            root,
            options,
            topics: Mutex::new(HashMap::new()),
            recoveries: Mutex::new(Vec::new()),
            _lock: lock,
        })
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

    fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(Error::Internal(format!("invalid topic name '{name}'")));
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

/// What [`scan_segment`] found.
struct Scanned {
    records: u64,
    /// Bytes of intact records from the start.
    valid_len: u64,
    /// Bytes from `valid_len` to the last non-zero byte: a torn or corrupt tail. Zeros after
    /// it are preallocated space.
    damaged_len: u64,
    file_len: u64,
    reason: Option<&'static str>,
}

/// Reads the frames of one segment, stopping at the first bad one.
fn scan_segment(path: &Path, base: u64) -> std::io::Result<Scanned> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    let mut pos = 0usize;
    let mut expected = base;
    let mut reason = None;
    while pos < data.len() {
        match frame::decode(&data[pos..]) {
            Decoded::Record { offset, len, .. } if offset == expected => {
                pos += len;
                expected += 1;
            }
            Decoded::Record { .. } => {
                reason = Some("offset out of sequence");
                break;
            }
            Decoded::Incomplete => {
                reason = Some("torn record");
                break;
            }
            Decoded::Corrupt(why) => {
                reason = Some(why);
                break;
            }
        }
    }
    let damaged_len = data[pos..]
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |last| last + 1);
    Ok(Scanned {
        records: expected - base,
        valid_len: pos as u64,
        damaged_len: damaged_len as u64,
        file_len: data.len() as u64,
        reason: if damaged_len > 0 { reason } else { None },
    })
}

impl Topic {
    fn open(dir: PathBuf, name: &str, options: &EmbeddedLogOptions) -> Result<(Topic, Recovery)> {
        fs::create_dir_all(dir.join("groups")).map_err(|e| io_err("create topic directory", e))?;
        let mut bases: Vec<u64> = fs::read_dir(&dir)
            .map_err(|e| io_err("list segments", e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n = e.file_name().into_string().ok()?;
                n.strip_suffix(SEGMENT_SUFFIX)?.parse::<u64>().ok()
            })
            .collect();
        bases.sort_unstable();
        if bases.is_empty() {
            File::create(segment_path(&dir, 0)).map_err(|e| io_err("create segment", e))?;
            sync_dir(&dir).map_err(|e| io_err("sync directory", e))?;
            bases.push(0);
        }
        let base = *bases.last().unwrap_or(&0);
        let path = segment_path(&dir, base);
        let scanned = scan_segment(&path, base).map_err(|e| io_err("read segment", e))?;
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| io_err("open segment", e))?;
        if scanned.damaged_len > 0 {
            // Zeros over the damage, so the file reads as records then preallocated space.
            file.write_all_at(&vec![0u8; scanned.damaged_len as usize], scanned.valid_len)
                .and_then(|_| file.sync_all())
                .map_err(|e| io_err("clear torn tail", e))?;
        }
        let (records, valid_len, truncated_bytes, reason) = (
            scanned.records,
            scanned.valid_len,
            scanned.damaged_len,
            scanned.reason,
        );
        let end = base + records;
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
            truncated_bytes,
            reason,
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
                    for (req, first) in batch.into_iter().zip(firsts) {
                        let _ = req.reply.send((Ok(first), req.records));
                    }
                }
                Err(e) => {
                    // The next batch overwrites whatever part of this one reached the file;
                    // the appenders hear of the failure and nothing of it counts as durable.
                    tracing::error!(error = %e, "log append failed");
                    for req in batch {
                        let failed =
                            Error::Unavailable(format!("embedded log (write failed: {e})"));
                        let _ = req.reply.send((Err(failed), req.records));
                    }
                }
            }
            if self.size >= self.segment_bytes {
                if let Err(e) = self.roll() {
                    tracing::error!(error = %e, "log segment roll failed; continuing in the current segment");
                }
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

    async fn consumer(
        &self,
        topic: &str,
        group: &str,
        start: StartFrom,
    ) -> Result<Box<dyn LogConsumer>> {
        let topic = self.topic(topic)?;
        let offset_path = topic.offset_path(group);
        let committed = match fs::read_to_string(&offset_path) {
            Ok(s) => Some(s.trim().parse::<u64>().map_err(|_| {
                Error::Internal(format!("corrupt offset file {}", offset_path.display()))
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("read committed offset", e)),
        };
        let earliest = topic
            .segments
            .read()
            .ok()
            .and_then(|s| s.first().copied())
            .unwrap_or(0);
        let end = *topic.durable_end.borrow();
        let next = match (committed, start) {
            (Some(c), _) => c.clamp(earliest, end),
            (None, StartFrom::Earliest) => earliest,
            (None, StartFrom::Latest) => end,
        };
        Ok(Box::new(EmbeddedConsumer {
            durable_end: topic.durable_end.clone(),
            topic,
            offset_path,
            next,
            reader: None,
        }))
    }

    async fn ping(&self) -> Result<()> {
        // The writer threads fail loudly on their own; here, check the directory is usable.
        fs::metadata(&self.root)
            .map(|_| ())
            .map_err(|e| Error::Unavailable(format!("embedded log ({e})")))
    }
}

/// A consumer of one topic of the embedded log.
struct EmbeddedConsumer {
    topic: Arc<Topic>,
    durable_end: watch::Receiver<u64>,
    offset_path: PathBuf,
    /// The offset of the next record `poll` returns.
    next: u64,
    /// Kept between polls so sequential reads do not reopen and rescan a segment.
    reader: Option<SegmentReader>,
}

/// A buffered reader positioned at a record boundary of one segment.
struct SegmentReader {
    file: BufReader<File>,
    next_offset: u64,
}

impl SegmentReader {
    /// Opens the segment holding `offset` and skips to it.
    fn open_at(dir: &Path, segments: &[u64], offset: u64) -> std::io::Result<SegmentReader> {
        let idx = segments.partition_point(|b| *b <= offset).saturating_sub(1);
        let base = segments.get(idx).copied().unwrap_or(0);
        let mut reader = SegmentReader {
            file: BufReader::with_capacity(256 << 10, File::open(segment_path(dir, base))?),
            next_offset: base,
        };
        while reader.next_offset < offset {
            reader.skip()?;
        }
        Ok(reader)
    }

    fn read_frame(&mut self) -> std::io::Result<Vec<u8>> {
        let mut head = [0u8; HEADER_LEN];
        self.file.read_exact(&mut head)?;
        let body_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if body_len > frame::MAX_BODY_LEN {
            return Err(std::io::Error::other("impossible frame length"));
        }
        let mut buf = vec![0u8; HEADER_LEN + body_len];
        buf[..HEADER_LEN].copy_from_slice(&head);
        self.file.read_exact(&mut buf[HEADER_LEN..])?;
        Ok(buf)
    }

    fn skip(&mut self) -> std::io::Result<()> {
        let mut head = [0u8; HEADER_LEN];
        self.file.read_exact(&mut head)?;
        let body_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as i64;
        // Within the buffer: `seek` would drop it, and skipping to a position far into a
        // segment (a consumer's first poll) read the buffer's 256 KiB again for every record.
        self.file.seek_relative(body_len)?;
        self.next_offset += 1;
        Ok(())
    }

    fn next(&mut self) -> std::io::Result<Option<(u64, LogRecord)>> {
        let buf = match self.read_frame() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        };
        match frame::decode(&buf) {
            Decoded::Record { offset, record, .. } if offset == self.next_offset => {
                self.next_offset += 1;
                Ok(Some((offset, record)))
            }
            _ => Err(std::io::Error::other(format!(
                "corrupt record at offset {}",
                self.next_offset
            ))),
        }
    }
}

fn read_range(
    dir: &Path,
    segments: &[u64],
    reader: Option<SegmentReader>,
    from: u64,
    to: u64,
) -> std::io::Result<(Vec<Consumed>, Option<SegmentReader>)> {
    let mut reader = match reader {
        Some(mut r) if r.next_offset == from => {
            // What the last read buffered beyond the durable end may have been preallocated
            // zeros since overwritten: seeking drops the buffer.
            let at = r.file.stream_position()?;
            r.file.seek(SeekFrom::Start(at))?;
            r
        }
        _ => SegmentReader::open_at(dir, segments, from)?,
    };
    let mut out = Vec::with_capacity((to - from) as usize);
    while reader.next_offset < to {
        match reader.next()? {
            Some((offset, record)) => out.push(Consumed {
                position: Position {
                    partition: 0,
                    offset: offset as i64,
                },
                record,
            }),
            // The end of a closed segment: the next one starts at this offset.
            None if segments.contains(&reader.next_offset) => {
                reader = SegmentReader::open_at(dir, segments, reader.next_offset)?;
            }
            None => {
                return Err(std::io::Error::other(format!(
                    "segment ends before durable offset {}",
                    reader.next_offset
                )))
            }
        }
    }
    Ok((out, Some(reader)))
}

#[async_trait]
impl LogConsumer for EmbeddedConsumer {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Consumed>> {
        let next = self.next;
        if *self.durable_end.borrow() <= next {
            let _ = tokio::time::timeout(wait, self.durable_end.wait_for(|end| *end > next)).await;
        }
        let end = *self.durable_end.borrow();
        if end <= next {
            return Ok(Vec::new());
        }
        let to = end.min(next + max.max(1) as u64);
        let dir = self.topic.dir.clone();
        let segments = self
            .topic
            .segments
            .read()
            .map(|s| s.clone())
            .unwrap_or_default();
        let reader = self.reader.take();
        let (records, reader) =
            tokio::task::spawn_blocking(move || read_range(&dir, &segments, reader, next, to))
                .await
                .map_err(|e| Error::Internal(format!("embedded log reader: {e}")))?
                .map_err(|e| io_err("read", e))?;
        self.reader = reader;
        self.next = to;
        Ok(records)
    }

    async fn commit(&mut self) -> Result<()> {
        let path = self.offset_path.clone();
        let next = self.next;
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let tmp = path.with_extension("offset.tmp");
            let mut f = File::create(&tmp)?;
            f.write_all(next.to_string().as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            sync_dir(path.parent().unwrap_or(Path::new(".")))
        })
        .await
        .map_err(|e| Error::Internal(format!("embedded log commit: {e}")))?
        .map_err(|e| io_err("commit offset", e))
    }

    fn lag(&self) -> Option<u64> {
        Some(self.durable_end.borrow().saturating_sub(self.next))
    }
}

#[cfg(test)]
mod tests;

//! A consumer of one topic: polls read the segment files, up to the durable end.
//!
//! Offsets within a segment rise by one from record to record, except where a repair removed
//! damaged records: the reader steps over such a gap, and never over a record it cannot read.
//! It reads a frame only while a record it has not returned yet is due below the durable end,
//! so it never reads bytes the writer may still be writing.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use udaconnect_core::ports::{Consumed, LogConsumer};
use udaconnect_core::record::{LogRecord, Position};
use udaconnect_core::{Error, Result};

use super::{io_err, segment_path, write_committed, CorruptSegment, Damage, Topic};
use crate::frame::{self, Decoded, HEADER_LEN, MAX_BODY_LEN, MIN_BODY_LEN};

/// A consumer of one topic of the embedded log.
pub(super) struct EmbeddedConsumer {
    topic: Arc<Topic>,
    durable_end: watch::Receiver<u64>,
    offset_path: PathBuf,
    /// The offset of the next record `poll` returns.
    next: u64,
    /// Kept between polls so sequential reads do not reopen and rescan a segment.
    reader: Option<SegmentReader>,
}

impl EmbeddedConsumer {
    pub(super) fn new(topic: Arc<Topic>, offset_path: PathBuf, next: u64) -> EmbeddedConsumer {
        EmbeddedConsumer {
            durable_end: topic.durable_end.clone(),
            topic,
            offset_path,
            next,
            reader: None,
        }
    }
}

/// A buffered reader positioned at a frame boundary of one segment.
struct SegmentReader {
    path: PathBuf,
    file: BufReader<File>,
    base: u64,
    /// Where the next frame starts, to say where damage is.
    pos: u64,
    /// Every record below this offset was returned or skipped, or is missing: the next frame's
    /// offset is at least this.
    next_offset: u64,
}

/// What reading a segment met.
enum ReadError {
    Io(std::io::Error),
    Corrupt(CorruptSegment),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

impl From<ReadError> for Error {
    fn from(e: ReadError) -> Error {
        match e {
            ReadError::Io(e) => io_err("read", e),
            ReadError::Corrupt(c) => Error::Internal(c.to_string()),
        }
    }
}

impl SegmentReader {
    fn open(dir: &Path, base: u64, next_offset: u64) -> std::io::Result<SegmentReader> {
        let path = segment_path(dir, base);
        Ok(SegmentReader {
            file: BufReader::with_capacity(256 << 10, File::open(&path)?),
            path,
            base,
            pos: 0,
            next_offset,
        })
    }

    /// A reader at the first record at or after `offset` (below the durable end), in whichever
    /// segment holds it.
    fn open_at(
        dir: &Path,
        segments: &[u64],
        offset: u64,
    ) -> std::result::Result<SegmentReader, ReadError> {
        let idx = segments.partition_point(|b| *b <= offset).saturating_sub(1);
        for &base in &segments[idx.min(segments.len())..] {
            let mut reader = SegmentReader::open(dir, base, base.min(offset))?;
            if reader.skip_to(offset)? {
                return Ok(reader);
            }
        }
        Err(std::io::Error::other(format!("no segment holds offset {offset}")).into())
    }

    fn corrupt(&self, why: &'static str) -> ReadError {
        ReadError::Corrupt(CorruptSegment {
            path: self.path.clone(),
            byte: self.pos,
            record: self.next_offset,
            damage: Damage::Unreadable(why),
        })
    }

    /// Fills `buf` as far as the file goes: the bytes read.
    fn read_up_to(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.file.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Steps over the frames below `offset` by their headers alone; false at the end of the
    /// segment.
    fn skip_to(&mut self, offset: u64) -> std::result::Result<bool, ReadError> {
        while self.next_offset < offset {
            let mut head = [0u8; HEADER_LEN + 8];
            match self.read_up_to(&mut head)? {
                0 => return Ok(false),
                n if n < head.len() => return Err(self.corrupt("torn record")),
                _ => {}
            }
            let Some((len, at)) = frame::peek(&head) else {
                return Err(self.corrupt("impossible frame length"));
            };
            if at < self.next_offset {
                return Err(self.corrupt("offset out of sequence"));
            }
            if at >= offset {
                self.file.seek_relative(-(head.len() as i64))?;
                self.next_offset = offset;
                break;
            }
            // Within the buffer: `seek` would drop it, and skipping to a position far into a
            // segment (a consumer's first poll) read the buffer's 256 KiB again for every record.
            self.file.seek_relative((len - head.len()) as i64)?;
            self.pos += len as u64;
            self.next_offset = at + 1;
        }
        Ok(true)
    }

    /// The next record and its frame's length; `None` at the end of the segment.
    fn next(&mut self) -> std::result::Result<Option<(u64, LogRecord, usize)>, ReadError> {
        let mut head = [0u8; HEADER_LEN];
        match self.read_up_to(&mut head)? {
            0 => return Ok(None),
            n if n < HEADER_LEN => return Err(self.corrupt("torn record")),
            _ => {}
        }
        let body_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if !(MIN_BODY_LEN..=MAX_BODY_LEN).contains(&body_len) {
            return Err(self.corrupt("impossible frame length"));
        }
        let mut buf = vec![0u8; HEADER_LEN + body_len];
        buf[..HEADER_LEN].copy_from_slice(&head);
        if self.read_up_to(&mut buf[HEADER_LEN..])? < body_len {
            return Err(self.corrupt("torn record"));
        }
        match frame::decode(&buf) {
            Decoded::Record { offset, record, .. } if offset >= self.next_offset => {
                self.pos += buf.len() as u64;
                Ok(Some((offset, record, buf.len())))
            }
            Decoded::Record { .. } => Err(self.corrupt("offset out of sequence")),
            Decoded::Incomplete => Err(self.corrupt("torn record")),
            Decoded::Corrupt(why) => Err(self.corrupt(why)),
        }
    }

    /// Steps back over the frame `next` just returned.
    fn unread(&mut self, len: usize) -> std::io::Result<()> {
        self.file.seek_relative(-(len as i64))?;
        self.pos -= len as u64;
        Ok(())
    }
}

/// What one poll read: the records, the offset to read from next, and the reader to go on with.
type Polled = (Vec<Consumed>, u64, Option<SegmentReader>);

/// The records with offsets in `from..to` (`to` at most the durable end). Damage ends the read
/// before it: the records read so far are returned, and the next read starts at the damage and
/// fails there.
fn read_range(
    dir: &Path,
    segments: &[u64],
    reader: Option<SegmentReader>,
    from: u64,
    to: u64,
) -> Result<Polled> {
    let mut out = Vec::with_capacity((to - from) as usize);
    let mut reached = from;
    match read_into(&mut out, &mut reached, dir, segments, reader, to) {
        Ok(reader) => Ok((out, to, Some(reader))),
        Err(ReadError::Corrupt(_)) if !out.is_empty() => Ok((out, reached, None)),
        Err(e) => Err(e.into()),
    }
}

/// Appends the records from `*reached` to `to` to `out`, keeping `*reached` after the last.
fn read_into(
    out: &mut Vec<Consumed>,
    reached: &mut u64,
    dir: &Path,
    segments: &[u64],
    reader: Option<SegmentReader>,
    to: u64,
) -> std::result::Result<SegmentReader, ReadError> {
    let from = *reached;
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
    while reader.next_offset < to {
        match reader.next()? {
            Some((offset, record, _)) if offset < to => {
                reader.next_offset = offset + 1;
                *reached = offset + 1;
                out.push(Consumed {
                    position: Position {
                        partition: 0,
                        offset: offset as i64,
                    },
                    record,
                });
            }
            // Past a gap, beyond this poll: the next one starts with it.
            Some((_, _, len)) => {
                reader.unread(len)?;
                reader.next_offset = to;
            }
            // The end of a sealed segment: the next one holds what follows.
            None => match segments.iter().find(|b| **b > reader.base) {
                Some(&base) => {
                    let next = reader.next_offset.max(base).min(to);
                    reader = SegmentReader::open(dir, base, next)?;
                }
                None => {
                    return Err(std::io::Error::other(format!(
                        "segment ends before durable offset {}",
                        reader.next_offset
                    ))
                    .into())
                }
            },
        }
    }
    Ok(reader)
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
        // Damage stops the position before it: every poll from there reports it, none skips it.
        let (records, reached, reader) =
            tokio::task::spawn_blocking(move || read_range(&dir, &segments, reader, next, to))
                .await
                .map_err(|e| Error::Internal(format!("embedded log reader: {e}")))??;
        self.reader = reader;
        self.next = reached;
        Ok(records)
    }

    async fn commit(&mut self) -> Result<()> {
        let path = self.offset_path.clone();
        let next = self.next;
        tokio::task::spawn_blocking(move || write_committed(&path, next))
            .await
            .map_err(|e| Error::Internal(format!("embedded log commit: {e}")))?
            .map_err(|e| io_err("commit offset", e))
    }

    fn lag(&self) -> Option<u64> {
        Some(self.durable_end.borrow().saturating_sub(self.next))
    }
}

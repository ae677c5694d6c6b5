//! Checking and repairing segments: what opening the log verifies before it trusts a segment,
//! and what `udaconnect log check` and `log repair` do on a stopped log.
//!
//! A damaged frame is one that is cut short, fails its checksum or carries an offset out of
//! order. What comes after it decides what it is:
//! - in the active (last) segment, with no intact record after it, only zeros or bytes that
//!   decode to nothing up to the end of the file: a torn tail, a write that a crash cut short
//!   before its sync returned, so never acknowledged. Opening the log clears it.
//! - with an intact record after it, or anywhere in a sealed segment (sealed only once every
//!   record in it was synced): damage to acknowledged records. Opening the log refuses, leaving
//!   the file as it is; `log check` reports it and `log repair` backs the segment up, then
//!   removes the damaged bytes and nothing else.
//!
//! A record a repair removed leaves its offset unused: every later record keeps its own, readers
//! step over the gap, and `log check` lists it.
//!
//! Nothing on disk marks where a group commit ends, so a crash that persists the pages of an
//! unfinished write out of order (a power loss; a killed process loses nothing it wrote) can
//! leave intact records of that write after a damaged one. That is refused too: only an operator
//! can tell, and a repair keeps those records.

use std::fmt;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use udaconnect_core::record::LogRecord;
use udaconnect_core::{Error, Result};

use super::{
    io_err, lock, segment_bases, segment_path, sync_dir, topic_names, valid_topic, BACKUP_DIR,
};
use crate::frame::{self, Decoded, HEADER_LEN, MAX_BODY_LEN, MIN_BODY_LEN};

/// Why a segment cannot be opened or read as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// This many intact records follow the damaged bytes: not a torn write.
    RecordsFollow(u64),
    /// The damage is in a sealed segment, whose records were all acknowledged.
    Sealed,
    /// A sealed segment holds no bytes at all.
    Empty,
    /// A reader met a frame that does not decode, for this reason.
    Unreadable(&'static str),
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::RecordsFollow(1) => f.write_str("a valid record follows the damaged one"),
            Damage::RecordsFollow(n) => write!(f, "{n} valid records follow the damaged one"),
            Damage::Sealed => {
                f.write_str("the segment is sealed, so every record in it was acknowledged")
            }
            Damage::Empty => f.write_str("the sealed segment is empty"),
            Damage::Unreadable(why) => write!(f, "{why}"),
        }
    }
}

/// Damage to acknowledged records, found by opening the log or by a consumer reading it. The
/// file is left as it was, for an operator to check and repair.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "log segment {} is corrupt at byte {byte} (record {record}): {damage}; run `udaconnect log \
     check --data-dir {dir}`, then `udaconnect log repair --data-dir {dir}` to decide",
    .path.display(),
    dir = data_dir_of(.path)
)]
pub struct CorruptSegment {
    pub path: PathBuf,
    /// Where the damaged bytes start in the file.
    pub byte: u64,
    /// The offset of the record expected there.
    pub record: u64,
    pub damage: Damage,
}

/// The data directory a segment's log lives in (`<data-dir>/log/<topic>/<segment>`), as the
/// commands take it; `DIR` when the log is somewhere else.
fn data_dir_of(segment: &Path) -> String {
    match segment.ancestors().nth(2) {
        Some(root) if root.file_name().is_some_and(|n| n == "log") => root
            .parent()
            .map_or_else(|| "DIR".into(), |d| d.display().to_string()),
        _ => "DIR".into(),
    }
}

/// One thing wrong in a segment. Bytes are positions in the file; records are offsets. As
/// JSON: its fields and `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// Bytes after the last intact record of the active segment holding no intact record: a
    /// write cut short by a crash, never acknowledged. Opening the log clears them.
    TornTail {
        byte: u64,
        len: u64,
        /// The offset the next record would have had.
        record: u64,
        reason: &'static str,
    },
    /// Damaged bytes with intact records after them, or anywhere in a sealed segment.
    #[serde(rename = "corruption")]
    Corrupt {
        byte: u64,
        len: u64,
        /// The first offset lost: the one expected at `byte`.
        record: u64,
        /// The offset of the first intact record after the damage, if any: the records lost
        /// are `record..next_record`.
        next_record: Option<u64>,
        /// Intact records after the damage, in this segment.
        intact_after: u64,
        reason: &'static str,
    },
    /// Offsets `from..to` hold no record: records a repair removed, or that went missing.
    Gap { from: u64, to: u64 },
    /// A sealed segment with no bytes at all.
    Empty,
}

impl Problem {
    /// Whether this is damage to acknowledged records.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Problem::Corrupt { .. } | Problem::Empty)
    }

    /// Whether a repair changes the file for it (a gap is only reported).
    pub fn needs_repair(&self) -> bool {
        !matches!(self, Problem::Gap { .. })
    }

    /// What a repair removes for it: the bytes, and the records lost with them.
    pub fn removal(&self) -> Option<String> {
        match self {
            Problem::Corrupt {
                byte,
                len,
                record,
                next_record,
                ..
            } => Some(format!(
                "bytes {byte}..{} ({})",
                byte + len,
                lost(*record, *next_record)
            )),
            Problem::TornTail { byte, len, .. } => Some(format!(
                "bytes {byte}..{} (a torn tail, never acknowledged)",
                byte + len
            )),
            Problem::Empty => Some("the empty segment file".into()),
            Problem::Gap { .. } => None,
        }
    }
}

/// The records from `record` up to `next_record` (or the end of the segment), in words.
fn lost(record: u64, next_record: Option<u64>) -> String {
    match next_record {
        Some(n) if n == record + 1 => format!("record {record}"),
        Some(n) => format!("records {record}..{}", n - 1),
        None => format!("records from {record} to the end of the segment"),
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::TornTail {
                byte,
                len,
                record,
                reason,
            } => write!(
                f,
                "torn tail at byte {byte} ({len} bytes, {reason}): a write from record {record} \
                 on that was never acknowledged; opening the log clears it"
            ),
            Problem::Corrupt {
                byte,
                len,
                record,
                next_record,
                intact_after,
                reason,
            } => write!(
                f,
                "corruption at byte {byte} ({len} bytes, {reason}): {} unreadable, \
                 {intact_after} valid records follow",
                lost(*record, *next_record)
            ),
            Problem::Gap { from, to } if *to == from + 1 => write!(f, "no record {from} (gap)"),
            Problem::Gap { from, to } => write!(f, "no records {from}..{} (gap)", to - 1),
            Problem::Empty => f.write_str("sealed segment is empty"),
        }
    }
}

/// What a full read of one segment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    pub path: PathBuf,
    /// The offset the file is named after.
    pub base: u64,
    /// The base of the next segment when this one is sealed: its records all lie below.
    pub next_base: Option<u64>,
    pub file_len: u64,
    pub records: u64,
    pub first_offset: Option<u64>,
    pub last_offset: Option<u64>,
    /// Where the last intact record ends.
    pub records_end: u64,
    pub problems: Vec<Problem>,
}

impl SegmentScan {
    /// The first damage to acknowledged records, as opening the log reports it.
    pub fn corruption(&self) -> Option<CorruptSegment> {
        self.problems.iter().find_map(|p| {
            let (byte, record, damage) = match p {
                Problem::Empty => (0, self.base, Damage::Empty),
                Problem::Corrupt {
                    byte,
                    record,
                    intact_after,
                    ..
                } => {
                    let damage = match self.next_base {
                        Some(_) => Damage::Sealed,
                        None => Damage::RecordsFollow(*intact_after),
                    };
                    (*byte, *record, damage)
                }
                _ => return None,
            };
            Some(CorruptSegment {
                path: self.path.clone(),
                byte,
                record,
                damage,
            })
        })
    }

    /// The torn tail opening the log clears: where it starts, its length, and why.
    pub fn torn_tail(&self) -> Option<(u64, u64, &'static str)> {
        self.problems.iter().find_map(|p| match p {
            Problem::TornTail {
                byte, len, reason, ..
            } => Some((*byte, *len, *reason)),
            _ => None,
        })
    }

    /// Whether `log repair` would change this segment.
    pub fn needs_repair(&self) -> bool {
        self.problems.iter().any(Problem::needs_repair)
    }
}

/// Reads every frame of a segment. `next_base`: the next segment's base when this one is sealed.
pub(crate) fn scan_segment(
    path: &Path,
    base: u64,
    next_base: Option<u64>,
) -> std::io::Result<SegmentScan> {
    Ok(scan_bytes(path, &fs::read(path)?, base, next_base))
}

fn scan_bytes(path: &Path, data: &[u8], base: u64, next_base: Option<u64>) -> SegmentScan {
    let limit = next_base.unwrap_or(u64::MAX);
    // The active segment's zeros after its records are preallocated space; a sealed segment was
    // cut to its last record, so there zeros are damage like any other byte.
    let content_end = match next_base {
        Some(_) => data.len(),
        None => data.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1),
    };
    let mut scan = SegmentScan {
        path: path.to_path_buf(),
        base,
        next_base,
        file_len: data.len() as u64,
        records: 0,
        first_offset: None,
        last_offset: None,
        records_end: 0,
        problems: Vec::new(),
    };
    if data.is_empty() && next_base.is_some() {
        scan.problems.push(Problem::Empty);
        return scan;
    }
    let mut pos = 0usize;
    let mut expected = base;
    // The problem index and the records read before each damaged region, to count those after.
    let mut records_before = Vec::new();
    let mut after_damage = false;
    while pos < content_end {
        let reason = match frame::decode(&data[pos..]) {
            Decoded::Record { offset, len, .. } if (expected..limit).contains(&offset) => {
                if offset > expected && !after_damage {
                    scan.problems.push(Problem::Gap {
                        from: expected,
                        to: offset,
                    });
                }
                after_damage = false;
                scan.records += 1;
                scan.first_offset.get_or_insert(offset);
                scan.last_offset = Some(offset);
                pos += len;
                scan.records_end = pos as u64;
                expected = offset + 1;
                continue;
            }
            Decoded::Record { .. } => "offset out of sequence",
            Decoded::Incomplete => "torn record",
            Decoded::Corrupt(why) => why,
        };
        let next = frame::find_intact(data, pos + 1, expected..limit);
        let (byte, record) = (pos as u64, expected);
        match next {
            Some(next) => {
                records_before.push((scan.problems.len(), scan.records));
                scan.problems.push(Problem::Corrupt {
                    byte,
                    len: (next - pos) as u64,
                    record,
                    next_record: frame::peek(&data[next..]).map(|(_, o)| o),
                    intact_after: 0,
                    reason,
                });
                after_damage = true;
                pos = next;
            }
            _ => {
                let len = (content_end - pos) as u64;
                scan.problems.push(match next_base {
                    Some(_) => Problem::Corrupt {
                        byte,
                        len,
                        record,
                        next_record: None,
                        intact_after: 0,
                        reason,
                    },
                    None => Problem::TornTail {
                        byte,
                        len,
                        record,
                        reason,
                    },
                });
                after_damage = true;
                break;
            }
        }
    }
    if expected < limit && !after_damage && next_base.is_some() {
        scan.problems.push(Problem::Gap {
            from: expected,
            to: limit,
        });
    }
    for (i, before) in records_before {
        if let Problem::Corrupt { intact_after, .. } = &mut scan.problems[i] {
            *intact_after = scan.records - before;
        }
    }
    scan
}

/// Opening the log's check of a sealed segment, without reading it whole (a full scan of every
/// segment would cost seconds at millions of records): its first frame is intact and in its
/// range, and so is a frame that ends exactly at the end of the file. Damage inside is found
/// by `log check`, or by the first consumer that reads it, which stops there with an error.
/// When either end is wrong, a full scan says where.
pub(crate) fn verify_sealed(
    path: &Path,
    base: u64,
    next_base: u64,
) -> std::io::Result<Option<CorruptSegment>> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let offsets = base..next_base;
    let mut head = [0u8; HEADER_LEN + 8];
    let first_ok = len >= head.len() as u64
        && file.read_exact_at(&mut head, 0).is_ok()
        && match frame::peek(&head) {
            Some((frame_len, offset)) if frame_len as u64 <= len && offsets.contains(&offset) => {
                let mut first = vec![0u8; frame_len];
                file.read_exact_at(&mut first, 0)?;
                matches!(frame::decode(&first), Decoded::Record { .. })
            }
            _ => false,
        };
    if first_ok && last_frame_ends_the_file(&file, len, &offsets)? {
        return Ok(None);
    }
    Ok(scan_segment(path, base, Some(next_base))?.corruption())
}

/// Whether an intact frame with an offset in `offsets` ends exactly at `len`.
fn last_frame_ends_the_file(
    file: &File,
    len: u64,
    offsets: &std::ops::Range<u64>,
) -> std::io::Result<bool> {
    Ok(last_record(file, len, offsets)?.is_some())
}

/// The record of the intact frame with an offset in `offsets` that ends exactly at `len`,
/// searched back from the end: in the last 64 KiB, then as far back as the largest frame
/// reaches. `None` when there is none.
pub(crate) fn last_record(
    file: &File,
    len: u64,
    offsets: &std::ops::Range<u64>,
) -> std::io::Result<Option<LogRecord>> {
    for window in [64 << 10, (HEADER_LEN + MAX_BODY_LEN) as u64] {
        let window = window.min(len);
        let mut tail = vec![0u8; window as usize];
        file.read_exact_at(&mut tail, len - window)?;
        let last_start = tail.len().saturating_sub(HEADER_LEN + MIN_BODY_LEN);
        let found = (0..=last_start).rev().find_map(|at| {
            if !matches!(frame::peek(&tail[at..]), Some((n, o)) if n == tail.len() - at && offsets.contains(&o))
            {
                return None;
            }
            match frame::decode(&tail[at..]) {
                Decoded::Record { record, .. } => Some(record),
                _ => None,
            }
        });
        if found.is_some() {
            return Ok(found);
        }
        if window == len {
            break;
        }
    }
    Ok(None)
}

/// What `log check` found in one topic, segment by segment, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicReport {
    pub topic: String,
    pub segments: Vec<SegmentScan>,
}

/// What `log check` found in a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogReport {
    pub root: PathBuf,
    pub topics: Vec<TopicReport>,
    /// Whether a running process held the log during the check: its active segments may have
    /// grown meanwhile.
    pub in_use: bool,
}

impl LogReport {
    pub fn segments(&self) -> impl Iterator<Item = &SegmentScan> {
        self.topics.iter().flat_map(|t| &t.segments)
    }

    /// Whether acknowledged records are damaged anywhere (a torn tail or a gap alone is not).
    pub fn is_corrupt(&self) -> bool {
        self.segments()
            .any(|s| s.problems.iter().any(Problem::is_corruption))
    }
}

/// Scans every segment of every topic in `root` (or of `topic` alone) in full. `progress`
/// hears the bytes read so far and the bytes to read in all.
pub fn check(
    root: &Path,
    topic: Option<&str>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<LogReport> {
    exists(root)?;
    // Probed, not held: a check only reads, and must not stop a server from starting.
    let in_use = match lock(root) {
        Ok(_) => false,
        Err(Error::Unavailable(_)) => true,
        Err(e) => return Err(e),
    };
    let mut report = scan_log(root, topic, progress)?;
    report.in_use = in_use;
    Ok(report)
}

fn exists(root: &Path) -> Result<()> {
    if root.is_dir() {
        Ok(())
    } else {
        Err(Error::NotFound {
            what: "embedded log",
            id: root.display().to_string(),
        })
    }
}

fn scan_log(
    root: &Path,
    topic: Option<&str>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<LogReport> {
    let topics = match topic {
        Some(t) if valid_topic(t) && root.join(t).is_dir() => vec![t.to_string()],
        Some(t) => {
            return Err(Error::NotFound {
                what: "topic",
                id: t.into(),
            })
        }
        None => topic_names(root).map_err(|e| io_err("list topics", e))?,
    };
    let mut listed = Vec::new();
    let mut total = 0;
    for t in topics {
        let dir = root.join(&t);
        let bases = segment_bases(&dir).map_err(|e| io_err("list segments", e))?;
        for base in &bases {
            total += fs::metadata(segment_path(&dir, *base)).map_or(0, |m| m.len());
        }
        listed.push((t, dir, bases));
    }
    let mut done = 0;
    progress(done, total);
    let mut report = LogReport {
        root: root.to_path_buf(),
        topics: Vec::new(),
        in_use: false,
    };
    for (topic, dir, bases) in listed {
        let mut segments = Vec::new();
        for (i, base) in bases.iter().enumerate() {
            let path = segment_path(&dir, *base);
            let scan = scan_segment(&path, *base, bases.get(i + 1).copied())
                .map_err(|e| io_err("read segment", e))?;
            done += scan.file_len;
            progress(done, total);
            segments.push(scan);
        }
        report.topics.push(TopicReport { topic, segments });
    }
    Ok(report)
}

/// The log held against every other process, for a repair: no server can open it meanwhile.
pub struct Exclusive {
    root: PathBuf,
    _lock: File,
}

/// What a repair did to one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    /// The segment as it was found: its problems are what the repair removed.
    pub scan: SegmentScan,
    /// A copy of the file as it was.
    pub backup: PathBuf,
    /// Whether the file is gone: a sealed segment left with no intact record.
    pub removed: bool,
}

impl Exclusive {
    /// Takes the log's lock; fails while a server (or anything else) holds the log open.
    pub fn acquire(root: &Path) -> Result<Exclusive> {
        exists(root)?;
        Ok(Exclusive {
            root: root.to_path_buf(),
            _lock: lock(root)?,
        })
    }

    /// [`check`], under the lock.
    pub fn check(
        &self,
        topic: Option<&str>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<LogReport> {
        scan_log(&self.root, topic, progress)
    }

    /// Repairs every segment of `report` that needs it (a report made under this lock): copies
    /// the file to `<root>/backup/<topic>/<segment>.<unix-time>`, then rewrites it with every
    /// intact record and nothing else (a sealed segment left empty is removed). Each intact
    /// record keeps its offset; the removed ones leave a gap.
    pub fn repair(&self, report: &LogReport) -> Result<Vec<Repaired>> {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut repaired = Vec::new();
        for topic in &report.topics {
            for scan in topic.segments.iter().filter(|s| s.needs_repair()) {
                let backup = self.root.join(BACKUP_DIR).join(&topic.topic).join(format!(
                    "{}.{stamp}",
                    scan.path.file_name().unwrap_or_default().to_string_lossy()
                ));
                let removed = repair_segment(scan, &backup)?;
                repaired.push(Repaired {
                    scan: scan.clone(),
                    backup,
                    removed,
                });
            }
        }
        Ok(repaired)
    }
}

/// Backs `scan`'s segment up to `backup`, then keeps its intact records only. True when the
/// file was removed instead.
fn repair_segment(scan: &SegmentScan, backup: &Path) -> Result<bool> {
    let data = fs::read(&scan.path).map_err(|e| io_err("read segment", e))?;
    if data.len() as u64 != scan.file_len {
        return Err(Error::Unavailable(format!(
            "log segment {} (changed since it was checked)",
            scan.path.display()
        )));
    }
    let mut kept = Vec::with_capacity(scan.records_end as usize);
    let mut from = 0;
    for p in &scan.problems {
        if let Problem::Corrupt { byte, len, .. } = p {
            if *byte < scan.records_end {
                kept.extend_from_slice(&data[from..*byte as usize]);
                from = (byte + len) as usize;
            }
        }
    }
    kept.extend_from_slice(&data[from.min(scan.records_end as usize)..scan.records_end as usize]);
    let removed = kept.is_empty() && scan.next_base.is_some();
    // What is written must read back as every intact record and no damage.
    let after = scan_bytes(&scan.path, &kept, scan.base, scan.next_base);
    if after.records != scan.records || (after.needs_repair() && !removed) {
        return Err(Error::Internal(format!(
            "repair of log segment {} would not leave its intact records",
            scan.path.display()
        )));
    }
    write_durably(backup, &data, true).map_err(|e| io_err("write backup", e))?;
    let dir = scan.path.parent().unwrap_or(Path::new("."));
    if removed {
        fs::remove_file(&scan.path).map_err(|e| io_err("remove segment", e))?;
    } else {
        let tmp = scan.path.with_extension("seg.repair");
        write_durably(&tmp, &kept, false).map_err(|e| io_err("write segment", e))?;
        fs::rename(&tmp, &scan.path).map_err(|e| io_err("replace segment", e))?;
    }
    sync_dir(dir).map_err(|e| io_err("sync directory", e))?;
    Ok(removed)
}

/// Writes `bytes` to a file at `path` and syncs both; `new`: fail rather than replace one.
fn write_durably(path: &Path, bytes: &[u8], new: bool) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut file = if new {
        File::create_new(path)?
    } else {
        File::create(path)?
    };
    file.write_all(bytes)?;
    file.sync_all()?;
    sync_dir(dir)
}

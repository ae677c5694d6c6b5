//! Damage on disk: what opening the log cuts, what it refuses, and what check and repair do.

use std::time::Duration;

use udaconnect_core::ports::Consumed;

use super::check::{self, Exclusive, LogReport, Problem};
use super::*;

const TOPIC: &str = "location";

fn ping(i: u64) -> LogRecord {
    LogRecord {
        key: Some(i.to_le_bytes().to_vec()),
        value: format!(r#"{{"id":{i},"person_id":{},"latitude":"-122.29"}}"#, i % 5).into_bytes(),
        headers: Vec::new(),
        timestamp_ms: 1_700_000_000_000 + i as i64,
    }
}

fn small_segments() -> EmbeddedLogOptions {
    EmbeddedLogOptions {
        segment_bytes: 4096,
        ..Default::default()
    }
}

/// A log of `n` pings in `root`, appended `chunk` at a time (a segment rolls after a chunk).
async fn write_log(root: &Path, n: u64, chunk: u64, options: EmbeddedLogOptions) {
    let log = EmbeddedLog::open(root, options).unwrap();
    for start in (0..n).step_by(chunk as usize) {
        let records = (start..n.min(start + chunk)).map(ping).collect();
        log.append(TOPIC, records).await.unwrap();
    }
}

/// [`write_log`] with segments small enough that there are several; its segment files.
async fn write_segmented_log(root: &Path, n: u64, chunk: u64) -> Vec<PathBuf> {
    write_log(root, n, chunk, small_segments()).await;
    let segs = segment_files(root);
    assert!(segs.len() > 2, "several segments");
    segs
}

fn segment_files(root: &Path) -> Vec<PathBuf> {
    super::segment_files(&root.join(TOPIC)).unwrap()
}

/// A frame of a segment: where it starts, its length, its offset.
#[derive(Debug, Clone, Copy)]
struct At {
    byte: usize,
    len: usize,
    offset: u64,
}

fn frames(path: &Path) -> Vec<At> {
    let bytes = fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut byte = 0;
    while let frame::Decoded::Record { offset, len, .. } = frame::decode(&bytes[byte..]) {
        out.push(At { byte, len, offset });
        byte += len;
    }
    out
}

/// Flips one byte in the middle of a frame's body: its checksum no longer matches.
fn flip(path: &Path, at: At) {
    udaconnect_testkit::local::flip_byte(path, (at.byte + at.len / 2) as u64);
}

/// Offsets a new consumer reads from the start, each checked against what was written.
async fn read_all(log: &EmbeddedLog) -> Vec<u64> {
    let mut c = log
        .consumer(TOPIC, "reader", StartFrom::Earliest)
        .await
        .unwrap();
    let mut got = Vec::new();
    loop {
        let batch = c.poll(7, Duration::from_millis(10)).await.unwrap();
        if batch.is_empty() {
            return got;
        }
        for Consumed { position, record } in batch {
            let offset = position.offset as u64;
            assert_eq!(record, ping(offset));
            got.push(offset);
        }
    }
}

fn all_but(n: u64, lost: &[u64]) -> Vec<u64> {
    (0..n).filter(|o| !lost.contains(o)).collect()
}

fn check_log(root: &Path) -> LogReport {
    check::check(root, None, &mut |_, _| {}).unwrap()
}

fn problems(report: &LogReport) -> Vec<Problem> {
    report.segments().flat_map(|s| s.problems.clone()).collect()
}

fn refusal(root: &Path, options: EmbeddedLogOptions) -> CorruptSegment {
    match EmbeddedLog::open(root, options) {
        Err(OpenError::Corrupt(c)) => c,
        Err(e) => panic!("failed otherwise: {e}"),
        Ok(_) => panic!("opened a corrupt log"),
    }
}

fn repair(root: &Path) -> Vec<check::Repaired> {
    let held = Exclusive::acquire(root).unwrap();
    let report = held.check(None, &mut |_, _| {}).unwrap();
    held.repair(&report).unwrap()
}

#[tokio::test]
async fn a_byte_flipped_mid_segment_refuses_the_open_and_repair_keeps_every_other_record() {
    let data = tempfile::tempdir().unwrap();
    let root = data.path().join("log");
    write_log(&root, 1000, 100, Default::default()).await;
    let seg = segment_files(&root).pop().unwrap();
    let victim = frames(&seg)[400];
    flip(&seg, victim);
    let damaged = fs::read(&seg).unwrap();

    for _ in 0..2 {
        let c = refusal(&root, Default::default());
        assert_eq!(c.path, seg);
        assert_eq!((c.byte, c.record), (victim.byte as u64, 400));
        assert_eq!(c.damage, Damage::RecordsFollow(599));
        let message = c.to_string();
        for part in [
            format!("log segment {} is corrupt", seg.display()),
            format!("at byte {} (record 400)", victim.byte),
            "599 valid records follow the damaged one".into(),
            format!("udaconnect log check --data-dir {}", data.path().display()),
            format!("udaconnect log repair --data-dir {}", data.path().display()),
        ] {
            assert!(message.contains(&part), "{message} lacks {part}");
        }
        assert_eq!(
            fs::read(&seg).unwrap(),
            damaged,
            "the file is left as it was"
        );
    }

    let report = check_log(&root);
    assert!(report.is_corrupt() && !report.in_use);
    let scan = &report.topics[0].segments[0];
    assert_eq!(
        (scan.records, scan.first_offset, scan.last_offset),
        (999, Some(0), Some(999))
    );
    assert_eq!(
        scan.problems,
        [Problem::Corrupt {
            byte: victim.byte as u64,
            len: victim.len as u64,
            record: 400,
            next_record: Some(401),
            intact_after: 599,
            reason: "checksum mismatch",
        }]
    );

    let repaired = repair(&root);
    assert_eq!(repaired.len(), 1);
    assert!(!repaired[0].removed);
    assert!(repaired[0]
        .backup
        .starts_with(root.join("backup").join(TOPIC)));
    assert_eq!(fs::read(&repaired[0].backup).unwrap(), damaged);

    let log = EmbeddedLog::open(&root, Default::default()).unwrap();
    assert_eq!(log.end_offset(TOPIC).unwrap(), 1000);
    assert_eq!(read_all(&log).await, all_but(1000, &[400]));
    // New records follow the last one, the gap stays a gap.
    log.append(TOPIC, vec![ping(1000)]).await.unwrap();
    assert_eq!(read_all(&log).await, all_but(1001, &[400]));
    drop(log);
    let report = check_log(&root);
    assert!(!report.is_corrupt());
    assert_eq!(problems(&report), [Problem::Gap { from: 400, to: 401 }]);
}

#[tokio::test]
async fn a_bad_first_record_refuses_the_open_instead_of_emptying_the_segment() {
    let data = tempfile::tempdir().unwrap();
    let root = data.path().join("log");
    let segs = write_segmented_log(&root, 200, 20).await;
    let active = segs.last().unwrap();
    let first = frames(active)[0];
    let records = frames(active).len() as u64;
    flip(active, first);

    let c = refusal(&root, small_segments());
    assert_eq!((&c.path, c.byte, c.record), (active, 0, first.offset));
    assert_eq!(c.damage, Damage::RecordsFollow(records - 1));
    assert!(check_log(&root).is_corrupt());
    repair(&root);
    let log = EmbeddedLog::open(&root, small_segments()).unwrap();
    assert_eq!(read_all(&log).await, all_but(200, &[first.offset]));
}

#[tokio::test]
async fn a_torn_tail_is_still_cut() {
    // A last frame with a bad checksum, followed by the preallocated zeros.
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 50, 50, Default::default()).await;
    let seg = segment_files(dir.path()).pop().unwrap();
    let last = *frames(&seg).last().unwrap();
    flip(&seg, last);
    let len = fs::metadata(&seg).unwrap().len();
    assert!(
        len > (last.byte + last.len) as u64,
        "zeros follow the records"
    );
    let report = check_log(dir.path());
    assert!(!report.is_corrupt(), "a torn tail is no corruption");
    assert!(matches!(
        problems(&report)[..],
        [Problem::TornTail { byte, record: 49, .. }] if byte == last.byte as u64
    ));
    {
        let log = EmbeddedLog::open(dir.path(), Default::default()).unwrap();
        let r = &log.recoveries()[0];
        assert_eq!((r.records, r.reason), (49, Some("checksum mismatch")));
        assert!((1..=last.len as u64).contains(&r.truncated_bytes));
        assert_eq!(read_all(&log).await, all_but(49, &[]));
    }
    let bytes = fs::read(&seg).unwrap();
    assert!(bytes[last.byte..].iter().all(|b| *b == 0));

    // A last frame cut short at the very end of the file, with no zeros after it.
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 50, 50, Default::default()).await;
    let seg = segment_files(dir.path()).pop().unwrap();
    let last = *frames(&seg).last().unwrap();
    let file = OpenOptions::new().write(true).open(&seg).unwrap();
    file.set_len((last.byte + last.len - 5) as u64).unwrap();
    drop(file);
    assert!(!check_log(dir.path()).is_corrupt());
    let log = EmbeddedLog::open(dir.path(), Default::default()).unwrap();
    let r = &log.recoveries()[0];
    assert_eq!((r.records, r.reason), (49, Some("torn record")));
    log.append(TOPIC, vec![ping(49), ping(50)]).await.unwrap();
    assert_eq!(read_all(&log).await, all_but(51, &[]));
}

#[tokio::test]
async fn damage_in_a_sealed_segment_stops_consumers_or_the_open_and_repair_keeps_the_rest() {
    let data = tempfile::tempdir().unwrap();
    let root = data.path().join("log");
    let segs = write_segmented_log(&root, 300, 10).await;

    // Inside a sealed segment: opening checks only the ends of sealed segments, so it opens;
    // a consumer stops at the damaged record, every poll, and skips nothing.
    let inside = frames(&segs[1])[3];
    flip(&segs[1], inside);
    let log = EmbeddedLog::open(&root, small_segments()).unwrap();
    let mut c = log.consumer(TOPIC, "g", StartFrom::Earliest).await.unwrap();
    let mut got = Vec::new();
    let error = loop {
        match c.poll(4, Duration::ZERO).await {
            Ok(batch) => got.extend(batch.iter().map(|r| r.position.offset as u64)),
            Err(e) => break e.to_string(),
        }
    };
    assert_eq!(got, (0..inside.offset).collect::<Vec<_>>());
    let at = format!(
        "log segment {} is corrupt at byte {} (record {})",
        segs[1].display(),
        inside.byte,
        inside.offset
    );
    assert!(error.contains(&at), "{error}");
    for _ in 0..3 {
        let again = c.poll(4, Duration::ZERO).await.unwrap_err().to_string();
        assert_eq!(again, error);
    }
    drop(c);
    drop(log);

    // The last record of a sealed segment: acknowledged like any other, so the open refuses.
    let last = *frames(&segs[2]).last().unwrap();
    flip(&segs[2], last);
    let c = refusal(&root, small_segments());
    assert_eq!(
        (&c.path, c.byte, c.record),
        (&segs[2], last.byte as u64, last.offset)
    );
    assert_eq!(c.damage, Damage::Sealed);
    assert!(c
        .to_string()
        .contains("every record in it was acknowledged"));

    let report = check_log(&root);
    assert!(report.is_corrupt());
    let corrupt: Vec<_> = report
        .segments()
        .filter(|s| s.problems.iter().any(Problem::is_corruption))
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(corrupt, [segs[1].clone(), segs[2].clone()]);
    assert_eq!(repair(&root).len(), 2);
    let log = EmbeddedLog::open(&root, small_segments()).unwrap();
    assert_eq!(
        read_all(&log).await,
        all_but(300, &[inside.offset, last.offset])
    );
}

#[tokio::test]
async fn sealed_segments_cut_short_or_emptied_refuse_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let segs = write_segmented_log(dir.path(), 120, 10).await;
    let original = fs::read(&segs[0]).unwrap();

    fs::write(&segs[0], &original[..original.len() - 9]).unwrap();
    let c = refusal(dir.path(), small_segments());
    assert_eq!(c.damage, Damage::Sealed);
    fs::write(&segs[0], vec![0u8; original.len()]).unwrap();
    let c = refusal(dir.path(), small_segments());
    assert_eq!((c.byte, c.record, c.damage), (0, 0, Damage::Sealed));
    fs::write(&segs[0], b"").unwrap();
    let c = refusal(dir.path(), small_segments());
    assert_eq!((c.byte, c.damage), (0, Damage::Empty));

    // Nothing of it is left: repair removes the file, and the records after it remain.
    let repaired = repair(dir.path());
    assert!(repaired[0].removed && !segs[0].exists());
    let first_kept = frames(&segs[1])[0].offset;
    let log = EmbeddedLog::open(dir.path(), small_segments()).unwrap();
    assert_eq!(read_all(&log).await, (first_kept..120).collect::<Vec<_>>());
}

#[tokio::test]
async fn consumers_step_over_the_gaps_a_repair_left() {
    let dir = tempfile::tempdir().unwrap();
    // The 200th record fills a segment: five more so that the active one holds records.
    let written = 205;
    let segs = write_segmented_log(dir.path(), written, 10).await;
    // The last record of one segment, the first two of the next, one inside the active one.
    let mut lost = Vec::new();
    let tail = *frames(&segs[1]).last().unwrap();
    let heads = frames(&segs[2]);
    let active = frames(segs.last().unwrap());
    flip(&segs[1], tail);
    flip(&segs[2], heads[0]);
    flip(&segs[2], heads[1]);
    flip(segs.last().unwrap(), active[2]);
    lost.extend([
        tail.offset,
        heads[0].offset,
        heads[1].offset,
        active[2].offset,
    ]);
    let report = check_log(dir.path());
    let corrupt = problems(&report)
        .into_iter()
        .filter(Problem::is_corruption)
        .count();
    assert_eq!(
        corrupt, 3,
        "the two records at the head of a segment are one region"
    );
    repair(dir.path());
    let report = check_log(dir.path());
    assert!(!report.is_corrupt());
    let gaps: Vec<_> = problems(&report)
        .into_iter()
        .map(|p| match p {
            Problem::Gap { from, to } => (from, to),
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(
        gaps,
        [
            (tail.offset, tail.offset + 1),
            (heads[0].offset, heads[0].offset + 2),
            (active[2].offset, active[2].offset + 1)
        ]
    );

    let log = EmbeddedLog::open(dir.path(), small_segments()).unwrap();
    let want = all_but(written, &lost);
    assert_eq!(read_all(&log).await, want);
    // Polls of every size, each starting where the last one ended.
    for max in 1..6 {
        let mut c = log
            .consumer(TOPIC, &format!("g{max}"), StartFrom::Earliest)
            .await
            .unwrap();
        let mut got = Vec::new();
        loop {
            let batch = c.poll(max, Duration::ZERO).await.unwrap();
            if batch.is_empty() && c.lag() == Some(0) {
                break;
            }
            got.extend(batch.iter().map(|r| r.position.offset as u64));
        }
        assert_eq!(got, want, "polls of {max}");
    }
    // A committed position inside a gap resumes at the next record there is.
    for from in [tail.offset, heads[0].offset, heads[1].offset] {
        let group = format!("at{from}");
        fs::write(
            dir.path()
                .join(TOPIC)
                .join("groups")
                .join(format!("{group}.offset")),
            from.to_string(),
        )
        .unwrap();
        let mut c = log
            .consumer(TOPIC, &group, StartFrom::Earliest)
            .await
            .unwrap();
        // Polls of one may end inside the gap with nothing; a later one finds the record.
        let mut got = None;
        while got.is_none() && c.lag() > Some(0) {
            let batch = c.poll(1, Duration::ZERO).await.unwrap();
            got = batch.first().map(|r| r.position.offset as u64);
        }
        let next = want.iter().find(|o| **o > from).copied();
        assert_eq!(got, next, "resuming at {from}");
    }
}

#[tokio::test]
async fn repair_is_refused_while_the_log_is_open_and_twice_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 100, 100, Default::default()).await;
    let seg = segment_files(dir.path()).pop().unwrap();
    flip(&seg, frames(&seg)[10]);
    let damaged = fs::read(&seg).unwrap();

    // Opening fails on the damage but the lock is released with it; a running log holds it.
    assert!(EmbeddedLog::open(dir.path(), Default::default()).is_err());
    let other = tempfile::tempdir().unwrap();
    write_log(other.path(), 10, 10, Default::default()).await;
    let running = EmbeddedLog::open(other.path(), Default::default()).unwrap();
    assert!(matches!(
        Exclusive::acquire(other.path()),
        Err(Error::Unavailable(_))
    ));
    assert!(
        check::check(other.path(), None, &mut |_, _| {})
            .unwrap()
            .in_use
    );
    drop(running);
    assert!(Exclusive::acquire(other.path()).is_ok());

    let held = Exclusive::acquire(dir.path()).unwrap();
    assert!(
        EmbeddedLog::open(dir.path(), Default::default()).is_err(),
        "no open during a repair"
    );
    let report = held.check(None, &mut |_, _| {}).unwrap();
    assert_eq!(held.repair(&report).unwrap().len(), 1);
    let repaired = fs::read(&seg).unwrap();
    assert_ne!(repaired, damaged);
    let again = held.check(None, &mut |_, _| {}).unwrap();
    assert!(held.repair(&again).unwrap().is_empty());
    drop(held);
    assert_eq!(repair(dir.path()), []);
    assert_eq!(fs::read(&seg).unwrap(), repaired);
    let backups = fs::read_dir(dir.path().join("backup").join(TOPIC)).unwrap();
    assert_eq!(backups.count(), 1);
    let log = EmbeddedLog::open(dir.path(), Default::default()).unwrap();
    assert_eq!(read_all(&log).await, all_but(100, &[10]));
}

#[tokio::test]
async fn check_reports_progress_over_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let total: u64 = write_segmented_log(dir.path(), 200, 10)
        .await
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    let mut seen = Vec::new();
    let report = check::check(dir.path(), Some(TOPIC), &mut |done, all| {
        seen.push((done, all))
    })
    .unwrap();
    assert_eq!(seen.first(), Some(&(0, total)));
    assert_eq!(seen.last(), Some(&(total, total)));
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
    let records: u64 = report.segments().map(|s| s.records).sum();
    assert_eq!(records, 200);
    assert!(problems(&report).is_empty());
    assert!(matches!(
        check::check(dir.path(), Some("nope"), &mut |_, _| {}),
        Err(Error::NotFound { .. })
    ));
}

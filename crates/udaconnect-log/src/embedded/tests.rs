use std::time::Duration;

use udaconnect_core::ports::Consumed;

use super::*;

fn rec(i: u64) -> LogRecord {
    LogRecord {
        key: Some(format!("{}", i % 7).into_bytes()),
        value: format!("{{\"n\":{i}}}").into_bytes(),
        headers: vec![("correlation_id".into(), format!("c{i}").into_bytes())],
        timestamp_ms: i as i64,
    }
}

fn small_segments() -> EmbeddedLogOptions {
    EmbeddedLogOptions {
        segment_bytes: 4096,
        ..Default::default()
    }
}

async fn drain(c: &mut DynLogConsumer) -> Vec<Consumed> {
    let mut all = Vec::new();
    loop {
        let batch = c.poll(100, Duration::from_millis(20)).await.unwrap();
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

/// Records 0 to 299 to topic `t`, ten an append: several segments of [`small_segments`].
async fn append_300_in_tens(log: &EmbeddedLog) {
    for chunk in 0..30 {
        log.append("t", (chunk * 10..chunk * 10 + 10).map(rec).collect())
            .await
            .unwrap();
    }
}

fn values(v: &[Consumed]) -> Vec<u64> {
    v.iter().map(|c| c.record.timestamp_ms as u64).collect()
}

#[tokio::test]
async fn append_consume_commit_resume_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = EmbeddedLog::open(dir.path(), small_segments()).unwrap();
        append_300_in_tens(&log).await;
        let mut c = log.consumer("t", "g", StartFrom::Earliest).await.unwrap();
        let first = c.poll(120, Duration::ZERO).await.unwrap();
        assert_eq!(values(&first), (0..120).collect::<Vec<_>>());
        assert_eq!(first[5].record, rec(5));
        c.commit().await.unwrap();
        // Not committed: redelivered after the reopen.
        assert_eq!(c.poll(10, Duration::ZERO).await.unwrap().len(), 10);
    }
    let log = EmbeddedLog::open(dir.path(), small_segments()).unwrap();
    assert!(
        fs::read_dir(dir.path().join("t")).unwrap().count() > 3,
        "several segments"
    );
    assert_eq!(log.end_offset("t").unwrap(), 300);
    let mut c = log.consumer("t", "g", StartFrom::Earliest).await.unwrap();
    assert_eq!(c.lag(), Some(180));
    assert_eq!(values(&drain(&mut c).await), (120..300).collect::<Vec<_>>());
    let mut latest = log.consumer("t", "other", StartFrom::Latest).await.unwrap();
    log.append("t", vec![rec(300)]).await.unwrap();
    assert_eq!(values(&drain(&mut latest).await), [300]);
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    super::segment_files(dir).unwrap()
}

fn last_segment(dir: &Path) -> PathBuf {
    segments(dir).pop().unwrap()
}

/// Appends records `0..n` to topic `t` of a log in `dir` and closes it; its last segment.
async fn closed_log(dir: &Path, n: u64) -> PathBuf {
    let log = EmbeddedLog::open(dir, Default::default()).unwrap();
    log.append("t", (0..n).map(rec).collect()).await.unwrap();
    drop(log);
    last_segment(&dir.join("t"))
}

/// Bytes that the frames of records `0..n` take, as written from offset 0.
fn frames_len(n: u64) -> u64 {
    let mut buf = Vec::new();
    for i in 0..n {
        frame::encode(&mut buf, i, &rec(i));
    }
    buf.len() as u64
}

#[tokio::test]
async fn small_appends_use_preallocated_space_and_a_closed_segment_ends_at_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), small_segments()).unwrap();
    log.append("t", vec![rec(0)]).await.unwrap();
    let seg = last_segment(&dir.path().join("t"));
    // Zeros follow the record, so the next small sync does not grow the file.
    assert!(fs::metadata(&seg).unwrap().len() > frames_len(1));
    for i in 1..200 {
        log.append("t", vec![rec(i)]).await.unwrap();
    }
    let segs = segments(&dir.path().join("t"));
    assert!(segs.len() > 1, "the small segments roll");
    // Every closed segment holds whole frames and nothing after them.
    for closed in &segs[..segs.len() - 1] {
        let bytes = fs::read(closed).unwrap();
        let mut pos = 0;
        while pos < bytes.len() {
            match frame::decode(&bytes[pos..]) {
                frame::Decoded::Record { len, .. } => pos += len,
                other => panic!("{} at {pos}: {other:?}", closed.display()),
            }
        }
    }
    drop(log);
    let log = EmbeddedLog::open(dir.path(), small_segments()).unwrap();
    assert_eq!(log.end_offset("t").unwrap(), 200);
    assert_eq!(
        log.recoveries()[0].truncated_bytes,
        0,
        "zeros are not damage"
    );
    let mut c = log.consumer("t", "g", StartFrom::Earliest).await.unwrap();
    assert_eq!(values(&drain(&mut c).await), (0..200).collect::<Vec<_>>());
}

/// An append that fills its segment is answered once the next segment exists: a log closed
/// right after, and its directory opened again, finds the files as they stay.
#[tokio::test]
async fn an_append_that_fills_a_segment_is_answered_after_the_roll() {
    let dir = tempfile::tempdir().unwrap();
    let topic = dir.path().join("t");
    let full = (0..).find(|n| frames_len(*n) >= 4096).unwrap();
    let log = EmbeddedLog::open(dir.path(), small_segments()).unwrap();
    for i in 0..full {
        log.append("t", vec![rec(i)]).await.unwrap();
    }
    let seen = segments(&topic);
    drop(log);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1], segment_path(&topic, full));
    let log = EmbeddedLog::open(dir.path(), EmbeddedLogOptions::default()).unwrap();
    log.append("t", vec![rec(full)]).await.unwrap();
    assert_eq!(
        segments(&topic),
        seen,
        "no segment appears after the answer"
    );
    let mut c = log.consumer("t", "g", StartFrom::Earliest).await.unwrap();
    assert_eq!(values(&drain(&mut c).await), (0..=full).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_consumer_that_read_up_to_the_zeros_sees_the_records_written_over_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), Default::default()).unwrap();
    let mut c = log.consumer("t", "g", StartFrom::Earliest).await.unwrap();
    for i in 0..20 {
        log.append("t", vec![rec(i)]).await.unwrap();
        let got = c.poll(10, Duration::from_secs(5)).await.unwrap();
        assert_eq!(values(&got), [i]);
    }
}

#[tokio::test]
async fn torn_tail_is_cut_and_the_prefix_kept() {
    let dir = tempfile::tempdir().unwrap();
    let seg = closed_log(dir.path(), 10).await;
    // A crash in the middle of the next write: half a frame after the last record.
    let mut half = Vec::new();
    frame::encode(&mut half, 10, &rec(10));
    half.truncate(half.len() / 2);
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .write_all_at(&half, frames_len(10))
        .unwrap();

    let log = EmbeddedLog::open(dir.path(), Default::default()).unwrap();
    assert_eq!(log.end_offset("t").unwrap(), 10);
    let r = &log.recoveries()[0];
    assert_eq!(r.records, 10);
    // Up to the last non-zero byte of the half frame.
    assert!((1..=half.len() as u64).contains(&r.truncated_bytes));
    assert_eq!(r.reason, Some("checksum mismatch"));
    log.append("t", vec![rec(10)]).await.unwrap();
    let mut c = log.consumer("t", "g", StartFrom::Earliest).await.unwrap();
    assert_eq!(values(&drain(&mut c).await), (0..11).collect::<Vec<_>>());
}

#[tokio::test]
async fn corrupt_last_record_is_dropped_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let seg = closed_log(dir.path(), 5).await;
    let mut bytes = fs::read(&seg).unwrap();
    let end = frames_len(5) as usize;
    bytes[end - 3] ^= 0xff;
    // Garbage after it too, as a disk might leave.
    bytes.truncate(end);
    bytes.extend_from_slice(&[0xab; 37]);
    fs::write(&seg, &bytes).unwrap();

    let log = EmbeddedLog::open(dir.path(), Default::default()).unwrap();
    assert_eq!(log.end_offset("t").unwrap(), 4);
    assert_eq!(log.recoveries()[0].reason, Some("checksum mismatch"));
    log.append("t", vec![rec(99)]).await.unwrap();
    let mut c = log.consumer("t", "g", StartFrom::Earliest).await.unwrap();
    assert_eq!(values(&drain(&mut c).await), [0, 1, 2, 3, 99]);
    drop(c);
    drop(log);
    // What was cleared stays cleared: the next open finds no damage.
    let log = EmbeddedLog::open(dir.path(), Default::default()).unwrap();
    assert_eq!(log.end_offset("t").unwrap(), 5);
    assert_eq!(log.recoveries()[0].truncated_bytes, 0);
}

#[tokio::test]
async fn a_second_process_cannot_open_the_same_log() {
    let dir = tempfile::tempdir().unwrap();
    let _first = EmbeddedLog::open(dir.path(), Default::default()).unwrap();
    let second = EmbeddedLog::open(dir.path(), Default::default());
    assert!(matches!(second, Err(OpenError::Log(Error::Unavailable(_)))));
}

#[tokio::test]
async fn a_consumer_resumes_deep_in_one_segment_at_the_committed_record() {
    let dir = tempfile::tempdir().unwrap();
    // Records of varied sizes, over 1 MiB in one segment: skipping to the position crosses
    // the reader's buffer several times, and each skip lands inside it at a different place.
    let sized = |i: u64| LogRecord {
        value: vec![b'a' + (i % 26) as u8; 40 + (i as usize * 37) % 400],
        ..rec(i)
    };
    let log = EmbeddedLog::open(dir.path(), Default::default()).unwrap();
    log.append("t", (0..6000).map(sized).collect())
        .await
        .unwrap();
    let mut c = log.consumer("t", "g", StartFrom::Earliest).await.unwrap();
    assert_eq!(c.poll(4321, Duration::ZERO).await.unwrap().len(), 4321);
    c.commit().await.unwrap();
    drop(c);
    assert_eq!(segments(&dir.path().join("t")).len(), 1);
    let mut c = log.consumer("t", "g", StartFrom::Earliest).await.unwrap();
    let rest = drain(&mut c).await;
    assert_eq!(values(&rest), (4321..6000).collect::<Vec<_>>());
    for r in &rest {
        assert_eq!(r.record, sized(r.position.offset as u64));
    }
}

#[tokio::test]
async fn a_record_too_large_for_a_frame_is_refused_and_the_log_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = EmbeddedLog::open(dir.path(), small_segments()).unwrap();
        log.append("t", vec![rec(1)]).await.unwrap();
        let mut huge = rec(2);
        huge.headers.push(("h".repeat(70_000), Vec::new()));
        let refused = log.append("t", vec![rec(3), huge]).await;
        assert!(
            matches!(&refused, Err(Error::Internal(m)) if m.contains("header name")),
            "{refused:?}"
        );
        log.append("t", vec![rec(4)]).await.unwrap();
    }
    // Nothing of the refused append was written: the log opens and reads the rest.
    let log = EmbeddedLog::open(dir.path(), small_segments()).unwrap();
    let mut c = log.consumer("t", "g", StartFrom::Earliest).await.unwrap();
    assert_eq!(values(&drain(&mut c).await), vec![1, 4]);
}

/// An offset file that does not hold a number is moved aside; the group reads from its start
/// (stores keep the first write of an id, so reading stored records again is harmless) instead
/// of failing every poll.
#[tokio::test]
async fn a_garbage_offset_file_is_moved_aside_and_the_group_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), small_segments()).unwrap();
    log.append("t", (0..50).map(rec).collect()).await.unwrap();
    let offset = dir.path().join("t/groups/g.offset");
    fs::write(&offset, b"12\xff garbage").unwrap();
    assert_eq!(log.committed("t", "g").unwrap(), None);
    assert!(!offset.exists());
    assert_eq!(
        fs::read(dir.path().join("t/groups/g.offset.bad")).unwrap(),
        b"12\xff garbage"
    );
    fs::write(&offset, b"not a number").unwrap();
    let mut c = log.consumer("t", "g", StartFrom::Earliest).await.unwrap();
    assert_eq!(values(&drain(&mut c).await), (0..50).collect::<Vec<_>>());
    c.commit().await.unwrap();
    assert_eq!(log.committed("t", "g").unwrap(), Some(50));
}

/// A reader at an offset reads from there and moves no group.
#[tokio::test]
async fn a_reader_at_an_offset_belongs_to_no_group() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), small_segments()).unwrap();
    log.append("t", (0..300).map(rec).collect()).await.unwrap();
    let mut r = log.reader_at("t", 250).unwrap();
    assert_eq!(values(&drain(&mut r).await), (250..300).collect::<Vec<_>>());
    assert_eq!(log.committed("t", "g").unwrap(), None);
    assert_eq!(log.earliest_offset("t").unwrap(), 0);
}

/// Closed segments below a position go; the active one and everything at or above the position
/// stay, across a reopen too; a group committed below the new start reads from it.
#[tokio::test]
async fn segments_below_a_position_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), small_segments()).unwrap();
    append_300_in_tens(&log).await;
    let bases = segment_bases(&dir.path().join("t")).unwrap();
    assert!(bases.len() > 3, "{bases:?}");
    let mut behind = log.consumer("t", "g", StartFrom::Earliest).await.unwrap();
    assert_eq!(behind.poll(5, Duration::ZERO).await.unwrap().len(), 5);
    behind.commit().await.unwrap();
    assert_eq!(log.delete_segments_below("t", bases[1] - 1).unwrap(), 0);
    let freed = log.delete_segments_below("t", bases[2] + 1).unwrap();
    assert!(freed > 0);
    assert_eq!(log.earliest_offset("t").unwrap(), bases[2]);
    assert_eq!(
        segment_bases(&dir.path().join("t")).unwrap(),
        bases[2..].to_vec()
    );
    // Never the active segment, whatever the position.
    log.delete_segments_below("t", u64::MAX).unwrap();
    assert_eq!(
        segment_bases(&dir.path().join("t")).unwrap(),
        vec![*bases.last().unwrap()]
    );
    drop(behind);
    drop(log);
    let log = EmbeddedLog::open(dir.path(), small_segments()).unwrap();
    let last = *bases.last().unwrap();
    assert_eq!(log.earliest_offset("t").unwrap(), last);
    let mut c = log.consumer("t", "g", StartFrom::Earliest).await.unwrap();
    assert_eq!(
        values(&drain(&mut c).await),
        (last..300).collect::<Vec<_>>()
    );
}

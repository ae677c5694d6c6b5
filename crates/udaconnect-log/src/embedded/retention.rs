//! Retention by age: whole closed segments whose records were all written before a cut are
//! deleted, as `serve --retention` asks.

use std::fs::File;

use udaconnect_core::{Error, Result};

use super::{check, io_err, segment_path, EmbeddedLog};

/// What deleting old segments removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Records of the segments deleted (offsets, including any a repair left unused).
    pub records: u64,
    pub bytes: u64,
}

impl EmbeddedLog {
    /// Deletes the closed segments of `topic`, oldest first, whose last record was written
    /// before `cut_ms` (milliseconds since the epoch) and that hold only records below
    /// `below` (a position every reader that matters has passed). Stops at the first segment
    /// that is too new, not yet passed, or whose last record does not read: the active
    /// segment is never deleted, and nothing not yet read by the reader `below` stands for.
    ///
    /// A segment's last record stands for its newest: one writer appends in its clock's
    /// order, so a record is at most as new as the segment's last.
    pub fn delete_segments_written_before(
        &self,
        topic: &str,
        cut_ms: i64,
        below: u64,
    ) -> Result<Deleted> {
        let handle = self.topic(topic)?;
        let bases: Vec<u64> = handle
            .segments
            .read()
            .map_err(|_| Error::Internal("embedded log: poisoned".into()))?
            .clone();
        let mut upto = None;
        for w in bases.windows(2) {
            let (base, next_base) = (w[0], w[1]);
            if next_base > below
                || !written_before(&segment_path(&handle.dir, base), base..next_base, cut_ms)?
            {
                break;
            }
            upto = Some(next_base);
        }
        let (Some(upto), Some(&first)) = (upto, bases.first()) else {
            return Ok(Deleted::default());
        };
        let bytes = self.delete_segments_below(topic, upto)?;
        Ok(Deleted {
            records: upto - first,
            bytes,
        })
    }
}

/// Whether the last record of the segment at `path` (offsets `offsets`) was written before
/// `cut_ms`; false when it does not read.
fn written_before(
    path: &std::path::Path,
    offsets: std::ops::Range<u64>,
    cut_ms: i64,
) -> Result<bool> {
    let read = || -> std::io::Result<bool> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(check::last_record(&file, len, &offsets)?.is_some_and(|r| r.timestamp_ms < cut_ms))
    };
    read().map_err(|e| io_err("read a segment's last record", e))
}

#[cfg(test)]
mod tests {
    use udaconnect_core::ports::{Log, StartFrom};
    use udaconnect_core::record::LogRecord;

    use super::*;
    use crate::EmbeddedLogOptions;

    fn record(i: u64, timestamp_ms: i64) -> LogRecord {
        LogRecord {
            key: None,
            value: format!("record {i} with some bytes to fill a segment").into_bytes(),
            headers: Vec::new(),
            timestamp_ms,
        }
    }

    /// Segments go oldest first once their last record is older than the cut and a reader
    /// has passed them; the active one stays whatever its age, and the reader below reads
    /// on from the first record kept.
    #[tokio::test]
    async fn old_segments_go_once_passed_and_the_active_one_stays() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(
            dir.path(),
            EmbeddedLogOptions {
                segment_bytes: 1000,
                ..EmbeddedLogOptions::default()
            },
        )
        .unwrap();
        // Ten records a segment or so; written at 1 s per record.
        for i in 0..100u64 {
            log.append("t", vec![record(i, i as i64 * 1000)])
                .await
                .unwrap();
        }
        let files = || {
            super::super::segment_files(&dir.path().join("t"))
                .unwrap()
                .len()
        };
        let before = files();
        assert!(before >= 5, "{before} segments");
        let end = log.end_offset("t").unwrap();

        // Nothing passed: nothing goes, however old.
        assert_eq!(
            log.delete_segments_written_before("t", i64::MAX, 0)
                .unwrap(),
            Deleted::default()
        );
        // Nothing old enough: nothing goes.
        assert_eq!(
            log.delete_segments_written_before("t", 0, end).unwrap(),
            Deleted::default()
        );
        assert_eq!(files(), before);

        // Written before 45 s and passed: the segments ending at or below record 44 go.
        let gone = log
            .delete_segments_written_before("t", 45_000, end)
            .unwrap();
        let earliest = log.earliest_offset("t").unwrap();
        assert_eq!(gone.records, earliest);
        assert!(
            gone.bytes > 0 && (30..=45).contains(&earliest),
            "{gone:?}, from {earliest}"
        );
        let mut reader = log.consumer("t", "g", StartFrom::Earliest).await.unwrap();
        let first = reader
            .poll(1, std::time::Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(first[0].position.offset, earliest as i64);
        assert!(first[0].record.timestamp_ms >= 30_000);

        // A reader at 60 holds what it has not read, however old.
        let gone = log
            .delete_segments_written_before("t", i64::MAX, 60)
            .unwrap();
        let earliest = log.earliest_offset("t").unwrap();
        assert!(earliest <= 60 && earliest > 45, "{gone:?}, from {earliest}");

        // Everything old and passed: the active segment stays.
        log.delete_segments_written_before("t", i64::MAX, end)
            .unwrap();
        assert_eq!(files(), 1);
        assert!(log.earliest_offset("t").unwrap() < end);
        log.append("t", vec![record(100, 100_000)]).await.unwrap();
        assert_eq!(log.end_offset("t").unwrap(), end + 1);
    }
}

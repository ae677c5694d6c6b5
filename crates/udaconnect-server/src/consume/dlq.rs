//! Dead letters an operator can act on: listing what `location.dlq` holds, re-driving records
//! to `location` once their cause is fixed (a person created later, say), and the depth metric.
//!
//! Re-driving is idempotent through ids, with no bookkeeping of its own: every re-driven record
//! carries the id it had (UdaConnect's records carry it in their value; a keyless record of an
//! original producer gets the id derived from its first position written into its value), and
//! the stores keep the first write of an id. Re-driving twice appends twice and stores once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::watch;
use udaconnect_core::envelope::Read;
use udaconnect_core::ports::{read_to_end, DynLocationStore, DynLog, DynLogConsumer, StartFrom};
use udaconnect_core::record::{
    self, LogRecord, Position, DLQ_REASON_HEADER, LOCATION_DLQ_TOPIC, LOCATION_TOPIC,
};
use udaconnect_core::time::{format_utc, parse_timestamp};
use udaconnect_core::Result;

use crate::keys::{Keyring, ReadingKeys};
use crate::metrics::Metrics;

/// Header: the partition of `location` a dead-lettered record was read from.
pub const SOURCE_PARTITION_HEADER: &str = "dlq_source_partition";
/// Header: its offset there.
pub const SOURCE_OFFSET_HEADER: &str = "dlq_source_offset";
/// Header: when it was dead-lettered (RFC 3339, UTC).
pub const TIME_HEADER: &str = "dlq_time";
/// Header on a re-driven record: the `location.dlq` position it came from.
pub const REDRIVEN_FROM_HEADER: &str = "dlq_redriven_from";

/// Records read per poll of the dead-letter topic.
const BATCH: usize = 1000;
/// How often the depth watcher asks the store which dead letters are stored by now.
const DEPTH_EVERY: Duration = Duration::from_secs(10);

/// One record of `location.dlq`, read back.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Where it sits on `location.dlq`.
    pub position: Position,
    /// Where it was read from on `location`, when the header says.
    pub source: Option<Position>,
    pub reason: String,
    /// When it was dead-lettered; for records written before that was noted, the record's own
    /// timestamp.
    pub time: Option<DateTime<Utc>>,
    /// The record as the producer wrote it, the dead-letter headers taken off.
    pub record: LogRecord,
}

impl DeadLetter {
    fn read(position: Position, mut r: LogRecord) -> DeadLetter {
        let header = |name: &str| r.header_str(name).map(str::to_string);
        let source = match (
            header(SOURCE_PARTITION_HEADER).and_then(|p| p.parse().ok()),
            header(SOURCE_OFFSET_HEADER).and_then(|o| o.parse().ok()),
        ) {
            (Some(partition), Some(offset)) => Some(Position { partition, offset }),
            _ => None,
        };
        let reason = header(DLQ_REASON_HEADER).unwrap_or_default();
        let time = header(TIME_HEADER)
            .and_then(|t| parse_timestamp(&t).ok())
            .or_else(|| DateTime::from_timestamp_millis(r.timestamp_ms));
        r.headers.retain(|(name, _)| !is_dead_letter_header(name));
        DeadLetter {
            position,
            source,
            reason,
            time,
            record: r,
        }
    }

    /// The location id the record is stored under once it can be: `None` when it cannot be
    /// read as a ping at all (a sealed one among them: see [`Self::location_id_with`]).
    pub fn location_id(&self) -> Option<i64> {
        self.location_id_with(&ReadingKeys::default())
    }

    /// [`Self::location_id`], opening a sealed record with `keys`: `None` also when its person
    /// was erased.
    pub fn location_id_with(&self, keys: &ReadingKeys) -> Option<i64> {
        let at = self.source.unwrap_or(self.position);
        match keys.read(&self.record, at, LOCATION_TOPIC) {
            Ok(Read::Location(d)) => Some(d.location.id),
            _ => None,
        }
    }

    /// One JSON object: for `dlq list --format json`.
    pub fn to_json(&self) -> Value {
        let value = match serde_json::from_slice::<Value>(&self.record.value) {
            Ok(v) => v,
            Err(_) => Value::String(String::from_utf8_lossy(&self.record.value).into_owned()),
        };
        serde_json::json!({
            "partition": self.position.partition,
            "offset": self.position.offset,
            "source_partition": self.source.map(|s| s.partition),
            "source_offset": self.source.map(|s| s.offset),
            "time": self.time.map(format_utc),
            "reason": self.reason,
            "key": self.record.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
            "value": value,
        })
    }

    /// The record to append to `location` again: the producer's record with the id it had,
    /// and where it came from.
    pub fn redriven(&self) -> LogRecord {
        let mut r = self.record.clone();
        if r.key.is_none() {
            if let (Some(source), Ok(Value::Object(mut obj))) =
                (self.source, serde_json::from_slice::<Value>(&r.value))
            {
                // A keyless record's id comes from its position, which a new append changes:
                // written into the value, the one it had stays its id.
                if !obj.contains_key("id") {
                    obj.insert("id".into(), record::derived_id(source).into());
                    r.value = serde_json::to_vec(&obj).unwrap_or(r.value);
                }
            }
        }
        r.headers.push((
            REDRIVEN_FROM_HEADER.to_string(),
            format!("{}:{}", self.position.partition, self.position.offset).into_bytes(),
        ));
        r
    }
}

fn is_dead_letter_header(name: &str) -> bool {
    matches!(
        name,
        DLQ_REASON_HEADER
            | SOURCE_PARTITION_HEADER
            | SOURCE_OFFSET_HEADER
            | TIME_HEADER
            | REDRIVEN_FROM_HEADER
    )
}

/// The headers a dead letter gets: why, where from, when.
pub fn dead_letter_headers(
    reason: &str,
    source: Position,
    now: DateTime<Utc>,
) -> [(String, Vec<u8>); 4] {
    [
        (DLQ_REASON_HEADER.to_string(), reason.as_bytes().to_vec()),
        (
            SOURCE_PARTITION_HEADER.to_string(),
            source.partition.to_string().into_bytes(),
        ),
        (
            SOURCE_OFFSET_HEADER.to_string(),
            source.offset.to_string().into_bytes(),
        ),
        (TIME_HEADER.to_string(), format_utc(now).into_bytes()),
    ]
}

/// A reader of the whole dead-letter topic under a group of its own that never commits, so
/// it neither moves nor is moved by any other reader.
async fn reader(log: &DynLog) -> Result<DynLogConsumer> {
    let group = format!("udaconnect-dlq-{}", uuid::Uuid::new_v4());
    log.consumer(LOCATION_DLQ_TOPIC, &group, StartFrom::Earliest)
        .await
}

/// Every dead letter from the first, `keep` deciding which to keep, up to `limit` kept.
pub async fn read(
    log: &DynLog,
    limit: usize,
    mut keep: impl FnMut(&DeadLetter) -> bool,
) -> Result<Vec<DeadLetter>> {
    let mut consumer = reader(log).await?;
    let mut out = Vec::new();
    let mut silent_since = Instant::now();
    while out.len() < limit {
        let batch = consumer.poll(BATCH, Duration::from_millis(500)).await?;
        if batch.is_empty() {
            if read_to_end(consumer.lag(), silent_since.elapsed()) {
                break;
            }
            continue;
        }
        silent_since = Instant::now();
        for c in batch {
            let d = DeadLetter::read(c.position, c.record);
            if keep(&d) {
                out.push(d);
                if out.len() >= limit {
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// Which dead letters a redrive takes.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Text the reason contains.
    pub reason: Option<String>,
    /// Dead-lettered at or after.
    pub since: Option<DateTime<Utc>>,
}

impl Filter {
    pub fn matches(&self, d: &DeadLetter) -> bool {
        self.reason
            .as_ref()
            .is_none_or(|p| d.reason.contains(p.as_str()))
            && self.since.is_none_or(|s| d.time.is_some_and(|t| t >= s))
    }
}

/// What a redrive did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Redriven {
    /// Dead letters the filter took, each appended to `location` again.
    pub appended: u64,
    /// Dead letters left where they are.
    pub skipped: u64,
}

/// Appends every dead letter `filter` takes to `location` again, as [`DeadLetter::redriven`]
/// makes it; the consumer then stores it, or dead-letters it again with the reason.
pub async fn redrive(log: &DynLog, filter: &Filter) -> Result<Redriven> {
    let mut report = Redriven::default();
    let chosen = read(log, usize::MAX, |d| {
        let take = filter.matches(d);
        if !take {
            report.skipped += 1;
        }
        take
    })
    .await?;
    for chunk in chosen.chunks(BATCH) {
        log.append(
            LOCATION_TOPIC,
            chunk.iter().map(DeadLetter::redriven).collect(),
        )
        .await?;
        report.appended += chunk.len() as u64;
    }
    Ok(report)
}

/// Follows `location.dlq` and keeps `udaconnect_dlq_depth_records`: the dead letters whose
/// location is not stored, because it could not be (yet), or cannot be read at all. A
/// redriven record, once stored, leaves the count. Runs until `shutdown`.
pub async fn watch_depth(
    log: DynLog,
    store: DynLocationStore,
    keys: Arc<Keyring>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut attempt = 0;
    let mut consumer = loop {
        match reader(&log).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the dead-letter topic yet; retrying");
                attempt += 1;
                tokio::select! {
                    _ = tokio::time::sleep(udaconnect_core::ports::retry_delay(attempt)) => {}
                    _ = shutdown.wait_for(|s| *s) => return,
                }
            }
        }
    };
    let mut waiting: HashSet<i64> = HashSet::new();
    let mut unreadable = 0u64;
    let mut checked_at: Option<Instant> = None;
    loop {
        let polled = tokio::select! {
            b = consumer.poll(BATCH, Duration::from_secs(1)) => b,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        match polled {
            Ok(batch) => {
                // Without the key store's answer, a sealed letter counts as unreadable.
                let known = keys
                    .for_reading(LOCATION_TOPIC, &batch)
                    .await
                    .unwrap_or_default();
                for c in batch {
                    match DeadLetter::read(c.position, c.record).location_id_with(&known) {
                        Some(id) => {
                            waiting.insert(id);
                        }
                        None => unreadable += 1,
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "reading the dead-letter topic failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        if checked_at.is_none_or(|t| t.elapsed() >= DEPTH_EVERY) {
            let mut stored = Vec::new();
            for id in &waiting {
                if let Ok(Some(_)) = store.get(*id).await {
                    stored.push(*id);
                }
            }
            for id in stored {
                waiting.remove(&id);
            }
            checked_at = Some(Instant::now());
        }
        metrics.dlq_depth.set(waiting.len() as u64 + unreadable);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead(value: &str, key: Option<&str>) -> DeadLetter {
        let mut r = LogRecord {
            key: key.map(|k| k.as_bytes().to_vec()),
            value: value.as_bytes().to_vec(),
            headers: vec![("correlation_id".into(), b"abc".to_vec())],
            timestamp_ms: 1_594_117_026_000,
        };
        let source = Position {
            partition: 2,
            offset: 41,
        };
        let now = parse_timestamp("2026-01-02T03:04:05Z").unwrap();
        r.headers.extend(dead_letter_headers(
            "person_id: no person with id 7",
            source,
            now,
        ));
        DeadLetter::read(
            Position {
                partition: 0,
                offset: 9,
            },
            r,
        )
    }

    #[test]
    fn a_dead_letter_reads_back_with_its_reason_source_and_time() {
        let d = dead(r#"{"person_id": 7, "latitude": 1, "longitude": 2}"#, None);
        assert_eq!(d.reason, "person_id: no person with id 7");
        assert_eq!(
            d.source,
            Some(Position {
                partition: 2,
                offset: 41
            })
        );
        assert_eq!(
            d.time.map(format_utc).as_deref(),
            Some("2026-01-02T03:04:05Z")
        );
        // The producer's headers stay; the dead-letter ones are taken off.
        assert_eq!(
            d.record.headers,
            vec![("correlation_id".into(), b"abc".to_vec())]
        );
        let json = d.to_json();
        assert_eq!(json["value"]["person_id"], 7);
        assert_eq!(json["source_offset"], 41);
    }

    /// A re-driven keyless record keeps the id its first position gave it, wherever it is
    /// appended; UdaConnect's own records carry theirs already and are left as they are.
    #[test]
    fn a_redriven_record_keeps_its_id() {
        let legacy = dead(r#"{"person_id": 7, "latitude": 1, "longitude": 2}"#, None);
        let first = legacy.location_id().unwrap();
        assert_eq!(
            first,
            record::derived_id(Position {
                partition: 2,
                offset: 41
            })
        );
        let again = legacy.redriven();
        assert_eq!(again.header_str(REDRIVEN_FROM_HEADER), Some("0:9"));
        let elsewhere = Position {
            partition: 1,
            offset: 5000,
        };
        assert_eq!(record::decode(&again, elsewhere).unwrap().id, first);
        assert_eq!(again.timestamp_ms, legacy.record.timestamp_ms);

        let own = r#"{"id": 12, "person_id": 7, "latitude": 1, "longitude": 2}"#;
        let own = dead(own, Some("7"));
        assert_eq!(own.redriven().value, own.record.value);
        assert_eq!(record::decode(&own.redriven(), elsewhere).unwrap().id, 12);

        // What cannot be read goes back as it came, and has no id.
        let garbage = dead("\u{1}not json", None);
        assert_eq!(garbage.location_id(), None);
        assert_eq!(garbage.redriven().value, garbage.record.value);
    }

    #[test]
    fn filters_take_reasons_by_text_and_times_from_a_moment() {
        let d = dead(r#"{"person_id": 7, "latitude": 1, "longitude": 2}"#, None);
        let at = |t: &str| Some(parse_timestamp(t).unwrap());
        for (reason, since, takes) in [
            (None, None, true),
            (Some("no person"), None, true),
            (Some("latitude"), None, false),
            (None, at("2026-01-02T03:04:05Z"), true),
            (None, at("2026-01-02T03:04:06Z"), false),
            (Some("no person"), at("2026-01-01T00:00:00Z"), true),
        ] {
            let f = Filter {
                reason: reason.map(str::to_string),
                since,
            };
            assert_eq!(f.matches(&d), takes, "{f:?}");
        }
    }
}

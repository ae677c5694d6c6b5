//! Retention by age (`--retention DURATION`): a job that removes the pings older than now
//! minus the duration from what this process holds: the location store (in bounded batches,
//! so ingest's inserts never wait long), the contact index (and so the live views, which
//! read it), and `serve`'s embedded log (whole closed segments). On Kafka the broker deletes
//! old records itself: location-consumer sets the topics' `retention.ms` at start.
//!
//! The job runs soon after start and then every `--retention-every`; its clock is a port, so
//! a test decides what time it is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;
use udaconnect_core::clock::{DynClock, SystemClock};
use udaconnect_core::ports::DynLocationStore;
use udaconnect_core::record::{LOCATION_DLQ_TOPIC, LOCATION_TOPIC};
use udaconnect_core::time::to_micros;
use udaconnect_core::{Error, Result};
use udaconnect_log::EmbeddedLog;

use crate::consume::consumer::CONSUMER_GROUP;
use crate::metrics::Metrics;
use crate::query::engine::SharedIndex;

/// Pings removed from the store per statement: a statement's locks last milliseconds.
pub const STORE_BATCH: usize = 10_000;
/// The pause between two statements, leaving the store to ingest.
const STORE_PAUSE: Duration = Duration::from_millis(20);
/// The first run comes this soon after start at most.
const FIRST_RUN: Duration = Duration::from_secs(60);
/// The shortest retention the flag takes: a number without its unit, or a slip of a digit,
/// must not empty the store.
const SHORTEST: Duration = Duration::from_secs(3600);

/// How long pings are kept, and how often the job looks.
#[derive(Clone)]
pub struct RetentionSettings {
    /// Pings older than this are removed; `None` (the default): kept for ever.
    pub keep: Option<Duration>,
    /// How often the job runs, after a first run soon after start.
    pub every: Duration,
    /// Now: the machine's clock, or a test's.
    pub clock: DynClock,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            keep: None,
            every: Duration::from_secs(3600),
            clock: Arc::new(SystemClock),
        }
    }
}

impl std::fmt::Debug for RetentionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetentionSettings")
            .field("keep", &self.keep)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

/// `30d`, `72h`, `90m`, `3600s`, `2w`, or `keep` / `off` (`None`: kept for ever). At least
/// an hour.
pub fn parse_retention(s: &str) -> std::result::Result<Option<Duration>, String> {
    let s = s.trim();
    if matches!(s, "keep" | "off") {
        return Ok(None);
    }
    let keep = parse_duration(s)?;
    if keep < SHORTEST {
        return Err(format!(
            "'{s}' is shorter than an hour, the shortest retention"
        ));
    }
    Ok(Some(keep))
}

/// A duration as a whole number and a unit: `s`, `m`, `h`, `d` or `w`.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let unit_at = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(unit_at);
    let seconds: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "'{s}' is not a duration: a number and s, m, h, d or w"
            ))
        }
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .and_then(|n| n.checked_mul(seconds))
        .filter(|n| *n <= 100 * 365 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("'{s}' is not a duration from 1 to 100 years' worth"))
}

/// What one run removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Pings with a time before this were removed.
    pub cut: DateTime<Utc>,
    pub store: u64,
    pub index: u64,
    /// Records and bytes of deleted embedded-log segments.
    pub log_records: u64,
    pub log_bytes: u64,
}

/// The job, over what this process holds.
pub struct Retention {
    keep: TimeDelta,
    clock: DynClock,
    metrics: Arc<Metrics>,
    /// The location store, when this process writes it (location-consumer, `serve`).
    pub store: Option<DynLocationStore>,
    /// The contact index, when this process keeps one (connection-api).
    pub index: Option<SharedIndex>,
    /// `serve`'s embedded log.
    pub log: Option<Arc<EmbeddedLog>>,
}

impl Retention {
    /// A job over nothing yet, or `None` when pings are kept for ever.
    pub fn new(settings: &RetentionSettings, metrics: Arc<Metrics>) -> Option<Retention> {
        let keep = TimeDelta::from_std(settings.keep?).unwrap_or(TimeDelta::MAX);
        Some(Retention {
            keep,
            clock: settings.clock.clone(),
            metrics,
            store: None,
            index: None,
            log: None,
        })
    }

    /// Removes everything older than now minus the retention, once.
    pub async fn run_once(&self) -> Result<Pass> {
        let cut = self
            .clock
            .now()
            .checked_sub_signed(self.keep)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let mut pass = Pass {
            cut,
            store: 0,
            index: 0,
            log_records: 0,
            log_bytes: 0,
        };
        let removed = |from: &str, n: u64| {
            self.metrics
                .retention_removed
                .get_or_create(&vec![("from", from.to_string())])
                .inc_by(n);
        };
        if let Some(store) = &self.store {
            loop {
                let n = store.delete_before(to_micros(cut), STORE_BATCH).await?;
                pass.store += n;
                removed("store", n);
                if n < STORE_BATCH as u64 {
                    break;
                }
                tokio::time::sleep(STORE_PAUSE).await;
            }
        }
        if let Some(index) = self.index.clone() {
            pass.index = blocking(move || Ok(drop_before(&index, to_micros(cut)))).await?;
            removed("index", pass.index);
        }
        if let Some(log) = self.log.clone() {
            let cut_ms = cut.timestamp_millis();
            let deleted = blocking(move || {
                // Never past what location-consumer has stored: a segment it has not read
                // may hold an erasure, and its pings would never reach the store to be
                // counted and removed there. The dead letters have no such reader.
                let stored = log.committed(LOCATION_TOPIC, CONSUMER_GROUP)?.unwrap_or(0);
                let pings = log.delete_segments_written_before(LOCATION_TOPIC, cut_ms, stored)?;
                let dlq_end = log.end_offset(LOCATION_DLQ_TOPIC)?;
                let dead =
                    log.delete_segments_written_before(LOCATION_DLQ_TOPIC, cut_ms, dlq_end)?;
                Ok((pings.records + dead.records, pings.bytes + dead.bytes))
            })
            .await?;
            (pass.log_records, pass.log_bytes) = deleted;
            removed("log", pass.log_records);
        }
        Ok(pass)
    }

    /// Runs the job soon after start and then every `every`, until `stop` turns true; a
    /// run under way is given up at the stop (each statement it made is whole).
    pub async fn run(self, every: Duration, mut stop: watch::Receiver<bool>) {
        let mut wait = every.min(FIRST_RUN);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            wait = every;
            let started = Instant::now();
            let pass = tokio::select! {
                pass = self.run_once() => pass,
                _ = stop.wait_for(|s| *s) => return,
            };
            match pass {
                Ok(p) => tracing::info!(
                    cut = %udaconnect_core::time::format_utc(p.cut),
                    store = p.store,
                    index = p.index,
                    log_records = p.log_records,
                    log_bytes = p.log_bytes,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "retention pass"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "retention pass failed; trying again next time")
                }
            }
        }
    }
}

/// Rebuilds `index` without the pings before `cut`, if it holds any: how many went. Under
/// the write lock, as an erasure's rebuild is, so no batch fed meanwhile is lost.
fn drop_before(index: &SharedIndex, cut: i64) -> u64 {
    let mut current = index.write().unwrap_or_else(|e| e.into_inner());
    let Some(without) = current.without_before(cut) else {
        return 0;
    };
    let removed = (current.len() - without.len()) as u64;
    *current = without;
    removed
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
}

/// Sets `retention.ms` of the ping-bearing topics (`location`, `location.dlq`) on the Kafka
/// cluster of `url`, retrying until a broker answers or `stop` turns true. A refusal (a
/// broker without the request, a missing right) is logged, never fatal: the store's
/// retention works all the same, and the operator can set the topics by hand.
#[cfg(feature = "kafka")]
pub async fn set_kafka_retention(
    url: crate::wiring::backends::KafkaUrl,
    keep: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let options = udaconnect_log::KafkaOptions {
        client_config: url.exposed_config(),
        create_topics: Vec::new(),
        ..udaconnect_log::KafkaOptions::default()
    };
    let log = match udaconnect_log::KafkaLog::connect(&url.brokers, options) {
        Ok(log) => log,
        Err(e) => {
            tracing::warn!(error = %e, "retention not set on the Kafka topics");
            return;
        }
    };
    for attempt in 0u32.. {
        match log
            .set_retention(&[LOCATION_TOPIC, LOCATION_DLQ_TOPIC], keep)
            .await
        {
            Ok(set) => {
                for s in set {
                    match s.outcome {
                        Ok(()) => {
                            tracing::info!(topic = %s.topic, retention_ms = keep.as_millis() as u64, "kafka topic retention set")
                        }
                        Err(why) => {
                            tracing::warn!(topic = %s.topic, error = %why, "the broker refused the topic's retention; set retention.ms by hand")
                        }
                    }
                }
                return;
            }
            Err(e) => tracing::debug!(error = %e, "kafka retention not set yet; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(udaconnect_core::ports::retry_delay(attempt)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retentions_read_as_a_number_and_a_unit_of_an_hour_or_more() {
        assert_eq!(parse_retention("keep"), Ok(None));
        assert_eq!(parse_retention(" off "), Ok(None));
        assert_eq!(
            parse_retention("30d"),
            Ok(Some(Duration::from_secs(30 * 86_400)))
        );
        assert_eq!(
            parse_retention("72h"),
            Ok(Some(Duration::from_secs(72 * 3600)))
        );
        assert_eq!(
            parse_retention("2w"),
            Ok(Some(Duration::from_secs(14 * 86_400)))
        );
        assert_eq!(parse_retention("60m"), Ok(Some(Duration::from_secs(3600))));
        for bad in [
            "30",
            "59m",
            "0d",
            "",
            "d",
            "1.5d",
            "-1d",
            "30 days",
            "99999999999999w",
        ] {
            assert!(parse_retention(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
    }
}

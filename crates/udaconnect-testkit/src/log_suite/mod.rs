//! The conformance suite of the [`udaconnect_core::ports::Log`] port: the embedded log,
//! Kafka and the next engine pass the same test bodies.
//!
//! An engine implements [`LogEngine`] in its crate's tests and adds one line:
//!
//! ```ignore
//! udaconnect_testkit::log_suite!(embedded, Embedded);
//! ```
//!
//! which generates module `embedded` with one `#[tokio::test]` per body listed in the macro.
//! The calling crate needs `tokio` (with `macros` and `rt-multi-thread`) among its
//! dependencies.
//!
//! Bodies allow for a distributed log: a consumer group forms in its own time, so reads wait
//! up to [`PATIENCE`] for what must come; each body uses topics and groups of its own
//! ([`crate::unique`]), so bodies share one broker. Behaviour only one engine has (torn tails,
//! a broker that restarts) is tested beside it.

mod appends;
mod consumers;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use udaconnect_core::ports::{Consumed, DynLog, DynLogConsumer, Log, LogConsumer, StartFrom};
use udaconnect_core::record::LogRecord;

pub use appends::{
    appended_records_come_back_in_order_per_key_with_everything_intact,
    concurrent_appends_are_each_stored_once, ping_answers,
};
pub use consumers::{
    a_consumer_waits_for_new_records, a_group_starting_at_latest_skips_what_was_there,
    a_new_consumer_of_the_group_resumes_after_the_commit,
    a_scan_reads_past_the_commit_and_moves_nothing, lag_counts_records_not_yet_returned,
    records_not_committed_are_delivered_again,
};

/// One log engine as the suite opens it.
#[async_trait]
pub trait LogEngine: Send + Sync + Sized + 'static {
    /// Partitions of a topic the log creates; keyed records spread over them.
    const PARTITIONS: usize;

    /// A log to test: empty, or shared with other tests that use other topics.
    async fn open() -> Self;
    fn log(&self) -> DynLog;
}

/// Generates module `$engine` with one `#[tokio::test]` per body of the log suite, each on a
/// log of engine type `$log` (a [`LogEngine`]).
#[macro_export]
macro_rules! log_suite {
    ($engine:ident, $log:ty) => {
        $crate::conformance_tests!(
            log_suite,
            $engine,
            $log,
            [
                appended_records_come_back_in_order_per_key_with_everything_intact,
                concurrent_appends_are_each_stored_once,
                a_new_consumer_of_the_group_resumes_after_the_commit,
                records_not_committed_are_delivered_again,
                a_group_starting_at_latest_skips_what_was_there,
                lag_counts_records_not_yet_returned,
                a_consumer_waits_for_new_records,
                a_scan_reads_past_the_commit_and_moves_nothing,
                ping_answers,
            ]
        );
    };
}

/// Opens the engine with a topic no other body uses, named after `topic`: the engine (kept
/// while the body runs, as it may own what its log lives in), its log and the topic.
pub async fn open_with_topic<E: LogEngine>(topic: &str) -> (E, DynLog, String) {
    let engine = E::open().await;
    let log = engine.log();
    (engine, log, crate::unique(topic))
}

/// How long a read waits for records that must come (a Kafka group forms in seconds).
pub const PATIENCE: Duration = Duration::from_secs(40);

/// A member of `group` on `topic`, starting at `start` if the group has committed nothing.
pub async fn member<L: Log + ?Sized>(
    log: &L,
    topic: &str,
    group: &str,
    start: StartFrom,
) -> DynLogConsumer {
    log.consumer(topic, group, start).await.expect("consumer")
}

/// The one member of a new group, reading `topic` from its oldest record.
pub async fn reader<L: Log + ?Sized>(log: &L, topic: &str) -> DynLogConsumer {
    member(log, topic, &crate::unique("group"), StartFrom::Earliest).await
}

/// A record without headers.
pub fn record(key: Option<&str>, value: &str, timestamp_ms: i64) -> LogRecord {
    LogRecord {
        key: key.map(|k| k.as_bytes().to_vec()),
        value: value.as_bytes().to_vec(),
        headers: Vec::new(),
        timestamp_ms,
    }
}

/// `n` records with keys `k0..`, values `<prefix>-0..` and times from `first_ms` on.
pub fn records(prefix: &str, n: usize, first_ms: i64) -> Vec<LogRecord> {
    (0..n)
        .map(|i| {
            record(
                Some(&format!("k{i}")),
                &format!("{prefix}-{i}"),
                first_ms + i as i64,
            )
        })
        .collect()
}

/// A consumed record's value, as text.
pub fn value(c: &Consumed) -> String {
    String::from_utf8_lossy(&c.record.value).into_owned()
}

/// Consumed values, sorted: for comparing what came regardless of partition order.
pub fn sorted_values<'a>(consumed: impl IntoIterator<Item = &'a Consumed>) -> Vec<String> {
    let mut values: Vec<String> = consumed.into_iter().map(value).collect();
    values.sort();
    values
}

/// Polls until `want` records came or `within` passed.
pub async fn collect(
    consumer: &mut dyn LogConsumer,
    want: usize,
    within: Duration,
) -> Vec<Consumed> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < want && Instant::now() < deadline {
        out.extend(
            consumer
                .poll(want - out.len(), Duration::from_millis(500))
                .await
                .expect("poll"),
        );
    }
    out
}

/// Polls for `for_how_long` and returns whatever came (expected: nothing).
pub async fn drain(consumer: &mut dyn LogConsumer, for_how_long: Duration) -> Vec<Consumed> {
    let deadline = Instant::now() + for_how_long;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        out.extend(
            consumer
                .poll(100, Duration::from_millis(300))
                .await
                .expect("poll"),
        );
    }
    out
}

/// Appends one record per call, so that each is a batch of its own on the broker. tansu (0.6,
/// memory engine) answers a fetch only from the first offset of a stored batch on: a group
/// resuming from a commit inside a batch would skip the rest of that batch. Bodies that resume
/// from arbitrary commits keep every offset a batch start, so they test the adapter, not that.
pub async fn append_one_by_one(log: &DynLog, topic: &str, records: Vec<LogRecord>) {
    for r in records {
        log.append(topic, vec![r]).await.expect("append");
    }
}

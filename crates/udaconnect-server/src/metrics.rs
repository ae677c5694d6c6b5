//! Prometheus metrics, each defined once here and updated where the event happens.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};

type Labels = Vec<(&'static str, String)>;

fn latency_histogram() -> Histogram {
    // 50 µs to about 26 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<Labels, Counter>,
    pub http_duration: Family<Labels, Histogram, fn() -> Histogram>,
    pub locations_accepted: Counter,
    pub log_append_duration: Histogram,
    pub consumer_records: Family<Labels, Counter>,
    pub consumer_lag: Gauge<u64, AtomicU64>,
    pub consumer_batch_duration: Histogram,
    pub consumer_partitions: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub consumer_stalled: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub dlq_depth: Gauge<u64, AtomicU64>,
    pub axes_repaired: Family<Labels, Counter>,
    pub connection_query_duration: Histogram,
    pub persons_created: Counter,
    pub grpc_requests: Family<Labels, Counter>,
    pub connections_open: Family<Labels, Gauge>,
    pub connections_closed: Family<Labels, Counter>,
    pub requests_refused: Family<Labels, Counter>,
    pub open_files_limit: Gauge,
    pub disk_free: Gauge,
    pub mail_sent: Counter,
    pub mail_failed: Family<Labels, Counter>,
    pub mail_dlq: Counter,
    pub mail_duplicates: Counter,
    pub mail_shredded: Counter,
    pub mail_forgotten: Counter,
    pub mqtt_messages: Family<Labels, Counter>,
    pub tracker_limited: Counter,
    pub retention_removed: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("udaconnect");
        let mut add = Registrar(&mut registry);
        Metrics {
            http_requests: add.metric("http_requests", "HTTP requests answered", Family::default()),
            http_duration: add.metric(
                "http_request_duration_seconds",
                "Time to answer an HTTP request",
                Family::new_with_constructor(latency_histogram),
            ),
            locations_accepted: add.metric(
                "locations_accepted",
                "Location pings durable in the log and acknowledged",
                Counter::default(),
            ),
            log_append_duration: add.metric(
                "log_append_duration_seconds",
                "Time for an append to become durable in the log",
                latency_histogram(),
            ),
            consumer_records: add.metric(
                "consumer_records",
                "Log records the location consumer handled, by outcome (stored, dlq, shredded: sealed by a destroyed key)",
                Family::default(),
            ),
            consumer_lag: add.metric(
                "consumer_lag_records",
                "Records in the location log not yet read by the consumer",
                Gauge::default(),
            ),
            consumer_batch_duration: add.metric(
                "consumer_batch_duration_seconds",
                "Time to store one consumed batch and commit its offsets",
                latency_histogram(),
            ),
            consumer_partitions: add.metric(
                "consumer_partitions_assigned",
                "Partitions of the location log the consumer holds (-1: not a partitioned log)",
                Gauge::default(),
            ),
            consumer_stalled: add.metric(
                "consumer_stalled",
                "1 while the location consumer is not ready: it holds no partitions, or stores \
                 nothing while records wait",
                Gauge::default(),
            ),
            dlq_depth: add.metric(
                "dlq_depth_records",
                "Dead-lettered records on location.dlq whose location is not stored (yet)",
                Gauge::default(),
            ),
            axes_repaired: add.metric(
                "legacy_axes_repaired",
                "Pings of the original clients whose swapped latitude and longitude were put \
                 right, by source (grpc, log)",
                Family::default(),
            ),
            connection_query_duration: add.metric(
                "connection_query_duration_seconds",
                "Server time of one connection query",
                latency_histogram(),
            ),
            persons_created: add.metric("persons_created", "Persons created", Counter::default()),
            grpc_requests: add.metric(
                "grpc_requests",
                "gRPC calls and stream messages answered, by method and status code",
                Family::default(),
            ),
            connections_open: add.metric(
                "connections_open",
                "Client connections held open, by listener (http, grpc)",
                Family::default(),
            ),
            connections_closed: add.metric(
                "connections_closed",
                "Client connections the server closed itself, by reason (idle, evicted, over_cap, silent, shutdown)",
                Family::default(),
            ),
            requests_refused: add.metric(
                "requests_refused",
                "Requests refused, by reason: before any handler ran (host, content_type, rate), or by the query limits (query_busy, query_deadline, answer_too_large)",
                Family::default(),
            ),
            open_files_limit: add.metric(
                "open_files_limit",
                "The process's file descriptor limit after start raised it",
                Gauge::default(),
            ),
            disk_free: add.metric(
                "disk_free_bytes",
                "Bytes free to the process on the file system of its data directory",
                Gauge::default(),
            ),
            mail_sent: add.metric(
                "mail_sent",
                "Mails the SMTP server accepted (or written as files without one)",
                Counter::default(),
            ),
            mail_failed: add.metric(
                "mail_failed",
                "Failed tries to send a mail, by reason (transient: tried again unless it was \
                 the last attempt; permanent: refused; invalid: an unreadable request)",
                Family::default(),
            ),
            mail_dlq: add.metric(
                "mail_dlq",
                "Mail requests dead-lettered to notification.dlq",
                Counter::default(),
            ),
            mail_duplicates: add.metric(
                "mail_duplicates_skipped",
                "Mail requests read again whose key was already sent: not sent twice",
                Counter::default(),
            ),
            mail_shredded: add.metric(
                "mail_shredded",
                "Mail requests sealed with a key since destroyed (their person was erased): \
                 skipped, not sent",
                Counter::default(),
            ),
            mail_forgotten: add.metric(
                "mail_forgotten",
                "Mails written as files to persons since erased, deleted at their erasure",
                Counter::default(),
            ),
            mqtt_messages: add.metric(
                "mqtt_messages",
                "OwnTracks MQTT messages, by outcome (stored; ignored: no ping in it; refused: \
                 never to be taken, acknowledged; limited: over its device's rate, acknowledged \
                 and dropped; retried: the log or a store could not take it yet)",
                Family::default(),
            ),
            tracker_limited: add.metric(
                "tracker_messages_limited",
                "Tracker messages over their device's rate (--device-rate-limit): 429 over \
                 HTTP, dropped over MQTT",
                Counter::default(),
            ),
            retention_removed: add.metric(
                "retention_removed",
                "Pings removed by retention (--retention), by where from (store, index, log: \
                 records of deleted segments)",
                Family::default(),
            ),
            registry,
        }
    }

    /// Counts `n` pings of `source` whose axes were repaired, and says so in the log the
    /// first time per source: an original client in use is worth knowing, once.
    pub fn axes_repaired(&self, source: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        let before = self
            .axes_repaired
            .get_or_create(&vec![("source", source.to_string())])
            .inc_by(n);
        if before == 0 {
            tracing::warn!(
                source,
                "pings with latitude and longitude swapped (an original client): repaired, and \
                 counted in udaconnect_legacy_axes_repaired"
            );
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Registers each metric where it is made, so a metric's name, help and kind stand together.
struct Registrar<'a>(&'a mut Registry);

impl Registrar<'_> {
    /// `metric`, registered under `name`; the registry keeps a handle to the same values.
    fn metric<M: Metric + Clone>(&mut self, name: &str, help: &str, metric: M) -> M {
        self.0.register(name, help, metric.clone());
        metric
    }
}

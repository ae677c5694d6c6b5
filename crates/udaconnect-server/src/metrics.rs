//! Prometheus metrics, each defined once here and updated where the event happens.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

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
    pub connection_query_duration: Histogram,
    pub persons_created: Counter,
    pub grpc_requests: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("udaconnect");
        let m = Metrics {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            locations_accepted: Counter::default(),
            log_append_duration: latency_histogram(),
            consumer_records: Family::default(),
            consumer_lag: Gauge::default(),
            consumer_batch_duration: latency_histogram(),
            connection_query_duration: latency_histogram(),
            persons_created: Counter::default(),
            grpc_requests: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered",
            m.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            m.http_duration.clone(),
        );
        registry.register(
            "locations_accepted",
            "Location pings durable in the log and acknowledged",
            m.locations_accepted.clone(),
        );
        registry.register(
            "log_append_duration_seconds",
            "Time for an append to become durable in the log",
            m.log_append_duration.clone(),
        );
        registry.register(
            "consumer_records",
            "Log records the location consumer handled, by outcome (stored, dlq)",
            m.consumer_records.clone(),
        );
        registry.register(
            "consumer_lag_records",
            "Records in the location log not yet read by the consumer",
            m.consumer_lag.clone(),
        );
        registry.register(
            "consumer_batch_duration_seconds",
            "Time to store one consumed batch and commit its offsets",
            m.consumer_batch_duration.clone(),
        );
        registry.register(
            "connection_query_duration_seconds",
            "Server time of one connection query",
            m.connection_query_duration.clone(),
        );
        registry.register(
            "persons_created",
            "Persons created",
            m.persons_created.clone(),
        );
        registry.register(
            "grpc_requests",
            "gRPC calls and stream messages answered, by method and status code",
            m.grpc_requests.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}

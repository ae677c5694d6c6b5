//! Log adapters for the [`Log`](udaconnect_core::ports::Log) port, chosen by URL.
//!
//! # Layout
//! - [`embedded`]: a durable, segmented, append-only log in a directory, with group commit
//!   (one fsync per batch of concurrent appends) and crash recovery of a torn tail.
//! - [`frame`]: how one record is laid out on disk, and how a damaged one is recognised.
//! - `kafka` (feature `kafka`, on by default): the log on an Apache Kafka cluster (or any
//!   broker speaking its protocol): idempotent producer with `acks=all`, consumer groups with
//!   commits by hand.

pub mod embedded;
pub mod frame;
#[cfg(feature = "kafka")]
pub mod kafka;

pub use embedded::{EmbeddedLog, EmbeddedLogOptions};
#[cfg(feature = "kafka")]
pub use kafka::{KafkaLog, KafkaOptions};

/// Records read per poll by [`Log::scan`](udaconnect_core::ports::Log::scan).
const SCAN_BATCH: usize = 16_384;

/// Why a scan refuses to read: more records than its caller allows.
fn scan_limit(topic: &str, total: u64, limit: u64) -> udaconnect_core::Error {
    udaconnect_core::Error::Unavailable(format!(
        "scan of {topic}: {total} records to read, more than the {limit} allowed"
    ))
}

//! Log adapters for the [`Log`](udaconnect_core::ports::Log) port, chosen by URL.
//!
//! # Layout
//! - [`embedded`]: a durable, segmented, append-only log in a directory, with group commit
//!   (one fsync per batch of concurrent appends) and crash recovery of a torn tail.
//! - [`frame`]: how one record is laid out on disk, and how a damaged one is recognised.

pub mod embedded;
pub mod frame;

pub use embedded::{EmbeddedLog, EmbeddedLogOptions};

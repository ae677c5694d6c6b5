//! What the product's programs share: `udaconnect` itself and `udaconnect-bench`, the
//! benchmarks, which are built apart so the product binary does not carry them.
//!
//! # Layout
//! - [`telemetry`]: the global logging flags (`--log-format`, `--log-level`) and the
//!   subscriber they set up.
//! - [`huge_pages`]: transparent huge pages for the processes that hold the contact index.
//! - [`progress`]: progress bars on stderr for commands that run for a while.
//! - [`programs`]: finding a sibling program, next to this executable or on `PATH`.
//! - [`runtime`]: the async runtime a program's work runs on, and its exit on failure.

pub mod huge_pages;
pub mod programs;
pub mod progress;
pub mod runtime;
pub mod telemetry;

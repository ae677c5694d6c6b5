//! What UdaConnect's tests share: real parts to test against. Used only as a dev-dependency.
//!
//! # Layout
//! - [`local`]: the machine the tests run on: the repository, free loopback ports, names no
//!   other test uses (databases, topics, groups), the code's logs when asked for.
//! - [`wait`]: [`eventually`], for what becomes true in its own time.
//! - [`kafka`]: the shared Kafka-protocol broker's address, and private brokers (`tansu`)
//!   started, killed and restarted by a test.
//! - [`postgres`]: a fresh PostgreSQL/PostGIS database per test, dropped with its guard.
//! - [`seed`]: the demo data in `data/seed`, as domain types.

pub mod kafka;
pub mod local;
pub mod postgres;
pub mod seed;
pub mod wait;

pub use local::{free_port, repo_root, unique};
pub use wait::eventually;

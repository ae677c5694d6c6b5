//! What UdaConnect's tests share: real parts to test against, and one test body per behaviour
//! of a port, run against every engine. Used as a dev-dependency, and by the benchmarks for their
//! own Mosquitto; never by the product.
//!
//! # Layout
//! - [`accounts`]: accounts and tokens made straight in an account store.
//! - [`local`]: the machine the tests run on: the repository, free loopback ports, names no
//!   other test uses (databases, topics, groups), the code's logs when asked for.
//! - [`wait`]: [`eventually`], for what becomes true in its own time.
//! - [`http`]: a running server, over HTTP: a request's answer as JSON or text, ready, a ping
//!   stored, a phone registered, a person's own pings and the extras they keep.
//! - [`listen`]: where a `udaconnect` process listens, from its `--listen-file`.
//! - [`process`]: `udaconnect serve` or one role as a process of its own, and the distributed
//!   stack (every role its own process on one broker and database); a command run to its end
//!   within a time.
//! - [`procfs`]: a running process's CPU time and resident memory, from `/proc`.
//! - [`kafka`]: the shared Kafka-protocol broker's address, and private brokers (`tansu`)
//!   started, killed and restarted by a test.
//! - [`postgres`]: a fresh PostgreSQL/PostGIS database per test, dropped with its guard.
//! - [`pg_cluster`]: a private PostgreSQL server, for a test that crashes and restarts it.
//! - [`cable`]: a TCP forwarder a test cuts and mends, to take a server away from its clients.
//! - [`mqtt`]: OwnTracks phones publishing to the local Mosquitto, and the broker sessions
//!   of subscribers under test, cleared once they stop.
//! - [`smtp`]: a real SMTP server over TCP that keeps what it accepts and refuses on demand.
//! - [`seed`]: the demo data in `data/seed`, as domain types.
//! - [`store_suite`](mod@store_suite): the conformance suite of the store ports ([`PersonStore`],
//!   [`LocationStore`], [`IdLeaser`]); [`store_suite!`] runs it against one engine.
//! - [`log_suite`](mod@log_suite): the conformance suite of the [`Log`] port; [`log_suite!`] runs it against
//!   one engine.
//!
//! A suite is generic over an engine trait ([`store_suite::StoreEngine`],
//! [`log_suite::LogEngine`]) that opens fresh instances; the engine's crate implements it in its
//! tests and adds one line, which generates one `#[tokio::test]` per body in a module named
//! after the engine (`store_suite::sqlite::upserts_are_idempotent`). Engine-specific behaviour
//! (migrations, torn tails, a broker that restarts) is tested beside the engine.
//!
//! The HTTP and gRPC API suite runs the `udaconnect` binary, so it lives beside it
//! (`crates/udaconnect/tests/api`), on [`process`]: the same shape, one body per behaviour and
//! one line per engine (`serve`, and the distributed stack).
//!
//! [`PersonStore`]: udaconnect_core::ports::PersonStore
//! [`LocationStore`]: udaconnect_core::ports::LocationStore
//! [`IdLeaser`]: udaconnect_core::ports::IdLeaser
//! [`Log`]: udaconnect_core::ports::Log

pub mod accounts;
pub mod cable;
pub mod http;
pub mod kafka;
pub mod listen;
pub mod local;
pub mod log_suite;
pub mod mqtt;
pub mod pg_cluster;
pub mod postgres;
pub mod process;
pub mod procfs;
pub mod seed;
pub mod smtp;
pub mod store_suite;
pub mod wait;

pub use local::{free_port, repo_root, unique};
pub use wait::eventually;

/// Module `$engine` with one `#[tokio::test]` per body: each calls
/// `$crate::$suite::$body::<$engine_type>()`. The suites' macros list their bodies through it.
#[doc(hidden)]
#[macro_export]
macro_rules! conformance_tests {
    ($suite:ident, $engine:ident, $engine_type:ty, [$($body:ident),* $(,)?]) => {
        mod $engine {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    $crate::$suite::$body::<$engine_type>().await;
                }
            )*
        }
    };
}

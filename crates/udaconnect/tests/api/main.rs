//! The HTTP and gRPC API suite: one body per behaviour of the public contract (persons,
//! locations, connections, contacts, problem answers, operations, gRPC ingest), played against
//! every engine a client can meet. A new engine is one [`api_suite!`] line.
//!
//! An engine is started once per test (a stack of processes takes seconds to start) and every
//! body runs against it in turn; each body makes persons and pings of its own, or reads the
//! demo data every engine starts with. A failing body is named, and the others still run.
//! `UDACONNECT_API_SUITE=persons::,grpc::v1` runs only the bodies whose names contain one of
//! its parts.

mod connections;
mod contacts;
mod edge;
mod engines;
mod grpc;
mod locations;
mod operations;
mod persons;
mod signin;
mod suite;

/// A test named `$engine` that plays every body against `$type` (an [`suite::Engine`]).
macro_rules! api_suite {
    ($engine:ident, $type:ty) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $engine() {
            suite::run::<$type>(stringify!($engine)).await;
        }
    };
}

api_suite!(serve, engines::Serve);
#[cfg(all(feature = "kafka", feature = "postgres"))]
api_suite!(distributed, engines::Distributed);

//! The HTTP and gRPC API suite: one body per behaviour of the public contract (persons,
//! locations, connections, contacts, problem answers, operations, gRPC ingest), played against
//! every engine a client can meet. A new engine is one [`api_suite!`] line.
//!
//! An engine is started once per test (a stack of processes takes seconds to start) and every
//! body runs against it in turn; each body makes persons and pings of its own, or reads the
//! demo data every engine starts with. A failing body is named, and the others still run.
//! `UDACONNECT_API_SUITE=persons::,grpc::v1` runs only the bodies whose names contain one of
//! its parts.

mod account;
mod accuracy;
mod connections;
mod contacts;
#[cfg(all(feature = "kafka", feature = "postgres"))]
#[path = "../shared/demo.rs"]
mod demo;
mod edge;
mod engines;
mod export;
mod grpc;
mod live;
mod locations;
mod operations;
mod persons;
mod reveal;
mod signin;
mod suite;
mod trackers;
mod visibility;

/// Tests in a module named `$engine` that play the bodies against `$type` (an
/// [`suite::Engine`]): `open`, every body of the original contract with `--auth off`;
/// `signin`, the sign-in bodies with `--auth on`.
macro_rules! api_suite {
    ($engine:ident, $type:ty) => {
        mod $engine {
            use super::{engines, suite};

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn open() {
                let name = concat!(stringify!($engine), "::open");
                suite::run::<$type>(name, suite::Auth::Off, suite::bodies()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn signin() {
                let name = concat!(stringify!($engine), "::signin");
                suite::run::<$type>(name, suite::Auth::On, suite::signin_bodies()).await;
            }
        }
    };
}

api_suite!(serve, engines::Serve);
#[cfg(all(feature = "kafka", feature = "postgres"))]
api_suite!(distributed, engines::Distributed);

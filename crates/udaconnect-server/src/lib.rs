//! The UdaConnect roles and their wiring.
//!
//! # Layout
//! - [`roles`]: the table of roles and their dependencies.
//! - [`wiring`]: the process: stores and log by URL, `serve` and role processes.
//! - [`ingest`]: the ingest use case and its transports (HTTP, gRPC, CSV import, demo data).
//! - [`consume`]: reading the log: location-consumer and replay.
//! - [`feed`]: stored batches handed from the consumer to the query side in one process.
//! - [`query`]: contact engines, answers, connection-api's handlers, the venue live.
//! - [`persons`]: the person directory and person-api's handlers.
//! - [`http`]: what every HTTP role shares: correlation ids, problems, layers, operations,
//!   OpenAPI, the gateway, the web page.
//! - [`metrics`]: every metric, defined once.

pub mod consume;
pub mod feed;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod persons;
pub mod query;
pub mod roles;
pub mod wiring;

pub use wiring::process::{Application, GrpcListen, RoleSettings, ServeSettings};

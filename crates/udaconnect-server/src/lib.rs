//! The UdaConnect roles and their wiring.
//!
//! # Layout
//! - [`roles`]: the table of roles and their dependencies.
//! - [`app`]: [`Application`](app::Application), which builds every role in one process
//!   (`udaconnect serve`), binds, and stops gracefully.
//! - [`embedded`]: the embedded stores and log under one data directory.
//! - [`person_api`], [`location_api`], [`location_consumer`], [`connection_api`]: one module
//!   per role, each with its routes and the service behind them.
//! - [`contact_engine`]: the in-memory index connection-api answers from, kept current by the
//!   consumer, and the streamed JSON of large answers; [`workers`]: the threads (rayon's
//!   pool) the index splits its work over.
//! - [`directory`]: how roles ask person-api about persons, wherever it runs.
//! - [`http`], [`problem`], [`ops`], [`openapi`], [`metrics`]: what every HTTP role shares:
//!   correlation ids, RFC 9457 errors, health/readiness/metrics, the OpenAPI description.
//! - [`live`]: the venue live (server-sent events, positions, heat) and the venue plan.
//! - [`web`]: the web page and its assets.
//! - [`demo`]: the demo's live simulated conference.
//! - [`import`]: persons and locations from CSV files, through the ingest pipeline.
//! - [`seed`], [`replay`]: the demo data, and rebuilding the location store from the log.

pub mod app;
pub mod backends;
pub mod connection_api;
pub mod contact_engine;
pub mod demo;
pub mod directory;
pub mod embedded;
pub mod gateway;
pub mod grpc;
pub mod http;
pub mod import;
pub mod live;
pub mod location_api;
pub mod location_consumer;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod person_api;
pub mod problem;
pub mod replay;
pub mod role_app;
pub mod roles;
pub mod seed;
pub mod web;
pub mod workers;

pub use app::{Application, GrpcListen, ServeSettings};

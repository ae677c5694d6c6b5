//! The UdaConnect roles (person-api, location-api, location-consumer, connection-api, mailer,
//! web) and the process that runs them: all of them (`serve`), or one (a role subcommand).
//!
//! # Layout
//! The folders follow a ping.
//! - [`roles`]: the one table of roles (name, dependencies, default port, `/api` paths,
//!   readiness checks) and each role's `start`.
//! - [`wiring`]: the process ([`Application`]: bind, listen file, start the roles in dependency
//!   order, stop them in reverse), what a role's start is given (in `serve` or apart), store
//!   and log URLs and opening them.
//! - [`ingest`]: the ingest use case (`Ingest`, `IdAllocator`) and its transports: HTTP, gRPC,
//!   CSV import, the demo data and conference.
//! - [`consume`]: reading the log with one poll loop: location-consumer, replay, import's
//!   catch-up, and connection-api following the topic.
//! - [`feed`]: stored batches handed from the write side to the read side in one process.
//! - [`keys`]: persons' keys, sealing what ingest writes and opening what readers read.
//! - [`query`]: contact engines (in-memory index, PostGIS, scan), answers written as JSON,
//!   connection-api's handlers, the venue live (what organizers may see of it in `crowd`).
//! - [`persons`]: the person directory (in-process or over HTTP, one cache) and person-api's
//!   handlers.
//! - [`access`]: who is asking (the authentication layer, tokens and session cookies) and the
//!   rule each route declares; `/api/me`.
//! - [`http`]: what every HTTP role shares: the connection layer (caps, timeouts, the
//!   stop's deadline), request checks and security headers, correlation ids, problems,
//!   layers, `/health` `/ready` `/metrics`, OpenAPI, the gateway, the web page.
//! - [`mail`]: mail requests onto the `notification` topic ([`mail::enqueue`]), and how the
//!   mailer sends them (SMTP, or `.eml` files without a server).
//! - [`signin`]: sign-in by e-mail link (ask, follow, confirm), browser sessions, sign-out,
//!   and the mailer's sender that puts each link's token into its mail.
//! - [`credentials`]: the user and password of a service URL (SMTP, MQTT).
//! - [`metrics`]: every metric, defined once (ingest, consume, query and HTTP update them).
//! - [`retention`]: `--retention`'s job, removing old pings from the store, the index and the
//!   embedded log, and the Kafka topics' `retention.ms`.
//!
//! A ping: `ingest::http` reads it, `ingest::Ingest` checks its person through `persons`,
//! gives it an id and appends it to the log; `consume::consumer` reads it in `consume::poll`'s
//! loop and stores it, and `feed` hands the batch to `query`'s index and live view; a query
//! comes in at `query::http` and is answered by a `query` engine.

pub mod access;
pub mod consume;
pub mod credentials;
pub mod feed;
pub mod http;
pub mod ingest;
pub mod keys;
pub mod mail;
pub mod metrics;
pub mod persons;
pub mod query;
pub mod retention;
pub mod roles;
pub mod signin;
pub mod wiring;

pub use wiring::process::{Application, GrpcListen, HttpSettings, RoleSettings, ServeSettings};

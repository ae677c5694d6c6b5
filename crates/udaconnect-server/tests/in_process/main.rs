//! The server as a library, in-process: what only `serve` or the library's own clients do. The
//! HTTP and gRPC contract itself is played against every engine by the `udaconnect` crate's
//! `api` suite.

mod access;
mod app;
mod contract;
mod demo;
mod edge;
mod edge_connections;
mod mail;
mod remote_persons;
mod retention;
mod signin;
mod trackers;

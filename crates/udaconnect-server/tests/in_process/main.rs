//! The server as a library, in-process: what only `serve` or the library's own clients do. The
//! HTTP and gRPC contract itself is played against every engine by the `udaconnect` crate's
//! `api` suite.

mod demo;
mod remote_persons;

//! Black-box tests of the HTTP contract against a real server on a loopback port.

mod connections;
mod grpc;
mod helpers;
mod locations;
mod operations;
mod persons;
mod remote_persons;

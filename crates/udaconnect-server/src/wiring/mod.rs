//! Putting the roles together in a process.
//!
//! - [`process`]: [`Application`](process::Application), the one wiring of `serve` and of a
//!   role process: bind, report the addresses, start the roles in order, stop them in reverse.
//! - `plan`, `run`: what a process is to be, made from its settings; running its roles
//!   (start in dependency order, install their routes and checks, stop in reverse).
//! - [`settings`]: what a process is told to do (`serve`'s, a role's, and how it serves HTTP).
//! - [`context`]: what a role's start is given (stores, log, person directory, the roles
//!   started before it in the same process).
//! - [`backends`]: where the stores and the log are (URLs), and opening them.
//! - [`embedded`]: the embedded stores and log under one data directory.
//! - [`disk`]: free space on the data directory's file system, and ingest refused when short.
//! - [`retention`]: `serve`'s log retention (`--log-retention`).
//! - [`startup`]: the checks `serve` makes on its data directory before the roles start.
//! - [`listen_file`], [`shutdown`]: the bound addresses for scripts; the stop signal, and
//!   the periodic work that runs until it.

pub mod backends;
pub mod context;
pub mod disk;
pub mod embedded;
pub mod listen_file;
mod plan;
pub mod process;
pub mod retention;
mod run;
pub mod settings;
pub mod shutdown;
pub mod startup;

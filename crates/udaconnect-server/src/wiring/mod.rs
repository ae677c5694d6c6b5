//! Putting the roles together in a process.
//!
//! - [`process`]: [`Application`](process::Application), the one wiring of `serve` and of a
//!   role process: bind, report the addresses, start the roles in order, stop them in reverse.
//! - [`context`]: what a role's start is given (stores, log, person directory, the roles
//!   started before it in the same process).
//! - [`backends`]: where the stores and the log are (URLs), and opening them.
//! - [`embedded`]: the embedded stores and log under one data directory.
//! - [`listen_file`], [`shutdown`]: the bound addresses for scripts; the stop signal.

pub mod backends;
pub mod context;
pub mod embedded;
pub mod listen_file;
pub mod process;
pub mod shutdown;

//! Putting the roles together in a process.
//!
//! - [`backends`]: where the stores and the log are (URLs), and opening them.
//! - [`embedded`]: the embedded stores and log under one data directory.
//! - [`serve`], [`role_process`]: the process.

pub mod backends;
pub mod embedded;
pub mod role_process;
pub mod serve;

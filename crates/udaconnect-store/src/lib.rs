//! Store adapters for the storage ports of [`udaconnect_core::ports`].
//!
//! # Layout
//! - [`sqlite`]: the embedded stores, one SQLite file per owning role (persons, locations), so
//!   no role reaches into another's tables.
//! - [`ids`]: the embedded id leaser, a small file beside the stores that a replay never
//!   touches.

pub mod ids;
pub mod sqlite;

pub use ids::FileIdLeaser;
pub use sqlite::{SqliteLocationStore, SqlitePersonStore};

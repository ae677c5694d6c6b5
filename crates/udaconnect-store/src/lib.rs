//! Store adapters for the storage ports of [`udaconnect_core::ports`].
//!
//! # Layout
//! - [`sqlite`]: the embedded stores, one SQLite file per owning role (persons, locations,
//!   accounts), so no role reaches into another's tables; persons' log keys in a file of
//!   their own, written with `secure_delete`, so that destroying a key overwrites it.
//! - [`ids`]: the embedded id leaser, a small file beside the stores that a replay never
//!   touches.
//! - `postgres` (feature `postgres`, on by default): the distributed stores and id leaser, on
//!   one PostgreSQL/PostGIS database shared by every role process; its schema comes from
//!   `migrations/postgres`.
//! - `accounts.rs`: what the two account stores share (their statements, scopes as stored,
//!   when a token's use is recorded, unique clashes, what a new account is once stored).
//! - `devices.rs`: tracker devices in the account stores, beside their device tokens.
//! - `visibility.rs`: whether the people a person met may see their name.
//! - `rows.rs`: the account stores' rows read once for both engines, each engine reading
//!   its own column types.
//! - `audit.rs`: the reads of one person's data by other accounts.
//! - `choices.rs`: requests to exchange e-mail addresses and hidden contacts.
//! - `sessions.rs`: browser sessions listed and ended by number, their last use.
//! - `addresses.rs`: an account's addresses changed by a link mailed to the new one.

mod accounts;
mod addresses;
mod audit;
mod choices;
mod devices;
pub mod ids;
#[cfg(feature = "postgres")]
pub mod postgres;
mod rows;
mod sessions;
pub mod sqlite;
mod visibility;

pub use ids::FileIdLeaser;
#[cfg(feature = "postgres")]
pub use postgres::{
    Postgres, PostgresAccountStore, PostgresIdLeaser, PostgresKeyStore, PostgresLocationStore,
    PostgresOptions, PostgresPersonStore, PostgresSentMail,
};
pub use sqlite::{
    SqliteAccountStore, SqliteKeyStore, SqliteLocationStore, SqlitePersonStore, SqliteSentMail,
};

/// The lowest and highest location ids, in both stores' SQL. Two subqueries: a database reads
/// `min` or `max` off the primary key's edge when it is the query's one aggregate; the two in
/// one query would scan the table (SQLite does).
pub(crate) const LOCATION_ID_RANGE: &str =
    "SELECT (SELECT min(id) FROM location), (SELECT max(id) FROM location)";

/// The highest leased id stored (derived ids of the original producers' records excluded).
pub(crate) const MAX_LEASED_ID: &str = "SELECT max(id) FROM location WHERE id < $1";

/// A page size as SQL's `LIMIT`: one beyond what it can say means no limit.
pub(crate) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A coordinate as every store writes and reads it: `-0.0` becomes `0.0`, anything else is
/// kept. SQLite writes an integral REAL as an integer and so drops zero's sign, PostgreSQL
/// keeps it; the point and its distances are the same, so both answer `0.0` and the modes
/// agree to the bit.
pub(crate) fn stored_coordinate(degrees: f64) -> f64 {
    if degrees == 0.0 {
        0.0
    } else {
        degrees
    }
}

//! Distributed stores on PostgreSQL with PostGIS.
//!
//! One database holds the persons, the locations, the id leases and the accounts. [`Postgres`] is a pool of
//! connections to it; each store holds a clone (an `Arc` inside), so several roles in one process
//! share the connections. [`Postgres::connect`] brings the schema up to date first (see
//! [`migrate`]), an original UdaConnect database included.
//!
//! Failures the caller can wait out (the server is down, restarting or out of connections, the
//! pool has no connection to give within its wait timeout) are [`Error::Unavailable`], which
//! roles answer with 503 and retry; everything else is [`Error::Internal`]. The pool drops
//! connections the server closed, so the first call after the server is back succeeds.

mod accounts;
mod ids;
mod keys;
mod locations;
mod mail;
pub mod migrate;
mod persons;
mod tracks;

pub use locations::near_sql;
pub use tracks::near_tracks_sql;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::types::{Timestamp, ToSql};
use tokio_postgres::{NoTls, Row};
use udaconnect_core::time::Micros;
use udaconnect_core::{Error, Result};

pub use accounts::PostgresAccountStore;
pub use ids::PostgresIdLeaser;
pub use keys::PostgresKeyStore;
pub use locations::PostgresLocationStore;
pub use mail::PostgresSentMail;
pub use persons::PostgresPersonStore;

/// How the pool behaves; [`Default`] suits a role process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Connections kept open at most.
    pub max_connections: usize,
    /// How long a call waits for a free connection, or for a new one to be established,
    /// before it fails as unavailable: a call never hangs on a database that is down.
    pub wait_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 16,
            wait_timeout: Duration::from_secs(5),
        }
    }
}

/// A pool of connections to one PostgreSQL database with PostGIS, migrated.
#[derive(Clone)]
pub struct Postgres {
    pool: Pool,
}

impl fmt::Debug for Postgres {
    // The URL is left out on purpose: it may carry a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("Postgres")
            .field("size", &status.size)
            .field("available", &status.available)
            .field("max_size", &status.max_size)
            .finish()
    }
}

impl Postgres {
    /// Connects to `url` (`postgres://user:password@host:5432/db`, or key=value pairs) and
    /// applies the migrations not applied yet.
    pub async fn connect(url: &str) -> Result<Postgres> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// [`Postgres::connect`] with pool options.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Postgres> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::Internal(format!("postgres store: invalid url: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.wait_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("udaconnect");
        }
        // A server that vanishes without closing the connection (a partition, a power cut)
        // fails the calls in flight within half a minute instead of the kernel's default
        // quarter of an hour.
        config.keepalives_idle(Duration::from_secs(10));
        config.tcp_user_timeout(Duration::from_secs(30));
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // Checks only `is_closed` on checkout: connections the server closed are
                // dropped without a round trip; calls that meet one closing retry once.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .wait_timeout(Some(options.wait_timeout))
            .create_timeout(Some(options.wait_timeout))
            .recycle_timeout(Some(options.wait_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| Error::Internal(format!("postgres store: pool: {e}")))?;
        let pg = Postgres { pool };
        migrate::run(&pg).await?;
        Ok(pg)
    }

    /// Succeeds when the database answers queries.
    pub async fn ping(&self) -> Result<()> {
        self.query("SELECT 1", &[]).await.map(|_| ())
    }

    /// Closes every connection; later calls fail as unavailable.
    pub fn close(&self) {
        self.pool.close();
    }

    async fn client(&self) -> Result<Object, DbError> {
        self.pool.get().await.map_err(DbError::Pool)
    }

    /// A connection for a statement whose caller may give up (see [`Abandonable`]).
    async fn abandonable(&self) -> Result<Abandonable, DbError> {
        Ok(Abandonable(Some(self.client().await?)))
    }

    /// Runs one statement (prepared once per connection) and returns its rows. Only for
    /// statements that may run twice: it retries once on a connection found closed. Dropped
    /// before it finishes, the statement is cancelled on the server.
    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        self.retrying(|| async move {
            let client = self.abandonable().await?;
            let statement = client.prepare_cached(sql).await?;
            let rows = client.query(&statement, params).await;
            client.finished();
            Ok(rows?)
        })
        .await
    }

    /// Runs `attempt`, and once more if it failed on a connection the server had closed
    /// (restarted, or terminated the session) before the pool noticed. Only for idempotent
    /// work.
    async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, DbError>>,
    {
        match attempt().await {
            Err(e) if e.connection_lost() => {
                // A server that closed one session has usually closed them all (a restart):
                // the idle ones go too, so the second attempt opens a live connection.
                self.pool.retain(|_, _| false);
                attempt().await.map_err(DbError::into_error)
            }
            other => other.map_err(DbError::into_error),
        }
    }
}

/// A pooled connection running a statement that its caller may abandon (a client gone, a
/// query deadline passed): dropped before [`Abandonable::finished`], it asks the server to
/// cancel the statement, which would otherwise run to its end for nobody, and leaves the pool
/// (the cancel request could otherwise reach the next statement run on it).
struct Abandonable(Option<Object>);

impl Abandonable {
    /// The statement has ended: the connection goes back to the pool.
    fn finished(mut self) {
        self.0.take();
    }
}

impl std::ops::Deref for Abandonable {
    type Target = Object;
    fn deref(&self) -> &Object {
        // Only `finished` and `drop` take the connection, and both consume the guard.
        self.0.as_ref().expect("connection held until finished")
    }
}

impl Drop for Abandonable {
    fn drop(&mut self) {
        let Some(client) = self.0.take() else { return };
        let token = client.cancel_token();
        drop(Object::take(client));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = token.cancel_query(NoTls).await {
                    tracing::debug!(error = %e, "cancelling an abandoned statement failed");
                }
            });
        }
    }
}

/// What a call to the database can fail with, before it becomes a domain [`Error`].
#[derive(Debug)]
enum DbError {
    Pool(PoolError),
    Pg(tokio_postgres::Error),
    Other(Error),
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError::Pg(e)
    }
}

impl From<Error> for DbError {
    fn from(e: Error) -> Self {
        DbError::Other(e)
    }
}

impl DbError {
    /// Whether the connection used is gone, rather than the statement having failed.
    fn connection_lost(&self) -> bool {
        let (DbError::Pg(e) | DbError::Pool(PoolError::Backend(e))) = self else {
            return false;
        };
        if let Some(db) = e.as_db_error() {
            // 57P01/57P02: the session was terminated (admin command, crash); 08: connection.
            let code = db.code().code();
            return matches!(code, "57P01" | "57P02") || code.starts_with("08");
        }
        e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
    }

    fn into_error(self) -> Error {
        match self {
            DbError::Pg(e) | DbError::Pool(PoolError::Backend(e)) => pg_error(&e),
            DbError::Pool(PoolError::Timeout(_)) => {
                unavailable("timed out waiting for a database connection")
            }
            DbError::Pool(PoolError::Closed) => unavailable("connection pool closed"),
            DbError::Pool(e) => Error::Internal(format!("postgres store: {e}")),
            DbError::Other(e) => e,
        }
    }
}

fn unavailable(why: impl fmt::Display) -> Error {
    Error::Unavailable(format!("postgres store ({why})"))
}

/// Sorts a PostgreSQL error into what the caller can wait out and what it cannot.
fn pg_error(e: &tokio_postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        // 08: connection exceptions; 53: out of connections, memory or disk; 57: shutting
        // down, starting up, cancelled; 40001/40P01: serialization failure, deadlock;
        // 25006: a read-only standby during a failover. All pass if retried later.
        let transient = code.starts_with("08")
            || code.starts_with("53")
            || code.starts_with("57")
            || matches!(code, "40001" | "40P01" | "25006");
        return if transient {
            unavailable(format_args!("{code}: {}", db.message()))
        } else {
            Error::Internal(format!("postgres store: {code}: {}", db.message()))
        };
    }
    let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    let text = e.to_string();
    if e.is_closed()
        || io
        || text.starts_with("error connecting to server")
        || text.starts_with("error communicating with the server")
        || text.starts_with("timeout waiting for server")
    {
        unavailable(text)
    } else {
        Error::Internal(format!("postgres store: {text}"))
    }
}

/// Unix microseconds as a `TIMESTAMP` value. Fails for instants PostgreSQL cannot hold.
fn to_timestamp(us: Micros) -> Result<NaiveDateTime, DbError> {
    DateTime::from_timestamp_micros(us)
        .map(|t| t.naive_utc())
        .ok_or_else(|| {
            DbError::Other(Error::Internal(format!(
                "postgres store: time {us} us is out of range"
            )))
        })
}

/// The earliest instant a PostgreSQL `TIMESTAMP` holds (4714-11-24 BC), in Unix microseconds.
const PG_MIN_TIMESTAMP_US: Micros = -210_866_803_200_000_000;

/// A query window bound as a `TIMESTAMP`: bounds beyond what PostgreSQL (or chrono) holds
/// become infinities, which compare with every stored time exactly as the bound would.
fn window_bound(us: Micros) -> Timestamp<NaiveDateTime> {
    if us < PG_MIN_TIMESTAMP_US {
        return Timestamp::NegInfinity;
    }
    match DateTime::from_timestamp_micros(us) {
        Some(t) => Timestamp::Value(t.naive_utc()),
        None => Timestamp::PosInfinity,
    }
}

fn from_timestamp(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_bounds_saturate_to_infinities() {
        assert!(matches!(window_bound(i64::MIN), Timestamp::NegInfinity));
        assert!(matches!(window_bound(i64::MAX), Timestamp::PosInfinity));
        assert!(matches!(
            window_bound(PG_MIN_TIMESTAMP_US - 1),
            Timestamp::NegInfinity
        ));
        match window_bound(1_594_118_226_000_001) {
            Timestamp::Value(t) => {
                assert_eq!(t.and_utc().timestamp_micros(), 1_594_118_226_000_001)
            }
            _ => panic!("an ordinary instant is a value"),
        }
    }
}

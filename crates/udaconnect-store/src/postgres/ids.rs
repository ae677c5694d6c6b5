use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use udaconnect_core::ports::IdLeaser;
use udaconnect_core::record::FIX_ID_BASE;
use udaconnect_core::{Error, Result};

use super::{DbError, Postgres};

/// Hi/lo id blocks from table `id_lease`, shared by every location-api process on the database.
///
/// Each lease is one `UPDATE ... RETURNING` on the name's row: PostgreSQL's row lock orders
/// concurrent leases, and the row is durable when the call returns, so no id is handed out
/// twice, across processes and restarts alike. Ids at and above
/// [`FIX_ID_BASE`] are never leased: they belong to tracker fixes and to records of the
/// original producers.
#[derive(Debug, Clone)]
pub struct PostgresIdLeaser {
    pg: Postgres,
    name: Arc<str>,
    /// Whether the name's row is known to exist, so it is only looked for once per process.
    ready: Arc<AtomicBool>,
}

impl PostgresIdLeaser {
    /// The leaser of ids named `name` (`location` for location ids).
    pub fn new(pg: &Postgres, name: &str) -> Self {
        PostgresIdLeaser {
            pg: pg.clone(),
            name: name.into(),
            ready: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Creates the name's row if it is missing, starting above every id already stored in
    /// `location` or `location_rejected` (an original database's rows included) below
    /// [`FIX_ID_BASE`].
    async fn ensure_row(&self) -> Result<(), DbError> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let client = self.pg.client().await?;
        client
            .execute(
                "INSERT INTO id_lease (name, next)
                 SELECT $1::text, GREATEST(
                     (SELECT max(id) FROM location WHERE id < $2),
                     (SELECT max(id) FROM location_rejected WHERE id < $2),
                     0) + 1
                 ON CONFLICT (name) DO NOTHING",
                &[&&*self.name, &FIX_ID_BASE],
            )
            .await?;
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    async fn try_lease(&self, size: i64) -> Result<i64, DbError> {
        self.ensure_row().await?;
        let client = self.pg.client().await?;
        let statement = client
            .prepare_cached(
                "UPDATE id_lease SET next = next + $2::bigint
                 WHERE name = $1::text AND next < $3::bigint - $2::bigint
                 RETURNING next - $2::bigint",
            )
            .await?;
        let rows = client
            .query(&statement, &[&&*self.name, &size, &FIX_ID_BASE])
            .await?;
        match rows.first() {
            Some(row) => Ok(row.try_get(0)?),
            None => Err(DbError::Other(Error::Internal("id space exhausted".into()))),
        }
    }

    async fn try_reserve_through(&self, next: i64) -> Result<(), DbError> {
        self.ensure_row().await?;
        let client = self.pg.client().await?;
        let statement = client
            .prepare_cached(
                "UPDATE id_lease SET next = GREATEST(next, $2::bigint) WHERE name = $1::text",
            )
            .await?;
        client.execute(&statement, &[&&*self.name, &next]).await?;
        Ok(())
    }
}

#[async_trait]
impl IdLeaser for PostgresIdLeaser {
    async fn lease(&self, size: u64) -> Result<i64> {
        let size = i64::try_from(size.max(1)).unwrap_or(i64::MAX);
        // A retry after a lost answer can only skip a block, never hand one out twice.
        self.pg.retrying(|| self.try_lease(size)).await
    }

    async fn reserve_through(&self, id: i64) -> Result<()> {
        let next = id.saturating_add(1);
        if next >= FIX_ID_BASE {
            return Err(Error::Internal("id space exhausted".into()));
        }
        self.pg.retrying(|| self.try_reserve_through(next)).await
    }
}

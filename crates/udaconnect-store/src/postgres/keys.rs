use async_trait::async_trait;
use tokio_postgres::Row;
use udaconnect_core::envelope::PersonKey;
use udaconnect_core::model::PersonId;
use udaconnect_core::ports::{KeyState, KeyStore};
use udaconnect_core::{Error, Result};

use super::{DbError, Postgres};

/// Persons' keys in table `person_key`, shared by every role process on the database.
///
/// Destroying a key sets its secret to NULL and vacuums the table, so the old row version is
/// pruned from the table's pages; what PostgreSQL's write-ahead log and backups hold of it
/// lasts as long as they are kept (see docs/privacy.md).
#[derive(Debug, Clone)]
pub struct PostgresKeyStore {
    pg: Postgres,
}

impl PostgresKeyStore {
    pub fn new(pg: &Postgres) -> Self {
        PostgresKeyStore { pg: pg.clone() }
    }

    async fn read(&self, person_id: PersonId) -> Result<KeyState> {
        let rows = self
            .pg
            .query(
                "SELECT version, secret FROM person_key WHERE person_id = $1",
                &[&person_id],
            )
            .await?;
        state(person_id, rows.first())
    }

    async fn vacuum(&self) -> Result<(), DbError> {
        let client = self.pg.client().await?;
        client.batch_execute("VACUUM person_key").await?;
        Ok(())
    }
}

fn state(person_id: PersonId, row: Option<&Row>) -> Result<KeyState> {
    let Some(row) = row else {
        return Ok(KeyState::Absent);
    };
    let corrupt = |e: tokio_postgres::Error| Error::Internal(format!("person_key: {e}"));
    let version: i32 = row.try_get(0).map_err(corrupt)?;
    let secret: Option<Vec<u8>> = row.try_get(1).map_err(corrupt)?;
    Ok(match secret {
        None => KeyState::Destroyed,
        Some(secret) => KeyState::Live(PersonKey::from_stored(
            person_id,
            i64::from(version),
            &secret,
        )?),
    })
}

#[async_trait]
impl KeyStore for PostgresKeyStore {
    async fn insert_missing(&self, fresh: Vec<PersonKey>) -> Result<Vec<(PersonId, KeyState)>> {
        let ids: Vec<PersonId> = fresh.iter().map(PersonKey::person_id).collect();
        let versions: Vec<i32> = fresh
            .iter()
            .map(|k| i32::try_from(k.version()).unwrap_or(i32::MAX))
            .collect();
        let secrets: Vec<&[u8]> = fresh.iter().map(|k| &k.secret()[..]).collect();
        // One statement for all; racing creators: the first insert wins and every caller
        // reads it back.
        self.pg
            .query(
                "INSERT INTO person_key (person_id, version, secret)
                 SELECT * FROM unnest($1::bigint[], $2::integer[], $3::bytea[])
                 ON CONFLICT (person_id) DO NOTHING",
                &[&ids, &versions, &secrets],
            )
            .await?;
        self.get_many(&ids).await
    }

    async fn get(&self, person_id: PersonId) -> Result<KeyState> {
        self.read(person_id).await
    }

    async fn get_many(&self, persons: &[PersonId]) -> Result<Vec<(PersonId, KeyState)>> {
        let rows = self
            .pg
            .query(
                "SELECT version, secret, person_id FROM person_key WHERE person_id = ANY($1)",
                &[&persons],
            )
            .await?;
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let person_id: PersonId = row
                .try_get(2)
                .map_err(|e| Error::Internal(format!("person_key: {e}")))?;
            found.insert(person_id, state(person_id, Some(row))?);
        }
        let mut asked = std::collections::HashSet::with_capacity(persons.len());
        Ok(persons
            .iter()
            .filter(|p| asked.insert(**p))
            .map(|&p| (p, found.remove(&p).unwrap_or(KeyState::Absent)))
            .collect())
    }

    async fn destroy(&self, person_id: PersonId) -> Result<bool> {
        // One statement, so a retry after a lost answer finds the tombstone and changes
        // nothing more.
        let rows = self
            .pg
            .query(
                "WITH destroyed AS (
                     UPDATE person_key SET secret = NULL, destroyed_at = now()
                     WHERE person_id = $1 AND secret IS NOT NULL
                     RETURNING person_id),
                 tombstone AS (
                     INSERT INTO person_key (person_id, version, secret, destroyed_at)
                     SELECT $1, 0, NULL, now()
                     WHERE NOT EXISTS (SELECT 1 FROM person_key WHERE person_id = $1)
                     ON CONFLICT (person_id) DO NOTHING)
                 SELECT count(*) FROM destroyed",
                &[&person_id],
            )
            .await?;
        let destroyed = rows
            .first()
            .and_then(|r| r.try_get::<_, i64>(0).ok())
            .unwrap_or(0)
            > 0;
        // Prune the old row version that still holds the secret in the table's pages.
        self.pg.retrying(|| self.vacuum()).await?;
        Ok(destroyed)
    }
}

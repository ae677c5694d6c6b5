use std::collections::BTreeMap;

use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use udaconnect_core::model::{NewPerson, Person, PersonId};
use udaconnect_core::ports::PersonStore;
use udaconnect_core::{Error, Result};

use super::{pg_error, DbError, Postgres};

const COLUMNS: &str = "id, first_name, last_name, company_name";

/// How many times `create` draws another id when the one drawn is taken (a row written with
/// an explicit id by something other than `import`, which moves the sequence itself).
const CREATE_ATTEMPTS: usize = 64;

/// Persons in table `person`; new ids come from its sequence.
#[derive(Debug, Clone)]
pub struct PostgresPersonStore {
    pg: Postgres,
}

impl PostgresPersonStore {
    pub fn new(pg: &Postgres) -> Self {
        PostgresPersonStore { pg: pg.clone() }
    }
}

fn person(row: &Row) -> Result<Person, tokio_postgres::Error> {
    Ok(Person {
        id: row.try_get(0)?,
        first_name: row.try_get(1)?,
        last_name: row.try_get(2)?,
        company_name: row.try_get(3)?,
    })
}

fn persons(rows: &[Row]) -> Result<Vec<Person>> {
    rows.iter()
        .map(person)
        .collect::<Result<_, _>>()
        .map_err(|e| pg_error(&e))
}

impl PostgresPersonStore {
    /// `SELECT` the persons of `filter` (the query after `FROM person`) with `params`.
    async fn select(&self, filter: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Person>> {
        let sql = format!("SELECT {COLUMNS} FROM person {filter}");
        persons(&self.pg.query(&sql, params).await?)
    }

    async fn try_create(&self, p: &NewPerson) -> Result<PersonId, DbError> {
        let client = self.pg.client().await?;
        let statement = client
            .prepare_cached(
                "INSERT INTO person (first_name, last_name, company_name) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO NOTHING
                 RETURNING id",
            )
            .await?;
        for _ in 0..CREATE_ATTEMPTS {
            let rows = client
                .query(&statement, &[&p.first_name, &p.last_name, &p.company_name])
                .await?;
            if let Some(row) = rows.first() {
                return Ok(row.try_get(0)?);
            }
        }
        Err(DbError::Other(Error::Internal(
            "postgres store: no free person id found; is the person id sequence behind?".into(),
        )))
    }

    async fn try_import(&self, persons: &[Person]) -> Result<(), DbError> {
        // One row per id, the last one given winning, as a row-by-row upsert would leave it
        // (a single INSERT may not update a row twice).
        let unique: BTreeMap<PersonId, &Person> = persons.iter().map(|p| (p.id, p)).collect();
        let Some(&top) = unique.keys().next_back() else {
            return Ok(());
        };
        let ids: Vec<i64> = unique.keys().copied().collect();
        let first: Vec<&str> = unique.values().map(|p| p.first_name.as_str()).collect();
        let last: Vec<&str> = unique.values().map(|p| p.last_name.as_str()).collect();
        let company: Vec<&str> = unique.values().map(|p| p.company_name.as_str()).collect();

        let mut client = self.pg.client().await?;
        let tx = client.transaction().await?;
        // `create` inserts under ROW EXCLUSIVE, which this mode excludes: no id is drawn from
        // the sequence between reading it and raising it, so it can never be set below an id
        // already handed out.
        tx.batch_execute("LOCK TABLE person IN SHARE ROW EXCLUSIVE MODE")
            .await?;
        tx.execute(
            "INSERT INTO person (id, first_name, last_name, company_name)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[])
             ON CONFLICT (id) DO UPDATE SET first_name = excluded.first_name,
               last_name = excluded.last_name, company_name = excluded.company_name",
            &[&ids, &first, &last, &company],
        )
        .await?;
        tx.query(
            "SELECT setval(s.seq, $1)
             FROM (SELECT pg_get_serial_sequence('person', 'id')::regclass AS seq) s
             WHERE $1 > COALESCE(pg_sequence_last_value(s.seq), 0)",
            &[&top],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl PersonStore for PostgresPersonStore {
    async fn create(&self, p: NewPerson) -> Result<Person> {
        // Not retried: an insert whose answer was lost may have been stored.
        let id = self.try_create(&p).await.map_err(DbError::into_error)?;
        Ok(Person {
            id,
            first_name: p.first_name,
            last_name: p.last_name,
            company_name: p.company_name,
        })
    }

    async fn import(&self, persons: Vec<Person>) -> Result<()> {
        self.pg.retrying(|| self.try_import(&persons)).await
    }

    async fn get(&self, id: PersonId) -> Result<Option<Person>> {
        Ok(self.select("WHERE id = $1", &[&id]).await?.pop())
    }

    async fn get_many(&self, ids: &[PersonId]) -> Result<Vec<Person>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.select("WHERE id = ANY($1) ORDER BY id", &[&ids]).await
    }

    async fn delete(&self, id: PersonId) -> Result<bool> {
        let rows = self
            .pg
            .query(
                // The location table refers to the person: pings stored since the caller
                // deleted them (a consumer behind) go in the same statement.
                "WITH pings AS (DELETE FROM location WHERE person_id = $1)
                 DELETE FROM person WHERE id = $1 RETURNING id",
                &[&id],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn list(&self, after: Option<PersonId>, limit: usize) -> Result<Vec<Person>> {
        let after = after.unwrap_or(i64::MIN);
        let limit = crate::sql_limit(limit);
        self.select("WHERE id > $1 ORDER BY id LIMIT $2", &[&after, &limit])
            .await
    }

    async fn ping(&self) -> Result<()> {
        self.pg.ping().await
    }
}

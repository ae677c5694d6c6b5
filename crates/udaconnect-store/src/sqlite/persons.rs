use async_trait::async_trait;
use rusqlite::{params, Row};
use udaconnect_core::model::{NewPerson, Person, PersonId};
use udaconnect_core::ports::PersonStore;
use udaconnect_core::Result;

const SCHEMA: &str = include_str!("../../migrations/sqlite/persons.sql");
const COLUMNS: &str = "id, first_name, last_name, company_name";

sqlite_store!(
    /// Persons in their own SQLite file.
    SqlitePersonStore,
    SCHEMA
);

fn person(row: &Row<'_>) -> rusqlite::Result<Person> {
    Ok(Person {
        id: row.get(0)?,
        first_name: row.get(1)?,
        last_name: row.get(2)?,
        company_name: row.get(3)?,
    })
}

#[async_trait]
impl PersonStore for SqlitePersonStore {
    async fn create(&self, p: NewPerson) -> Result<Person> {
        self.db
            .write(move |c| {
                let id = c.query_row(
                    "INSERT INTO person (first_name, last_name, company_name) VALUES (?1, ?2, ?3)
                     RETURNING id",
                    params![p.first_name, p.last_name, p.company_name],
                    |r| r.get(0),
                )?;
                Ok(Person {
                    id,
                    first_name: p.first_name,
                    last_name: p.last_name,
                    company_name: p.company_name,
                })
            })
            .await
    }

    async fn import(&self, persons: Vec<Person>) -> Result<()> {
        let sql = "INSERT INTO person (id, first_name, last_name, company_name)
                   VALUES (?1, ?2, ?3, ?4)
                   ON CONFLICT (id) DO UPDATE SET first_name = excluded.first_name,
                     last_name = excluded.last_name, company_name = excluded.company_name";
        self.db
            .execute_each(sql.to_string(), persons, |stmt, p| {
                stmt.execute(params![p.id, p.first_name, p.last_name, p.company_name])
            })
            .await
    }

    async fn get(&self, id: PersonId) -> Result<Option<Person>> {
        let sql = format!("SELECT {COLUMNS} FROM person WHERE id = ?1");
        self.db.row_by_id(sql, id, person).await
    }

    async fn get_many(&self, ids: &[PersonId]) -> Result<Vec<Person>> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        // One statement for any number of ids: the ids travel as one JSON array.
        let list = format!(
            "[{}]",
            ids.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        self.db
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM person WHERE id IN (SELECT value FROM json_each(?1))
                     ORDER BY id"
                ))?
                .query_map([list], person)?
                .collect()
            })
            .await
    }

    async fn list(&self, after: Option<PersonId>, limit: usize) -> Result<Vec<Person>> {
        self.db
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM person WHERE id > ?1 ORDER BY id LIMIT ?2"
                ))?
                .query_map(params![after.unwrap_or(i64::MIN), limit as i64], person)?
                .collect()
            })
            .await
    }

    async fn delete(&self, id: PersonId) -> Result<bool> {
        self.db
            .erase("DELETE FROM person WHERE id = ?1", id)
            .await
            .map(|n| n > 0)
    }

    async fn ping(&self) -> Result<()> {
        self.db.ping().await
    }
}

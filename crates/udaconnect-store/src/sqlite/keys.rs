use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use udaconnect_core::envelope::PersonKey;
use udaconnect_core::model::PersonId;
use udaconnect_core::ports::{KeyState, KeyStore};
use udaconnect_core::{Error, Result};

const SCHEMA: &str = include_str!("../../migrations/sqlite/keys.sql");

sqlite_store!(
    /// Persons' keys in a SQLite file of their own (`keys.sqlite3`), so that destroying one
    /// overwrites it: `secure_delete` zeroes the freed bytes, and the write-ahead log that
    /// still holds earlier pages is checkpointed and truncated right after.
    SqliteKeyStore,
    SCHEMA
);

/// A row as stored: its version and secret, the secret `None` once destroyed.
type Row = (i64, Option<Vec<u8>>);

fn read_row(c: &Connection, person_id: PersonId) -> rusqlite::Result<Option<Row>> {
    c.prepare_cached("SELECT version, secret FROM person_key WHERE person_id = ?1")?
        .query_row([person_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

fn state(person_id: PersonId, row: Option<Row>) -> Result<KeyState> {
    Ok(match row {
        None => KeyState::Absent,
        Some((_, None)) => KeyState::Destroyed,
        Some((version, Some(secret))) => {
            KeyState::Live(PersonKey::from_stored(person_id, version, &secret)?)
        }
    })
}

/// Each person once, in the order first asked.
fn distinct(persons: &[PersonId]) -> Vec<PersonId> {
    let mut seen = std::collections::HashSet::with_capacity(persons.len());
    persons
        .iter()
        .copied()
        .filter(|p| seen.insert(*p))
        .collect()
}

#[async_trait]
impl KeyStore for SqliteKeyStore {
    async fn insert_missing(&self, fresh: Vec<PersonKey>) -> Result<Vec<(PersonId, KeyState)>> {
        let rows = self
            .db
            .write(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut rows = Vec::with_capacity(fresh.len());
                for key in &fresh {
                    // Another handle on the file may have made it since the read: the first
                    // one made is everyone's.
                    tx.prepare_cached(
                        "INSERT INTO person_key (person_id, version, secret)
                         VALUES (?1, ?2, ?3) ON CONFLICT (person_id) DO NOTHING",
                    )?
                    .execute(params![
                        key.person_id(),
                        key.version(),
                        &key.secret()[..]
                    ])?;
                    rows.push((key.person_id(), read_row(&tx, key.person_id())?));
                }
                tx.commit()?;
                Ok(rows)
            })
            .await?;
        rows.into_iter()
            .map(|(person_id, row)| Ok((person_id, state(person_id, row)?)))
            .collect()
    }

    async fn get(&self, person_id: PersonId) -> Result<KeyState> {
        let row = self.db.read(move |c| read_row(c, person_id)).await?;
        state(person_id, row)
    }

    async fn get_many(&self, persons: &[PersonId]) -> Result<Vec<(PersonId, KeyState)>> {
        let persons = distinct(persons);
        let rows = self
            .db
            .read(move |c| {
                persons
                    .into_iter()
                    .map(|p| Ok((p, read_row(c, p)?)))
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        rows.into_iter()
            .map(|(p, row)| Ok((p, state(p, row)?)))
            .collect()
    }

    async fn destroy(&self, person_id: PersonId) -> Result<bool> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let (destroyed, busy) = self
            .db
            .write(move |c| {
                let destroyed = c.execute(
                    "UPDATE person_key SET secret = NULL, destroyed_at = ?2
                     WHERE person_id = ?1 AND secret IS NOT NULL",
                    params![person_id, now_ms],
                )? > 0;
                c.execute(
                    "INSERT INTO person_key (person_id, version, secret, destroyed_at)
                     VALUES (?1, 0, NULL, ?2) ON CONFLICT (person_id) DO NOTHING",
                    params![person_id, now_ms],
                )?;
                // The log keeps the page that held the secret until a checkpoint copies the
                // zeroed page over it; truncating it then removes the old page from disk.
                let busy: i64 = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
                Ok((destroyed, busy != 0))
            })
            .await?;
        if busy {
            // The key is gone from the table; its old bytes may linger in the write-ahead log
            // while a reader holds it. Calling again finishes the job.
            return Err(Error::Unavailable(format!(
                "key store (a reader held the write-ahead log; destroy of person {person_id} is incomplete)"
            )));
        }
        Ok(destroyed)
    }
}

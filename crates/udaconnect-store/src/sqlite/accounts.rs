use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::{Type, Value, ValueRef};
use rusqlite::{params, params_from_iter, OptionalExtension, Row};
use udaconnect_core::auth::{AccountId, Email, Revoked};
use udaconnect_core::time::to_micros;
use udaconnect_core::Result;

use super::Db;
use crate::accounts::{conflict, AccountDb, Accounts, Arg, CONSUME_SIGN_IN_LINK};
use crate::addresses::{APPLY_PRIMARY, APPLY_SECONDARY, USE_LINK};
use crate::rows::{self, Cell, Columns, FromRow};

/// The accounts, then what hangs on them.
const SCHEMA: &str = concat!(
    include_str!("../../migrations/sqlite/accounts.sql"),
    include_str!("../../migrations/sqlite/visibility.sql"),
);
/// What came after `SCHEMA`, applied once each (numbered as PostgreSQL's migrations).
const STEPS: &[(i64, &str)] = &[
    (
        12,
        include_str!("../../migrations/sqlite/0012_account_changes.sql"),
    ),
    (
        13,
        include_str!("../../migrations/sqlite/0013_contact_choices.sql"),
    ),
    (
        14,
        include_str!("../../migrations/sqlite/0014_live_map.sql"),
    ),
    (
        15,
        include_str!("../../migrations/sqlite/0015_data_read.sql"),
    ),
];

/// Accounts and credentials in their own SQLite file, which deletes by overwriting (see the
/// schema).
pub type SqliteAccountStore = Accounts<SqliteAccounts>;

/// The account statements on SQLite.
#[derive(Clone)]
pub struct SqliteAccounts {
    db: Db,
}

impl SqliteAccountStore {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let db = Db::open(path, SCHEMA)?;
        db.migrate(STEPS)?;
        Ok(Accounts(SqliteAccounts { db }))
    }
}

/// A column that holds what the schema forbids, as a read error.
fn corrupt(column: usize, why: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, Type::Text, why.into())
}

impl Columns for Row<'_> {
    type Error = rusqlite::Error;

    fn cell(&self, i: usize) -> rusqlite::Result<Cell> {
        Ok(match self.get_ref(i)? {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(n) => Cell::Int(n),
            ValueRef::Text(t) => {
                Cell::Text(String::from_utf8(t.to_vec()).map_err(|e| corrupt(i, e.to_string()))?)
            }
            ValueRef::Real(_) | ValueRef::Blob(_) => {
                return Err(corrupt(
                    i,
                    format!("column {i} is neither integer nor text"),
                ))
            }
        })
    }

    fn corrupt(&self, i: usize, _: &str, why: String) -> rusqlite::Error {
        corrupt(i, why)
    }
}

/// A unique index refused the write: which one, if it is one of ours.
fn unique_violation(e: &rusqlite::Error) -> Option<&str> {
    match e {
        rusqlite::Error::SqliteFailure(f, Some(message))
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            Some(message)
        }
        _ => None,
    }
}

/// A shared statement in SQLite's numbered placeholders: `$n` as `?n`.
fn sqlite(sql: &str) -> String {
    sql.replace('$', "?")
}

fn values(args: Vec<Arg>) -> Vec<Value> {
    let time = |t: DateTime<Utc>| Value::Integer(to_micros(t));
    args.into_iter()
        .map(|a| match a {
            Arg::Int(n) => Value::Integer(n),
            Arg::MaybeInt(n) => n.map_or(Value::Null, Value::Integer),
            Arg::Text(s) => Value::Text(s),
            Arg::MaybeText(s) => s.map_or(Value::Null, Value::Text),
            Arg::Flag(b) => Value::Integer(b.into()),
            Arg::Bytes(b) => Value::Blob(b),
            Arg::MaybeBytes(b) => b.map_or(Value::Null, Value::Blob),
            Arg::Time(t) => time(t),
            Arg::MaybeTime(t) => t.map_or(Value::Null, time),
        })
        .collect()
}

#[async_trait]
impl AccountDb for SqliteAccounts {
    async fn forget_deleted(&self) -> Result<()> {
        // `secure_delete` zeroed the rows in the table; the write-ahead log still holds the
        // pages as they were until a checkpoint copies them back and it is truncated.
        self.db.checkpoint().await
    }

    async fn insert(&self, sql: &'static str, args: Vec<Arg>) -> Result<i64> {
        self.db
            .write(move |c| {
                let id = c.query_row(&sqlite(sql), params_from_iter(values(args)), |r| r.get(0));
                match id {
                    Ok(id) => Ok(Ok(id)),
                    Err(e) => match unique_violation(&e) {
                        Some(which) => Ok(Err(conflict(which))),
                        None => Err(e),
                    },
                }
            })
            .await?
    }

    async fn execute(&self, sql: &'static str, args: Vec<Arg>) -> Result<u64> {
        let changed = self
            .db
            .write(move |c| {
                c.prepare_cached(&sqlite(sql))?
                    .execute(params_from_iter(values(args)))
            })
            .await?;
        Ok(changed as u64)
    }

    async fn execute_all(&self, sql: &'static str, rows: Vec<Vec<Arg>>) -> Result<u64> {
        let changed = self
            .db
            .write(move |c| {
                let tx = c.transaction()?;
                let mut changed = 0;
                {
                    let mut statement = tx.prepare_cached(&sqlite(sql))?;
                    for args in rows {
                        changed += statement.execute(params_from_iter(values(args)))?;
                    }
                }
                tx.commit()?;
                Ok(changed)
            })
            .await?;
        Ok(changed as u64)
    }

    async fn count(&self, sql: &'static str) -> Result<i64> {
        self.db
            .read(move |c| c.query_row(sql, [], |r| r.get(0)))
            .await
    }

    async fn rows<T: FromRow>(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<T>> {
        let sql = sqlite(sql);
        self.db
            .read(move |c| {
                c.prepare_cached(&sql)?
                    .query_map(params_from_iter(values(args)), |r| T::from_row(r))?
                    .collect()
            })
            .await
    }

    async fn apply_email_change(
        &self,
        hash: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Result<Option<AccountId>> {
        let at = to_micros(now);
        self.db
            .write(move |c| {
                let tx = c.transaction()?;
                let used = tx
                    .query_row(&sqlite(USE_LINK), params![hash, at], |r| {
                        Ok((
                            r.get::<_, AccountId>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                        ))
                    })
                    .optional()?;
                let Some((account, email, key, slot)) = used else {
                    return Ok(Ok(None));
                };
                let applied = if slot == "primary" {
                    tx.execute(&sqlite(APPLY_PRIMARY), params![account, email, key])
                } else {
                    tx.execute(&sqlite(APPLY_SECONDARY), params![account, email])
                };
                match applied {
                    // Dropping the transaction rolls the link's use back with it.
                    Err(e) => match unique_violation(&e) {
                        Some(which) => Ok(Err(conflict(which))),
                        None => Err(e),
                    },
                    Ok(_) => {
                        tx.commit()?;
                        Ok(Ok(Some(account)))
                    }
                }
            })
            .await?
    }

    async fn consume_link(&self, hash: Vec<u8>, now: DateTime<Utc>) -> Result<Option<Email>> {
        let at = to_micros(now);
        // One statement on the one writer: the check and the use cannot be split by another.
        self.db
            .write(move |c| {
                c.query_row(&sqlite(CONSUME_SIGN_IN_LINK), params![hash, at], |r| {
                    rows::email(r, 0)
                })
                .optional()
                .map(Option::flatten)
            })
            .await
    }

    async fn revoke_all(&self, account: AccountId, now: DateTime<Utc>) -> Result<Revoked> {
        let at = to_micros(now);
        self.db
            .write(move |c| {
                let tx = c.transaction()?;
                let tokens = tx.execute(
                    "UPDATE account_token SET revoked_at = ?2
                     WHERE account_id = ?1 AND revoked_at IS NULL",
                    params![account, at],
                )?;
                let sessions = tx.execute(
                    "UPDATE account_session SET revoked_at = ?2
                     WHERE account_id = ?1 AND revoked_at IS NULL",
                    params![account, at],
                )?;
                tx.commit()?;
                Ok(Revoked {
                    tokens: tokens as u64,
                    sessions: sessions as u64,
                })
            })
            .await
    }

    async fn ping(&self) -> Result<()> {
        self.db.ping().await
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};
    use udaconnect_core::auth::{NewAccount, Role, TokenKind, TokenSecret};
    use udaconnect_core::ports::AccountStore;

    use super::*;

    /// A file made before the sessions had numbers (only `SCHEMA`, a session in it) opens with
    /// each step applied once: the session keeps working, is numbered, and new ones follow it.
    #[tokio::test]
    async fn a_file_of_the_earlier_schema_is_brought_up_to_date_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.sqlite3");
        let t0 = Utc.with_ymd_and_hms(2026, 5, 4, 9, 30, 0).unwrap();
        let old = TokenSecret::from_bytes([7; 32]);
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(SCHEMA).unwrap();
            c.execute(
                "INSERT INTO account (role, created_at) VALUES ('organizer', ?1)",
                [to_micros(t0)],
            )
            .unwrap();
            c.execute(
                "INSERT INTO account_session (hash, account_id, created_at, expires_at)
                 VALUES (?1, 1, ?2, ?3)",
                params![
                    old.hash(TokenKind::Session).as_bytes().to_vec(),
                    to_micros(t0),
                    to_micros(t0 + TimeDelta::days(1))
                ],
            )
            .unwrap();
        }
        for _ in 0..2 {
            let store = SqliteAccountStore::open(&path).unwrap();
            assert!(store.verify_session(&old, t0).await.unwrap().is_some());
        }
        let store = SqliteAccountStore::open(&path).unwrap();
        let new = store
            .create_session(1, t0 + TimeDelta::days(1), t0)
            .await
            .unwrap();
        let listed = store.sessions(1, Some(&new), t0).await.unwrap();
        let ids: Vec<(i64, bool)> = listed.iter().map(|s| (s.id, s.current)).collect();
        assert_eq!(ids, vec![(1, false), (2, true)]);
        let applied: i64 = store
            .0
            .db
            .read(|c| {
                c.query_row("SELECT count(*) FROM udaconnect_migrations", [], |r| {
                    r.get(0)
                })
            })
            .await
            .unwrap();
        assert_eq!(
            applied,
            STEPS.len() as i64,
            "each step once, though opened twice"
        );
        // An account made now is stored as ever.
        let made = store
            .create_account(
                NewAccount {
                    person: None,
                    email: None,
                    email_verified: false,
                    secondary_email: None,
                    role: Role::Admin,
                },
                t0,
            )
            .await
            .unwrap();
        assert_eq!(made.id, 2);
    }
}

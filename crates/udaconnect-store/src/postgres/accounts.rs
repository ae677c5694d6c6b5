use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;
use udaconnect_core::auth::{AccountId, Email, Revoked};
use udaconnect_core::time::truncate_to_micros;
use udaconnect_core::{Error, Result};

use super::{pg_error, DbError, Postgres};
use crate::accounts::{conflict, AccountDb, Accounts, Arg, CONSUME_SIGN_IN_LINK};
use crate::addresses::USE_LINK;
use crate::rows::{self, Cell, Columns, FromRow};

/// Accounts and credentials in tables `account`, `account_token`, `account_session` and
/// `sign_in_link`.
pub type PostgresAccountStore = Accounts<PostgresAccounts>;

/// The account statements on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresAccounts {
    pg: Postgres,
}

impl PostgresAccountStore {
    pub fn new(pg: &Postgres) -> Self {
        Accounts(PostgresAccounts { pg: pg.clone() })
    }
}

/// A column holding what the schema forbids.
fn corrupt(what: &str, why: impl std::fmt::Display) -> Error {
    Error::Internal(format!("postgres account store: {what}: {why}"))
}

fn read<T>(r: Result<T, tokio_postgres::Error>) -> Result<T> {
    r.map_err(|e| pg_error(&e))
}

impl Columns for Row {
    type Error = Error;

    fn cell(&self, i: usize) -> Result<Cell> {
        let Some(column) = self.columns().get(i) else {
            return Err(corrupt("column", format!("no column {i}")));
        };
        let cell = match *column.type_() {
            Type::INT8 => read(self.try_get::<_, Option<i64>>(i))?.map(Cell::Int),
            Type::TEXT => read(self.try_get::<_, Option<String>>(i))?.map(Cell::Text),
            Type::BOOL => read(self.try_get::<_, Option<bool>>(i))?.map(Cell::Flag),
            Type::TIMESTAMPTZ => read(self.try_get::<_, Option<DateTime<Utc>>>(i))?.map(Cell::Time),
            ref other => return Err(corrupt("column", format!("column {i} is of type {other}"))),
        };
        Ok(cell.unwrap_or(Cell::Null))
    }

    fn corrupt(&self, _: usize, what: &str, why: String) -> Error {
        corrupt(what, why)
    }
}

type Param = Box<dyn ToSql + Sync + Send>;

fn params(args: Vec<Arg>) -> Vec<Param> {
    args.into_iter()
        .map(|a| -> Param {
            match a {
                Arg::Int(n) => Box::new(n),
                Arg::MaybeInt(n) => Box::new(n),
                Arg::Text(s) => Box::new(s),
                Arg::MaybeText(s) => Box::new(s),
                Arg::Flag(b) => Box::new(b),
                Arg::Bytes(b) => Box::new(b),
                Arg::MaybeBytes(b) => Box::new(b),
                Arg::Time(t) => Box::new(truncate_to_micros(t)),
                Arg::MaybeTime(t) => Box::new(t.map(truncate_to_micros)),
            }
        })
        .collect()
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref() as _).collect()
}

impl PostgresAccounts {
    /// Runs a write once (see [`AccountDb`]); a unique index's refusal is a [`conflict`].
    async fn write(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<Row>> {
        let params = params(args);
        let attempt = async {
            let client = self.pg.client().await?;
            let statement = client.prepare_cached(sql).await?;
            Ok::<_, DbError>(client.query(&statement, &refs(&params)).await?)
        };
        match attempt.await {
            Err(DbError::Pg(e)) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                let which = e
                    .as_db_error()
                    .and_then(|d| d.constraint())
                    .unwrap_or_default()
                    .to_string();
                Err(conflict(&which))
            }
            other => other.map_err(DbError::into_error),
        }
    }
}

#[async_trait]
impl AccountDb for PostgresAccounts {
    async fn insert(&self, sql: &'static str, args: Vec<Arg>) -> Result<i64> {
        let rows = self.write(sql, args).await?;
        rows.first()
            .map(|r| read(r.try_get(0)))
            .transpose()?
            .ok_or_else(|| corrupt("insert", "no id returned"))
    }

    async fn execute(&self, sql: &'static str, args: Vec<Arg>) -> Result<u64> {
        let params = params(args);
        let attempt = async {
            let client = self.pg.client().await?;
            let statement = client.prepare_cached(sql).await?;
            Ok::<_, DbError>(client.execute(&statement, &refs(&params)).await?)
        };
        attempt.await.map_err(DbError::into_error)
    }

    async fn execute_all(&self, sql: &'static str, rows: Vec<Vec<Arg>>) -> Result<u64> {
        let rows: Vec<Vec<Param>> = rows.into_iter().map(params).collect();
        let args: Vec<_> = rows.iter().map(|p| refs(p)).collect();
        let attempt = async {
            let mut client = self.pg.client().await?;
            let tx = client.transaction().await?;
            let statement = tx.prepare_cached(sql).await?;
            // Sent together: the connection pipelines them, so a batch costs about one round
            // trip and one commit.
            let changed =
                futures_util::future::try_join_all(args.iter().map(|a| tx.execute(&statement, a)))
                    .await?;
            tx.commit().await?;
            Ok::<_, DbError>(changed.into_iter().sum())
        };
        attempt.await.map_err(DbError::into_error)
    }

    async fn count(&self, sql: &'static str) -> Result<i64> {
        let rows = self.pg.query(sql, &[]).await?;
        Ok(rows
            .first()
            .map(|r| read(r.try_get(0)))
            .transpose()?
            .unwrap_or(0))
    }

    async fn rows<T: FromRow>(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<T>> {
        let params = params(args);
        let rows = self.pg.query(sql, &refs(&params)).await?;
        rows.iter().map(T::from_row).collect()
    }

    async fn apply_email_change(
        &self,
        hash: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Result<Option<AccountId>> {
        // One statement, so the link's use and the change commit together; should the unique
        // key refuse the address, neither happens and the link still works.
        let sql = format!(
            "WITH used AS ({USE_LINK})
             UPDATE account SET
                 email = CASE WHEN used.slot = 'primary' THEN used.email ELSE account.email END,
                 email_key = CASE WHEN used.slot = 'primary' THEN used.email_key
                                  ELSE account.email_key END,
                 email_verified = account.email_verified OR used.slot = 'primary',
                 secondary_email = CASE WHEN used.slot = 'secondary' THEN used.email
                                        ELSE account.secondary_email END
             FROM used WHERE account.id = used.account_id
             RETURNING account.id"
        );
        let rows = self
            .write(&sql, vec![Arg::Bytes(hash), Arg::Time(now)])
            .await?;
        rows.first().map(|r| read(r.try_get(0))).transpose()
    }

    async fn consume_link(&self, hash: Vec<u8>, now: DateTime<Utc>) -> Result<Option<Email>> {
        // One statement: the row lock orders two racing uses, and the second finds it used.
        let rows = self
            .write(CONSUME_SIGN_IN_LINK, vec![Arg::Bytes(hash), Arg::Time(now)])
            .await?;
        rows.first()
            .map(|r| rows::email(r, 0))
            .transpose()
            .map(Option::flatten)
    }

    async fn revoke_all(&self, account: AccountId, now: DateTime<Utc>) -> Result<Revoked> {
        // One statement, so both revocations commit together.
        let rows = self
            .write(
                "WITH tokens AS (
                     UPDATE account_token SET revoked_at = $2
                     WHERE account_id = $1 AND revoked_at IS NULL RETURNING 1
                 ), sessions AS (
                     UPDATE account_session SET revoked_at = $2
                     WHERE account_id = $1 AND revoked_at IS NULL RETURNING 1
                 )
                 SELECT (SELECT count(*) FROM tokens), (SELECT count(*) FROM sessions)",
                vec![Arg::Int(account), Arg::Time(now)],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| corrupt("revoke", "no counts returned"))?;
        let (tokens, sessions): (i64, i64) = (read(row.try_get(0))?, read(row.try_get(1))?);
        Ok(Revoked {
            tokens: tokens.max(0) as u64,
            sessions: sessions.max(0) as u64,
        })
    }

    async fn ping(&self) -> Result<()> {
        self.pg.ping().await
    }
}

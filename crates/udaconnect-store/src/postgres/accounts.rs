use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use udaconnect_core::auth::{
    Account, AccountId, Email, Issued, NewAccount, NewToken, Principal, Revoked, Role, SignInLink,
    TokenId, TokenInfo, TokenKind, TokenSecret,
};
use udaconnect_core::model::PersonId;
use udaconnect_core::ports::AccountStore;
use udaconnect_core::time::truncate_to_micros;
use udaconnect_core::{Error, Result};

use super::{pg_error, DbError, Postgres};
use crate::accounts::{conflict, scopes_of, LAST_USED_STEP};

const ACCOUNT_COLUMNS: &str =
    "id, person_id, email, email_verified, secondary_email, role, created_at";
const TOKEN_COLUMNS: &str = "id, account_id, name, role, scopes, person_id, created_at, \
                             expires_at, revoked_at, last_used_at";

/// Accounts and credentials in tables `account`, `account_token`, `account_session` and
/// `sign_in_link`.
#[derive(Debug, Clone)]
pub struct PostgresAccountStore {
    pg: Postgres,
}

impl PostgresAccountStore {
    pub fn new(pg: &Postgres) -> Self {
        PostgresAccountStore { pg: pg.clone() }
    }
}

/// A column holding what the schema forbids.
fn corrupt(what: &str, why: impl std::fmt::Display) -> Error {
    Error::Internal(format!("postgres account store: {what}: {why}"))
}

fn read<T>(r: Result<T, tokio_postgres::Error>) -> Result<T> {
    r.map_err(|e| pg_error(&e))
}

fn role_of(row: &Row, i: usize) -> Result<Role> {
    read(row.try_get::<_, String>(i))?
        .parse()
        .map_err(|e| corrupt("role", e))
}

fn email_of(row: &Row, i: usize) -> Result<Option<Email>> {
    read(row.try_get::<_, Option<String>>(i))?
        .map(|e| Email::parse(&e))
        .transpose()
        .map_err(|e| corrupt("email", e))
}

fn account(row: &Row) -> Result<Account> {
    Ok(Account {
        id: read(row.try_get(0))?,
        person: read(row.try_get(1))?,
        email: email_of(row, 2)?,
        email_verified: read(row.try_get(3))?,
        secondary_email: email_of(row, 4)?,
        role: role_of(row, 5)?,
        created: read(row.try_get(6))?,
    })
}

fn token(row: &Row) -> Result<TokenInfo> {
    Ok(TokenInfo {
        id: read(row.try_get(0))?,
        account: read(row.try_get(1))?,
        name: read(row.try_get(2))?,
        role: role_of(row, 3)?,
        scopes: scopes_of(&read(row.try_get::<_, String>(4))?).map_err(|e| corrupt("scopes", e))?,
        person: read(row.try_get(5))?,
        created: read(row.try_get(6))?,
        expires: read(row.try_get(7))?,
        revoked: read(row.try_get(8))?,
        last_used: read(row.try_get(9))?,
    })
}

fn hash(secret: &TokenSecret, kind: TokenKind) -> Vec<u8> {
    secret.hash(kind).as_bytes().to_vec()
}

impl PostgresAccountStore {
    /// Runs a write once (an answer lost on the way may hide a write that happened: a retry
    /// would insert twice or report a revocation as none); a unique index's refusal is a
    /// [`Error::Conflict`].
    async fn write(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let attempt = async {
            let client = self.pg.client().await?;
            let statement = client.prepare_cached(sql).await?;
            Ok::<_, DbError>(client.query(&statement, params).await?)
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

    async fn account_where(
        &self,
        filter: &str,
        param: &(dyn ToSql + Sync),
    ) -> Result<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM account {filter}");
        self.pg
            .query(&sql, &[param])
            .await?
            .first()
            .map(account)
            .transpose()
    }
}

#[async_trait]
impl AccountStore for PostgresAccountStore {
    async fn create_account(&self, new: NewAccount, now: DateTime<Utc>) -> Result<Account> {
        let created = truncate_to_micros(now);
        let email = new.email.as_ref().map(Email::as_str);
        let email_key = new.email.as_ref().map(Email::key);
        let secondary = new.secondary_email.as_ref().map(Email::as_str);
        let rows = self
            .write(
                "INSERT INTO account
                   (person_id, email, email_key, email_verified, secondary_email, role,
                    created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 RETURNING id",
                &[
                    &new.person,
                    &email,
                    &email_key,
                    &new.email_verified,
                    &secondary,
                    &new.role.as_str(),
                    &created,
                ],
            )
            .await?;
        let id: AccountId = rows
            .first()
            .map(|r| read(r.try_get(0)))
            .transpose()?
            .ok_or_else(|| corrupt("insert", "no id returned"))?;
        Ok(Account {
            id,
            person: new.person,
            email: new.email,
            email_verified: new.email_verified,
            secondary_email: new.secondary_email,
            role: new.role,
            created,
        })
    }

    async fn account(&self, id: AccountId) -> Result<Option<Account>> {
        self.account_where("WHERE id = $1", &id).await
    }

    async fn account_by_email(&self, email: &Email) -> Result<Option<Account>> {
        self.account_where("WHERE email_key = $1", &email.key())
            .await
    }

    async fn account_by_person(&self, person: PersonId) -> Result<Option<Account>> {
        self.account_where("WHERE person_id = $1", &person).await
    }

    async fn bootstrap_account(&self, role: Role) -> Result<Option<Account>> {
        self.account_where(
            "WHERE role = $1 AND person_id IS NULL AND email_key IS NULL ORDER BY id LIMIT 1",
            &role.as_str(),
        )
        .await
    }

    async fn accounts(&self, after: Option<AccountId>, limit: usize) -> Result<Vec<Account>> {
        let sql =
            format!("SELECT {ACCOUNT_COLUMNS} FROM account WHERE id > $1 ORDER BY id LIMIT $2");
        let after = after.unwrap_or(i64::MIN);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.pg
            .query(&sql, &[&after, &limit])
            .await?
            .iter()
            .map(account)
            .collect()
    }

    async fn count_admins(&self) -> Result<u64> {
        let rows = self
            .pg
            .query("SELECT count(*) FROM account WHERE role = 'admin'", &[])
            .await?;
        let n: i64 = rows
            .first()
            .map(|r| read(r.try_get(0)))
            .transpose()?
            .unwrap_or(0);
        Ok(n.max(0) as u64)
    }

    async fn create_token(&self, new: NewToken, now: DateTime<Utc>) -> Result<Issued<TokenInfo>> {
        let secret = TokenSecret::generate()?;
        let created = truncate_to_micros(now);
        let expires = new.expires.map(truncate_to_micros);
        let rows = self
            .write(
                "INSERT INTO account_token
                   (account_id, hash, name, role, scopes, person_id, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 RETURNING id",
                &[
                    &new.account,
                    &hash(&secret, TokenKind::Api),
                    &new.name,
                    &new.role.as_str(),
                    &new.scopes.to_string(),
                    &new.person,
                    &created,
                    &expires,
                ],
            )
            .await?;
        let id: TokenId = rows
            .first()
            .map(|r| read(r.try_get(0)))
            .transpose()?
            .ok_or_else(|| corrupt("insert", "no id returned"))?;
        Ok(Issued {
            item: TokenInfo {
                id,
                account: new.account,
                name: new.name,
                role: new.role,
                scopes: new.scopes,
                person: new.person,
                created,
                expires,
                revoked: None,
                last_used: None,
            },
            secret,
        })
    }

    async fn verify_token(
        &self,
        secret: &TokenSecret,
        now: DateTime<Utc>,
    ) -> Result<Option<Principal>> {
        let now = truncate_to_micros(now);
        let rows = self
            .pg
            .query(
                "SELECT t.id, t.account_id, COALESCE(t.person_id, a.person_id), t.role,
                        t.scopes, t.last_used_at
                 FROM account_token t JOIN account a ON a.id = t.account_id
                 WHERE t.hash = $1 AND t.revoked_at IS NULL
                   AND (t.expires_at IS NULL OR t.expires_at > $2)",
                &[&hash(secret, TokenKind::Api), &now],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let id: TokenId = read(row.try_get(0))?;
        let role = role_of(row, 3)?;
        let scopes =
            scopes_of(&read(row.try_get::<_, String>(4))?).map_err(|e| corrupt("scopes", e))?;
        let last_used: Option<DateTime<Utc>> = read(row.try_get(5))?;
        if last_used.is_none_or(|t| now - t >= LAST_USED_STEP) {
            // Idempotent: a retry writes the same time.
            self.pg
                .query(
                    "UPDATE account_token SET last_used_at = $2 WHERE id = $1",
                    &[&id, &now],
                )
                .await?;
        }
        Ok(Some(Principal {
            account: read(row.try_get(1))?,
            person: read(row.try_get(2))?,
            role,
            scopes: scopes.and(role.scopes()),
        }))
    }

    async fn token(&self, id: TokenId) -> Result<Option<TokenInfo>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM account_token WHERE id = $1");
        self.pg
            .query(&sql, &[&id])
            .await?
            .first()
            .map(token)
            .transpose()
    }

    async fn tokens(&self, account: AccountId) -> Result<Vec<TokenInfo>> {
        let sql =
            format!("SELECT {TOKEN_COLUMNS} FROM account_token WHERE account_id = $1 ORDER BY id");
        self.pg
            .query(&sql, &[&account])
            .await?
            .iter()
            .map(token)
            .collect()
    }

    async fn revoke_token(&self, id: TokenId, now: DateTime<Utc>) -> Result<bool> {
        let rows = self
            .write(
                "UPDATE account_token SET revoked_at = $2
                 WHERE id = $1 AND revoked_at IS NULL
                 RETURNING id",
                &[&id, &truncate_to_micros(now)],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn revoke_all(&self, account: AccountId, now: DateTime<Utc>) -> Result<Revoked> {
        let now = truncate_to_micros(now);
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
                &[&account, &now],
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

    async fn create_session(
        &self,
        account: AccountId,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<TokenSecret> {
        let secret = TokenSecret::generate()?;
        self.write(
            "INSERT INTO account_session (hash, account_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
            &[
                &hash(&secret, TokenKind::Session),
                &account,
                &truncate_to_micros(now),
                &truncate_to_micros(expires),
            ],
        )
        .await?;
        Ok(secret)
    }

    async fn verify_session(
        &self,
        secret: &TokenSecret,
        now: DateTime<Utc>,
    ) -> Result<Option<Principal>> {
        let rows = self
            .pg
            .query(
                "SELECT a.id, a.person_id, a.role
                 FROM account_session s JOIN account a ON a.id = s.account_id
                 WHERE s.hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
                &[&hash(secret, TokenKind::Session), &truncate_to_micros(now)],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let role = role_of(row, 2)?;
        Ok(Some(Principal {
            account: read(row.try_get(0))?,
            person: read(row.try_get(1))?,
            role,
            scopes: role.scopes(),
        }))
    }

    async fn revoke_session(&self, secret: &TokenSecret, now: DateTime<Utc>) -> Result<bool> {
        let rows = self
            .write(
                "UPDATE account_session SET revoked_at = $2
                 WHERE hash = $1 AND revoked_at IS NULL
                 RETURNING 1",
                &[&hash(secret, TokenKind::Session), &truncate_to_micros(now)],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn create_sign_in_link(
        &self,
        link: SignInLink,
        now: DateTime<Utc>,
    ) -> Result<TokenSecret> {
        let secret = TokenSecret::generate()?;
        self.write(
            "INSERT INTO sign_in_link (hash, email, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
            &[
                &hash(&secret, TokenKind::SignInLink),
                &link.email.as_str(),
                &truncate_to_micros(now),
                &truncate_to_micros(link.expires),
            ],
        )
        .await?;
        Ok(secret)
    }

    async fn consume_sign_in_link(
        &self,
        secret: &TokenSecret,
        now: DateTime<Utc>,
    ) -> Result<Option<Email>> {
        // One statement: the row lock orders two racing uses, and the second finds it used.
        let rows = self
            .write(
                "UPDATE sign_in_link SET used_at = $2
                 WHERE hash = $1 AND used_at IS NULL AND expires_at > $2
                 RETURNING email",
                &[
                    &hash(secret, TokenKind::SignInLink),
                    &truncate_to_micros(now),
                ],
            )
            .await?;
        rows.first()
            .map(|r| email_of(r, 0))
            .transpose()
            .map(Option::flatten)
    }

    async fn ping(&self) -> Result<()> {
        self.pg.ping().await
    }
}

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
use crate::accounts::{
    conflict, scopes_of, select_accounts, select_tokens, stored_account, stored_token,
    CONSUME_SIGN_IN_LINK, COUNT_ADMINS, INSERT_ACCOUNT, INSERT_SESSION, INSERT_SIGN_IN_LINK,
    INSERT_TOKEN, LAST_USED_STEP, TOUCH_TOKEN, VERIFY_SESSION, VERIFY_TOKEN,
};
use crate::sql_limit;

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
        self.pg
            .query(&select_accounts(filter), &[param])
            .await?
            .first()
            .map(account)
            .transpose()
    }

    /// A new secret of `kind`, stored by `insert` as its hash, `owner`, now and `expires`.
    async fn issue_secret(
        &self,
        kind: TokenKind,
        insert: &str,
        owner: &(dyn ToSql + Sync),
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<TokenSecret> {
        let secret = TokenSecret::generate()?;
        self.write(
            insert,
            &[
                &hash(&secret, kind),
                owner,
                &truncate_to_micros(now),
                &truncate_to_micros(expires),
            ],
        )
        .await?;
        Ok(secret)
    }

    /// Runs `update` (`SET revoked_at = $2 WHERE <key> = $1 AND revoked_at IS NULL
    /// RETURNING ...`): whether it revoked anything.
    async fn revoke(
        &self,
        update: &str,
        key: &(dyn ToSql + Sync),
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let rows = self.write(update, &[key, &truncate_to_micros(now)]).await?;
        Ok(!rows.is_empty())
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
                INSERT_ACCOUNT,
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
        Ok(stored_account(new, id, created))
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
        let sql = select_accounts("WHERE id > $1 ORDER BY id LIMIT $2");
        self.pg
            .query(&sql, &[&after.unwrap_or(i64::MIN), &sql_limit(limit)])
            .await?
            .iter()
            .map(account)
            .collect()
    }

    async fn count_admins(&self) -> Result<u64> {
        let rows = self.pg.query(COUNT_ADMINS, &[]).await?;
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
        let rows = self
            .write(
                INSERT_TOKEN,
                &[
                    &new.account,
                    &hash(&secret, TokenKind::Api),
                    &new.name,
                    &new.role.as_str(),
                    &new.scopes.to_string(),
                    &new.person,
                    &created,
                    &new.expires.map(truncate_to_micros),
                ],
            )
            .await?;
        let id: TokenId = rows
            .first()
            .map(|r| read(r.try_get(0)))
            .transpose()?
            .ok_or_else(|| corrupt("insert", "no id returned"))?;
        Ok(Issued {
            item: stored_token(new, id, created),
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
            .query(VERIFY_TOKEN, &[&hash(secret, TokenKind::Api), &now])
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
            self.pg.query(TOUCH_TOKEN, &[&id, &now]).await?;
        }
        Ok(Some(Principal {
            account: read(row.try_get(1))?,
            person: read(row.try_get(2))?,
            role,
            scopes: scopes.and(role.scopes()),
        }))
    }

    async fn token(&self, id: TokenId) -> Result<Option<TokenInfo>> {
        self.pg
            .query(&select_tokens("WHERE id = $1"), &[&id])
            .await?
            .first()
            .map(token)
            .transpose()
    }

    async fn tokens(&self, account: AccountId) -> Result<Vec<TokenInfo>> {
        let sql = select_tokens("WHERE account_id = $1 ORDER BY id");
        self.pg
            .query(&sql, &[&account])
            .await?
            .iter()
            .map(token)
            .collect()
    }

    async fn revoke_token(&self, id: TokenId, now: DateTime<Utc>) -> Result<bool> {
        self.revoke(
            "UPDATE account_token SET revoked_at = $2
             WHERE id = $1 AND revoked_at IS NULL
             RETURNING id",
            &id,
            now,
        )
        .await
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
        self.issue_secret(TokenKind::Session, INSERT_SESSION, &account, expires, now)
            .await
    }

    async fn verify_session(
        &self,
        secret: &TokenSecret,
        now: DateTime<Utc>,
    ) -> Result<Option<Principal>> {
        let rows = self
            .pg
            .query(
                VERIFY_SESSION,
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
        self.revoke(
            "UPDATE account_session SET revoked_at = $2
             WHERE hash = $1 AND revoked_at IS NULL
             RETURNING 1",
            &hash(secret, TokenKind::Session),
            now,
        )
        .await
    }

    async fn create_sign_in_link(
        &self,
        link: SignInLink,
        now: DateTime<Utc>,
    ) -> Result<TokenSecret> {
        self.issue_secret(
            TokenKind::SignInLink,
            INSERT_SIGN_IN_LINK,
            &link.email.as_str(),
            link.expires,
            now,
        )
        .await
    }

    async fn consume_sign_in_link(
        &self,
        secret: &TokenSecret,
        now: DateTime<Utc>,
    ) -> Result<Option<Email>> {
        // One statement: the row lock orders two racing uses, and the second finds it used.
        let rows = self
            .write(
                CONSUME_SIGN_IN_LINK,
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

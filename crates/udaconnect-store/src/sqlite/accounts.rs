use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::Type;
use rusqlite::{params, OptionalExtension, Row};
use udaconnect_core::auth::{
    Account, AccountId, Email, Issued, NewAccount, NewToken, Principal, Revoked, Role, SignInLink,
    TokenId, TokenInfo, TokenKind, TokenSecret,
};
use udaconnect_core::model::PersonId;
use udaconnect_core::ports::AccountStore;
use udaconnect_core::time::{from_micros, to_micros, truncate_to_micros};
use udaconnect_core::Result;

use super::Db;
use crate::accounts::{conflict, scopes_of, LAST_USED_STEP};

const SCHEMA: &str = include_str!("../../migrations/sqlite/accounts.sql");
const ACCOUNT_COLUMNS: &str =
    "id, person_id, email, email_verified, secondary_email, role, created_at";
const TOKEN_COLUMNS: &str = "id, account_id, name, role, scopes, person_id, created_at, \
                             expires_at, revoked_at, last_used_at";

/// Accounts and credentials in their own SQLite file, which deletes by overwriting (see the
/// schema).
#[derive(Clone)]
pub struct SqliteAccountStore {
    db: Db,
}

impl SqliteAccountStore {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(SqliteAccountStore {
            db: Db::open(path, SCHEMA)?,
        })
    }
}

/// A column that holds what the schema forbids, as a read error.
fn corrupt(column: usize, why: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, Type::Text, why.into())
}

fn role_at(row: &Row<'_>, i: usize) -> rusqlite::Result<Role> {
    row.get::<_, String>(i)?.parse().map_err(|e| corrupt(i, e))
}

fn email_at(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<Email>> {
    row.get::<_, Option<String>>(i)?
        .map(|e| Email::parse(&e).map_err(|e| corrupt(i, e.to_string())))
        .transpose()
}

fn time_at(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    Ok(row.get::<_, Option<i64>>(i)?.map(from_micros))
}

fn account(row: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: row.get(0)?,
        person: row.get(1)?,
        email: email_at(row, 2)?,
        email_verified: row.get(3)?,
        secondary_email: email_at(row, 4)?,
        role: role_at(row, 5)?,
        created: from_micros(row.get(6)?),
    })
}

fn token(row: &Row<'_>) -> rusqlite::Result<TokenInfo> {
    Ok(TokenInfo {
        id: row.get(0)?,
        account: row.get(1)?,
        name: row.get(2)?,
        role: role_at(row, 3)?,
        scopes: scopes_of(&row.get::<_, String>(4)?).map_err(|e| corrupt(4, e))?,
        person: row.get(5)?,
        created: from_micros(row.get(6)?),
        expires: time_at(row, 7)?,
        revoked: time_at(row, 8)?,
        last_used: time_at(row, 9)?,
    })
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

fn hash(secret: &TokenSecret, kind: TokenKind) -> Vec<u8> {
    secret.hash(kind).as_bytes().to_vec()
}

impl SqliteAccountStore {
    async fn account_where(
        &self,
        filter: &'static str,
        param: rusqlite::types::Value,
    ) -> Result<Option<Account>> {
        self.db
            .read(move |c| {
                c.prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} FROM account {filter}"))?
                    .query_row([param], account)
                    .optional()
            })
            .await
    }
}

#[async_trait]
impl AccountStore for SqliteAccountStore {
    async fn create_account(&self, new: NewAccount, now: DateTime<Utc>) -> Result<Account> {
        let created = to_micros(now);
        self.db
            .write(move |c| {
                let result = c.query_row(
                    "INSERT INTO account
                       (person_id, email, email_key, email_verified, secondary_email, role,
                        created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     RETURNING id",
                    params![
                        new.person,
                        new.email.as_ref().map(Email::as_str),
                        new.email.as_ref().map(Email::key),
                        new.email_verified,
                        new.secondary_email.as_ref().map(Email::as_str),
                        new.role.as_str(),
                        created
                    ],
                    |r| r.get::<_, AccountId>(0),
                );
                match result {
                    Ok(id) => Ok(Ok(Account {
                        id,
                        person: new.person,
                        email: new.email,
                        email_verified: new.email_verified,
                        secondary_email: new.secondary_email,
                        role: new.role,
                        created: from_micros(created),
                    })),
                    Err(e) => match unique_violation(&e) {
                        Some(which) => Ok(Err(conflict(which))),
                        None => Err(e),
                    },
                }
            })
            .await?
    }

    async fn account(&self, id: AccountId) -> Result<Option<Account>> {
        self.account_where("WHERE id = ?1", id.into()).await
    }

    async fn account_by_email(&self, email: &Email) -> Result<Option<Account>> {
        self.account_where("WHERE email_key = ?1", email.key().into())
            .await
    }

    async fn account_by_person(&self, person: PersonId) -> Result<Option<Account>> {
        self.account_where("WHERE person_id = ?1", person.into())
            .await
    }

    async fn bootstrap_account(&self, role: Role) -> Result<Option<Account>> {
        self.account_where(
            "WHERE role = ?1 AND person_id IS NULL AND email_key IS NULL ORDER BY id LIMIT 1",
            role.as_str().to_string().into(),
        )
        .await
    }

    async fn accounts(&self, after: Option<AccountId>, limit: usize) -> Result<Vec<Account>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM account WHERE id > ?1 ORDER BY id LIMIT ?2"
                ))?
                .query_map(params![after.unwrap_or(i64::MIN), limit], account)?
                .collect()
            })
            .await
    }

    async fn count_admins(&self) -> Result<u64> {
        let n: i64 = self
            .db
            .read(|c| {
                c.query_row(
                    "SELECT count(*) FROM account WHERE role = 'admin'",
                    [],
                    |r| r.get(0),
                )
            })
            .await?;
        Ok(n.max(0) as u64)
    }

    async fn create_token(&self, new: NewToken, now: DateTime<Utc>) -> Result<Issued<TokenInfo>> {
        let secret = TokenSecret::generate()?;
        let hash = hash(&secret, TokenKind::Api);
        let created = to_micros(now);
        // As stored: whole microseconds.
        let expires = new.expires.map(truncate_to_micros);
        let info = self
            .db
            .write(move |c| {
                let id = c.query_row(
                    "INSERT INTO account_token
                       (account_id, hash, name, role, scopes, person_id, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     RETURNING id",
                    params![
                        new.account,
                        hash,
                        new.name,
                        new.role.as_str(),
                        new.scopes.to_string(),
                        new.person,
                        created,
                        expires.map(to_micros)
                    ],
                    |r| r.get::<_, TokenId>(0),
                )?;
                Ok(TokenInfo {
                    id,
                    account: new.account,
                    name: new.name,
                    role: new.role,
                    scopes: new.scopes,
                    person: new.person,
                    created: from_micros(created),
                    expires,
                    revoked: None,
                    last_used: None,
                })
            })
            .await?;
        Ok(Issued { item: info, secret })
    }

    async fn verify_token(
        &self,
        secret: &TokenSecret,
        now: DateTime<Utc>,
    ) -> Result<Option<Principal>> {
        let hash = hash(secret, TokenKind::Api);
        let at = to_micros(now);
        let found = self
            .db
            .read(move |c| {
                c.prepare_cached(
                    "SELECT t.id, t.account_id, COALESCE(t.person_id, a.person_id), t.role,
                            t.scopes, t.last_used_at
                     FROM account_token t JOIN account a ON a.id = t.account_id
                     WHERE t.hash = ?1 AND t.revoked_at IS NULL
                       AND (t.expires_at IS NULL OR t.expires_at > ?2)",
                )?
                .query_row(params![hash, at], |r| {
                    let role = role_at(r, 3)?;
                    let scopes = scopes_of(&r.get::<_, String>(4)?).map_err(|e| corrupt(4, e))?;
                    Ok((
                        r.get::<_, TokenId>(0)?,
                        Principal {
                            account: r.get(1)?,
                            person: r.get(2)?,
                            role,
                            scopes: scopes.and(role.scopes()),
                        },
                        r.get::<_, Option<i64>>(5)?,
                    ))
                })
                .optional()
            })
            .await?;
        let Some((id, principal, last_used)) = found else {
            return Ok(None);
        };
        if last_used.is_none_or(|t| at - t >= LAST_USED_STEP.num_microseconds().unwrap_or(0)) {
            self.db
                .write(move |c| {
                    c.prepare_cached("UPDATE account_token SET last_used_at = ?2 WHERE id = ?1")?
                        .execute(params![id, at])
                })
                .await?;
        }
        Ok(Some(principal))
    }

    async fn token(&self, id: TokenId) -> Result<Option<TokenInfo>> {
        self.db
            .row_by_id(
                format!("SELECT {TOKEN_COLUMNS} FROM account_token WHERE id = ?1"),
                id,
                token,
            )
            .await
    }

    async fn tokens(&self, account: AccountId) -> Result<Vec<TokenInfo>> {
        self.db
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM account_token WHERE account_id = ?1 ORDER BY id"
                ))?
                .query_map([account], token)?
                .collect()
            })
            .await
    }

    async fn revoke_token(&self, id: TokenId, now: DateTime<Utc>) -> Result<bool> {
        let at = to_micros(now);
        self.db
            .write(move |c| {
                c.execute(
                    "UPDATE account_token SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                    params![id, at],
                )
            })
            .await
            .map(|n| n > 0)
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

    async fn create_session(
        &self,
        account: AccountId,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<TokenSecret> {
        let secret = TokenSecret::generate()?;
        let hash = hash(&secret, TokenKind::Session);
        let (created, expires) = (to_micros(now), to_micros(expires));
        self.db
            .write(move |c| {
                c.execute(
                    "INSERT INTO account_session (hash, account_id, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![hash, account, created, expires],
                )
            })
            .await?;
        Ok(secret)
    }

    async fn verify_session(
        &self,
        secret: &TokenSecret,
        now: DateTime<Utc>,
    ) -> Result<Option<Principal>> {
        let hash = hash(secret, TokenKind::Session);
        let at = to_micros(now);
        self.db
            .read(move |c| {
                c.prepare_cached(
                    "SELECT a.id, a.person_id, a.role
                     FROM account_session s JOIN account a ON a.id = s.account_id
                     WHERE s.hash = ?1 AND s.revoked_at IS NULL AND s.expires_at > ?2",
                )?
                .query_row(params![hash, at], |r| {
                    let role = role_at(r, 2)?;
                    Ok(Principal {
                        account: r.get(0)?,
                        person: r.get(1)?,
                        role,
                        scopes: role.scopes(),
                    })
                })
                .optional()
            })
            .await
    }

    async fn revoke_session(&self, secret: &TokenSecret, now: DateTime<Utc>) -> Result<bool> {
        let hash = hash(secret, TokenKind::Session);
        let at = to_micros(now);
        self.db
            .write(move |c| {
                c.execute(
                    "UPDATE account_session SET revoked_at = ?2
                     WHERE hash = ?1 AND revoked_at IS NULL",
                    params![hash, at],
                )
            })
            .await
            .map(|n| n > 0)
    }

    async fn create_sign_in_link(
        &self,
        link: SignInLink,
        now: DateTime<Utc>,
    ) -> Result<TokenSecret> {
        let secret = TokenSecret::generate()?;
        let hash = hash(&secret, TokenKind::SignInLink);
        let (created, expires) = (to_micros(now), to_micros(link.expires));
        self.db
            .write(move |c| {
                c.execute(
                    "INSERT INTO sign_in_link (hash, email, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![hash, link.email.as_str(), created, expires],
                )
            })
            .await?;
        Ok(secret)
    }

    async fn consume_sign_in_link(
        &self,
        secret: &TokenSecret,
        now: DateTime<Utc>,
    ) -> Result<Option<Email>> {
        let hash = hash(secret, TokenKind::SignInLink);
        let at = to_micros(now);
        // One statement on the one writer: the check and the use cannot be split by another.
        self.db
            .write(move |c| {
                c.query_row(
                    "UPDATE sign_in_link SET used_at = ?2
                     WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?2
                     RETURNING email",
                    params![hash, at],
                    |r| email_at(r, 0),
                )
                .optional()
                .map(Option::flatten)
            })
            .await
    }

    async fn ping(&self) -> Result<()> {
        self.db.ping().await
    }
}

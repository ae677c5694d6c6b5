use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::{Type, Value};
use rusqlite::{params, OptionalExtension, Row};
use udaconnect_core::auth::{
    Account, AccountId, Email, Issued, NewAccount, NewToken, Principal, Revoked, Role, SignInLink,
    TokenId, TokenInfo, TokenKind, TokenSecret,
};
use udaconnect_core::model::PersonId;
use udaconnect_core::ports::AccountStore;
use udaconnect_core::time::{from_micros, to_micros};
use udaconnect_core::Result;

use super::Db;
use crate::accounts::{
    conflict, scopes_of, select_accounts, select_tokens, stored_account, stored_token,
    CONSUME_SIGN_IN_LINK, COUNT_ADMINS, INSERT_ACCOUNT, INSERT_SESSION, INSERT_SIGN_IN_LINK,
    INSERT_TOKEN, LAST_USED_STEP, TOUCH_TOKEN, VERIFY_SESSION, VERIFY_TOKEN,
};
use crate::sql_limit;

const SCHEMA: &str = include_str!("../../migrations/sqlite/accounts.sql");

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

/// A shared statement (see `crate::accounts`) in SQLite's numbered placeholders: `$n` as `?n`.
fn sqlite(sql: &str) -> String {
    sql.replace('$', "?")
}

impl SqliteAccountStore {
    async fn account_where(&self, filter: &'static str, param: Value) -> Result<Option<Account>> {
        self.db
            .read(move |c| {
                c.prepare_cached(&select_accounts(filter))?
                    .query_row([param], account)
                    .optional()
            })
            .await
    }

    /// A new secret of `kind`, stored by `insert` as its hash, `owner`, now and `expires`.
    async fn issue_secret(
        &self,
        kind: TokenKind,
        insert: &'static str,
        owner: Value,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<TokenSecret> {
        let secret = TokenSecret::generate()?;
        let hash = hash(&secret, kind);
        let (created, expires) = (to_micros(now), to_micros(expires));
        self.db
            .write(move |c| {
                c.prepare_cached(&sqlite(insert))?
                    .execute(params![hash, owner, created, expires])
            })
            .await?;
        Ok(secret)
    }

    /// Runs `update` (`SET revoked_at = ?2 WHERE <key> = ?1 AND revoked_at IS NULL`): whether
    /// it revoked anything.
    async fn revoke(&self, update: &'static str, key: Value, now: DateTime<Utc>) -> Result<bool> {
        let at = to_micros(now);
        self.db
            .write(move |c| c.execute(update, params![key, at]))
            .await
            .map(|n| n > 0)
    }
}

#[async_trait]
impl AccountStore for SqliteAccountStore {
    async fn create_account(&self, new: NewAccount, now: DateTime<Utc>) -> Result<Account> {
        let created = to_micros(now);
        self.db
            .write(move |c| {
                let result = c.query_row(
                    &sqlite(INSERT_ACCOUNT),
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
                    Ok(id) => Ok(Ok(stored_account(new, id, from_micros(created)))),
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
        self.db
            .read(move |c| {
                c.prepare_cached(&select_accounts("WHERE id > ?1 ORDER BY id LIMIT ?2"))?
                    .query_map(
                        params![after.unwrap_or(i64::MIN), sql_limit(limit)],
                        account,
                    )?
                    .collect()
            })
            .await
    }

    async fn count_admins(&self) -> Result<u64> {
        let n: i64 = self
            .db
            .read(|c| c.query_row(COUNT_ADMINS, [], |r| r.get(0)))
            .await?;
        Ok(n.max(0) as u64)
    }

    async fn create_token(&self, new: NewToken, now: DateTime<Utc>) -> Result<Issued<TokenInfo>> {
        let secret = TokenSecret::generate()?;
        let hash = hash(&secret, TokenKind::Api);
        let created = to_micros(now);
        let info = self
            .db
            .write(move |c| {
                let id = c.query_row(
                    &sqlite(INSERT_TOKEN),
                    params![
                        new.account,
                        hash,
                        new.name,
                        new.role.as_str(),
                        new.scopes.to_string(),
                        new.person,
                        created,
                        new.expires.map(to_micros)
                    ],
                    |r| r.get::<_, TokenId>(0),
                )?;
                Ok(stored_token(new, id, from_micros(created)))
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
                c.prepare_cached(&sqlite(VERIFY_TOKEN))?
                    .query_row(params![hash, at], |r| {
                        let role = role_at(r, 3)?;
                        let scopes =
                            scopes_of(&r.get::<_, String>(4)?).map_err(|e| corrupt(4, e))?;
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
                    c.prepare_cached(&sqlite(TOUCH_TOKEN))?
                        .execute(params![id, at])
                })
                .await?;
        }
        Ok(Some(principal))
    }

    async fn token(&self, id: TokenId) -> Result<Option<TokenInfo>> {
        self.db
            .row_by_id(select_tokens("WHERE id = ?1"), id, token)
            .await
    }

    async fn tokens(&self, account: AccountId) -> Result<Vec<TokenInfo>> {
        self.db
            .read(move |c| {
                c.prepare_cached(&select_tokens("WHERE account_id = ?1 ORDER BY id"))?
                    .query_map([account], token)?
                    .collect()
            })
            .await
    }

    async fn revoke_token(&self, id: TokenId, now: DateTime<Utc>) -> Result<bool> {
        self.revoke(
            "UPDATE account_token SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            id.into(),
            now,
        )
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

    async fn create_session(
        &self,
        account: AccountId,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<TokenSecret> {
        self.issue_secret(
            TokenKind::Session,
            INSERT_SESSION,
            account.into(),
            expires,
            now,
        )
        .await
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
                c.prepare_cached(&sqlite(VERIFY_SESSION))?
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
        self.revoke(
            "UPDATE account_session SET revoked_at = ?2 WHERE hash = ?1 AND revoked_at IS NULL",
            hash(secret, TokenKind::Session).into(),
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
            link.email.as_str().to_string().into(),
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
        let hash = hash(secret, TokenKind::SignInLink);
        let at = to_micros(now);
        // One statement on the one writer: the check and the use cannot be split by another.
        self.db
            .write(move |c| {
                c.query_row(&sqlite(CONSUME_SIGN_IN_LINK), params![hash, at], |r| {
                    email_at(r, 0)
                })
                .optional()
                .map(Option::flatten)
            })
            .await
    }

    async fn ping(&self) -> Result<()> {
        self.db.ping().await
    }
}

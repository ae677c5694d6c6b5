//! What both account stores share: the statements they run, how scopes are written, how often
//! a token's use is recorded, which clash a unique index reports, and what a new account or
//! token is once stored.
//!
//! The two schemas (`migrations/postgres/0007_accounts.sql`, `migrations/sqlite/accounts.sql`)
//! name tables and columns alike, so each statement is written once, in PostgreSQL's `$n`
//! placeholders; the SQLite store reads them as `?n`.

use chrono::{DateTime, TimeDelta, Utc};
use udaconnect_core::auth::{Account, AccountId, NewAccount, NewToken, Scopes, TokenId, TokenInfo};
use udaconnect_core::time::truncate_to_micros;
use udaconnect_core::Error;

/// A token's last use is written again only once this much time has passed since the one
/// recorded: a token in steady use costs a read per request, not a write.
pub(crate) const LAST_USED_STEP: TimeDelta = TimeDelta::minutes(1);

/// Read by both stores' row readers in this order.
pub(crate) const ACCOUNT_COLUMNS: &str =
    "id, person_id, email, email_verified, secondary_email, role, created_at";
pub(crate) const TOKEN_COLUMNS: &str = "id, account_id, name, role, scopes, person_id, \
                                        created_at, expires_at, revoked_at, last_used_at";

pub(crate) const INSERT_ACCOUNT: &str = "INSERT INTO account
       (person_id, email, email_key, email_verified, secondary_email, role, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     RETURNING id";
pub(crate) const COUNT_ADMINS: &str = "SELECT count(*) FROM account WHERE role = 'admin'";
pub(crate) const INSERT_TOKEN: &str = "INSERT INTO account_token
       (account_id, hash, name, role, scopes, person_id, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     RETURNING id";
/// The live token with hash `$1` at `$2`: its id, account, person (its own, else the
/// account's), role, scopes and last use.
pub(crate) const VERIFY_TOKEN: &str =
    "SELECT t.id, t.account_id, COALESCE(t.person_id, a.person_id), t.role, t.scopes,
            t.last_used_at
     FROM account_token t JOIN account a ON a.id = t.account_id
     WHERE t.hash = $1 AND t.revoked_at IS NULL
       AND (t.expires_at IS NULL OR t.expires_at > $2)";
pub(crate) const TOUCH_TOKEN: &str = "UPDATE account_token SET last_used_at = $2 WHERE id = $1";
pub(crate) const INSERT_SESSION: &str =
    "INSERT INTO account_session (hash, account_id, created_at, expires_at)
     VALUES ($1, $2, $3, $4)";
/// The account the live session with hash `$1` signs in at `$2`: id, person and role.
pub(crate) const VERIFY_SESSION: &str = "SELECT a.id, a.person_id, a.role
     FROM account_session s JOIN account a ON a.id = s.account_id
     WHERE s.hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2";
pub(crate) const INSERT_SIGN_IN_LINK: &str =
    "INSERT INTO sign_in_link (hash, email, created_at, expires_at) VALUES ($1, $2, $3, $4)";
/// Uses up the link with hash `$1` at `$2` in one statement, so of two racing uses one finds
/// it used.
pub(crate) const CONSUME_SIGN_IN_LINK: &str = "UPDATE sign_in_link SET used_at = $2
     WHERE hash = $1 AND used_at IS NULL AND expires_at > $2
     RETURNING email";

/// Accounts matching `filter` (a `WHERE` clause, and maybe an order and a limit).
pub(crate) fn select_accounts(filter: &str) -> String {
    format!("SELECT {ACCOUNT_COLUMNS} FROM account {filter}")
}

/// Tokens matching `filter` (a `WHERE` clause, and maybe an order).
pub(crate) fn select_tokens(filter: &str) -> String {
    format!("SELECT {TOKEN_COLUMNS} FROM account_token {filter}")
}

/// Scopes as stored: their names joined by commas.
pub(crate) fn scopes_of(stored: &str) -> Result<Scopes, String> {
    stored.parse()
}

/// The account `new` is once stored as `id` at `created`.
pub(crate) fn stored_account(new: NewAccount, id: AccountId, created: DateTime<Utc>) -> Account {
    Account {
        id,
        person: new.person,
        email: new.email,
        email_verified: new.email_verified,
        secondary_email: new.secondary_email,
        role: new.role,
        created,
    }
}

/// The token `new` is once stored as `id` at `created`, its expiry as stored (whole
/// microseconds).
pub(crate) fn stored_token(new: NewToken, id: TokenId, created: DateTime<Utc>) -> TokenInfo {
    TokenInfo {
        id,
        account: new.account,
        name: new.name,
        role: new.role,
        scopes: new.scopes,
        person: new.person,
        created,
        expires: new.expires.map(truncate_to_micros),
        revoked: None,
        last_used: None,
    }
}

/// A unique index's refusal (its message or constraint name names the column) as the clash
/// it means.
pub(crate) fn conflict(which: &str) -> Error {
    if which.contains("email") {
        Error::Conflict("an account with this e-mail address exists".into())
    } else if which.contains("person") {
        Error::Conflict("this person has an account already".into())
    } else {
        Error::Conflict(format!("account store: {which}"))
    }
}

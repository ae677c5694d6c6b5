//! The account store, written once over the two engines: [`Accounts`] holds the rules
//! (secrets issued and hashed, a token's use recorded once a minute, what a new account or
//! token is once stored), an [`AccountDb`] runs the statements on SQLite or PostgreSQL.
//!
//! The two schemas (`migrations/postgres/0007_accounts.sql`, `migrations/sqlite/accounts.sql`)
//! name tables and columns alike, so each statement is written once, in PostgreSQL's `$n`
//! placeholders; the SQLite engine reads them as `?n`.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use udaconnect_core::audit::AuditEntry;
use udaconnect_core::auth::{
    Account, AccountId, Email, EmailChange, Issued, NewAccount, NewSession, NewToken, Principal,
    Revoked, Role, Scopes, SessionId, SessionInfo, SignInLink, TokenId, TokenInfo, TokenKind,
    TokenSecret,
};
use udaconnect_core::consent::{Choice, ContactChoices, Shown};
use udaconnect_core::model::PersonId;
use udaconnect_core::ports::AccountStore;
use udaconnect_core::time::truncate_to_micros;
use udaconnect_core::tracker::{DeviceId, DeviceInfo, IssuedDevice, NewDevice, Seen};
use udaconnect_core::{Error, Result};

use crate::rows::FromRow;
use crate::sql_limit;

/// A value bound to an account statement; each engine binds it as its column type (times:
/// whole microseconds either way).
#[derive(Debug, Clone)]
pub enum Arg {
    Int(i64),
    MaybeInt(Option<i64>),
    Text(String),
    MaybeText(Option<String>),
    Flag(bool),
    Bytes(Vec<u8>),
    MaybeBytes(Option<Vec<u8>>),
    Time(DateTime<Utc>),
    MaybeTime(Option<DateTime<Utc>>),
}

/// A live credential (an API token, a browser session) as [`VERIFY_TOKEN`] and
/// [`VERIFY_SESSION`] read it.
pub struct LiveCredential {
    /// In the credential's own scopes (a session's are its role's), not yet narrowed by its
    /// role's.
    pub principal: Principal,
    pub last_used: Option<DateTime<Utc>>,
}

/// What an engine does for [`Accounts`]: runs a statement of this module with its arguments,
/// and reads the rows it answers. Writes run once: an answer lost on the way may hide a write
/// that happened, and a retry would insert twice or report a revocation as none.
#[async_trait]
pub trait AccountDb: Send + Sync + 'static {
    /// An `INSERT ... RETURNING id`; a unique index's refusal is the [`conflict`] it means.
    async fn insert(&self, sql: &'static str, args: Vec<Arg>) -> Result<i64>;
    /// A statement that answers no rows: how many it changed.
    async fn execute(&self, sql: &'static str, args: Vec<Arg>) -> Result<u64>;
    /// Runs `sql` once with each of `rows`' arguments, all in one transaction: every row is
    /// written or none, at the cost of one commit.
    async fn execute_all(&self, sql: &'static str, rows: Vec<Vec<Arg>>) -> Result<u64>;
    /// A count, as `COUNT_ADMINS`.
    async fn count(&self, sql: &'static str) -> Result<i64>;
    /// The rows `sql` answers, each read as `T` (see `crate::rows`): accounts of
    /// [`ACCOUNT_COLUMNS`], tokens of [`TOKEN_COLUMNS`], devices, sessions, contact choices,
    /// audit entries.
    async fn rows<T: FromRow>(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<T>>;
    /// Runs `crate::addresses::USE_LINK` and then the change it returns, in one transaction:
    /// the account changed, `None` when the link does not work. A refusal by the unique key
    /// (the address is another account's) is a [`conflict`], and leaves the link unused.
    async fn apply_email_change(
        &self,
        hash: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Result<Option<AccountId>>;
    /// [`CONSUME_SIGN_IN_LINK`]'s address.
    async fn consume_link(&self, hash: Vec<u8>, now: DateTime<Utc>) -> Result<Option<Email>>;
    /// Revokes every token and session of `account` together.
    async fn revoke_all(&self, account: AccountId, now: DateTime<Utc>) -> Result<Revoked>;
    /// After an account is deleted: removes what the engine keeps of the deleted rows
    /// besides the table (SQLite's write-ahead log). By default nothing.
    async fn forget_deleted(&self) -> Result<()> {
        Ok(())
    }
    async fn ping(&self) -> Result<()>;
}

/// A kind of credential: how its secret is hashed, the statement that reads it live (as
/// [`LiveCredential`]) and the one that records its use, both taking the hash as `$1` and now
/// as `$2`.
pub(crate) struct Credential {
    pub kind: TokenKind,
    pub verify: &'static str,
    pub touch: &'static str,
}

/// An account store on the engine `D`.
#[derive(Debug, Clone)]
pub struct Accounts<D>(pub(crate) D);

/// A token's last use is written again only once this much time has passed since the one
/// recorded: a token in steady use costs a read per request, not a write.
pub(crate) const LAST_USED_STEP: TimeDelta = TimeDelta::minutes(1);

/// Read by `crate::rows::account` and `crate::rows::token` in this order.
const ACCOUNT_COLUMNS: &str =
    "id, person_id, email, email_verified, secondary_email, role, created_at";
const TOKEN_COLUMNS: &str = "id, account_id, name, role, scopes, person_id, \
                                        created_at, expires_at, revoked_at, last_used_at";

const INSERT_ACCOUNT: &str = "INSERT INTO account
       (person_id, email, email_key, email_verified, secondary_email, role, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     RETURNING id";
/// Its tokens, sessions and devices go with it (`ON DELETE CASCADE`).
const DELETE_ACCOUNT: &str = "DELETE FROM account WHERE id = $1";
/// The sign-in links mailed to the account's addresses: keyed by address, not by account,
/// they would keep it after the account is gone.
const DELETE_ACCOUNT_LINKS: &str = "DELETE FROM sign_in_link WHERE EXISTS (
       SELECT 1 FROM account a WHERE a.id = $1
         AND lower(sign_in_link.email) IN (lower(a.email), lower(a.secondary_email)))";
const COUNT_ADMINS: &str = "SELECT count(*) FROM account WHERE role = 'admin'";
const INSERT_TOKEN: &str = "INSERT INTO account_token
       (account_id, hash, name, role, scopes, person_id, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     RETURNING id";
/// The live token with hash `$1` at `$2`: its account, person (its own, else the account's),
/// role, scopes and last use.
const VERIFY_TOKEN: &str =
    "SELECT t.account_id, COALESCE(t.person_id, a.person_id), t.role, t.scopes,
            t.last_used_at
     FROM account_token t JOIN account a ON a.id = t.account_id
     WHERE t.hash = $1 AND t.revoked_at IS NULL
       AND (t.expires_at IS NULL OR t.expires_at > $2)";
const API_TOKEN: Credential = Credential {
    kind: TokenKind::Api,
    verify: VERIFY_TOKEN,
    touch: TOUCH_TOKEN,
};
const REVOKE_TOKEN: &str =
    "UPDATE account_token SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
const SET_ROLE: &str = "UPDATE account SET role = $2 WHERE id = $1";
const REVOKE_SESSION: &str =
    "UPDATE account_session SET revoked_at = $2 WHERE hash = $1 AND revoked_at IS NULL";
const TOUCH_TOKEN: &str = "UPDATE account_token SET last_used_at = $2 WHERE hash = $1";
const INSERT_SIGN_IN_LINK: &str =
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
fn select_tokens(filter: &str) -> String {
    format!("SELECT {TOKEN_COLUMNS} FROM account_token {filter}")
}

/// Scopes as stored: their names joined by commas.
pub(crate) fn scopes_of(stored: &str) -> Result<Scopes, String> {
    stored.parse()
}

/// A secret as stored: its hash for its kind.
pub(crate) fn hash(secret: &TokenSecret, kind: TokenKind) -> Vec<u8> {
    secret.hash(kind).as_bytes().to_vec()
}

impl<D: AccountDb> Accounts<D> {
    /// Runs a write: whether it changed a row.
    pub(crate) async fn changed(&self, sql: &'static str, args: Vec<Arg>) -> Result<bool> {
        Ok(self.0.execute(sql, args).await? > 0)
    }

    async fn account_where(&self, filter: &str, arg: Arg) -> Result<Option<Account>> {
        let mut found = self.0.rows(&select_accounts(filter), vec![arg]).await?;
        Ok(found.pop())
    }

    /// Who the live credential `secret` signs in at `now`, in its scopes narrowed by its
    /// role's; its use recorded once a minute at most.
    pub(crate) async fn use_credential(
        &self,
        credential: Credential,
        secret: &TokenSecret,
        now: DateTime<Utc>,
    ) -> Result<Option<Principal>> {
        let now = truncate_to_micros(now);
        let args = vec![Arg::Bytes(hash(secret, credential.kind)), Arg::Time(now)];
        let found = self
            .0
            .rows::<LiveCredential>(credential.verify, args.clone());
        let Some(live) = found.await?.pop() else {
            return Ok(None);
        };
        if live.last_used.is_none_or(|t| now - t >= LAST_USED_STEP) {
            self.0.execute(credential.touch, args).await?;
        }
        let p = live.principal;
        Ok(Some(Principal {
            scopes: p.scopes.and(p.role.scopes()),
            ..p
        }))
    }

    /// A new secret of `kind`, stored by `insert` as its hash, `owner`, now and `expires`.
    async fn issue_secret(
        &self,
        kind: TokenKind,
        insert: &'static str,
        owner: Arg,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<TokenSecret> {
        let secret = TokenSecret::generate()?;
        let args = vec![
            Arg::Bytes(hash(&secret, kind)),
            owner,
            Arg::Time(now),
            Arg::Time(expires),
        ];
        self.0.execute(insert, args).await?;
        Ok(secret)
    }
}

#[async_trait]
impl<D: AccountDb> AccountStore for Accounts<D> {
    async fn create_account(&self, new: NewAccount, now: DateTime<Utc>) -> Result<Account> {
        let created = truncate_to_micros(now);
        let args = vec![
            Arg::MaybeInt(new.person),
            Arg::MaybeText(new.email.as_ref().map(|e| e.as_str().to_string())),
            Arg::MaybeText(new.email.as_ref().map(Email::key)),
            Arg::Flag(new.email_verified),
            Arg::MaybeText(new.secondary_email.as_ref().map(|e| e.as_str().to_string())),
            Arg::Text(new.role.as_str().to_string()),
            Arg::Time(created),
        ];
        let id = self.0.insert(INSERT_ACCOUNT, args).await?;
        Ok(stored_account(new, id, created))
    }

    async fn account(&self, id: AccountId) -> Result<Option<Account>> {
        self.account_where("WHERE id = $1", Arg::Int(id)).await
    }

    async fn account_by_email(&self, email: &Email) -> Result<Option<Account>> {
        let key = Arg::Text(email.key());
        self.account_where("WHERE email_key = $1", key).await
    }

    async fn account_by_person(&self, person: PersonId) -> Result<Option<Account>> {
        self.account_where("WHERE person_id = $1", Arg::Int(person))
            .await
    }

    async fn bootstrap_account(&self, role: Role) -> Result<Option<Account>> {
        self.account_where(
            "WHERE role = $1 AND person_id IS NULL AND email_key IS NULL ORDER BY id LIMIT 1",
            Arg::Text(role.as_str().to_string()),
        )
        .await
    }

    async fn accounts(&self, after: Option<AccountId>, limit: usize) -> Result<Vec<Account>> {
        let page = vec![
            Arg::Int(after.unwrap_or(i64::MIN)),
            Arg::Int(sql_limit(limit)),
        ];
        let sql = select_accounts("WHERE id > $1 ORDER BY id LIMIT $2");
        self.0.rows(&sql, page).await
    }

    async fn count_admins(&self) -> Result<u64> {
        Ok(self.0.count(COUNT_ADMINS).await?.max(0) as u64)
    }

    async fn create_token(&self, new: NewToken, now: DateTime<Utc>) -> Result<Issued<TokenInfo>> {
        let secret = TokenSecret::generate()?;
        let created = truncate_to_micros(now);
        let args = vec![
            Arg::Int(new.account),
            Arg::Bytes(hash(&secret, TokenKind::Api)),
            Arg::Text(new.name.clone()),
            Arg::Text(new.role.as_str().to_string()),
            Arg::Text(new.scopes.to_string()),
            Arg::MaybeInt(new.person),
            Arg::Time(created),
            Arg::MaybeTime(new.expires),
        ];
        let id = self.0.insert(INSERT_TOKEN, args).await?;
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
        self.use_credential(API_TOKEN, secret, now).await
    }

    async fn token(&self, id: TokenId) -> Result<Option<TokenInfo>> {
        let sql = select_tokens("WHERE id = $1");
        Ok(self.0.rows(&sql, vec![Arg::Int(id)]).await?.pop())
    }

    async fn tokens(&self, account: AccountId) -> Result<Vec<TokenInfo>> {
        let sql = select_tokens("WHERE account_id = $1 ORDER BY id");
        self.0.rows(&sql, vec![Arg::Int(account)]).await
    }

    async fn revoke_token(&self, id: TokenId, now: DateTime<Utc>) -> Result<bool> {
        let args = vec![Arg::Int(id), Arg::Time(now)];
        self.changed(REVOKE_TOKEN, args).await
    }

    async fn revoke_all(&self, account: AccountId, now: DateTime<Utc>) -> Result<Revoked> {
        self.0.revoke_all(account, truncate_to_micros(now)).await
    }

    async fn delete_account(&self, id: AccountId) -> Result<bool> {
        self.0
            .execute(DELETE_ACCOUNT_LINKS, vec![Arg::Int(id)])
            .await?;
        let deleted = self.0.execute(DELETE_ACCOUNT, vec![Arg::Int(id)]).await? > 0;
        self.0.forget_deleted().await?;
        Ok(deleted)
    }

    async fn start_session(&self, session: NewSession, now: DateTime<Utc>) -> Result<TokenSecret> {
        self.insert_session(session, now).await
    }

    async fn verify_session(
        &self,
        secret: &TokenSecret,
        now: DateTime<Utc>,
    ) -> Result<Option<Principal>> {
        self.check_session(secret, now).await
    }

    async fn sessions(
        &self,
        account: AccountId,
        current: Option<&TokenSecret>,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionInfo>> {
        self.live_sessions(account, current, now).await
    }

    async fn revoke_session_id(
        &self,
        account: AccountId,
        id: SessionId,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.end_session(account, id, now).await
    }

    async fn revoke_session(&self, secret: &TokenSecret, now: DateTime<Utc>) -> Result<bool> {
        let args = vec![Arg::Bytes(hash(secret, TokenKind::Session)), Arg::Time(now)];
        self.changed(REVOKE_SESSION, args).await
    }

    async fn create_sign_in_link(
        &self,
        link: SignInLink,
        now: DateTime<Utc>,
    ) -> Result<TokenSecret> {
        let owner = Arg::Text(link.email.as_str().to_string());
        let kind = TokenKind::SignInLink;
        self.issue_secret(kind, INSERT_SIGN_IN_LINK, owner, link.expires, now)
            .await
    }

    async fn consume_sign_in_link(
        &self,
        secret: &TokenSecret,
        now: DateTime<Utc>,
    ) -> Result<Option<Email>> {
        let hash = hash(secret, TokenKind::SignInLink);
        self.0.consume_link(hash, truncate_to_micros(now)).await
    }

    async fn request_email_change(&self, change: EmailChange, now: DateTime<Utc>) -> Result<()> {
        self.record_email_change(change, now).await
    }

    async fn issue_email_link(
        &self,
        key: &str,
        to: &Email,
        expires: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Result<Option<TokenSecret>> {
        self.email_link(key, to, expires).await
    }

    async fn confirm_email_change(
        &self,
        secret: &TokenSecret,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>> {
        self.apply_email_change(secret, now).await
    }

    async fn remove_secondary_email(&self, account: AccountId) -> Result<bool> {
        self.clear_secondary(account).await
    }

    async fn set_role(
        &self,
        account: AccountId,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>> {
        let args = vec![Arg::Int(account), Arg::Text(role.as_str().to_string())];
        if self.0.execute(SET_ROLE, args).await? == 0 {
            return Ok(None);
        }
        // A token is never above its account's role (`Account::check_grant`): those that now
        // are stop working.
        for token in self.tokens(account).await? {
            if token.revoked.is_none() && !role.may_issue(token.role) {
                self.revoke_token(token.id, now).await?;
            }
        }
        self.account(account).await
    }

    async fn create_device(&self, device: NewDevice, now: DateTime<Utc>) -> Result<IssuedDevice> {
        self.insert_device(device, now).await
    }

    async fn device(&self, id: DeviceId) -> Result<Option<DeviceInfo>> {
        self.find_device(id).await
    }

    async fn devices(&self, account: AccountId) -> Result<Vec<DeviceInfo>> {
        self.account_devices(account).await
    }

    async fn device_by_osmand_id(&self, sent: &str) -> Result<Option<DeviceInfo>> {
        self.live_device_by_osmand_id(sent).await
    }

    async fn device_by_token(&self, secret: &TokenSecret) -> Result<Option<DeviceInfo>> {
        self.live_device_by_token(secret).await
    }

    async fn revoke_device(&self, id: DeviceId, now: DateTime<Utc>) -> Result<bool> {
        self.revoke_one_device(id, now).await
    }

    async fn device_seen(&self, device: &DeviceInfo, seen: Seen) -> Result<()> {
        self.record_device_seen(device, seen).await
    }

    async fn shown(&self, account: AccountId, shown: Shown) -> Result<bool> {
        self.said_yes(account, shown).await
    }

    async fn set_shown(
        &self,
        account: AccountId,
        shown: Shown,
        yes: bool,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.record_shown(shown, account, yes, now).await
    }

    async fn visible_persons(&self, persons: &[PersonId]) -> Result<Vec<PersonId>> {
        self.persons_visible(persons).await
    }

    async fn persons_on_live_map(&self) -> Result<Vec<PersonId>> {
        self.persons_shown_on_live_map().await
    }

    async fn ask_reveal(
        &self,
        person: PersonId,
        other: PersonId,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.record_reveal(person, other, now).await
    }

    async fn withdraw_reveal(&self, person: PersonId, other: PersonId) -> Result<bool> {
        self.remove_reveal(person, other).await
    }

    async fn hide_contact(&self, person: PersonId, hidden: Choice) -> Result<()> {
        self.record_hidden(person, hidden).await
    }

    async fn unhide_contact(&self, person: PersonId, other: PersonId) -> Result<bool> {
        self.remove_hidden(person, other).await
    }

    async fn contact_choices(&self, person: PersonId) -> Result<ContactChoices> {
        self.choices_of(person).await
    }

    async fn forget_contact_choices(&self, person: PersonId) -> Result<u64> {
        self.forget_choices(person).await
    }

    async fn record_reads(&self, reads: &[AuditEntry]) -> Result<()> {
        self.record_audit(reads).await
    }

    async fn reads_of(&self, person: PersonId, limit: usize) -> Result<Vec<AuditEntry>> {
        self.audit_of(person, limit).await
    }

    async fn forget_reads(&self, person: PersonId) -> Result<u64> {
        self.forget_audit(person).await
    }

    async fn ping(&self) -> Result<()> {
        self.0.ping().await
    }
}

/// The account `new` is once stored as `id` at `created`.
fn stored_account(new: NewAccount, id: AccountId, created: DateTime<Utc>) -> Account {
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
fn stored_token(new: NewToken, id: TokenId, created: DateTime<Utc>) -> TokenInfo {
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

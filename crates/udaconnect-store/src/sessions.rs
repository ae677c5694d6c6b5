//! Browser sessions in the account store, written once over the two engines as the rest of
//! [`Accounts`]: listed and ended by their number, the secret that is their cookie never
//! stored (only its hash), their last use kept to the minute.

use chrono::{DateTime, Utc};
use udaconnect_core::auth::{
    AccountId, NewSession, Principal, SessionId, SessionInfo, TokenKind, TokenSecret,
};
use udaconnect_core::Result;

use crate::accounts::{hash, AccountDb, Accounts, Arg, Credential};

/// The id is the engine's: an identity column on PostgreSQL, a trigger on SQLite (whose
/// table has no rowid to number it).
const INSERT_SESSION: &str =
    "INSERT INTO account_session (hash, account_id, created_at, expires_at, user_agent)
     VALUES ($1, $2, $3, $4, $5)";
/// Read by `crate::rows::session_info` in this order; `$3` is the hash of the session asking
/// (or null), which the list marks.
pub(crate) const LIVE_SESSIONS: &str = "SELECT id, created_at, expires_at, last_used_at,
            user_agent, COALESCE(hash = $3, FALSE)
     FROM account_session
     WHERE account_id = $1 AND revoked_at IS NULL AND expires_at > $2
     ORDER BY id";
const REVOKE_SESSION_ID: &str = "UPDATE account_session SET revoked_at = $3
     WHERE account_id = $1 AND id = $2 AND revoked_at IS NULL AND expires_at > $3";
const TOUCH_SESSION: &str = "UPDATE account_session SET last_used_at = $2 WHERE hash = $1";
/// The account the live session with hash `$1` signs in at `$2`: id, person and role, no
/// scopes of its own (a session has its role's); and the session's last use.
const VERIFY_SESSION: &str = "SELECT a.id, a.person_id, a.role, CAST(NULL AS TEXT),
            s.last_used_at
     FROM account_session s JOIN account a ON a.id = s.account_id
     WHERE s.hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2";
const SESSION: Credential = Credential {
    kind: TokenKind::Session,
    verify: VERIFY_SESSION,
    touch: TOUCH_SESSION,
};

impl<D: AccountDb> Accounts<D> {
    pub(crate) async fn insert_session(
        &self,
        session: NewSession,
        now: DateTime<Utc>,
    ) -> Result<TokenSecret> {
        let secret = TokenSecret::generate()?;
        let args = vec![
            Arg::Bytes(hash(&secret, TokenKind::Session)),
            Arg::Int(session.account),
            Arg::Time(now),
            Arg::Time(session.expires),
            Arg::MaybeText(session.user_agent),
        ];
        self.0.execute(INSERT_SESSION, args).await?;
        Ok(secret)
    }

    /// Who the session signs in; its use recorded once a minute at most.
    pub(crate) async fn check_session(
        &self,
        secret: &TokenSecret,
        now: DateTime<Utc>,
    ) -> Result<Option<Principal>> {
        self.use_credential(SESSION, secret, now).await
    }

    pub(crate) async fn live_sessions(
        &self,
        account: AccountId,
        current: Option<&TokenSecret>,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionInfo>> {
        let args = vec![
            Arg::Int(account),
            Arg::Time(now),
            Arg::MaybeBytes(current.map(|s| hash(s, TokenKind::Session))),
        ];
        self.0.rows(LIVE_SESSIONS, args).await
    }

    pub(crate) async fn end_session(
        &self,
        account: AccountId,
        id: SessionId,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let args = vec![Arg::Int(account), Arg::Int(id), Arg::Time(now)];
        self.changed(REVOKE_SESSION_ID, args).await
    }
}

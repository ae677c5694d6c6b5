//! An account's addresses changed by link, written once over the two engines as the rest of
//! [`Accounts`]: the API records the change asked for under its mail's key; the mailer makes
//! the link's token for it (stored as a hash); following the link applies it.

use chrono::{DateTime, Utc};
use udaconnect_core::auth::{
    Account, AccountId, AddressSlot, Email, EmailChange, TokenKind, TokenSecret,
};
use udaconnect_core::ports::AccountStore;
use udaconnect_core::time::truncate_to_micros;
use udaconnect_core::Result;

use crate::accounts::{hash, AccountDb, Accounts, Arg};

const INSERT_CHANGE: &str = "INSERT INTO email_change
       (mail_key, account_id, email, email_key, slot, created_at)
     VALUES ($1, $2, $3, $4, $5, $6)";
/// A change not yet applied gets the (new) token of the mail that carries its link.
const ISSUE_LINK: &str = "UPDATE email_change SET hash = $3, expires_at = $4
     WHERE mail_key = $1 AND email = $2 AND used_at IS NULL";
/// Uses up the link with hash `$1` at `$2`: its account, address, key and slot. SQLite runs
/// it in one transaction with [`APPLY_PRIMARY`] or [`APPLY_SECONDARY`]; PostgreSQL in one
/// statement with the change.
pub(crate) const USE_LINK: &str = "UPDATE email_change SET used_at = $2
     WHERE hash = $1 AND used_at IS NULL AND expires_at > $2
     RETURNING account_id, email, email_key, slot";
/// `$1` account, `$2` address, `$3` its key: the unique key refuses an address that is
/// another account's.
pub(crate) const APPLY_PRIMARY: &str =
    "UPDATE account SET email = $2, email_key = $3, email_verified = TRUE WHERE id = $1";
pub(crate) const APPLY_SECONDARY: &str = "UPDATE account SET secondary_email = $2 WHERE id = $1";
const REMOVE_SECONDARY: &str = "UPDATE account SET secondary_email = NULL
     WHERE id = $1 AND secondary_email IS NOT NULL";

pub(crate) fn slot_name(slot: AddressSlot) -> &'static str {
    match slot {
        AddressSlot::Primary => "primary",
        AddressSlot::Secondary => "secondary",
    }
}

impl<D: AccountDb> Accounts<D> {
    pub(crate) async fn record_email_change(
        &self,
        change: EmailChange,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let args = vec![
            Arg::Text(change.key),
            Arg::Int(change.account),
            Arg::Text(change.email.as_str().to_string()),
            Arg::Text(change.email.key()),
            Arg::Text(slot_name(change.slot).to_string()),
            Arg::Time(now),
        ];
        self.0.execute(INSERT_CHANGE, args).await?;
        Ok(())
    }

    pub(crate) async fn email_link(
        &self,
        key: &str,
        to: &Email,
        expires: DateTime<Utc>,
    ) -> Result<Option<TokenSecret>> {
        let secret = TokenSecret::generate()?;
        let args = vec![
            Arg::Text(key.to_string()),
            Arg::Text(to.as_str().to_string()),
            Arg::Bytes(hash(&secret, TokenKind::EmailLink)),
            Arg::Time(expires),
        ];
        Ok(self.changed(ISSUE_LINK, args).await?.then_some(secret))
    }

    pub(crate) async fn apply_email_change(
        &self,
        secret: &TokenSecret,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>> {
        let now = truncate_to_micros(now);
        match self
            .0
            .apply_email_change(hash(secret, TokenKind::EmailLink), now)
            .await?
        {
            Some(id) => self.account(id).await,
            None => Ok(None),
        }
    }

    pub(crate) async fn clear_secondary(&self, account: AccountId) -> Result<bool> {
        self.changed(REMOVE_SECONDARY, vec![Arg::Int(account)])
            .await
    }
}

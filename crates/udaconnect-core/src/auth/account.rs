use std::fmt;

use chrono::{DateTime, Utc};

use super::role::{Role, Scopes};
use super::token::TokenSecret;
use crate::model::PersonId;
use crate::{Error, Result};

pub type AccountId = i64;
pub type TokenId = i64;

/// Longest address accepted (the limit of SMTP's forward path).
const MAX_EMAIL_CHARS: usize = 254;

/// An e-mail address as given, and the key that makes addresses unique: two spellings that
/// differ only in case are one address (mail servers treat them so, and a person who typed
/// `Ana@Example.org` once and `ana@example.org` later is one person).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email {
    address: String,
}

impl Email {
    /// An address that can receive mail: one `@` (no quoted local parts) with something on
    /// each side, no spaces or control characters, at most 254 characters. Surrounding blanks
    /// are dropped.
    pub fn parse(text: &str) -> Result<Email> {
        let address = crate::validate::trimmed_text(text, "email", MAX_EMAIL_CHARS)?;
        let bad = |why: &str| Err(Error::invalid("email", why));
        if address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'))
        {
            return bad("must not contain spaces, control characters, <, >, comma or semicolon");
        }
        match address.rsplit_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && !domain.is_empty()
                    && !local.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.') =>
            {
                Ok(Email {
                    address: address.to_string(),
                })
            }
            _ => bad("must be an address like name@example.org"),
        }
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// What makes an address unique, in every store: the address in lower case.
    pub fn key(&self) -> String {
        self.address.to_lowercase()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.address)
    }
}

/// An account: who signs in, in which role, for which person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    /// The attendee this account is; `None` for staff accounts and the bootstrap accounts the
    /// command line creates.
    pub person: Option<PersonId>,
    /// Unique across accounts whatever its case; `None` for bootstrap accounts.
    pub email: Option<Email>,
    /// Whether a link sent to `email` was followed.
    pub email_verified: bool,
    pub secondary_email: Option<Email>,
    pub role: Role,
    pub created: DateTime<Utc>,
}

/// An account before the store has given it an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub person: Option<PersonId>,
    pub email: Option<Email>,
    pub email_verified: bool,
    pub secondary_email: Option<Email>,
    pub role: Role,
}

/// A token to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub account: AccountId,
    /// What the holder calls it ("phone", "import script"); shown in lists.
    pub name: String,
    pub role: Role,
    /// Narrowed further by the role's own ([`Role::scopes`]).
    pub scopes: Scopes,
    /// The person it acts for: the account's, for attendee and device tokens.
    pub person: Option<PersonId>,
    pub expires: Option<DateTime<Utc>>,
}

impl Account {
    /// Whether this account may hold `token`: a role no higher than its own, and for a token
    /// acting for a person, the account's own person.
    pub fn check_grant(&self, token: &NewToken) -> Result<()> {
        if token.account != self.id {
            return Err(Error::invalid(
                "account",
                "the token is for another account",
            ));
        }
        if !self.role.may_issue(token.role) {
            return Err(Error::invalid(
                "role",
                format!(
                    "a {} token is above this account's role ({})",
                    token.role, self.role
                ),
            ));
        }
        if token.role.needs_person() && token.person.is_none() {
            return Err(Error::invalid(
                "person",
                format!("a {} token acts for a person: name one", token.role),
            ));
        }
        if token.person.is_some() && token.person != self.person {
            return Err(Error::invalid(
                "person",
                "a token acts only for its account's own person",
            ));
        }
        Ok(())
    }
}

/// What is known of a token, its secret and hash aside: for lists and revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: TokenId,
    pub account: AccountId,
    pub name: String,
    pub role: Role,
    pub scopes: Scopes,
    pub person: Option<PersonId>,
    pub created: DateTime<Utc>,
    pub expires: Option<DateTime<Utc>>,
    pub revoked: Option<DateTime<Utc>>,
    /// Kept to the minute: a token in use is not written at every request.
    pub last_used: Option<DateTime<Utc>>,
}

/// Something just created with its secret, which exists only here: shown to its holder once,
/// then dropped.
#[derive(Debug)]
pub struct Issued<T> {
    pub item: T,
    pub secret: TokenSecret,
}

/// What revoking everything of an account ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Revoked {
    pub tokens: u64,
    pub sessions: u64,
}

/// A sign-in link to create: for whom, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInLink {
    pub email: Email,
    pub expires: DateTime<Utc>,
}

pub type SessionId = i64;

/// Longest user agent kept with a session, in characters: enough to tell a browser and its
/// system apart, not a place to store what a client chooses to send.
pub const MAX_USER_AGENT_CHARS: usize = 200;

/// A browser session to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub account: AccountId,
    /// The browser's `User-Agent`, cut to [`MAX_USER_AGENT_CHARS`] printable characters, so
    /// its holder tells their sessions apart.
    pub user_agent: Option<String>,
    pub expires: DateTime<Utc>,
}

impl NewSession {
    /// A session of `account` until `expires`, keeping what `user_agent` says in printable
    /// characters (none if nothing printable is left).
    pub fn new(account: AccountId, user_agent: Option<&str>, expires: DateTime<Utc>) -> Self {
        let user_agent = user_agent
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_USER_AGENT_CHARS)
                    .collect::<String>()
                    .trim()
                    .to_string()
            })
            .filter(|ua| !ua.is_empty());
        NewSession {
            account,
            user_agent,
            expires,
        }
    }
}

/// A live browser session as its holder sees it in lists: never its id's secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: SessionId,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    /// Kept to the minute, as for tokens.
    pub last_used: Option<DateTime<Utc>>,
    pub user_agent: Option<String>,
    /// Whether this is the session the list was asked with.
    pub current: bool,
}

/// Which address of an account a verification link sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressSlot {
    /// The address the account signs in with: unique across accounts.
    Primary,
    Secondary,
}

/// An address an account asked to have, waiting for the link mailed to it to be followed.
/// Named by its mail's key: the mailer makes the link's token only for a change the API
/// recorded, so a request written on the log by anyone else makes no link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailChange {
    pub key: String,
    pub account: AccountId,
    pub email: Email,
    pub slot: AddressSlot,
}

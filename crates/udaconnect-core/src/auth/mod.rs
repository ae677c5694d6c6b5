//! Who is asking, and what they may do: accounts, roles, tokens and the one decision point.
//!
//! A request is made by a [`Principal`] (an account acting in a [`Role`], with the scopes of
//! the credential it presented) or by nobody. [`authorize`] is the only place that decides
//! whether a principal may perform an [`Action`] on a [`Resource`]; every route asks it, so the
//! rules are written once and tested as one table.
//!
//! Credentials (API and device tokens, browser session ids, sign-in link tokens) are all
//! [`TokenSecret`]s: `uc_` and 32 random bytes in base64url. The secret is shown once to its
//! holder; stores keep only its [`TokenHash`], so a copy of a store lets no one sign in.
//!
//! # Layout
//! - `role.rs`: [`Role`], token [`Scope`]s and the [`Principal`].
//! - `action.rs`: every operation of the API as an [`Action`], and the [`Resource`] it acts on.
//! - `policy.rs`: [`authorize`] and why it says no ([`Denied`]).
//! - `token.rs`: the secret, its hash and its kinds.
//! - `account.rs`: accounts, e-mail addresses, tokens and sessions as the stores keep them.
//! - `assertion.rs`: the gateway's signed word for who asks, checked by the roles behind it.

mod account;
mod action;
mod assertion;
mod policy;
mod role;
mod token;

#[cfg(test)]
mod tests;

pub use account::{
    Account, AccountId, AddressSlot, Email, EmailChange, Issued, NewAccount, NewSession, NewToken,
    Revoked, SessionId, SessionInfo, SignInLink, TokenId, TokenInfo, MAX_USER_AGENT_CHARS,
};
pub use action::{Action, Resource};
pub use assertion::{Asserted, Assertion, GatewayKey, ASSERTION_LIFETIME_SECS, MIN_KEY_BYTES};
pub use policy::{authorize, Denied};
pub use role::{Principal, Role, Scope, Scopes};
pub(crate) use token::random_bytes;
pub use token::{TokenHash, TokenKind, TokenSecret, TOKEN_PREFIX};

/// The browser session's cookie: the session's [`TokenSecret`], HttpOnly, never readable by
/// the page's script.
pub const SESSION_COOKIE: &str = "uc_session";

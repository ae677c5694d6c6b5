//! Sign-in by e-mail link, browser sessions, and the mails that carry links (sign-in,
//! welcome).
//!
//! A link's token is made where the mail is sent, not where it is asked for: a request on the
//! `notification` topic carries [`TOKEN_PLACEHOLDER`] where the token goes, and the mailer's
//! [`LinkingSender`] makes a token for the recipient and puts it in just before sending. So
//! neither the log nor any store ever holds a usable link (stores keep only its hash); the mail
//! itself is the one copy. Without SMTP (a laptop), the `.eml` file and one log line carry it,
//! so a newcomer can sign in.
//!
//! - [`http`]: `POST /api/auth/login`, `GET`/`POST /auth/confirm`, `POST /api/auth/logout`.
//! - [`email`]: an account's addresses changed by a link mailed to the new one
//!   (`/api/me/email`, `/api/me/secondary-email`, `GET`/`POST /auth/verify-email`).
//! - `limit`: requests counted per address and per client over a window.
//! - `page`: the confirm page and its answers, HTML without script.

pub mod email;
pub mod http;
mod limit;
mod page;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use udaconnect_core::auth::{Account, Email, NewAccount, Role, SignInLink, TokenSecret};
use udaconnect_core::clock::{DynClock, SystemClock};
use udaconnect_core::mail::{DynMailSender, MailKind, MailRequest, MailSender, SendOutcome};
use udaconnect_core::ports::DynAccountStore;
use udaconnect_core::Result;

use crate::mail::MailLog;

pub use limit::WindowLimiter;

/// How long a sign-in link works after its mail is sent.
pub const LINK_TTL: Duration = Duration::minutes(15);
/// How long a browser session lasts without signing in again.
pub const SESSION_TTL: Duration = Duration::days(14);
/// Where the link's token goes in a mail request's text; the mailer replaces it.
pub const TOKEN_PLACEHOLDER: &str = "{{sign_in_token}}";
/// The path a link opens.
pub const CONFIRM_PATH: &str = "/auth/confirm";
/// The path an address's verification link opens.
pub const VERIFY_PATH: &str = "/auth/verify-email";

/// What sign-in needs to know besides its stores.
#[derive(Clone)]
pub struct SignInSettings {
    /// The address people open links at (`https://connect.example.org`); `None`: the
    /// process's own listen address.
    pub public_url: Option<String>,
    /// Whether an unknown address asking for a link gets an attendee account and a person.
    pub self_registration: bool,
    /// Whether `X-Forwarded-Proto: https` from the client (a proxy in front) marks the
    /// session cookie `Secure`; off, a client could not be trusted to say so.
    pub trust_proxy: bool,
    /// Whether this process queues sign-in and welcome mails on its log: person-api run
    /// apart without `--log` does not (sign-in answers as ever, and no mail goes out).
    pub mails: bool,
    /// Now, for link and session expiry: the machine's clock, or a test's.
    pub clock: DynClock,
    /// With `--demo`, the person of the demo's attendee: the sign-in page then offers links
    /// for the demo's accounts to a browser on this machine. `None`: no such links.
    pub demo_attendee: Option<i64>,
}

impl Default for SignInSettings {
    fn default() -> Self {
        SignInSettings {
            public_url: None,
            self_registration: false,
            trust_proxy: false,
            mails: true,
            clock: Arc::new(SystemClock),
            demo_attendee: None,
        }
    }
}

impl fmt::Debug for SignInSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignInSettings")
            .field("public_url", &self.public_url)
            .field("self_registration", &self.self_registration)
            .field("trust_proxy", &self.trust_proxy)
            .field("mails", &self.mails)
            .field("demo_attendee", &self.demo_attendee)
            .finish_non_exhaustive()
    }
}

impl SignInSettings {
    /// The public URL, or one made from the address the process listens on (an unspecified
    /// address is reached as `localhost`).
    pub fn public_url_or(&self, listen: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None if listen.ip().is_unspecified() => format!("http://localhost:{}", listen.port()),
            None => format!("http://{listen}"),
        }
    }
}

/// Checks a `--public-url`: an absolute http(s) URL without query or fragment.
pub fn parse_public_url(text: &str) -> std::result::Result<String, String> {
    let url = text.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must start with http:// or https://")?;
    if rest.is_empty() || rest.contains(['?', '#', ' ']) || rest.starts_with('/') {
        return Err("must be like https://connect.example.org, without query or fragment".into());
    }
    Ok(url.to_string())
}

/// The mail that sends `to` a sign-in link (`kind` sign_in) or welcomes them with one
/// (welcome). `key` names it once for the mailer.
pub fn link_mail(key: &str, to: &Email, kind: MailKind, public_url: &str) -> Result<MailRequest> {
    let link = format!("{public_url}{CONFIRM_PATH}?token={TOKEN_PLACEHOLDER}");
    let (subject, text) = match kind {
        MailKind::Welcome => (
            "Welcome to UdaConnect",
            format!(
                "You have an UdaConnect account. Sign in with this link:\n\n{link}\n\n\
                 The link works once, for 15 minutes. Afterwards, ask for a new one on the \
                 sign-in page with this address.\n"
            ),
        ),
        _ => (
            "Sign in to UdaConnect",
            format!(
                "Sign in to UdaConnect with this link:\n\n{link}\n\nThe link works once, for \
                 15 minutes. If you did not ask for it, ignore this mail.\n"
            ),
        ),
    };
    MailRequest::new(key, to.as_str(), subject, &text, None, kind)
}

/// A new, unguessable idempotency key for one mail of `kind`.
pub fn mail_key(kind: MailKind) -> Result<String> {
    // The key is in the log and the sent-mail record: random, so it says nothing of the link.
    let nonce = TokenSecret::generate()?;
    let id = nonce
        .expose()
        .trim_start_matches(udaconnect_core::auth::TOKEN_PREFIX);
    Ok(format!("{}:{id}", kind.as_str()))
}

/// Makes a sign-in link for `email`, valid for [`LINK_TTL`] from `now`.
pub async fn new_link(
    accounts: &DynAccountStore,
    email: &Email,
    now: DateTime<Utc>,
) -> Result<TokenSecret> {
    let link = SignInLink {
        email: email.clone(),
        expires: now + LINK_TTL,
    };
    accounts.create_sign_in_link(link, now).await
}

/// Queues a mail with a sign-in link for `account`'s address, sealed with the key of the
/// account's person.
pub async fn send_link(
    log: &MailLog,
    account: &Account,
    kind: MailKind,
    public_url: &str,
) -> Result<()> {
    let Some(email) = &account.email else {
        return Ok(());
    };
    let mail = link_mail(&mail_key(kind)?, email, kind, public_url)?.for_person(account.person);
    log.enqueue(&mail).await
}

/// A sender that puts a fresh link token into each mail that has [`TOKEN_PLACEHOLDER`], then
/// hands it to the real sender. A retried mail gets a new token; the unused one expires.
pub struct LinkingSender {
    pub inner: DynMailSender,
    pub accounts: DynAccountStore,
    pub clock: DynClock,
    /// Log each link (laptop mode: no SMTP, so the operator can sign in from the log).
    pub log_links: bool,
}

#[async_trait]
impl MailSender for LinkingSender {
    async fn send(&self, mail: &MailRequest) -> SendOutcome {
        if !mail.text().contains(TOKEN_PLACEHOLDER) {
            return self.inner.send(mail).await;
        }
        let now = self.clock.now();
        let secret = if mail.kind() == MailKind::VerifyEmail {
            // Only for a change the API recorded under this mail's key, to this address.
            match self
                .accounts
                .issue_email_link(mail.key(), mail.to(), now + LINK_TTL, now)
                .await
            {
                Ok(Some(s)) => s,
                Ok(None) => {
                    return SendOutcome::Permanent("no address change waits for this mail".into())
                }
                Err(e) => {
                    return SendOutcome::Transient(format!("cannot make a verification link: {e}"))
                }
            }
        } else {
            match new_link(&self.accounts, mail.to(), now).await {
                Ok(s) => s,
                Err(e) => {
                    return SendOutcome::Transient(format!("cannot make a sign-in link: {e}"))
                }
            }
        };
        let fill = |s: &str| s.replace(TOKEN_PLACEHOLDER, secret.expose());
        let filled = match MailRequest::new(
            mail.key(),
            mail.to().as_str(),
            mail.subject(),
            &fill(mail.text()),
            mail.html().map(fill).as_deref(),
            mail.kind(),
        ) {
            Ok(m) => m.for_person(mail.person()),
            Err(e) => return SendOutcome::Permanent(format!("cannot put in the link: {e}")),
        };
        if self.log_links {
            // Laptop mode only (no SMTP): the operator reads the link here.
            let link = filled
                .text()
                .lines()
                .find(|l| l.contains(CONFIRM_PATH) || l.contains(VERIFY_PATH))
                .unwrap_or_default()
                .to_string();
            tracing::info!(key = mail.key(), to = %mail.to(), %link, "sign-in link (no --smtp, so it is logged)");
        }
        self.inner.send(&filled).await
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }

    async fn forget(&self, person: udaconnect_core::model::PersonId) -> Result<u64> {
        self.inner.forget(person).await
    }
}

/// The demo's accounts: an organizer, and an attendee who is the demo data's first person.
pub const DEMO_ORGANIZER: &str = "organizer@demo.udaconnect.test";
pub const DEMO_ATTENDEE: &str = "attendee@demo.udaconnect.test";

/// Sign-in links for the demo's organizer and attendee (their accounts made on first use),
/// each valid for [`LINK_TTL`]: `serve --demo` prints them so a newcomer signs in at once.
pub async fn demo_links(
    accounts: &DynAccountStore,
    attendee_person: i64,
    public_url: &str,
    now: DateTime<Utc>,
) -> Result<Vec<(Role, String)>> {
    let mut links = Vec::new();
    for (role, address, person) in [
        (Role::Organizer, DEMO_ORGANIZER, None),
        (Role::Attendee, DEMO_ATTENDEE, Some(attendee_person)),
    ] {
        let email = Email::parse(address)?;
        if accounts.account_by_email(&email).await?.is_none() {
            let new = NewAccount {
                person,
                email: Some(email.clone()),
                email_verified: true,
                secondary_email: None,
                role,
            };
            accounts.create_account(new, now).await?;
        }
        let token = new_link(accounts, &email, now).await?;
        links.push((
            role,
            format!("{public_url}{CONFIRM_PATH}?token={}", token.expose()),
        ));
    }
    Ok(links)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_are_absolute_http() {
        assert_eq!(
            parse_public_url("https://connect.example.org/").unwrap(),
            "https://connect.example.org"
        );
        assert!(parse_public_url("http://127.0.0.1:30000").is_ok());
        for bad in [
            "connect.example.org",
            "ftp://x",
            "https://",
            "https://x?a=b",
            "https:///x",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
        let s = SignInSettings::default();
        assert_eq!(
            s.public_url_or("0.0.0.0:30000".parse().unwrap()),
            "http://localhost:30000"
        );
        assert_eq!(
            s.public_url_or("127.0.0.1:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn a_link_mail_holds_the_placeholder_not_a_token() {
        let to = Email::parse("ada@example.org").unwrap();
        let key = mail_key(MailKind::SignIn).unwrap();
        assert!(key.starts_with("sign_in:") && key.len() > 40);
        let m = link_mail(&key, &to, MailKind::SignIn, "https://x.test").unwrap();
        assert!(m
            .text()
            .contains("https://x.test/auth/confirm?token={{sign_in_token}}"));
        assert!(!m.text().contains("uc_"));
        let w = link_mail(&key, &to, MailKind::Welcome, "https://x.test").unwrap();
        assert_eq!(w.subject(), "Welcome to UdaConnect");
    }
}

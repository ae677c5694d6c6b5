//! Sending over SMTP with lettre: one pooled transport per process.
//!
//! The URL says where and how: `smtp://[user:password@]host[:port][?tls=...]` with `tls` one
//! of `required` (the default: STARTTLS, and no mail goes out without it), `opportunistic`
//! (STARTTLS when the server offers it) or `none` (plain text, for a relay on the same host or
//! network); `smtps://...` for TLS from the first byte (port 465 by default). User and
//! password are percent-decoded, and never shown.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use udaconnect_core::mail::{MailRequest, MailSender, SendOutcome};
use udaconnect_core::{Error, Result};

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS from the first byte (`smtps://`).
    Wrapper,
    /// STARTTLS, refusing a server that does not offer it.
    Required,
    /// STARTTLS when offered.
    Opportunistic,
    /// None.
    Off,
}

/// An SMTP server's URL, parsed.
#[derive(Clone)]
pub struct SmtpUrl {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    user: Option<String>,
    password: Option<SecretString>,
}

impl fmt::Display for SmtpUrl {
    /// Without the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls == TlsMode::Wrapper {
            "smtps"
        } else {
            "smtp"
        };
        write!(f, "{scheme}://")?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        write!(f, "{}:{}", self.host, self.port)?;
        match self.tls {
            TlsMode::Wrapper | TlsMode::Required => Ok(()),
            TlsMode::Opportunistic => f.write_str("?tls=opportunistic"),
            TlsMode::Off => f.write_str("?tls=none"),
        }
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmtpUrl({self})")
    }
}

impl std::str::FromStr for SmtpUrl {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<SmtpUrl, String> {
        let url = url::Url::parse(s).map_err(|e| format!("not a URL ({e})"))?;
        let wrapper = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            other => return Err(format!("scheme {other}: use smtp:// or smtps://")),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let mut tls = if wrapper {
            TlsMode::Wrapper
        } else {
            TlsMode::Required
        };
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref(), wrapper) {
                ("tls", "required" | "starttls", false) => tls = TlsMode::Required,
                ("tls", "opportunistic", false) => tls = TlsMode::Opportunistic,
                ("tls", "none", false) => tls = TlsMode::Off,
                ("tls", _, true) => return Err("smtps:// is TLS already: no tls=".into()),
                ("tls", other, false) => {
                    return Err(format!("tls={other}: use required, opportunistic or none"))
                }
                (other, _, _) => return Err(format!("unknown parameter {other}")),
            }
        }
        let (user, password) = crate::credentials::url_credentials(&url)?;
        Ok(SmtpUrl {
            host,
            port: url.port().unwrap_or(if wrapper { 465 } else { 587 }),
            tls,
            user,
            password,
        })
    }
}

/// How long one SMTP exchange may take before it counts as failed (and may be retried).
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// A [`MailSender`] over SMTP.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpSender {
    pub fn new(url: &SmtpUrl, from: &str) -> anyhow::Result<SmtpSender> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| anyhow::anyhow!("--mail-from {from:?}: {e}"))?;
        let params = || TlsParameters::new(url.host.clone());
        let tls = match url.tls {
            TlsMode::Wrapper => Tls::Wrapper(params()?),
            TlsMode::Required => Tls::Required(params()?),
            TlsMode::Opportunistic => Tls::Opportunistic(params()?),
            TlsMode::Off => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&url.host)
            .port(url.port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT))
            .pool_config(PoolConfig::new().max_size(4));
        if let Some(user) = &url.user {
            let password = url
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_string())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(SmtpSender {
            transport: builder.build(),
            from,
        })
    }
}

/// `mail` as a message from `from`: text, or text and HTML as alternatives.
pub fn message(from: &Mailbox, mail: &MailRequest) -> std::result::Result<Message, String> {
    let to: Mailbox = mail
        .to()
        .as_str()
        .parse()
        .map_err(|e| format!("recipient refused: {e}"))?;
    let builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject());
    let built = match mail.html() {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            mail.text().to_string(),
            html.to_string(),
        )),
        None => builder.singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(mail.text().to_string()),
        ),
    };
    built.map_err(|e| format!("message refused: {e}"))
}

#[async_trait]
impl MailSender for SmtpSender {
    async fn send(&self, mail: &MailRequest) -> SendOutcome {
        let message = match message(&self.from, mail) {
            Ok(m) => m,
            Err(reason) => return SendOutcome::Permanent(reason),
        };
        match self.transport.send(message).await {
            Ok(_) => SendOutcome::Sent,
            // A 5xx reply: the server will not take this mail, however often it is asked.
            Err(e) if e.is_permanent() => SendOutcome::Permanent(format!("smtp: {e}")),
            // A 4xx reply, a connection refused or cut, a timeout: later may work.
            Err(e) => SendOutcome::Transient(format!("smtp: {e}")),
        }
    }

    async fn ping(&self) -> Result<()> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::Unavailable("smtp server (no answer to NOOP)".into())),
            Err(e) => Err(Error::Unavailable(format!("smtp server ({e})"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_say_where_and_how() {
        let u: SmtpUrl = "smtp://mailer:p%40ss@mail.example.org:2525"
            .parse()
            .unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.tls),
            ("mail.example.org", 2525, TlsMode::Required)
        );
        assert_eq!(u.user.as_deref(), Some("mailer"));
        assert_eq!(u.password.as_ref().unwrap().expose_secret(), "p@ss");
        assert_eq!(u.to_string(), "smtp://mailer@mail.example.org:2525");
        assert!(!format!("{u:?}").contains("p@ss") && !format!("{u:?}").contains("p%40ss"));
        let u: SmtpUrl = "smtps://mail.example.org".parse().unwrap();
        assert_eq!((u.port, u.tls), (465, TlsMode::Wrapper));
        let u: SmtpUrl = "smtp://127.0.0.1:1025?tls=none".parse().unwrap();
        assert_eq!((u.port, u.tls), (1025, TlsMode::Off));
        let u: SmtpUrl = "smtp://h?tls=opportunistic".parse().unwrap();
        assert_eq!((u.port, u.tls), (587, TlsMode::Opportunistic));
        for bad in [
            "http://h",
            "smtp://h?tls=maybe",
            "smtps://h?tls=none",
            "smtp://h?x=1",
            "nope",
        ] {
            assert!(bad.parse::<SmtpUrl>().is_err(), "{bad}");
        }
    }
}

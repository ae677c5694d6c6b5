//! Mail: how a role asks for one ([`enqueue`], onto the `notification` topic), and how the
//! mailer sends what it reads there.
//!
//! - [`smtp`]: sending over SMTP (lettre, pooled; STARTTLS or TLS as the URL says).
//! - [`files`]: no SMTP server (a laptop, `--demo`): each mail written as an `.eml` file.
//! - [`mailer`]: the mailer's handling of a batch: skip what was sent, send, retry what may
//!   pass later, dead-letter the rest, record what was sent.
//!
//! No API handler sends mail itself: it appends a request, durable once the append returns,
//! and the mailer sends it at least once, and once per idempotency key as far as its record of
//! sent keys can tell (see [`mailer`]).

pub mod files;
pub mod mailer;
pub mod smtp;

use std::sync::Arc;
use std::time::Duration;

use udaconnect_core::mail::{MailRequest, NOTIFICATION_TOPIC};
use udaconnect_core::ports::DynLog;
use udaconnect_core::{Error, Result};

use crate::keys::Keyring;

pub use smtp::SmtpUrl;

/// How the mailer sends.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// The SMTP server; `None`: write `.eml` files instead, into [`MailSettings::dir`].
    pub smtp: Option<SmtpUrl>,
    /// Without SMTP: where the `.eml` files go (`None`: `mail/` in the data directory).
    pub dir: Option<std::path::PathBuf>,
    /// The `From` of every mail.
    pub from: String,
    /// Sends tried for one mail before it is dead-lettered, while the server answers "not
    /// now" (a 4xx reply) or cannot be reached.
    pub max_attempts: u32,
    /// The pause after the first failed try; it doubles after each, up to [`MAX_RETRY_DELAY`].
    pub retry_delay: Duration,
    /// How long the SMTP server may be unreachable before `/ready` fails.
    pub unreachable_grace: Duration,
}

/// The longest pause between two tries of one mail.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            smtp: None,
            dir: None,
            from: "UdaConnect <noreply@localhost>".into(),
            max_attempts: 8,
            retry_delay: Duration::from_secs(2),
            unreachable_grace: Duration::from_secs(30),
        }
    }
}

impl MailSettings {
    /// The pause after failed try number `attempt` (from 1).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let doubled = self
            .retry_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        doubled.min(MAX_RETRY_DELAY)
    }
}

/// Asks the mailer to send `mail`, a mail to no person's address: appended to
/// `notification` in the clear, durable when this returns. Appending the same request again
/// is harmless: the mailer sends one mail per key. A person's mail goes through [`MailLog`].
pub async fn enqueue(log: &DynLog, mail: &MailRequest) -> Result<()> {
    if mail.person().is_some() {
        return Err(Error::Internal(
            "a person's mail is sealed with their key: queue it through MailLog".into(),
        ));
    }
    let record = mail.encode(chrono::Utc::now().timestamp_millis());
    log.append(NOTIFICATION_TOPIC, vec![record]).await
}

/// Where roles queue mail: the log, and the persons' keys that seal each person's mail on it.
#[derive(Clone)]
pub struct MailLog {
    pub log: DynLog,
    pub keys: Arc<Keyring>,
}

impl MailLog {
    /// Asks the mailer to send `mail`, as [`enqueue`]; sealed with its person's key when it
    /// has a person. A mail to an erased person (their key destroyed) is not queued.
    pub async fn enqueue(&self, mail: &MailRequest) -> Result<()> {
        self.enqueue_on(NOTIFICATION_TOPIC, mail).await
    }

    /// [`MailLog::enqueue`] onto `topic` (a test's own).
    pub async fn enqueue_on(&self, topic: &str, mail: &MailRequest) -> Result<()> {
        let record = mail.encode(chrono::Utc::now().timestamp_millis());
        let record = match mail.person() {
            None => record,
            Some(person) => match self.keys.seal_record(topic, person, record).await? {
                Some(sealed) => sealed,
                None => {
                    tracing::info!(
                        person_id = person,
                        kind = mail.kind().as_str(),
                        "mail to an erased person; not queued"
                    );
                    return Ok(());
                }
            },
        };
        self.log.append(topic, vec![record]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let s = MailSettings {
            retry_delay: Duration::from_secs(1),
            ..MailSettings::default()
        };
        let d: Vec<u64> = (1..=12).map(|a| s.delay_after(a).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    }
}

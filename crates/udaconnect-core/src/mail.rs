//! Mail requests: what a role asks the mailer to send, how it travels on the `notification`
//! topic, and the port the mailer sends through.
//!
//! A request is built valid or not at all ([`MailRequest::new`]): the address is one address,
//! and no header value (address, subject) holds a CR or LF, so a caller's text can never add a
//! header or a recipient. The record read back from the log is checked again: the log is an
//! input like any other.
//!
//! A mail to a person's address is sealed on the topic with that person's key (see
//! [`crate::envelope`]), keyed by the person's id: erasing the person destroys the key, so the
//! request (address, text) becomes unreadable in every copy of the topic and of
//! `notification.dlq`, and the erasure record, keyed alike, reaches the mailer on the same
//! partition after every mail sealed before it. A mail with no person (an account without
//! one) stays in the clear, keyed by its idempotency key.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::auth::Email;
use crate::model::PersonId;
use crate::record::LogRecord;
use crate::{Error, Result};

/// The topic mail requests are appended to, keyed by their idempotency key.
pub const NOTIFICATION_TOPIC: &str = "notification";
/// Where requests the mailer gave up on go, with the reason in the `dlq_reason` header.
pub const NOTIFICATION_DLQ_TOPIC: &str = "notification.dlq";

/// Longest idempotency key, in bytes.
pub const MAX_KEY_BYTES: usize = 200;
/// Longest subject, in characters: RFC 5322's line limit, before folding.
pub const MAX_SUBJECT_CHARS: usize = 998;
/// Largest body (text or HTML), in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Why a mail is sent: for the operator's logs and metrics, not for the recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    SignIn,
    Welcome,
    VerifyEmail,
    Reminder,
    /// Someone the recipient met asks to exchange e-mail addresses.
    Reveal,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::SignIn => "sign_in",
            MailKind::Welcome => "welcome",
            MailKind::VerifyEmail => "verify_email",
            MailKind::Reminder => "reminder",
            MailKind::Reveal => "reveal",
        }
    }
}

/// One mail to send, valid by construction.
#[derive(Clone, PartialEq, Eq)]
pub struct MailRequest {
    key: String,
    to: Email,
    subject: String,
    text: String,
    html: Option<String>,
    kind: MailKind,
    /// The person whose address this is: their key seals the request on the log.
    person: Option<PersonId>,
}

/// The request as it is written on the log.
#[derive(Serialize, Deserialize)]
struct Wire {
    key: String,
    to: String,
    subject: String,
    text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    html: Option<String>,
    kind: MailKind,
}

impl MailRequest {
    /// A request, every field checked: `key` (1 to 200 bytes of visible ASCII) names the mail
    /// once, so that the same key is never sent twice; `to` one address; `subject` one line.
    pub fn new(
        key: &str,
        to: &str,
        subject: &str,
        text: &str,
        html: Option<&str>,
        kind: MailKind,
    ) -> Result<MailRequest> {
        let mut violations = Vec::new();
        if key.is_empty() || key.len() > MAX_KEY_BYTES || !key.bytes().all(|b| b.is_ascii_graphic())
        {
            violations.push(crate::FieldViolation::new(
                "key",
                "must be 1 to 200 visible ASCII characters",
            ));
        }
        let to = match Email::parse(to) {
            Ok(e) => Some(e),
            Err(_) => {
                violations.push(crate::FieldViolation::new(
                    "to",
                    "must be an address like name@example.org, without spaces or line breaks",
                ));
                None
            }
        };
        if subject.trim().is_empty()
            || subject.chars().count() > MAX_SUBJECT_CHARS
            || subject.chars().any(char::is_control)
        {
            violations.push(crate::FieldViolation::new(
                "subject",
                "must be one line of 1 to 998 characters, without control characters",
            ));
        }
        if text.is_empty() || text.len() > MAX_BODY_BYTES {
            violations.push(crate::FieldViolation::new(
                "text",
                "must be 1 byte to 256 KiB",
            ));
        }
        if html.is_some_and(|h| h.is_empty() || h.len() > MAX_BODY_BYTES) {
            violations.push(crate::FieldViolation::new(
                "html",
                "must be 1 byte to 256 KiB when given",
            ));
        }
        match to {
            Some(to) if violations.is_empty() => Ok(MailRequest {
                key: key.to_string(),
                to,
                subject: subject.to_string(),
                text: text.to_string(),
                html: html.map(str::to_string),
                kind,
                person: None,
            }),
            _ => Err(Error::Invalid(violations)),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }
    pub fn to(&self) -> &Email {
        &self.to
    }
    pub fn subject(&self) -> &str {
        &self.subject
    }
    pub fn text(&self) -> &str {
        &self.text
    }
    pub fn html(&self) -> Option<&str> {
        self.html.as_deref()
    }
    pub fn kind(&self) -> MailKind {
        self.kind
    }
    /// The person whose address the mail goes to, when it is a person's.
    pub fn person(&self) -> Option<PersonId> {
        self.person
    }

    /// The same mail, to the address of `person` (`None`: of no person): sealed with their
    /// key on the log, and gone with them when they are erased.
    pub fn for_person(mut self, person: Option<PersonId>) -> MailRequest {
        self.person = person;
        self
    }

    /// The record on `notification`, in the clear: the JSON request, keyed by its person's id
    /// when it has one (the record to seal with their key: one person's mails and erasure stay
    /// on one partition, in order), otherwise by its idempotency key; written at
    /// `timestamp_ms`.
    pub fn encode(&self, timestamp_ms: i64) -> LogRecord {
        let wire = Wire {
            key: self.key.clone(),
            to: self.to.as_str().to_string(),
            subject: self.subject.clone(),
            text: self.text.clone(),
            html: self.html.clone(),
            kind: self.kind,
        };
        let key = match self.person {
            Some(person) => person.to_string().into_bytes(),
            None => self.key.as_bytes().to_vec(),
        };
        LogRecord {
            key: Some(key),
            value: serde_json::to_vec(&wire).unwrap_or_default(),
            headers: Vec::new(),
            timestamp_ms,
        }
    }

    /// A request read back from the log in the clear, checked as when it was made; the reason
    /// when it cannot be sent.
    pub fn decode(record: &LogRecord) -> std::result::Result<MailRequest, String> {
        MailRequest::decode_of(record, None)
    }

    /// A request read back from the log: `person`'s when it was sealed with their key
    /// (`record` then opened), in the clear otherwise. The record's key must be what
    /// [`MailRequest::encode`] wrote.
    pub fn decode_of(
        record: &LogRecord,
        person: Option<PersonId>,
    ) -> std::result::Result<MailRequest, String> {
        let wire: Wire = serde_json::from_slice(&record.value)
            .map_err(|e| format!("not a mail request: {e}"))?;
        let expected = match person {
            Some(person) => person.to_string(),
            None => wire.key.clone(),
        };
        if record
            .key
            .as_deref()
            .is_some_and(|k| k != expected.as_bytes())
        {
            return Err("record key differs from the request's key".into());
        }
        MailRequest::new(
            &wire.key,
            &wire.to,
            &wire.subject,
            &wire.text,
            wire.html.as_deref(),
            wire.kind,
        )
        .map(|m| m.for_person(person))
        .map_err(|e| e.to_string())
    }
}

/// Neither the address nor the body is written out: a sign-in link is a secret.
impl std::fmt::Debug for MailRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailRequest")
            .field("key", &self.key)
            .field("kind", &self.kind)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// What became of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The server took the message for delivery.
    Sent,
    /// Not now (a connection refused, a 4xx reply): the same message may be tried again.
    Transient(String),
    /// Never (a 5xx reply, an address the server refuses): trying again cannot help.
    Permanent(String),
}

/// Sends mail: SMTP, or files on a laptop.
#[async_trait]
pub trait MailSender: Send + Sync + 'static {
    async fn send(&self, mail: &MailRequest) -> SendOutcome;
    /// Succeeds when a send could get through now.
    async fn ping(&self) -> Result<()>;
    /// Deletes what this sender kept of the mails it sent to `person` (erased); the number of
    /// mails deleted. Mail handed to an SMTP server is out of reach: nothing to do.
    async fn forget(&self, person: PersonId) -> Result<u64> {
        let _ = person;
        Ok(0)
    }
}

/// The keys of the mails sent, so a mail redelivered after a restart is not sent again.
#[async_trait]
pub trait SentMail: Send + Sync + 'static {
    /// Whether the mail with `key` was recorded as sent.
    async fn was_sent(&self, key: &str) -> Result<bool>;
    /// Records `key` as sent, durably; recording a key twice is harmless.
    async fn record_sent(&self, key: &str, at_ms: i64) -> Result<()>;
}

pub type DynMailSender = std::sync::Arc<dyn MailSender>;
pub type DynSentMail = std::sync::Arc<dyn SentMail>;

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: &str, to: &str, subject: &str) -> Result<MailRequest> {
        MailRequest::new(key, to, subject, "hello", None, MailKind::SignIn)
    }

    #[test]
    fn refuses_line_breaks_in_every_header_value() {
        for (key, to, subject, field) in [
            ("k1", "a@example.org\r\nBcc: x@evil.test", "Hi", "to"),
            ("k1", "a@example.org", "Hi\r\nBcc: x@evil.test", "subject"),
            ("k1", "a@example.org", "Hi\nthere", "subject"),
            ("k1", "a@example.org", "Hi\rthere", "subject"),
            ("k 1", "a@example.org", "Hi", "key"),
            ("k\n1", "a@example.org", "Hi", "key"),
            ("", "a@example.org", "Hi", "key"),
            ("k1", "a@example.org, b@example.org", "Hi", "to"),
            ("k1", "<a@example.org>", "Hi", "to"),
            ("k1", "nobody", "Hi", "to"),
            ("k1", "a@example.org", "  ", "subject"),
        ] {
            match request(key, to, subject) {
                Err(Error::Invalid(v)) => {
                    assert!(
                        v.iter().any(|v| v.field == field),
                        "{key:?} {to:?} {subject:?}: {v:?}"
                    )
                }
                other => panic!("{key:?} {to:?} {subject:?} accepted: {other:?}"),
            }
        }
        assert!(request(&"k".repeat(MAX_KEY_BYTES + 1), "a@example.org", "Hi").is_err());
        assert!(request(&"k".repeat(MAX_KEY_BYTES), "a@example.org", "Hi").is_ok());
        assert!(MailRequest::new("k", "a@example.org", "Hi", "", None, MailKind::Welcome).is_err());
        assert!(
            MailRequest::new("k", "a@example.org", "Hi", "x", Some(""), MailKind::Welcome).is_err()
        );
    }

    #[test]
    fn round_trips_through_its_record() {
        let m = MailRequest::new(
            "sign-in:42:abc",
            "Ada@Example.org",
            "Sign in to UdaConnect",
            "Follow this link:\r\nhttps://x.test/s?t=1\n",
            Some("<p>Follow</p>"),
            MailKind::SignIn,
        )
        .unwrap();
        let r = m.encode(1_700_000_000_000);
        assert_eq!(r.key.as_deref(), Some(&b"sign-in:42:abc"[..]));
        assert_eq!(r.timestamp_ms, 1_700_000_000_000);
        let back = MailRequest::decode(&r).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.to().as_str(), "Ada@Example.org");
        assert_eq!(back.kind().as_str(), "sign_in");
    }

    #[test]
    fn a_persons_mail_is_keyed_by_their_id() {
        let m = request("sign-in:1", "a@example.org", "Hi")
            .unwrap()
            .for_person(Some(42));
        let r = m.encode(0);
        assert_eq!(r.key.as_deref(), Some(&b"42"[..]));
        let back = MailRequest::decode_of(&r, Some(42)).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.person(), Some(42));
        assert!(MailRequest::decode_of(&r, Some(43)).is_err(), "another's");
        assert!(MailRequest::decode(&r).is_err(), "read as in the clear");
    }

    #[test]
    fn a_record_is_checked_again_when_read() {
        let mut r = request("k1", "a@example.org", "Hi").unwrap().encode(0);
        let mut v: serde_json::Value = serde_json::from_slice(&r.value).unwrap();
        v["subject"] = "Hi\r\nBcc: x@evil.test".into();
        r.value = serde_json::to_vec(&v).unwrap();
        assert!(MailRequest::decode(&r).unwrap_err().contains("subject"));
        let mut other_key = request("k1", "a@example.org", "Hi").unwrap().encode(0);
        other_key.key = Some(b"k2".to_vec());
        assert!(MailRequest::decode(&other_key).is_err());
        let garbage = LogRecord {
            value: b"{".to_vec(),
            ..LogRecord::default()
        };
        assert!(MailRequest::decode(&garbage)
            .unwrap_err()
            .starts_with("not a mail request"));
    }

    #[test]
    fn debug_shows_no_address_or_body() {
        let m = MailRequest::new(
            "k",
            "a@example.org",
            "S",
            "secret-link",
            None,
            MailKind::SignIn,
        )
        .unwrap();
        let d = format!("{m:?}");
        assert!(
            !d.contains("a@example.org") && !d.contains("secret-link"),
            "{d}"
        );
    }
}

//! The mailer's work on each batch of `notification`, inside the shared poll loop.
//!
//! For each request, in order: a request that cannot be read is dead-lettered at once; one
//! whose key is in the record of sent keys is skipped; otherwise it is sent, tried again after
//! a growing pause while the server says "not now" or cannot be reached, and dead-lettered to
//! `notification.dlq` with the reason on a permanent refusal or after the last attempt. A key
//! is recorded as sent right after the server accepted the mail, and the position is
//! committed only after the whole batch is sent, recorded or dead-lettered (the loop commits
//! after every batch). So a request is never lost, and after a restart a mail is sent again
//! only if the process died between the server's acceptance and the record's write.
//!
//! A person's request is sealed with their key (see [`crate::mail`]): it is opened with it,
//! and skipped and counted once the key is destroyed; dead-lettered, it stays sealed. An
//! erasure record on the topic (keyed by the person, so after every mail of theirs sealed
//! before it) has the sender delete what it kept of the person's mails (`.eml` files).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::watch;
use udaconnect_core::mail::{DynMailSender, DynSentMail, MailRequest, SendOutcome};
use udaconnect_core::model::PersonId;
use udaconnect_core::ports::{retry_delay, Consumed, DynLog, StartFrom};
use udaconnect_core::record;
use udaconnect_core::{Error, Result};

use crate::consume::dlq::dead_letter_headers;
use crate::consume::poll::{Batches, Commit, Reader, Until};
use crate::keys::{Keyring, Opened, ReadingKeys};
use crate::mail::MailSettings;
use crate::metrics::Metrics;

/// The mailer's consumer group.
pub const MAILER_GROUP: &str = "mailer";

/// How the mailer reads `topic` (`notification`) as `group` (`mailer`): a few requests a
/// poll (each may wait on a slow server), committing after every batch.
pub fn reader(topic: &'static str, group: &str) -> Reader {
    Reader {
        topic,
        group: group.into(),
        start: StartFrom::Earliest,
        batch: 16,
        wait: Duration::from_millis(500),
        linger: false,
        commit: Commit::Every(Duration::ZERO),
        until: Until::Stopped,
    }
}

/// Whether the SMTP server has answered lately, for `/ready`.
pub struct SmtpHealth {
    last_ok: Mutex<Instant>,
    grace: Duration,
}

impl SmtpHealth {
    pub fn new(grace: Duration) -> Arc<SmtpHealth> {
        Arc::new(SmtpHealth {
            last_ok: Mutex::new(Instant::now()),
            grace,
        })
    }

    fn answered(&self) {
        if let Ok(mut t) = self.last_ok.lock() {
            *t = Instant::now();
        }
    }

    /// Ready while `sender` answers, or answered within the grace period: a server away for
    /// a moment is not worth taking the mailer out of service.
    pub async fn check(&self, sender: &DynMailSender) -> Result<()> {
        match tokio::time::timeout(Duration::from_secs(5), sender.ping()).await {
            Ok(Ok(())) => {
                self.answered();
                Ok(())
            }
            outcome => {
                let away = self.last_ok.lock().map(|t| t.elapsed()).unwrap_or_default();
                if away < self.grace {
                    return Ok(());
                }
                let why = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => "no answer within 5 s".into(),
                };
                Err(Error::Unavailable(format!(
                    "smtp server unreachable for {} s: {why}",
                    away.as_secs()
                )))
            }
        }
    }
}

/// The mailer, as the poll loop's [`Batches`].
pub struct Mailer {
    pub log: DynLog,
    /// The topic it reads (`notification`): sealed requests are bound to it.
    pub requests: &'static str,
    /// Persons' keys, to open their requests.
    pub keys: Arc<Keyring>,
    /// Where requests it gives up on go (`notification.dlq`).
    pub dead_letters: &'static str,
    pub sender: DynMailSender,
    pub sent: DynSentMail,
    pub settings: MailSettings,
    pub metrics: Arc<Metrics>,
    pub health: Option<Arc<SmtpHealth>>,
    /// The role's stop signal: a pause between tries ends with it (the batch is then read
    /// again at start, uncommitted).
    pub stop: watch::Receiver<bool>,
}

fn stopping() -> Error {
    Error::Unavailable("mailer (stopping)".into())
}

impl Mailer {
    /// What the request in `c` is: `None` when there is nothing to send (a shredded
    /// request).
    fn request(
        &self,
        c: &Consumed,
        keys: &ReadingKeys,
    ) -> Option<std::result::Result<MailRequest, String>> {
        Some(match keys.open(&c.record) {
            Ok(Opened::Clear(r)) => MailRequest::decode(&r),
            Ok(Opened::Sealed(person, r)) => MailRequest::decode_of(&r, Some(person)),
            Ok(Opened::Shredded(person)) => {
                self.metrics.mail_shredded.inc();
                tracing::info!(person_id = person, "mail to an erased person; skipped");
                return None;
            }
            Err(reason) => Err(reason),
        })
    }

    /// `person` was erased: their key is read again (so a request sealed meanwhile by a
    /// process that had not yet seen the key go is skipped too), and what the sender kept of
    /// their mails is deleted.
    async fn erased(&mut self, person: PersonId) -> Result<()> {
        self.keys.state(person).await?;
        let forgotten = self.sender.forget(person).await?;
        self.metrics.mail_forgotten.inc_by(forgotten);
        tracing::info!(
            person_id = person,
            forgotten,
            "person erased; their mails forgotten"
        );
        Ok(())
    }

    async fn deliver(&mut self, c: &Consumed, keys: &ReadingKeys) -> Result<()> {
        let mail = match self.request(c, keys) {
            None => return Ok(()),
            Some(Ok(m)) => m,
            Some(Err(reason)) => {
                self.failed("invalid");
                return self
                    .dead_letter(c, &format!("invalid request: {reason}"))
                    .await;
            }
        };
        if self.sent.was_sent(mail.key()).await? {
            self.metrics.mail_duplicates.inc();
            tracing::info!(key = mail.key(), "mail already sent; not sent again");
            return Ok(());
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.sender.send(&mail).await {
                SendOutcome::Sent => {
                    if let Some(h) = &self.health {
                        h.answered();
                    }
                    self.metrics.mail_sent.inc();
                    tracing::info!(
                        key = mail.key(),
                        kind = mail.kind().as_str(),
                        attempt,
                        "mail sent"
                    );
                    return self.record_sent(&mail).await;
                }
                SendOutcome::Permanent(reason) => {
                    self.failed("permanent");
                    tracing::warn!(key = mail.key(), %reason, "mail refused for good; dead-lettered");
                    return self.dead_letter(c, &format!("refused: {reason}")).await;
                }
                SendOutcome::Transient(reason) if attempt >= self.settings.max_attempts => {
                    self.failed("transient");
                    tracing::warn!(key = mail.key(), %reason, attempt, "mail not sent after the last attempt; dead-lettered");
                    let why = format!("not sent after {attempt} attempts: {reason}");
                    return self.dead_letter(c, &why).await;
                }
                SendOutcome::Transient(reason) => {
                    self.failed("transient");
                    let pause = self.settings.delay_after(attempt);
                    tracing::warn!(key = mail.key(), %reason, attempt, retry_in_ms = pause.as_millis() as u64, "mail not sent; trying again");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = self.stop.wait_for(|s| *s) => return Err(stopping()),
                    }
                }
            }
        }
    }

    fn failed(&self, reason: &str) {
        self.metrics
            .mail_failed
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    /// Records the key, retrying while the store is away: a mail accepted and not recorded
    /// would be sent again after a restart.
    async fn record_sent(&mut self, mail: &MailRequest) -> Result<()> {
        let mut attempt = 0;
        loop {
            let now = chrono::Utc::now().timestamp_millis();
            match self.sent.record_sent(mail.key(), now).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(key = mail.key(), error = %e, attempt, "cannot record a sent mail yet; retrying");
                    attempt += 1;
                    tokio::select! {
                        _ = tokio::time::sleep(retry_delay(attempt)) => {}
                        _ = self.stop.wait_for(|s| *s) => return Err(stopping()),
                    }
                }
            }
        }
    }

    /// Appends the request, with its reason and origin in headers, to `notification.dlq`.
    async fn dead_letter(&self, c: &Consumed, reason: &str) -> Result<()> {
        let mut record = c.record.clone();
        record
            .headers
            .extend(dead_letter_headers(reason, c.position, chrono::Utc::now()));
        self.log.append(self.dead_letters, vec![record]).await?;
        self.metrics.mail_dlq.inc();
        Ok(())
    }
}

#[async_trait]
impl Batches for Mailer {
    async fn handle(&mut self, batch: &[Consumed]) -> Result<()> {
        let mut keys = self.keys.for_reading(self.requests, batch).await?;
        for (i, c) in batch.iter().enumerate() {
            match record::erased_person(&c.record) {
                Some(person) => {
                    self.erased(person).await?;
                    // The person's key as it is now, for the requests after the erasure.
                    keys = self
                        .keys
                        .for_reading(self.requests, &batch[i + 1..])
                        .await?;
                }
                None => self.deliver(c, &keys).await?,
            }
        }
        Ok(())
    }
}

//! No SMTP server (a laptop, `--demo`): each mail becomes `<data-dir>/mail/<key>.eml`, the
//! message exactly as it would have gone out, so a newcomer opens it (or reads the sign-in
//! link in it) without a mail server. The log line names the subject and the file, never the
//! body: a sign-in link is a secret.
//!
//! A mail to a person's address is named after the person's id too (`p<id>.<key>.eml`), so
//! that erasing the person deletes their mails ([`MailSender::forget`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use lettre::message::Mailbox;
use udaconnect_core::mail::{MailRequest, MailSender, SendOutcome};
use udaconnect_core::model::PersonId;
use udaconnect_core::{Error, Result};

/// A [`MailSender`] writing `.eml` files into one directory.
pub struct FileSender {
    dir: PathBuf,
    from: Mailbox,
}

impl FileSender {
    pub fn new(dir: PathBuf, from: &str) -> anyhow::Result<FileSender> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| anyhow::anyhow!("--mail-from {from:?}: {e}"))?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("failed to create {}: {e}", dir.display()))?;
        Ok(FileSender { dir, from })
    }

    /// Where the mail with `key` is written: the key's safe characters, then a hash of the
    /// whole key, so two keys never share a file.
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.dir.join(file_name(key))
    }

    /// Where `mail` is written: [`FileSender::path_of`] its key, behind its person's id
    /// when it has one.
    pub fn path_for(&self, mail: &MailRequest) -> PathBuf {
        match mail.person() {
            Some(person) => self.dir.join(format!(
                "{}{}",
                person_prefix(person),
                file_name(mail.key())
            )),
            None => self.path_of(mail.key()),
        }
    }

    /// Deletes the files of mails to `person`; how many there were.
    fn delete_of(dir: &Path, person: PersonId) -> std::io::Result<u64> {
        let prefix = person_prefix(person);
        let mut deleted = 0;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_str().is_some_and(|n| n.starts_with(&prefix)) {
                std::fs::remove_file(entry.path())?;
                deleted += 1;
            }
        }
        if deleted > 0 {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(deleted)
    }
}

/// The start of the names of `person`'s mails. The dot ends the id (`p1.` never starts
/// `p12.`), and no name made from a key alone has a dot before its `.eml`.
fn person_prefix(person: PersonId) -> String {
    format!("p{person}.")
}

/// A mail's file name from its key: the key's safe characters, then a hash of the whole key.
fn file_name(key: &str) -> String {
    let safe: String = key
        .chars()
        .take(80)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}-{:016x}.eml", fnv1a(key.as_bytes()))
}

/// FNV-1a, 64 bits: a stable name part, not a secret.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Writes `bytes` to `path` whole or not at all: a temporary file, synced, renamed, and the
/// directory synced.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("eml.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[async_trait]
impl MailSender for FileSender {
    async fn send(&self, mail: &MailRequest) -> SendOutcome {
        let message = match super::smtp::message(&self.from, mail) {
            Ok(m) => m,
            Err(reason) => return SendOutcome::Permanent(reason),
        };
        let path = self.path_for(mail);
        let bytes = message.formatted();
        let target = path.clone();
        let written = tokio::task::spawn_blocking(move || write_atomically(&target, &bytes)).await;
        match written {
            Ok(Ok(())) => {
                tracing::info!(
                    kind = mail.kind().as_str(),
                    subject = mail.subject(),
                    file = %path.display(),
                    "mail written to a file (no --smtp): open it to read the message"
                );
                SendOutcome::Sent
            }
            Ok(Err(e)) => SendOutcome::Transient(format!("write {}: {e}", path.display())),
            Err(e) => SendOutcome::Transient(format!("write {}: {e}", path.display())),
        }
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn forget(&self, person: PersonId) -> Result<u64> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || FileSender::delete_of(&dir, person))
            .await
            .map_err(|e| Error::Internal(format!("deleting mail files: {e}")))?
            .map_err(|e| Error::Unavailable(format!("deleting mail files: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use udaconnect_core::mail::MailKind;

    fn mail(key: &str, person: Option<PersonId>) -> MailRequest {
        MailRequest::new(key, "a@example.org", "Hi", "x", None, MailKind::SignIn)
            .unwrap()
            .for_person(person)
    }

    #[tokio::test]
    async fn forgetting_a_person_deletes_their_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let files = FileSender::new(dir.path().to_path_buf(), "noreply@test.invalid").unwrap();
        let mails = [
            mail("sign_in:a", Some(1)),
            mail("sign_in:b", Some(1)),
            mail("sign_in:c", Some(12)),
            // A key that looks like a person's file name still names no person.
            mail("p1.sign_in", None),
            mail("p1-x", None),
        ];
        for m in &mails {
            assert_eq!(files.send(m).await, SendOutcome::Sent);
        }
        assert_eq!(files.forget(1).await.unwrap(), 2);
        for (m, kept) in mails.iter().zip([false, false, true, true, true]) {
            assert_eq!(files.path_for(m).exists(), kept, "{m:?}");
        }
        assert_eq!(files.forget(1).await.unwrap(), 0, "nothing left of them");
    }
}

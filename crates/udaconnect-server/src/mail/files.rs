//! No SMTP server (a laptop, `--demo`): each mail becomes `<data-dir>/mail/<key>.eml`, the
//! message exactly as it would have gone out, so a newcomer opens it (or reads the sign-in
//! link in it) without a mail server. The log line names the subject and the file, never the
//! body: a sign-in link is a secret.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use lettre::message::Mailbox;
use udaconnect_core::mail::{MailRequest, MailSender, SendOutcome};
use udaconnect_core::Result;

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
        self.dir
            .join(format!("{safe}-{:016x}.eml", fnv1a(key.as_bytes())))
    }
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
        let path = self.path_of(mail.key());
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
}

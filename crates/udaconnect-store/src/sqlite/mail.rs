use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};
use udaconnect_core::mail::SentMail;
use udaconnect_core::Result;

const SCHEMA: &str = include_str!("../../migrations/sqlite/mail.sql");

sqlite_store!(
    /// The mailer's sent keys in their own SQLite file.
    SqliteSentMail,
    SCHEMA
);

#[async_trait]
impl SentMail for SqliteSentMail {
    async fn was_sent(&self, key: &str) -> Result<bool> {
        let key = key.to_string();
        self.db
            .read(move |c| {
                c.query_row("SELECT 1 FROM mail_sent WHERE key = ?1", [key], |_| Ok(()))
                    .optional()
                    .map(|r| r.is_some())
            })
            .await
    }

    async fn record_sent(&self, key: &str, at_ms: i64) -> Result<()> {
        let key = key.to_string();
        self.db
            .write(move |c| {
                c.execute(
                    "INSERT INTO mail_sent (key, sent_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    params![key, at_ms],
                )
                .map(|_| ())
            })
            .await
    }
}

use async_trait::async_trait;
use udaconnect_core::mail::SentMail;
use udaconnect_core::Result;

use super::Postgres;

/// The mailer's sent keys in table `mail_sent`.
#[derive(Debug, Clone)]
pub struct PostgresSentMail {
    pg: Postgres,
}

impl PostgresSentMail {
    pub fn new(pg: &Postgres) -> Self {
        PostgresSentMail { pg: pg.clone() }
    }
}

#[async_trait]
impl SentMail for PostgresSentMail {
    async fn was_sent(&self, key: &str) -> Result<bool> {
        let rows = self
            .pg
            .query("SELECT 1 FROM mail_sent WHERE key = $1", &[&key])
            .await?;
        Ok(!rows.is_empty())
    }

    async fn record_sent(&self, key: &str, at_ms: i64) -> Result<()> {
        // Idempotent, so the retry on a lost connection is safe.
        self.pg
            .query(
                "INSERT INTO mail_sent (key, sent_at) VALUES ($1, to_timestamp($2::bigint / 1000.0))
                 ON CONFLICT (key) DO NOTHING",
                &[&key, &at_ms],
            )
            .await
            .map(|_| ())
    }
}

-- The mailer's record of what it sent: one row per idempotency key, written after the SMTP
-- server accepted the mail and read before each send, so a request redelivered after a
-- restart is not sent again.
CREATE TABLE IF NOT EXISTS mail_sent (
    key     TEXT PRIMARY KEY,
    sent_at TIMESTAMPTZ NOT NULL
);

-- Each person's key for their records on the log. Destroying a key sets `secret` to NULL and
-- keeps the row as a tombstone, so the person is never keyed again.
CREATE TABLE IF NOT EXISTS person_key (
    person_id    BIGINT PRIMARY KEY,
    version      INT NOT NULL,
    secret       BYTEA,
    destroyed_at TIMESTAMPTZ
);

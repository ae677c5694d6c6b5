-- Each person's key for their records on the log. Destroying a key sets `secret` to NULL and
-- keeps the row as a tombstone, so the person is never keyed again. `secure_delete` makes
-- SQLite overwrite the freed bytes with zeros rather than leave them in free space.
PRAGMA secure_delete = ON;
CREATE TABLE IF NOT EXISTS person_key (
    person_id    INTEGER PRIMARY KEY,
    version      INTEGER NOT NULL,
    secret       BLOB,
    destroyed_at INTEGER
);

-- Applied once to an accounts file, recorded in `udaconnect_migrations` as on PostgreSQL.
-- Whether an account's person is shown by name on the organizers' live map. No row, or
-- `shown` 0, is an anonymous dot: consent is asked for, never assumed. It goes with the
-- account.
CREATE TABLE IF NOT EXISTS account_live_map (
    account_id INTEGER PRIMARY KEY REFERENCES account (id) ON DELETE CASCADE,
    shown      INTEGER NOT NULL,
    changed_at INTEGER NOT NULL
);

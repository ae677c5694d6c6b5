-- Accounts and their credentials. No secret is stored: `hash` is the SHA-256 of a secret and
-- its kind. Times are microseconds since the Unix epoch, UTC.
--
-- secure_delete: deleted rows are overwritten with zeros rather than left in free pages, so
-- an erased account is gone from the file (older copies of its pages stay in the write-ahead
-- log until a checkpoint overwrites them). foreign_keys: an account's credentials go with it.
-- Both are per connection; this script runs on the one writer.
PRAGMA secure_delete = ON;
PRAGMA foreign_keys = ON;

CREATE TABLE IF NOT EXISTS account (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- No reference: persons are person-api's, in a file of their own.
    person_id       INTEGER UNIQUE,
    email           TEXT,
    -- The address in lower case: one account per address, whatever its case.
    email_key       TEXT UNIQUE,
    email_verified  INTEGER NOT NULL DEFAULT 0,
    secondary_email TEXT,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'organizer', 'attendee', 'device')),
    created_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS account_role ON account (role);

CREATE TABLE IF NOT EXISTS account_token (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    hash         BLOB NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'organizer', 'attendee', 'device')),
    scopes       TEXT NOT NULL,
    person_id    INTEGER,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
);
CREATE INDEX IF NOT EXISTS account_token_account ON account_token (account_id);

CREATE TABLE IF NOT EXISTS account_session (
    hash       BLOB PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS account_session_account ON account_session (account_id);

CREATE TABLE IF NOT EXISTS sign_in_link (
    hash       BLOB PRIMARY KEY,
    email      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) WITHOUT ROWID;

-- Tracker devices (OwnTracks, Traccar Client, OsmAnd): each beside its device token. The
-- OsmAnd id, the device's only credential on that protocol, is kept as a SHA-256 hash like
-- every secret.
CREATE TABLE IF NOT EXISTS device (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    person_id    INTEGER NOT NULL,
    name         TEXT NOT NULL,
    token_id     INTEGER NOT NULL REFERENCES account_token (id) ON DELETE CASCADE,
    osmand_hash  BLOB NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    -- Kept to the minute, with the app and battery level (percent) of that ping.
    last_seen_at INTEGER,
    last_app     TEXT,
    battery_pct  INTEGER CHECK (battery_pct BETWEEN 0 AND 100)
);
CREATE INDEX IF NOT EXISTS device_account ON device (account_id);
CREATE INDEX IF NOT EXISTS device_token ON device (token_id);

-- Sessions listed and ended by number, with their last use (to the minute) and the browser
-- that holds them; addresses changed by a link mailed to the new address. Applied once to
-- an accounts file made by `accounts.sql` (SQLite has no ADD COLUMN IF NOT EXISTS), recorded
-- in `udaconnect_migrations` as on PostgreSQL.
ALTER TABLE account_session ADD COLUMN id INTEGER;
-- Sessions of an earlier version numbered in hash order.
UPDATE account_session
   SET id = (SELECT count(*) FROM account_session s WHERE s.hash <= account_session.hash);
CREATE UNIQUE INDEX IF NOT EXISTS account_session_id ON account_session (id);
ALTER TABLE account_session ADD COLUMN last_used_at INTEGER;
ALTER TABLE account_session ADD COLUMN user_agent TEXT;
-- The table has no rowid to number it by: each new session takes the next number. Numbers of
-- deleted accounts' last sessions may come back; a number is only ever used with its account.
CREATE TRIGGER IF NOT EXISTS account_session_number AFTER INSERT ON account_session
WHEN NEW.id IS NULL
BEGIN
    UPDATE account_session
       SET id = (SELECT COALESCE(max(id), 0) + 1 FROM account_session)
     WHERE hash = NEW.hash;
END;

-- An address an account asked for, named by the key of the mail that carries its link. The
-- mailer sets `hash` (of the link's token, never the token) and `expires_at` when it sends.
CREATE TABLE IF NOT EXISTS email_change (
    mail_key   TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    -- Lower case, as the application computes `account.email_key`.
    email_key  TEXT NOT NULL,
    slot       TEXT NOT NULL CHECK (slot IN ('primary', 'secondary')),
    created_at INTEGER NOT NULL,
    hash       BLOB UNIQUE,
    expires_at INTEGER,
    used_at    INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS email_change_account ON email_change (account_id);

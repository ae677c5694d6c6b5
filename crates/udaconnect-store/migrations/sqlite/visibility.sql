-- Whether the people an account's person met may see their name and company. No row, or
-- `visible` 0, is no: consent is asked for, never assumed. It goes with the account.
CREATE TABLE IF NOT EXISTS account_visibility (
    account_id INTEGER PRIMARY KEY REFERENCES account (id) ON DELETE CASCADE,
    visible    INTEGER NOT NULL,
    changed_at INTEGER NOT NULL
);

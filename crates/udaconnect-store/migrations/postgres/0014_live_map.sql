-- Whether an account's person is shown by name on the organizers' live map. No row, or
-- `shown` false, is an anonymous dot: consent is asked for, never assumed. It goes with the
-- account.
CREATE TABLE IF NOT EXISTS account_live_map (
    account_id BIGINT PRIMARY KEY REFERENCES account (id) ON DELETE CASCADE,
    shown      BOOLEAN NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL
);

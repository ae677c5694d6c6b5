-- The audit log: each read of one person's data by another account (an organizer or an
-- admin), which the person sees in their export. Kept until the person is erased; the reader
-- may be gone by then (their id stays, as who it was).
CREATE TABLE IF NOT EXISTS data_read (
    id          BIGSERIAL PRIMARY KEY,
    person_id   BIGINT NOT NULL,
    reader_id   BIGINT NOT NULL,
    reader_role TEXT NOT NULL,
    action      TEXT NOT NULL,
    read_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS data_read_person ON data_read (person_id, read_at);

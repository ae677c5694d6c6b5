-- What attendees decided about the people they met, by person (the other side may have no
-- account). Erasing a person removes every row they are on, either side.
-- A request to exchange e-mail addresses: both must ask before either sees the other's.
CREATE TABLE IF NOT EXISTS reveal_request (
    person_id BIGINT NOT NULL,
    other_id  BIGINT NOT NULL,
    asked_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (person_id, other_id)
);
CREATE INDEX IF NOT EXISTS reveal_request_other ON reveal_request (other_id);
-- A contact taken off a person's list (`dispute`: "I did not meet this person"); the person
-- is never revealed to the other while it stands.
CREATE TABLE IF NOT EXISTS contact_hidden (
    person_id BIGINT NOT NULL,
    other_id  BIGINT NOT NULL,
    dispute   BOOLEAN NOT NULL,
    hidden_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (person_id, other_id)
);
CREATE INDEX IF NOT EXISTS contact_hidden_other ON contact_hidden (other_id);

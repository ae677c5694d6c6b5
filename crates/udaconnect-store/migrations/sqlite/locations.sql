-- Locations, written by location-consumer. Ids come from the log record, so an upsert on the
-- primary key makes redelivery and replay harmless. Time is microseconds since the Unix epoch.
CREATE TABLE IF NOT EXISTS location (
    id            INTEGER PRIMARY KEY,
    person_id     INTEGER NOT NULL,
    latitude      REAL NOT NULL,
    longitude     REAL NOT NULL,
    creation_time INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS location_time ON location (creation_time);
CREATE INDEX IF NOT EXISTS location_person_time ON location (person_id, creation_time);

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
-- No (person_id, creation_time) index: rows arrive in time order, so every index on time
-- grows at its end, but one led by the person takes each row into another page, and each such
-- page is written whole to the WAL at every commit (4 KiB per 40-byte row at 10,000 persons).
-- In this mode the contact index answers per-person questions; the store reads them through
-- the time index.
DROP INDEX IF EXISTS location_person_time;

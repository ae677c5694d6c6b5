-- What the location queries read: one person's track in a window (person, time), everyone's
-- pings in a window (time), and the pings near a place at about a time (place, time).
--
-- The place index is a GiST over the geography and the time together. Measured with `near` on
-- a simulated conference of 1M pings (1,000 attendees, 3 days; tests/postgres.rs, `near_plan`),
-- one attendee's day (368 pings), 5 m: with a GiST on the geography alone, each probe walks
-- every ping ever recorded within the radius (about 6,000 over three days) and intersects
-- them with a time range: 1.25 s with a 60 s gap, 5 to 7 s without. With the time as the
-- second column the gap and the window are searched inside the index: 0.2 to 0.3 s and 3 to
-- 3.8 s. Time as the first column is as good with a gap but 17 s without one. A stored
-- geography column was not worth its space: the cast costs about 0.2 us a row.
DO $$
BEGIN
    -- The original's index on creation_time is the one we want, under the original's name.
    IF to_regclass('creation_time_idx') IS NOT NULL
       AND to_regclass('location_creation_time_idx') IS NULL THEN
        ALTER INDEX creation_time_idx RENAME TO location_creation_time_idx;
    END IF;
END
$$;
CREATE INDEX IF NOT EXISTS location_creation_time_idx ON location (creation_time);
CREATE INDEX IF NOT EXISTS location_person_time_idx ON location (person_id, creation_time);
CREATE INDEX IF NOT EXISTS location_geography_time_idx
    ON location USING gist ((coordinate::geography), creation_time);

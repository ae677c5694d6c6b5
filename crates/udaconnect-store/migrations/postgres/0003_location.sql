-- Locations, written by location-consumer. Ids are assigned at ingest and travel with the
-- record, so the table has no id default and an upsert on the key makes redelivery harmless.
-- The coordinate is a WGS 84 point, x = longitude, y = latitude; creation_time is UTC.
CREATE TABLE IF NOT EXISTS location (
    id            BIGINT PRIMARY KEY,
    person_id     BIGINT NOT NULL REFERENCES person (id),
    coordinate    geometry(Point, 4326) NOT NULL,
    creation_time TIMESTAMP NOT NULL
);

-- Rows of an original database that cannot be repaired, kept as they were with the reason,
-- rather than stored as an invalid point or dropped.
CREATE TABLE IF NOT EXISTS location_rejected (
    id            BIGINT PRIMARY KEY,
    person_id     BIGINT NOT NULL,
    coordinate    geometry NOT NULL,
    creation_time TIMESTAMP NOT NULL,
    reason        TEXT NOT NULL,
    rejected_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The original UdaConnect schema: `id SERIAL`, `person_id INT`, an untyped `coordinate
-- GEOMETRY` without SRID whose rows mix axis orders, and `creation_time DEFAULT NOW()`.
DO $$
BEGIN
    IF (SELECT data_type FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'location' AND column_name = 'id')
       <> 'bigint' THEN
        ALTER TABLE location ALTER COLUMN id TYPE BIGINT;
    END IF;
    IF (SELECT data_type FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'location'
          AND column_name = 'person_id')
       <> 'bigint' THEN
        ALTER TABLE location ALTER COLUMN person_id TYPE BIGINT;
    END IF;

    -- Ids now come from the id leases (id_lease), and times from the pings themselves.
    ALTER TABLE location ALTER COLUMN id DROP DEFAULT;
    ALTER TABLE location ALTER COLUMN creation_time DROP DEFAULT;
    DROP SEQUENCE IF EXISTS location_id_seq;

    IF (SELECT format_type(atttypid, atttypmod) FROM pg_attribute
        WHERE attrelid = 'location'::regclass AND attname = 'coordinate')
       <> 'geometry(Point,4326)' THEN
        -- A B-tree on the raw geometry: no query uses it, and it would be rebuilt below.
        DROP INDEX IF EXISTS coordinate_idx;

        -- A row is (x = longitude, y = latitude) when |y| <= 90; when |y| > 90 it was stored
        -- (x = latitude, y = longitude). Whatever fits neither order moves out, with why.
        -- Range tests are written as BETWEEN so that NaN fails them.
        WITH judged AS (
            SELECT id,
                   CASE
                       WHEN GeometryType(coordinate) <> 'POINT'
                           THEN format('not a point but a %s', GeometryType(coordinate))
                       WHEN ST_IsEmpty(coordinate)
                           THEN 'empty point'
                       WHEN ST_SRID(coordinate) NOT IN (0, 4326)
                           THEN format('unsupported SRID %s', ST_SRID(coordinate))
                       WHEN ST_Y(coordinate) BETWEEN -90 AND 90 THEN
                           CASE WHEN ST_X(coordinate) BETWEEN -180 AND 180 THEN NULL
                           ELSE format('x = %s is not a longitude (y = %s is the latitude)',
                                       ST_X(coordinate), ST_Y(coordinate))
                           END
                       WHEN NOT ST_X(coordinate) BETWEEN -90 AND 90
                           THEN format('neither x = %s nor y = %s is a latitude',
                                       ST_X(coordinate), ST_Y(coordinate))
                       WHEN NOT ST_Y(coordinate) BETWEEN -180 AND 180
                           THEN format('y = %s is not a longitude (x = %s is the latitude)',
                                       ST_Y(coordinate), ST_X(coordinate))
                   END AS reason
            FROM location
        ),
        moved AS (
            DELETE FROM location l
            USING judged j
            WHERE l.id = j.id AND j.reason IS NOT NULL
            RETURNING l.id, l.person_id, l.coordinate, l.creation_time, j.reason
        )
        INSERT INTO location_rejected (id, person_id, coordinate, creation_time, reason)
        SELECT id, person_id, coordinate, creation_time, reason FROM moved
        ON CONFLICT (id) DO NOTHING;

        -- ST_X, ST_Y and ST_MakePoint copy the doubles, so every coordinate keeps its bits.
        ALTER TABLE location ALTER COLUMN coordinate TYPE geometry(Point, 4326) USING
            CASE WHEN ST_Y(coordinate) BETWEEN -90 AND 90
                THEN ST_SetSRID(ST_MakePoint(ST_X(coordinate), ST_Y(coordinate)), 4326)
                ELSE ST_SetSRID(ST_MakePoint(ST_Y(coordinate), ST_X(coordinate)), 4326)
            END;
    END IF;
END
$$;

-- The last line of defence: no stored point has a latitude or longitude out of range (the
-- geography cast would silently wrap it instead of failing).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'location'::regclass AND conname = 'location_coordinate_range') THEN
        ALTER TABLE location ADD CONSTRAINT location_coordinate_range
            CHECK (ST_Y(coordinate) BETWEEN -90 AND 90 AND ST_X(coordinate) BETWEEN -180 AND 180);
    END IF;
END
$$;

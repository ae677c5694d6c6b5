-- The original consumer writes a row with neither id nor time and a point without SRID
-- (`INSERT INTO location (person_id, coordinate) VALUES (5, ST_Point(x, y))`; PostGIS gives it
-- the column's SRID): the table keeps the original's column defaults so that statement goes on
-- working beside UdaConnect. A point out of range is still refused by the range constraint.
-- An id comes from the same lease as location-api's blocks (one at a time), so it never
-- collides with theirs; the time is the insert's, in UTC as every stored time is. Such rows
-- bypass the log: the store engines see them, an index following the log does not.
CREATE OR REPLACE FUNCTION location_next_id() RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    derived_base CONSTANT BIGINT := 4503599627370496; -- 2^52: ids of keyless log records
    leased BIGINT;
BEGIN
    -- As PostgresIdLeaser does: the row starts above every id already stored.
    INSERT INTO id_lease (name, next)
    SELECT 'location', GREATEST(
        (SELECT max(l.id) FROM location l WHERE l.id < derived_base),
        (SELECT max(r.id) FROM location_rejected r WHERE r.id < derived_base),
        0) + 1
    ON CONFLICT (name) DO NOTHING;
    UPDATE id_lease SET next = next + 1
    WHERE name = 'location' AND next < derived_base - 1
    RETURNING next - 1 INTO leased;
    IF leased IS NULL THEN
        RAISE EXCEPTION 'location ids exhausted';
    END IF;
    RETURN leased;
END
$$;

ALTER TABLE location ALTER COLUMN id SET DEFAULT location_next_id();
ALTER TABLE location ALTER COLUMN creation_time SET DEFAULT (now() AT TIME ZONE 'UTC');

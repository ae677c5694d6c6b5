-- What a tracker app said of a ping beside its accuracy: altitude (metres), speed (metres per
-- second, whatever unit the app sent), heading (degrees), battery (percent) and the app's name
-- (`owntracks`, `osmand`, `traccar-client`, `browser`). NULL where the app said nothing, as the
-- original JSON and older rows do; a NULL costs a row a bit of its null bitmap. Nothing is
-- indexed: only a person's own reads (the export) show them.
ALTER TABLE location
    ADD COLUMN IF NOT EXISTS altitude_m double precision,
    ADD COLUMN IF NOT EXISTS speed_mps double precision,
    ADD COLUMN IF NOT EXISTS heading_deg double precision,
    ADD COLUMN IF NOT EXISTS battery_pct double precision,
    ADD COLUMN IF NOT EXISTS app text;

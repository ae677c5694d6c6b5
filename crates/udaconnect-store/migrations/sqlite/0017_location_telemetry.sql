-- What a tracker app said of a ping beside its accuracy: altitude (metres), speed (metres per
-- second), heading (degrees), battery (percent) and the app's name. NULL where the app said
-- nothing. Applied once to every locations file, new or made before.
ALTER TABLE location ADD COLUMN altitude_m REAL;
ALTER TABLE location ADD COLUMN speed_mps REAL;
ALTER TABLE location ADD COLUMN heading_deg REAL;
ALTER TABLE location ADD COLUMN battery_pct REAL;
ALTER TABLE location ADD COLUMN app TEXT;

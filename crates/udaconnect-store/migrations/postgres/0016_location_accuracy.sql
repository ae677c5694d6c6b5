-- A ping's horizontal accuracy in metres, where its phone said it (tracker apps do; the
-- original JSON and older rows have none: NULL, a ping that counts whatever the query's
-- `max_accuracy`). Double precision as every engine keeps it, so both modes answer the same;
-- a NULL costs a row nothing.
ALTER TABLE location ADD COLUMN IF NOT EXISTS accuracy_m double precision;

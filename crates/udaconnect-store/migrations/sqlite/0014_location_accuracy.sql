-- A ping's horizontal accuracy in metres, where its phone said it (tracker apps do; the
-- original JSON and older rows have none: NULL, a ping that counts whatever the query's
-- `max_accuracy`). Applied once to every locations file, new or made before.
ALTER TABLE location ADD COLUMN accuracy_m REAL;

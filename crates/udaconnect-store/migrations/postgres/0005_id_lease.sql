-- Hi/lo id leases shared by every location-api process: `next` is the first id never leased.
-- A row is created by the first lease of its name, above every id already in `location`.
CREATE TABLE IF NOT EXISTS id_lease (
    name TEXT PRIMARY KEY,
    next BIGINT NOT NULL
);

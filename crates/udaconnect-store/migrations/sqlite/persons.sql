-- Persons, owned by person-api. AUTOINCREMENT keeps new ids above every id ever stored,
-- imported ones included.
CREATE TABLE IF NOT EXISTS person (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    first_name   TEXT NOT NULL,
    last_name    TEXT NOT NULL,
    company_name TEXT NOT NULL
);

-- Persons, owned by person-api. On a fresh database this creates the table; on the original
-- UdaConnect database (`id SERIAL`) it widens the ids and moves the id sequence past the rows
-- the original loaded with explicit ids, which it never did (its first POST answered 500).
CREATE TABLE IF NOT EXISTS person (
    id           BIGSERIAL PRIMARY KEY,
    first_name   VARCHAR NOT NULL,
    last_name    VARCHAR NOT NULL,
    company_name VARCHAR NOT NULL
);

DO $$
DECLARE
    seq regclass;
    top bigint;
BEGIN
    IF (SELECT data_type FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'person' AND column_name = 'id')
       <> 'bigint' THEN
        ALTER TABLE person ALTER COLUMN id TYPE BIGINT;
    END IF;

    seq := pg_get_serial_sequence('person', 'id')::regclass;
    IF seq IS NULL THEN
        -- A person table without an id default: give it the sequence BIGSERIAL would have.
        CREATE SEQUENCE IF NOT EXISTS person_id_seq AS BIGINT OWNED BY person.id;
        ALTER TABLE person ALTER COLUMN id SET DEFAULT nextval('person_id_seq');
        seq := 'person_id_seq'::regclass;
    ELSE
        EXECUTE format('ALTER SEQUENCE %s AS BIGINT', seq);
    END IF;

    -- Never backwards: only ever raise the sequence to the largest stored id.
    SELECT max(id) INTO top FROM person;
    IF top IS NOT NULL AND top > COALESCE(pg_sequence_last_value(seq), 0) THEN
        PERFORM setval(seq, top);
    END IF;
END
$$;

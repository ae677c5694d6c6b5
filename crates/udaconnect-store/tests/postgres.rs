//! The PostgreSQL/PostGIS stores against a real server: each test creates its own database on
//! `UDACONNECT_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/postgres`, a role
//! that may create databases and the postgis extension) and drops it at the end.
//!
//! Answers are held to the SQLite stores and to the contact engine's brute-force oracle, so
//! both modes give the same results to the bit.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_postgres::NoTls;
use udaconnect_core::contact::{connections, connections_oracle, ConnectionQuery, Point};
use udaconnect_core::geo::EARTH_RADIUS_M;
use udaconnect_core::model::{Location, NewPerson, Person};
use udaconnect_core::ports::{IdLeaser, LocationStore, Near, NearQuery, PersonStore};
use udaconnect_core::record::DERIVED_ID_BASE;
use udaconnect_core::simulate::Rng;
use udaconnect_core::time::{from_micros, parse_timestamp, to_micros, Window};
use udaconnect_core::{Error, ErrorCode};
use udaconnect_store::postgres::migrate::{self, MIGRATIONS};
use udaconnect_store::{
    Postgres, PostgresIdLeaser, PostgresLocationStore, PostgresOptions, PostgresPersonStore,
    SqliteLocationStore, SqlitePersonStore,
};

// ---------------------------------------------------------------------------------------------
// A database per test

fn admin_url() -> String {
    std::env::var("UDACONNECT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `url` with its database name replaced (URL form only, which is what the tests are given).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let prefix = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{prefix}/{name}{query}")
}

async fn admin() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&admin_url(), NoTls)
        .await
        .expect("the test PostgreSQL server answers (scripts/postgis starts it)");
    tokio::spawn(connection);
    client
}

/// A fresh, empty database, dropped (with its connections) when this goes out of scope, even
/// when the test fails.
struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    async fn new() -> TestDb {
        let name = format!("udaconnect_test_{:016x}", random_u64());
        admin()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        TestDb {
            url: with_database(&admin_url(), &name),
            name,
        }
    }

    async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    async fn connect(&self) -> Postgres {
        Postgres::connect(&self.url)
            .await
            .expect("connect and migrate")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot block on itself: a thread with a
        // runtime of its own does the work.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                admin()
                    .await
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
            })
        })
        .join();
    }
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    h.finish()
}

// ---------------------------------------------------------------------------------------------
// Data

fn seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seed-data")
}

fn seed_persons() -> Vec<Person> {
    let mut reader = csv::Reader::from_path(seed_dir().join("persons.csv")).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            Person {
                id: r[0].parse().unwrap(),
                first_name: r[1].to_string(),
                last_name: r[2].to_string(),
                company_name: r[3].to_string(),
            }
        })
        .collect()
}

/// `(id, person_id, a, b, time)` rows of a seed file: latitude, longitude in `locations.csv`,
/// the original's x, y in `locations_raw_axes.csv`.
fn seed_rows(file: &str) -> Vec<(i64, i64, f64, f64, DateTime<Utc>)> {
    let mut reader = csv::Reader::from_path(seed_dir().join(file)).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                r[0].parse().unwrap(),
                r[1].parse().unwrap(),
                r[2].parse().unwrap(),
                r[3].parse().unwrap(),
                parse_timestamp(&r[4]).unwrap(),
            )
        })
        .collect()
}

fn seed_locations() -> Vec<Location> {
    seed_rows("locations.csv")
        .into_iter()
        .map(
            |(id, person_id, latitude, longitude, creation_time)| Location {
                id,
                person_id,
                latitude,
                longitude,
                creation_time,
            },
        )
        .collect()
}

fn point(l: &Location) -> Point {
    Point {
        id: l.id,
        person_id: l.person_id,
        lat: l.latitude,
        lon: l.longitude,
        t: to_micros(l.creation_time),
    }
}

fn points(ls: &[Location]) -> Vec<Point> {
    ls.iter().map(point).collect()
}

fn persons(ids: impl IntoIterator<Item = i64>) -> Vec<Person> {
    ids.into_iter()
        .map(|id| Person {
            id,
            first_name: format!("First{id}"),
            last_name: format!("Last{id}"),
            company_name: format!("Company{id}"),
        })
        .collect()
}

fn loc(id: i64, person_id: i64, latitude: f64, longitude: f64, t: i64) -> Location {
    Location {
        id,
        person_id,
        latitude,
        longitude,
        creation_time: from_micros(t),
    }
}

/// Every location by id, bit for bit comparable.
fn by_id(ls: &[Location]) -> BTreeMap<i64, (i64, u64, u64, i64)> {
    ls.iter()
        .map(|l| {
            (
                l.id,
                (
                    l.person_id,
                    l.latitude.to_bits(),
                    l.longitude.to_bits(),
                    to_micros(l.creation_time),
                ),
            )
        })
        .collect()
}

async fn column_type(c: &tokio_postgres::Client, table: &str, column: &str) -> String {
    c.query_one(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
         WHERE attrelid = $1::text::regclass AND attname = $2",
        &[&table, &column],
    )
    .await
    .unwrap()
    .get(0)
}

/// The schema as the catalogue describes it: columns, indexes, constraints.
async fn schema(c: &tokio_postgres::Client) -> Vec<String> {
    let mut out: Vec<String> = c
        .query(
            "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
             FROM information_schema.columns
             WHERE table_schema = 'public'
               AND table_name IN ('person', 'location', 'location_rejected', 'id_lease')",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for sql in [
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'
           AND tablename IN ('person', 'location', 'location_rejected', 'id_lease')",
        "SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
           WHERE conrelid IN ('person'::regclass, 'location'::regclass)",
    ] {
        out.extend(
            c.query(sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0)),
        );
    }
    out.push(format!(
        "location.coordinate {}",
        column_type(c, "location", "coordinate").await
    ));
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// Migrations

#[tokio::test]
async fn migrations_build_the_schema_and_a_second_run_changes_nothing() {
    let db = TestDb::new().await;
    let pg = db.connect().await;
    let c = db.client().await;

    let recorded: Vec<i32> = c
        .query(
            "SELECT version FROM udaconnect_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        recorded,
        MIGRATIONS.iter().map(|m| m.version).collect::<Vec<_>>()
    );
    assert_eq!(
        column_type(&c, "location", "coordinate").await,
        "geometry(Point,4326)"
    );
    assert_eq!(column_type(&c, "location", "id").await, "bigint");
    assert_eq!(column_type(&c, "location", "person_id").await, "bigint");
    assert_eq!(column_type(&c, "person", "id").await, "bigint");
    assert_eq!(
        column_type(&c, "location", "creation_time").await,
        "timestamp without time zone"
    );
    let before = schema(&c).await;
    for index in [
        "location_geography_time_idx",
        "location_person_time_idx",
        "location_creation_time_idx",
    ] {
        assert!(
            before.iter().any(|s| s.contains(index)),
            "{index} missing: {before:#?}"
        );
    }

    // Again through the runner: nothing left to apply.
    assert_eq!(migrate::run(&pg).await.unwrap(), Vec::<i32>::new());
    let again = db.connect().await;
    again.ping().await.unwrap();
    // Each file on its own is idempotent too, so a half-recorded run cannot break a start.
    for m in MIGRATIONS {
        c.batch_execute(m.sql)
            .await
            .unwrap_or_else(|e| panic!("{} twice: {e:?}", m.name));
    }
    assert_eq!(schema(&c).await, before);
    let recorded: i64 = c
        .query_one("SELECT count(*) FROM udaconnect_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, MIGRATIONS.len() as i64);
}

#[tokio::test]
async fn processes_starting_together_migrate_once() {
    let db = TestDb::new().await;
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { Postgres::connect(&url).await })
        })
        .collect();
    for s in starts {
        s.await.unwrap().expect("every process starts");
    }
    let c = db.client().await;
    let rows: i64 = c
        .query_one("SELECT count(*) FROM udaconnect_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, MIGRATIONS.len() as i64);
}

/// The original UdaConnect schema, as its database `geoconnections` has it.
const ORIGINAL_SCHEMA: &str = "
    CREATE EXTENSION IF NOT EXISTS postgis;
    CREATE TABLE person (id SERIAL PRIMARY KEY, first_name VARCHAR NOT NULL,
        last_name VARCHAR NOT NULL, company_name VARCHAR NOT NULL);
    CREATE TABLE location (id SERIAL PRIMARY KEY, person_id INT NOT NULL,
        coordinate GEOMETRY NOT NULL, creation_time TIMESTAMP NOT NULL DEFAULT NOW(),
        FOREIGN KEY (person_id) REFERENCES person(id));
    CREATE INDEX coordinate_idx ON location (coordinate);
    CREATE INDEX creation_time_idx ON location (creation_time);
";

#[tokio::test]
async fn an_original_database_is_repaired_in_place() {
    let db = TestDb::new().await;
    let c = db.client().await;
    c.batch_execute(ORIGINAL_SCHEMA).await.unwrap();
    // As the original loaded its seed: explicit ids, sequences left behind, raw x and y
    // without SRID.
    for p in seed_persons() {
        c.execute(
            "INSERT INTO person (id, first_name, last_name, company_name) VALUES ($1, $2, $3, $4)",
            &[&(p.id as i32), &p.first_name, &p.last_name, &p.company_name],
        )
        .await
        .unwrap();
    }
    let raw = seed_rows("locations_raw_axes.csv");
    for (id, person_id, x, y, t) in &raw {
        c.execute(
            "INSERT INTO location (id, person_id, coordinate, creation_time)
             VALUES ($1, $2, ST_MakePoint($3, $4), $5)",
            &[&(*id as i32), &(*person_id as i32), x, y, &t.naive_utc()],
        )
        .await
        .unwrap();
    }
    // Rows no axis order makes valid, and two that can still be read.
    let odd = [
        (900, "ST_MakePoint(100, 100)", false),
        (901, "ST_MakePoint(200, 45)", false),
        (902, "ST_MakePoint(45, 200)", false),
        (903, "'LINESTRING(0 0, 1 1)'::geometry", false),
        (904, "ST_MakePoint('NaN'::float8, 10)", false),
        (905, "'POINT EMPTY'::geometry", false),
        (906, "ST_SetSRID(ST_MakePoint(1, 2), 3857)", false),
        (907, "ST_SetSRID(ST_MakePoint(35.25, -106.5), 4326)", true),
        (908, "'POINT Z (-122.25 37.5 12)'::geometry", true),
    ];
    for (id, geometry, _) in odd {
        c.batch_execute(&format!(
            "INSERT INTO location (id, person_id, coordinate, creation_time)
             VALUES ({id}, 1, {geometry}, '2020-07-07 10:00:00')"
        ))
        .await
        .unwrap();
    }

    let pg = db.connect().await;
    let store = PostgresLocationStore::new(&pg);

    // Every seed location as the normalised file has it, to the bit.
    let mut expected = seed_locations();
    expected.push(loc(
        907,
        1,
        35.25,
        -106.5,
        to_micros(parse_timestamp("2020-07-07T10:00:00Z").unwrap()),
    ));
    expected.push(loc(
        908,
        1,
        37.5,
        -122.25,
        to_micros(parse_timestamp("2020-07-07T10:00:00Z").unwrap()),
    ));
    let stored = store.scan(i64::MIN, i64::MAX, usize::MAX).await.unwrap();
    assert_eq!(by_id(&stored), by_id(&expected));
    assert!(stored.iter().all(|l| l.latitude.abs() <= 90.0));
    // At least one seed row really was swapped, or this test proves nothing.
    assert!(raw.iter().any(|r| r.3.abs() > 90.0));

    let rejected: BTreeMap<i64, String> = c
        .query("SELECT id, reason FROM location_rejected", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected_rejected: Vec<i64> = odd.iter().filter(|o| !o.2).map(|o| o.0).collect();
    assert_eq!(
        rejected.keys().copied().collect::<Vec<_>>(),
        expected_rejected
    );
    assert!(rejected.values().all(|r| !r.is_empty()), "{rejected:?}");
    assert!(rejected[&900].contains("latitude"), "{}", rejected[&900]);

    assert_eq!(
        column_type(&c, "location", "coordinate").await,
        "geometry(Point,4326)"
    );
    assert_eq!(column_type(&c, "location", "id").await, "bigint");
    assert_eq!(column_type(&c, "person", "id").await, "bigint");
    let srids: Vec<i32> = c
        .query("SELECT DISTINCT ST_SRID(coordinate) FROM location", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(srids, vec![4326]);

    // New ids continue above the imported ones.
    let persons = PostgresPersonStore::new(&pg);
    let created = persons
        .create(NewPerson {
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            company_name: "Engines".into(),
        })
        .await
        .unwrap();
    assert_eq!(created.id, 10);
    let leaser = PostgresIdLeaser::new(&pg, "location");
    let first = leaser.lease(4096).await.unwrap();
    assert!(first > 908, "{first}");
    store
        .upsert(&[loc(first, created.id, 1.0, 2.0, 0)])
        .await
        .unwrap();

    // The same schema as a fresh database, and a restart changes nothing.
    let fresh = TestDb::new().await;
    fresh.connect().await;
    assert_eq!(schema(&c).await, schema(&fresh.client().await).await);
    db.connect().await;
    assert_eq!(store.count().await.unwrap(), expected.len() as u64 + 1);
}

// ---------------------------------------------------------------------------------------------
// Persons

#[tokio::test]
async fn persons_behave_as_in_sqlite() {
    let db = TestDb::new().await;
    let pg = db.connect().await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqlitePersonStore::open(dir.path().join("persons.sqlite3")).unwrap();
    let postgres = PostgresPersonStore::new(&pg);
    let stores: [&dyn PersonStore; 2] = [&sqlite, &postgres];

    let mut batch = seed_persons();
    // The same id twice in one batch: the last one wins.
    batch.push(Person {
        id: 5,
        first_name: "Taco".into(),
        last_name: "Fargo".into(),
        company_name: "Renamed".into(),
    });
    for s in stores {
        s.import(batch.clone()).await.unwrap();
        s.import(persons([3, 7])).await.unwrap();
        // Imported twice: updated, not duplicated.
        s.import(persons([7])).await.unwrap();
    }
    let mut created = Vec::new();
    for s in stores {
        let mut ids = Vec::new();
        for i in 0..3 {
            let p = s
                .create(NewPerson {
                    first_name: format!("New{i}"),
                    last_name: "Person".into(),
                    company_name: "Co".into(),
                })
                .await
                .unwrap();
            ids.push(p.id);
        }
        // Above an import that came after them, too.
        s.import(persons([100])).await.unwrap();
        let next = s
            .create(NewPerson {
                first_name: "After".into(),
                last_name: "Import".into(),
                company_name: "Co".into(),
            })
            .await
            .unwrap();
        ids.push(next.id);
        created.push(ids);
    }
    assert_eq!(created[0], vec![10, 11, 12, 101]);
    assert_eq!(created[0], created[1]);

    for (after, limit) in [
        (None, 100),
        (None, 2),
        (Some(5), 3),
        (Some(101), 10),
        (Some(i64::MIN), usize::MAX),
    ] {
        assert_eq!(
            sqlite.list(after, limit).await.unwrap(),
            postgres.list(after, limit).await.unwrap(),
            "list({after:?}, {limit})"
        );
    }
    let ids = [9, 1, 1, 42, 5, -3, 100];
    assert_eq!(
        sqlite.get_many(&ids).await.unwrap(),
        postgres.get_many(&ids).await.unwrap()
    );
    assert_eq!(postgres.get_many(&[]).await.unwrap(), vec![]);
    assert_eq!(
        postgres.get(5).await.unwrap().unwrap().company_name,
        "Renamed"
    );
    assert_eq!(postgres.get(42).await.unwrap(), None);
    postgres.ping().await.unwrap();
}

#[tokio::test]
async fn creates_racing_an_import_never_collide() {
    let db = TestDb::new().await;
    let pg = db.connect().await;
    let store = PostgresPersonStore::new(&pg);
    let creators: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for _ in 0..25 {
                    let p = store
                        .create(NewPerson {
                            first_name: "A".into(),
                            last_name: "B".into(),
                            company_name: "C".into(),
                        })
                        .await
                        .unwrap();
                    ids.push(p.id);
                }
                ids
            })
        })
        .collect();
    for round in 0..10 {
        store
            .import(persons([round * 7 + 3, round * 7 + 40]))
            .await
            .unwrap();
    }
    let mut all = HashSet::new();
    for c in creators {
        for id in c.await.unwrap() {
            assert!(all.insert(id), "id {id} created twice");
        }
    }
    assert_eq!(all.len(), 100);
}

// ---------------------------------------------------------------------------------------------
// Locations

async fn location_stores(
    db: &TestDb,
    person_ids: impl IntoIterator<Item = i64>,
) -> (Postgres, PostgresLocationStore) {
    let pg = db.connect().await;
    // Locations reference persons.
    PostgresPersonStore::new(&pg)
        .import(persons(person_ids))
        .await
        .unwrap();
    let store = PostgresLocationStore::new(&pg);
    (pg, store)
}

#[tokio::test]
async fn upserts_are_idempotent_and_reads_match_sqlite() {
    let db = TestDb::new().await;
    let (_pg, postgres) = location_stores(&db, [1, 5, 6, 8, 9]).await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteLocationStore::open(dir.path().join("locations.sqlite3")).unwrap();
    let stores: [&dyn LocationStore; 2] = [&sqlite, &postgres];

    let seed = seed_locations();
    let mut moved = seed.clone();
    for l in &mut moved {
        l.latitude += 1.0;
    }
    for s in stores {
        s.upsert(&seed).await.unwrap();
        // Redelivered, and redelivered changed: the first write stays.
        s.upsert(&seed).await.unwrap();
        s.upsert(&moved[..10]).await.unwrap();
        // The same id twice in one batch: the first one is kept.
        s.upsert(&[loc(1000, 1, 10.0, 20.0, 5), loc(1000, 1, 11.0, 21.0, 6)])
            .await
            .unwrap();
        s.upsert(&[]).await.unwrap();
        assert_eq!(s.count().await.unwrap(), seed.len() as u64 + 1);
    }
    assert_eq!(postgres.get(1000).await.unwrap().unwrap().latitude, 10.0);
    assert_eq!(postgres.get(-1).await.unwrap(), None);
    for id in [29, 30, 68, 1000, 1001] {
        assert_eq!(
            sqlite.get(id).await.unwrap(),
            postgres.get(id).await.unwrap()
        );
    }
    let july = Window::new(
        parse_timestamp("2020-07-01T00:00:00Z").unwrap(),
        parse_timestamp("2020-08-01T00:00:00Z").unwrap(),
    );
    // A window whose end is exactly a stored time leaves that time out.
    let edge = Window {
        start: to_micros(seed[0].creation_time),
        end: to_micros(seed[5].creation_time),
    };
    for window in [Window::all(), july, edge, Window { start: 10, end: 5 }] {
        for person in [None, Some(1), Some(6), Some(77)] {
            assert_eq!(
                sqlite.in_window(window, person).await.unwrap(),
                postgres.in_window(window, person).await.unwrap(),
                "in_window({window:?}, {person:?})"
            );
        }
    }
    for (after, until, limit) in [
        (i64::MIN, i64::MAX, usize::MAX),
        (29, i64::MAX, 5),
        (60, i64::MAX, 100),
        (1000, i64::MAX, 1),
        (29, 40, 100),
        (29, 30, 100),
        (30, 30, 100),
        (40, 29, 100),
    ] {
        let from_sqlite = sqlite.scan(after, until, limit).await.unwrap();
        assert!(from_sqlite.iter().all(|l| l.id > after && l.id <= until));
        assert_eq!(
            from_sqlite,
            postgres.scan(after, until, limit).await.unwrap(),
            "scan({after}, {until}, {limit})"
        );
    }
    let range = sqlite.id_range().await.unwrap();
    assert_eq!(range, postgres.id_range().await.unwrap());
    let all = sqlite.scan(i64::MIN, i64::MAX, usize::MAX).await.unwrap();
    assert_eq!(
        range,
        Some((all.first().unwrap().id, all.last().unwrap().id))
    );
    // Large batches go in several statements, still all at once.
    let many: Vec<Location> = (0..45_000)
        .map(|i| {
            loc(
                10_000 + i,
                [1, 5, 6, 8, 9][(i % 5) as usize],
                37.5,
                -122.2,
                i,
            )
        })
        .collect();
    postgres.upsert(&many).await.unwrap();
    assert_eq!(
        postgres.count().await.unwrap(),
        seed.len() as u64 + 1 + 45_000
    );

    postgres.clear().await.unwrap();
    assert_eq!(postgres.count().await.unwrap(), 0);
    assert_eq!(postgres.id_range().await.unwrap(), None);
    sqlite.clear().await.unwrap();
    assert_eq!(sqlite.id_range().await.unwrap(), None);
    postgres.ping().await.unwrap();
}

#[tokio::test]
async fn coordinates_and_times_round_trip_bit_for_bit() {
    let db = TestDb::new().await;
    let (_pg, store) = location_stores(&db, [1]).await;
    let mut rng = Rng::new(7);
    let mut ls = vec![
        loc(1, 1, 90.0, 180.0, 0),
        loc(2, 1, -90.0, -180.0, 253_402_300_799_999_999), // 9999-12-31T23:59:59.999999Z
        loc(3, 1, -0.0, -0.0, 1),
        loc(4, 1, 5e-324, -5e-324, 1_594_118_226_123_456),
        loc(
            5,
            1,
            37.553_441_000_000_01,
            -122.290_524,
            1_594_118_226_000_001,
        ),
        loc(6, 1, 1.0 / 3.0, std::f64::consts::PI, 42),
    ];
    for id in 7..500 {
        ls.push(loc(
            id,
            1,
            rng.range(-90.0, 90.0),
            rng.range(-180.0, 180.0),
            (rng.next_u64() % 253_402_300_800_000_000) as i64,
        ));
    }
    store.upsert(&ls).await.unwrap();
    let back = store.scan(0, i64::MAX, usize::MAX).await.unwrap();
    assert_eq!(by_id(&back), by_id(&ls));
    for l in &ls {
        let one = store.get(l.id).await.unwrap().unwrap();
        assert_eq!(one.latitude.to_bits(), l.latitude.to_bits());
        assert_eq!(one.longitude.to_bits(), l.longitude.to_bits());
        assert_eq!(one.creation_time, l.creation_time);
    }
}

#[tokio::test]
async fn a_point_out_of_range_is_never_stored() {
    let db = TestDb::new().await;
    let (_pg, store) = location_stores(&db, [1]).await;
    for (lat, lon) in [
        (90.5, 0.0),
        (0.0, 180.5),
        (f64::NAN, 0.0),
        (0.0, f64::INFINITY),
    ] {
        let err = store.upsert(&[loc(1, 1, lat, lon, 0)]).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Internal, "{err}");
    }
    assert_eq!(store.count().await.unwrap(), 0);
}

// ---------------------------------------------------------------------------------------------
// Id leases

#[tokio::test]
async fn id_leases_are_unique_across_processes_and_restarts() {
    let db = TestDb::new().await;
    let (pg, store) = location_stores(&db, [1]).await;
    // Ids already stored, and a derived one (original producers) that leases must not chase.
    store
        .upsert(&[
            loc(5000, 1, 0.0, 0.0, 0),
            loc(DERIVED_ID_BASE + 3, 1, 0.0, 0.0, 0),
        ])
        .await
        .unwrap();
    let other_process = Postgres::connect(&db.url).await.unwrap();
    let leasers = [
        PostgresIdLeaser::new(&pg, "location"),
        PostgresIdLeaser::new(&other_process, "location"),
    ];
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let leaser = leasers[i % 2].clone();
            tokio::spawn(async move {
                let mut rng = Rng::new(i as u64);
                let mut blocks = Vec::new();
                for _ in 0..40 {
                    let size = 1 + rng.below(5000) as u64;
                    blocks.push((leaser.lease(size).await.unwrap(), size as i64));
                }
                blocks
            })
        })
        .collect();
    let mut blocks = Vec::new();
    for t in tasks {
        blocks.extend(t.await.unwrap());
    }
    blocks.sort_unstable();
    assert!(blocks[0].0 > 5000, "{blocks:?}");
    for pair in blocks.windows(2) {
        assert!(pair[0].0 + pair[0].1 <= pair[1].0, "overlap: {pair:?}");
    }
    let top = blocks.last().map(|b| b.0 + b.1).unwrap();

    // Zero means one; reserve_through never goes back.
    let a = leasers[0].lease(0).await.unwrap();
    assert_eq!(a, top);
    leasers[1].reserve_through(a + 10_000).await.unwrap();
    leasers[0].reserve_through(5).await.unwrap();
    // A restart (a new leaser on a new pool) continues where the leases stopped.
    let restarted = PostgresIdLeaser::new(&Postgres::connect(&db.url).await.unwrap(), "location");
    assert_eq!(restarted.lease(10).await.unwrap(), a + 10_001);
    // Another name counts apart, also above the stored ids.
    let other = PostgresIdLeaser::new(&pg, "other");
    assert_eq!(other.lease(1).await.unwrap(), 5001);

    // The derived id space is never leased.
    assert!(leasers[0].reserve_through(DERIVED_ID_BASE).await.is_err());
    leasers[0]
        .reserve_through(DERIVED_ID_BASE - 10)
        .await
        .unwrap();
    assert!(leasers[0].lease(100).await.is_err());
    assert!(leasers[1].lease(9).await.is_err());
    assert_eq!(leasers[1].lease(8).await.unwrap(), DERIVED_ID_BASE - 9);
    assert!(leasers[1].lease(1).await.is_err());
}

// ---------------------------------------------------------------------------------------------
// near

/// A point `north_m` and `east_m` from (lat, lon), longitude wrapped into [-180, 180].
fn offset(lat: f64, lon: f64, north_m: f64, east_m: f64) -> (f64, f64) {
    let m_per_degree = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
    let lat2 = lat + north_m / m_per_degree;
    let mut lon2 = lon + east_m / (m_per_degree * lat.to_radians().cos());
    if lon2 > 180.0 {
        lon2 -= 360.0;
    }
    if lon2 < -180.0 {
        lon2 += 360.0;
    }
    (lat2, lon2)
}

/// Random pings of six persons crowded within a few metres, and pings placed exactly on the
/// edges a query has: at the distance, at the window's ends, at the time gap.
fn random_pings(seed: u64, distance_m: f64, gap_us: i64) -> Vec<Location> {
    let mut rng = Rng::new(seed);
    let centres = [
        (37.553, -122.2925),
        (0.0, 179.9999),
        (89.9995, 10.0),
        (-33.9, 18.4),
    ];
    let (clat, clon) = centres[seed as usize % centres.len()];
    let t0: i64 = 1_594_116_000_000_000;
    let mut out = Vec::new();
    let mut id = 1 + (seed as i64) * 10_000;
    for _ in 0..220 {
        let (lat, lon) = offset(clat, clon, rng.range(-12.0, 12.0), rng.range(-12.0, 12.0));
        // Times on a coarse grid so that pings share times and the gap lands on some.
        let t = t0
            + (rng.below(400) as i64) * 1_500_000
            + if rng.below(4) == 0 {
                rng.below(1000) as i64
            } else {
                0
            };
        out.push(loc(id, 1 + rng.below(6) as i64, lat, lon, t));
        id += 1;
    }
    // Edges around some of person 1's pings.
    let own: Vec<Location> = out
        .iter()
        .filter(|l| l.person_id == 1)
        .take(6)
        .cloned()
        .collect();
    let d_degrees = (distance_m / EARTH_RADIUS_M).to_degrees();
    for o in own {
        let t = to_micros(o.creation_time);
        let at = |lat: f64, lon: f64, t: i64, id: i64| loc(id, 2 + (id % 5), lat, lon, t);
        let edges = [
            (o.latitude + d_degrees, o.longitude, t),
            (o.latitude - d_degrees, o.longitude, t),
            (o.latitude + d_degrees * 1.000_001, o.longitude, t),
            (o.latitude, o.longitude, t + gap_us),
            (o.latitude, o.longitude, t - gap_us),
            (o.latitude, o.longitude, t + gap_us + 1),
            (o.latitude, o.longitude, t - gap_us - 1),
            (o.latitude + d_degrees, o.longitude, t + gap_us),
        ];
        for (lat, lon, t) in edges {
            if lat.abs() <= 90.0 {
                out.push(at(lat, lon, t, id));
                id += 1;
            }
        }
    }
    out
}

/// What the contact engine answers from a store's `near`.
fn answer(near: &Near, q: &ConnectionQuery) -> Vec<Point> {
    connections(&points(&near.own), &points(&near.candidates), q)
}

fn sorted_by_time_and_id(ls: &[Location]) -> bool {
    ls.windows(2)
        .all(|w| (w[0].creation_time, w[0].id) < (w[1].creation_time, w[1].id))
}

#[tokio::test]
async fn near_gives_the_answers_of_the_whole_window() {
    let db = TestDb::new().await;
    let (_pg, postgres) = location_stores(&db, 1..=6).await;
    let mut checked = 0;
    let mut nonempty = 0;
    for seed in 0..8u64 {
        let distance_m = [5.0, 1.0, 12.5, 3.0][seed as usize % 4];
        let gap_us = [30_000_000, 1_500_000, 0, 7_000_000][seed as usize % 4];
        let pings = random_pings(seed, distance_m, gap_us);
        postgres.clear().await.unwrap();
        postgres.upsert(&pings).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteLocationStore::open(dir.path().join("l.sqlite3")).unwrap();
        sqlite.upsert(&pings).await.unwrap();
        let all = points(&pings);

        let mut times: Vec<i64> = pings.iter().map(|l| to_micros(l.creation_time)).collect();
        times.sort_unstable();
        let windows = [
            Window::all(),
            Window {
                start: times[times.len() / 4],
                end: times[times.len() * 3 / 4],
            },
            Window {
                start: times[10],
                end: times[10],
            },
            Window {
                start: times[times.len() / 2],
                end: times[times.len() / 2] + gap_us,
            },
        ];
        for window in windows {
            for person_id in [1, 2, 6, 99] {
                for max_gap_us in [None, Some(gap_us), Some(0), Some(1), Some(i64::MAX)] {
                    for d in [distance_m, distance_m * 2.0] {
                        let nq = NearQuery {
                            person_id,
                            window,
                            distance_m: d,
                            max_gap_us,
                        };
                        let q = ConnectionQuery {
                            person_id,
                            window,
                            distance_m: d,
                            max_time_gap_us: max_gap_us,
                        };
                        let near = postgres.near(nq).await.unwrap();
                        let whole = sqlite.near(nq).await.unwrap();
                        assert_eq!(near.own, whole.own, "{nq:?}");
                        assert!(sorted_by_time_and_id(&near.own));
                        assert!(sorted_by_time_and_id(&near.candidates), "{nq:?}");
                        assert!(near.candidates.iter().all(|l| l.person_id != person_id
                            && window.contains(to_micros(l.creation_time))));
                        let got = answer(&near, &q);
                        assert_eq!(got, answer(&whole, &q), "{nq:?}");
                        assert_eq!(got, connections_oracle(&all, &q), "{nq:?}");
                        checked += 1;
                        nonempty += usize::from(!got.is_empty());
                    }
                }
            }
        }
        // The edge pings matter only if the answers contain them.
        let q = ConnectionQuery {
            person_id: 1,
            window: Window::all(),
            distance_m,
            max_time_gap_us: Some(gap_us),
        };
        let got = connections_oracle(&all, &q);
        assert!(
            got.iter().any(|p| p.id > 1 + (seed as i64) * 10_000 + 219),
            "seed {seed}"
        );
    }
    assert!(
        nonempty > checked / 4,
        "{nonempty} of {checked} answers not empty"
    );
}

#[tokio::test]
async fn near_on_the_seed_data_matches_sqlite() {
    let db = TestDb::new().await;
    let (_pg, postgres) = location_stores(&db, [1, 5, 6, 8, 9]).await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteLocationStore::open(dir.path().join("l.sqlite3")).unwrap();
    let seed = seed_locations();
    postgres.upsert(&seed).await.unwrap();
    sqlite.upsert(&seed).await.unwrap();
    let window = Window::new(
        parse_timestamp("2020-01-01T00:00:00Z").unwrap(),
        parse_timestamp("2021-01-01T00:00:00Z").unwrap(),
    );
    for person_id in [1, 5, 6, 8, 9] {
        for (distance_m, max_gap_us) in [(5.0, None), (5.0, Some(60_000_000)), (1000.0, None)] {
            let nq = NearQuery {
                person_id,
                window,
                distance_m,
                max_gap_us,
            };
            let q = ConnectionQuery {
                person_id,
                window,
                distance_m,
                max_time_gap_us: max_gap_us,
            };
            let near = postgres.near(nq).await.unwrap();
            let whole = sqlite.near(nq).await.unwrap();
            assert_eq!(answer(&near, &q), answer(&whole, &q), "{nq:?}");
        }
    }
    let q = ConnectionQuery {
        person_id: 1,
        window,
        distance_m: 5.0,
        max_time_gap_us: None,
    };
    let near = postgres
        .near(NearQuery {
            person_id: 1,
            window,
            distance_m: 5.0,
            max_gap_us: None,
        })
        .await
        .unwrap();
    let met: HashSet<i64> = answer(&near, &q).iter().map(|p| p.person_id).collect();
    assert_eq!(met, HashSet::from([5, 6, 8, 9]));
}

// ---------------------------------------------------------------------------------------------
// Failures

fn is_unavailable(e: &Error) -> bool {
    e.code() == ErrorCode::Unavailable
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_quickly() {
    // Port 1 on the loopback: nothing listens, the connection is refused at once.
    let started = Instant::now();
    let err = Postgres::connect("postgres://postgres@127.0.0.1:1/udaconnect")
        .await
        .unwrap_err();
    assert!(is_unavailable(&err), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // An address that never answers: the wait times out instead of hanging.
    let started = Instant::now();
    let err = Postgres::connect_with(
        "postgres://postgres@10.255.255.1:5432/udaconnect",
        PostgresOptions {
            wait_timeout: Duration::from_millis(500),
            ..PostgresOptions::default()
        },
    )
    .await
    .unwrap_err();
    assert!(is_unavailable(&err), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let err = Postgres::connect("no such url").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal, "{err}");
}

#[tokio::test]
async fn calls_recover_once_the_server_closed_their_connections() {
    let db = TestDb::new().await;
    let (pg, store) = location_stores(&db, [1]).await;
    let persons = PostgresPersonStore::new(&pg);
    let leaser = PostgresIdLeaser::new(&pg, "location");
    store.upsert(&[loc(1, 1, 1.0, 1.0, 1)]).await.unwrap();
    let admin = admin().await;
    for round in 0..3 {
        // As a server restart does: every session of the database is terminated.
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&db.name],
            )
            .await
            .unwrap();
        store
            .upsert(&[loc(2 + round, 1, 1.0, 1.0, 1)])
            .await
            .unwrap();
        assert_eq!(store.count().await.unwrap(), 2 + round as u64);
        persons.get(1).await.unwrap().unwrap();
        leaser.lease(10).await.unwrap();
        let near = store
            .near(NearQuery {
                person_id: 1,
                window: Window::all(),
                distance_m: 5.0,
                max_gap_us: None,
            })
            .await
            .unwrap();
        assert_eq!(near.own.len(), 2 + round as usize);
    }

    // A closed pool answers unavailable, never hangs.
    pg.close();
    let err = store.count().await.unwrap_err();
    assert!(is_unavailable(&err), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Measurement

/// `EXPLAIN ANALYZE` of `near` on a simulated conference, with its answers held to the whole
/// window's. Not part of the suite (it loads a large dataset and outlasts nextest's timeout
/// at 1M pings); run it with `UDACONNECT_NEAR_PLAN_PINGS=1000000 cargo test -p
/// udaconnect-store --test postgres near_plan -- --ignored --nocapture`
/// (`UDACONNECT_NEAR_PLAN_KEEP=1` keeps the database for more EXPLAINs by hand).
#[tokio::test]
#[ignore]
async fn near_plan() {
    use udaconnect_core::simulate::{Conference, SimConfig};
    let pings: u64 = std::env::var("UDACONNECT_NEAR_PLAN_PINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let mut config = SimConfig::default();
    config.ping_interval_s = config.interval_for_total(pings);
    let conference = Conference::plan(&config);
    let db = TestDb::new().await;
    let pg = db.connect().await;
    PostgresPersonStore::new(&pg)
        .import(conference.persons())
        .await
        .unwrap();
    let store = PostgresLocationStore::new(&pg);
    let started = Instant::now();
    let mut all = Vec::new();
    let mut batch = Vec::new();
    for (i, p) in conference.pings().enumerate() {
        batch.push(loc(i as i64 + 1, p.person_id, p.latitude, p.longitude, p.t));
        if batch.len() == 10_000 {
            store.upsert(&batch).await.unwrap();
            all.append(&mut batch);
        }
    }
    store.upsert(&batch).await.unwrap();
    all.append(&mut batch);
    println!(
        "loaded {} pings in {:.1} s",
        all.len(),
        started.elapsed().as_secs_f64()
    );
    let c = db.client().await;
    c.batch_execute("VACUUM ANALYZE location").await.unwrap();
    let everyone = points(&all);
    let day = 24 * 3600 * 1_000_000i64;
    let day_one = Window {
        start: config.start,
        end: config.start + day,
    };
    let whole = Window::all();
    for (window, gap, label) in [
        (day_one, Some(60_000_000), "one day, 60 s gap"),
        (day_one, None, "one day, no gap"),
        (whole, Some(60_000_000), "whole conference, 60 s gap"),
        (whole, None, "whole conference, no gap"),
    ] {
        let mut took = Vec::new();
        for person_id in [1, 17, 333, 640, 999] {
            let nq = NearQuery {
                person_id,
                window,
                distance_m: 5.0,
                max_gap_us: gap,
            };
            let t = Instant::now();
            let near = store.near(nq).await.unwrap();
            took.push(t.elapsed());
            let q = ConnectionQuery {
                person_id,
                window,
                distance_m: 5.0,
                max_time_gap_us: gap,
            };
            let own: Vec<Point> = all
                .iter()
                .filter(|l| l.person_id == person_id && window.contains(to_micros(l.creation_time)))
                .map(point)
                .collect();
            assert_eq!(
                answer(&near, &q),
                connections(&own, &everyone, &q),
                "{nq:?}"
            );
            if person_id == 1 {
                println!(
                    "{label}: {} own, {} candidates",
                    near.own.len(),
                    near.candidates.len()
                );
            }
        }
        println!("{label}: near took {took:?}");
        let gap_sql = gap.map_or(String::new(), |g| {
            format!(
                "AND l.creation_time BETWEEN o.creation_time - {g} * interval '1 microsecond'
                                   AND o.creation_time + {g} * interval '1 microsecond'"
            )
        });
        let (start, end) = if window == whole {
            ("'-infinity'".to_string(), "'infinity'".to_string())
        } else {
            (
                format!("'{}'", from_micros(window.start).naive_utc()),
                format!("'{}'", from_micros(window.end).naive_utc()),
            )
        };
        let sql = format!(
            "EXPLAIN (ANALYZE, BUFFERS) WITH own AS MATERIALIZED (
                 SELECT id, person_id, coordinate, creation_time FROM location
                 WHERE person_id = 1 AND creation_time >= {start} AND creation_time < {end}),
             candidate AS (
                 SELECT l.id, l.person_id, l.coordinate, l.creation_time
                 FROM own o JOIN location l
                   ON ST_DWithin(l.coordinate::geography, o.coordinate::geography, 5.505, false)
                 WHERE l.person_id <> 1 AND l.creation_time >= {start} AND l.creation_time < {end}
                   {gap_sql}
                 GROUP BY l.id)
             SELECT true AS is_own, id, person_id, ST_Y(coordinate), ST_X(coordinate), creation_time FROM own
             UNION ALL
             SELECT false, id, person_id, ST_Y(coordinate), ST_X(coordinate), creation_time FROM candidate
             ORDER BY is_own DESC, creation_time, id"
        );
        println!("--- {label}");
        for row in c.query(&sql, &[]).await.unwrap() {
            println!("{}", row.get::<_, String>(0));
        }
    }
    if std::env::var_os("UDACONNECT_NEAR_PLAN_KEEP").is_some() {
        // Left in place for more EXPLAINs by hand; drop it with DROP DATABASE when done.
        println!("kept database {}", db.name);
        std::mem::forget(db);
    }
}

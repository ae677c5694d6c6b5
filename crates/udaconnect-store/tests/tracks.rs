//! Contacts over tracks from both modes' stores on a simulated conference: the PostGIS
//! candidate read, the SQLite store's generic one and the core's oracle give the same answers;
//! and the query plan of the PostGIS read (a measurement, ignored by default).

use std::sync::Arc;
use std::time::Instant;

use udaconnect_core::contact::Point;
use udaconnect_core::model::Location;
use udaconnect_core::ports::{DynLocationStore, LocationStore, NearTracks, PersonStore};
use udaconnect_core::time::{from_micros, Window};
use udaconnect_core::track::{contacts_from_near, contacts_oracle, track_read_window, TrackQuery};
use udaconnect_sim::{Conference, SimConfig};
use udaconnect_store::postgres::near_tracks_sql;
use udaconnect_store::{
    Postgres, PostgresLocationStore, PostgresPersonStore, SqliteLocationStore, SqlitePersonStore,
};
use udaconnect_testkit::postgres::TestDb;
use udaconnect_testkit::store_suite::{
    conference_locations, contacts_via_store, load_timed, longest_piece_m,
};

const HOUR: i64 = 3_600_000_000;

fn conference_pings(config: &SimConfig) -> (Conference, Vec<Location>) {
    let conference = Conference::plan(config);
    let pings = conference_locations(&conference);
    (conference, pings)
}

async fn postgres_store(db: &TestDb, conference: &Conference) -> PostgresLocationStore {
    let pg = Postgres::connect(&db.url)
        .await
        .expect("connect and migrate");
    PostgresPersonStore::new(&pg)
        .import(conference.persons())
        .await
        .unwrap();
    PostgresLocationStore::new(&pg)
}

/// Attendees of a small conference (phones from 15 s to 5 min, groups), several of them and
/// several windows: the PostGIS path, the SQLite path and the oracle agree, and the answers
/// hold real contacts.
#[tokio::test]
async fn postgis_and_sqlite_paths_give_the_oracles_contacts() {
    let config = SimConfig {
        seed: 5,
        attendees: 40,
        days: 1,
        ..Default::default()
    };
    let (conference, pings) = conference_pings(&config);
    let db = TestDb::new().await;
    let pg: DynLocationStore = Arc::new(postgres_store(&db, &conference).await);
    let dir = tempfile::tempdir().unwrap();
    SqlitePersonStore::open(dir.path().join("persons.sqlite3"))
        .unwrap()
        .import(conference.persons())
        .await
        .unwrap();
    let sqlite: DynLocationStore =
        Arc::new(SqliteLocationStore::open(dir.path().join("locations.sqlite3")).unwrap());
    for store in [&pg, &sqlite] {
        store.upsert(&pings).await.unwrap();
    }
    let all: Vec<Point> = pings.iter().map(Point::from).collect();
    let nine = config.start + 9 * HOUR;
    let windows = [
        Window {
            start: nine + 1_234_567,
            end: nine + 2 * HOUR,
        },
        Window {
            start: nine + 3 * HOUR,
            end: nine + 3 * HOUR + 600_000_000,
        },
        Window {
            start: nine + 5 * HOUR,
            end: nine + 7 * HOUR,
        },
    ];
    let mut met = 0;
    for window in windows {
        for person_id in [1, 2, 17, 33] {
            let mut q = TrackQuery::new(person_id, window);
            q.min_duration_us = 0;
            let reach = longest_piece_m(&pings, &q);
            let want = contacts_oracle(&all, &q);
            let from_pg = contacts_via_store(&pg, &pings, &q, reach).await;
            let from_sqlite = contacts_via_store(&sqlite, &pings, &q, reach).await;
            assert_eq!(from_pg, want, "PostGIS, {q:?}");
            assert_eq!(from_sqlite, want, "SQLite, {q:?}");
            met += want.len();
        }
    }
    assert!(met > 20, "{met} contacts in all");
}

/// `EXPLAIN ANALYZE` of `near_tracks` on a simulated conference, for one attendee's day, with
/// the answers checked against the whole window's. Not part of the suite (it loads a large
/// dataset); run it with `UDACONNECT_TRACKS_PLAN_PINGS=1000000 cargo test -p udaconnect-store
/// --test tracks near_tracks_plan -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn near_tracks_plan() {
    let config = udaconnect_testkit::local::measured_conference("UDACONNECT_TRACKS_PLAN_PINGS");
    let (conference, pings) = conference_pings(&config);
    let db = TestDb::new().await;
    let store = postgres_store(&db, &conference).await;
    load_timed(&store, &pings, 20_000).await;
    let c = db.client().await;
    c.batch_execute("VACUUM ANALYZE location").await.unwrap();
    let day_one = Window {
        start: config.start,
        end: config.start + 24 * HOUR,
    };
    let reach = longest_piece_m(&pings, &TrackQuery::new(1, day_one));
    println!("longest piece: {reach:.1} m");
    // What the statement costs when the venue is larger than the reach: a 20 m reach, not
    // complete for this conference's walking pieces, so not held to the whole window's answer.
    for person_id in [1, 17, 333, 640, 999] {
        let q = TrackQuery::new(person_id, day_one);
        let t = Instant::now();
        let near = store.near_tracks(&q, 20.0).await.unwrap();
        println!(
            "person {person_id}, 20 m reach: {:?}, {} candidates, {} neighbours",
            t.elapsed(),
            near.candidates.len(),
            near.neighbours.len()
        );
    }
    let mut sorted = pings.clone();
    sorted.sort_by_key(|l| (l.creation_time, l.id));
    for person_id in [1, 17, 333, 640, 999] {
        let q = TrackQuery::new(person_id, day_one);
        let t = Instant::now();
        let near = store.near_tracks(&q, reach).await.unwrap();
        let took = t.elapsed();
        let read = track_read_window(&q);
        let whole = NearTracks {
            own: near.own.clone(),
            candidates: sorted
                .iter()
                .filter(|l| l.person_id != person_id && read.contains(to_us(l)))
                .cloned()
                .collect(),
            neighbours: Vec::new(),
        };
        let got = contacts_from_near(&q, &near);
        assert_eq!(got, contacts_from_near(&q, &whole), "{q:?}");
        println!(
            "person {person_id}: {:?}, {} own, {} candidates, {} neighbours, {} contacts",
            took,
            near.own.len(),
            near.candidates.len(),
            near.neighbours.len(),
            got.len()
        );
    }
    let q = TrackQuery::new(1, day_one);
    let read = track_read_window(&q);
    let margin = q.ping_tolerance_us + q.max_interpolation_us.max(q.ping_tolerance_us);
    let radius = q.distance_m * 1.001 + 0.5 + reach / 2.0 * 1.001;
    c.batch_execute(&format!(
        "PREPARE near_tracks (bigint, timestamp, timestamp, float8, bigint, bigint) AS {}",
        near_tracks_sql()
    ))
    .await
    .unwrap();
    let explain = format!(
        "EXPLAIN (ANALYZE, BUFFERS) EXECUTE near_tracks (1, '{}', '{}', {radius}, {}, {margin})",
        from_micros(read.start).naive_utc(),
        from_micros(read.end).naive_utc(),
        q.max_interpolation_us,
    );
    for row in c.query(&explain, &[]).await.unwrap() {
        println!("{}", row.get::<_, String>(0));
    }
}

fn to_us(l: &Location) -> i64 {
    udaconnect_core::time::to_micros(l.creation_time)
}

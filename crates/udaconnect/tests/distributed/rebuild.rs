//! The topic is the truth: a replay rebuilds an empty database to the same answers, the
//! embedded and distributed modes answer alike on the same data, the original producers'
//! records are stored (their poison ones dead-lettered), and the original deployment's DB_*
//! variables still configure the roles.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{
    admin_url, create_person, dead_letter_reasons, eventually, get_json, http, post_batch,
    produce_original, spawn_ready, spawn_ready_with_env, started, stored, Db, BIN,
};

/// Two persons created through `base`, by first name: their ids.
async fn two_persons(base: &str, first: &str, second: &str) -> (i64, i64) {
    (
        create_person(base, first).await,
        create_person(base, second).await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_rebuilds_an_empty_database_to_the_same_answers() {
    let (broker, db, stack) = started().await;
    let web = stack.web.base();
    let (a, b) = two_persons(&web, "Ann", "Ben").await;
    let mut batch = Vec::new();
    for i in 0..200 {
        let t = format!("2024-05-01T10:{:02}:{:02}Z", i / 60, i % 60);
        batch.push(json!({"person_id": a, "latitude": 48.0 + (i as f64) * 1e-6, "longitude": 11.0, "creation_time": t}));
        batch.push(json!({"person_id": b, "latitude": 48.0 + (i as f64) * 1e-6 + 2e-5, "longitude": 11.0, "creation_time": t}));
    }
    post_batch(&web, &batch).await;
    eventually("the batch stored", Duration::from_secs(30), || async {
        (db.location_ids().await.len() == 400).then_some(())
    })
    .await;
    let query = format!(
        "/api/persons/{a}/connection?start_date=2024-05-01&end_date=2024-05-01&distance=5&max_time_gap=60"
    );
    let before: Value = get_json(&web, &query).await;
    assert_eq!(before.as_array().unwrap().len(), 200);

    // A new, empty database: persons and their keys copied, locations rebuilt from the log.
    let fresh = Db::create().await;
    let copy = spawn_ready("person-api", &["--store", &fresh.url]).await;
    for p in [a, b] {
        let person: Value = get_json(&web, &format!("/api/persons/{p}")).await;
        fresh
            .client()
            .await
            .execute(
                "INSERT INTO person (id, first_name, last_name, company_name) VALUES ($1, $2, $3, $4)",
                &[
                    &p,
                    &person["first_name"].as_str().unwrap(),
                    &person["last_name"].as_str().unwrap(),
                    &person["company_name"].as_str().unwrap(),
                ],
            )
            .await
            .unwrap();
    }
    // The keys the records are sealed with are not on the log: restored with the persons.
    let keys = db
        .client()
        .await
        .query(
            "SELECT person_id, version, secret FROM person_key WHERE person_id = ANY($1)",
            &[&vec![a, b]],
        )
        .await
        .unwrap();
    assert_eq!(keys.len(), 2, "each person's pings are sealed with a key");
    for k in keys {
        fresh
            .client()
            .await
            .execute(
                "INSERT INTO person_key (person_id, version, secret) VALUES ($1, $2, $3)",
                &[
                    &k.get::<_, i64>(0),
                    &k.get::<_, i32>(1),
                    &k.get::<_, Option<Vec<u8>>>(2),
                ],
            )
            .await
            .unwrap();
    }
    let out = Command::new(BIN)
        .args(["replay", "--store", &fresh.url, "--log", &broker.url()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fresh.location_ids().await, db.location_ids().await);
    let conn = spawn_ready(
        "connection-api",
        &["--store", &fresh.url, "--person-api", &copy.base()],
    )
    .await;
    let after: Value = get_json(&conn.base(), &query).await;
    assert_eq!(after, before);
}

/// The same random conference fed to `serve` (embedded) and to the distributed stack: every
/// connection and contacts answer equal, field by field.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn differential_embedded_and_distributed_answer_alike() {
    let (broker, db, stack) = started().await;
    let dir = tempfile::tempdir().unwrap();
    let embedded = spawn_ready(
        "serve",
        &[
            "--demo-attendees",
            "0",
            "--data-dir",
            &dir.path().display().to_string(),
        ],
    )
    .await;
    let (dist, emb) = (stack.web.base(), embedded.base());

    // Persons in the same order get the same ids in both modes.
    let mut persons = Vec::new();
    for i in 0..12 {
        let x = create_person(&dist, &format!("P{i}")).await;
        let y = create_person(&emb, &format!("P{i}")).await;
        assert_eq!(x, y);
        persons.push(x);
    }
    // Random walks in a 40 m square over two hours: plenty of near misses at 5 m.
    let mut seed = 0x5eed_u64;
    let mut next = move || {
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut batch = Vec::new();
    for &p in &persons {
        let (mut lat, mut lon) = (52.5 + next() * 3.6e-4, 13.4 + next() * 6e-4);
        for k in 0..120 {
            lat += (next() - 0.5) * 2e-5;
            lon += (next() - 0.5) * 3e-5;
            let secs = k * 60 + (next() * 50.0) as i64;
            let t = chrono::DateTime::from_timestamp(1_717_236_000 + secs, 0).unwrap();
            batch.push(json!({"person_id": p, "latitude": lat, "longitude": lon,
                              "creation_time": t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}));
        }
    }
    let mut ids = HashMap::new();
    for base in [&dist, &emb] {
        let answer = post_batch(base, &batch).await;
        ids.insert(base.clone(), answer["ids"].clone());
    }
    let all = batch.len();
    eventually(
        "both stores to hold the batch",
        Duration::from_secs(60),
        || async { (db.location_ids().await.len() == all).then_some(()) },
    )
    .await;
    let last = ids[&emb]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_i64()
        .unwrap();
    eventually("embedded store", Duration::from_secs(60), || {
        stored(&emb, last)
    })
    .await;

    // Answers compared with location ids replaced by the ping they name (ids are handed out
    // by each mode's own leaser).
    let by_id = |base: &String| -> HashMap<i64, usize> {
        ids[base]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, v)| (v.as_i64().unwrap(), i))
            .collect()
    };
    let (dist_ids, emb_ids) = (by_id(&dist), by_id(&emb));
    let normalise = |v: &mut Value, map: &HashMap<i64, usize>| {
        if let Some(rows) = v.as_array_mut() {
            for r in rows {
                if let Some(id) = r["location"]["id"].as_i64() {
                    r["location"]["id"] = json!(map[&id]);
                }
            }
        }
    };
    // connection-api on the in-memory index built from the topic answers alike too.
    let memory = spawn_ready(
        "connection-api",
        &[
            "--store",
            &db.url,
            "--log",
            &broker.url(),
            "--engine",
            "memory",
            "--person-api",
            &stack.person_api.base(),
        ],
    )
    .await;
    let mem = memory.base();

    let mut compared = 0;
    for &p in &persons {
        for q in [
            "connection?start_date=2024-06-01&end_date=2024-06-02&distance=5",
            "connection?start_date=2024-06-01T10:30:00&end_date=2024-06-01T11:00:00&distance=3&max_time_gap=60",
            "contacts?start=2024-06-01&end=2024-06-02&distance=5&min_duration=0",
            "contacts?start=2024-06-01&end=2024-06-02&distance=8&max_interpolation=120&join_gap=60&min_duration=60",
        ] {
            let mut got = Vec::new();
            for (base, map) in [(&dist, &dist_ids), (&emb, &emb_ids), (&mem, &dist_ids)] {
                let r = http()
                    .get(format!("{base}/api/persons/{p}/{q}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "{base} {q}");
                let mut v: Value = r.json().await.unwrap();
                normalise(&mut v, map);
                got.push(v);
            }
            assert_eq!(got[0], got[1], "person {p}: {q}");
            assert_eq!(got[0], got[2], "in-memory engine, person {p}: {q}");
            compared += got[0].as_array().map_or(0, |a| a.len());
        }
    }
    assert!(
        compared > 100,
        "the data makes too few connections to compare: {compared}"
    );
}

/// The original deployment's configuration: no --store, the database named by DB_* variables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_read_the_original_db_variables() {
    let db = Db::create().await;
    let admin = admin_url();
    let host_port = admin
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1:5432")
        .to_string();
    let (host, port) = host_port.split_once(':').unwrap_or((&host_port, "5432"));
    let user = admin
        .strip_prefix("postgres://")
        .and_then(|rest| rest.split(['@', ':']).next())
        .unwrap_or("postgres")
        .to_string();
    let person_api = spawn_ready_with_env(
        "person-api",
        &[],
        &[
            ("DB_HOST", host),
            ("DB_PORT", port),
            ("DB_USERNAME", &user),
            ("DB_PASSWORD", ""),
            ("DB_NAME", &db.name),
        ],
    )
    .await;
    let id = create_person(&person_api.base(), "Env").await;
    let rows = db
        .client()
        .await
        .query("SELECT first_name FROM person WHERE id = $1", &[&id])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, String>(0), "Env");
    // Without --log, person-api sends no sign-in mail: a person with an address is refused
    // (nothing created), and sign-in answers as ever.
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/api/persons", person_api.base()))
        .json(&json!({"first_name": "E", "last_name": "M", "company_name": "C", "email": "e@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let r = client
        .post(format!("{}/api/auth/login", person_api.base()))
        .json(&json!({"email": "e@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}

/// The original producers' keyless JSON, and poison records, on the topic itself: valid
/// records are stored with ids derived from their position, the others dead-lettered with
/// their reason, and the consumer never stalls on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn original_producers_records_are_stored_and_poison_dead_lettered() {
    let (broker, db, stack) = started().await;
    let web = stack.web.base();
    let (a, b) = two_persons(&web, "Ada", "Bo").await;
    let brokers = broker.brokers();
    produce_original(
        &brokers,
        &[
            &format!(r#"{{"person_id": {a}, "latitude": 35.0585136, "longitude": -106.5719566}}"#),
            r#"{"person_id": 424242, "latitude": 35.0, "longitude": -106.5}"#,
            &format!(r#"{{"person_id": {a}, "latitude": 135.0, "longitude": -106.5}}"#),
        ],
        false,
    );
    produce_original(&brokers, &["\u{1}\u{2}not json at all"], true);
    // A valid record after the poison ones is stored: the consumer never stalls on them.
    produce_original(
        &brokers,
        &[&format!(
            r#"{{"person_id": {b}, "latitude": 35.0585137, "longitude": -106.5719567}}"#
        )],
        false,
    );
    let rows = eventually(
        "original records stored",
        Duration::from_secs(30),
        || async {
            let rows = db
                .client()
                .await
                .query(
                    "SELECT id, person_id FROM location WHERE ST_Y(coordinate) BETWEEN 35 AND 36",
                    &[],
                )
                .await
                .ok()?;
            (rows.len() == 2).then_some(rows)
        },
    )
    .await;
    for r in &rows {
        // Keyless records get ids derived from their position, at 2^52 and above.
        assert!(r.get::<_, i64>(0) >= 1 << 52);
    }
    let reasons = dead_letter_reasons(&brokers, 3, Duration::from_secs(30)).await;
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.starts_with("not JSON")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("latitude")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("no person with id 424242")),
        "{reasons:?}"
    );
}

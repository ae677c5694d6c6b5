//! Erasure in the distributed stack: after a realistic ingest through web (two attendees who
//! met, the one erased with an account, a welcome and a sign-in mail, and a request from the
//! other to exchange addresses), the attendee deletes their account. Then neither a dump of
//! the PostgreSQL database (`pg_dump`) nor any record of any Kafka topic, read raw from every
//! partition, holds anything readable of them: names, company, address, the ids in the forms
//! they are written, coordinates as text and as the bytes of a double. A replay of the topic
//! into the database after the erasure does not bring them back.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use udaconnect_core::ports::{Log, StartFrom};
use udaconnect_core::record::LogRecord;
use udaconnect_testkit::process::{output_text, printed_token, run_admin, Stack};

use crate::harness::{eventually, http, onlooker, Broker, Db, BIN};

const PATIENCE: Duration = Duration::from_secs(60);
/// Where the erased attendee stood: a few metres from the one who stays, so they met.
const ERASED_AT: (f64, f64) = (45.760_013_7, 4.835_021_9);
const STAYS_AT: (f64, f64) = (45.76, 4.835);

fn create_token(db: &Db, role: &str, person: Option<i64>) -> String {
    let mut args = vec![
        "create-token",
        "--role",
        role,
        "--name",
        "erasure",
        "--store",
    ];
    args.push(&db.url);
    let person = person.map(|p| p.to_string());
    if let Some(p) = &person {
        args.extend(["--person", p]);
    }
    printed_token(&run_admin(Path::new(BIN), &args))
        .trim()
        .to_string()
}

async fn call(
    base: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut r = http()
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        r = r.json(&body);
    }
    r.send().await.unwrap()
}

/// What must not be readable anywhere once the person is erased, each as bytes.
fn needles(texts: &[String], floats: &[f64]) -> Vec<(String, Vec<u8>)> {
    let mut n: Vec<(String, Vec<u8>)> = texts
        .iter()
        .map(|t| (t.clone(), t.as_bytes().to_vec()))
        .collect();
    for f in floats {
        n.push((format!("{f} as text"), f.to_string().into_bytes()));
        n.push((format!("{f} big-endian"), f.to_be_bytes().to_vec()));
        n.push((format!("{f} little-endian"), f.to_le_bytes().to_vec()));
        // PostGIS's geometry in a dump: its WKB in hexadecimal.
        let hex: String = f.to_le_bytes().iter().map(|b| format!("{b:02X}")).collect();
        n.push((format!("{f} as WKB hex"), hex.into_bytes()));
    }
    n
}

fn found(haystack: &[u8], needles: &[(String, Vec<u8>)]) -> Vec<String> {
    needles
        .iter()
        .filter(|(_, n)| haystack.windows(n.len()).any(|w| w == n.as_slice()))
        .map(|(name, _)| name.clone())
        .collect()
}

/// The columns of the dump's rows that name `person` (`table.column`): every `person_id` and
/// `other_id`, and the person table's `id`. The key store's tombstone is left out: it is the
/// id alone, which names no one once the person row is gone.
fn rows_naming(dump: &[u8], person: i64) -> Vec<String> {
    let text = String::from_utf8_lossy(dump);
    let mut hits = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("COPY public.") else {
            continue;
        };
        let (table, columns) = rest.split_once(" (").expect("COPY table (columns)");
        let columns: Vec<&str> = columns
            .split_once(')')
            .expect("columns")
            .0
            .split(", ")
            .collect();
        let naming: Vec<usize> = (0..columns.len())
            .filter(|&i| {
                matches!(columns[i], "person_id" | "other_id")
                    || (table == "person" && columns[i] == "id")
            })
            .collect();
        for row in lines.by_ref().take_while(|l| *l != "\\.") {
            if table == "person_key" {
                continue;
            }
            let values: Vec<&str> = row.split('\t').collect();
            for &i in &naming {
                if values.get(i) == Some(&person.to_string().as_str()) {
                    hits.push(format!("{table}.{}", columns[i]));
                }
            }
        }
    }
    hits
}

fn pg_dump(db: &Db) -> Vec<u8> {
    let out = std::process::Command::new("pg_dump")
        .args(["--no-owner", "--dbname", &db.url])
        .output()
        .expect("pg_dump runs");
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(out.stdout.len() > 1000, "a dump of the schema and rows");
    out.stdout
}

/// The id of the person `body` creates through `web`.
async fn created_person(web: &str, admin: &str, body: Value) -> i64 {
    let r = call(web, admin, Method::POST, "/api/persons", Some(body)).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// Every record of every topic on the broker, read raw from the start of every partition
/// (one consumer of a group of its own holds them all), until none has come for a while.
async fn every_record(broker: &Broker) -> Vec<(String, LogRecord)> {
    let log = onlooker(broker);
    let topics = log.topics().await.expect("the broker lists its topics");
    for t in [
        "location",
        "location.dlq",
        "notification",
        "notification.dlq",
    ] {
        assert!(topics.iter().any(|x| x == t), "{t} in {topics:?}");
    }
    let mut all = Vec::new();
    for topic in topics {
        let group = udaconnect_testkit::unique("erasure-search");
        let mut reader = log
            .consumer(&topic, &group, StartFrom::Earliest)
            .await
            .unwrap();
        let deadline = Instant::now() + PATIENCE;
        let mut quiet_since = Instant::now();
        let mut read = 0;
        while Instant::now() < deadline {
            let got = reader.poll(500, Duration::from_millis(500)).await.unwrap();
            if got.is_empty() {
                // Joining the group takes a moment before the first records come.
                let quiet = if read == 0 { 10 } else { 3 };
                if quiet_since.elapsed() > Duration::from_secs(quiet) {
                    break;
                }
                continue;
            }
            quiet_since = Instant::now();
            read += got.len();
            all.extend(got.into_iter().map(|c| (topic.clone(), c.record)));
        }
    }
    all
}

fn record_bytes(r: &LogRecord) -> Vec<u8> {
    let mut b = r.key.clone().unwrap_or_default();
    b.push(0);
    b.extend_from_slice(&r.value);
    for (name, value) in &r.headers {
        b.push(0);
        b.extend_from_slice(name.as_bytes());
        b.push(0);
        b.extend_from_slice(value);
    }
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_erased_person_is_unreadable_in_postgres_and_every_kafka_record() {
    let broker = Broker::start().await;
    let db = Db::create().await;
    let admin = create_token(&db, "admin", None);
    let service = create_token(&db, "organizer", None);
    let env = [
        ("UDACONNECT_AUTH", "on"),
        ("UDACONNECT_SERVICE_TOKEN", service.as_str()),
    ];
    let stack =
        Stack::start_seeded_with_env(Path::new(BIN), &db.url, &broker, &env, || async {}).await;
    let web = stack.web.base();

    let tag = udaconnect_testkit::unique("x").replace('_', "");
    let (first, last, company) = (
        format!("Erasmus{tag}"),
        format!("Vanish{tag}"),
        format!("Forgotten{tag} Ltd"),
    );
    let email = format!("erasmus.{tag}@example.org");
    // Created with an address: an attendee account, and a welcome mail.
    let erased =
        json!({"first_name": first, "last_name": last, "company_name": company, "email": email});
    let erased = created_person(&web, &admin, erased).await;
    let stella = format!("Stella{tag}");
    let stays = json!({"first_name": stella, "last_name": "Remain", "company_name": "Acme"});
    let stays = created_person(&web, &admin, stays).await;
    let token = create_token(&db, "attendee", Some(erased));
    let stays_token = create_token(&db, "attendee", Some(stays));

    // Ten minutes side by side, a ping a minute each.
    let mut theirs = Vec::new();
    for (person, at) in [(erased, ERASED_AT), (stays, STAYS_AT)] {
        let batch: Vec<Value> = (0..10)
            .map(|m| {
                json!({"person_id": person, "latitude": at.0, "longitude": at.1,
                       "creation_time": format!("2024-06-01T10:{m:02}:00Z")})
            })
            .collect();
        let r = call(
            &web,
            &admin,
            Method::POST,
            "/api/locations/batch",
            Some(json!(batch)),
        )
        .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text().await);
        let ids: Vec<i64> = r.json::<Value>().await.unwrap()["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_i64().unwrap())
            .collect();
        if person == erased {
            theirs = ids;
        }
    }
    let handle = eventually("the two to have met", PATIENCE, || async {
        let r = call(&web, &stays_token, Method::GET, "/api/me/contacts", None).await;
        let answer: Value = r.json().await.ok()?;
        answer.get(0)?["handle"].as_str().map(str::to_string)
    })
    .await;
    // Mail to them: a sign-in link they ask for, and the other's request to exchange addresses.
    let r = http()
        .post(format!("{web}/api/auth/login"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let r = call(
        &web,
        &stays_token,
        Method::POST,
        &format!("/api/me/contacts/{handle}/reveal"),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    let inbox = stack.smtp.inbox();
    assert!(
        inbox.wait_for(&email, 3, PATIENCE).await.is_some(),
        "welcome, sign-in and request mailed; mailer log: {:?}",
        stack.mailer.log_lines()
    );

    let texts = vec![
        first.clone(),
        last.clone(),
        company.clone(),
        email.clone(),
        format!("\"person_id\":{erased},"),
    ];
    let mut all_texts = texts.clone();
    // Their pings' ids as a ping's JSON writes them (a row of the dump names the person, above).
    all_texts.extend(theirs.iter().map(|id| format!("\"id\":{id},")));
    let traces = needles(&all_texts, &[ERASED_AT.0, ERASED_AT.1]);
    // Before: the search finds them in the database (its rows are in the clear).
    let dump = pg_dump(&db);
    let before = found(&dump, &traces);
    for t in [&first, &email] {
        assert!(before.contains(t), "{t} in the dump before: {before:?}");
    }
    let named = rows_naming(&dump, erased);
    for row in ["person.id", "location.person_id", "account.person_id"] {
        assert!(named.iter().any(|n| n == row), "{row} before: {named:?}");
    }

    let r = call(&web, &token, Method::DELETE, "/api/me?confirm=true", None).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "{:?}", r.text().await);
    eventually("their pings gone from PostgreSQL", PATIENCE, || async {
        let left = db.location_ids().await;
        theirs.iter().all(|id| !left.contains(id)).then_some(())
    })
    .await;

    let check = |when: &str, dump: Vec<u8>, records: &[(String, LogRecord)]| {
        assert_eq!(found(&dump, &traces), Vec::<String>::new(), "dump {when}");
        assert_eq!(
            rows_naming(&dump, erased),
            Vec::<String>::new(),
            "rows {when}"
        );
        let control = found(
            &dump,
            &needles(std::slice::from_ref(&stella), &[STAYS_AT.0]),
        );
        assert!(
            control.contains(&stella) && control.len() > 1,
            "the dump {when} holds the one who stays: {control:?}"
        );
        let mut topics: Vec<&str> = records.iter().map(|(t, _)| t.as_str()).collect();
        topics.dedup();
        assert!(
            records.iter().filter(|(t, _)| t == "location").count() >= 21,
            "every ping and the erasure on the topic {when}: {topics:?}"
        );
        assert!(
            records.iter().filter(|(t, _)| t == "notification").count() >= 4,
            "three mails and the erasure {when}"
        );
        for (topic, r) in records {
            let hits = found(&record_bytes(r), &traces);
            assert!(hits.is_empty(), "{topic} {when}: {hits:?} in {r:?}");
        }
    };
    check(
        "after the erasure",
        pg_dump(&db),
        &every_record(&broker).await,
    );

    // A replay reads the whole topic into the database again: they stay erased.
    let out = std::process::Command::new(BIN)
        .args(["replay", "--store", &db.url, "--log", &broker.url()])
        .output()
        .unwrap();
    assert!(out.status.success(), "replay: {}", output_text(&out));
    let left = db.location_ids().await;
    assert!(theirs.iter().all(|id| !left.contains(id)), "{left:?}");
    assert_eq!(left.len(), 10, "the other's pings: {left:?}");
    check("after a replay", pg_dump(&db), &every_record(&broker).await);
}

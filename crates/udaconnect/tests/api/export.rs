//! The export of everything held about the caller, and the audit of others' reads in it: my
//! export holds my pings (across the store's pages) and never another's; an admin's read of
//! my contacts is in it, my own reads are not; bad requests are problems.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use udaconnect_testkit::http;

use crate::signin::{address, person_with_email};
use crate::suite::{assert_problem, header, Api};

/// More than one page of the store's (1,000 pings), so the export reads several.
const MY_PINGS: usize = 1_234;

/// `token`'s holder's export, read whole and parsed, once the store holds `pings` of theirs
/// (the consumer stores them in its own time; their summary counts them). Each export counts
/// against the account's hourly limit, so the summary is what is polled.
async fn export_with(api: &Api, token: &str, pings: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let summary: Value = get(api, token, "/api/me/summary")
            .await
            .json()
            .await
            .unwrap();
        if summary["pings"].as_u64() == Some(pings) {
            break;
        }
        assert!(Instant::now() < deadline, "{summary}: want {pings} pings");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let r = get(api, token, "/api/me/export").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), "application/json");
    assert_eq!(header(&r, "cache-control"), "no-store");
    let disposition = header(&r, "content-disposition");
    assert!(
        disposition.starts_with("attachment; filename=\"udaconnect-export-"),
        "{disposition}"
    );
    let text = r.text().await.unwrap();
    let doc: Value = serde_json::from_str(&text).expect("one JSON document");
    assert_eq!(doc["pings"].as_array().unwrap().len() as u64, pings);
    doc
}

async fn get(api: &Api, token: &str, path: &str) -> reqwest::Response {
    http::sent(api.client.get(api.url(path)).bearer_auth(token)).await
}

/// A and B stand 2 m apart for 20 minutes (A with many more pings, in one batch); B is not
/// visible. An admin reads A's contacts, an organizer A's summary (and is refused A's
/// contacts); A reads their own. A's export: the account, the person, every ping of A's in
/// (time, id) order and none of B's, B as someone in the contacts, the admin's and the
/// organizer's reads in the audit, not the refused one, none of A's own. B's export: B's
/// pings only, no read of B's contacts.
pub async fn my_export_holds_my_data_and_who_read_it(api: Api) {
    let (a_mail, b_mail) = (address("export-a"), address("export-b"));
    let a = person_with_email(&api, &a_mail).await["id"]
        .as_i64()
        .unwrap();
    let b = person_with_email(&api, &b_mail).await["id"]
        .as_i64()
        .unwrap();
    let (ta, tb) = (
        api.admin_token("attendee", a).await,
        api.admin_token("attendee", b).await,
    );
    // A pings every second from 10:00 for 20 minutes and more; B every minute beside them.
    let a_pings: Vec<Value> = (0..MY_PINGS)
        .map(|s| {
            let t = format!("2021-09-06T10:{:02}:{:02}Z", s / 60, s % 60);
            json!({"person_id": a, "latitude": 55.9533, "longitude": -3.1883, "creation_time": t})
        })
        .collect();
    let r = api.post_json("/api/locations/batch", &json!(a_pings)).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let mut b_ids = Vec::new();
    for minute in 0..=20 {
        let time = format!("2021-09-06T10:{minute:02}:00Z");
        let b_ping = api.ping(b, 55.9533, -3.18833, &time).await;
        b_ids.push(b_ping["id"].as_i64().unwrap());
    }
    for id in &b_ids {
        api.stored_location(*id).await;
    }

    // A's own reads, by both paths, are not audited; the admin's is.
    for path in [
        "/api/me/contacts".to_string(),
        format!("/api/persons/{a}/contacts"),
        format!("/api/persons/{a}/summary"),
    ] {
        let r = get(&api, &ta, &path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let by_admin = api.get(&format!("/api/persons/{a}/contacts")).await;
    assert_eq!(by_admin.status(), StatusCode::OK);
    // An organizer reads A's summary (their contacts are not the organizers' to read).
    let organizer = api.create_person("Org").await["id"].as_i64().unwrap();
    let to = api.admin_token("organizer", organizer).await;
    let summary = get(&api, &to, &format!("/api/persons/{a}/summary")).await;
    assert_eq!(summary.status(), StatusCode::OK);
    let refused = get(&api, &to, &format!("/api/persons/{a}/contacts")).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let doc = export_with(&api, &ta, MY_PINGS as u64).await;
    assert_eq!(doc["account"]["email"], json!(a_mail));
    assert_eq!(doc["account"]["role"], "attendee");
    assert_eq!(doc["account"]["visible"], false);
    assert_eq!(doc["person"]["id"], json!(a));
    let pings = doc["pings"].as_array().unwrap();
    assert!(pings.iter().all(|p| p["person_id"] == json!(a)));
    let order: Vec<(String, i64)> = pings
        .iter()
        .map(|p| {
            let t = p["creation_time"].as_str().unwrap().to_string();
            (t, p["id"].as_i64().unwrap())
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(order, sorted, "by time then id, each once");
    // B is met, as someone: no id, no name, none of B's pings or address.
    let contacts = doc["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(contacts[0]["person"], Value::Null);
    let text = doc.to_string();
    assert!(!text.contains(&b_mail));
    for id in &b_ids {
        assert!(!text.contains(&format!("\"id\":{id},")), "B's ping {id}");
    }
    // Tokens' metadata, never a secret.
    let tokens = doc["tokens"].as_array().unwrap();
    assert!(!tokens.is_empty());
    assert!(!text.contains(ta.as_str()));

    let account = doc["account"]["id"].as_i64().unwrap();
    let reads = doc["reads_of_my_data"].as_array().unwrap();
    assert!(
        reads
            .iter()
            .any(|r| r["action"] == "GetContacts" && r["reader_role"] == "admin"),
        "{reads:?}"
    );
    assert!(
        reads
            .iter()
            .any(|r| r["action"] == "GetSummary" && r["reader_role"] == "organizer"),
        "{reads:?}"
    );
    // A refused read is no read: the organizer's contacts request is not there.
    assert!(!reads
        .iter()
        .any(|r| r["action"] == "GetContacts" && r["reader_role"] == "organizer"));
    assert!(reads.iter().all(|r| r["reader_account"] != json!(account)));
    assert!(reads.iter().all(|r| r["reader_role"] != "attendee"));

    let doc = export_with(&api, &tb, b_ids.len() as u64).await;
    let pings = doc["pings"].as_array().unwrap();
    assert!(pings.iter().all(|p| p["person_id"] == json!(b)));
    let reads = doc["reads_of_my_data"].as_array().unwrap();
    assert!(
        reads.iter().all(|r| r["action"] != "GetContacts"),
        "{reads:?}"
    );
}

/// Without a credential 401, with a device's 403, with a parameter 400; past 10 exports in an
/// hour 429 with Retry-After: problems, no data.
pub async fn bad_export_requests_are_problems(api: Api) {
    let a = person_with_email(&api, &address("export-bad")).await["id"]
        .as_i64()
        .unwrap();
    let anonymous = reqwest::Client::new()
        .get(api.url("/api/me/export"))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, 401, &[]).await;
    let device = api.admin_token("device", a).await;
    let attendee = api.admin_token("attendee", a).await;
    for (token, path, status, fields) in [
        (&device, "/api/me/export", 403, &[][..]),
        (
            &attendee,
            "/api/me/export?since=2020-01-01",
            400,
            &["since"][..],
        ),
    ] {
        assert_problem(get(&api, token, path).await, status, fields).await;
    }
    for _ in 0..10 {
        let r = get(&api, &attendee, "/api/me/export").await;
        assert_eq!(r.status(), StatusCode::OK);
        let doc: Value = r.json().await.unwrap();
        assert_eq!(doc["person"]["id"], json!(a));
    }
    let refused = get(&api, &attendee, "/api/me/export").await;
    let wait: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    assert_problem(refused, 429, &[]).await;
}

/// Reads of one person's data made at once by staff.
const READS_AT_ONCE: usize = 50;

/// Staff reading a person's data many times at once (the server writes the audit rows of
/// reads waiting together in one transaction): each read is answered and leaves its own row.
/// A read whose row the store refuses is refused (a problem, not the data), and nothing is
/// recorded of it; once the store takes rows again, so does the next read.
pub async fn staff_reads_at_once_each_leave_their_row(api: Api) {
    let a_mail = address("audit-at-once");
    let a = person_with_email(&api, &a_mail).await["id"]
        .as_i64()
        .unwrap();
    let ta = api.admin_token("attendee", a).await;
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..READS_AT_ONCE {
        let api = api.clone();
        reads.spawn(async move { api.get(&format!("/api/persons/{a}/summary")).await });
    }
    while let Some(r) = reads.join_next().await {
        assert_eq!(r.unwrap().status(), StatusCode::OK);
    }
    let doc = export_with(&api, &ta, 0).await;
    let reads = doc["reads_of_my_data"].as_array().unwrap();
    assert_eq!(reads.len(), READS_AT_ONCE, "{reads:?}");
    assert!(reads
        .iter()
        .all(|r| r["action"] == "GetSummary" && r["reader_role"] == "admin"));

    let b = api.create_person("Refused").await["id"].as_i64().unwrap();
    let store = AuditStore::of(&api).await;
    store.refuse_reads_of(b).await;
    for path in [
        format!("/api/persons/{b}/summary"),
        format!("/api/persons/{b}"),
    ] {
        let r = api.get(&path).await;
        let problem = assert_problem(r, 500, &[]).await;
        assert!(problem.get("pings").is_none() && problem.get("first_name").is_none());
    }
    assert_eq!(store.rows_of(b).await, 0);
    store.take_reads_again().await;
    let r = api.get(&format!("/api/persons/{b}/summary")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(store.rows_of(b).await, 1);
}

/// The engine's audit table reached directly, to make it refuse the rows of one person's
/// reads: SQLite in `serve`'s data directory, else the PostgreSQL database of `--store`.
enum AuditStore {
    Sqlite(std::path::PathBuf),
    Postgres(tokio_postgres::Client),
}

impl AuditStore {
    async fn of(api: &Api) -> AuditStore {
        if let Some(dir) = &api.data_dir {
            return AuditStore::Sqlite(dir.join("accounts.sqlite3"));
        }
        let url = api.accounts.last().expect("--store URL");
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        AuditStore::Postgres(client)
    }

    async fn run(&self, sql: &str) {
        match self {
            AuditStore::Sqlite(path) => rusqlite::Connection::open(path)
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
            AuditStore::Postgres(client) => client.batch_execute(sql).await.unwrap(),
        }
    }

    async fn refuse_reads_of(&self, person: i64) {
        match self {
            AuditStore::Sqlite(_) => {
                self.run(&format!(
                    "CREATE TRIGGER refuse_reads BEFORE INSERT ON data_read
                     WHEN NEW.person_id = {person}
                     BEGIN SELECT RAISE(ABORT, 'refused'); END"
                ))
                .await
            }
            AuditStore::Postgres(_) => {
                self.run(&format!(
                    "CREATE FUNCTION refuse_read() RETURNS trigger LANGUAGE plpgsql AS
                       $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
                     CREATE TRIGGER refuse_reads BEFORE INSERT ON data_read FOR EACH ROW
                       WHEN (NEW.person_id = {person}) EXECUTE FUNCTION refuse_read()"
                ))
                .await
            }
        }
    }

    async fn take_reads_again(&self) {
        match self {
            AuditStore::Sqlite(_) => self.run("DROP TRIGGER refuse_reads").await,
            AuditStore::Postgres(_) => {
                self.run("DROP TRIGGER refuse_reads ON data_read; DROP FUNCTION refuse_read()")
                    .await
            }
        }
    }

    async fn rows_of(&self, person: i64) -> i64 {
        let sql = "SELECT count(*) FROM data_read WHERE person_id = ";
        match self {
            AuditStore::Sqlite(path) => rusqlite::Connection::open(path)
                .unwrap()
                .query_row(&format!("{sql}{person}"), [], |r| r.get(0))
                .unwrap(),
            AuditStore::Postgres(client) => client
                .query_one(&format!("{sql}{person}"), &[])
                .await
                .unwrap()
                .get(0),
        }
    }
}

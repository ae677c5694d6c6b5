//! Erasing a person in `serve`, end to end: after a realistic ingest (two attendees who met,
//! one with an account and an address, mailed a sign-in link and a request to exchange
//! addresses), `DELETE /api/me` erases one of them; then no file of the data directory (the
//! stores, the log's topics with `notification`, the mail files) holds anything readable of
//! them (name, company, address, coordinates, a payload naming their id), queries no longer
//! show them, and neither a replay of the log nor a restart brings them back. The admin route `DELETE /api/persons/{id}` answers its
//! refusals and erases idempotently. Each a real `udaconnect serve` process.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use udaconnect_core::auth::Role;
use udaconnect_core::time::Window;
use udaconnect_server::wiring::backends::{open_account_stores, open_embedded_stores, StoreUrl};
use udaconnect_testkit::accounts::issue_token;
use udaconnect_testkit::eventually;
use udaconnect_testkit::process::{output_text, run_to_end, RoleProc};
use udaconnect_testkit::store_suite::{new_account, new_token};

const BIN: &str = env!("CARGO_BIN_EXE_udaconnect");
const PATIENCE: Duration = Duration::from_secs(30);

/// Where the erased attendee stood: a few metres from the one who stays, so they met.
const ERASED_AT: (f64, f64) = (41.120_021_3, 2.170_011_7);
const STAYS_AT: (f64, f64) = (41.12, 2.17);
const WINDOW: &str = "start_date=2024-06-01&end_date=2024-06-02&distance=10";

struct Server {
    proc: RoleProc,
    client: Client,
    admin: String,
}

impl Server {
    async fn start(data: &Path, admin: Option<String>) -> Server {
        let proc = RoleProc::serve_ready(Path::new(BIN), data, &["--auth", "on"], PATIENCE).await;
        let admin = match admin {
            Some(a) => a,
            None => {
                let accounts = accounts(data).await;
                issue_token(accounts.as_ref(), Role::Admin, None, "admin")
                    .await
                    .expose()
                    .to_string()
            }
        };
        Server {
            proc,
            client: Client::new(),
            admin,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.proc.base())
    }

    async fn call(&self, token: &str, method: reqwest::Method, path: &str) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// `GET path` as the admin.
    async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.call(&self.admin, reqwest::Method::GET, path).await
    }

    async fn create_person(&self, first: &str, last: &str, company: &str) -> i64 {
        let r = self
            .client
            .post(self.url("/api/persons"))
            .bearer_auth(&self.admin)
            .json(&json!({"first_name": first, "last_name": last, "company_name": company}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }

    /// Posts a ping a minute for ten minutes at `at`; returns the ids.
    async fn ingest(&self, person: i64, at: (f64, f64)) -> Vec<i64> {
        let batch: Vec<Value> = (0..10)
            .map(|m| {
                json!({"person_id": person, "latitude": at.0, "longitude": at.1,
                       "creation_time": format!("2024-06-01T10:{m:02}:00Z")})
            })
            .collect();
        let r = self
            .client
            .post(self.url("/api/locations/batch"))
            .bearer_auth(&self.admin)
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text().await);
        let body: Value = r.json().await.unwrap();
        body["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_i64().unwrap())
            .collect()
    }

    /// The persons in `asked`'s connection answer.
    async fn met_by(&self, asked: i64) -> Vec<i64> {
        let r = self
            .admin_get(&format!("/api/persons/{asked}/connection?{WINDOW}"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let answer: Value = r.json().await.unwrap();
        answer
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["person"]["id"].as_i64().unwrap())
            .collect()
    }
}

async fn accounts(data: &Path) -> udaconnect_core::ports::DynAccountStore {
    open_account_stores(&StoreUrl::Embedded(data.to_path_buf()))
        .await
        .unwrap()
        .accounts
}

/// What must not be readable anywhere once the person is erased.
struct Traces {
    texts: Vec<String>,
    floats: Vec<f64>,
}

impl Traces {
    fn needles(&self) -> Vec<(String, Vec<u8>)> {
        let mut n: Vec<(String, Vec<u8>)> = self
            .texts
            .iter()
            .map(|t| (t.clone(), t.as_bytes().to_vec()))
            .collect();
        for f in &self.floats {
            // As text (JSON), and as the 8 bytes SQLite (big-endian) or anything else
            // (little-endian) keeps a double in.
            n.push((format!("{f} as text"), f.to_string().into_bytes()));
            n.push((format!("{f} big-endian"), f.to_be_bytes().to_vec()));
            n.push((format!("{f} little-endian"), f.to_le_bytes().to_vec()));
        }
        n
    }

    /// Every file under `dir` holding one of the traces, with the trace.
    fn found_in(&self, dir: &Path) -> Vec<(PathBuf, String)> {
        let needles = self.needles();
        let mut found = Vec::new();
        let mut files = 0;
        for file in all_files(dir) {
            files += 1;
            let bytes = std::fs::read(&file).unwrap();
            for (name, needle) in &needles {
                if bytes.windows(needle.len()).any(|w| w == needle.as_slice()) {
                    found.push((file.clone(), name.clone()));
                }
            }
        }
        assert!(files > 5, "the data directory holds the stores and the log");
        found
    }
}

/// The mail files under `dir` to `address`.
fn mails_to(dir: &Path, address: &str) -> Vec<PathBuf> {
    if !dir.exists() {
        return Vec::new();
    }
    all_files(dir)
        .into_iter()
        .filter(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains(&format!("To: {address}"))))
        .collect()
}

fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_person_is_unreadable_in_every_file_and_stays_erased_after_replay() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, None).await;
    // Unique to this run, so no other test's data can be taken for a trace.
    let tag = udaconnect_testkit::local::unique("x").replace('_', "");
    let (first, last, company) = (
        format!("Erasmus{tag}"),
        format!("Vanish{tag}"),
        format!("Forgotten{tag} Ltd"),
    );
    let email = format!("erasmus.{tag}@example.org");
    let erased = server.create_person(&first, &last, &company).await;
    let stays = server.create_person("Stella", "Remain", "Acme").await;
    // The erased attendee's account, with an address, and their phone's token.
    let store = accounts(&data).await;
    let now = chrono::Utc::now();
    let account = store
        .create_account(new_account(Role::Attendee, Some(erased), Some(&email)), now)
        .await
        .unwrap();
    let token = store
        .create_token(new_token(&account, "phone"), now)
        .await
        .unwrap()
        .secret
        .expose()
        .to_string();
    drop(store);

    let theirs = server.ingest(erased, ERASED_AT).await;
    let kept = server.ingest(stays, STAYS_AT).await;
    eventually("the two to have met", PATIENCE, || async {
        server.met_by(stays).await.contains(&erased).then_some(())
    })
    .await;

    // Refusals first: nothing is erased by them.
    let delete = reqwest::Method::DELETE;
    let stays_token = {
        let store = accounts(&data).await;
        issue_token(store.as_ref(), Role::Attendee, Some(stays), "stays")
            .await
            .expose()
            .to_string()
    };
    let path = format!("/api/persons/{erased}");
    let r = server.call(&stays_token, delete.clone(), &path).await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "an attendee erases no one"
    );
    let r = server.call(&token, delete.clone(), &path).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "not even themself here");
    let r = server
        .call(&server.admin, delete.clone(), "/api/persons/abc")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "a problem"
    );
    let r = server
        .call(&server.admin, delete.clone(), "/api/persons/987654321")
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "no such person to erase");

    // Mail to the erased person: a sign-in link they ask for, and the request of the one who
    // stays to exchange addresses (by the handle of their only contact, not named to them).
    let r = server
        .client
        .post(server.url("/api/auth/login"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let r = server
        .call(&stays_token, reqwest::Method::GET, "/api/me/contacts")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let contacts: Value = r.json().await.unwrap();
    let handle = contacts[0]["handle"]
        .as_str()
        .unwrap_or_else(|| panic!("a handle: {contacts}"))
        .to_string();
    let r = server
        .call(
            &stays_token,
            reqwest::Method::POST,
            &format!("/api/me/contacts/{handle}/reveal"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    let mail_dir = data.join("mail");
    eventually("the two mails to them written", PATIENCE, || async {
        (mails_to(&mail_dir, &email).len() == 2).then_some(())
    })
    .await;

    // The attendee deletes their account, which erases them.
    let r = server
        .call(&token, delete.clone(), "/api/me?confirm=true")
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "{:?}", r.text().await);
    let r = server.call(&token, reqwest::Method::GET, "/api/me").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "the token is gone");
    let r = server.admin_get(&path).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    for id in &theirs {
        let r = server.admin_get(&format!("/api/locations/{id}")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "location {id}");
    }
    // The contact index learns of it from the log.
    eventually(
        "the erased person to leave the contact index",
        PATIENCE,
        || async { (!server.met_by(stays).await.contains(&erased)).then_some(()) },
    )
    .await;
    // The mailer learns of it from the log, and deletes the files of their mails.
    eventually("their mail files deleted", PATIENCE, || async {
        mails_to(&mail_dir, &email).is_empty().then_some(())
    })
    .await;
    let r = server.call(&server.admin, delete.clone(), &path).await;
    assert_eq!(
        r.status(),
        StatusCode::NO_CONTENT,
        "erasing again changes nothing"
    );
    // A late ping of theirs is refused, as for a person never created.
    let r = server
        .client
        .post(server.url("/api/locations"))
        .bearer_auth(&server.admin)
        .json(&json!({"person_id": erased, "latitude": ERASED_AT.0, "longitude": ERASED_AT.1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let traces = Traces {
        texts: vec![
            first,
            last,
            company,
            email,
            format!("\"person_id\":{erased},"),
        ],
        floats: vec![ERASED_AT.0, ERASED_AT.1],
    };
    // The one who stays is still there, in the same files: the search finds what is there.
    let control = Traces {
        texts: vec!["Stella".into()],
        floats: vec![STAYS_AT.0],
    };
    let control_found = |found: Vec<(PathBuf, String)>| {
        let mut names: Vec<String> = found.into_iter().map(|(_, n)| n).collect();
        names.sort();
        names.dedup();
        names
    };
    let mut proc = server.proc;
    assert!(proc.terminate(PATIENCE).await, "serve stops");
    assert_eq!(
        traces.found_in(&data),
        vec![],
        "traces of the erased person"
    );
    let seen = control_found(control.found_in(&data));
    assert!(
        seen.contains(&"Stella".to_string()) && seen.contains(&"41.12 big-endian".to_string()),
        "the search finds the one who stays: {seen:?}"
    );

    // A replay reads every record of the log again: the erased person's stay unread.
    let out = run_to_end(Path::new(BIN), &["replay"], &data, "", PATIENCE);
    assert!(out.status.success(), "{}", output_text(&out));
    let text = output_text(&out);
    assert!(text.contains("10 of erased persons skipped"), "{text}");
    let stores = open_embedded_stores(&data).unwrap();
    let left = stores
        .locations
        .in_window(Window::all(), None)
        .await
        .unwrap();
    let mut left_ids: Vec<i64> = left.iter().map(|l| l.id).collect();
    left_ids.sort_unstable();
    assert_eq!(left_ids, kept);
    drop(stores);
    assert_eq!(traces.found_in(&data), vec![], "after the replay");

    let server = Server::start(&data, Some(server.admin)).await;
    eventually("the one who stays to be served", PATIENCE, || async {
        let r = server.admin_get(&format!("/api/persons/{stays}")).await;
        (r.status() == StatusCode::OK).then_some(())
    })
    .await;
    assert_eq!(server.met_by(stays).await, Vec::<i64>::new());
    let r = server.admin_get(&path).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

//! `udaconnect admin create-token`, `list-tokens` and `revoke-token` as an operator runs them:
//! on a data directory offline, on one a running `serve` holds, and on PostgreSQL. The token
//! printed on the last line signs in (checked against the store) until revoked, and the
//! store never holds it: the data directory, the database and the server's log are searched
//! for it afterwards, and for its hash, which must be there.

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use udaconnect_core::auth::{Principal, Role, Scope, Scopes, TokenKind, TokenSecret};
use udaconnect_core::ports::DynAccountStore;
#[cfg(feature = "postgres")]
use udaconnect_server::wiring::backends::open_stores;
use udaconnect_server::wiring::backends::{open_account_stores, open_embedded_stores, StoreUrl};
#[cfg(feature = "postgres")]
use udaconnect_testkit::http::create_person;
use udaconnect_testkit::postgres::TestDb;
use udaconnect_testkit::process::{assert_help_names, output_text, run_admin, RoleProc};
use udaconnect_testkit::store_suite::persons;

const BIN: &str = env!("CARGO_BIN_EXE_udaconnect");
const PATIENCE: Duration = Duration::from_secs(30);

/// `udaconnect admin <args>`, with none of the environment's store or mail settings.
fn admin(args: &[&str]) -> Output {
    run_admin(Path::new(BIN), args)
}

/// Runs `admin create-token <args>` and returns the token: the last line of its output,
/// alone, in the token format.
fn create_token(args: &[&str]) -> TokenSecret {
    let mut all = vec!["create-token"];
    all.extend_from_slice(args);
    let out = admin(&all);
    assert!(out.status.success(), "{}", output_text(&out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let last = stdout.lines().last().unwrap_or_default();
    let token = TokenSecret::parse(last)
        .unwrap_or_else(|| panic!("the last line is not a token alone: {}", output_text(&out)));
    // Shown once, on that line: not in any other line, nor in the log (stderr).
    assert_eq!(
        stdout.matches(&last[3..]).count(),
        1,
        "{}",
        output_text(&out)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(&last[3..]),
        "{}",
        output_text(&out)
    );
    token
}

/// Runs `admin <args>` expecting a refusal that says `why`.
fn refused(args: &[&str], why: &str) {
    let out = admin(args);
    assert!(!out.status.success(), "{}", output_text(&out));
    assert!(
        output_text(&out).contains(why),
        "{why:?} not said: {}",
        output_text(&out)
    );
}

fn list_tokens(store: &[&str]) -> Vec<Value> {
    let mut args = vec!["list-tokens", "--format", "json"];
    args.extend_from_slice(store);
    let out = admin(&args);
    assert!(out.status.success(), "{}", output_text(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn verify(accounts: &DynAccountStore, token: &TokenSecret) -> Option<Principal> {
    accounts.verify_token(token, Utc::now()).await.unwrap()
}

/// Whether `needle` occurs in any file under `dir`.
fn found_under(dir: &Path, needle: &[u8]) -> bool {
    fs::read_dir(dir).unwrap().any(|entry| {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found_under(&path, needle)
        } else {
            let bytes = fs::read(&path).unwrap_or_default();
            bytes.windows(needle.len()).any(|w| w == needle)
        }
    })
}

/// The tokens are nowhere under `dir`, in any form a search would find (the whole text, or
/// its random part); their hashes are, so the search looks where they are stored.
fn only_hashes_under(dir: &Path, tokens: &[&TokenSecret]) {
    for token in tokens {
        let text = token.expose();
        assert!(!found_under(dir, text.as_bytes()), "a token is in {dir:?}");
        assert!(
            !found_under(dir, &text.as_bytes()[3..]),
            "a token is in {dir:?}"
        );
    }
    // SQLite keeps recent writes in its write-ahead log: one of the files has each hash.
    for token in tokens {
        assert!(
            found_under(dir, token.hash(TokenKind::Api).as_bytes()),
            "a token's hash is not in {dir:?}"
        );
    }
}

#[test]
fn help_names_the_commands_and_their_flags() {
    assert_help_names(
        BIN.as_ref(),
        &["admin"],
        &["create-token", "list-tokens", "revoke-token"],
    );
    assert_help_names(
        BIN.as_ref(),
        &["admin", "create-token"],
        &[
            "--role",
            "--person",
            "--name",
            "--scopes",
            "--expires-in",
            "--data-dir",
            "UDACONNECT_DATA_DIR",
            "--store",
            "UDACONNECT_STORE",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_created_listed_and_revoked_on_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();

    let admin_token = create_token(&["--role", "admin", "--data-dir", d]);
    let second_admin = create_token(&["--role", "admin", "--data-dir", d, "--name", "backup"]);
    let organizer = create_token(&[
        "--role",
        "organizer",
        "--data-dir",
        d,
        "--expires-in",
        "30d",
    ]);
    refused(
        &["create-token", "--role", "device", "--data-dir", d],
        "--person",
    );
    // No person store yet, then a person store without person 5.
    refused(
        &[
            "create-token",
            "--role",
            "device",
            "--person",
            "5",
            "--data-dir",
            d,
        ],
        "no person 5",
    );
    let stores = open_embedded_stores(&data).unwrap();
    stores.persons.import(persons([5, 6])).await.unwrap();
    drop(stores);
    refused(
        &[
            "create-token",
            "--role",
            "attendee",
            "--person",
            "7",
            "--data-dir",
            d,
        ],
        "no person 7",
    );
    let device = create_token(&[
        "--role",
        "device",
        "--person",
        "5",
        "--name",
        "phone",
        "--data-dir",
        d,
    ]);
    let attendee = create_token(&["--role", "attendee", "--person", "5", "--data-dir", d]);
    // Person 5's account is an attendee's: it holds no staff token.
    refused(
        &[
            "create-token",
            "--role",
            "admin",
            "--person",
            "5",
            "--data-dir",
            d,
        ],
        "cannot hold an admin token",
    );
    let read_only = create_token(&[
        "--role",
        "attendee",
        "--person",
        "6",
        "--scopes",
        "read",
        "--data-dir",
        d,
    ]);

    let accounts = open_account_stores(&StoreUrl::Embedded(data.clone()))
        .await
        .unwrap()
        .accounts;
    let admin_p = verify(&accounts, &admin_token).await.unwrap();
    assert_eq!((admin_p.role, admin_p.person), (Role::Admin, None));
    // Both admin tokens belong to the one bootstrap account.
    assert_eq!(
        verify(&accounts, &second_admin).await.unwrap().account,
        admin_p.account
    );
    assert_eq!(
        verify(&accounts, &organizer).await.unwrap().role,
        Role::Organizer
    );
    let device_p = verify(&accounts, &device).await.unwrap();
    assert_eq!(
        (device_p.role, device_p.person, device_p.scopes),
        (Role::Device, Some(5), Scopes::only(Scope::Ingest))
    );
    let attendee_p = verify(&accounts, &attendee).await.unwrap();
    assert_eq!(
        (attendee_p.role, attendee_p.account),
        (Role::Attendee, device_p.account)
    );
    assert_eq!(
        verify(&accounts, &read_only).await.unwrap().scopes,
        Scopes::only(Scope::Read)
    );
    assert_eq!(accounts.count_admins().await.unwrap(), 1);

    let listed = list_tokens(&["--data-dir", d]);
    assert_eq!(listed.len(), 6, "{listed:?}");
    let phone = listed.iter().find(|t| t["name"] == "phone").unwrap();
    assert_eq!(
        (&phone["role"], &phone["person"], &phone["state"]),
        (&json!("device"), &json!(5), &json!("active"))
    );
    assert!(listed.iter().filter(|t| t["expires"].is_string()).count() == 1);
    assert_eq!(list_tokens(&["--person", "5", "--data-dir", d]).len(), 2);

    let id = phone["id"].as_i64().unwrap().to_string();
    let out = admin(&["revoke-token", &id, "--data-dir", d]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(verify(&accounts, &device).await, None, "revoked at once");
    assert!(
        verify(&accounts, &attendee).await.is_some(),
        "only that one"
    );
    let out = admin(&["revoke-token", &id, "--data-dir", d]);
    assert!(
        output_text(&out).contains("revoked already"),
        "{}",
        output_text(&out)
    );
    refused(&["revoke-token", "999", "--data-dir", d], "no token 999");
    let listed = list_tokens(&["--data-dir", d]);
    let phone = listed.iter().find(|t| t["name"] == "phone").unwrap();
    assert_eq!(phone["state"], "revoked");
    let table = admin(&["list-tokens", "--data-dir", d]);
    assert!(
        String::from_utf8_lossy(&table.stdout).contains("revoked"),
        "{}",
        output_text(&table)
    );

    drop(accounts);
    only_hashes_under(
        &data,
        &[
            &admin_token,
            &second_admin,
            &organizer,
            &device,
            &attendee,
            &read_only,
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_created_while_serve_runs_on_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let server = RoleProc::serve_ready(Path::new(BIN), Path::new(d), &[], PATIENCE).await;
    let person = create_person(&reqwest::Client::new(), &server.base(), "Ada").await;

    let admin_token = create_token(&["--role", "admin", "--data-dir", d]);
    let device = create_token(&[
        "--role",
        "device",
        "--person",
        &person.to_string(),
        "--data-dir",
        d,
    ]);
    let accounts = open_account_stores(&StoreUrl::Embedded(data.clone()))
        .await
        .unwrap()
        .accounts;
    assert_eq!(
        verify(&accounts, &device).await.unwrap().person,
        Some(person)
    );
    assert_eq!(list_tokens(&["--data-dir", d]).len(), 2);

    // The server carries on.
    let health = reqwest::get(format!("{}/health", server.base()))
        .await
        .unwrap();
    assert!(health.status().is_success());
    drop(accounts);
    drop(server);
    only_hashes_under(&data, &[&admin_token, &device]);
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_created_and_revoked_on_postgresql() {
    let db = TestDb::new().await;
    let url: StoreUrl = db.url.parse().unwrap();
    let (_keep, mut never) = tokio::sync::watch::channel(false);
    let stores = open_stores(&url, &mut never).await.unwrap().unwrap();
    stores.persons.import(persons([41])).await.unwrap();

    let admin_token = create_token(&["--role", "admin", "--store", &db.url]);
    let device = create_token(&["--role", "device", "--person", "41", "--store", &db.url]);
    refused(
        &[
            "create-token",
            "--role",
            "device",
            "--person",
            "42",
            "--store",
            &db.url,
        ],
        "no person 42",
    );
    let accounts = open_account_stores(&url).await.unwrap().accounts;
    assert_eq!(
        verify(&accounts, &admin_token).await.unwrap().role,
        Role::Admin
    );
    assert_eq!(verify(&accounts, &device).await.unwrap().person, Some(41));
    let listed = list_tokens(&["--store", &db.url]);
    assert_eq!(listed.len(), 2, "{listed:?}");
    let id = listed.iter().find(|t| t["role"] == "device").unwrap()["id"]
        .as_i64()
        .unwrap();
    let out = admin(&["revoke-token", &id.to_string(), "--store", &db.url]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(verify(&accounts, &device).await, None);

    // Every row of every account table, as text, holds neither token; the hashes are there.
    let client = db.client().await;
    for token in [&admin_token, &device] {
        for table in [
            "account",
            "account_token",
            "account_session",
            "sign_in_link",
        ] {
            let n: i64 = client
                .query_one(
                    &format!(
                        "SELECT count(*) FROM {table} t
                         WHERE t::text LIKE '%' || $1 || '%' OR t::text LIKE '%' || $2 || '%'"
                    ),
                    &[&token.expose(), &&token.expose()[3..]],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(n, 0, "a token is in {table}");
        }
        let hash = token.hash(TokenKind::Api).as_bytes().to_vec();
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM account_token WHERE hash = $1",
                &[&hash],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1);
    }
}

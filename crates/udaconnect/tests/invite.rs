//! `udaconnect admin invite` as an operator runs it, offline: the account is created in the
//! data directory, the mail written as an `.eml` file there (no SMTP) or sent over SMTP to the
//! test kit's server, and its link signs in on a `serve` started on that directory afterwards.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use udaconnect_core::auth::{Email, Role};
use udaconnect_server::wiring::backends::{open_account_stores, StoreUrl};
use udaconnect_testkit::http::json_answer;
use udaconnect_testkit::process::{output_text, run_admin, RoleProc};
use udaconnect_testkit::smtp::{Received, SmtpServer};

const BIN: &str = env!("CARGO_BIN_EXE_udaconnect");

fn admin(args: &[&str]) -> Output {
    run_admin(Path::new(BIN), args)
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        if p.is_dir() {
            todo.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p, bytes));
        }
    }
    out
}

fn contains(bytes: &[u8], s: &str) -> bool {
    bytes.windows(s.len()).any(|w| w == s.as_bytes())
}

#[tokio::test]
async fn invite_offline_writes_a_mail_whose_link_signs_in() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = admin(&[
        "invite",
        "Ada@Example.org",
        "--role",
        "organizer",
        "--data-dir",
        d,
        "--public-url",
        "http://127.0.0.1:30000",
    ]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("invited Ada@Example.org as organizer"));

    let accounts = open_account_stores(&StoreUrl::Embedded(dir.path().to_path_buf()))
        .await
        .unwrap()
        .accounts;
    let account = accounts
        .account_by_email(&Email::parse("ada@example.org").unwrap())
        .await
        .unwrap()
        .expect("the account");
    assert_eq!(account.role, Role::Organizer);
    assert_eq!(account.person, None);

    // No SMTP: the mail is a file in DIR/mail/, the one place its link is.
    let mails: Vec<_> = files(&dir.path().join("mail"))
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    assert_eq!(mails.len(), 1);
    let mail = Received {
        from: String::new(),
        to: Vec::new(),
        data: String::from_utf8(mails[0].1.clone()).unwrap(),
    };
    assert_eq!(mail.header("Subject").unwrap(), "Welcome to UdaConnect");
    assert!(mail
        .body_text()
        .contains("http://127.0.0.1:30000/auth/confirm?token=uc_"));
    let token = mail.sign_in_token().expect("a link in the mail");
    for (path, bytes) in files(dir.path()) {
        if path.extension().is_none_or(|e| e != "eml") {
            assert!(!contains(&bytes, &token), "the link in {}", path.display());
        }
    }

    // Inviting again sends a new link; another role for the address is refused.
    let again = admin(&[
        "invite",
        "ada@example.org",
        "--role",
        "organizer",
        "--data-dir",
        d,
    ]);
    assert!(again.status.success(), "{}", output_text(&again));
    for (args, why) in [
        (
            vec![
                "invite",
                "ada@example.org",
                "--role",
                "admin",
                "--data-dir",
                d,
            ],
            "already has an account",
        ),
        (
            vec![
                "invite",
                "bob@example.org",
                "--role",
                "attendee",
                "--data-dir",
                d,
            ],
            "--person",
        ),
        (
            vec![
                "invite",
                "bob@example.org",
                "--role",
                "device",
                "--data-dir",
                d,
            ],
            "create-token",
        ),
        (
            vec![
                "invite",
                "not-an-address",
                "--role",
                "organizer",
                "--data-dir",
                d,
            ],
            "email",
        ),
    ] {
        let out = admin(&args);
        assert!(!out.status.success(), "{}", output_text(&out));
        assert!(
            output_text(&out).contains(why),
            "{why:?} not said: {}",
            output_text(&out)
        );
    }

    // The link signs in on a server started on that directory.
    let serve = RoleProc::serve_ready(
        Path::new(BIN),
        Path::new(d),
        &["--auth", "on"],
        Duration::from_secs(60),
    )
    .await;
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/auth/confirm", serve.base()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with("uc_session=uc_"));
    // The session is the invited organizer's.
    let session = r.headers()["set-cookie"].to_str().unwrap();
    let me: serde_json::Value = json_answer(
        reqwest::Client::new()
            .get(format!("{}/api/me", serve.base()))
            .header("cookie", session.split(';').next().unwrap()),
    )
    .await;
    assert_eq!(me["role"], "organizer", "{me}");
    // serve said how to make the first admin, and logged no link of ours.
    let log = std::fs::read_to_string(&serve.log).unwrap();
    assert!(log.contains("admin create-token --role admin"), "{log}");
    assert!(!log.contains(&token));
}

#[tokio::test]
async fn invite_over_smtp_sends_the_mail() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let out = tokio::task::spawn_blocking(move || {
        let d = dir.path().to_str().unwrap().to_string();
        let out = admin(&[
            "invite",
            "grace@example.org",
            "--role",
            "admin",
            "--data-dir",
            &d,
            "--smtp",
            &url,
        ]);
        // No .eml: the mail went over SMTP.
        assert!(!dir.path().join("mail").exists());
        out
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let mails = smtp.received();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["grace@example.org"]);
    assert!(mails[0].sign_in_token().is_some());
}

#[tokio::test]
async fn import_with_addresses_welcomes_each_person_once_serve_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let csv = dir.path().join("persons.csv");
    std::fs::write(
        &csv,
        "id,first_name,last_name,company_name,email\n\
         101,Ada,Lovelace,Engines,ada@example.org\n\
         102,Grace,Hopper,Navy,\n\
         103,Alan,Turing,Bletchley,alan@example.org\n\
         104,Bad,Address,Nowhere,not an address\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["import", "--data-dir", &d, "--persons"])
        .arg(&csv)
        .env_remove("UDACONNECT_DATA_DIR")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("4 rows, 3 imported, 1 rejected"), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("persons line 5:") && l.contains("email")),
        "{err}"
    );
    assert!(err.contains("accounts: 2 created"), "{err}");

    // Importing again creates no second account and no second mail.
    let again = Command::new(BIN)
        .args(["import", "--data-dir", &d, "--persons"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", output_text(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("accounts: 0 created"));

    // The mails were queued on the log: serve's mailer sends them (while it runs).
    let smtp = SmtpServer::start().await;
    let _serve = RoleProc::serve_ready(
        Path::new(BIN),
        Path::new(&d),
        &["--smtp", &smtp.url()],
        Duration::from_secs(60),
    )
    .await;
    let inbox = smtp.inbox();
    for address in ["ada@example.org", "alan@example.org"] {
        let mails = inbox
            .wait_for(address, 1, Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("no welcome to {address}"));
        assert_eq!(mails[0].header("Subject").unwrap(), "Welcome to UdaConnect");
        assert!(mails[0].sign_in_token().is_some());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received().len(), 2);
}

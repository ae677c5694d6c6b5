//! Sign-in where the test must hold the clock or the settings: links and sessions expire by
//! the clock port (a test clock moved 16 minutes, not a 15-minute sleep), the limit per
//! client, self-registration, and `serve --demo`'s links. Mail goes through the mailer to the
//! test kit's SMTP server over TCP. The flow itself, in both modes, is the `api` suite's.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use serde_json::{json, Value};
use udaconnect_core::auth::Role;
use udaconnect_core::clock::ManualClock;
use udaconnect_server::mail::MailSettings;
use udaconnect_server::signin::SignInSettings;
use udaconnect_server::wiring::backends::{open_account_stores, StoreUrl};
use udaconnect_server::{Application, GrpcListen, HttpSettings, ServeSettings};
use udaconnect_testkit::accounts::issue_token;
use udaconnect_testkit::http::{json_answer, json_answer_as};
use udaconnect_testkit::smtp::SmtpServer;

struct App {
    app: Application,
    base: String,
    smtp: SmtpServer,
    clock: Arc<ManualClock>,
    /// An organizer's token: auth is on, as it is by default.
    staff: String,
    _dir: tempfile::TempDir,
}

async fn start(self_registration: bool, demo: bool) -> App {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start().await;
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = Application::build(ServeSettings {
        http: HttpSettings {
            signin: SignInSettings {
                self_registration,
                clock: clock.clone(),
                ..SignInSettings::default()
            },
            ..HttpSettings::on("127.0.0.1:0".parse().unwrap())
        },
        data_dir: dir.path().to_path_buf(),
        demo,
        demo_attendees: 0,
        grpc: GrpcListen::Off,
        log_retention: Default::default(),
        retention: Default::default(),
        mail: MailSettings {
            smtp: Some(smtp.url().parse().unwrap()),
            retry_delay: Duration::from_millis(100),
            ..MailSettings::default()
        },
        mqtt: None,
    })
    .await
    .unwrap();
    let staff = organizer_token(dir.path()).await;
    App {
        staff,
        base: format!("http://{}", app.local_addr()),
        app,
        smtp,
        clock,
        _dir: dir,
    }
}

/// A token of a new organizer account in the data directory's account store.
async fn organizer_token(data_dir: &std::path::Path) -> String {
    let accounts = open_account_stores(&StoreUrl::Embedded(data_dir.to_path_buf()))
        .await
        .unwrap()
        .accounts;
    issue_token(accounts.as_ref(), Role::Organizer, None, "test")
        .await
        .expose()
        .to_string()
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl App {
    /// POST as the organizer.
    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        browser()
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.staff)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn confirm(&self, token: &str) -> reqwest::Response {
        browser()
            .post(format!("{}/auth/confirm", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
            .send()
            .await
            .unwrap()
    }

    /// How many persons there are, as the organizer sees them.
    async fn persons(&self) -> usize {
        let persons = browser()
            .get(format!("{}/api/persons", self.base))
            .bearer_auth(&self.staff);
        json_answer_as::<Vec<Value>>(persons).await.len()
    }

    async fn logout(&self, cookie: &str) -> reqwest::StatusCode {
        browser()
            .post(format!("{}/api/auth/logout", self.base))
            .header("cookie", cookie)
            .header("origin", &self.base)
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn token(&self, email: &str, n: usize) -> String {
        let mails = self
            .smtp
            .inbox()
            .wait_for(email, n, Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("mail {n} to {email} never came"));
        mails[n - 1].sign_in_token().expect("a link in the mail")
    }
}

fn cookie_of(r: &reqwest::Response) -> String {
    let set = r.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn links_and_sessions_expire_by_the_clock() {
    let app = start(false, false).await;
    let email = "ada@example.org";
    let r = app
        .post(
            "/api/persons",
            json!({"first_name": "Ada", "last_name": "L", "company_name": "E", "email": email}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let welcome = app.token(email, 1).await;

    // 15 minutes and a second later, the welcome link no longer works.
    app.clock
        .advance(TimeDelta::minutes(15) + TimeDelta::seconds(1));
    assert_eq!(app.confirm(&welcome).await.status(), 410);

    // A new link, made now, works until its own 15 minutes are up.
    assert_eq!(
        app.post("/api/auth/login", json!({ "email": email }))
            .await
            .status(),
        202
    );
    let fresh = app.token(email, 2).await;
    app.clock.advance(TimeDelta::minutes(14));
    let r = app.confirm(&fresh).await;
    assert_eq!(r.status(), 303);
    let session = cookie_of(&r);

    // A session ends after 14 days: the server no longer knows it.
    app.clock
        .advance(TimeDelta::days(14) + TimeDelta::seconds(1));
    assert_eq!(app.logout(&session).await, 401);
    app.app.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_is_limited_to_twenty_sign_in_requests_in_15_minutes() {
    let app = start(false, false).await;
    for i in 0..20 {
        let r = app
            .post(
                "/api/auth/login",
                json!({ "email": format!("a{i}@example.org") }),
            )
            .await;
        assert_eq!(r.status(), 202, "request {i}");
    }
    let r = app
        .post("/api/auth/login", json!({"email": "late@example.org"}))
        .await;
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait));
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("client"),
        "{body}"
    );
    // None of those addresses has an account: no mail went out.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.smtp.received().is_empty());
    app.app.stop().await.unwrap();
}

#[tokio::test]
async fn self_registration_makes_an_attendee_with_a_person() {
    let app = start(true, false).await;
    assert_eq!(app.persons().await, 0);
    let r = app
        .post("/api/auth/login", json!({"email": "new.comer@example.org"}))
        .await;
    assert_eq!(r.status(), 202);
    let token = app.token("new.comer@example.org", 1).await;
    assert_eq!(app.persons().await, 1);
    assert_eq!(app.confirm(&token).await.status(), 303);
    app.app.stop().await.unwrap();
}

#[tokio::test]
async fn without_self_registration_an_unknown_address_gets_nothing() {
    let app = start(false, false).await;
    let r = app
        .post("/api/auth/login", json!({"email": "stranger@example.org"}))
        .await;
    assert_eq!(r.status(), 202);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(app.smtp.received().is_empty());
    assert_eq!(app.persons().await, 0);
    app.app.stop().await.unwrap();
}

#[tokio::test]
async fn the_demo_offers_links_for_an_organizer_and_an_attendee() {
    let app = start(false, true).await;
    let links = app.app.demo_links().to_vec();
    let roles: Vec<String> = links.iter().map(|(r, _)| r.to_string()).collect();
    assert_eq!(roles, ["organizer", "attendee"]);
    for (role, link) in &links {
        assert!(link.starts_with(&format!("{}/auth/confirm?token=uc_", app.base)));
        let page = reqwest::get(link).await.unwrap();
        assert_eq!(page.status(), 200, "{role}");
        let token = link.rsplit_once("token=").unwrap().1;
        let r = app.confirm(token).await;
        assert_eq!(r.status(), 303, "{role}");
        assert_eq!(app.logout(&cookie_of(&r)).await, 204);
    }
    app.app.stop().await.unwrap();
}

/// The sign-in page's demo buttons: fresh links from `GET /api/auth/demo`, to this machine
/// only; a link signs in as the demo's attendee, who is the demo data's first person.
#[tokio::test]
async fn the_demo_page_offers_fresh_links_to_this_machine_only() {
    let app = start(false, true).await;
    let demo = format!("{}/api/auth/demo", app.base);
    let answer = json_answer(browser().get(&demo)).await;
    let links = answer["links"].as_array().unwrap();
    let roles: Vec<&str> = links.iter().map(|l| l["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["organizer", "attendee"]);
    assert_eq!(links[1]["email"], "attendee@demo.udaconnect.test");
    let url = links[1]["url"].as_str().unwrap();
    let token = url.rsplit_once("token=").unwrap().1;
    let signed_in = app.confirm(token).await;
    assert_eq!(signed_in.status(), 303);
    let me = json_answer(
        browser()
            .get(format!("{}/api/me", app.base))
            .header("cookie", cookie_of(&signed_in)),
    )
    .await;
    assert_eq!(me["role"], "attendee", "{me}");
    assert_eq!(me["person"]["id"], 1, "{me}");
    // Used once: the same link does not sign in again.
    assert_ne!(app.confirm(token).await.status(), 303);

    // What a proxy on this machine forwarded comes from elsewhere.
    let forwarded = browser()
        .get(&demo)
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.status(), 404);
    assert_eq!(
        forwarded.headers()["content-type"],
        "application/problem+json"
    );
    app.app.stop().await.unwrap();

    let plain = start(false, false).await;
    let off = browser()
        .get(format!("{}/api/auth/demo", plain.base))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 404);
    let body: Value = off.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("--demo"),
        "{body}"
    );
    plain.app.stop().await.unwrap();
}

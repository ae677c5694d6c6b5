//! Sign-in by e-mail link, through the engine's mailer and a real SMTP server over TCP: ask,
//! receive, open the link (a page that uses nothing up), confirm (a session cookie), sign out;
//! the same answer for an unknown address, the limit per address, welcome mails for persons
//! created with an address, and no secret left in a log, a log line or a data directory.
//!
//! Expiry (a clock the test moves) and the limit per client are in the in-process suite.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use udaconnect_server::roles::Role;
use udaconnect_testkit::smtp::Received;
use udaconnect_testkit::unique;

use crate::suite::{assert_json_problems, assert_malformed_bodies, assert_problem, header, Api};

const MAIL_PATIENCE: Duration = Duration::from_secs(60);

pub(crate) fn address(what: &str) -> String {
    format!("{}@example.org", unique(what).to_lowercase())
}

/// A client that does not follow redirects, to see the confirm's 303 and its cookie.
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Creates a person with `email` (an attendee account and a welcome mail); returns the person.
pub(crate) async fn person_with_email(api: &Api, email: &str) -> Value {
    let r = api
        .post_json(
            "/api/persons",
            &json!({"first_name": "Ada", "last_name": "Lovelace", "company_name": "Engines", "email": email}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

/// Waits for the `n`th mail to `email` and returns it.
pub(crate) async fn nth_mail(api: &Api, email: &str, n: usize) -> Received {
    let got = api
        .inbox
        .wait_for(email, n, MAIL_PATIENCE)
        .await
        .unwrap_or_else(|| {
            panic!(
                "mail {n} to {email} never came; mailer log:\n{}",
                api.log_of(Role::Mailer)
            )
        });
    got[n - 1].clone()
}

pub(crate) async fn ask_for_link(api: &Api, email: &str) -> reqwest::Response {
    api.post_json("/api/auth/login", &json!({ "email": email }))
        .await
}

async fn confirm(api: &Api, token: &str) -> reqwest::Response {
    follow_link(api, "/auth/confirm", token).await
}

/// A mailed link's `token` posted to its `page` (`/auth/confirm`, `/auth/verify-email`), as
/// the page's form does.
pub async fn follow_link(api: &Api, page: &str, token: &str) -> reqwest::Response {
    browser()
        .post(api.url(page))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap()
}

/// Links to `page` that are not links: each of `gets` (the page with no token or a short one)
/// answers a page that says so, a short token posted too, and one never issued is gone;
/// never a 500.
pub async fn assert_not_links(api: &Api, page: &str, gets: &[&str]) {
    for path in gets {
        let r = api.get(path).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        assert!(header(&r, "content-type").starts_with("text/html"));
    }
    let short = follow_link(api, page, "uc_short").await;
    assert_eq!(short.status(), StatusCode::BAD_REQUEST, "{page}");
    let never_issued = format!("uc_{}", "A".repeat(43));
    let gone = follow_link(api, page, &never_issued).await;
    assert_eq!(gone.status(), StatusCode::GONE, "{page}");
}

async fn logout(api: &Api, cookie: Option<&str>) -> reqwest::Response {
    let mut r = browser()
        .post(api.url("/api/auth/logout"))
        .header("origin", api.base.clone());
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    r.send().await.unwrap()
}

/// `GET /api/me` as a browser sends it, with the session cookie if any.
pub(crate) async fn me(api: &Api, cookie: Option<&str>) -> reqwest::Response {
    let mut r = browser().get(api.url("/api/me"));
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    r.send().await.unwrap()
}

/// Signs in with `token`; the `uc_session=...` pair of the cookie set.
pub(crate) async fn signed_in(api: &Api, token: &str) -> String {
    let r = confirm(api, token).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&r, "location"), "/");
    let cookie = header(&r, "set-cookie");
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for a in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(attributes.contains(&a), "{a} in {cookie}");
    }
    // Plain HTTP, no trusted proxy saying otherwise: not Secure, or the browser would drop it.
    assert!(!attributes.contains(&"Secure"), "{cookie}");
    let pair = attributes[0].to_string();
    assert!(pair.starts_with("uc_session=uc_") && pair.len() == "uc_session=".len() + 46);
    pair
}

pub async fn a_link_by_mail_signs_in_once_and_sign_out_ends_the_session(api: Api) {
    let email = address("ada");
    let person = person_with_email(&api, &email).await;
    nth_mail(&api, &email, 1).await;
    let r = ask_for_link(&api, &email).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let mail = nth_mail(&api, &email, 2).await;
    assert_eq!(mail.header("Subject").unwrap(), "Sign in to UdaConnect");
    let token = mail.sign_in_token().expect("a link in the mail");

    // Opening the link shows a button and uses nothing up, however often (mail scanners).
    for _ in 0..2 {
        let page = api.get(&format!("/auth/confirm?token={token}")).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert!(header(&page, "content-type").starts_with("text/html"));
        assert!(header(&page, "content-security-policy").contains("script-src 'self'"));
        let html = page.text().await.unwrap();
        assert!(html.contains(r#"<form method="post" action="/auth/confirm">"#));
        assert!(html.contains(&format!(r#"value="{token}""#)));
        assert!(!html.contains("<script"));
    }

    let session = signed_in(&api, &token).await;
    // The same link again: used up, nothing created.
    let again = confirm(&api, &token).await;
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(again.text().await.unwrap().contains("does not work"));

    // The cookie alone says who is asking: the person made with this address, an attendee.
    let answer = me(&api, Some(&session)).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let who: Value = answer.json().await.unwrap();
    assert_eq!(who["role"], "attendee");
    assert_eq!(who["person"], person);
    assert_eq!(who["email"], email.as_str());

    // The session is the server's: signing out ends it, and the cookie no longer works.
    let out = logout(&api, Some(&session)).await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert!(header(&out, "set-cookie").contains("Max-Age=0"));
    assert_problem(logout(&api, Some(&session)).await, 401, &[]).await;
    assert_problem(logout(&api, None).await, 401, &[]).await;
    assert_problem(me(&api, Some(&session)).await, 401, &[]).await;
}

pub async fn unknown_addresses_get_the_same_answer_and_no_mail(api: Api) {
    let known = address("known");
    let unknown = address("unknown");
    person_with_email(&api, &known).await;
    nth_mail(&api, &known, 1).await;
    let a = ask_for_link(&api, &unknown).await;
    let b = ask_for_link(&api, &known).await;
    assert_eq!(a.status(), StatusCode::ACCEPTED);
    assert_eq!(b.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&a, "content-type"), header(&b, "content-type"));
    assert_eq!(a.bytes().await.unwrap(), b.bytes().await.unwrap());
    // The known address's link comes after the unknown's request was handled (in order).
    nth_mail(&api, &known, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(api.inbox.to(&unknown).is_empty());
}

pub async fn an_address_is_limited_to_five_links_in_15_minutes(api: Api) {
    let email = address("eager");
    for _ in 0..5 {
        assert_eq!(
            ask_for_link(&api, &email).await.status(),
            StatusCode::ACCEPTED
        );
    }
    let r = ask_for_link(&api, &email).await;
    let wait: u64 = header(&r, "retry-after").parse().unwrap();
    assert!((1..=900).contains(&wait), "Retry-After {wait}");
    let body = assert_problem(r, 429, &[]).await;
    assert!(
        body["detail"].as_str().unwrap().contains("address"),
        "{body}"
    );
    // Another address from the same client is not held back by it.
    let other = ask_for_link(&api, &address("patient")).await;
    assert_eq!(other.status(), StatusCode::ACCEPTED);
}

pub async fn bad_sign_in_requests_are_problems(api: Api) {
    assert_json_problems(
        &api,
        "/api/auth/login",
        &[
            (json!({}), 422, &["email"]),
            (json!({"email": null}), 422, &["email"]),
            (json!({"email": 5}), 400, &["email"]),
            (json!({"email": "nobody"}), 422, &["email"]),
            (json!({"email": "a b@example.org"}), 422, &["email"]),
            (json!({"email": ""}), 422, &["email"]),
        ],
    )
    .await;
    assert_malformed_bodies(&api, "/api/auth/login", "{\"email\": ").await;
    let r = api
        .post_as("/api/auth/login", "text/plain", "ada@example.org")
        .await;
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Links that are not links: a page that says so, never a 500.
    let gets = [
        "/auth/confirm",
        "/auth/confirm?token=",
        "/auth/confirm?token=uc_short",
    ];
    assert_not_links(&api, "/auth/confirm", &gets).await;
}

pub async fn persons_created_with_an_address_are_welcomed(api: Api) {
    let email = address("grace");
    let person = person_with_email(&api, &email).await;
    // The person's shape is the original one: the address is not in it.
    let keys: Vec<&str> = person
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "{person}");
    for k in ["id", "first_name", "last_name", "company_name"] {
        assert!(keys.contains(&k), "{person}");
    }
    let id = person["id"].as_i64().unwrap();
    let read = api.get_json(&format!("/api/persons/{id}")).await;
    assert_eq!(read, person);
    let listed = api
        .get("/api/persons?limit=10000")
        .await
        .text()
        .await
        .unwrap();
    assert!(!listed.contains(&email));

    let welcome = nth_mail(&api, &email, 1).await;
    assert_eq!(welcome.header("Subject").unwrap(), "Welcome to UdaConnect");
    let token = welcome.sign_in_token().expect("a link in the welcome");
    signed_in(&api, &token).await;

    // The address in another case is the same address: 409, and no second person.
    let before = api.person_ids().await;
    let r = api
        .post_json(
            "/api/persons",
            &json!({"first_name": "G", "last_name": "H", "company_name": "C", "email": email.to_uppercase()}),
        )
        .await;
    assert_problem(r, 409, &[]).await;
    let r = api
        .post_json(
            "/api/persons",
            &json!({"first_name": "G", "last_name": "H", "company_name": "C", "email": "not an address"}),
        )
        .await;
    assert_problem(r, 422, &["email"]).await;
    assert_eq!(api.person_ids().await, before);
}

pub async fn no_link_token_or_session_id_is_written_anywhere(api: Api) {
    let email = address("secret");
    person_with_email(&api, &email).await;
    let welcome = nth_mail(&api, &email, 1).await.sign_in_token().unwrap();
    ask_for_link(&api, &email).await;
    let link = nth_mail(&api, &email, 2).await.sign_in_token().unwrap();
    let session = signed_in(&api, &link).await;
    let session = session.trim_start_matches("uc_session=").to_string();
    let secrets = [welcome, link, session];

    for role in Role::ALL {
        let log = api.log_of(role);
        for s in &secrets {
            assert!(!log.contains(s.as_str()), "a secret in {role}'s log");
        }
    }
    if let Some(dir) = &api.data_dir {
        let mut files = vec![dir.clone()];
        let mut read = 0;
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            read += 1;
            for s in &secrets {
                assert!(
                    !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                    "a secret in {}",
                    path.display()
                );
            }
        }
        assert!(read > 3, "the data directory was read");
    }
}

//! An account's own changes through the engine's mailer and a real SMTP server: a new
//! primary or secondary address verified by a link to it, sessions listed and ended; and the
//! admins' list of accounts and role changes. Bad requests are problems, never a 500.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use udaconnect_server::roles::Role;

use crate::signin::{
    address, assert_not_links, browser, follow_link, nth_mail, person_with_email, signed_in,
};
use crate::suite::{assert_problem, assert_raw_problems, header, Api};

/// An account's secondary address.
const SECONDARY: &str = "/api/me/secondary-email";

/// A new attendee with an address, signed in by their welcome link: the session's cookie
/// pair.
async fn attendee_session(api: &Api, email: &str) -> String {
    person_with_email(api, email).await;
    let welcome = nth_mail(api, email, 1).await;
    signed_in(api, &welcome.sign_in_token().expect("a link")).await
}

/// `method path` as the page sends it: the session's cookie, this site's origin.
async fn as_browser(
    api: &Api,
    cookie: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut r = browser()
        .request(method, api.url(path))
        .header("cookie", cookie)
        .header("origin", api.base.clone());
    if let Some(b) = body {
        r = r.json(b);
    }
    r.send().await.unwrap()
}

async fn me(api: &Api, cookie: &str) -> Value {
    let r = as_browser(api, cookie, Method::GET, "/api/me", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn verify(api: &Api, token: &str) -> reqwest::Response {
    follow_link(api, "/auth/verify-email", token).await
}

pub async fn a_new_address_is_the_accounts_once_its_link_is_followed(api: Api) {
    let old = address("mover");
    let new = address("moved");
    let session = attendee_session(&api, &old).await;
    let body = json!({ "email": new.to_uppercase() });
    let r = as_browser(&api, &session, Method::POST, "/api/me/email", Some(&body)).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // Nothing changes before the link is followed.
    assert_eq!(me(&api, &session).await["email"], old.as_str());
    let mail = nth_mail(&api, &new.to_uppercase(), 1).await;
    assert_eq!(
        mail.header("Subject").unwrap(),
        "Confirm your address for UdaConnect"
    );
    let token = mail.verify_token().expect("a verification link");
    assert!(mail.sign_in_token().is_none());
    // A sign-in link's page does not take it, nor does sign-in.
    let wrong = follow_link(&api, "/auth/confirm", &token).await;
    assert_eq!(wrong.status(), StatusCode::GONE);

    for _ in 0..2 {
        let page = api.get(&format!("/auth/verify-email?token={token}")).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert!(header(&page, "content-type").starts_with("text/html"));
        let html = page.text().await.unwrap();
        assert!(html.contains(r#"<form method="post" action="/auth/verify-email">"#));
        assert!(!html.contains("<script"));
    }
    let done = verify(&api, &token).await;
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done.text().await.unwrap().contains("Address confirmed"));
    assert_eq!(verify(&api, &token).await.status(), StatusCode::GONE);
    // The mail is the link's one copy: no log line holds it.
    for role in Role::ALL {
        assert!(
            !api.log_of(role).contains(&token),
            "the link in {role}'s log"
        );
    }
    assert_eq!(me(&api, &session).await["email"], new.to_uppercase());

    // The new address signs in; the old one has no account any more.
    let r = api
        .post_json("/api/auth/login", &json!({ "email": new }))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(nth_mail(&api, &new.to_uppercase(), 2)
        .await
        .sign_in_token()
        .is_some());

    // Another account asking for this address hears 202; its link answers 409.
    let other = address("copycat");
    let theirs = attendee_session(&api, &other).await;
    let body = json!({ "email": new });
    let r = as_browser(&api, &theirs, Method::POST, "/api/me/email", Some(&body)).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // The third mail to the address (the inbox reads addresses in any case).
    let link = nth_mail(&api, &new, 3).await.verify_token().unwrap();
    assert_eq!(verify(&api, &link).await.status(), StatusCode::CONFLICT);
    assert_eq!(me(&api, &theirs).await["email"], other.as_str());
}

pub async fn a_secondary_address_is_verified_then_removed(api: Api) {
    let primary = address("main");
    let second = address("second");
    let session = attendee_session(&api, &primary).await;
    let body = json!({ "email": second });
    let r = as_browser(&api, &session, Method::PUT, SECONDARY, Some(&body)).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(me(&api, &session).await["secondary_email"], Value::Null);
    let token = nth_mail(&api, &second, 1).await.verify_token().unwrap();
    assert_eq!(verify(&api, &token).await.status(), StatusCode::OK);
    let who = me(&api, &session).await;
    assert_eq!(who["secondary_email"], second.as_str());
    assert_eq!(who["email"], primary.as_str());
    // The same address again is no change.
    let r = as_browser(&api, &session, Method::PUT, SECONDARY, Some(&body)).await;
    assert_problem(r, 422, &["email"]).await;

    let gone = as_browser(&api, &session, Method::DELETE, SECONDARY, None).await;
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(&api, &session).await["secondary_email"], Value::Null);
    let again = as_browser(&api, &session, Method::DELETE, SECONDARY, None).await;
    assert_problem(again, 404, &[]).await;
}

pub async fn sessions_are_listed_and_one_ended_from_another(api: Api) {
    let email = address("twice");
    let laptop = attendee_session(&api, &email).await;
    api.post_json("/api/auth/login", &json!({ "email": email }))
        .await;
    let token = nth_mail(&api, &email, 2).await.sign_in_token().unwrap();
    let r = browser()
        .post(api.url("/auth/confirm"))
        .header("content-type", "application/x-www-form-urlencoded")
        // A control character (a tab: HTTP refuses the rest) is not kept.
        .header("user-agent", "Phone\tBrowser/1.0")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let phone = header(&r, "set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();

    let r = as_browser(&api, &laptop, Method::GET, "/api/me/sessions", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let listed: Vec<Value> = r.json().await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["current"], true);
    assert_eq!(listed[1]["current"], false);
    assert_eq!(listed[1]["user_agent"], "PhoneBrowser/1.0");
    assert!(listed[0]["last_used"].is_string(), "{listed:?}");
    let text = serde_json::to_string(&listed).unwrap();
    assert!(!text.contains(laptop.trim_start_matches("uc_session=")));
    assert!(!text.contains(phone.trim_start_matches("uc_session=")));

    let phone_id = listed[1]["id"].as_i64().unwrap();
    let path = format!("/api/me/sessions/{phone_id}");
    let r = as_browser(&api, &laptop, Method::DELETE, &path, None).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let ended = as_browser(&api, &phone, Method::GET, "/api/me", None).await;
    assert_problem(ended, 401, &[]).await;
    assert_problem(
        as_browser(&api, &laptop, Method::DELETE, &path, None).await,
        404,
        &[],
    )
    .await;
    // Another account's session is not the caller's to end.
    let stranger = attendee_session(&api, &address("stranger")).await;
    let theirs: Vec<Value> = as_browser(&api, &stranger, Method::GET, "/api/me/sessions", None)
        .await
        .json()
        .await
        .unwrap();
    let theirs = format!("/api/me/sessions/{}", theirs[0]["id"]);
    let r = as_browser(&api, &laptop, Method::DELETE, &theirs, None).await;
    assert_problem(r, 404, &[]).await;
    assert_eq!(
        as_browser(&api, &stranger, Method::GET, "/api/me", None)
            .await
            .status(),
        StatusCode::OK
    );
    for bad in ["abc", "1.5", "99999999999999999999"] {
        let r = as_browser(
            &api,
            &laptop,
            Method::DELETE,
            &format!("/api/me/sessions/{bad}"),
            None,
        )
        .await;
        assert_problem(r, 400, &["id"]).await;
    }
    // A write by cookie from another site is refused.
    let r = browser()
        .delete(api.url(&theirs))
        .header("cookie", &laptop)
        .header("origin", "https://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

pub async fn admins_list_accounts_and_change_roles(api: Api) {
    let email = address("promoted");
    let session = attendee_session(&api, &email).await;
    let account = me(&api, &session).await["account"].as_i64().unwrap();

    // The suite's client is an admin.
    let page = api.get("/api/accounts?limit=1").await;
    assert_eq!(page.status(), StatusCode::OK);
    let cursor: i64 = header(&page, "x-next-cursor").parse().unwrap();
    let first: Vec<Value> = page.json().await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["id"], cursor);
    let all = api.get_json("/api/accounts?limit=1000").await;
    let all = all.as_array().expect("a list of accounts");
    let row = all.iter().find(|a| a["id"] == account).expect("listed");
    assert_eq!(row["email"], email.as_str());
    assert_eq!(row["role"], "attendee");
    assert!(row["person_id"].is_i64());

    // An attendee may do neither.
    let r = as_browser(&api, &session, Method::GET, "/api/accounts", None).await;
    assert_problem(r, 403, &[]).await;
    let path = format!("/api/accounts/{account}/role");
    let body = json!({"role": "organizer"});
    let r = as_browser(&api, &session, Method::PUT, &path, Some(&body)).await;
    assert_problem(r, 403, &[]).await;
    // The attendee's own device token.
    let made = as_browser(
        &api,
        &session,
        Method::POST,
        "/api/me/tokens",
        Some(&json!({"name": "phone", "role": "device"})),
    )
    .await;
    assert_eq!(made.status(), StatusCode::CREATED);

    let r = api.put_json(&path, &body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let changed: Value = r.json().await.unwrap();
    assert_eq!(changed["role"], "organizer");
    // The session acts in the new role at once: the directory is the organizers'.
    let r = as_browser(&api, &session, Method::GET, "/api/persons?limit=1", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(me(&api, &session).await["role"], "organizer");

    for (body, status, fields) in [
        (json!({}), 422, &["role"][..]),
        (json!({"role": null}), 422, &["role"]),
        (json!({"role": 5}), 400, &["role"]),
        (json!({"role": "king"}), 422, &["role"]),
        (json!([1]), 400, &["body"]),
    ] {
        let r = api.put_json(&path, &body).await;
        assert_problem(r, status, fields).await;
    }
    let admin = json!({"role": "admin"});
    let r = api.put_json("/api/accounts/999999/role", &admin).await;
    assert_problem(r, 404, &[]).await;
    let r = api.put_json("/api/accounts/abc/role", &admin).await;
    assert_problem(r, 400, &["id"]).await;
    let r = api
        .client
        .put(api.url(&path))
        .header("content-type", "text/plain")
        .body("organizer")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    for (bad, field) in [
        ("/api/accounts?limit=0", "limit"),
        ("/api/accounts?limit=abc", "limit"),
        ("/api/accounts?cursor=x", "cursor"),
    ] {
        assert_problem(api.get(bad).await, 400, &[field]).await;
    }
}

pub async fn bad_address_requests_are_problems(api: Api) {
    let session = attendee_session(&api, &address("careful")).await;
    for path in ["/api/me/email", SECONDARY] {
        let method = if path == SECONDARY {
            Method::PUT
        } else {
            Method::POST
        };
        for (body, status, fields) in [
            (json!({}), 422, &["email"][..]),
            (json!({"email": null}), 422, &["email"]),
            (json!({"email": 5}), 400, &["email"]),
            (json!({"email": "nobody"}), 422, &["email"]),
            (json!({"email": "a b@example.org"}), 422, &["email"]),
            (json!("x"), 400, &["body"]),
        ] {
            let r = as_browser(&api, &session, method.clone(), path, Some(&body)).await;
            assert_problem(r, status, fields).await;
        }
    }
    assert_raw_problems(
        &api,
        "/api/me/email",
        &[("{\"email\": ", 400, &["body"]), ("", 400, &["body"])],
    )
    .await;
    // Without a caller: 401.
    let r = browser()
        .post(api.url("/api/me/email"))
        .json(&json!({"email": "x@example.org"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, &[]).await;
    // Five changes in 15 minutes, then 429 with Retry-After.
    for i in 0..5 {
        let body = json!({ "email": address(&format!("many{i}")) });
        let r = as_browser(&api, &session, Method::POST, "/api/me/email", Some(&body)).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let body = json!({ "email": address("one-too-many") });
    let r = as_browser(&api, &session, Method::POST, "/api/me/email", Some(&body)).await;
    let wait: u64 = header(&r, "retry-after").parse().unwrap();
    assert!((1..=900).contains(&wait), "Retry-After {wait}");
    assert_problem(r, 429, &[]).await;
    // Links that are not links: a page that says so.
    let gets = ["/auth/verify-email", "/auth/verify-email?token=uc_short"];
    assert_not_links(&api, "/auth/verify-email", &gets).await;
}

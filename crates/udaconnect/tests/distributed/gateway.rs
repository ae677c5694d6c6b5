//! The web role as the gateway with `--auth on`: a request's token is looked up there, once,
//! and the roles behind it believe only the assertion it signs with the stack's key. A role's
//! port reached directly, with a good token but no assertion, or with a forged, expired or
//! misdirected one, is refused with a problem; the same requests through web are answered.

use std::path::Path;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use udaconnect_core::auth::{
    Asserted, Assertion, GatewayKey, Principal, Role, TokenSecret, ASSERTION_LIFETIME_SECS,
};
use udaconnect_testkit::http::create_person;
use udaconnect_testkit::process::{printed_token, run_admin, Stack};

use crate::harness::{eventually, Broker, Db, BIN};

const HEADER: &str = "x-udaconnect-assertion";

/// `udaconnect admin create-token --role <role> --store <store>`'s token.
fn token(role: &str, store: &str) -> TokenSecret {
    let out = run_admin(
        Path::new(BIN),
        &["create-token", "--role", role, "--store", store],
    );
    TokenSecret::parse(&printed_token(&out)).expect("a token alone")
}

/// A client sending `token` on every request.
fn client_of(token: &TokenSecret) -> Client {
    let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.expose())).unwrap();
    bearer.set_sensitive(true);
    Client::builder()
        .default_headers(HeaderMap::from_iter([(AUTHORIZATION, bearer)]))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Every role with auth on, the roles looking persons up with an organizer's token.
async fn stack_with_auth(broker: &Broker, db: &Db) -> Stack {
    let service = token("organizer", &db.url);
    Stack::start_seeded_with_env(
        Path::new(BIN),
        &db.url,
        broker,
        &[
            ("UDACONNECT_AUTH", "on"),
            ("UDACONNECT_SERVICE_TOKEN", service.expose()),
        ],
        || async {},
    )
    .await
}

fn admin() -> Asserted {
    Asserted::Signed(Principal {
        account: 1,
        person: None,
        role: Role::Admin,
        scopes: Role::Admin.scopes(),
    })
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// GET `path` at `base` with `assertion` (if any) and the admin's `token`: the status, and the
/// problem's detail when it is refused.
async fn get(
    client: &Client,
    base: &str,
    path: &str,
    assertion: Option<String>,
) -> (StatusCode, String) {
    let mut request = client.get(format!("{base}{path}"));
    if let Some(a) = assertion {
        request = request.header(HEADER, a);
    }
    let r = request.send().await.unwrap();
    let status = r.status();
    if status.is_success() {
        return (status, String::new());
    }
    let kind = r.headers()[reqwest::header::CONTENT_TYPE].clone();
    assert_eq!(kind, "application/problem+json", "{path}: {status}");
    let body: Value = r.json().await.unwrap();
    (
        status,
        body["detail"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn roles_answer_through_the_gateway_and_refuse_what_it_did_not_sign() {
    let broker = Broker::start().await;
    let db = Db::create().await;
    let stack = stack_with_auth(&broker, &db).await;
    let admin_token = token("admin", &db.url);
    let client = client_of(&admin_token);
    let web = stack.web.base();

    // Through web: each role answers (location-api and connection-api asking person-api
    // about the person with assertions of their own).
    let who = create_person(&client, &web, "Gate").await;
    let posted = client
        .post(format!("{web}/api/locations"))
        .json(&json!({"person_id": who, "latitude": 1, "longitude": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::ACCEPTED);
    let id = posted.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    eventually("stored", Duration::from_secs(30), || async {
        let (status, _) = get(&client, &web, &format!("/api/locations/{id}"), None).await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
    // The ping is timed now: a window of the days around today holds it, whatever the year.
    let today = chrono::Utc::now().date_naive();
    let window = format!(
        "start_date={}&end_date={}&distance=5",
        today - chrono::Days::new(1),
        today + chrono::Days::new(2)
    );
    let connection = format!("/api/persons/{who}/connection?{window}");
    for path in [&format!("/api/persons/{who}"), &connection] {
        assert_eq!(
            get(&client, &web, path, None).await.0,
            StatusCode::OK,
            "{path}"
        );
    }

    // Directly, with the same good token: refused, for want of the gateway's word.
    let roles = [
        (
            "person-api",
            stack.person_api.base(),
            format!("/api/persons/{who}"),
        ),
        (
            "location-api",
            stack.location_api.base(),
            format!("/api/locations/{id}"),
        ),
        (
            "connection-api",
            stack.connection_api.base(),
            connection.clone(),
        ),
    ];
    for (role, base, path) in &roles {
        let (status, detail) = get(&client, base, path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{role} {path}");
        assert!(detail.contains("gateway"), "{detail}");
    }

    let key = GatewayKey::new(stack.gateway_key.as_bytes()).unwrap();
    let other_key = GatewayKey::new(&[7; 32]).unwrap();
    for (role, base, path) in &roles {
        // The gateway's own word for this very request: believed (what the refusals below
        // differ from it by is what they are refused for).
        let good = Assertion::sign(&key, &admin(), "GET", path, now());
        assert_eq!(get(&client, base, path, Some(good)).await.0, StatusCode::OK);
        let refused = [
            (
                "another key",
                Assertion::sign(&other_key, &admin(), "GET", path, now()),
            ),
            (
                "expired",
                Assertion::sign(
                    &key,
                    &admin(),
                    "GET",
                    path,
                    now() - ASSERTION_LIFETIME_SECS - 5,
                ),
            ),
            (
                "another path",
                Assertion::sign(&key, &admin(), "GET", "/api/persons", now()),
            ),
            (
                "another method",
                Assertion::sign(&key, &admin(), "DELETE", path, now()),
            ),
            ("not an assertion", "v1.e30.AAAA".to_string()),
        ];
        for (what, assertion) in refused {
            let (status, detail) = get(&client, base, path, Some(assertion)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} at {role}");
            if what == "expired" {
                assert!(detail.contains("expired"), "{detail}");
            }
        }
    }

    // A client's own assertion is dropped at web: signed with the real key for an admin, it
    // makes an anonymous request no one.
    let forged = Assertion::sign(&key, &admin(), "GET", "/api/persons", now());
    let (status, _) = get(&Client::new(), &web, "/api/persons", Some(forged)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // What the roles serve beside the API stays theirs: health, and /metrics for a scraper
    // with a token of its own.
    for (_, base, _) in &roles {
        assert_eq!(get(&client, base, "/health", None).await.0, StatusCode::OK);
        assert_eq!(get(&client, base, "/metrics", None).await.0, StatusCode::OK);
    }
}

/// The account id in `admin create-token`'s report ("... for account 7 ...").
fn account_of(out: &std::process::Output) -> i64 {
    let text = String::from_utf8_lossy(&out.stdout);
    let after = text
        .split(" for account ")
        .nth(1)
        .expect("the account named");
    after
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|id| id.parse().ok())
        .expect("an account id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admins_role_change_ends_the_accounts_tokens_at_the_gateway_at_once() {
    let broker = Broker::start().await;
    let db = Db::create().await;
    let stack = stack_with_auth(&broker, &db).await;
    let admin = client_of(&token("admin", &db.url));
    let web = stack.web.base();

    let who = create_person(&admin, &web, "Staff").await;
    let out = run_admin(
        Path::new(BIN),
        &[
            "create-token",
            "--role",
            "organizer",
            "--person",
            &who.to_string(),
            "--store",
            &db.url,
        ],
    );
    let organizer = client_of(&TokenSecret::parse(&printed_token(&out)).unwrap());
    let account = account_of(&out);
    // The gateway now remembers the organizer's credential for a few seconds.
    assert_eq!(
        get(&organizer, &web, "/api/persons", None).await.0,
        StatusCode::OK
    );

    let changed = admin
        .put(format!("{web}/api/accounts/{account}/role"))
        .json(&json!({"role": "attendee"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert!(
        changed.headers().get("x-udaconnect-forgotten").is_none(),
        "the gateway keeps its roles' bookkeeping to itself"
    );

    // The organizer token went with the role: refused at once, not when the cache expires.
    let (status, detail) = get(&organizer, &web, "/api/persons", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{detail}");
}

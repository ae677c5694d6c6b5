//! Access control as clients meet it, against `serve --auth on` with tokens made by
//! `udaconnect admin create-token` on its data directory while it runs.
//!
//! The authorization matrix is generated from the served OpenAPI document: every operation,
//! asked by nobody, attendee A, attendee B, A's device, an organizer and an admin, must be
//! let through or refused (401 without a caller, 403 with one) as the core policy says for
//! that operation's action; an operation the policy table of the document does not know
//! fails the test. Then the cells that matter most are asserted by name, over HTTP, batch and
//! gRPC; revocation, CSRF and the logs are checked. `--auth off`: `tests/auth_off.rs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use udaconnect_core::auth::{authorize, Denied, Principal, Role, TokenSecret};
use udaconnect_server::http::openapi::action_of;
use udaconnect_server::ingest::grpc::proto;
use udaconnect_server::wiring::backends::{open_account_stores, StoreUrl};
use udaconnect_testkit::http::{json_answer, sent, text_answer};
use udaconnect_testkit::process::{printed_token, run_admin, RoleProc};

#[path = "authz/calls.rs"]
mod calls;
#[cfg(all(feature = "kafka", feature = "postgres"))]
#[path = "shared/demo.rs"]
mod demo;

use calls::call;

const BIN: &str = env!("CARGO_BIN_EXE_udaconnect");
const PATIENCE: Duration = Duration::from_secs(30);
/// Demo persons: attendee A and attendee B.
const A: i64 = 5;
const B: i64 = 6;
/// A sign-in link's token of the right form that was never issued.
const NEVER_SENT: &str = "uc_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// `udaconnect admin create-token <args>`: the token on its last line.
fn create_token(args: &[&str]) -> TokenSecret {
    let out = run_admin(Path::new(BIN), &[&["create-token"][..], args].concat());
    TokenSecret::parse(&printed_token(&out)).expect("a token alone")
}

/// Who asks: a name for messages, the credential, and the principal the policy decides for.
struct Asker {
    name: &'static str,
    token: Option<TokenSecret>,
    principal: Option<Principal>,
}

fn principal(role: Role, person: Option<i64>) -> Option<Principal> {
    Some(Principal {
        // The matrix decides on the caller's own account only; its number does not matter.
        account: 1,
        person,
        role,
        scopes: role.scopes(),
    })
}

/// A running product with auth on, as clients reach it, and one asker of each kind.
struct Served {
    /// The one HTTP entry point (serve, or web in front of the roles).
    base: String,
    /// `http://host:port` of the gRPC services.
    grpc: String,
    /// Every process's log file.
    logs: Vec<PathBuf>,
    /// The account store, as `admin` is pointed at it.
    store: StoreUrl,
    client: Client,
    askers: Vec<Asker>,
    /// Whether a token revoked through the API stops working at once at every route (one
    /// process), or within the seconds another process keeps a credential.
    revokes_at_once: bool,
    /// The processes, data directory, broker or database, kept while the test runs.
    _keep: Box<dyn std::any::Any + Send + Sync>,
}

impl Served {
    /// `serve --auth on --demo` on a data directory of its own.
    async fn serve() -> Served {
        let data = tempfile::tempdir().unwrap();
        let d = data.path().to_str().unwrap().to_string();
        let server = RoleProc::serve_ready(
            Path::new(BIN),
            data.path(),
            &[
                "--auth",
                "on",
                "--demo",
                "--demo-attendees",
                "0",
                "--grpc-listen",
                "127.0.0.1:0",
            ],
            PATIENCE,
        )
        .await;
        Served {
            base: server.base(),
            grpc: server.grpc(),
            logs: vec![server.log.clone()],
            askers: askers(&["--data-dir", &d]),
            revokes_at_once: true,
            store: StoreUrl::Embedded(data.path().to_path_buf()),
            client: Client::new(),
            _keep: Box::new((server, data)),
        }
    }

    /// Every role its own process with auth on, on Kafka and PostgreSQL, reached through web;
    /// the roles look persons up at person-api with an organizer's service token.
    #[cfg(all(feature = "kafka", feature = "postgres"))]
    async fn distributed() -> Served {
        use udaconnect_testkit::kafka::Broker;
        use udaconnect_testkit::postgres::TestDb;
        use udaconnect_testkit::process::Stack;

        let broker = Broker::start().await;
        let db = TestDb::new().await;
        let seed_dir = tempfile::tempdir().unwrap();
        let service = create_token(&["--role", "organizer", "--name", "roles", "--store", &db.url]);
        let stack = Stack::start_seeded_with_env(
            Path::new(BIN),
            &db.url,
            &broker,
            &[
                ("UDACONNECT_AUTH", "on"),
                ("UDACONNECT_SERVICE_TOKEN", service.expose()),
            ],
            || demo::load(&db.url, &broker, seed_dir.path()),
        )
        .await;
        Served {
            base: stack.web.base(),
            grpc: stack.location_api.grpc(),
            logs: stack.roles().iter().map(|r| r.log.clone()).collect(),
            askers: askers(&["--store", &db.url]),
            revokes_at_once: false,
            store: db.url.parse().unwrap(),
            client: Client::new(),
            _keep: Box::new((stack, broker, db, seed_dir)),
        }
    }

    fn asker(&self, name: &str) -> &Asker {
        self.askers.iter().find(|a| a.name == name).unwrap()
    }

    fn request(&self, asker: &Asker, method: Method, path: &str) -> RequestBuilder {
        let r = self.client.request(method, format!("{}{path}", self.base));
        match &asker.token {
            Some(t) => r.bearer_auth(t.expose()),
            None => r,
        }
    }

    /// An id of a stored location of A's, posted by the admin.
    async fn location_of_a(&self) -> i64 {
        let admin = self.asker("admin");
        let posted: Value = json_answer(
            self.request(admin, Method::POST, "/api/locations")
                .json(&json!({"person_id": A, "latitude": 1, "longitude": 1})),
        )
        .await;
        let id = posted["id"].as_i64().expect("an id");
        for _ in 0..200 {
            let r = self
                .request(admin, Method::GET, &format!("/api/locations/{id}"))
                .send()
                .await
                .unwrap();
            if r.status() == StatusCode::OK {
                return id;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("location {id} was not stored");
    }
}

/// One asker of each kind, their tokens made by `admin create-token <store>`.
fn askers(store: &[&str]) -> Vec<Asker> {
    let anonymous = Asker {
        name: "anonymous",
        token: None,
        principal: None,
    };
    let signed = [
        ("attendee A", Role::Attendee, Some(A)),
        ("attendee B", Role::Attendee, Some(B)),
        ("A's device", Role::Device, Some(A)),
        ("organizer", Role::Organizer, None),
        ("admin", Role::Admin, None),
    ]
    .map(|(name, role, person)| {
        let role_name = role.to_string();
        let person_text = person.map(|p| p.to_string());
        let mut args = vec!["--role", &role_name];
        if let Some(p) = &person_text {
            args.extend(["--person", p]);
        }
        args.extend_from_slice(store);
        Asker {
            name,
            token: Some(create_token(&args)),
            principal: principal(role, person),
        }
    });
    std::iter::once(anonymous).chain(signed).collect()
}

async fn problem(r: Response) -> Value {
    let kind = r.headers()[reqwest::header::CONTENT_TYPE].clone();
    assert_eq!(kind, "application/problem+json");
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_every_asker_as_the_policy_says() {
    matrix(Served::serve().await).await;
}

#[cfg(all(feature = "kafka", feature = "postgres"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_operation_answers_every_asker_as_the_policy_says_distributed() {
    matrix(Served::distributed().await).await;
}

/// The matrix and the named cells, revocation, CSRF and the logs against one product.
async fn matrix(served: Served) {
    let location = served.location_of_a().await;
    let doc: Value = json_answer(served.client.get(format!("{}/openapi.json", served.base))).await;
    let mut cells = 0;
    let mut wrong = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let action =
                action_of(method, path).unwrap_or_else(|| panic!("{method} {path} has no rule"));
            let c = call(method, path, location);
            for asker in &served.askers {
                let expected = authorize(asker.principal.as_ref(), action, (c.resource)(asker));
                let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let mut r = served.request(asker, m, &c.path);
                if let Some(body) = &c.body {
                    r = r.json(body);
                }
                let answer = r.send().await.unwrap();
                let status = answer.status();
                let ok = match expected {
                    Ok(()) => {
                        !matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
                            && !status.is_server_error()
                    }
                    Err(Denied::SignInRequired) => {
                        status == StatusCode::UNAUTHORIZED
                            && answer.headers()[reqwest::header::WWW_AUTHENTICATE]
                                .to_str()
                                .unwrap()
                                .starts_with("Bearer")
                    }
                    Err(Denied::Forbidden) => status == StatusCode::FORBIDDEN,
                };
                if status.is_client_error() && c.path.starts_with("/auth/") {
                    // The sign-in link's page is read by people: its refusals are pages.
                    let kind = answer.headers()[reqwest::header::CONTENT_TYPE].clone();
                    assert!(kind.to_str().unwrap().starts_with("text/html"), "{kind:?}");
                } else if status.is_client_error() {
                    problem(answer).await;
                }
                if !ok {
                    wrong.push(format!(
                        "{method} {} by {}: {status}, expected {expected:?}",
                        c.path, asker.name
                    ));
                }
                cells += 1;
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {cells} cells wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(cells >= 24 * 6, "{cells} cells");

    // A's own pings are A's to read, under /api/me; B's list does not hold them.
    let mine = |who: &'static str| {
        let r = served.request(
            served.asker(who),
            Method::GET,
            "/api/me/locations?start=2000-01-01&end=2100-12-31",
        );
        async move { r.send().await.unwrap().json::<Vec<Value>>().await.unwrap() }
    };
    let ids = |pings: Vec<Value>| {
        pings
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert!(ids(mine("attendee A").await).contains(&location));
    assert!(!ids(mine("attendee B").await).contains(&location));

    // The cells that matter most, named: B asks for A's meetings, A's device posts for B.
    let b = served.asker("attendee B");
    for what in [
        "connection?start_date=2020-01-01&end_date=2020-01-02",
        "contacts",
        "summary",
    ] {
        let r = served
            .request(b, Method::GET, &format!("/api/persons/{A}/{what}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "B asks for A's {what}");
    }
    let device = served.asker("A's device");
    let ping = |person| json!({"person_id": person, "latitude": 3, "longitude": 3});
    for (path, body) in [
        ("/api/locations", ping(B)),
        ("/api/locations/batch", json!([ping(A), ping(B)])),
    ] {
        let r = served
            .request(device, Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        let p = problem(r).await;
        assert!(p["detail"].as_str().unwrap().contains("person_id"), "{p}");
    }
    let own = served
        .request(device, Method::POST, "/api/locations")
        .json(&ping(A))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::ACCEPTED);

    grpc_refuses_a_device_posting_for_another(&served).await;
    unknown_tokens_are_401(&served).await;
    tokens_made_and_revoked_by_their_holder(&served).await;
    cookie_writes_need_this_sites_origin(&served).await;
    accounts_deleted_by_their_holder(&served).await;
    no_secret_is_in_the_log(&served);
}

/// Over gRPC, the device's pings for B are PERMISSION_DENIED on every method, anonymous
/// ones UNAUTHENTICATED, its own taken.
async fn grpc_refuses_a_device_posting_for_another(served: &Served) {
    use proto::original::location_service_client::LocationServiceClient;
    use proto::original::LocationMessage;
    use proto::v1::location_ingest_client::LocationIngestClient;
    use proto::v1::{Ping, PingBatch};
    use tonic::Code;

    let channel = tonic::transport::Channel::from_shared(served.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let device = served.asker("A's device").token.clone().unwrap();
    fn signed<T>(token: &TokenSecret, m: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(m);
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", token.expose()).parse().unwrap(),
        );
        r
    }
    let v1 = |person| Ping {
        person_id: person,
        latitude: 4.0,
        longitude: 4.0,
        creation_time: None,
    };
    let mut legacy = LocationServiceClient::new(channel.clone());
    let mut ingest = LocationIngestClient::new(channel);
    let legacy_ping = |person| LocationMessage {
        person_id: person as i32,
        latitude: 4.0,
        longitude: 4.0,
    };
    let e = legacy
        .create(signed(&device, legacy_ping(B)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = legacy
        .create(tonic::Request::new(legacy_ping(A)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    legacy
        .create(signed(&device, legacy_ping(A)))
        .await
        .unwrap();
    let e = ingest.create(signed(&device, v1(B))).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    ingest.create(signed(&device, v1(A))).await.unwrap();
    let batch = PingBatch {
        sequence: 1,
        pings: vec![v1(A), v1(B)],
    };
    let mut answers = ingest
        .ingest(signed(&device, futures_util::stream::iter([batch])))
        .await
        .unwrap()
        .into_inner();
    let e = answers.message().await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
}

async fn unknown_tokens_are_401(served: &Served) {
    for value in [
        "Bearer uc_notatoken",
        &format!("Bearer {}", TokenSecret::generate().unwrap().expose()),
    ] {
        let r = served
            .client
            .get(format!("{}/api/persons", served.base))
            .header("authorization", value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers().contains_key("www-authenticate"));
        problem(r).await;
    }
    // Open routes stay open, credential or none.
    for path in ["/health", "/ready", "/openapi.json", "/"] {
        let r = served
            .client
            .get(format!("{}{path}", served.base))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }
}

/// A creates a device token for their phone, which posts A's pings, is listed without its
/// secret, and stops working the moment A revokes it.
async fn tokens_made_and_revoked_by_their_holder(served: &Served) {
    let a = served.asker("attendee A");
    let made: Value = json_answer(
        served
            .request(a, Method::POST, "/api/me/tokens")
            .json(&json!({"name": "phone"})),
    )
    .await;
    assert_eq!(made["role"], "device", "{made}");
    assert_eq!(made["person_id"], A, "{made}");
    let secret = made["token"].as_str().unwrap().to_string();
    let phone = Asker {
        name: "phone",
        token: TokenSecret::parse(&secret),
        principal: None,
    };
    let ping = json!({"person_id": A, "latitude": 5, "longitude": 5});
    let posted = served
        .request(&phone, Method::POST, "/api/locations")
        .json(&ping)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::ACCEPTED);
    let listed = text_answer(served.request(a, Method::GET, "/api/me/tokens")).await;
    assert!(
        listed.contains("\"phone\"") && !listed.contains(&secret[3..]),
        "{listed}"
    );
    // B cannot revoke A's token: it is no token of B's.
    let id = made["id"].as_i64().unwrap();
    let by_b = served
        .request(
            served.asker("attendee B"),
            Method::DELETE,
            &format!("/api/me/tokens/{id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(by_b.status(), StatusCode::NOT_FOUND);
    let revoked = served
        .request(a, Method::DELETE, &format!("/api/me/tokens/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    // At once in the process that revoked it (serve); in another (location-api apart, which
    // revocation through person-api does not reach) once its five-second cache lapses.
    until_refused(served, "a revoked token still posts", || {
        served
            .request(&phone, Method::POST, "/api/locations")
            .json(&ping)
    })
    .await;
    // An attendee may not make a token above their role.
    let above = served
        .request(a, Method::POST, "/api/me/tokens")
        .json(&json!({"name": "x", "role": "organizer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(above.status(), StatusCode::FORBIDDEN);
}

/// A write signed in by the session cookie must come from this site's page.
async fn cookie_writes_need_this_sites_origin(served: &Served) {
    let accounts = open_account_stores(&served.store).await.unwrap().accounts;
    let account = accounts.account_by_person(A).await.unwrap().unwrap();
    let now = chrono::Utc::now();
    let session = accounts
        .create_session(account.id, now + chrono::TimeDelta::hours(1), now)
        .await
        .unwrap();
    let cookie = format!("uc_session={}", session.expose());
    let base = served.base.clone();
    let ping = json!({"person_id": A, "latitude": 6, "longitude": 6});
    let read = served
        .client
        .get(format!("{base}/api/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let me: Value = read.json().await.unwrap();
    assert_eq!(me["person"]["id"], A, "{me}");
    // From another site, or from nowhere said, refused; from this site's page, taken.
    for (origin, expected) in [
        (Some("https://evil.example"), StatusCode::FORBIDDEN),
        (None, StatusCode::FORBIDDEN),
        (Some(base.as_str()), StatusCode::ACCEPTED),
    ] {
        let mut post = served
            .client
            .post(format!("{base}/api/locations"))
            .header("cookie", &cookie);
        if let Some(origin) = origin {
            post = post.header("origin", origin);
        }
        let answer = post.json(&ping).send().await.unwrap();
        assert_eq!(answer.status(), expected, "origin {origin:?}");
    }
}

/// `DELETE /api/me` with a `confirm` other than `true` deletes nothing; bare, the account is
/// gone from the store and its tokens sign no one in.
async fn accounts_deleted_by_their_holder(served: &Served) {
    use udaconnect_core::auth::{NewAccount, NewToken, Scopes};
    let accounts = open_account_stores(&served.store).await.unwrap().accounts;
    let now = chrono::Utc::now();
    let new = NewAccount {
        person: Some(4242),
        email: None,
        email_verified: false,
        secondary_email: None,
        role: Role::Attendee,
    };
    let account = accounts.create_account(new, now).await.unwrap();
    let token = NewToken {
        account: account.id,
        name: "leaving".into(),
        role: Role::Attendee,
        scopes: Scopes::ALL,
        person: Some(4242),
        expires: None,
    };
    let leaving = Asker {
        name: "leaving",
        token: Some(accounts.create_token(token, now).await.unwrap().secret),
        principal: None,
    };
    for unconfirmed in [
        "/api/me?confirm=false",
        "/api/me?confirm=1",
        "/api/me?confirm=",
    ] {
        let r = served
            .request(&leaving, Method::DELETE, unconfirmed)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{unconfirmed}"
        );
        let p = problem(r).await;
        assert!(p["detail"].as_str().unwrap().contains("confirm"), "{p}");
    }
    assert!(accounts.account(account.id).await.unwrap().is_some());
    let deleted = served
        .request(&leaving, Method::DELETE, "/api/me")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(accounts.account(account.id).await.unwrap(), None);
    assert!(accounts.tokens(account.id).await.unwrap().is_empty());
    until_refused(served, "a deleted account's token still signs in", || {
        served.request(&leaving, Method::GET, "/api/me")
    })
    .await;
}

/// Sends `request` until it is refused as unauthenticated: at once in the process that
/// ended the credential (serve); in another (a role apart, which the end does not reach)
/// once its five-second credential cache lapses. `still` says what a later answer means.
async fn until_refused(served: &Served, still: &str, request: impl Fn() -> RequestBuilder) {
    let started = std::time::Instant::now();
    loop {
        let after = request().send().await.unwrap();
        if after.status() == StatusCode::UNAUTHORIZED {
            return;
        }
        assert!(
            !served.revokes_at_once && started.elapsed() < Duration::from_secs(7),
            "{still}: {}",
            after.status()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// No token's text is in any line the server logged.
fn no_secret_is_in_the_log(served: &Served) {
    let log: String = served
        .logs
        .iter()
        .map(|l| std::fs::read_to_string(l).unwrap())
        .collect();
    assert!(log.lines().count() > 10, "the log is there");
    for asker in &served.askers {
        if let Some(t) = &asker.token {
            assert!(
                !log.contains(&t.expose()[3..]),
                "{}'s token is in the log",
                asker.name
            );
        }
    }
}

/// `--auth on` is the default of `serve` and every role; `/metrics` needs a staff token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_is_on_by_default_and_metrics_need_staff() {
    for command in [
        "serve",
        "person-api",
        "location-api",
        "connection-api",
        "location-consumer",
        "mailer",
        "web",
    ] {
        let help = udaconnect_testkit::process::assert_help_names(
            Path::new(BIN),
            &[command],
            &["--auth", "--metrics-listen"],
        );
        let auth = help.split("--auth").nth(1).unwrap_or_default();
        let auth = &auth[..auth.find("--").unwrap_or(auth.len())];
        assert!(auth.contains("[default: on]"), "{command}: {auth}");
    }
    let served = Served::serve().await;
    let base = served.base.clone();
    let anonymous = sent(served.client.get(format!("{base}/api/persons"))).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    for (who, status) in [
        ("anonymous", StatusCode::UNAUTHORIZED),
        ("attendee A", StatusCode::FORBIDDEN),
        ("organizer", StatusCode::OK),
        ("admin", StatusCode::OK),
    ] {
        let r = served
            .request(served.asker(who), Method::GET, "/metrics")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{who}");
    }
}

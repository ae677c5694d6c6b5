//! What every request meets before a handler, against a real server: the Host it names, the
//! type of a JSON write, the size of a chunked body, the ingest rate of one client, the
//! security headers, and pings timed too far ahead. `serve` and a role process apart share
//! the one layer stack.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use udaconnect_server::ingest::grpc::proto;
use udaconnect_server::roles::Role;
use udaconnect_server::wiring::context::Upstreams;
use udaconnect_server::{Application, HttpSettings, RoleSettings};

use crate::app::{spawn_app, spawn_app_with};

/// Sends `head` and then `body` (written while the answer is read, so an early answer is not
/// lost to a reset), and returns the answer's bytes as text.
pub async fn raw(addr: SocketAddr, head: String, body: Vec<Vec<u8>>) -> String {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        if write.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for part in body {
            if write.write_all(&part).await.is_err() {
                return;
            }
        }
        // Kept open: a client's half-close ends an HTTP/1 request early.
        std::future::pending::<()>().await;
    });
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let read_all = async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read_all)
        .await
        .expect("an answer within 20 s");
    writer.abort();
    String::from_utf8_lossy(&out).into_owned()
}

/// The answer to `GET path` naming `host`, as text.
async fn get_naming(addr: SocketAddr, path: &str, host: &str) -> String {
    let head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    raw(addr, head, Vec::new()).await
}

fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

fn problem_of(answer: &str) -> Value {
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{head}"
    );
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
}

async fn person_count(app: &crate::app::TestApp) -> usize {
    let r = app.get("/api/persons?limit=1000").await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Vec<Value>>().await.unwrap().len()
}

#[tokio::test]
async fn a_text_plain_post_from_another_origin_writes_nothing() {
    let app = spawn_app(true).await;
    let before = person_count(&app).await;
    let person = r#"{"first_name": "Eve", "last_name": "Mallory", "company_name": "Evil"}"#;
    // What a page on any origin may send without a preflight: text/plain, a form, or a Blob
    // with no type at all.
    for content_type in [
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        for path in ["/api/persons", "/api/locations", "/api/locations/batch"] {
            let mut request = app
                .client
                .post(app.url(path))
                .header("origin", "http://evil.example")
                .body(person);
            if let Some(t) = content_type {
                request = request.header("content-type", t);
            }
            let r = request.send().await.unwrap();
            assert_eq!(
                r.status(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{path} {content_type:?}"
            );
            assert_eq!(
                r.headers()["accept-post"],
                "application/json, application/x-ndjson"
            );
            assert_eq!(r.headers()["content-type"], "application/problem+json");
            let p: Value = r.json().await.unwrap();
            assert_eq!(p["type"], "urn:udaconnect:problem:unsupported-media-type");
            assert_eq!(p["status"], 415);
        }
    }
    assert_eq!(person_count(&app).await, before, "nothing was created");
    // Said as JSON, the same body is taken.
    let r = app
        .client
        .post(app.url("/api/persons"))
        .header("content-type", "application/json; charset=utf-8")
        .body(person)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(person_count(&app).await, before + 1);
}

#[tokio::test]
async fn a_foreign_host_is_refused() {
    let app = spawn_app(true).await;
    let addr = app.socket();
    for host in [
        "rebind.evil.example".to_string(),
        format!("rebind.evil.example:{}", addr.port()),
        "localhost.evil.example".to_string(),
    ] {
        let answer = get_naming(addr, "/api/persons", &host).await;
        assert_eq!(status_of(&answer), 421, "{host}: {answer}");
        let p = problem_of(&answer);
        assert_eq!(p["type"], "urn:udaconnect:problem:misdirected");
        assert!(
            !answer.contains("\"first_name\""),
            "no data for a foreign host"
        );
    }
    for host in [
        format!("localhost:{}", addr.port()),
        format!("127.0.0.1:{}", addr.port()),
        "LOCALHOST".to_string(),
    ] {
        let answer = get_naming(addr, "/api/persons", &host).await;
        assert_eq!(status_of(&answer), 200, "{host}: {answer}");
    }
    // Named hosts are added to the defaults.
    let named = spawn_app_with(false, |e| {
        e.allowed_hosts = vec!["connect.example.org".into()]
    })
    .await;
    let addr = named.socket();
    let ok = get_naming(addr, "/health", "connect.example.org").await;
    assert_eq!(status_of(&ok), 200, "{ok}");
    let refused = get_naming(addr, "/health", "other.example.org").await;
    assert_eq!(status_of(&refused), 421, "{refused}");
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = spawn_app(true).await;
    for path in [
        "/",
        "/docs",
        "/docs.js",
        "/assets/app.js",
        "/api/persons",
        "/health",
        "/metrics",
        "/openapi.json",
        "/no/such/path",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
        let html = r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html");
        assert_eq!(html, path == "/" || path == "/docs", "{path}");
        if html {
            let policy = r.headers()["content-security-policy"].to_str().unwrap();
            assert!(policy.contains("script-src 'self'"), "{policy}");
            assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
            assert!(!policy.contains("unsafe-inline"), "{policy}");
            assert_eq!(r.headers()["referrer-policy"], "no-referrer");
            // No inline script or style left for the policy to refuse.
            let page = r.text().await.unwrap();
            assert!(!page.contains("<script>"), "{path}");
            assert!(!page.contains("<style"), "{path}");
            assert!(!page.contains("style=\""), "{path}");
        }
    }
    let refused = app
        .client
        .post(app.url("/api/persons"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(refused.headers()["x-content-type-options"], "nosniff");
}

/// A body sent in chunks that add up past the limit, never saying its length.
fn chunked_post(path: &str) -> (String, Vec<Vec<u8>>) {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let chunk = 1 << 20;
    let mut body = Vec::new();
    for _ in 0..17 {
        let mut part = format!("{chunk:x}\r\n").into_bytes();
        part.extend(std::iter::repeat_n(b' ', chunk));
        part.extend_from_slice(b"\r\n");
        body.push(part);
    }
    body.push(b"0\r\n\r\n".to_vec());
    (head, body)
}

#[tokio::test]
async fn an_oversized_chunked_body_is_413() {
    let app = spawn_app(true).await;
    for path in ["/api/locations", "/api/persons", "/api/locations/batch"] {
        let (head, body) = chunked_post(path);
        let answer = raw(app.socket(), head, body).await;
        assert_eq!(status_of(&answer), 413, "{path}: {answer:.300}");
        let p = problem_of(&answer);
        assert_eq!(p["status"], 413);
        assert!(p["detail"].as_str().unwrap().contains("larger than"), "{p}");
    }
}

fn at(offset: TimeDelta) -> String {
    (Utc::now() + offset).to_rfc3339()
}

/// A single ping and the gRPC services meet the same rule in the API suite
/// (`edge::pings_too_far_ahead_are_refused`); here, a batch, the words, and the setting.
#[tokio::test]
async fn pings_timed_beyond_the_skew_are_refused_in_batches_and_by_setting() {
    let app = spawn_app(true).await;
    let ping =
        |t: String| json!({"person_id": 5, "latitude": 1, "longitude": 2, "creation_time": t});
    let batch = json!([
        ping(at(TimeDelta::hours(-1))),
        ping(at(TimeDelta::days(30)))
    ]);
    let r = app.post_json("/api/locations/batch", &batch).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["errors"][0]["field"], "[1].creation_time", "{p}");
    assert!(p["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("ahead of the server's clock"));

    // The skew is a setting.
    let strict = spawn_app_with(true, |e| e.future_skew = TimeDelta::minutes(1)).await;
    let r = strict
        .post_json("/api/locations", &ping(at(TimeDelta::minutes(5))))
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = strict
        .post_json("/api/locations", &ping(at(TimeDelta::seconds(-5))))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn one_client_beyond_its_ingest_rate_gets_429() {
    let app = spawn_app_with(true, |e| e.ingest_rate = 5).await;
    let ping = json!({"person_id": 5, "latitude": 1, "longitude": 2});
    let mut accepted = 0;
    let mut limited = None;
    let started = std::time::Instant::now();
    for _ in 0..12 {
        let r = app.post_json("/api/locations", &ping).await;
        match r.status() {
            StatusCode::ACCEPTED => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => limited = Some(r),
            s => panic!("unexpected {s}"),
        }
    }
    // Five saved, and one more for each fifth of a second the requests took.
    let refilled = (started.elapsed().as_secs_f64() * 5.0).ceil() as usize;
    assert!(
        (5..=5 + refilled).contains(&accepted),
        "{accepted} accepted"
    );
    let r = limited.expect("some refused");
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["type"], "urn:udaconnect:problem:rate-limited");
    // Reads are not ingest.
    for _ in 0..20 {
        assert_eq!(app.get("/api/persons/5").await.status(), StatusCode::OK);
    }
    // gRPC calls from the same address draw on the same allowance.
    let mut client =
        proto::original::location_service_client::LocationServiceClient::connect(app.grpc.clone())
            .await
            .unwrap();
    let mut refused = None;
    for _ in 0..20 {
        let sent = client
            .create(proto::original::LocationMessage {
                person_id: 5,
                latitude: 1.0,
                longitude: 2.0,
            })
            .await;
        if let Err(status) = sent {
            refused = Some(status);
            break;
        }
    }
    let status = refused.expect("gRPC calls are limited too");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert_eq!(status.metadata().get("retry-after").unwrap(), "1");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("udaconnect_requests_refused_total{reason=\"rate\"}"),
        "{metrics}"
    );
    // A second later the allowance is back.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = app.post_json("/api/locations", &ping).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_role_apart_has_the_same_checks() {
    let dir = tempfile::tempdir().unwrap();
    let app = Application::build_role(RoleSettings {
        role: Role::PersonApi,
        http: HttpSettings::open("127.0.0.1:0".parse().unwrap()),
        grpc_listen: None,
        store: dir.path().display().to_string().parse().unwrap(),
        log: dir.path().display().to_string().parse().unwrap(),
        upstreams: Upstreams::default(),
        engine: Default::default(),
        mail: Default::default(),
        service_token: None,
        gateway_key: None,
    })
    .await
    .unwrap();
    let addr = app.local_addr();
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    udaconnect_testkit::http::wait_ready(&client, &base, Duration::from_secs(10)).await;
    let r = client
        .post(format!("{base}/api/persons"))
        .header("content-type", "text/plain")
        .body(r#"{"first_name": "A", "last_name": "B", "company_name": "C"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let answer = get_naming(addr, "/api/persons", "rebind.evil.example").await;
    assert_eq!(status_of(&answer), 421, "{answer}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_contract_names_the_edge_statuses() {
    let app = spawn_app(false).await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    for (path, statuses) in [
        ("/api/locations", &["413", "415", "422", "429"][..]),
        ("/api/locations/batch", &["413", "415", "422", "429"][..]),
        ("/api/persons", &["413", "415"][..]),
        ("/api/persons/lookup", &["413", "415"][..]),
    ] {
        let responses = &spec["paths"][path]["post"]["responses"];
        for s in statuses {
            assert!(responses.get(s).is_some(), "{path} lacks {s}: {responses}");
        }
    }
    let about = spec["info"]["description"].as_str().unwrap();
    assert!(about.contains("421"), "{about}");
}

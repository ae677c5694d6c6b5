//! What every role's edge refuses, through the engine's entry point and at each role's own
//! process: a write that does not say it is JSON, a Host the server does not answer to, a
//! ping timed days ahead; and the headers every answer carries.

use chrono::{TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use udaconnect_server::ingest::grpc::proto;

use crate::suite::Api;

/// A text/plain post (what any web page may send without asking) is 415 and writes nothing.
pub async fn json_writes_need_a_json_type(api: Api) {
    let before = person_count(&api).await;
    for path in ["/api/persons", "/api/locations", "/api/locations/batch"] {
        let r = api
            .client
            .post(api.url(path))
            .header("origin", "http://evil.example")
            .header("content-type", "text/plain;charset=UTF-8")
            .body(r#"{"first_name": "Eve", "last_name": "M", "company_name": "E"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    assert_eq!(person_count(&api).await, before, "nothing was created");
}

/// A method a path does not take is 405 naming the ones it does, whatever the body's type.
pub async fn unknown_methods_are_405_before_any_type_check(api: Api) {
    for (method, path, allow) in [
        (reqwest::Method::PUT, "/api/venue", "GET,HEAD"),
        (reqwest::Method::POST, "/api/venue", "GET,HEAD"),
        (reqwest::Method::PATCH, "/api/persons", "GET,HEAD,POST"),
        (reqwest::Method::PUT, "/api/locations", "POST"),
    ] {
        let r = api
            .client
            .request(method.clone(), api.url(path))
            .header("content-type", "text/plain")
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        assert_eq!(r.headers()["allow"], allow, "{method} {path}");
    }
}

async fn person_count(api: &Api) -> usize {
    let all = api.get_json("/api/persons?limit=10000").await;
    all.as_array().expect("a list of persons").len()
}

/// Each role's process, and the entry point, answer 421 to a foreign Host and carry nosniff.
pub async fn foreign_hosts_are_refused_at_every_role(api: Api) {
    let mut bases = vec![api.base.clone()];
    bases.extend(api.roles.iter().map(|(_, base, _)| base.clone()));
    for base in bases {
        let addr = base.trim_start_matches("http://");
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            b"GET /health HTTP/1.1\r\nHost: rebind.evil.example\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 421"), "{base}: {answer}");
        let r = api
            .client
            .get(format!("{base}/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{base}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{base}");
    }
    let page = api.get("/").await;
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("frame-ancestors 'none'") && !policy.contains("unsafe-inline"));
}

/// A ping timed two days ahead is refused over HTTP and gRPC; three hours ahead is taken.
pub async fn pings_too_far_ahead_are_refused(api: Api) {
    let at = |d: TimeDelta| (Utc::now() + d).to_rfc3339();
    let ping =
        |t: String| json!({"person_id": 5, "latitude": 1, "longitude": 2, "creation_time": t});
    let r = api
        .post_json("/api/locations", &ping(at(TimeDelta::days(2))))
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["errors"][0]["field"], "creation_time", "{p}");
    let r = api
        .post_json("/api/locations", &ping(at(TimeDelta::hours(3))))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let mut client =
        proto::v1::location_ingest_client::LocationIngestClient::connect(api.grpc.clone())
            .await
            .unwrap();
    let ahead = Utc::now() + TimeDelta::days(2);
    let status = client
        .create(proto::v1::Ping {
            person_id: 5,
            latitude: 1.0,
            longitude: 2.0,
            creation_time: Some(prost_types::Timestamp {
                seconds: ahead.timestamp(),
                nanos: 0,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("creation_time"),
        "{}",
        status.message()
    );
}

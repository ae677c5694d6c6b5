use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use udaconnect_server::roles::Role;
use udaconnect_testkit::eventually;

use crate::suite::{assert_problem, header, Api};

pub async fn health_ready_metrics_openapi_docs(api: Api) {
    let h = api.get("/health").await;
    assert_eq!(h.status(), StatusCode::OK);
    let r = api.get_json("/ready").await;
    assert_eq!(r["status"], "ready");
    // The log is checked where pings are appended to it.
    let r = api.at(Role::LocationApi).get_json("/ready").await;
    assert_eq!(r["status"], "ready");
    assert_eq!(r["checks"]["log"], "ok");
    let m = api.get("/metrics").await;
    assert!(header(&m, "content-type").starts_with("text/plain"));
    let text = m.text().await.unwrap();
    assert!(text.contains("udaconnect_http_requests_total{"), "{text}");
    let consumer = api.at(Role::LocationConsumer);
    let text = consumer.get("/metrics").await.text().await.unwrap();
    assert!(text.contains("udaconnect_consumer_lag_records"), "{text}");
    for metric in [
        "udaconnect_consumer_stalled 0",
        "udaconnect_consumer_partitions_assigned",
        "udaconnect_dlq_depth_records",
    ] {
        assert!(text.contains(metric), "{metric}: {text}");
    }
    // The consumer holds its partitions (or the embedded log, which has none to share) and
    // keeps up.
    let r = consumer.get_json("/ready").await;
    assert_eq!(r["checks"]["consumer"], "ok", "{r}");
    let spec = api.get_json("/openapi.json").await;
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/persons",
        "/api/persons/{id}",
        "/api/locations",
        "/api/locations/{id}",
        "/api/persons/{id}/connection",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} documented");
    }
    for schema in ["Person", "Location", "Connection", "Problem"] {
        assert!(
            spec["components"]["schemas"][schema].is_object(),
            "{schema} documented"
        );
    }
    let docs = api.get("/docs").await;
    assert!(header(&docs, "content-type").starts_with("text/html"));
    assert!(docs.text().await.unwrap().contains("/openapi.json"));
}

pub async fn correlation_ids_are_taken_echoed_or_made(api: Api) {
    let r = api.get_with("/health", "X-Correlation-ID", "abc-123").await;
    assert_eq!(r.headers()["x-correlation-id"], "abc-123");
    let r = api.get_with("/health", "correlationId", "legacy-7").await;
    assert_eq!(r.headers()["x-correlation-id"], "legacy-7");
    let r = api.get("/health").await;
    let made = header(&r, "x-correlation-id");
    assert_eq!(made.len(), 36);
    // Problem bodies carry it too.
    let r = api
        .get_with("/api/persons/x", "X-Correlation-ID", "trace-9")
        .await;
    let body = assert_problem(r, 400, &["id"]).await;
    assert_eq!(body["correlation_id"], "trace-9");
    assert_eq!(body["instance"], "/api/persons/x");
}

pub async fn unknown_routes_and_methods_are_problems(api: Api) {
    assert_problem(api.get("/api/nothing").await, 404, &[]).await;
    let r = api.send(reqwest::Method::DELETE, "/api/persons").await;
    assert!(r.headers().get("allow").is_some());
    assert_problem(r, 405, &[]).await;
    // Where the method is taken, the type is still checked.
    let r = api.post_as("/api/persons", "text/plain", "{}").await;
    assert_problem(r, 415, &[]).await;
}

pub async fn cors_lets_local_pages_call_the_api(api: Api) {
    // The original page on port 30000 calling the API on another port.
    let r = api
        .get_with("/api/persons", "Origin", "http://localhost:30000")
        .await;
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:30000"
    );
    assert!(header(&r, "access-control-expose-headers")
        .to_lowercase()
        .contains("x-correlation-id"));
    let preflight = api
        .client
        .request(reqwest::Method::OPTIONS, api.url("/api/locations"))
        .header("Origin", "http://127.0.0.1:30000")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://127.0.0.1:30000"
    );
    assert!(header(&preflight, "access-control-allow-methods").contains("POST"));
    // Other sites get no permission.
    let r = api
        .get_with("/api/persons", "Origin", "https://evil.example")
        .await;
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

/// Every role's process answers /ready and /metrics.
pub async fn every_role_is_ready_and_has_metrics(api: Api) {
    for role in Role::ALL {
        let at = api.at(role);
        let r = at.get("/ready").await;
        assert_eq!(r.status(), StatusCode::OK, "{role}");
        let m = at.get("/metrics").await;
        assert_eq!(m.status(), StatusCode::OK, "{role}");
    }
}

/// The id a ping's request carries reaches the log lines of the role that takes it.
pub async fn correlation_ids_reach_the_ingest_log(api: Api) {
    let r = api.ping_now(1, 37.55363, -122.290883).await;
    let correlation = header(&r, "x-correlation-id");
    eventually(
        "the correlation id in location-api's log",
        Duration::from_secs(10),
        || async {
            api.log_of(Role::LocationApi)
                .contains(&correlation)
                .then_some(())
        },
    )
    .await;
}

/// The venue live: pings show among the live positions, as anonymous dots once five people
/// stand in their place, with no id and no person.
pub async fn a_ping_shows_in_the_live_view(api: Api) {
    let (lat, lon) = (12.5, 34.25);
    let near = |p: &Value| {
        (p["latitude"].as_f64().unwrap() - lat).abs() < 1e-4
            && (p["longitude"].as_f64().unwrap() - lon).abs() < 1e-4
    };
    for i in 0..5 {
        let person = api.create_person(&format!("Dot{i}")).await["id"]
            .as_i64()
            .unwrap();
        api.ping_now(person, lat + i as f64 * 1e-6, lon).await;
    }
    let dots = eventually(
        "the live view to show the pings",
        Duration::from_secs(20),
        || async {
            let positions: Value = api.get("/api/live/positions").await.json().await.ok()?;
            let dots: Vec<Value> = positions
                .as_array()?
                .iter()
                .filter(|p| near(p))
                .cloned()
                .collect();
            (dots.len() == 5).then_some(dots)
        },
    )
    .await;
    for d in dots {
        assert!(d.get("id").is_none() && d.get("person_id").is_none(), "{d}");
    }
}

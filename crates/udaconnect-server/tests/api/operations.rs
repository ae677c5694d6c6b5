use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn health_ready_metrics_openapi_docs() {
    let app = spawn_app(false).await;
    let h = app.get("/health").await;
    assert_eq!(h.status(), StatusCode::OK);
    let r: Value = app.get("/ready").await.json().await.unwrap();
    assert_eq!(r["status"], "ready");
    assert_eq!(r["checks"]["log"], "ok");
    let m = app.get("/metrics").await;
    assert!(m.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = m.text().await.unwrap();
    assert!(text.contains("udaconnect_http_requests_total{"), "{text}");
    assert!(text.contains("udaconnect_consumer_lag_records"));
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
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
    let docs = app.get("/docs").await;
    assert!(docs.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(docs.text().await.unwrap().contains("/openapi.json"));
}

#[tokio::test]
async fn correlation_ids_are_taken_echoed_or_made() {
    let app = spawn_app(false).await;
    let r = app
        .client
        .get(app.url("/health"))
        .header("X-Correlation-ID", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-correlation-id"], "abc-123");
    let r = app
        .client
        .get(app.url("/health"))
        .header("correlationId", "legacy-7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-correlation-id"], "legacy-7");
    let r = app.get("/health").await;
    let made = r.headers()["x-correlation-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(made.len(), 36);
    // Problem bodies carry it too.
    let r = app
        .client
        .get(app.url("/api/persons/x"))
        .header("X-Correlation-ID", "trace-9")
        .send()
        .await
        .unwrap();
    let body = assert_problem(r, 400, &["id"]).await;
    assert_eq!(body["correlation_id"], "trace-9");
    assert_eq!(body["instance"], "/api/persons/x");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = spawn_app(false).await;
    assert_problem(app.get("/api/nothing").await, 404, &[]).await;
    let r = app
        .client
        .delete(app.url("/api/persons"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("allow").is_some());
    assert_problem(r, 405, &[]).await;
}

#[tokio::test]
async fn demo_conference_moves_live() {
    let data_dir = tempfile::tempdir().unwrap();
    let app = udaconnect_server::Application::build(udaconnect_server::ServeSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.path().to_path_buf(),
        demo: true,
        demo_attendees: 40,
        web_dir: None,
        cors_origins: Vec::new(),
        grpc: udaconnect_server::GrpcListen::Off,
        listen_file: None,
    })
    .await
    .unwrap();
    let base = format!("http://{}", app.local_addr());
    let client = reqwest::Client::new();
    let venue: Value = client
        .get(format!("{base}/api/venue"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(venue["areas"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["kind"] == "booth"));
    // Seed persons and 40 attendees.
    let persons: Value = client
        .get(format!("{base}/api/persons"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(persons.as_array().unwrap().len(), 45);
    // Attendees ping every 5 s: within a few seconds their positions are stored and shown.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let positions: Value = client
            .get(format!("{base}/api/live/positions"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let live = positions
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["person_id"].as_i64().unwrap() > 9)
            .count();
        if live >= 20 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {live} attendees seen live"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn cors_lets_local_pages_call_the_api() {
    let app = spawn_app(true).await;
    // The original page on port 30000 calling the API on another port.
    let r = app
        .client
        .get(app.url("/api/persons"))
        .header("Origin", "http://localhost:30000")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:30000"
    );
    assert!(r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase()
        .contains("x-correlation-id"));
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/locations"))
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
    assert!(preflight.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    // Other sites get no permission.
    let r = app
        .client
        .get(app.url("/api/persons"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

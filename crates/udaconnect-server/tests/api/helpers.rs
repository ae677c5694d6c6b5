use std::time::{Duration, Instant};

use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
use udaconnect_server::{Application, ServeSettings};

/// A running server on a fresh data directory, and a client for it.
pub struct TestApp {
    pub address: String,
    /// `http://host:port` of the gRPC services.
    pub grpc: String,
    pub client: Client,
    /// Kept so the server runs, and its data directory exists, for the test's length.
    _app: Application,
    _data_dir: tempfile::TempDir,
}

/// Starts `serve` in-process on port 0, with the demo data when `demo` is set.
pub async fn spawn_app(demo: bool) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let app = Application::build(ServeSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.path().to_path_buf(),
        demo,
        demo_attendees: 0,
        web_dir: None,
        cors_origins: Vec::new(),
        grpc: udaconnect_server::GrpcListen::At("127.0.0.1:0".parse().unwrap()),
        listen_file: None,
    })
    .await
    .expect("server starts");
    TestApp {
        address: format!("http://{}", app.local_addr()),
        grpc: format!("http://{}", app.grpc_addr().expect("gRPC is on")),
        client: Client::new(),
        _app: app,
        _data_dir: data_dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_raw(&self, path: &str, body: &'static str) -> Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Waits until the consumer has stored location `id`, and returns it.
    pub async fn stored_location(&self, id: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = self.get(&format!("/api/locations/{id}")).await;
            if r.status() == StatusCode::OK {
                return r.json().await.unwrap();
            }
            assert!(Instant::now() < deadline, "location {id} never stored");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Posts a ping, asserts 202, and returns the answer.
    pub async fn ping(&self, person_id: i64, lat: f64, lon: f64, time: &str) -> Value {
        let r = self
            .post_json(
                "/api/locations",
                &serde_json::json!({"person_id": person_id, "latitude": lat, "longitude": lon,
                    "creation_time": time}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        r.json().await.unwrap()
    }

    pub async fn create_person(&self, first: &str) -> Value {
        let r = self
            .post_json(
                "/api/persons",
                &serde_json::json!({"first_name": first, "last_name": "Tester", "company_name": "Acme"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.unwrap()
    }
}

/// Asserts an RFC 9457 answer with `status` whose violations name exactly `fields`.
pub async fn assert_problem(r: Response, status: u16, fields: &[&str]) -> Value {
    assert_eq!(r.status().as_u16(), status, "status");
    assert_eq!(
        r.headers().get("content-type").unwrap(),
        "application/problem+json"
    );
    assert!(r.headers().get("x-correlation-id").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["title"].is_string() && body["type"].is_string() && body["detail"].is_string());
    let named: Vec<&str> = body["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| e["field"].as_str().unwrap()).collect())
        .unwrap_or_default();
    assert_eq!(named, fields, "fields named in {body}");
    for f in fields {
        assert!(
            body["detail"].as_str().unwrap().contains(f),
            "detail names {f}: {body}"
        );
    }
    body
}

pub fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["location"]["id"].as_i64().unwrap())
        .collect()
}

//! `serve` in-process on port 0 with its edge (connections, request checks) set as a test
//! asks, and a client for it.

use std::time::{Duration, Instant};

use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
use udaconnect_server::http::edge::EdgeSettings;
use udaconnect_server::{Application, ServeSettings};

/// A running server on a fresh data directory, and a client for it.
pub struct TestApp {
    pub address: String,
    /// `http://host:port` of the gRPC services.
    pub grpc: String,
    pub client: Client,
    /// Kept so the server runs, and its data directory exists, for the test's length.
    app: Option<Application>,
    _data_dir: tempfile::TempDir,
}

/// Starts `serve` in-process on port 0, with the demo data when `demo` is set.
pub async fn spawn_app(demo: bool) -> TestApp {
    spawn_app_with(demo, EdgeSettings::default()).await
}

/// [`spawn_app`] with its edge set as `edge` says.
pub async fn spawn_app_with(demo: bool, edge: EdgeSettings) -> TestApp {
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
        edge,
        log_retention: Default::default(),
    })
    .await
    .expect("server starts");
    TestApp {
        address: format!("http://{}", app.local_addr()),
        grpc: format!("http://{}", app.grpc_addr().expect("gRPC is on")),
        client: Client::new(),
        app: Some(app),
        _data_dir: data_dir,
    }
}

impl TestApp {
    /// Stops the server as SIGTERM does.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.app.take().expect("running").stop().await
    }

    /// `host:port` of the HTTP listener.
    pub fn socket(&self) -> std::net::SocketAddr {
        self.address.trim_start_matches("http://").parse().unwrap()
    }

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
}

/// Waits until `base`'s `/ready` answers 200.
pub async fn wait_ready(client: &Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = client.get(format!("{base}/ready")).send().await;
        if ready.map(|r| r.status()).ok() == Some(StatusCode::OK) {
            return;
        }
        assert!(Instant::now() < deadline, "{base} never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

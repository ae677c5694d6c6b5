//! `serve` in-process on port 0 with its edge (connections, request checks) set as a test
//! asks, and a client for it.

use std::path::Path;
use std::time::Duration;

use reqwest::{Client, Response};
use serde_json::Value;
use udaconnect_server::http::edge::EdgeSettings;
use udaconnect_server::{Application, GrpcListen, HttpSettings, ServeSettings};
use udaconnect_testkit::http;

/// `serve --demo` on `data_dir` with `attendees` simulated attendees and gRPC off.
pub fn demo_settings(data_dir: &Path, http: HttpSettings, attendees: u32) -> ServeSettings {
    ServeSettings {
        http,
        data_dir: data_dir.to_path_buf(),
        demo: true,
        demo_attendees: attendees,
        grpc: GrpcListen::Off,
        mail: Default::default(),
        mqtt: None,
        log_retention: Default::default(),
        retention: Default::default(),
    }
}

/// A running server on a fresh data directory, and a client for it.
pub struct TestApp {
    pub address: String,
    /// `http://host:port` of the gRPC services.
    pub grpc: String,
    /// `http://host:port` of the OsmAnd listener.
    pub osmand: Option<String>,
    pub client: Client,
    /// Kept so the server runs, and its data directory exists, for the test's length.
    app: Option<Application>,
    _data_dir: tempfile::TempDir,
}

/// Starts `serve` in-process on port 0, with the demo data when `demo` is set.
pub async fn spawn_app(demo: bool) -> TestApp {
    spawn_app_with(demo, |_| {}).await
}

/// [`spawn_app`] with its edge's defaults changed by `set`.
pub async fn spawn_app_with(demo: bool, set: impl FnOnce(&mut EdgeSettings)) -> TestApp {
    let mut edge = EdgeSettings::default();
    set(&mut edge);
    // The original open contract these tests exercise.
    let http = HttpSettings {
        edge,
        ..HttpSettings::open("127.0.0.1:0".parse().unwrap())
    };
    spawn_app_on(demo, http).await
}

/// `serve` as it starts by default, every request authenticated (`--auth on`), with an
/// OsmAnd listener on port 0.
pub async fn spawn_signed_app() -> TestApp {
    let http = HttpSettings {
        osmand_listen: udaconnect_server::GrpcListen::At("127.0.0.1:0".parse().unwrap()),
        ..HttpSettings::on("127.0.0.1:0".parse().unwrap())
    };
    spawn_app_on(false, http).await
}

async fn spawn_app_on(demo: bool, http: HttpSettings) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let app = Application::build(ServeSettings {
        http,
        data_dir: data_dir.path().to_path_buf(),
        demo,
        demo_attendees: 0,
        grpc: GrpcListen::At("127.0.0.1:0".parse().unwrap()),
        log_retention: Default::default(),
        retention: Default::default(),
        mail: Default::default(),
        mqtt: None,
    })
    .await
    .expect("server starts");
    TestApp {
        address: format!("http://{}", app.local_addr()),
        grpc: format!("http://{}", app.grpc_addr().expect("gRPC is on")),
        osmand: app.osmand_addr().map(|a| format!("http://{a}")),
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

    /// The data directory it serves.
    pub fn data_dir(&self) -> &std::path::Path {
        self._data_dir.path()
    }

    /// `host:port` of the HTTP listener.
    pub fn socket(&self) -> std::net::SocketAddr {
        self.address.trim_start_matches("http://").parse().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        http::sent(self.client.get(self.url(path))).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        http::sent(self.client.post(self.url(path)).json(body)).await
    }

    /// Waits until the consumer has stored location `id`, and returns it.
    pub async fn stored_location(&self, id: i64) -> Value {
        http::stored_location(&self.client, &self.address, id, Duration::from_secs(10)).await
    }
}

//! The `udaconnect serve` process at its edge, as an attacker or a bad day would meet it: a
//! low open-files limit with hundreds of idle sockets held against it, and SIGTERM with a
//! browser's event stream still open.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::net::TcpStream;
use udaconnect_testkit::http;
use udaconnect_testkit::listen::wait_for_listen_file;

const BIN: &str = env!("CARGO_BIN_EXE_udaconnect");

/// `udaconnect serve --demo` under `ulimit -n files` (soft and hard: it cannot raise it).
struct Server {
    child: Child,
    base: String,
    addr: std::net::SocketAddr,
    client: reqwest::Client,
}

impl Server {
    async fn start(dir: &Path, files: u32) -> Server {
        let log_path = dir.join("serve.log");
        let listen_file = dir.join("listen.json");
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {files} && exec \"$0\" \"$@\""))
            .arg(BIN)
            .args([
                "--log-format",
                "json",
                "serve",
                "--demo",
                "--demo-attendees",
                "0",
            ])
            .args(["--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0"])
            .arg("--listen-file")
            .arg(&listen_file)
            .arg("--data-dir")
            .arg(dir.join("data"))
            // The original open contract these tests exercise.
            .env("UDACONNECT_AUTH", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .expect("udaconnect starts");
        let listening = wait_for_listen_file(&listen_file, &log_path).await;
        let server = Server {
            child,
            base: format!("http://{}", listening.http),
            addr: listening.http,
            client: reqwest::Client::new(),
        };
        http::wait_ready(&server.client, &server.base, Duration::from_secs(20)).await;
        server
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        tokio::time::timeout(
            Duration::from_secs(5),
            self.client.get(format!("{}{path}", self.base)).send(),
        )
        .await
        .unwrap_or_else(|_| panic!("{path} answers within 5 s"))
        .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_past_the_file_limit_and_sigterm_with_an_event_stream() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), 256).await;
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("udaconnect_open_files_limit 256"),
        "{metrics}"
    );

    // More idle sockets than the process has files.
    let mut idle = Vec::new();
    for _ in 0..400 {
        // A server out of files stops accepting: the connect then hangs.
        let connected =
            tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(server.addr))
                .await
                .expect("the server still accepts connections");
        idle.push(connected.unwrap());
    }
    assert_eq!(server.get("/health").await.status(), 200);
    // Ingest, the log, the consumer and the store still find their files.
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        server
            .client
            .post(format!("{}/api/locations", server.base))
            .json(&json!({"person_id": 5, "latitude": 1, "longitude": 2}))
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let timeout = Duration::from_secs(10);
    http::stored_location(&server.client, &server.base, id, timeout).await;
    let person = server.get("/api/persons/5").await;
    assert_eq!(person.status(), 200);
    drop(idle);

    // A browser watching the venue live.
    let mut stream = http::send_raw(
        server.addr,
        b"GET /api/live/stream HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert!(http::read_some(&mut stream)
        .await
        .starts_with("HTTP/1.1 200"));

    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "SIGTERM with an event stream open did not stop the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "a graceful stop exits 0, got {exit}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

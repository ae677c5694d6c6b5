//! `--auth off`, the original open contract for its old clients: refused unless every listen
//! address is loopback, and said at start where it is allowed.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use udaconnect_testkit::process::{run_to_end, RoleProc};

const BIN: &str = env!("CARGO_BIN_EXE_udaconnect");
const PATIENCE: Duration = Duration::from_secs(30);

/// `--auth off` is refused unless every listen address is loopback.
#[test]
fn auth_off_is_refused_off_loopback() {
    let data = tempfile::tempdir().unwrap();
    // After `serve --auth off`, listen addresses of which one is off loopback.
    for listens in [
        &["--listen", "0.0.0.0:0", "--grpc-listen", "off"][..],
        &["--listen", "127.0.0.1:0", "--grpc-listen", "0.0.0.0:0"],
        &[
            "--listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "off",
            "--metrics-listen",
            "0.0.0.0:0",
        ],
    ] {
        let args = &[&["serve", "--auth", "off"][..], listens].concat()[..];
        let out = run_to_end(Path::new(BIN), args, data.path(), "", PATIENCE);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("loopback"), "{args:?}: {err}");
    }
}

/// On loopback, `--auth off` serves the original open contract and says so at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_off_on_loopback_is_open_with_a_warning() {
    let data = tempfile::tempdir().unwrap();
    let server =
        RoleProc::serve_ready(Path::new(BIN), data.path(), &["--auth", "off"], PATIENCE).await;
    let r = reqwest::get(format!("{}/api/persons", server.base()))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let warned = server.log_lines().iter().any(|l| {
        let line = l.to_string();
        line.contains("WARN") && line.contains("authentication is off")
    });
    assert!(warned, "no warning in {}", server.log.display());
}

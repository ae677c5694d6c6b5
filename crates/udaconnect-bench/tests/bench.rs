//! The benchmark program as a user runs it: its own HTTP clients against a real server, a whole
//! run on a small conference, and the product's thin entries (`udaconnect bench`,
//! `udaconnect bench-distributed`) that run it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use udaconnect_testkit::http::{sample, STORED};
use udaconnect_testkit::process::{printed_token, run_admin, RoleProc};

const BENCH: &str = env!("CARGO_BIN_EXE_udaconnect-bench");

/// The product binary, built where the benchmark and the thin entries look for it: beside
/// `udaconnect-bench`. Cargo builds only a package's own binaries for its tests, so this asks
/// it for the product's too (at once when it is up to date).
fn product_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let profile_dir = Path::new(BENCH).parent().unwrap();
            let mut cargo = Command::new(env!("CARGO"));
            cargo
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "udaconnect",
                    "--bin",
                    "udaconnect",
                ])
                .arg("--target-dir")
                .arg(profile_dir.parent().unwrap());
            match profile_dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") => {}
                Some("release") => {
                    cargo.arg("--release");
                }
                Some(profile) => {
                    cargo.args(["--profile", profile]);
                }
                None => panic!("{BENCH} is not in a profile's directory"),
            }
            assert!(cargo.status().unwrap().success(), "{cargo:?} failed");
            profile_dir.join("udaconnect")
        })
        .clone()
}

fn run_ok(args: &[&str]) -> Vec<u8> {
    let out = Command::new(BENCH).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    out.stdout
}

/// [`run_ok`], and what the command printed to stdout, read as JSON.
fn run_json(args: &[&str]) -> Value {
    serde_json::from_slice(&run_ok(args)).unwrap()
}

/// `udaconnect serve` as a process, with the original demo data and no live conference.
struct Demo {
    process: RoleProc,
    base: String,
    client: reqwest::Client,
}

impl Demo {
    async fn start(data_dir: &Path) -> Demo {
        Demo::start_with(data_dir, &[]).await
    }

    async fn start_with(data_dir: &Path, more: &[&str]) -> Demo {
        let mut args: Vec<String> = ["--demo", "--demo-attendees", "0", "--grpc-listen", "off"]
            .iter()
            .chain(more)
            .map(|s| s.to_string())
            .collect();
        args.extend(["--data-dir".to_string(), data_dir.display().to_string()]);
        let process = RoleProc::spawn(&product_binary(), "serve", &args).await;
        process.wait_ready(Duration::from_secs(60)).await;
        Demo {
            base: process.base(),
            process,
            client: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        let url = format!("{}{path}", self.base);
        self.client.get(url).send().await.unwrap()
    }

    /// Pings stored, as the consumer counts them in `/metrics`.
    async fn stored(&self) -> u64 {
        let text = self.get("/metrics").await.text().await.unwrap();
        sample(&text, STORED).unwrap_or(0)
    }

    /// Waits until exactly `expected` pings are stored.
    async fn wait_stored(&self, expected: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut stored = self.stored().await;
        while stored != expected {
            assert!(Instant::now() < deadline, "{stored} of {expected} stored");
            tokio::time::sleep(Duration::from_millis(100)).await;
            stored = self.stored().await;
        }
    }
}

/// The benchmark's own HTTP clients against a real server: the query client reads whole
/// answers (streamed in chunks, or of a fixed length), and the load client counts as
/// acknowledged exactly the pings that get stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_clients_read_whole_answers_and_count_only_acknowledged_pings() {
    let dir = tempfile::tempdir().unwrap();
    let server = Demo::start(&dir.path().join("data")).await;
    // The demo's 39 pings go through the log like any others.
    server.wait_stored(39).await;
    let paths = [
        "/api/persons/1/connection?start_date=2020-01-01&end_date=2020-12-31&distance=5",
        "/api/persons",
        "/health",
        "/api/persons/6/contacts?start=2020-01-01&end=2020-12-31&min_duration=0",
    ];
    let urls: Vec<String> = paths
        .iter()
        .map(|p| format!("{}{p}", server.base))
        .collect();
    let file = dir.path().join("urls.txt");
    let file_arg = file.to_str().unwrap();
    let ask_each = ["bench-load", "--url", &urls[0], "--urls-file", file_arg];
    fs::write(&file, urls.join("\n")).unwrap();
    let answers = run_json(&ask_each);
    let mut expected = Vec::new();
    for p in paths {
        let r = server.get(p).await;
        assert_eq!(r.status(), 200, "{p}");
        expected.push(json!(r.bytes().await.unwrap().len()));
    }
    assert!(expected[0].as_u64().unwrap() > 1000, "{expected:?}");
    assert_eq!(answers["bytes"], Value::Array(expected), "{answers}");
    assert_eq!(answers["ms"].as_array().unwrap().len(), paths.len());

    // A query that fails is reported, not counted.
    fs::write(&file, format!("{}/api/persons/999999", server.base)).unwrap();
    let failed = run_json(&ask_each);
    assert!(
        failed["error"].as_str().unwrap().contains("404"),
        "{failed}"
    );

    let before = server.stored().await;
    let load = run_json(&[
        "bench-load",
        "--url",
        &format!("{}/api/locations", server.base),
        "--persons",
        "1",
        "--connections",
        "8",
        "--seconds",
        "1",
    ]);
    assert_eq!(load["errors"], 0, "{load}");
    let sent = load["requests"].as_u64().unwrap();
    assert!(sent > 100, "{load}");
    server.wait_stored(before + sent).await;
    // And nothing more arrives: every stored ping was counted.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.stored().await, before + sent);
    drop(server.process);
}

/// With `--auth on` (the benchmark's default) the load and query clients send the token they
/// are handed, and only to the server that asks for it: without it they are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_clients_send_the_token_they_are_handed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Demo::start_with(&data, &["--auth", "on"]).await;
    let data_dir = data.to_str().unwrap();
    let made = run_admin(
        &product_binary(),
        &["create-token", "--role", "admin", "--data-dir", data_dir],
    );
    let token = printed_token(&made);
    assert!(token.starts_with("uc_"), "{token}");
    let file = dir.path().join("urls.txt");
    let url = format!(
        "{}/api/persons/1/connection?start_date=2020-01-01&end_date=2020-12-31&distance=5",
        server.base
    );
    fs::write(&file, &url).unwrap();
    // The load client's JSON report of a run with `args`, handed `token` if any.
    let load = |args: &[&str], token: Option<&str>| {
        let mut c = Command::new(BENCH);
        c.arg("bench-load").args(args);
        if let Some(t) = token {
            c.env("UDACONNECT_BENCH_LOAD_TOKEN", t);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let ask = ["--url", &url, "--urls-file", file.to_str().unwrap()];
    let refused = load(&ask, None);
    assert!(
        refused["error"].as_str().unwrap().contains("401"),
        "{refused}"
    );
    let answered = load(&ask, Some(&token));
    assert_eq!(answered["ms"].as_array().unwrap().len(), 1, "{answered}");

    let locations = format!("{}/api/locations", server.base);
    let post = [
        "--url",
        &locations,
        "--persons",
        "1",
        "--connections",
        "2",
        "--seconds",
        "1",
    ];
    let refused = load(&post, None);
    assert_eq!(refused["requests"], 0, "{refused}");
    assert!(refused["errors"].as_u64().unwrap() > 0, "{refused}");
    let accepted = load(&post, Some(&token));
    assert_eq!(accepted["errors"], 0, "{accepted}");
    assert!(accepted["requests"].as_u64().unwrap() > 10, "{accepted}");
    // The token is on no line the clients or the server printed.
    let log = fs::read_to_string(&server.process.log).unwrap();
    assert!(!log.contains(&token));
    drop(server.process);
}

/// The benchmark command end to end on a small conference: every figure is reported, and the
/// run fails if an index answer differs from the linear scan's (the benchmark checks each).
#[test]
fn bench_reports_every_figure_on_a_small_conference() {
    // The memory and start-up figures are the product binary's.
    product_binary();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.md");
    let scratch = dir.path().join("scratch");
    run_ok(&[
        "--log-level",
        "warn",
        "bench",
        "--locations",
        "6000",
        "--queries",
        "10",
        "--baseline-queries",
        "3",
        "--load-seconds",
        "1",
        "--data-dir",
        scratch.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let report = fs::read_to_string(&out).unwrap();
    // By default the server asks who is asking, as `serve` does, and every client answers.
    assert!(report.contains("--auth on`"), "{report}");
    for row in [
        "| bulk ingest over HTTP",
        "| ingested, stored in SQLite and indexed",
        "| single-ping POST /api/locations",
        "| connection, distance 5 m, max_time_gap 60 s | 1 day |",
        "| connection, distance 5 m, max_time_gap 60 s | 3 days |",
        "| contacts over tracks, 5 m, min 120 s | 3 days |",
        "| answer locations per second of server time |",
        "| resident memory of `udaconnect serve` after start",
        "| the same less `udaconnect serve` with nothing stored",
        "| start to ready (`/ready` answers 200)",
    ] {
        let line = report
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no {row:?} in:\n{report}"));
        assert!(!line.contains("NaN"), "{line}");
    }
    // Memory is divided by what the store holds: the bulk ingest's pings and the POST test's.
    let stored: i64 = rusqlite::Connection::open(scratch.join("data/locations.sqlite3"))
        .unwrap()
        .query_row("SELECT count(*) FROM location", [], |r| r.get(0))
        .unwrap();
    assert!(
        report.contains(&format!("with {stored} locations stored |")),
        "{stored} stored:\n{report}"
    );
    // The query client timed every query over HTTP.
    assert_eq!(
        fs::read_to_string(scratch.join("bench-urls.txt"))
            .unwrap()
            .lines()
            .count(),
        10
    );
}

/// `udaconnect bench` and `udaconnect bench-distributed` are this program: the same help
/// (every flag with its environment variable), the same errors, the same exit codes.
#[test]
fn the_product_runs_the_benchmarks_through_its_thin_entries() {
    let product = product_binary();
    for (command, documented) in [
        (
            "bench",
            &[
                "--locations",
                "UDACONNECT_BENCH_LOCATIONS",
                "--load-seconds",
                "UDACONNECT_BENCH_LOAD_SECONDS",
                "--index-only",
                "UDACONNECT_BENCH_INDEX_ONLY",
                "--auth",
                "UDACONNECT_BENCH_AUTH",
            ][..],
        ),
        (
            "bench-distributed",
            &[
                "--brokers",
                "UDACONNECT_BENCH_BROKERS",
                "--latency-rate",
                "UDACONNECT_BENCH_LATENCY_RATE",
                "--keep",
                "UDACONNECT_BENCH_KEEP",
            ][..],
        ),
    ] {
        let through = Command::new(&product)
            .args([command, "--help"])
            .output()
            .unwrap();
        let direct = Command::new(BENCH)
            .args([command, "--help"])
            .output()
            .unwrap();
        assert!(through.status.success(), "{through:?}");
        let help = String::from_utf8(through.stdout).unwrap();
        assert_eq!(help, String::from_utf8(direct.stdout).unwrap());
        for s in documented {
            assert!(help.contains(s), "{command} --help lacks {s}:\n{help}");
        }
    }
    // The global flags pass on too, and a usage error keeps its message and exit code.
    let args = ["--log-format", "json", "bench", "--no-such-flag"];
    let through = Command::new(&product).args(args).output().unwrap();
    let direct = Command::new(BENCH).args(args).output().unwrap();
    assert_eq!(through.status.code(), Some(2), "{through:?}");
    assert_eq!(through.stderr, direct.stderr);
    // A run that fails fails alike (without the log line, which has the time in it).
    let args = [
        "--log-level",
        "off",
        "bench",
        "--locations",
        "100",
        "--data-dir",
        "/",
    ];
    let through = Command::new(&product).args(args).output().unwrap();
    let direct = Command::new(BENCH).args(args).output().unwrap();
    assert_eq!(through.status.code(), Some(1), "{through:?}");
    let stderr = String::from_utf8_lossy(&through.stderr);
    assert!(
        stderr.contains("/ exists: give an empty or new --data-dir"),
        "{stderr}"
    );
    assert_eq!(through.stderr, direct.stderr);
}

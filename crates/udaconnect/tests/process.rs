//! The `udaconnect` binary as a user runs it: crash safety under kill -9, recovery of a torn
//! log tail, replay, restart, and the command line itself.

use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use udaconnect_testkit::http;
use udaconnect_testkit::listen::wait_for_listen_file;
use udaconnect_testkit::process::{assert_help_names, remove_location_store};

const BIN: &str = env!("CARGO_BIN_EXE_udaconnect");

/// A `udaconnect serve` child process with JSON logs in a file.
struct Server {
    child: Child,
    base: String,
    /// `host:port` of its gRPC services, when they listen.
    grpc: Option<String>,
    client: reqwest::Client,
}

impl Server {
    async fn start(data_dir: &Path, demo: bool) -> Server {
        Server::start_with(data_dir, demo, &[]).await
    }

    async fn start_with(data_dir: &Path, demo: bool, extra: &[&str]) -> Server {
        Server::start_in_env(data_dir, demo, extra, None).await
    }

    /// With `GLIBC_TUNABLES` set to `tunables`, or unset when `None`.
    async fn start_in_env(
        data_dir: &Path,
        demo: bool,
        extra: &[&str],
        tunables: Option<&str>,
    ) -> Server {
        let log_path = data_dir.with_extension(format!("log-{}", now_nanos()));
        let listen_file = data_dir.with_extension(format!("listen-{}.json", now_nanos()));
        let log = fs::File::create(&log_path).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args([
            "--log-format",
            "json",
            "serve",
            // The original demo data only, no live simulated conference: answers stay fixed.
            "--demo-attendees",
            "0",
            "--listen",
            "127.0.0.1:0",
            "--listen-file",
        ])
        .arg(&listen_file)
        .arg("--data-dir")
        .arg(data_dir)
        // The original open contract these tests exercise.
        .env("UDACONNECT_AUTH", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
        if demo {
            cmd.arg("--demo");
        }
        cmd.args(extra);
        match tunables {
            Some(t) => cmd.env("GLIBC_TUNABLES", t),
            None => cmd.env_remove("GLIBC_TUNABLES"),
        };
        let child = cmd.spawn().expect("udaconnect starts");
        let listening = wait_for_listen_file(&listen_file, &log_path).await;
        assert_eq!(listening.role, "serve");
        assert_eq!(listening.pid, child.id());
        let server = Server {
            child,
            base: format!("http://{}", listening.http),
            grpc: listening.grpc.map(|a| a.to_string()),
            client: reqwest::Client::new(),
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        http::wait_ready(&self.client, &self.base, Duration::from_secs(20)).await
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.json().await.unwrap()
    }

    async fn location(&self, id: i64, timeout: Duration) -> Value {
        http::stored_location(&self.client, &self.base, id, timeout).await
    }

    /// The pings the consumer reports stored in its metrics.
    async fn stored(&self) -> u64 {
        let metrics = self.get("/metrics").await.text().await.unwrap();
        http::sample(&metrics, http::STORED).unwrap_or(0)
    }

    /// Waits until the consumer has stored exactly `sent` pings, by its metrics.
    async fn wait_stored(&self, sent: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let stored = self.stored().await;
            if stored == sent {
                return;
            }
            assert!(Instant::now() < deadline, "{stored} of {sent} pings stored");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "graceful stop exits 0, got {exit}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn segments(data_dir: &Path) -> Vec<PathBuf> {
    udaconnect_log::embedded::segment_files(&data_dir.join("log/location")).unwrap()
}

/// A ping unique to (client, n), so a stored copy can be traced to its request.
fn ping_body(client: usize, n: usize) -> Value {
    let persons = [1, 5, 6, 8, 9];
    json!({
        "person_id": persons[client % persons.len()],
        "latitude": 40.0 + client as f64 * 0.001,
        "longitude": -70.0 - n as f64 * 0.000_01,
        "creation_time": format!("2024-06-01T{:02}:{:02}:{:02}Z", n / 3600 % 24, n / 60 % 60, n % 60),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_acknowledged_ping() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, true).await;

    let acked: Arc<Mutex<Vec<(i64, Value)>>> = Arc::default();
    let mut clients = Vec::new();
    for c in 0..48 {
        let acked = acked.clone();
        let client = server.client.clone();
        let url = format!("{}/api/locations", server.base);
        clients.push(tokio::spawn(async move {
            for n in 0.. {
                let body = ping_body(c, n);
                match client.post(&url).json(&body).send().await {
                    Ok(r) if r.status() == 202 => {
                        let v: Value = r.json().await.unwrap();
                        acked
                            .lock()
                            .unwrap()
                            .push((v["id"].as_i64().unwrap(), body));
                    }
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    // The server died under this request: it was never acknowledged.
                    Err(_) => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    server.kill_9();
    for c in clients {
        c.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 200,
        "only {} pings acknowledged before the kill",
        acked.len()
    );
    eprintln!("{} pings acknowledged before kill -9", acked.len());

    // A write torn by the crash: garbage right after the last complete record, over the zeros
    // the log keeps ahead of its records.
    let last = segments(&data).pop().unwrap();
    let bytes = std::fs::read(&last).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .write_all_at(&[0x5a; 37], end as u64)
        .unwrap();

    let server = Server::start(&data, true).await;
    for (id, body) in &acked {
        let got = server.location(*id, Duration::from_secs(30)).await;
        for field in ["person_id", "latitude", "longitude", "creation_time"] {
            assert_eq!(got[field], body[field], "location {id} {field}");
        }
    }
    // New ids after the restart never reuse an acknowledged one.
    let r = server
        .client
        .post(format!("{}/api/locations", server.base))
        .json(&ping_body(0, 999_999))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let fresh: Value = r.json().await.unwrap();
    let acked_ids: HashSet<i64> = acked.iter().map(|(id, _)| *id).collect();
    assert_eq!(acked_ids.len(), acked.len(), "ids are unique");
    assert!(!acked_ids.contains(&fresh["id"].as_i64().unwrap()));
    server
        .location(fresh["id"].as_i64().unwrap(), Duration::from_secs(10))
        .await;
    server.terminate();

    // Exactly once: no ping stored twice, under any id.
    let db = rusqlite::Connection::open_with_flags(
        data.join("locations.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = db
        .prepare("SELECT id, person_id, latitude, longitude, creation_time FROM location")
        .unwrap();
    let mut copies: HashMap<(i64, u64, u64, i64), Vec<i64>> = HashMap::new();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, f64>(2)?,
                r.get::<_, f64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .unwrap();
    let mut stored_ids = HashSet::new();
    for row in rows {
        let (id, p, lat, lon, t) = row.unwrap();
        stored_ids.insert(id);
        copies
            .entry((p, lat.to_bits(), lon.to_bits(), t))
            .or_default()
            .push(id);
    }
    assert!(acked_ids.is_subset(&stored_ids));
    // The seed data has exact repeats of its own; the pings of this test are each unique.
    for ((_, lat, _, _), ids) in &copies {
        if f64::from_bits(*lat) >= 40.0 && f64::from_bits(*lat) < 41.0 {
            assert_eq!(ids.len(), 1, "ping stored more than once: {ids:?}");
        }
    }
}

async fn answers(server: &Server) -> Vec<Value> {
    let mut out = Vec::new();
    for p in [1, 5, 6, 8, 9] {
        for q in [
            "start_date=2020-01-01&end_date=2024-12-31&distance=5",
            "start_date=2024-06-01&end_date=2024-06-01&distance=50&max_time_gap=120",
        ] {
            let r = server
                .get(&format!("/api/persons/{p}/connection?{q}"))
                .await;
            assert_eq!(r.status(), 200);
            out.push(r.json::<Value>().await.unwrap());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_rebuilds_the_store_to_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, true).await;
    let mut last = 0;
    for n in 0..300 {
        let mut body = ping_body(n % 7, n);
        body["latitude"] = json!(40.0 + (n % 3) as f64 * 0.00001);
        let r = server
            .client
            .post(format!("{}/api/locations", server.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        last = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    }
    server.location(last, Duration::from_secs(10)).await;
    let before = answers(&server).await;
    assert!(
        before.iter().any(|a| a.as_array().unwrap().len() > 10),
        "answers are not trivial"
    );
    server.terminate();

    remove_location_store(&data);
    let out = replay(&data);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "replay failed: {stderr}");
    assert!(
        stderr.contains("replayed 339 records: 339 locations stored, 0 rejected"),
        "{stderr}"
    );

    // Restarted without --demo: everything is back, and the demo data is not loaded twice.
    let server = Server::start(&data, true).await;
    assert_eq!(answers(&server).await, before);
    let persons = server.get_json("/api/persons").await;
    assert_eq!(persons.as_array().unwrap().len(), 5);
}

fn replay(data_dir: &Path) -> Output {
    Command::new(BIN)
        .arg("replay")
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap()
}

#[tokio::test]
async fn replay_refuses_a_data_dir_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = Server::start(&data, false).await;
    let out = replay(&data);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("held by another process"));
}

/// Whether a running process asked the kernel to back its heap with huge pages
/// (`madvise(MADV_HUGEPAGE)`: the `hg` flag of its `[heap]` mapping in `/proc/PID/smaps`).
/// Where malloc asks at all, it asks for every extension of the main heap, rounded up to a
/// huge page; larger allocations elsewhere are advised only when malloc maps them on their own.
fn asked_for_huge_pages(pid: u32) -> bool {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let heap = smaps
        .split_inclusive('\n')
        .skip_while(|l| !l.trim_end().ends_with("[heap]"))
        .find_map(|l| l.strip_prefix("VmFlags:"));
    heap.unwrap_or_else(|| panic!("no [heap] mapping:\n{smaps}"))
        .split_whitespace()
        .any(|f| f == "hg")
}

#[tokio::test]
async fn serve_asks_for_huge_pages_where_the_kernel_waits_to_be_asked_and_keeps_a_choice() {
    let mode =
        fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    let asks = mode.contains("[madvise]");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (tunables, expected) in [
        (None, asks),
        (Some("glibc.malloc.arena_max=2"), asks),
        (Some("glibc.malloc.hugetlb=0"), false),
    ] {
        let server = Server::start_in_env(&data, false, &[], tunables).await;
        assert_eq!(
            asked_for_huge_pages(server.child.id()),
            expected,
            "GLIBC_TUNABLES {tunables:?}, kernel mode {mode}"
        );
        // Started again in place: the pid the caller knows is the server's.
        assert_eq!(server.get("/api/persons").await.status(), 200);
        server.terminate();
    }
}

#[test]
fn help_documents_every_flag_and_its_environment_variable() {
    assert_help_names(
        BIN.as_ref(),
        &[],
        &[
            "serve",
            "replay",
            "bench",
            "bench-distributed",
            "--log-format",
            "UDACONNECT_LOG_FORMAT",
        ],
    );
    assert_help_names(
        BIN.as_ref(),
        &["serve"],
        &[
            "--listen",
            "UDACONNECT_LISTEN",
            "127.0.0.1:30000",
            "--data-dir",
            "UDACONNECT_DATA_DIR",
            "--demo",
            "UDACONNECT_DEMO",
        ],
    );
    let bad = Command::new(BIN)
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--listen"));
}

/// Runs `udaconnect` with `args` to success; what it wrote to stderr.
fn run_ok(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    stderr
}

/// The benchmarks are a program apart: where it is not built, `udaconnect bench` says how to
/// build it and fails. (udaconnect-bench's tests run it through these entries.)
#[test]
fn bench_entries_say_how_to_build_the_benchmarks_where_they_are_missing() {
    // This binary alone in a directory, and a PATH without the benchmarks: a hard link keeps
    // the directory this process sees as its own.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let alone = dir.path().join("udaconnect");
    if fs::hard_link(BIN, &alone).is_err() {
        fs::copy(BIN, &alone).unwrap();
    }
    let empty = tempfile::tempdir().unwrap();
    for command in ["bench", "bench-distributed"] {
        let out = Command::new(&alone)
            .args([command, "--locations", "1000"])
            .env("PATH", empty.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{command}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("udaconnect-bench is not built")
                && stderr.contains("`cargo build --release -p udaconnect-bench`"),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn simulate_is_deterministic_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str, seed: &str| {
        let path = dir.path().join(name);
        run_ok(&[
            "simulate",
            "--attendees",
            "30",
            "--days",
            "2",
            "--ping-interval",
            "120",
            "--seed",
            seed,
            "--out",
            path.to_str().unwrap(),
        ]);
        (
            fs::read(path.join("persons.csv")).unwrap(),
            fs::read(path.join("locations.csv")).unwrap(),
        )
    };
    let a = out("a", "7");
    let b = out("b", "7");
    let c = out("c", "8");
    assert_eq!(a, b);
    assert_ne!(a.1, c.1);
    let text = String::from_utf8(a.1).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "id,person_id,latitude,longitude,creation_time");
    // 30 attendees, 2 days of about 7.5 hours, a ping every 2 minutes.
    assert!(
        lines.len() > 10_000 && lines.len() < 17_000,
        "{} pings",
        lines.len()
    );
    assert!(
        lines[1..]
            .windows(2)
            .all(|w| w[0].rsplit(',').next() <= w[1].rsplit(',').next()),
        "time order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_reports_bad_rows_resumes_and_repairs_axes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/seed");
    let locations = dir.path().join("locations.csv");
    fs::write(
        &locations,
        "id,person_id,latitude,longitude,creation_time\n\
         ,1,37.5,-122.2,2024-01-01T10:00:00Z\n\
         ,1,95,0,2024-01-01T10:00:00Z\n\
         ,999,1,1,2024-01-01T10:00:00Z\n\
         ,5,north,1,2024-01-01T10:00:00Z\n\
         ,5,37.5,-122.2,not-a-time\n\
         ,5,37.50001,-122.2,2024-01-01T10:00:30\n",
    )
    .unwrap();
    let rejects = dir.path().join("rejects.csv");
    let stderr = run_ok(&[
        "import",
        "--data-dir",
        data_s,
        "--persons",
        &format!("{seed}/persons.csv"),
        "--locations",
        locations.to_str().unwrap(),
        "--rejects",
        rejects.to_str().unwrap(),
    ]);
    assert!(
        stderr.contains("locations: 6 rows, 2 imported, 4 rejected"),
        "{stderr}"
    );
    for expected in [
        "line 3: invalid input: latitude",
        "line 4: person_id: no person with id 999",
        "line 5: malformed request: latitude",
        "line 6: malformed request: creation_time",
    ] {
        assert!(stderr.contains(expected), "{expected} in {stderr}");
    }
    assert_eq!(fs::read_to_string(&rejects).unwrap().lines().count(), 5);
    let import_locations = |csv: &Path| {
        run_ok(&[
            "import",
            "--data-dir",
            data_s,
            "--locations",
            csv.to_str().unwrap(),
        ])
    };
    // Run again: nothing is imported twice.
    let again = import_locations(&locations);
    assert!(
        again.contains("resumed after line 7") && again.contains("locations: 0 rows"),
        "{again}"
    );
    // The original database's raw axes: rows near Albuquerque stored (lat, lon) as (x, y).
    let raw_axes = udaconnect_testkit::repo_root().join("data/seed/locations_raw_axes.csv");
    let raw = import_locations(&raw_axes);
    assert!(
        raw.contains("39 imported, 0 rejected, 22 with swapped axes repaired"),
        "{raw}"
    );
    // Lines ended by a lone CR (old spreadsheet exports) are lines: rows are reported, and
    // resumed after, by their own line.
    let cr_ended = dir.path().join("cr_ended.csv");
    fs::write(
        &cr_ended,
        "person_id,latitude,longitude,creation_time\r\
         5,37.5,-122.2,2024-01-02T10:00:00Z\r\
         5,95,0,2024-01-02T10:00:00Z\r",
    )
    .unwrap();
    let import_cr = || {
        run_ok(&[
            "import",
            "--data-dir",
            data_s,
            "--locations",
            cr_ended.to_str().unwrap(),
        ])
    };
    let first = import_cr();
    assert!(
        first.contains("2 rows, 1 imported, 1 rejected")
            && first.contains("line 3: invalid input: latitude"),
        "{first}"
    );
    let again = import_cr();
    assert!(
        again.contains("resumed after line 3") && again.contains("locations: 0 rows"),
        "{again}"
    );

    // The imported seed answers as the demo does, and the two imported pings met.
    let server = Server::start(&data, false).await;
    let r = server
        .get_json("/api/persons/1/connection?start_date=2020-01-01&end_date=2020-12-31")
        .await;
    let ids: Vec<i64> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["location"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [34, 57, 65, 66, 67, 30, 31, 68]);
    let r = server
        .get_json("/api/persons/1/contacts?start=2024-01-01&end=2024-01-01&min_duration=0")
        .await;
    // Two isolated pings 30 s apart, each present 30 s either side: together in between.
    assert_eq!(r[0]["person"]["id"], 5);
    assert_eq!(r[0]["encounters"][0]["start"], "2024-01-01T10:00:00Z");
    assert_eq!(r[0]["encounters"][0]["end"], "2024-01-01T10:00:30Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_streams_to_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, false).await;
    let stderr = run_ok(&[
        "simulate",
        "--attendees",
        "20",
        "--days",
        "1",
        "--ping-interval",
        "300",
        "--target",
        &server.base,
        "--batch",
        "100",
        "--rate",
        "20000",
    ]);
    let sent: u64 = stderr
        .split("sent ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(sent > 1000, "{stderr}");
    let persons = server.get_json("/api/persons").await;
    assert_eq!(persons.as_array().unwrap().len(), 20);
    server.wait_stored(sent).await;
}

#[tokio::test]
async fn simulate_streams_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        false,
        &["--grpc-listen", "127.0.0.1:0"],
    )
    .await;
    let grpc = server.grpc.clone().expect("gRPC listens");
    let stderr = run_ok(&[
        "simulate",
        "--attendees",
        "10",
        "--days",
        "1",
        "--ping-interval",
        "600",
        "--target",
        &server.base,
        "--grpc",
        &format!("http://{grpc}"),
        "--batch",
        "50",
    ]);
    let sent: u64 = stderr
        .split("sent ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(sent > 100, "{stderr}");
    assert!(stderr.contains("over gRPC"), "{stderr}");
    server.wait_stored(sent).await;
}

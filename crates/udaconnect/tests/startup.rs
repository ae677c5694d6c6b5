//! What `serve` checks at start, on a data directory a bad day left behind: an id file rolled
//! back (a restored backup) never makes it hand out an id again, a garbage offset file is
//! recovered from what the store holds (not by reading the whole log again), a deleted
//! location store is rebuilt from the log before it reports ready (or the start is refused
//! when the log no longer holds its beginning), and a full disk answers 503 with Retry-After
//! and fails `/ready` until space returns, losing nothing acknowledged. Each a real
//! `udaconnect serve` process.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use udaconnect_core::ports::Log;
use udaconnect_core::record::LogRecord;
use udaconnect_log::{EmbeddedLog, EmbeddedLogOptions};
use udaconnect_testkit::eventually;
use udaconnect_testkit::http::{create_person, json_answer};
use udaconnect_testkit::process::{remove_location_store, run_to_end, RoleProc};

const BIN: &str = env!("CARGO_BIN_EXE_udaconnect");
const PATIENCE: Duration = Duration::from_secs(30);

async fn serve(data: &Path, extra: &[&str]) -> RoleProc {
    let mut args = vec![
        "--data-dir".to_string(),
        data.display().to_string(),
        "--grpc-listen".into(),
        "off".into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let p = RoleProc::spawn(Path::new(BIN), "serve", &args).await;
    p.wait_ready(PATIENCE).await;
    p
}

/// A person to ping for.
async fn person(server: &RoleProc) -> i64 {
    create_person(&reqwest::Client::new(), &server.base(), "Ada").await
}

fn ping(person_id: i64, n: usize) -> Value {
    json!({
        "person_id": person_id,
        "latitude": 10.0 + n as f64 * 0.001,
        "longitude": 20.0,
        "creation_time": format!("2024-06-01T10:{:02}:{:02}Z", n / 60 % 60, n % 60),
    })
}

async fn post(server: &RoleProc, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/locations", server.base()))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Posts `count` pings numbered from `from`; every one must be acknowledged: (id, body).
async fn ingest(server: &RoleProc, person_id: i64, from: usize, count: usize) -> Vec<(i64, Value)> {
    let mut acked = Vec::new();
    for n in from..from + count {
        let body = ping(person_id, n);
        let r = post(server, &body).await;
        assert_eq!(r.status(), 202, "ping {n}");
        acked.push((
            r.json::<Value>().await.unwrap()["id"].as_i64().unwrap(),
            body,
        ));
    }
    acked
}

async fn stored(server: &RoleProc, id: i64) -> Option<Value> {
    let r = reqwest::get(format!("{}/api/locations/{id}", server.base()))
        .await
        .unwrap();
    (r.status() == 200).then_some(r.json().await.unwrap())
}

/// `serve` on `data` (with `extra` flags) holding one person's first `count` pings, all
/// stored: the server, the person and the acknowledged pings.
async fn serve_with_stored(
    data: &Path,
    extra: &[&str],
    count: usize,
) -> (RoleProc, i64, Vec<(i64, Value)>) {
    let server = serve(data, extra).await;
    let who = person(&server).await;
    let acked = ingest(&server, who, 0, count).await;
    all_stored(&server, &acked).await;
    (server, who, acked)
}

/// Every acknowledged ping is stored as it was sent (not another ping under its id).
async fn all_stored(server: &RoleProc, acked: &[(i64, Value)]) {
    for (id, body) in acked {
        let got = eventually(&format!("location {id} stored"), PATIENCE, || async {
            stored(server, *id).await
        })
        .await;
        for field in ["person_id", "latitude", "longitude", "creation_time"] {
            assert_eq!(got[field], body[field], "location {id} {field}");
        }
    }
}

fn max_id(acked: &[(i64, Value)]) -> i64 {
    acked.iter().map(|(id, _)| *id).max().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_id_file_never_hands_out_an_id_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut server, who, mut acked) = serve_with_stored(&data, &[], 30).await;
    // Some more that the consumer may not have stored yet when the process dies.
    acked.extend(ingest(&server, who, 30, 30).await);
    server.kill_9();

    // A backup of the id file from before any of them.
    fs::write(data.join("ids/location.next"), "1").unwrap();
    let server = serve(&data, &[]).await;
    let fresh = ingest(&server, who, 60, 20).await;
    let before = max_id(&acked);
    for (id, _) in &fresh {
        assert!(
            *id > before,
            "new id {id} is not above {before}, an id already used"
        );
    }
    all_stored(&server, &acked).await;
    all_stored(&server, &fresh).await;
}

/// The value `server` reports for the metric `series` (its name and labels), if any.
async fn metric(server: &RoleProc, series: &str) -> Option<String> {
    let metrics = reqwest::get(format!("{}/metrics", server.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')
            .map(str::to_string)
    })
}

/// The pings the consumer reports stored since the process started, by its metrics.
async fn stored_since_start(server: &RoleProc) -> u64 {
    metric(
        server,
        "udaconnect_consumer_records_total{outcome=\"stored\"}",
    )
    .await
    .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_offset_file_is_recovered_from_the_store_without_reading_the_log_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut server, who, mut acked) = serve_with_stored(&data, &[], 20).await;
    // The consumer commits once the log has gone quiet, a moment after it stored.
    let offset = data.join("log/location/groups/location-consumer.offset");
    eventually("the consumer committed", PATIENCE, || async {
        offset.exists().then_some(())
    })
    .await;
    server.kill_9();

    fs::write(&offset, b"\x00\xffnot an offset").unwrap();
    let server = serve(&data, &[]).await;
    // Recovered before the consumer started: right after the 20 records the store holds.
    assert_eq!(fs::read_to_string(&offset).unwrap(), "20");
    assert_eq!(
        fs::read(offset.with_extension("offset.bad")).unwrap(),
        b"\x00\xffnot an offset",
        "the bad file is kept aside"
    );
    acked.extend(ingest(&server, who, 20, 20).await);
    all_stored(&server, &acked).await;
    // Only the new pings were read and stored, none of the 20 before them again.
    assert_eq!(stored_since_start(&server).await, 20);
    let logged = server.log_lines().iter().any(|l| {
        l["position"] == 20
            && l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("committed offset unreadable"))
    });
    assert!(logged, "the recovered position is logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_location_store_is_rebuilt_from_the_log_before_ready() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut server, _, acked) = serve_with_stored(&data, &[], 50).await;
    server.kill_9();

    remove_location_store(&data);
    let server = serve(&data, &[]).await;
    // Ready means rebuilt: every location answers at once.
    for (id, body) in &acked {
        let got = stored(&server, *id)
            .await
            .unwrap_or_else(|| panic!("location {id} missing once ready"));
        assert_eq!(got["latitude"], body["latitude"], "location {id}");
    }
    let logged = server
        .log_lines()
        .iter()
        .any(|l| l["message"] == "location store rebuilt from the log");
    assert!(logged, "the rebuild is logged");
}

/// Runs `udaconnect <args> --data-dir DATA` until it exits (it must, within 30 s): its status
/// and its log.
fn run_until_exit(args: &[&str], data: &Path) -> (std::process::ExitStatus, String) {
    let out = run_to_end(Path::new(BIN), args, data, "", PATIENCE);
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn segments(data: &Path) -> Vec<PathBuf> {
    let mut s: Vec<PathBuf> = fs::read_dir(data.join("log/location"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    s.sort();
    s
}

/// `--log-retention stored` deletes segments once stored; the store is then the only copy of
/// their records: `replay` refuses to clear it, a missing store refuses the start, and
/// `replay --partial` stores what the log holds over the store as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_segments_are_deleted_and_the_store_is_then_the_only_copy() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        // Closed segments as a long-running log has them (small here): records the consumer
        // cannot store, which it dead-letters and commits past like any other.
        let options = EmbeddedLogOptions {
            segment_bytes: 1024,
            ..EmbeddedLogOptions::default()
        };
        let log = EmbeddedLog::open(data.join("log"), options).unwrap();
        for i in 0..40u64 {
            let record = LogRecord {
                key: Some(i.to_string().into_bytes()),
                value: vec![b'x'; 100],
                headers: Vec::new(),
                timestamp_ms: 0,
            };
            log.append("location", vec![record]).await.unwrap();
        }
    }
    let before = segments(&data);
    assert!(before.len() > 2, "{before:?}");
    let (mut server, _, acked) = serve_with_stored(&data, &["--log-retention", "stored"], 20).await;
    eventually("stored segments deleted", PATIENCE, || async {
        (segments(&data).len() == 1).then_some(())
    })
    .await;
    assert_eq!(segments(&data), before[before.len() - 1..]);
    server.kill_9();

    let (status, err) = run_until_exit(&["replay"], &data);
    assert!(!status.success());
    assert!(err.contains("--partial"), "{err}");

    remove_location_store(&data);
    let (status, err) = run_until_exit(
        &["serve", "--listen", "127.0.0.1:0", "--grpc-listen", "off"],
        &data,
    );
    assert!(!status.success());
    assert!(
        err.contains("location store") && err.contains("no longer holds") && err.contains("backup"),
        "{err}"
    );

    let (status, err) = run_until_exit(&["replay", "--partial"], &data);
    assert!(status.success(), "{err}");
    let server = serve(&data, &[]).await;
    all_stored(&server, &acked).await;
}

/// A tmpfs of `mib` MiB mounted for the test (on a directory kept while it lives), unmounted
/// when dropped.
struct Tmpfs(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Tmpfs {
    /// `None` (with the reason printed) where this test may not mount file systems.
    fn mount(mib: u32) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.path().to_path_buf(), dir)),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here (needs root): {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: no mount command: {e}");
                None
            }
        }
    }

    /// Free bytes on it.
    fn free(&self) -> u64 {
        let s = rustix::fs::statvfs(&self.0).unwrap();
        s.f_bavail * s.f_frsize
    }

    /// A file taking all but `leave` bytes of the free space (0: every byte).
    fn fill(&self, leave: u64) -> PathBuf {
        let path = self.0.join("filler");
        let mut f = fs::File::create(&path).unwrap();
        let chunk = vec![0x55u8; 64 << 10];
        let mut left = self.free().saturating_sub(leave);
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if std::io::Write::write_all(&mut f, &chunk[..n]).is_err() {
                break;
            }
            left -= n as u64;
        }
        let _ = f.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

async fn ready_status(server: &RoleProc) -> u16 {
    reqwest::get(format!("{}/ready", server.base()))
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A 503 problem with Retry-After.
async fn assert_unavailable(r: reqwest::Response) {
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"), "{:?}", r.headers());
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["status"], 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_fails_ready_and_recovers_losing_nothing() {
    let Some(fs_) = Tmpfs::mount(48) else {
        return;
    };
    let data = fs_.0.join("data");
    let mut acked = Vec::new();
    {
        // Below the minimum: refused before anything is written.
        let server = serve(
            &data,
            &["--disk-min-free", "16MiB", "--disk-low-space", "24MiB"],
        )
        .await;
        let who = person(&server).await;
        acked.extend(ingest(&server, who, 0, 20).await);
        let filler = fs_.fill(8 << 20);
        eventually("not ready on a nearly full disk", PATIENCE, || async {
            (ready_status(&server).await == 503).then_some(())
        })
        .await;
        let ready =
            json_answer(reqwest::Client::new().get(format!("{}/ready", server.base()))).await;
        let detail = ready["detail"].as_str().unwrap();
        assert!(detail.contains("disk"), "{ready}");
        assert_unavailable(post(&server, &ping(who, 20)).await).await;
        let free: u64 = metric(&server, "udaconnect_disk_free_bytes")
            .await
            .expect("the free-space metric")
            .trim()
            .parse()
            .unwrap();
        assert!(free < 16 << 20, "{free}");
        fs::remove_file(filler).unwrap();
        eventually("ready once space returns", PATIENCE, || async {
            (ready_status(&server).await == 200).then_some(())
        })
        .await;
        acked.extend(ingest(&server, who, 21, 20).await);
        all_stored(&server, &acked).await;
    }
    // With no minimum the disk runs out under the writes themselves: the id file's write (the
    // first ping after a start leases ids) and the log's answer 503, never 500.
    let mut server = serve(&data, &["--disk-min-free", "0"]).await;
    let who = acked[0].1["person_id"].as_i64().unwrap();
    let filler = fs_.fill(0);
    // The lease of this start's first ids cannot be written.
    assert_unavailable(post(&server, &ping(who, 100)).await).await;
    for n in 101..110 {
        let r = post(&server, &ping(who, n)).await;
        if r.status() == 202 {
            // Room the log had set aside before the disk filled.
            let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
            acked.push((id, ping(who, n)));
        } else {
            assert_unavailable(r).await;
        }
    }
    fs::remove_file(filler).unwrap();
    acked.extend(ingest(&server, who, 200, 10).await);
    all_stored(&server, &acked).await;
    server.kill_9();
}

/// What organizers see stands among at least two people: a smaller `--k-anonymity` (flag or
/// environment) is refused at start, as is a venue plan that cannot be read; connection-api
/// takes the same flags.
#[test]
fn k_below_two_and_unreadable_venues_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for k in ["1", "0"] {
        let (status, err) = run_until_exit(&["serve", "--k-anonymity", k], &data);
        assert!(!status.success(), "{k}");
        assert!(err.contains("--k-anonymity"), "{k}: {err}");
    }
    let from_env = udaconnect_testkit::process::output_within(
        Command::new(BIN)
            .arg("connection-api")
            .env("UDACONNECT_K_ANONYMITY", "1"),
        None,
        PATIENCE,
    );
    assert!(!from_env.status.success());
    let err = String::from_utf8_lossy(&from_env.stderr);
    assert!(err.contains("--k-anonymity"), "{err}");
    let missing = dir.path().join("no-such-plan.json");
    let (status, err) = run_until_exit(&["serve", "--venue", missing.to_str().unwrap()], &data);
    assert!(!status.success());
    assert!(err.contains("--venue"), "{err}");
    let bad = dir.path().join("plan.json");
    fs::write(&bad, r#"{"name": "hall"}"#).unwrap();
    let (status, err) = run_until_exit(&["serve", "--venue", bad.to_str().unwrap()], &data);
    assert!(!status.success());
    assert!(err.contains("not a venue plan"), "{err}");
}

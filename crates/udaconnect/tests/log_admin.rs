//! A damaged embedded log as an operator meets it: `serve` refuses to start and says where,
//! `log check` reports it, `log repair` backs up and repairs it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use udaconnect_core::ports::Log;
use udaconnect_core::record::LogRecord;
use udaconnect_log::frame::{self, Decoded};
use udaconnect_log::EmbeddedLog;
use udaconnect_testkit::process::{assert_help_names, run_to_end};

const BIN: &str = env!("CARGO_BIN_EXE_udaconnect");

/// A data directory whose log holds `n` records in the `location` topic, and its segment.
async fn data_dir_with_log(n: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path().join("log"), Default::default()).unwrap();
    let records = (0..n)
        .map(|i| LogRecord {
            key: Some(i.to_string().into_bytes()),
            value: format!(r#"{{"n":{i}}}"#).into_bytes(),
            headers: Vec::new(),
            timestamp_ms: i as i64,
        })
        .collect();
    log.append("location", records).await.unwrap();
    let segment = dir
        .path()
        .join("log/location")
        .join(format!("{:020}.seg", 0));
    (dir, segment)
}

/// Where frame `i` of a segment starts.
fn frame_start(segment: &Path, i: usize) -> usize {
    let bytes = fs::read(segment).unwrap();
    let mut at = 0;
    for _ in 0..i {
        match frame::decode(&bytes[at..]) {
            Decoded::Record { len, .. } => at += len,
            other => panic!("{other:?}"),
        }
    }
    at
}

fn flip(segment: &Path, byte: usize) {
    udaconnect_testkit::local::flip_byte(segment, byte as u64);
}

/// Runs the binary with `stdin` as its input, failing the test if it does not end in 30 s.
fn run(args: &[&str], dir: &Path, stdin: &str) -> Output {
    run_to_end(Path::new(BIN), args, dir, stdin, Duration::from_secs(30))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn serve_refuses_a_corrupt_log_and_check_and_repair_resolve_it() {
    let (dir, segment) = data_dir_with_log(500).await;
    let start = frame_start(&segment, 200);
    flip(&segment, start + 20);
    let damaged = fs::read(&segment).unwrap();

    let serve = run(
        &["serve", "--listen", "127.0.0.1:0", "--grpc-listen", "off"],
        dir.path(),
        "",
    );
    assert!(!serve.status.success());
    let stderr = text(&serve.stderr);
    let said = format!(
        "log segment {} is corrupt at byte {start} (record 200): 299 valid records follow the \
         damaged one; run `udaconnect log check --data-dir {}`",
        segment.display(),
        dir.path().display()
    );
    assert!(stderr.contains(&said), "{stderr}");
    assert_eq!(
        fs::read(&segment).unwrap(),
        damaged,
        "start-up changed nothing"
    );

    let check = run(&["log", "check"], dir.path(), "");
    assert_eq!(check.status.code(), Some(1));
    let report = text(&check.stdout);
    assert!(
        report.contains(&format!("corruption at byte {start}"))
            && report.contains("record 200 unreadable, 299 valid records follow"),
        "{report}"
    );
    let json = run(&["log", "check", "--json"], dir.path(), "");
    assert_eq!(json.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["corrupt"], true);
    let problem = &json["topics"][0]["segments"][0]["problems"][0];
    assert_eq!(
        (&problem["kind"], &problem["byte"], &problem["record"]),
        (&"corruption".into(), &start.into(), &200.into())
    );

    let declined = run(&["log", "repair"], dir.path(), "n\n");
    assert!(!declined.status.success());
    assert!(text(&declined.stderr).contains("nothing changed"));
    assert_eq!(fs::read(&segment).unwrap(), damaged);

    let repair = run(&["log", "repair"], dir.path(), "y\n");
    assert!(repair.status.success(), "{}", text(&repair.stderr));
    let said = text(&repair.stdout);
    assert!(said.contains("(record 200)"), "{said}");
    let backups: Vec<PathBuf> = fs::read_dir(dir.path().join("log/backup/location"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(backups.len(), 1);
    assert!(said.contains(&backups[0].display().to_string()), "{said}");
    assert_eq!(fs::read(&backups[0]).unwrap(), damaged);

    let check = run(&["log", "check"], dir.path(), "");
    assert!(check.status.success(), "{}", text(&check.stdout));
    assert!(text(&check.stdout).contains("no record 200 (gap)"));
    let again = run(&["log", "repair", "--yes"], dir.path(), "");
    assert!(again.status.success());
    assert!(text(&again.stdout).contains("nothing to repair"));
}

#[tokio::test]
async fn a_torn_tail_alone_is_reported_but_no_error() {
    let (dir, segment) = data_dir_with_log(50).await;
    flip(&segment, frame_start(&segment, 49) + 20);
    let check = run(&["log", "check"], dir.path(), "");
    assert!(check.status.success());
    assert!(text(&check.stdout).contains("torn tail at byte"));
}

#[tokio::test]
async fn repair_is_refused_while_the_log_is_open() {
    let (dir, segment) = data_dir_with_log(50).await;
    let running = EmbeddedLog::open(dir.path().join("log"), Default::default()).unwrap();
    flip(&segment, frame_start(&segment, 10) + 20);
    let damaged = fs::read(&segment).unwrap();
    let repair = run(&["log", "repair", "--yes"], dir.path(), "");
    assert!(!repair.status.success());
    assert!(text(&repair.stderr).contains("held by another process"));
    assert_eq!(fs::read(&segment).unwrap(), damaged);
    drop(running);
    assert!(run(&["log", "repair", "--yes"], dir.path(), "")
        .status
        .success());
    assert_ne!(fs::read(&segment).unwrap(), damaged);
}

#[test]
fn help_says_what_the_log_commands_do() {
    let bin = Path::new(BIN);
    assert_help_names(bin, &["log"], &["check", "repair"]);
    let check = [
        "--data-dir",
        "UDACONNECT_DATA_DIR",
        "--json",
        "Exits 1 on corruption",
    ];
    assert_help_names(bin, &["log", "check"], &check);
    let repair = [
        "--yes",
        "--topic",
        "DIR/log/backup/<topic>/<segment>.<unix-time>",
    ];
    assert_help_names(bin, &["log", "repair"], &repair);
}

//! The Kafka log against a real broker: `scripts/kafka start` runs one on 127.0.0.1:9092
//! (`UDACONNECT_TEST_KAFKA` points elsewhere). Every test uses its own topics and groups, so
//! tests run in parallel on one broker. The restart test runs a private broker of its own
//! (the `tansu` binary from `scripts/kafka install`, or `UDACONNECT_TANSU`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use udaconnect_core::ports::{Consumed, Log, LogConsumer, StartFrom};
use udaconnect_core::record::LogRecord;
use udaconnect_core::ErrorCode;
use udaconnect_log::{KafkaLog, KafkaOptions};

fn broker() -> String {
    std::env::var("UDACONNECT_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A name no other test (or earlier run against the same broker) uses.
fn unique(what: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "test-{what}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Logs of the log and of librdkafka, when `UDACONNECT_TEST_LOG` asks for them (`debug`);
/// `UDACONNECT_TEST_KAFKA_DEBUG` turns on librdkafka's own debug contexts (`broker,cgrp,eos`).
fn options() -> KafkaOptions {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env(
            "UDACONNECT_TEST_LOG",
        ))
        .with_test_writer()
        .try_init();
    let mut options = KafkaOptions::default();
    if let Ok(contexts) = std::env::var("UDACONNECT_TEST_KAFKA_DEBUG") {
        options.client_config.push(("debug".into(), contexts));
    }
    options
}

fn connect() -> KafkaLog {
    KafkaLog::connect(&broker(), options()).expect("kafka log")
}

fn record(key: Option<&str>, value: &str, timestamp_ms: i64) -> LogRecord {
    LogRecord {
        key: key.map(|k| k.as_bytes().to_vec()),
        value: value.as_bytes().to_vec(),
        headers: Vec::new(),
        timestamp_ms,
    }
}

fn value(c: &Consumed) -> String {
    String::from_utf8_lossy(&c.record.value).into_owned()
}

/// Polls until `want` records came or `within` passed.
async fn collect(consumer: &mut dyn LogConsumer, want: usize, within: Duration) -> Vec<Consumed> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < want && Instant::now() < deadline {
        out.extend(
            consumer
                .poll(want - out.len(), Duration::from_millis(500))
                .await
                .expect("poll"),
        );
    }
    out
}

/// Polls for `for_how_long` and returns whatever came (expected: nothing).
async fn drain(consumer: &mut dyn LogConsumer, for_how_long: Duration) -> Vec<Consumed> {
    let deadline = Instant::now() + for_how_long;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        out.extend(
            consumer
                .poll(100, Duration::from_millis(300))
                .await
                .expect("poll"),
        );
    }
    out
}

const PATIENCE: Duration = Duration::from_secs(40);

/// Appends one record per call, so that each is a batch of its own on the broker. tansu (0.6,
/// memory engine) answers a fetch only from the first offset of a stored batch on: a group
/// resuming from a commit inside a batch would skip the rest of that batch. Tests that resume
/// from arbitrary commits keep every offset a batch start, so they test the adapter, not that.
async fn append_one_by_one(log: &KafkaLog, topic: &str, records: Vec<LogRecord>) {
    for r in records {
        log.append(topic, vec![r]).await.expect("append");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_answers() {
    connect()
        .ping()
        .await
        .expect("the test broker answers: start it with scripts/kafka start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appended_records_come_back_in_order_per_key_with_everything_intact() {
    let log = connect();
    let topic = unique("order");
    let base_ts = 1_594_117_026_000i64;
    let mut sent = Vec::new();
    for i in 0..30 {
        let key = format!("person-{}", i % 4);
        let mut r = record(Some(&key), &format!("{key}/{i}"), base_ts + i);
        r.headers = vec![
            ("correlation_id".into(), format!("corr-{i}").into_bytes()),
            ("binary".into(), vec![0xff, 0x00, i as u8]),
            ("empty".into(), Vec::new()),
        ];
        sent.push(r);
    }
    // Two appends: order must hold across calls too.
    log.append(&topic, sent[..13].to_vec())
        .await
        .expect("append");
    log.append(&topic, sent[13..].to_vec())
        .await
        .expect("append");

    let mut consumer = log
        .consumer(&topic, &unique("group"), StartFrom::Earliest)
        .await
        .expect("consumer");
    let got = collect(consumer.as_mut(), sent.len(), PATIENCE).await;
    assert_eq!(got.len(), sent.len(), "every record comes back");

    let by_value: HashMap<String, &LogRecord> = sent
        .iter()
        .map(|r| (String::from_utf8_lossy(&r.value).into_owned(), r))
        .collect();
    for c in &got {
        let original = by_value.get(&value(c)).expect("a record that was sent");
        assert_eq!(&c.record, *original, "key, value, headers and time intact");
    }
    let positions: HashSet<(i32, i64)> = got
        .iter()
        .map(|c| (c.position.partition, c.position.offset))
        .collect();
    assert_eq!(positions.len(), got.len(), "positions are unique");

    let mut per_key: BTreeMap<Vec<u8>, Vec<&Consumed>> = BTreeMap::new();
    for c in &got {
        per_key
            .entry(c.record.key.clone().unwrap_or_default())
            .or_default()
            .push(c);
    }
    for (key, records) in per_key {
        let partitions: HashSet<i32> = records.iter().map(|c| c.position.partition).collect();
        assert_eq!(partitions.len(), 1, "one key, one partition");
        let times: Vec<i64> = records.iter().map(|c| c.record.timestamp_ms).collect();
        let mut sorted = times.clone();
        sorted.sort_unstable();
        assert_eq!(
            times,
            sorted,
            "records of key {} in append order",
            String::from_utf8_lossy(&key)
        );
    }
    let partitions: HashSet<i32> = got.iter().map(|c| c.position.partition).collect();
    assert!(
        partitions.len() > 1,
        "keys spread over the topic's partitions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_send_queue_makes_appends_wait_not_fail() {
    let mut options = options();
    // A local queue far smaller than one append: every append meets a full queue.
    options
        .client_config
        .push(("queue.buffering.max.messages".into(), "10".into()));
    let log = KafkaLog::connect(&broker(), options).expect("kafka log");
    let topic = unique("queue");
    let sent: Vec<LogRecord> = (0..500)
        .map(|i| record(Some(&format!("k{i}")), &format!("q-{i}"), 1_000 + i))
        .collect();
    let (one, two) = tokio::join!(
        log.append(&topic, sent[..250].to_vec()),
        log.append(&topic, sent[250..].to_vec())
    );
    one.expect("append waits for room");
    two.expect("append waits for room");

    let mut consumer = log
        .consumer(&topic, &unique("group"), StartFrom::Earliest)
        .await
        .expect("consumer");
    let got = collect(consumer.as_mut(), 500, PATIENCE).await;
    let values: HashSet<String> = got.iter().map(value).collect();
    assert_eq!(values.len(), 500, "every record stored once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_consumer_of_the_group_resumes_after_the_commit() {
    let log = connect();
    let topic = unique("resume");
    let group = unique("group");
    let first: Vec<LogRecord> = (0..10)
        .map(|i| record(Some(&format!("k{i}")), &format!("first-{i}"), 1_000 + i))
        .collect();
    log.append(&topic, first).await.expect("append");

    let mut a = log
        .consumer(&topic, &group, StartFrom::Earliest)
        .await
        .expect("consumer");
    let got = collect(a.as_mut(), 10, PATIENCE).await;
    assert_eq!(got.len(), 10);
    a.commit().await.expect("commit");
    drop(a);

    let second: Vec<LogRecord> = (0..5)
        .map(|i| record(Some(&format!("k{i}")), &format!("second-{i}"), 2_000 + i))
        .collect();
    log.append(&topic, second).await.expect("append");

    let mut b = log
        .consumer(&topic, &group, StartFrom::Earliest)
        .await
        .expect("consumer");
    let mut got = collect(b.as_mut(), 5, PATIENCE).await;
    got.extend(drain(b.as_mut(), Duration::from_secs(2)).await);
    let mut values: Vec<String> = got.iter().map(value).collect();
    values.sort();
    assert_eq!(
        values,
        (0..5).map(|i| format!("second-{i}")).collect::<Vec<_>>(),
        "exactly the records after the commit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_not_committed_are_delivered_again() {
    let log = connect();
    let topic = unique("redeliver");
    let group = unique("group");
    let sent: Vec<LogRecord> = (0..12)
        .map(|i| record(Some(&format!("k{i}")), &format!("r-{i}"), 1_000 + i))
        .collect();
    append_one_by_one(&log, &topic, sent).await;

    let mut a = log
        .consumer(&topic, &group, StartFrom::Earliest)
        .await
        .expect("consumer");
    let committed = collect(a.as_mut(), 1, PATIENCE).await;
    assert_eq!(committed.len(), 1);
    a.commit().await.expect("commit");
    // The rest is read but never committed: as if the store write had not finished.
    let rest = collect(a.as_mut(), 11, PATIENCE).await;
    assert_eq!(rest.len(), 11);
    drop(a);

    let mut b = log
        .consumer(&topic, &group, StartFrom::Earliest)
        .await
        .expect("consumer");
    let mut again = collect(b.as_mut(), 11, PATIENCE).await;
    again.extend(drain(b.as_mut(), Duration::from_secs(2)).await);
    let mut again: Vec<String> = again.iter().map(value).collect();
    again.sort();
    let mut expected: Vec<String> = rest.iter().map(value).collect();
    expected.sort();
    assert_eq!(
        again, expected,
        "everything after the commit, and nothing before it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_of_a_group_share_the_partitions_and_see_each_record_once() {
    let log = connect();
    let topic = unique("share");
    let group = unique("group");
    let mut a = log
        .consumer(&topic, &group, StartFrom::Earliest)
        .await
        .expect("consumer");
    let mut b = log
        .consumer(&topic, &group, StartFrom::Earliest)
        .await
        .expect("consumer");

    // Records keep coming while the group forms, so partitions move between members while
    // there is traffic, as in a rolling restart.
    let mut sent = 0usize;
    let mut seen: HashMap<String, Vec<&str>> = HashMap::new();
    let mut quiet_rounds = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let both_have_some = ["a", "b"]
            .iter()
            .all(|m| seen.values().any(|by| by.contains(m)));
        if sent < 300 && !(both_have_some && sent >= 30) {
            // One record per append: see `append_one_by_one`.
            for _ in 0..3 {
                let r = record(Some(&format!("k{sent}")), &format!("s-{sent}"), 1_000);
                log.append(&topic, vec![r]).await.expect("append");
                sent += 1;
            }
        }
        let mut progress = false;
        for (name, member) in [("a", &mut a), ("b", &mut b)] {
            let got = member
                .poll(20, Duration::from_millis(200))
                .await
                .expect("poll");
            progress |= !got.is_empty();
            // Committed right after each poll, as the location consumer does after its write.
            member.commit().await.expect("commit");
            for c in got {
                seen.entry(value(&c)).or_default().push(name);
            }
        }
        quiet_rounds = if progress { 0 } else { quiet_rounds + 1 };
        if both_have_some && seen.len() == sent && quiet_rounds >= 3 {
            break;
        }
    }
    assert_eq!(seen.len(), sent, "every record seen: {seen:?}");
    let twice: Vec<_> = seen.iter().filter(|(_, by)| by.len() > 1).collect();
    assert!(twice.is_empty(), "records seen more than once: {twice:?}");
    let by_a = seen.values().filter(|by| by[0] == "a").count();
    assert!(
        by_a > 0 && by_a < sent,
        "both members got partitions ({by_a} of {sent} went to a)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_starting_at_latest_skips_what_was_there() {
    let log = connect();
    let topic = unique("latest");
    let old: Vec<LogRecord> = (0..6)
        .map(|i| record(Some(&format!("k{i}")), &format!("old-{i}"), 1_000 + i))
        .collect();
    log.append(&topic, old).await.expect("append");

    let mut consumer = log
        .consumer(&topic, &unique("group"), StartFrom::Latest)
        .await
        .expect("consumer");
    // When the group's start is fixed depends on the join: keep appending until records come.
    let mut got = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    let mut i = 0;
    while got.is_empty() && Instant::now() < deadline {
        log.append(
            &topic,
            vec![record(Some("k"), &format!("new-{i}"), 5_000 + i)],
        )
        .await
        .expect("append");
        i += 1;
        got = consumer
            .poll(100, Duration::from_millis(500))
            .await
            .expect("poll");
    }
    assert!(!got.is_empty(), "new records arrive");
    for c in &got {
        assert!(
            value(c).starts_with("new-"),
            "{} was there before",
            value(c)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_counts_records_not_yet_returned() {
    let log = connect();
    let topic = unique("lag");
    let mut consumer = log
        .consumer(&topic, &unique("group"), StartFrom::Earliest)
        .await
        .expect("consumer");
    let sent: Vec<LogRecord> = (0..20)
        .map(|i| record(Some(&format!("k{i}")), &format!("l-{i}"), 1_000 + i))
        .collect();
    log.append(&topic, sent).await.expect("append");
    let got = collect(consumer.as_mut(), 20, PATIENCE).await;
    assert_eq!(got.len(), 20);
    // Best effort, from statistics refreshed every second: once known, nothing is left.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut lag = consumer.lag();
    while lag != Some(0) && Instant::now() < deadline {
        consumer
            .poll(1, Duration::from_millis(300))
            .await
            .expect("poll");
        lag = consumer.lag();
    }
    assert_eq!(lag, Some(0));
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

fn quick_options() -> KafkaOptions {
    KafkaOptions {
        delivery_timeout: Duration::from_secs(2),
        ..options()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appending_without_a_broker_fails_within_the_delivery_timeout() {
    let address = format!("127.0.0.1:{}", closed_port());
    let log = KafkaLog::connect(&address, quick_options()).expect("connect works without broker");

    let started = Instant::now();
    let err = log
        .append("location", vec![record(None, "{}", 1)])
        .await
        .expect_err("no broker, no append");
    assert_eq!(err.code(), ErrorCode::Unavailable, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "failed after {:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let err = log.ping().await.expect_err("no broker answers");
    assert_eq!(err.code(), ErrorCode::Unavailable, "{err}");
    assert!(started.elapsed() < Duration::from_secs(4));

    let started = Instant::now();
    let err = log
        .consumer("location", "nobody", StartFrom::Earliest)
        .await
        .err()
        .expect("no broker, no consumer");
    assert_eq!(err.code(), ErrorCode::Unavailable, "{err}");
    assert!(started.elapsed() < Duration::from_secs(6));
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the original-style producer; true when every record was acknowledged.
fn produce_original(topic: &str, lines: &[u8], raw: bool) -> bool {
    use std::io::Write;
    let mut command = Command::new(repo_root().join("scripts/kafka-produce-original"));
    command
        .args(["--brokers", &broker(), "--topic", topic, "--timeout", "3"])
        .stdin(Stdio::piped());
    if raw {
        command.arg("--raw");
    }
    let mut child = command.spawn().expect("run scripts/kafka-produce-original");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(lines)
        .expect("write records");
    child.wait().expect("wait for the producer").success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_the_original_producer_come_without_key() {
    let topic = unique("original");
    // The broker does not create topics on first produce: the log creates its topics from
    // `connect` on, before anything of its own is appended or consumed.
    let log = KafkaLog::connect(
        &broker(),
        KafkaOptions {
            create_topics: vec![topic.clone()],
            ..options()
        },
    )
    .expect("kafka log");
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let ping = br#"{"person_id": 5, "latitude": 37.5, "longitude": -122.2}"#;
    let mut lines = ping.to_vec();
    lines.push(b'\n');
    let producer_topic = topic.clone();
    tokio::task::spawn_blocking(move || {
        // Until the topic exists, the producer's records time out: try again a few times.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !produce_original(&producer_topic, &lines, false) {
            assert!(Instant::now() < deadline, "the topic never appeared");
        }
        assert!(produce_original(
            &producer_topic,
            b"\xff\xfe not json\n",
            true
        ));
    })
    .await
    .expect("producer");

    let mut consumer = log
        .consumer(&topic, &unique("group"), StartFrom::Earliest)
        .await
        .expect("consumer");
    let got = collect(consumer.as_mut(), 2, PATIENCE).await;
    assert_eq!(got.len(), 2);
    let json = got
        .iter()
        .find(|c| c.record.value == ping)
        .expect("the JSON ping");
    assert_eq!(json.record.key, None, "no key, as the original sent");
    assert!(json.record.headers.is_empty());
    assert!(
        json.record.timestamp_ms >= before - 60_000,
        "the producer's time: {}",
        json.record.timestamp_ms
    );
    assert!(
        got.iter()
            .any(|c| c.record.value == b"\xff\xfe not json" && c.record.key.is_none()),
        "garbage comes through as it is"
    );
}

/// A private broker, stopped when dropped.
struct Broker {
    child: Option<Child>,
    port: u16,
}

fn tansu() -> PathBuf {
    if let Ok(path) = std::env::var("UDACONNECT_TANSU") {
        return path.into();
    }
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo")
        });
    let installed = home.join("bin/tansu");
    if installed.exists() {
        installed
    } else {
        "tansu".into()
    }
}

impl Broker {
    fn start(port: u16) -> Broker {
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu())
            .args(["broker", "--cluster-id", "udaconnect-test"])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu: run scripts/kafka install");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu does not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker {
            child: Some(child),
            port,
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Appends until one succeeds; each attempt fails within the delivery timeout while down.
async fn append_until_ok(log: &KafkaLog, topic: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        match log.append(topic, vec![record(Some("k"), "{}", 1)]).await {
            Ok(()) => return,
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::Unavailable, "{e}");
                assert!(Instant::now() < deadline, "appends do not recover: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_recover_by_themselves_when_the_broker_comes_back() {
    let port = closed_port();
    let log = KafkaLog::connect(&format!("127.0.0.1:{port}"), quick_options()).expect("connect");
    let topic = "location";

    let err = log
        .append(topic, vec![record(None, "{}", 1)])
        .await
        .expect_err("the broker is not there yet");
    assert_eq!(err.code(), ErrorCode::Unavailable);

    let mut broker = Broker::start(port);
    append_until_ok(&log, topic, Duration::from_secs(30)).await;
    log.ping().await.expect("ping");

    broker.stop();
    let started = Instant::now();
    let err = log
        .append(topic, vec![record(None, "{}", 2)])
        .await
        .expect_err("the broker is gone");
    assert_eq!(err.code(), ErrorCode::Unavailable, "{err}");
    assert!(started.elapsed() < Duration::from_secs(6));

    // A new broker in memory starts empty: the topic is created again on the way.
    let _broker = Broker::start(broker.port);
    append_until_ok(&log, topic, Duration::from_secs(30)).await;

    let mut consumer = log
        .consumer(topic, &unique("group"), StartFrom::Earliest)
        .await
        .expect("consumer");
    let got = collect(consumer.as_mut(), 1, PATIENCE).await;
    assert_eq!(
        got.len(),
        1,
        "the record appended after the restart is there"
    );
}

//! What only the Kafka log does, against a real broker: members of a group sharing
//! partitions, a full send queue, no broker, a broker that comes back, the original producer's
//! keyless records, offsets without a record to read (holes). Tests use the shared broker
//! (`scripts/kafka start`, or `UDACONNECT_TEST_KAFKA`) with topics and groups of their own,
//! except the restart test and the static-membership tests, which run a private one
//! ([`Broker`]): a coordinator that has served every other test's groups all run long can be
//! slow to complete a static member's rejoin. What every log engine does is the conformance
//! suite's
//! (`tests/log_suite.rs`).

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use udaconnect_core::ports::{Log, LogConsumer, StartFrom};
use udaconnect_core::record::LogRecord;
use udaconnect_core::ErrorCode;
use udaconnect_log::{KafkaLog, KafkaOptions};
use udaconnect_testkit::kafka::{client_debug, shared_broker, Broker};
use udaconnect_testkit::local::init_tracing;
use udaconnect_testkit::log_suite::{
    collect, drain, member, reader, record, records, value, PATIENCE,
};
use udaconnect_testkit::{eventually, free_port, repo_root, unique};

fn options() -> KafkaOptions {
    init_tracing();
    KafkaOptions {
        client_config: client_debug(),
        ..KafkaOptions::default()
    }
}

fn connect() -> KafkaLog {
    KafkaLog::connect(&shared_broker(), options()).expect("kafka log")
}

fn quick_options() -> KafkaOptions {
    KafkaOptions {
        delivery_timeout: Duration::from_secs(2),
        ..options()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_send_queue_makes_appends_wait_not_fail() {
    let mut options = options();
    // A local queue far smaller than one append: every append meets a full queue.
    options
        .client_config
        .push(("queue.buffering.max.messages".into(), "10".into()));
    let log = KafkaLog::connect(&shared_broker(), options).expect("kafka log");
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

    let mut consumer = reader(&log, &topic).await;
    let got = collect(consumer.as_mut(), 500, PATIENCE).await;
    let values: HashSet<String> = got.iter().map(value).collect();
    assert_eq!(values.len(), 500, "every record stored once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_of_a_group_share_the_partitions_and_see_each_record_once() {
    let log = connect();
    let topic = unique("share");
    let group = unique("group");
    let mut a = member(&log, &topic, &group, StartFrom::Earliest).await;
    let mut b = member(&log, &topic, &group, StartFrom::Earliest).await;

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
async fn appending_without_a_broker_fails_within_the_delivery_timeout() {
    let address = format!("127.0.0.1:{}", free_port());
    let log = KafkaLog::connect(&address, quick_options()).expect("connect works without broker");

    append_fails_unavailable(&log, "location", 1, "no broker, no append").await;

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

/// Runs the original-style producer; true when every record was acknowledged.
fn produce_original(topic: &str, lines: &[u8], raw: bool) -> bool {
    use std::io::Write;
    let mut command = Command::new(repo_root().join("scripts/kafka-produce-original"));
    command
        .args([
            "--brokers",
            &shared_broker(),
            "--topic",
            topic,
            "--timeout",
            "3",
        ])
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
        &shared_broker(),
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

    let mut consumer = reader(&log, &topic).await;
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

/// Appends one record at `timestamp_ms` while no broker answers: it fails as unavailable
/// within `quick_options`' delivery timeout and a margin.
async fn append_fails_unavailable(log: &KafkaLog, topic: &str, timestamp_ms: i64, why: &str) {
    let started = Instant::now();
    let err = log
        .append(topic, vec![record(None, "{}", timestamp_ms)])
        .await
        .expect_err(why);
    assert_eq!(err.code(), ErrorCode::Unavailable, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "failed after {:?}",
        started.elapsed()
    );
}

/// Appends until one succeeds; each attempt fails within the delivery timeout while down.
async fn append_until_ok(log: &KafkaLog, topic: &str, within: Duration) {
    eventually("appends to recover", within, || async move {
        match log.append(topic, vec![record(Some("k"), "{}", 1)]).await {
            Ok(()) => Some(()),
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::Unavailable, "{e}");
                None
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_recover_by_themselves_when_the_broker_comes_back() {
    let port = free_port();
    let log = KafkaLog::connect(&format!("127.0.0.1:{port}"), quick_options()).expect("connect");
    let topic = "location";

    let err = log
        .append(topic, vec![record(None, "{}", 1)])
        .await
        .expect_err("the broker is not there yet");
    assert_eq!(err.code(), ErrorCode::Unavailable);

    let mut broker = Broker::start_at(port).await;
    append_until_ok(&log, topic, Duration::from_secs(30)).await;
    log.ping().await.expect("ping");

    broker.kill();
    append_fails_unavailable(&log, topic, 2, "the broker is gone").await;

    // A new broker in memory starts empty: the topic is created again on the way.
    broker.restart().await;
    append_until_ok(&log, topic, Duration::from_secs(30)).await;

    let mut consumer = reader(&log, topic).await;
    let got = collect(consumer.as_mut(), 1, PATIENCE).await;
    assert_eq!(
        got.len(),
        1,
        "the record appended after the restart is there"
    );
}

/// A log on the private `broker` whose consumers join their groups as the static member
/// `instance`.
fn static_member(broker: &Broker, instance: &str, options: KafkaOptions) -> KafkaLog {
    let options = KafkaOptions {
        group_instance_id: Some(instance.to_string()),
        ..options
    };
    KafkaLog::connect(&broker.brokers(), options).expect("kafka log")
}

/// A member that dies without leaving its group (as a SIGKILL leaves it) is replaced at once
/// by its successor under the same static name: the partitions come back within seconds, not
/// after the session timeout, and records appended meanwhile are read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_static_member_takes_its_partitions_back_at_once() {
    let broker = Broker::start().await;
    let topic = unique("static");
    let group = unique("group");
    let instance = unique("member");
    let session_timeout = Duration::from_secs(45);
    let as_member = |id: &str| {
        let options = KafkaOptions {
            static_session_timeout: session_timeout,
            ..options()
        };
        static_member(&broker, id, options)
    };
    let log = as_member(&instance);
    let first_records = (0..30)
        .map(|i| record(Some(&format!("k{i}")), &format!("a-{i}"), 1_000))
        .collect();
    log.append(&topic, first_records).await.expect("append");
    let mut first = member(&log, &topic, &group, StartFrom::Earliest).await;
    assert_eq!(collect(first.as_mut(), 30, PATIENCE).await.len(), 30);
    first.commit().await.expect("commit");
    assert_eq!(
        first.assigned(),
        Some(3),
        "the only member holds every partition"
    );
    // A static member leaves no word when it closes: the group still counts it as there.
    drop(first);
    drop(log);

    let log = as_member(&instance);
    let later = (0..10)
        .map(|i| record(Some(&format!("k{i}")), &format!("b-{i}"), 2_000))
        .collect();
    log.append(&topic, later).await.expect("append");
    let started = Instant::now();
    let mut second = member(&log, &topic, &group, StartFrom::Earliest).await;
    let got = collect(second.as_mut(), 10, session_timeout).await;
    let took = started.elapsed();
    let mut values: Vec<String> = got.iter().map(value).collect();
    values.sort();
    assert_eq!(values.len(), 10, "{values:?}");
    assert!(values.iter().all(|v| v.starts_with("b-")), "{values:?}");
    assert!(
        took < session_timeout / 3,
        "the successor waited {took:?} for its partitions"
    );
    assert_eq!(second.assigned(), Some(3));
}

/// A member of a group with more members than partitions holds none, and says so: what
/// `/ready` of location-consumer reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_tells_how_many_partitions_it_holds() {
    let log = KafkaLog::connect(
        &shared_broker(),
        KafkaOptions {
            topic_partitions: 1,
            ..options()
        },
    )
    .expect("kafka log");
    let topic = unique("held");
    let group = unique("group");
    log.append(&topic, vec![record(Some("k"), "x", 1_000)])
        .await
        .expect("append");
    let mut a = member(&log, &topic, &group, StartFrom::Earliest).await;
    let mut b = member(&log, &topic, &group, StartFrom::Earliest).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut held = (None, None);
    while Instant::now() < deadline {
        a.poll(10, Duration::from_millis(200)).await.expect("poll");
        b.poll(10, Duration::from_millis(200)).await.expect("poll");
        held = (a.assigned(), b.assigned());
        if matches!(held, (Some(1), Some(0)) | (Some(0), Some(1))) {
            break;
        }
    }
    assert!(
        matches!(held, (Some(1), Some(0)) | (Some(0), Some(1))),
        "one member holds the one partition: {held:?}"
    );
}

/// A static member back under its name after an absence longer than a dynamic member's session
/// (a slow restart, a broker out of reach for a while) takes its place again: the group keeps
/// the place while it is away, so both members hold partitions again and what was appended
/// meanwhile is read. A group that drops the absent member while it is its leader can be left
/// without one (tansu 0.6 then never completes a rebalance, and no member holds anything).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_back_after_a_long_absence_takes_its_place_again() {
    let broker = Broker::start().await;
    let topic = unique("absent");
    let group = unique("group");
    let (name_a, name_b) = (unique("member-a"), unique("member-b"));
    let as_member = |id: &str| static_member(&broker, id, options());
    // Member a appends 30 records named `prefix`, then joins the group.
    let a_joins_after_appending = async |prefix: &str, first_ms: i64| {
        let log_a = as_member(&name_a);
        log_a
            .append(&topic, records(prefix, 30, first_ms))
            .await
            .expect("append");
        let a = member(&log_a, &topic, &group, StartFrom::Earliest).await;
        (log_a, a)
    };
    // The first member to join leads the group.
    let (log_a, mut a) = a_joins_after_appending("before", 1_000).await;
    assert_eq!(collect(a.as_mut(), 30, PATIENCE).await.len(), 30);
    a.commit().await.expect("commit");
    let log_b = as_member(&name_b);
    let mut b = member(&log_b, &topic, &group, StartFrom::Earliest).await;
    let shared = |a: Option<usize>, b: Option<usize>| matches!((a, b), (Some(x), Some(y)) if x > 0 && y > 0 && x + y == 3);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !shared(a.assigned(), b.assigned()) && Instant::now() < deadline {
        a.poll(100, Duration::from_millis(200)).await.expect("poll");
        a.commit().await.expect("commit");
        b.poll(100, Duration::from_millis(200)).await.expect("poll");
        b.commit().await.expect("commit");
    }
    assert!(
        shared(a.assigned(), b.assigned()),
        "two members share the partitions: {:?}",
        (a.assigned(), b.assigned())
    );

    // The leader goes without a word, and stays away longer than a dynamic member's session
    // while the other member keeps reading.
    drop(a);
    drop(log_a);
    let away = KafkaOptions::default().session_timeout + Duration::from_secs(5);
    let mut read: HashSet<String> = HashSet::new();
    read.extend(drain(b.as_mut(), away).await.iter().map(value));
    b.commit().await.expect("commit");

    let (_log_a, mut a) = a_joins_after_appending("after", 2_000).await;
    let after = |read: &HashSet<String>| read.iter().filter(|v| v.starts_with("after-")).count();
    let deadline = Instant::now() + Duration::from_secs(45);
    while (after(&read) < 30 || !shared(a.assigned(), b.assigned())) && Instant::now() < deadline {
        for m in [&mut a, &mut b] {
            read.extend(poll_and_commit(m.as_mut(), 100, 200).await);
        }
    }
    assert!(
        shared(a.assigned(), b.assigned()),
        "both members hold partitions again: {:?}",
        (a.assigned(), b.assigned())
    );
    assert_eq!(
        after(&read),
        30,
        "every record appended while it was away is read"
    );
}

/// Polls `consumer` once (up to `max` records, waiting up to `wait_ms`) and commits: the
/// values read.
async fn poll_and_commit(consumer: &mut dyn LogConsumer, max: usize, wait_ms: u64) -> Vec<String> {
    let got = consumer
        .poll(max, Duration::from_millis(wait_ms))
        .await
        .expect("poll");
    consumer.commit().await.expect("commit");
    got.iter().map(value).collect()
}

/// Producers appending at once to one partition while a member reads at its head, committing
/// as it goes: it reads every record. tansu 0.6 gives a produce its offset before the record
/// can be read, so a fetch in between answers with the records after it; a member that took
/// those would fetch on past the one being stored and commit past it, never to read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_at_the_head_reads_every_record_of_producers_appending_at_once() {
    const PRODUCERS: usize = 6;
    const APPENDING: Duration = Duration::from_secs(5);
    let options = KafkaOptions {
        topic_partitions: 1,
        // One record per batch: tansu fetches from the start of a stored batch only.
        client_config: [
            client_debug(),
            vec![("batch.num.messages".into(), "1".into())],
        ]
        .concat(),
        ..options()
    };
    let topic = unique("heads");
    let group = unique("group");
    let log = KafkaLog::connect(&shared_broker(), options.clone()).expect("kafka log");
    append_until_ok(&log, &topic, PATIENCE).await;
    let mut consumer = member(&log, &topic, &group, StartFrom::Earliest).await;
    // Each producer its own client, so their appends reach the broker at the same time.
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let log = KafkaLog::connect(&shared_broker(), options.clone()).expect("kafka log");
            let topic = topic.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let mut sent = 0usize;
                while started.elapsed() < APPENDING {
                    let r = record(None, &format!("p{p}-{sent}"), 1_000);
                    log.append(&topic, vec![r]).await.expect("append");
                    sent += 1;
                }
                sent
            })
        })
        .collect();

    let mut seen: HashSet<String> = HashSet::new();
    let reading = async {
        loop {
            seen.extend(poll_and_commit(consumer.as_mut(), 1000, 20).await);
            if producers.iter().all(|p| p.is_finished()) {
                return;
            }
        }
    };
    reading.await;
    let mut sent = 0;
    for p in producers {
        sent += p.await.unwrap();
    }
    // And `append_until_ok`'s record, the same each time it is tried.
    let expected = sent + 1;
    let deadline = Instant::now() + PATIENCE;
    while seen.len() < expected && Instant::now() < deadline {
        seen.extend(poll_and_commit(consumer.as_mut(), 1000, 200).await);
    }
    // A newcomer to the group starts from the commit: nothing is left behind it either.
    drop(consumer);
    let all = {
        let mut everything = reader(&log, &topic).await;
        collect(everything.as_mut(), expected, PATIENCE).await
    };
    let in_log: HashSet<String> = all.iter().map(value).collect();
    let mut never_read: Vec<&String> = in_log.difference(&seen).collect();
    never_read.sort();
    assert_eq!(
        in_log.len(),
        expected,
        "every record appended is in the log"
    );
    assert!(
        never_read.is_empty(),
        "{} of {expected} records in the log never read by the group: {:?}",
        never_read.len(),
        &never_read[..never_read.len().min(10)]
    );
}

/// tansu 0.6 answers a fetch from an offset inside a stored batch with the batches after it
/// (see [`Broker::producer_url`]), so a member resuming from a commit inside a batch finds a
/// hole where the rest of that batch is, as it finds one at an offset whose record is still
/// being stored. It does not read past the hole at once: it fetches again from it, and reads
/// on only once the hole has stayed for a while, so that a hole that never fills does not stop
/// the partition for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_reads_past_a_hole_only_after_fetching_from_it_again_for_a_while() {
    let mut options = KafkaOptions {
        topic_partitions: 1,
        linger: Duration::from_millis(100),
        ..options()
    };
    options
        .client_config
        .push(("batch.num.messages".into(), "1000".into()));
    let log = KafkaLog::connect(&shared_broker(), options).expect("kafka log");
    let topic = unique("holes");
    let group = unique("group");
    append_until_ok(&log, &topic, PATIENCE).await;
    // One batch of five, then a record after it.
    let batch = (0..5)
        .map(|i| record(None, &format!("b{i}"), 1_000))
        .collect();
    log.append(&topic, batch).await.expect("append");
    log.append(&topic, vec![record(None, "after", 1_000)])
        .await
        .expect("append");
    // A commit inside the batch.
    let mut first = member(&log, &topic, &group, StartFrom::Earliest).await;
    let got = collect(first.as_mut(), 2, PATIENCE).await;
    assert_eq!(got.iter().map(value).collect::<Vec<_>>(), ["{}", "b0"]);
    first.commit().await.expect("commit");
    drop(first);

    let mut second = member(&log, &topic, &group, StartFrom::Earliest).await;
    let deadline = Instant::now() + PATIENCE;
    let mut assigned_at = None;
    let mut got = Vec::new();
    while got.is_empty() && Instant::now() < deadline {
        got = second
            .poll(10, Duration::from_millis(100))
            .await
            .expect("poll");
        if assigned_at.is_none() && second.assigned() == Some(1) {
            assigned_at = Some(Instant::now());
        }
    }
    let waited = assigned_at.expect("the partition assigned").elapsed();
    assert!(
        waited >= Duration::from_secs(2),
        "read past the hole {waited:?} after the assignment, without fetching from it again"
    );
    // Once, though every fetch from the hole brought it again.
    assert_eq!(
        got.iter().map(value).collect::<Vec<_>>(),
        ["after"],
        "the broker answers from after the batch: {:?}",
        got.iter().map(|c| c.position).collect::<Vec<_>>()
    );
}

/// `--retention` on Kafka: `retention.ms` of a topic is set through the admin API, and the
/// topic's other settings of its own are kept. A broker that refuses says so in the
/// topic's outcome rather than failing the call; tansu's answer is recorded here as the
/// test finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_retention_is_set_or_the_refusal_said() {
    let log = connect();
    let topic = unique("retention");
    let keep = Duration::from_secs(30 * 86_400);
    let set = log
        .set_retention(&[&topic], keep)
        .await
        .expect("a broker answers");
    assert_eq!(set.len(), 1);
    assert_eq!(set[0].topic, topic);
    let reported = log.retention_ms(&topic).await.expect("a broker answers");
    match &set[0].outcome {
        Ok(()) => {
            // Accepted: the broker reports it back, if it reports settings at all.
            if let Some(ms) = &reported {
                assert_eq!(ms, &keep.as_millis().to_string(), "{topic}");
            }
        }
        Err(why) => {
            assert!(!why.is_empty());
            eprintln!("the broker refused retention.ms on {topic}: {why}");
        }
    }
    eprintln!(
        "retention of {topic}: {:?}, reported {reported:?}",
        set[0].outcome
    );
}

//! Dead letters an operator can act on, in both modes: records the consumer cannot store land
//! on location.dlq with their reason and source; once the cause is fixed (the persons
//! created), `redrive` stores them, and re-driving again stores nothing twice; the depth
//! metric follows; `udaconnect dlq list` and `dlq redrive` show and do the same from the
//! command line. The embedded log in a data directory, and a private Kafka-protocol broker
//! (the topics are the product's own names, so no other test may share it).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use tokio::sync::watch;
use udaconnect_core::model::{Location, Person};
use udaconnect_core::ports::DynLog;
use udaconnect_core::record::{self, LogRecord, LOCATION_TOPIC};
use udaconnect_server::consume::consumer::LocationConsumer;
use udaconnect_server::consume::dlq::{self, Filter, Redriven};
use udaconnect_server::metrics::Metrics;
use udaconnect_server::persons::LocalPersons;
use udaconnect_server::wiring::embedded::EmbeddedStack;
use udaconnect_testkit::eventually;
use udaconnect_testkit::store_suite::new_person;

const BIN: &str = env!("CARGO_BIN_EXE_udaconnect");
const PATIENCE: Duration = Duration::from_secs(60);

fn person(id: i64) -> Person {
    Person {
        id,
        first_name: "Late".into(),
        last_name: "Comer".into(),
        company_name: "Acme".into(),
    }
}

fn stored_count(metrics: &Metrics) -> u64 {
    metrics
        .consumer_records
        .get_or_create(&vec![("outcome", "stored".to_string())])
        .get()
}

/// The whole round trip on `log`, with the stores of `stack`.
async fn dead_letters_round_trip(log: DynLog, stack: &EmbeddedStack) {
    let persons = stack.persons.clone();
    let known = persons.create(new_person("A")).await.unwrap();
    let metrics = Arc::new(Metrics::new());
    let (stop, shutdown) = watch::channel(false);
    let consumer = LocationConsumer::new(
        log.clone(),
        stack.locations.clone(),
        Arc::new(LocalPersons::new(persons.clone())),
        stack.keys.clone(),
        metrics.clone(),
    );
    let running = tokio::spawn(consumer.run(shutdown.clone()));
    let depth = tokio::spawn(dlq::watch_depth(
        log.clone(),
        stack.locations.clone(),
        stack.keys.clone(),
        metrics.clone(),
        shutdown,
    ));

    let now = Utc::now();
    let own = |id, person_id| {
        record::encode(
            &Location {
                id,
                person_id,
                latitude: 35.0585136,
                longitude: -106.5719566,
                creation_time: now,
                accuracy_m: None,
                telemetry: Default::default(),
            },
            None,
            now,
        )
    };
    let keyless = |value: &[u8]| LogRecord {
        value: value.to_vec(),
        timestamp_ms: now.timestamp_millis(),
        ..Default::default()
    };
    log.append(
        LOCATION_TOPIC,
        vec![
            // An original producer's record, axes swapped as the original data had them.
            keyless(br#"{"person_id": 900, "latitude": -122.290883, "longitude": 37.55363}"#),
            own(77, 901),
            keyless(b"\x01 not json"),
            own(78, known.id),
        ],
    )
    .await
    .unwrap();

    let letters = eventually("three dead letters", PATIENCE, || async {
        let all = dlq::read(&log, 100, |_| true).await.ok()?;
        (all.len() == 3).then_some(all)
    })
    .await;
    let mut reasons: Vec<&str> = letters.iter().map(|d| d.reason.as_str()).collect();
    reasons.sort();
    assert!(reasons[0].starts_with("not JSON"), "{reasons:?}");
    assert_eq!(
        &reasons[1..],
        [
            "person_id: no person with id 900",
            "person_id: no person with id 901"
        ]
    );
    assert!(letters
        .iter()
        .all(|d| d.source.is_some() && d.time.is_some()));
    let legacy_id = letters
        .iter()
        .find(|d| d.reason.ends_with("900"))
        .and_then(|d| d.location_id())
        .unwrap();
    assert!(legacy_id >= record::DERIVED_ID_BASE);
    // Two that can be stored once their persons exist, and one that never can.
    eventually("a depth of 3", PATIENCE, || async {
        (metrics.dlq_depth.get() == 3).then_some(())
    })
    .await;

    // The cause fixed: the persons exist now. Only what the filter names goes back.
    persons
        .import(vec![person(900), person(901)])
        .await
        .unwrap();
    let filter = Filter {
        reason: Some("no person".into()),
        since: Some(now - chrono::Duration::minutes(1)),
    };
    let report = dlq::redrive(&log, &filter).await.unwrap();
    assert_eq!(
        report,
        Redriven {
            appended: 2,
            skipped: 1
        }
    );
    let store = &stack.locations;
    eventually("the re-driven pings stored", PATIENCE, || async {
        let a = store.get(77).await.ok()??;
        let b = store.get(legacy_id).await.ok()??;
        Some((a, b))
    })
    .await;
    let repaired = store.get(legacy_id).await.unwrap().unwrap();
    assert_eq!(repaired.person_id, 900);
    assert_eq!(
        (repaired.latitude, repaired.longitude),
        (37.55363, -122.290883)
    );
    let axes = metrics
        .axes_repaired
        .get_or_create(&vec![("source", "log".to_string())])
        .get();
    assert!(axes >= 1, "{axes}");
    assert_eq!(
        repaired.creation_time.timestamp_millis(),
        now.timestamp_millis()
    );
    assert_eq!(store.count().await.unwrap(), 3);
    eventually("a depth of 1", PATIENCE, || async {
        (metrics.dlq_depth.get() == 1).then_some(())
    })
    .await;

    // Twice: read and handled again, stored once.
    let handled = stored_count(&metrics);
    let again = dlq::redrive(&log, &filter).await.unwrap();
    assert_eq!(again.appended, 2);
    eventually("the second redrive handled", PATIENCE, || async {
        (stored_count(&metrics) >= handled + 2).then_some(())
    })
    .await;
    assert_eq!(store.count().await.unwrap(), 3);
    // Nothing was dead-lettered again.
    assert_eq!(dlq::read(&log, 100, |_| true).await.unwrap().len(), 3);

    stop.send(true).unwrap();
    running.await.unwrap();
    depth.await.unwrap();
}

fn udaconnect(args: &[&str]) -> Output {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "udaconnect {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `dlq list` and `dlq redrive` on the log `at` names (`--data-dir DIR` or `--log URL`).
fn command_line(at: &[&str]) {
    let list = |extra: &[&str]| {
        let mut args = vec!["dlq", "list", "--format", "json"];
        args.extend_from_slice(at);
        args.extend_from_slice(extra);
        json_lines(&udaconnect(&args))
    };
    let all = list(&[]);
    assert_eq!(all.len(), 3, "{all:?}");
    for d in &all {
        assert!(
            d["source_partition"].is_i64() && d["source_offset"].is_i64(),
            "{d}"
        );
        assert!(d["time"].is_string(), "{d}");
    }
    assert_eq!(list(&["--limit", "1"]).len(), 1);
    let unreadable = list(&["--reason", "not JSON"]);
    assert_eq!(unreadable.len(), 1);
    assert_eq!(unreadable[0]["value"], "\u{1} not json");
    let missing = list(&["--reason", "no person with id 900"]);
    // The record as its producer wrote it, axes and all.
    assert_eq!(missing[0]["value"]["latitude"], -122.290883);

    let mut args = vec!["dlq", "list"];
    args.extend_from_slice(at);
    let table = String::from_utf8_lossy(&udaconnect(&args).stdout).into_owned();
    assert!(table.starts_with("DLQ"), "{table}");
    assert_eq!(table.lines().count(), 4, "{table}");

    let mut args = vec!["dlq", "redrive", "--reason", "nothing has this reason"];
    args.extend_from_slice(at);
    let said = String::from_utf8_lossy(&udaconnect(&args).stdout).into_owned();
    assert!(said.contains("re-drove 0 dead-lettered records"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_on_the_embedded_log() {
    let dir = tempfile::tempdir().unwrap();
    let stack = EmbeddedStack::open(dir.path()).unwrap();
    dead_letters_round_trip(stack.log.clone(), &stack).await;
    drop(stack);
    command_line(&["--data-dir", path(dir.path())]);
}

#[cfg(feature = "kafka")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_on_kafka() {
    use udaconnect_log::{KafkaLog, KafkaOptions};
    let broker = udaconnect_testkit::kafka::Broker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = EmbeddedStack::open(dir.path()).unwrap();
    // One record per batch: see `Broker::producer_url`.
    let options = KafkaOptions {
        client_config: vec![("batch.num.messages".into(), "1".into())],
        ..KafkaOptions::default()
    };
    let log: DynLog = Arc::new(KafkaLog::connect(&broker.brokers(), options).unwrap());
    dead_letters_round_trip(log, &stack).await;
    command_line(&["--log", &broker.url()]);
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

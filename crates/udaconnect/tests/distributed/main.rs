//! The distributed mode end to end: every role its own process, on a real Kafka-protocol
//! broker and a real PostgreSQL/PostGIS, reached over HTTP and gRPC as clients reach them;
//! failures made real (processes killed with SIGKILL, the broker killed, the database cut off).

mod harness;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::{eventually, Broker, Db, RoleProc, Stack};
use serde_json::{json, Value};
use udaconnect_core::ports::{Log, StartFrom};
use udaconnect_log::{KafkaLog, KafkaOptions};
use udaconnect_server::ingest::grpc::proto;

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn create_person(base: &str, first: &str) -> i64 {
    let r = http()
        .post(format!("{base}/api/persons"))
        .json(&json!({"first_name": first, "last_name": "Tester", "company_name": "Acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn post_ping(base: &str, body: &Value) -> reqwest::Response {
    http()
        .post(format!("{base}/api/locations"))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn stored(base: &str, id: i64) -> Option<Value> {
    let r = http()
        .get(format!("{base}/api/locations/{id}"))
        .send()
        .await
        .ok()?;
    (r.status() == 200).then_some(())?;
    r.json().await.ok()
}

/// Produces records with an external Kafka client, exactly as the original producers did.
fn produce_original(brokers: &str, lines: &[&str], raw: bool) {
    let script = harness::repo_root().join("scripts/kafka-produce-original");
    let mut cmd = Command::new(script);
    cmd.args(["--brokers", brokers, "--topic", "location"]);
    if raw {
        cmd.arg("--raw");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the original producer runs");
    {
        let stdin = child.stdin.as_mut().unwrap();
        for l in lines {
            writeln!(stdin, "{l}").unwrap();
        }
    }
    assert!(
        child.wait().unwrap().success(),
        "the original producer failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn roles_as_processes_serve_the_contract() {
    let broker = Broker::start().await;
    let db = Db::create().await;
    let stack = Stack::start(&db, &broker).await;
    let web = stack.web.base();

    // Persons through the gateway, which routes to person-api.
    let a = create_person(&web, "Ada").await;
    let b = create_person(&web, "Bo").await;
    let persons: Value = http()
        .get(format!("{web}/api/persons"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(persons.as_array().unwrap().len(), 2);

    // HTTP ping, 202 with an id, stored by the consumer, read back through the gateway.
    let r = post_ping(
        &web,
        &json!({"person_id": a, "latitude": 37.55363, "longitude": -122.290883,
                "creation_time": "2020-07-07T10:37:06Z"}),
    )
    .await;
    assert_eq!(r.status(), 202);
    let correlation = r
        .headers()
        .get("x-correlation-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let loc = eventually(Duration::from_secs(20), "the HTTP ping stored", || {
        stored(&web, id)
    })
    .await;
    assert_eq!(loc["latitude"], 37.55363);
    assert_eq!(loc["creation_time"], "2020-07-07T10:37:06Z");
    // The gateway's correlation id reaches location-api's log lines.
    assert!(stack
        .location_api
        .log_lines()
        .iter()
        .any(|l| l["span"]["correlation_id"] == correlation.as_str()
            || l["correlation_id"] == correlation.as_str()
            || l.to_string().contains(&correlation)));

    // Bad input: a problem body, never a 500.
    let r = post_ping(
        &web,
        &json!({"person_id": a, "latitude": 137.0, "longitude": 0}),
    )
    .await;
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );

    // The original gRPC contract: /LocationService/Create with float coordinates.
    let endpoint = format!("http://127.0.0.1:{}", stack.grpc_port);
    let mut original =
        proto::original::location_service_client::LocationServiceClient::connect(endpoint.clone())
            .await
            .unwrap();
    let echoed = original
        .create(proto::original::LocationMessage {
            person_id: b as i32,
            latitude: 37.55363,
            longitude: -122.290883,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(echoed.person_id, b as i32);
    let err = original
        .create(proto::original::LocationMessage {
            person_id: b as i32,
            latitude: 91.0,
            longitude: 0.0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("latitude"), "{}", err.message());
    let err = original
        .create(proto::original::LocationMessage {
            person_id: 999_999,
            latitude: 1.0,
            longitude: 1.0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    // The versioned service's bulk stream: each batch answered with its ids, a bad batch with
    // its violations, the stream going on.
    let mut v1 = proto::v1::location_ingest_client::LocationIngestClient::connect(endpoint)
        .await
        .unwrap();
    let ping = |person_id: i64, lat: f64, secs: i64| proto::v1::Ping {
        person_id,
        latitude: lat,
        longitude: -122.290883,
        creation_time: Some(prost_types::Timestamp {
            seconds: 1_594_118_226 + secs,
            nanos: 0,
        }),
    };
    let batches = vec![
        proto::v1::PingBatch {
            sequence: 1,
            pings: vec![ping(a, 37.55363, 0), ping(b, 37.55363, 1)],
        },
        proto::v1::PingBatch {
            sequence: 2,
            pings: vec![ping(a, 37.5, 2), ping(b, 95.0, 3)],
        },
        proto::v1::PingBatch {
            sequence: 3,
            pings: vec![ping(b, 37.553631, 4)],
        },
    ];
    let mut results = v1
        .ingest(futures_util::stream::iter(batches))
        .await
        .unwrap()
        .into_inner();
    let mut answers = Vec::new();
    while let Some(r) = results.message().await.unwrap() {
        answers.push(r);
    }
    assert_eq!(
        answers.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(answers[0].ids.len(), 2);
    assert!(answers[1].ids.is_empty());
    assert_eq!(answers[1].violations[0].field, "[1].latitude");
    assert_eq!(answers[2].ids.len(), 1);
    for id in answers[0].ids.iter().chain(&answers[2].ids) {
        eventually(Duration::from_secs(20), "gRPC pings stored", || {
            stored(&web, *id)
        })
        .await;
    }

    // The original producers' keyless JSON, and poison records, on the topic itself.
    let brokers = broker.brokers();
    produce_original(
        &brokers,
        &[
            &format!(r#"{{"person_id": {a}, "latitude": 35.0585136, "longitude": -106.5719566}}"#),
            r#"{"person_id": 424242, "latitude": 35.0, "longitude": -106.5}"#,
            &format!(r#"{{"person_id": {a}, "latitude": 135.0, "longitude": -106.5}}"#),
        ],
        false,
    );
    produce_original(&brokers, &["\u{1}\u{2}not json at all"], true);
    // A valid record after the poison ones is stored: the consumer never stalls on them.
    produce_original(
        &brokers,
        &[&format!(
            r#"{{"person_id": {b}, "latitude": 35.0585137, "longitude": -106.5719567}}"#
        )],
        false,
    );
    let rows = eventually(
        Duration::from_secs(30),
        "original records stored",
        || async {
            let rows = db
                .client()
                .await
                .query(
                    "SELECT id, person_id FROM location WHERE ST_Y(coordinate) BETWEEN 35 AND 36",
                    &[],
                )
                .await
                .ok()?;
            (rows.len() == 2).then_some(rows)
        },
    )
    .await;
    for r in &rows {
        // Keyless records get ids derived from their position, at 2^52 and above.
        assert!(r.get::<_, i64>(0) >= 1 << 52);
    }
    let dlq = KafkaLog::connect(&brokers, KafkaOptions::default()).unwrap();
    let mut reader = dlq
        .consumer("location.dlq", "test-dlq-reader", StartFrom::Earliest)
        .await
        .unwrap();
    let mut reasons = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reasons.len() < 3 && Instant::now() < deadline {
        for c in reader.poll(100, Duration::from_secs(1)).await.unwrap() {
            reasons.push(c.record.header_str("dlq_reason").unwrap_or("").to_string());
        }
    }
    reasons.sort();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.starts_with("not JSON")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("latitude")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("no person with id 424242")),
        "{reasons:?}"
    );

    // Connections through the gateway, from PostGIS: b's pings next to a's.
    let conn: Value = http()
        .get(format!(
            "{web}/api/persons/{a}/connection?start_date=2020-01-01&end_date=2020-12-30&distance=5"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: BTreeSet<i64> = conn
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["location"]["id"].as_i64().unwrap())
        .collect();
    assert!(ids.contains(&answers[0].ids[1]), "{conn}");
    assert!(ids.contains(&answers[2].ids[0]), "{conn}");

    // The venue live through the gateway: connection-api follows the topic.
    let r = post_ping(
        &web,
        &json!({"person_id": b, "latitude": 12.5, "longitude": 34.25}),
    )
    .await;
    assert_eq!(r.status(), 202);
    let live_id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    eventually(
        Duration::from_secs(20),
        "the live view to show the ping",
        || async {
            let positions: Value = http()
                .get(format!("{web}/api/live/positions"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            positions
                .as_array()?
                .iter()
                .any(|p| p["id"] == live_id)
                .then_some(())
        },
    )
    .await;

    // Every role reports ready and exposes metrics.
    for p in [
        &stack.person_api,
        &stack.location_api,
        &stack.consumer,
        &stack.connection_api,
        &stack.web,
    ] {
        let m = http()
            .get(format!("{}/metrics", p.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(m.status(), 200, "{}", p.role);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_down_answers_503_and_ingest_resumes() {
    let mut broker = Broker::start().await;
    let db = Db::create().await;
    let stack = Stack::start(&db, &broker).await;
    let base = stack.location_api.base();
    let person = create_person(&stack.person_api.base(), "Kim").await;
    let ping = json!({"person_id": person, "latitude": 1.0, "longitude": 2.0});
    assert_eq!(post_ping(&base, &ping).await.status(), 202);

    broker.kill();
    let started = Instant::now();
    let r = post_ping(&base, &ping).await;
    assert_eq!(r.status(), 503, "{:?}", r.text().await);
    assert!(started.elapsed() < Duration::from_secs(15));
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["status"], 503);
    // gRPC says the same.
    let mut original = proto::original::location_service_client::LocationServiceClient::connect(
        format!("http://127.0.0.1:{}", stack.grpc_port),
    )
    .await
    .unwrap();
    let err = original
        .create(proto::original::LocationMessage {
            person_id: person as i32,
            latitude: 1.0,
            longitude: 2.0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);

    broker.restart().await;
    let id = eventually(Duration::from_secs(60), "ingest to resume", || async {
        let r = post_ping(&base, &ping).await;
        if r.status() == 202 {
            r.json::<Value>().await.ok()?["id"].as_i64()
        } else {
            None
        }
    })
    .await;
    eventually(
        Duration::from_secs(60),
        "the ping after the outage stored",
        || stored(&base, id),
    )
    .await;
}

/// person-api away: a role that must ask it about a person answers 503 (never 500), and the
/// consumer keeps a record whose person it cannot check (never dead-letters it) until person-api
/// is back; persons already seen are still answered from the roles' caches.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn person_api_down_answers_503_and_the_consumer_waits() {
    let broker = Broker::start().await;
    let db = Db::create().await;
    let mut stack = Stack::start(&db, &broker).await;
    let known = create_person(&stack.person_api.base(), "Kim").await;
    let unseen = create_person(&stack.person_api.base(), "Fay").await;
    let location_api = stack.location_api.base();
    let r = post_ping(
        &location_api,
        &json!({"person_id": known, "latitude": 1.0, "longitude": 2.0}),
    )
    .await;
    assert_eq!(r.status(), 202);

    stack.person_api.kill_9();
    for role in [&stack.location_api, &stack.consumer, &stack.connection_api] {
        let detail = eventually(
            Duration::from_secs(30),
            "a role to report person-api away",
            || async {
                let r = http()
                    .get(format!("{}/ready", role.base()))
                    .send()
                    .await
                    .ok()?;
                (r.status() == 503).then_some(())?;
                r.json::<Value>().await.ok()
            },
        )
        .await;
        assert!(
            detail["detail"].as_str().unwrap().contains("person_api"),
            "{} {detail}",
            role.role
        );
    }
    // A person location-api has not seen yet: it cannot check, so 503 with a problem body.
    let r = post_ping(
        &location_api,
        &json!({"person_id": unseen, "latitude": 1.0, "longitude": 2.0}),
    )
    .await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert!(r.text().await.unwrap().contains("person-api"));
    // A person it has seen is still accepted.
    let r = post_ping(
        &location_api,
        &json!({"person_id": known, "latitude": 1.0, "longitude": 2.1}),
    )
    .await;
    assert_eq!(r.status(), 202);
    let r = http()
        .get(format!(
            "{}/api/persons/{unseen}/summary",
            stack.connection_api.base()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);

    // An original producer's record for the unseen person: the consumer cannot check it.
    produce_original(
        &broker.brokers(),
        &[&format!(
            r#"{{"person_id": {unseen}, "latitude": 3.0, "longitude": 4.0}}"#
        )],
        false,
    );
    let of_unseen = || async {
        db.client()
            .await
            .query_one(
                "SELECT count(*) FROM location WHERE person_id = $1",
                &[&unseen],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(of_unseen().await, 0, "stored without a person check");

    // person-api back on its address: the record is stored, and nothing was dead-lettered.
    stack.person_api.restart().await;
    eventually(
        Duration::from_secs(60),
        "the held record stored",
        || async { (of_unseen().await == 1).then_some(()) },
    )
    .await;
    let dlq = KafkaLog::connect(&broker.brokers(), KafkaOptions::default()).unwrap();
    let mut reader = dlq
        .consumer("location.dlq", "test-dlq-reader", StartFrom::Earliest)
        .await
        .unwrap();
    let mut dead = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        dead.extend(reader.poll(100, Duration::from_millis(500)).await.unwrap());
    }
    assert!(dead.is_empty(), "dead-lettered while person-api was away");
    let r = post_ping(
        &location_api,
        &json!({"person_id": unseen, "latitude": 1.0, "longitude": 2.0}),
    )
    .await;
    assert_eq!(r.status(), 202);
}

/// Sends pings from `clients` tasks until `stop`; returns the ids answered 202.
fn load(
    base: String,
    person: i64,
    clients: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Vec<i64>> {
    tokio::spawn(async move {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (base, acked, stop) = (base.clone(), acked.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let client = http();
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let body = json!({"person_id": person, "latitude": (c as f64) / 100.0,
                                      "longitude": (n as f64) / 1e6});
                    if let Ok(r) = client
                        .post(format!("{base}/api/locations"))
                        .json(&body)
                        .send()
                        .await
                    {
                        if r.status() == 202 {
                            if let Ok(v) = r.json::<Value>().await {
                                acked.lock().unwrap().push(v["id"].as_i64().unwrap());
                            }
                        }
                    } else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        let v = acked.lock().unwrap().clone();
        v
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_consumer_and_location_api_loses_no_acknowledged_ping() {
    let broker = Broker::start().await;
    let db = Db::create().await;
    let mut stack = Stack::start(&db, &broker).await;
    let person = create_person(&stack.person_api.base(), "Lee").await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = load(stack.location_api.base(), person, 16, stop.clone());

    tokio::time::sleep(Duration::from_secs(2)).await;
    stack.consumer.restart().await; // SIGKILL mid-stream, then a new process.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack.location_api.restart().await; // SIGKILL with requests in flight.
    stack.location_api.wait_ready(Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack.consumer.restart().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = sender.await.unwrap();
    acked.sort_unstable();
    assert!(acked.len() > 100, "only {} pings acknowledged", acked.len());
    let distinct: BTreeSet<i64> = acked.iter().copied().collect();
    assert_eq!(distinct.len(), acked.len(), "an id was handed out twice");

    let stored_ids = eventually(Duration::from_secs(90), "every 202 stored", || async {
        let ids = db.location_ids().await;
        let set: BTreeSet<i64> = ids.iter().copied().collect();
        distinct.is_subset(&set).then_some(ids)
    })
    .await;
    // Each stored once (the id is the primary key; no duplicate rows by content either).
    let rows = db
        .client()
        .await
        .query(
            "SELECT count(*) FROM (SELECT ST_X(coordinate), ST_Y(coordinate) FROM location \
             GROUP BY 1, 2 HAVING count(*) > 1) d",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 0, "a ping was stored twice");
    assert!(stored_ids.len() >= distinct.len());
}

/// A TCP forwarder standing between the consumer and PostgreSQL, so the test can cut the
/// database off (and bring it back on the same address) without stopping the shared server.
struct Cable {
    port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Cable {
    async fn new(target: u16) -> Cable {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: connection refused in effect
                }
                conns2.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                }));
            }
        });
        Cable { port, up, conns }
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn mend(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_down_consumer_retries_and_loses_nothing() {
    let broker = Broker::start().await;
    let db = Db::create().await;
    let stack = Stack::start(&db, &broker).await;
    let person = create_person(&stack.person_api.base(), "Max").await;

    // A second consumer group member would share partitions; instead, the stack's consumer is
    // replaced by one that reaches the database through the cable.
    let mut consumer = stack.consumer;
    consumer.kill_9();
    let admin_port: u16 = harness::admin_url()
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next()?.parse().ok())
        .unwrap_or(5432);
    let cable = Cable::new(admin_port).await;
    let via_cable = db
        .url
        .replacen(&format!(":{admin_port}/"), &format!(":{}/", cable.port), 1);
    let cabled = RoleProc::spawn(
        "location-consumer",
        &[
            "--store".into(),
            via_cable,
            "--log".into(),
            broker.url(),
            "--person-api".into(),
            stack.person_api.base(),
        ],
    )
    .await;
    cabled.wait_ready(Duration::from_secs(60)).await;

    let base = stack.location_api.base();
    let mut acked = Vec::new();
    for i in 0..20 {
        let r = post_ping(
            &base,
            &json!({"person_id": person, "latitude": 10.0 + i as f64 / 1000.0, "longitude": 20.0}),
        )
        .await;
        assert_eq!(r.status(), 202);
        acked.push(r.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    eventually(Duration::from_secs(30), "first pings stored", || async {
        (db.location_ids().await.len() >= 20).then_some(())
    })
    .await;

    cable.cut();
    // The consumer's readiness follows its store.
    eventually(
        Duration::from_secs(30),
        "consumer to report not ready",
        || async {
            let r = http()
                .get(format!("{}/ready", cabled.base()))
                .send()
                .await
                .ok()?;
            (r.status() == 503).then_some(())
        },
    )
    .await;
    // Ingest goes on: the log takes pings while the database is away.
    for i in 0..30 {
        let r = post_ping(
            &base,
            &json!({"person_id": person, "latitude": 11.0 + i as f64 / 1000.0, "longitude": 20.0}),
        )
        .await;
        assert_eq!(r.status(), 202);
        acked.push(r.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        db.location_ids().await.len(),
        20,
        "nothing stored while cut off"
    );
    let retried = cabled.log_lines().iter().any(|l| {
        l["fields"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("retrying")
            || l.to_string().contains("retrying")
    });
    assert!(retried, "the consumer logs its retries");

    cable.mend();
    let want: BTreeSet<i64> = acked.iter().copied().collect();
    eventually(
        Duration::from_secs(60),
        "every ping stored after the outage",
        || async {
            let have: BTreeSet<i64> = db.location_ids().await.into_iter().collect();
            (have == want).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_rebuilds_an_empty_database_to_the_same_answers() {
    let broker = Broker::start().await;
    let db = Db::create().await;
    let stack = Stack::start(&db, &broker).await;
    let web = stack.web.base();
    let a = create_person(&web, "Ann").await;
    let b = create_person(&web, "Ben").await;
    let mut batch = Vec::new();
    for i in 0..200 {
        let t = format!("2024-05-01T10:{:02}:{:02}Z", i / 60, i % 60);
        batch.push(json!({"person_id": a, "latitude": 48.0 + (i as f64) * 1e-6, "longitude": 11.0, "creation_time": t}));
        batch.push(json!({"person_id": b, "latitude": 48.0 + (i as f64) * 1e-6 + 2e-5, "longitude": 11.0, "creation_time": t}));
    }
    let r = http()
        .post(format!("{web}/api/locations/batch"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    eventually(Duration::from_secs(30), "the batch stored", || async {
        (db.location_ids().await.len() == 400).then_some(())
    })
    .await;
    let query = format!(
        "/api/persons/{a}/connection?start_date=2024-05-01&end_date=2024-05-01&distance=5&max_time_gap=60"
    );
    let before: Value = http()
        .get(format!("{web}{query}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before.as_array().unwrap().len(), 200);

    // A new, empty database: persons copied, locations rebuilt from the log alone.
    let fresh = Db::create().await;
    let copy = RoleProc::spawn("person-api", &["--store".into(), fresh.url.clone()]).await;
    copy.wait_ready(Duration::from_secs(60)).await;
    for p in [a, b] {
        let person: Value = http()
            .get(format!("{web}/api/persons/{p}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        fresh
            .client()
            .await
            .execute(
                "INSERT INTO person (id, first_name, last_name, company_name) VALUES ($1, $2, $3, $4)",
                &[
                    &p,
                    &person["first_name"].as_str().unwrap(),
                    &person["last_name"].as_str().unwrap(),
                    &person["company_name"].as_str().unwrap(),
                ],
            )
            .await
            .unwrap();
    }
    let out = Command::new(harness::BIN)
        .args(["replay", "--store", &fresh.url, "--log", &broker.url()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fresh.location_ids().await, db.location_ids().await);
    let conn = RoleProc::spawn(
        "connection-api",
        &[
            "--store".into(),
            fresh.url.clone(),
            "--person-api".into(),
            copy.base(),
        ],
    )
    .await;
    conn.wait_ready(Duration::from_secs(60)).await;
    let after: Value = http()
        .get(format!("{}{query}", conn.base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after, before);
}

/// The same random conference fed to `serve` (embedded) and to the distributed stack: every
/// connection and contacts answer equal, field by field.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn differential_embedded_and_distributed_answer_alike() {
    let broker = Broker::start().await;
    let db = Db::create().await;
    let stack = Stack::start(&db, &broker).await;
    let dir = tempfile::tempdir().unwrap();
    let embedded = RoleProc::spawn(
        "serve",
        &[
            "--demo-attendees".into(),
            "0".into(),
            "--data-dir".into(),
            dir.path().display().to_string(),
        ],
    )
    .await;
    embedded.wait_ready(Duration::from_secs(60)).await;
    let (dist, emb) = (stack.web.base(), embedded.base());

    // Persons in the same order get the same ids in both modes.
    let mut persons = Vec::new();
    for i in 0..12 {
        let x = create_person(&dist, &format!("P{i}")).await;
        let y = create_person(&emb, &format!("P{i}")).await;
        assert_eq!(x, y);
        persons.push(x);
    }
    // Random walks in a 40 m square over two hours: plenty of near misses at 5 m.
    let mut seed = 0x5eed_u64;
    let mut next = move || {
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut batch = Vec::new();
    for &p in &persons {
        let (mut lat, mut lon) = (52.5 + next() * 3.6e-4, 13.4 + next() * 6e-4);
        for k in 0..120 {
            lat += (next() - 0.5) * 2e-5;
            lon += (next() - 0.5) * 3e-5;
            let secs = k * 60 + (next() * 50.0) as i64;
            let t = chrono::DateTime::from_timestamp(1_717_236_000 + secs, 0).unwrap();
            batch.push(json!({"person_id": p, "latitude": lat, "longitude": lon,
                              "creation_time": t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}));
        }
    }
    let mut ids = HashMap::new();
    for base in [&dist, &emb] {
        let r = http()
            .post(format!("{base}/api/locations/batch"))
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        ids.insert(
            base.clone(),
            r.json::<Value>().await.unwrap()["ids"].clone(),
        );
    }
    let all = batch.len();
    eventually(
        Duration::from_secs(60),
        "both stores to hold the batch",
        || async { (db.location_ids().await.len() == all).then_some(()) },
    )
    .await;
    let last = ids[&emb]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_i64()
        .unwrap();
    eventually(Duration::from_secs(60), "embedded store", || {
        stored(&emb, last)
    })
    .await;

    // Answers compared with location ids replaced by the ping they name (ids are handed out
    // by each mode's own leaser).
    let by_id = |base: &String| -> HashMap<i64, usize> {
        ids[base]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, v)| (v.as_i64().unwrap(), i))
            .collect()
    };
    let (dist_ids, emb_ids) = (by_id(&dist), by_id(&emb));
    let normalise = |v: &mut Value, map: &HashMap<i64, usize>| {
        if let Some(rows) = v.as_array_mut() {
            for r in rows {
                if let Some(id) = r["location"]["id"].as_i64() {
                    r["location"]["id"] = json!(map[&id]);
                }
            }
        }
    };
    // connection-api on the in-memory index built from the topic answers alike too.
    let memory = RoleProc::spawn(
        "connection-api",
        &[
            "--store".into(),
            db.url.clone(),
            "--log".into(),
            broker.url(),
            "--engine".into(),
            "memory".into(),
            "--person-api".into(),
            stack.person_api.base(),
        ],
    )
    .await;
    memory.wait_ready(Duration::from_secs(60)).await;
    let mem = memory.base();

    let mut compared = 0;
    for &p in &persons {
        for q in [
            "connection?start_date=2024-06-01&end_date=2024-06-02&distance=5",
            "connection?start_date=2024-06-01T10:30:00&end_date=2024-06-01T11:00:00&distance=3&max_time_gap=60",
            "contacts?start=2024-06-01&end=2024-06-02&distance=5&min_duration=0",
            "contacts?start=2024-06-01&end=2024-06-02&distance=8&max_time_gap=120&min_duration=60",
        ] {
            let mut got = Vec::new();
            for (base, map) in [(&dist, &dist_ids), (&emb, &emb_ids), (&mem, &dist_ids)] {
                let r = http()
                    .get(format!("{base}/api/persons/{p}/{q}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "{base} {q}");
                let mut v: Value = r.json().await.unwrap();
                normalise(&mut v, map);
                got.push(v);
            }
            assert_eq!(got[0], got[1], "person {p}: {q}");
            assert_eq!(got[0], got[2], "in-memory engine, person {p}: {q}");
            compared += got[0].as_array().map_or(0, |a| a.len());
        }
    }
    assert!(
        compared > 100,
        "the data makes too few connections to compare: {compared}"
    );
}

/// The original deployment's configuration: no --store, the database named by DB_* variables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_read_the_original_db_variables() {
    let db = Db::create().await;
    let admin = harness::admin_url();
    let host_port = admin
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1:5432")
        .to_string();
    let (host, port) = host_port.split_once(':').unwrap_or((&host_port, "5432"));
    let user = admin
        .strip_prefix("postgres://")
        .and_then(|rest| rest.split(['@', ':']).next())
        .unwrap_or("postgres")
        .to_string();
    let person_api = RoleProc::spawn_with_env(
        "person-api",
        &[],
        &[
            ("DB_HOST", host),
            ("DB_PORT", port),
            ("DB_USERNAME", &user),
            ("DB_PASSWORD", ""),
            ("DB_NAME", &db.name),
        ],
    )
    .await;
    person_api.wait_ready(Duration::from_secs(60)).await;
    let id = create_person(&person_api.base(), "Env").await;
    let rows = db
        .client()
        .await
        .query("SELECT first_name FROM person WHERE id = $1", &[&id])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, String>(0), "Env");
}

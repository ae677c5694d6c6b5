//! Failures made real: processes killed with SIGKILL, the broker killed, person-api away, the
//! database cut off; nothing acknowledged is lost, and every answer meanwhile is a problem
//! body or a gRPC status, never a 500.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use udaconnect_server::ingest::grpc::proto;
use udaconnect_testkit::cable::Cable;
use udaconnect_testkit::process::STACK_CONSUMER;

use crate::harness::{
    admin_url, create_person, dead_letter_reasons, eventually, http, not_ready, post_acked,
    post_ping, produce_original, spawn_ready, started, stored,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_down_answers_503_and_ingest_resumes() {
    let (mut broker, _db, stack) = started().await;
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
    let id = eventually("ingest to resume", Duration::from_secs(60), || async {
        let r = post_ping(&base, &ping).await;
        if r.status() == 202 {
            r.json::<Value>().await.ok()?["id"].as_i64()
        } else {
            None
        }
    })
    .await;
    eventually(
        "the ping after the outage stored",
        Duration::from_secs(60),
        || stored(&base, id),
    )
    .await;
}

/// person-api away: a role that must ask it about a person answers 503 (never 500), and the
/// consumer keeps a record whose person it cannot check (never dead-letters it) until person-api
/// is back; persons already seen are still answered from the roles' caches.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn person_api_down_answers_503_and_the_consumer_waits() {
    let (broker, db, mut stack) = started().await;
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
            "a role to report person-api away",
            Duration::from_secs(30),
            || not_ready(role),
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
        "the held record stored",
        Duration::from_secs(60),
        || async { (of_unseen().await == 1).then_some(()) },
    )
    .await;
    let dead = dead_letter_reasons(&broker.brokers(), 1, Duration::from_secs(3)).await;
    assert!(
        dead.is_empty(),
        "dead-lettered while person-api was away: {dead:?}"
    );
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
    let (_broker, db, mut stack) = started().await;
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

    let stored_ids = eventually("every 202 stored", Duration::from_secs(90), || async {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_down_consumer_retries_and_loses_nothing() {
    let (broker, db, stack) = started().await;
    let person = create_person(&stack.person_api.base(), "Max").await;

    // A second consumer group member would share partitions; instead, the stack's consumer is
    // replaced by one that reaches the database through the cable, under the same member name
    // so that it takes the partitions at once.
    let mut consumer = stack.consumer;
    consumer.kill_9();
    let admin_port: u16 = admin_url()
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next()?.parse().ok())
        .unwrap_or(5432);
    let cable = Cable::new(admin_port).await;
    let via_cable = db
        .url
        .replacen(&format!(":{admin_port}/"), &format!(":{}/", cable.port), 1);
    let cabled = spawn_ready(
        "location-consumer",
        &[
            "--store",
            &via_cable,
            "--log",
            &broker.consumer_url(STACK_CONSUMER),
            "--person-api",
            &stack.person_api.base(),
        ],
    )
    .await;

    let base = stack.location_api.base();
    let mut acked = Vec::new();
    for i in 0..20 {
        acked.push(post_acked(&base, &json!({"person_id": person, "latitude": 10.0 + i as f64 / 1000.0, "longitude": 20.0})).await);
    }
    eventually("first pings stored", Duration::from_secs(30), || async {
        (db.location_ids().await.len() >= 20).then_some(())
    })
    .await;

    cable.cut();
    // The consumer's readiness follows its store.
    eventually(
        "consumer to report not ready",
        Duration::from_secs(30),
        || not_ready(&cabled),
    )
    .await;
    // Ingest goes on: the log takes pings while the database is away.
    for i in 0..30 {
        acked.push(post_acked(&base, &json!({"person_id": person, "latitude": 11.0 + i as f64 / 1000.0, "longitude": 20.0})).await);
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
        "every ping stored after the outage",
        Duration::from_secs(60),
        || async {
            let have: BTreeSet<i64> = db.location_ids().await.into_iter().collect();
            (have == want).then_some(())
        },
    )
    .await;
}

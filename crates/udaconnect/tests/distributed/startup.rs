//! A database restored from a backup whose id lease is behind the ids it stores, or behind ids
//! only the topics hold yet: a restarted location-api takes its lease above them, so no
//! acknowledged ping is shadowed by a new one.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use udaconnect_core::model::Location;
use udaconnect_core::ports::Log;
use udaconnect_core::record::{self, LOCATION_DLQ_TOPIC, LOCATION_TOPIC};
use udaconnect_log::{KafkaLog, KafkaOptions};

use crate::harness::{create_person, eventually, post_acked, started, stored};

/// `who`'s ping `n`: a second after ping `n - 1`, a little further north.
fn ping(who: i64, n: u32) -> Value {
    json!({"person_id": who, "latitude": 1.0 + f64::from(n) * 1e-3, "longitude": 2.0,
           "creation_time": format!("2024-05-01T10:00:{n:02}Z")})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_behind_the_stored_ids_is_raised_at_start() {
    let (_broker, db, mut stack) = started().await;
    let web = stack.web.base();
    let who = create_person(&web, "Ida").await;
    let mut acked = Vec::new();
    for n in 0..10 {
        acked.push((post_acked(&web, &ping(who, n)).await, ping(who, n)));
    }
    for (id, _) in &acked {
        eventually("stored", Duration::from_secs(30), || stored(&web, *id)).await;
    }
    stack.location_api.kill_9();
    db.client()
        .await
        .execute("UPDATE id_lease SET next = 1 WHERE name = 'location'", &[])
        .await
        .unwrap();
    stack.location_api.restart().await;
    stack.location_api.wait_ready(Duration::from_secs(60)).await;
    let highest = acked.iter().map(|(id, _)| *id).max().unwrap();
    for n in 10..15 {
        let id = post_acked(&web, &ping(who, n)).await;
        assert!(id > highest, "new id {id} not above the stored {highest}");
        acked.push((id, ping(who, n)));
    }
    for (id, body) in &acked {
        let got = eventually("stored", Duration::from_secs(30), || stored(&web, *id)).await;
        assert_eq!(got["latitude"], body["latitude"], "location {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_behind_ids_only_the_topics_hold_is_raised_at_start() {
    let (broker, db, mut stack) = started().await;
    let web = stack.web.base();
    let who = create_person(&web, "Ida").await;
    let first = post_acked(&web, &ping(who, 0)).await;
    eventually("stored", Duration::from_secs(30), || stored(&web, first)).await;
    let log = KafkaLog::connect(&broker.brokers(), KafkaOptions::default()).unwrap();
    let location = |id: i64| Location {
        id,
        person_id: who,
        latitude: 10.0 + id as f64 * 1e-9,
        longitude: 20.0,
        creation_time: Utc::now(),
        accuracy_m: None,
        telemetry: Default::default(),
    };
    let restart_api = async |stack: &mut udaconnect_testkit::process::Stack| {
        stack.location_api.kill_9();
        stack.location_api.restart().await;
        stack.location_api.wait_ready(Duration::from_secs(60)).await;
    };

    // Acknowledged while location-consumer is down, with ids far above the lease: in the topic
    // only.
    stack.consumer.kill_9();
    let waiting: Vec<i64> = (2_000_000..2_000_005).collect();
    let records = waiting
        .iter()
        .map(|id| record::encode(&location(*id), None, Utc::now()))
        .collect();
    log.append(LOCATION_TOPIC, records).await.unwrap();
    restart_api(&mut stack).await;
    let second = post_acked(&web, &ping(who, 1)).await;
    assert!(
        second > 2_000_004,
        "new id {second} not above the waiting pings'"
    );

    // Nothing shadowed: the waiting pings and the new one are all stored as sent.
    stack.consumer.restart().await;
    stack.consumer.wait_ready(Duration::from_secs(60)).await;
    for waiting in &waiting {
        let got = eventually("stored", Duration::from_secs(30), || stored(&web, *waiting)).await;
        assert_eq!(
            got["latitude"],
            location(*waiting).latitude,
            "location {waiting}"
        );
    }
    let got = eventually("stored", Duration::from_secs(30), || stored(&web, second)).await;
    assert_eq!(got["latitude"], ping(who, 1)["latitude"]);

    // A dead letter's id, which a re-drive would store, above everything stored; and the
    // database's lease rolled back.
    let dead = 3_000_000;
    log.append(
        LOCATION_DLQ_TOPIC,
        vec![record::encode(&location(dead), None, Utc::now())],
    )
    .await
    .unwrap();
    db.client()
        .await
        .execute("UPDATE id_lease SET next = 1 WHERE name = 'location'", &[])
        .await
        .unwrap();
    restart_api(&mut stack).await;
    let third = post_acked(&web, &ping(who, 2)).await;
    assert!(
        third > dead,
        "new id {third} not above the dead letter's {dead}"
    );
    eventually("stored", Duration::from_secs(30), || stored(&web, third)).await;
    assert_eq!(db.location_ids().await.len(), 1 + waiting.len() + 2);
}

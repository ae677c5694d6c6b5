//! tracker-mqtt as its own process, on the real Mosquitto, the broker and PostGIS: what phones
//! publish while it is down waits in its kept session at the broker, and is stored once it is
//! back, each message once, and a message delivered again is the same ping.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use udaconnect_testkit::http::register_device;
use udaconnect_testkit::mqtt;
use udaconnect_testkit::process::{printed_token, run_admin, RoleProc};

use crate::harness::{create_person, eventually, http, not_ready, started, Db, BIN};

/// The fix times (seconds since 1970) stored for `person`, in order.
async fn stored_times(db: &Db, person: i64) -> Vec<i64> {
    db.client()
        .await
        .query(
            "SELECT extract(epoch FROM creation_time)::bigint FROM location \
             WHERE person_id = $1 ORDER BY 1",
            &[&person],
        )
        .await
        .map(|rows| rows.iter().map(|r| r.get::<_, i64>(0)).collect())
        .unwrap_or_default()
}

/// Waits until `person`'s stored fix times are exactly `want` (ascending); fails at once on
/// more.
async fn wait_stored(db: &Db, person: i64, want: &[i64]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = stored_times(db, person).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline && got.len() <= want.len(),
            "stored {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn location(tst: i64) -> String {
    json!({"_type": "location", "lat": 48.137, "lon": 11.575, "tst": tst, "acc": 6}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_phones_publish_while_tracker_mqtt_is_down_is_stored_once_it_is_back() {
    let (_broker, db, mut stack) = started().await;
    let person = create_person(&stack.person_api.base(), "Oda").await;
    // Her account, which her phones belong to.
    let made = run_admin(
        Path::new(BIN),
        &[
            "create-token",
            "--role",
            "attendee",
            "--person",
            &person.to_string(),
            "--store",
            &db.url,
        ],
    );
    let attendee = printed_token(&made).trim().to_string();
    let name = udaconnect_testkit::unique("oda");
    let location_api = stack.location_api.base();
    let phone = register_device(&http(), &location_api, &attendee, (person, &name)).await;
    let topic = phone["mqtt_topic"].as_str().unwrap().to_string();

    // 2023-11-15T10:00:00Z, then one a minute.
    let first = 1_700_042_400;
    mqtt::publish(&topic, &[location(first)]).await;
    wait_stored(&db, person, &[first]).await;

    assert!(stack.tracker_mqtt.terminate(Duration::from_secs(30)).await);
    let later: Vec<i64> = (1..=20).map(|i| first + 60 * i).collect();
    let mut payloads: Vec<String> = later.iter().map(|t| location(*t)).collect();
    // Copies, as a broker delivers again a message whose acknowledgement it did not get: one
    // ping per device and fix time, in PostgreSQL as in SQLite.
    payloads.push(location(first));
    payloads.push(location(later[3]));
    mqtt::publish(&topic, &payloads).await;
    stack.tracker_mqtt.restart().await;
    stack.tracker_mqtt.wait_ready(Duration::from_secs(60)).await;
    let all: Vec<i64> = std::iter::once(first).chain(later).collect();
    wait_stored(&db, person, &all).await;
    // Nothing comes a second time.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stored_times(&db, person).await, all);
}

/// Without its broker, tracker-mqtt apart is alive but not ready, and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tracker_mqtt_apart_is_not_ready_without_its_broker() {
    let (broker, db, stack) = started().await;
    let nowhere = format!("mqtt://127.0.0.1:{}", udaconnect_testkit::free_port());
    let session = mqtt::Session::new();
    let args: Vec<String> = [
        "--store",
        &db.url,
        "--log",
        &broker.producer_url(),
        "--person-api",
        &stack.person_api.base(),
        "--mqtt",
        &nowhere,
        "--mqtt-client-id",
        &session.client_id,
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let role = RoleProc::spawn(Path::new(BIN), "tracker-mqtt", &args).await;
    let detail = eventually(
        "tracker-mqtt to say its broker is away",
        Duration::from_secs(30),
        || async {
            let detail = not_ready(&role).await?;
            detail.to_string().contains("mqtt_broker").then_some(detail)
        },
    )
    .await;
    assert_eq!(detail["status"], 503);
    let health = http()
        .get(format!("{}/health", role.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

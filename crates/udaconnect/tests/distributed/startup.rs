//! A database restored from a backup whose id lease is behind the ids it stores: a restarted
//! location-api takes its lease above them, so no acknowledged ping is shadowed by a new one.

use std::time::Duration;

use serde_json::json;

use crate::harness::{create_person, eventually, post_acked, started, stored};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_behind_the_stored_ids_is_raised_at_start() {
    let (_broker, db, mut stack) = started().await;
    let web = stack.web.base();
    let who = create_person(&web, "Ida").await;
    let ping = |n: u32| {
        json!({"person_id": who, "latitude": 1.0 + f64::from(n) * 1e-3, "longitude": 2.0,
               "creation_time": format!("2024-05-01T10:00:{n:02}Z")})
    };
    let mut acked = Vec::new();
    for n in 0..10 {
        acked.push((post_acked(&web, &ping(n)).await, ping(n)));
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
        let id = post_acked(&web, &ping(n)).await;
        assert!(id > highest, "new id {id} not above the stored {highest}");
        acked.push((id, ping(n)));
    }
    for (id, body) in &acked {
        let got = eventually("stored", Duration::from_secs(30), || stored(&web, *id)).await;
        assert_eq!(got["latitude"], body["latitude"], "location {id}");
    }
}

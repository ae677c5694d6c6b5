use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn ingest_then_read_back() {
    let app = spawn_app(true).await;
    let r = app
        .post_json(
            "/api/locations",
            &json!({"person_id": 5, "latitude": "37.55363", "longitude": "-122.290883",
                "creation_time": "2020-07-07T12:37:06+02:00"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let accepted: serde_json::Value = r.json().await.unwrap();
    let id = accepted["id"].as_i64().unwrap();
    // Seed location ids go up to 68; new ids never collide with them.
    assert!(id > 68, "{id}");
    assert_eq!(
        accepted,
        json!({"id": id, "person_id": 5, "latitude": 37.55363, "longitude": -122.290883,
            "creation_time": "2020-07-07T10:37:06Z"})
    );
    assert_eq!(app.stored_location(id).await, accepted);
}

#[tokio::test]
async fn naive_times_are_utc_and_missing_time_is_now() {
    let app = spawn_app(true).await;
    let a = app.ping(1, 10.0, 20.0, "2020-08-18T10:37:06.125").await;
    assert_eq!(a["creation_time"], "2020-08-18T10:37:06.125Z");
    let before = chrono::Utc::now();
    let r = app
        .post_json(
            "/api/locations",
            &json!({"person_id": 1, "latitude": 1, "longitude": 2}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let b: serde_json::Value = r.json().await.unwrap();
    let t = chrono::DateTime::parse_from_rfc3339(b["creation_time"].as_str().unwrap()).unwrap();
    assert!(t >= before - chrono::Duration::seconds(1) && t <= chrono::Utc::now());
    assert!(b["creation_time"].as_str().unwrap().ends_with('Z'));
    // What was answered is what is stored, to the microsecond.
    assert_eq!(app.stored_location(b["id"].as_i64().unwrap()).await, b);
}

#[tokio::test]
async fn seed_locations_are_readable_with_original_ids() {
    let app = spawn_app(true).await;
    let l = app.stored_location(29).await;
    assert_eq!(
        l,
        json!({"id": 29, "person_id": 1, "latitude": 37.553441, "longitude": -122.290524,
            "creation_time": "2020-08-18T10:37:06Z"})
    );
}

#[tokio::test]
async fn unknown_and_malformed_location_ids() {
    let app = spawn_app(true).await;
    assert_problem(app.get("/api/locations/123456789").await, 404, &[]).await;
    assert_problem(app.get("/api/locations/x1").await, 400, &["id"]).await;
}

#[tokio::test]
async fn invalid_pings_are_rejected_and_nothing_is_stored() {
    let app = spawn_app(true).await;
    let cases = [
        (
            json!({"person_id": 1, "latitude": 90.0001, "longitude": 0}),
            422,
            vec!["latitude"],
        ),
        (
            json!({"person_id": 1, "latitude": -91, "longitude": 0}),
            422,
            vec!["latitude"],
        ),
        (
            json!({"person_id": 1, "latitude": 0, "longitude": 180.5}),
            422,
            vec!["longitude"],
        ),
        (
            json!({"person_id": 1, "latitude": 0, "longitude": -181}),
            422,
            vec!["longitude"],
        ),
        (
            json!({"person_id": 1, "latitude": "NaN", "longitude": "inf"}),
            422,
            vec!["latitude", "longitude"],
        ),
        (
            json!({"person_id": 1, "latitude": "north", "longitude": 0}),
            400,
            vec!["latitude"],
        ),
        (
            json!({"person_id": 1, "latitude": true, "longitude": null}),
            400,
            vec!["latitude", "longitude"],
        ),
        (
            json!({"person_id": 777, "latitude": 0, "longitude": 0}),
            422,
            vec!["person_id"],
        ),
        (
            json!({"person_id": "five", "latitude": 0, "longitude": 0}),
            400,
            vec!["person_id"],
        ),
        (
            json!({"person_id": 1.5, "latitude": 0, "longitude": 0}),
            400,
            vec!["person_id"],
        ),
        (
            json!({"person_id": -1, "latitude": 0, "longitude": 0}),
            422,
            vec!["person_id"],
        ),
        (
            json!({"latitude": 0, "longitude": 0}),
            422,
            vec!["person_id"],
        ),
        (
            json!({"person_id": 1, "latitude": 0, "longitude": 0, "creation_time": "yesterday"}),
            400,
            vec!["creation_time"],
        ),
        (
            json!({"person_id": 1, "latitude": 0, "longitude": 0, "creation_time": "2020-02-30T00:00:00Z"}),
            400,
            vec!["creation_time"],
        ),
        (
            json!({"person_id": 1, "latitude": 0, "longitude": 0, "creation_time": 1594117026}),
            400,
            vec!["creation_time"],
        ),
        (json!("a string"), 400, vec!["body"]),
    ];
    for (body, status, fields) in cases {
        let r = app.post_json("/api/locations", &body).await;
        assert_problem(r, status, &fields).await;
    }
    assert_problem(
        app.post_raw("/api/locations", "{\"person_id\": 1,").await,
        400,
        &["body"],
    )
    .await;
    assert_problem(
        app.post_raw("/api/locations", "not json").await,
        400,
        &["body"],
    )
    .await;
    // A valid ping after all that gets the next id: none of the rejected ones reached the log.
    let ok = app.ping(1, 0.0, 0.0, "2020-01-01T00:00:00Z").await;
    app.stored_location(ok["id"].as_i64().unwrap()).await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("udaconnect_locations_accepted_total 1\n"),
        "{metrics}"
    );
}

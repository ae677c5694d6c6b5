use reqwest::StatusCode;
use serde_json::json;

use udaconnect_server::roles::Role;

use crate::suite::{assert_problem, assert_raw_problems, Api};

const ACCEPTED: &str = "udaconnect_locations_accepted_total";

pub async fn ingest_then_read_back(api: Api) {
    let accepted = api
        .post_accepted(
            "/api/locations",
            &json!({"person_id": 5, "latitude": "37.55363", "longitude": "-122.290883",
                "creation_time": "2020-07-07T12:37:06+02:00"}),
        )
        .await;
    let id = accepted["id"].as_i64().unwrap();
    // Seed location ids go up to 68; new ids never collide with them.
    assert!(id > 68, "{id}");
    assert_eq!(
        accepted,
        json!({"id": id, "person_id": 5, "latitude": 37.55363, "longitude": -122.290883,
            "creation_time": "2020-07-07T10:37:06Z"})
    );
    assert_eq!(api.stored_location(id).await, accepted);
    // An id written with a zero fraction is an integer (JSON Schema's rule, and the original's).
    let accepted = api
        .post_accepted(
            "/api/locations",
            &json!({"person_id": 5.0, "latitude": 1.5, "longitude": 2.5}),
        )
        .await;
    assert_eq!(accepted["person_id"], 5);
}

pub async fn naive_times_are_utc_and_missing_time_is_now(api: Api) {
    let a = api.ping(1, 10.0, 20.0, "2020-08-18T10:37:06.125").await;
    assert_eq!(a["creation_time"], "2020-08-18T10:37:06.125Z");
    let before = chrono::Utc::now();
    let b: serde_json::Value = api.ping_now(1, 1.0, 2.0).await.json().await.unwrap();
    let t = chrono::DateTime::parse_from_rfc3339(b["creation_time"].as_str().unwrap()).unwrap();
    assert!(t >= before - chrono::Duration::seconds(1) && t <= chrono::Utc::now());
    assert!(b["creation_time"].as_str().unwrap().ends_with('Z'));
    // What was answered is what is stored, to the microsecond.
    assert_eq!(api.stored_location(b["id"].as_i64().unwrap()).await, b);
}

pub async fn seed_locations_are_readable_with_original_ids(api: Api) {
    let l = api.stored_location(29).await;
    assert_eq!(
        l,
        json!({"id": 29, "person_id": 1, "latitude": 37.553441, "longitude": -122.290524,
            "creation_time": "2020-08-18T10:37:06Z"})
    );
}

pub async fn unknown_and_malformed_location_ids(api: Api) {
    assert_problem(api.get("/api/locations/123456789").await, 404, &[]).await;
    assert_problem(api.get("/api/locations/x1").await, 400, &["id"]).await;
}

pub async fn invalid_pings_are_rejected_and_nothing_is_stored(api: Api) {
    let accepted = api.at(Role::LocationApi).metric(ACCEPTED).await;
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
        let r = api.post_json("/api/locations", &body).await;
        assert_problem(r, status, &fields).await;
    }
    assert_raw_problems(
        &api,
        "/api/locations",
        &[
            ("{\"person_id\": 1,", 400, &["body"]),
            ("not json", 400, &["body"]),
        ],
    )
    .await;
    // A valid ping after all that gets the next id: none of the rejected ones reached the log.
    let ok = api.ping(1, 0.0, 0.0, "2020-01-01T00:00:00Z").await;
    api.stored_location(ok["id"].as_i64().unwrap()).await;
    assert_eq!(
        api.at(Role::LocationApi).metric(ACCEPTED).await,
        accepted + 1.0
    );
}

pub async fn batches_are_all_or_nothing(api: Api) {
    let accepted = api.at(Role::LocationApi).metric(ACCEPTED).await;
    let good = json!([
        {"person_id": 1, "latitude": 1.5, "longitude": 2.5, "creation_time": "2024-01-01T00:00:00Z"},
        {"person_id": 5, "latitude": "3", "longitude": "4", "creation_time": "2024-01-01T00:00:01Z"},
        {"person_id": 6, "latitude": 5, "longitude": 6},
    ]);
    let answer = api.post_accepted("/api/locations/batch", &good).await;
    assert_eq!(answer["accepted"], 3);
    let ids: Vec<i64> = answer["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(
        ids.windows(2).all(|w| w[1] > w[0]),
        "ids in item order: {ids:?}"
    );
    for (id, item) in ids.iter().zip(good.as_array().unwrap()) {
        let stored = api.stored_location(*id).await;
        assert_eq!(stored["person_id"], item["person_id"]);
    }

    // One bad item rejects the batch and is named by index; the others are not stored.
    let bad = json!([
        {"person_id": 1, "latitude": 10, "longitude": 10, "creation_time": "2024-02-01T00:00:00Z"},
        {"person_id": 1, "latitude": 95, "longitude": 10},
        {"person_id": 424242, "latitude": 1, "longitude": 1},
        {"person_id": 1, "latitude": 1, "longitude": 200},
    ]);
    assert_problem(
        api.post_json("/api/locations/batch", &bad).await,
        422,
        &["[1].latitude", "[2].person_id", "[3].longitude"],
    )
    .await;
    let unknown = json!([
        {"person_id": 1, "latitude": 10, "longitude": 10},
        {"person_id": 424242, "latitude": 1, "longitude": 1},
    ]);
    assert_problem(
        api.post_json("/api/locations/batch", &unknown).await,
        422,
        &["[1].person_id"],
    )
    .await;
    let types = json!([{"person_id": "x", "latitude": 1, "longitude": 1}, 5]);
    assert_problem(
        api.post_json("/api/locations/batch", &types).await,
        400,
        &["[0].person_id", "[1]"],
    )
    .await;
    assert_problem(
        api.post_json("/api/locations/batch", &json!({"person_id": 1}))
            .await,
        400,
        &["body"],
    )
    .await;
    assert_problem(
        api.post_json("/api/locations/batch", &json!([])).await,
        422,
        &["body"],
    )
    .await;
    assert_eq!(
        api.at(Role::LocationApi).metric(ACCEPTED).await,
        accepted + 3.0,
        "only the good batch"
    );
}

pub async fn ndjson_batches(api: Api) {
    let body = "{\"person_id\": 8, \"latitude\": 1, \"longitude\": 1}\n\n{\"person_id\": 9, \"latitude\": 2, \"longitude\": 2}\n";
    let r = api.post_ndjson("/api/locations/batch", body).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let answer: serde_json::Value = r.json().await.unwrap();
    let second = answer["ids"][1].as_i64().unwrap();
    assert_eq!(api.stored_location(second).await["person_id"], 9);
    let broken = "{\"person_id\": 8, \"latitude\": 1, \"longitude\": 1}\n{\"person_id\": 9,\n";
    let r = api.post_ndjson("/api/locations/batch", broken).await;
    assert_problem(r, 400, &["[1]"]).await;
}

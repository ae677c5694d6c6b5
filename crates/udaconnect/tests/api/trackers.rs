//! Tracker apps, with payloads written from the apps' documented formats: a phone registered
//! by its attendee, its pings through OwnTracks (`POST /pub`) and the OsmAnd protocol
//! (`/api/osmand`: query fields, and Traccar Client's JSON) found in the connection answer;
//! wrong credentials and unknown ids refused; other messages taken and ignored.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use udaconnect_testkit::http;

use crate::suite::Api;

const DAY: &str = "start_date=2023-11-15&end_date=2023-11-15&distance=20";

pub async fn phones_post_through_owntracks_and_the_osmand_protocol(api: Api) {
    let tara = api.create_person("Tara").await["id"].as_i64().unwrap();
    let ugo = api.create_person("Ugo").await["id"].as_i64().unwrap();
    let token = api.admin_token("attendee", tara).await;
    let r = api
        .client
        .post(api.url("/api/me/devices"))
        .bearer_auth(&token)
        // Named, as the suite runs with `--auth off` too, where no token says who asks.
        .json(&json!({"name": "Tara's phone", "person_id": tara}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let phone: Value = r.json().await.unwrap();
    let device_token = phone["token"].as_str().unwrap().to_string();
    let osmand_id = phone["osmand_id"].as_str().unwrap().to_string();
    // Waits until Ugo's connection answer holds a location of Tara at this place.
    let met = |lat: f64, lon: f64| {
        let timeout = Duration::from_secs(20);
        http::met(
            &api.client,
            &api.base,
            (ugo, DAY),
            (tara, lat, lon),
            timeout,
        )
    };

    // OwnTracks, as the booklet writes a location.
    api.ping(ugo, -41.2865, 174.7762, "2023-11-15T09:00:00Z")
        .await;
    let pub_ = |body: &'static str, password: String| {
        let request = api
            .client
            .post(api.url("/pub"))
            .basic_auth("tara", Some(password))
            .header("Content-Type", "application/json")
            .body(body);
        async move { request.send().await.unwrap() }
    };
    let location = r#"{"_type":"location","acc":10,"alt":12,"batt":90,"bs":1,"conn":"m",
        "created_at":1700038801,"lat":-41.2865,"lon":174.7762,"t":"p","tid":"tr",
        "tst":1700038800,"vac":3,"vel":0}"#;
    let r = pub_(location, device_token.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "[]");
    met(-41.2865, 174.7762).await;
    let r = pub_(
        r#"{"_type":"transition","event":"leave","tst":1700038800}"#,
        device_token.clone(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = pub_(location, "not-a-token".into()).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The OsmAnd protocol's query fields, then Traccar Client's JSON.
    api.ping(ugo, -41.2901, 174.7801, "2023-11-15T09:05:00Z")
        .await;
    let r = api
        .get(&format!(
            "/api/osmand?id={osmand_id}&timestamp=1700039100&lat=-41.2901&lon=174.7801&speed=1&bearing=3&altitude=5&accuracy=4&batt=88"
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    met(-41.2901, 174.7801).await;
    api.ping(ugo, -41.2950, 174.7850, "2023-11-15T09:10:00Z")
        .await;
    let r = api
        .client
        .post(api.url("/api/osmand"))
        .json(&json!({"device_id": osmand_id, "location": {
            "timestamp": "2023-11-15T09:10:00.000Z", "is_moving": false, "event": "heartbeat",
            "coords": {"latitude": -41.295, "longitude": 174.785, "accuracy": 6, "speed": 0,
                       "heading": -1, "altitude": 7},
            "battery": {"level": 0.87, "is_charging": true}, "activity": {"type": "still"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    met(-41.295, 174.785).await;
    let r = api
        .get("/api/osmand?id=ffffffffffffffffffffffffffffffff&lat=1&lon=2")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

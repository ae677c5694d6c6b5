//! Tracker apps end to end, with payloads written from the apps' documented formats: a phone
//! registered, its pings through OwnTracks (`POST /pub`), the OsmAnd protocol (`/api/osmand`
//! and the OsmAnd listener) and Traccar Client's JSON, each found in the connection answer;
//! wrong or missing credentials refused; other messages and odd fields never break ingest.

use std::time::Duration;

use reqwest::{header, Client, StatusCode};
use serde_json::{json, Value};
use udaconnect_core::auth::{Role, TokenSecret};
use udaconnect_store::SqliteAccountStore;
use udaconnect_testkit::accounts::issue_token;
use udaconnect_testkit::http::{self, create_person};

use crate::app::{spawn_signed_app, TestApp};

/// A token in `role` for `person` (made as `admin create-token` does).
async fn token(app: &TestApp, role: Role, person: Option<i64>) -> TokenSecret {
    let store = SqliteAccountStore::open(app.data_dir().join("accounts.sqlite3")).unwrap();
    issue_token(&store, role, person, "laptop").await
}

async fn register(app: &TestApp, token: &TokenSecret, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/me/devices"))
        .bearer_auth(token.expose())
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// `Authorization: Basic` of `user:password`, written out (RFC 7617).
fn basic(user: &str, password: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

async fn owntracks(app: &TestApp, auth: Option<&str>, body: &str) -> reqwest::Response {
    let mut r = app
        .client
        .post(app.url("/pub"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_string());
    if let Some(auth) = auth {
        r = r.header(header::AUTHORIZATION, auth);
    }
    r.send().await.unwrap()
}

/// A ping of `person` by `POST /api/locations` at this place and time, by `staff`.
async fn plain_ping(app: &TestApp, staff: &Client, person: i64, lat: f64, lon: f64, time: &str) {
    let r = staff
        .post(app.url("/api/locations"))
        .json(
            &json!({"person_id": person, "latitude": lat, "longitude": lon, "creation_time": time}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_phone_registered_posts_through_owntracks_and_the_osmand_protocol() {
    let app = spawn_signed_app().await;
    // An admin makes the persons and Ben's pings, and reads Ben's connections.
    let admin = token(&app, Role::Admin, None).await;
    let mut bearer = header::HeaderMap::new();
    let value = format!("Bearer {}", admin.expose());
    bearer.insert(header::AUTHORIZATION, value.parse().unwrap());
    let staff = Client::builder().default_headers(bearer).build().unwrap();
    let ana = create_person(&staff, &app.address, "Ana").await;
    let ben = create_person(&staff, &app.address, "Ben").await;
    let ana_token = token(&app, Role::Attendee, Some(ana)).await;
    // Waits until Ben's connection answer (on 2023-11-14, within 50 m) holds Ana here.
    let met = |lat: f64, lon: f64| {
        let day = "start_date=2023-11-14&end_date=2023-11-14&distance=50";
        let timeout = Duration::from_secs(10);
        http::met(&staff, &app.address, (ben, day), (ana, lat, lon), timeout)
    };
    let ben_token = token(&app, Role::Attendee, Some(ben)).await;

    // Bad input, and no credential.
    for (body, status) in [
        (json!({}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"name": " "}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"name": "x".repeat(65)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"name": 5}), StatusCode::BAD_REQUEST),
        (
            json!({"name": "Pixel", "person_id": ben}),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let r = register(&app, &ana_token, body.clone()).await;
        assert_eq!(r.status(), status, "{body}");
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
    let r = app
        .post_json("/api/me/devices", &json!({"name": "Pixel"}))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = register(&app, &ana_token, json!({"name": "Ana's Pixel"})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let phone: Value = r.json().await.unwrap();
    let device_token = phone["token"].as_str().unwrap().to_string();
    let osmand_id = phone["osmand_id"].as_str().unwrap().to_string();
    let topic = phone["mqtt_topic"].as_str().unwrap().to_string();
    assert!(device_token.starts_with("uc_"));
    assert_eq!(osmand_id.len(), 32);
    assert_eq!(
        topic,
        format!("owntracks/p{ana}/ana-s-pixel-{}", phone["id"])
    );
    assert_eq!(phone["owntracks"]["password"], device_token.as_str());
    assert_eq!(phone["owntracks"]["url"], app.url("/pub"));
    assert_eq!(phone["traccar"]["device_id"], osmand_id.as_str());

    // OwnTracks, as the booklet writes a location, with fields UdaConnect does not know.
    plain_ping(&app, &staff, ben, 52.5, 13.4, "2023-11-14T22:13:20Z").await;
    let location = r#"{"_type":"location","acc":8,"alt":40,"batt":77,"bs":1,"cog":90,
        "conn":"w","created_at":1700000001,"lat":52.5,"lon":13.4,"m":1,"t":"u","tid":"ap",
        "tst":1700000000,"vac":2,"vel":4,"SSID":"venue","BSSID":"aa:bb","inregions":["hall"],
        "poi":"booth 7","new_field_of_a_later_app":{"x":[1,2]}}"#;
    let auth = basic("ana", &device_token);
    let r = owntracks(&app, Some(&auth), location).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(r.text().await.unwrap(), "[]");
    let stored = met(52.5, 13.4).await;
    assert_eq!(stored["creation_time"], "2023-11-14T22:13:20Z");

    // Other messages, an empty body, and the Recorder's headers: taken, nothing stored.
    for body in [
        r#"{"_type":"transition","event":"enter","desc":"hall","tst":1700000000,"wtst":1,"acc":5,"lat":1,"lon":2,"tid":"ap","t":"c"}"#,
        r#"{"_type":"lwt","tst":1700000000}"#,
        r#"{"_type":"waypoints","waypoints":[{"_type":"waypoint","desc":"x","lat":1,"lon":2,"rad":50,"tst":1}]}"#,
        r#"{"_type":"encrypted","data":"bm90IHJlYWw="}"#,
        r#"{"_type":"status","android":{}}"#,
        "",
    ] {
        let r = app
            .client
            .post(app.url("/pub"))
            .header(header::AUTHORIZATION, &auth)
            .header("X-Limit-U", format!("p{ana}"))
            .header("X-Limit-D", "whatever")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{body}");
        assert_eq!(r.text().await.unwrap(), "[]");
    }

    // Wrong or missing credentials.
    for auth in [
        None,
        Some(basic("ana", "wrong")),
        Some(basic("ana", &format!("uc_{}", "A".repeat(43)))),
        Some(format!("Bearer {device_token}")),
    ] {
        let r = owntracks(&app, auth.as_deref(), location).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert!(r.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Basic"));
    }
    // A device naming another person's device: refused.
    let bens = register(&app, &ben_token, json!({"name": "Phone"})).await;
    let bens: Value = bens.json().await.unwrap();
    let r = owntracks(
        &app,
        Some(&auth),
        &location.replace(
            "\"tid\":\"ap\"",
            &format!("\"topic\":\"{}\"", bens["mqtt_topic"].as_str().unwrap()),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A location that breaks a rule: refused with the field named.
    let r = owntracks(
        &app,
        Some(&auth),
        r#"{"_type":"location","lat":91,"lon":2,"tst":1700000000}"#,
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "lat");

    // The OsmAnd protocol in the query, speed in knots.
    plain_ping(&app, &staff, ben, 48.1, 11.5, "2023-11-14T22:13:21Z").await;
    let r = app
        .get(&format!(
            "/api/osmand?id={osmand_id}&timestamp=1700000001&lat=48.1&lon=11.5&speed=3&bearing=10&altitude=500&accuracy=6&hdop=0.9&batt=64"
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "");
    met(48.1, 11.5).await;
    // As a form, on the OsmAnd listener's root, as Traccar Client sends it.
    plain_ping(&app, &staff, ben, 40.4, -3.7, "2023-11-14T22:13:22Z").await;
    let listener = app.osmand.clone().expect("OsmAnd listener on");
    let r = app
        .client
        .post(format!("{listener}/"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!(
            "id={osmand_id}&timestamp=2023-11-14T22%3A13%3A22Z&lat=40.4&lon=-3.7&batt=63.5&charge=false"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    met(40.4, -3.7).await;
    // Traccar Client's JSON body, as Traccar documents it.
    plain_ping(&app, &staff, ben, 35.6, 139.7, "2023-11-14T22:13:23Z").await;
    let r = app
        .client
        .post(format!("{listener}/"))
        .json(
            &json!({"location": {"timestamp": "2023-11-14T22:13:23.000Z",
            "coords": {"latitude": 35.6, "longitude": 139.7, "accuracy": 5, "speed": 1.2,
                       "heading": 270, "altitude": 40},
            "is_moving": true, "odometer": 120, "event": "motionchange",
            "battery": {"level": 0.62, "is_charging": false},
            "activity": {"type": "walking"}, "extras": {}},
            "device_id": osmand_id}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    met(35.6, 139.7).await;

    // Each app's extras are kept with its ping, in SI units, and read back by Ana's own reads.
    let kept = [
        // OwnTracks: `vel` in km/h.
        json!({"creation_time": "2023-11-14T22:13:20Z", "accuracy_m": 8.0, "altitude_m": 40.0,
               "speed_mps": 4.0 / 3.6, "heading_deg": 90.0, "battery_pct": 77.0,
               "app": "owntracks"}),
        // The OsmAnd protocol's query: `speed` in knots (the server's default unit).
        json!({"creation_time": "2023-11-14T22:13:21Z", "accuracy_m": 6.0, "altitude_m": 500.0,
               "speed_mps": 3.0 * 1852.0 / 3600.0, "heading_deg": 10.0, "battery_pct": 64.0,
               "app": "osmand"}),
        json!({"creation_time": "2023-11-14T22:13:22Z", "battery_pct": 63.5, "app": "osmand"}),
        // Traccar Client: m/s, and the battery's level out of 1.
        json!({"creation_time": "2023-11-14T22:13:23Z", "accuracy_m": 5.0, "altitude_m": 40.0,
               "speed_mps": 1.2, "heading_deg": 270.0, "battery_pct": 62.0,
               "app": "traccar-client"}),
    ];
    // The contract's read of a ping stays as it was: it shows none of them.
    http::assert_extras_kept(
        &app.client,
        &app.address,
        ana_token.expose(),
        &staff,
        "2023-11-14",
        &kept,
        Duration::from_secs(10),
    )
    .await;

    // Unknown or missing ids, as Traccar refuses them: 400.
    for query in [
        "id=0123456789abcdef0123456789abcdef&lat=1&lon=2".to_string(),
        "lat=1&lon=2".to_string(),
        format!("id={osmand_id}&lat=1&lon=north"),
    ] {
        let r = app.get(&format!("/api/osmand?{query}")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }

    // Listed with last seen, app and battery; no secret.
    let r = app
        .client
        .get(app.url("/api/me/devices"))
        .bearer_auth(ana_token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(
        !text.contains(&device_token) && !text.contains(&osmand_id),
        "{text}"
    );
    let listed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "Ana's Pixel");
    assert_eq!(listed[0]["app"], "traccar-client");
    assert_eq!(listed[0]["battery"], 62);
    assert!(listed[0]["last_seen"].is_string());
    assert_eq!(listed[0]["mqtt_topic"], topic.as_str());
    // The device token itself may not list or register devices.
    let r = app
        .client
        .get(app.url("/api/me/devices"))
        .bearer_auth(&device_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // As a Bearer token it posts Ana's pings through the API (and is remembered there).
    let post_as_phone = || {
        let ping = json!({"person_id": ana, "latitude": 1.0, "longitude": 2.0,
            "creation_time": "2023-11-14T12:00:00Z"});
        let request = app.client.post(app.url("/api/locations"));
        request.bearer_auth(&device_token).json(&ping).send()
    };
    assert_eq!(
        post_as_phone().await.unwrap().status(),
        StatusCode::ACCEPTED
    );

    // Ben may not revoke Ana's device; Ana may, and then both credentials stop working.
    let revoke = |token: String| {
        let url = app.url(&format!("/api/me/devices/{}", phone["id"]));
        let client = app.client.clone();
        async move { client.delete(url).bearer_auth(token).send().await.unwrap() }
    };
    assert_eq!(
        revoke(ben_token.expose().into()).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        revoke(ana_token.expose().into()).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        revoke(ana_token.expose().into()).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        owntracks(&app, Some(&auth), location).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // At once, though the process had the token in its credential cache.
    assert_eq!(
        post_as_phone().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .get(&format!("/api/osmand?id={osmand_id}&lat=1&lon=2"))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    app.stop().await.unwrap();
}

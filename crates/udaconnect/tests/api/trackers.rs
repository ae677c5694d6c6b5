//! Tracker apps, with payloads written from the apps' documented formats: a phone registered
//! by its attendee, its pings through OwnTracks (`POST /pub`) and the OsmAnd protocol
//! (`/api/osmand`: query fields, and Traccar Client's JSON) found in the connection answer;
//! wrong credentials and unknown ids refused; other messages taken and ignored. OwnTracks in
//! MQTT mode through the real Mosquitto, read by tracker-mqtt.

use std::future::Future;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use udaconnect_server::roles::Role;
use udaconnect_testkit::{http, mqtt};

use crate::suite::Api;

const DAY: &str = "start_date=2023-11-15&end_date=2023-11-15&distance=20";

/// `person`'s phone named `name`, registered with `token`.
async fn register(api: &Api, token: &str, person: i64, name: &str) -> Value {
    http::register_device(&api.client, &api.base, token, (person, name)).await
}

/// `body` posted to `url` as the OwnTracks app posts over HTTP: JSON, with Basic credentials.
fn post_owntracks(
    api: &Api,
    url: &str,
    (user, password): (&str, &str),
    body: impl Into<reqwest::Body>,
) -> impl Future<Output = reqwest::Response> {
    let request = api
        .client
        .post(url)
        .basic_auth(user, Some(password))
        .header("Content-Type", "application/json")
        .body(body);
    http::sent(request)
}

/// Waits until `asked`'s connection answer on [`DAY`] holds a location of `other` at `lat`,
/// `lon`.
async fn met_on_the_day(api: &Api, asked: i64, (other, lat, lon): (i64, f64, f64)) -> Value {
    let timeout = Duration::from_secs(20);
    http::met(
        &api.client,
        &api.base,
        (asked, DAY),
        (other, lat, lon),
        timeout,
    )
    .await
}

pub async fn phones_post_through_owntracks_and_the_osmand_protocol(api: Api) {
    let tara = api.create_person("Tara").await["id"].as_i64().unwrap();
    let ugo = api.create_person("Ugo").await["id"].as_i64().unwrap();
    let token = api.admin_token("attendee", tara).await;
    // Named, as the suite runs with `--auth off` too, where no token says who asks.
    let phone = register(&api, &token, tara, "Tara's phone").await;
    let device_token = phone["token"].as_str().unwrap().to_string();
    let osmand_id = phone["osmand_id"].as_str().unwrap().to_string();
    // Waits until Ugo's connection answer holds a location of Tara at this place.
    let met = |lat: f64, lon: f64| met_on_the_day(&api, ugo, (tara, lat, lon));

    // OwnTracks, as the booklet writes a location.
    api.ping(ugo, -41.2865, 174.7762, "2023-11-15T09:00:00Z")
        .await;
    let pub_ = |body: &'static str, password: &str| {
        post_owntracks(&api, &api.url("/pub"), ("tara", password), body)
    };
    let location = r#"{"_type":"location","acc":10,"alt":12,"batt":90,"bs":1,"conn":"m",
        "created_at":1700038801,"lat":-41.2865,"lon":174.7762,"t":"p","tid":"tr",
        "tst":1700038800,"vac":3,"vel":0}"#;
    let r = pub_(location, &device_token).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "[]");
    met(-41.2865, 174.7762).await;
    let r = pub_(
        r#"{"_type":"transition","event":"leave","tst":1700038800}"#,
        &device_token,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = pub_(location, "not-a-token").await;
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

/// OwnTracks in MQTT mode, through the real Mosquitto: a location published on the device's
/// topic reaches the connection answer; one on a topic no device has is refused (counted by
/// tracker-mqtt, never stored) and holds up nothing behind it.
pub async fn owntracks_over_mqtt_is_stored_and_unknown_topics_refused(api: Api) {
    let vera = api.create_person("Vera").await["id"].as_i64().unwrap();
    let walt = api.create_person("Walt").await["id"].as_i64().unwrap();
    let token = api.admin_token("attendee", vera).await;
    // A name of its own: every engine on this machine reads the same broker, and a topic
    // names its device's person, id and name.
    let name = udaconnect_testkit::unique("vera");
    let phone = register(&api, &token, vera, &name).await;
    let topic = phone["mqtt_topic"].as_str().unwrap().to_string();
    assert!(topic.starts_with(&format!("owntracks/p{vera}/")), "{topic}");
    let refused_before = refused(&api).await;
    let location = |lat: f64, lon: f64, tst: i64| {
        json!({"_type": "location", "lat": lat, "lon": lon, "tst": tst, "acc": 8,
               "batt": 71, "tid": "vr", "conn": "w"})
        .to_string()
    };
    api.ping(walt, -33.8688, 151.2093, "2023-11-15T10:00:00Z")
        .await;
    api.ping(walt, -33.8700, 151.2100, "2023-11-15T10:05:00Z")
        .await;
    let met = |lat: f64, lon: f64| met_on_the_day(&api, walt, (vera, lat, lon));
    mqtt::publish(&topic, &[location(-33.8688, 151.2093, 1700042400)]).await;
    met(-33.8688, 151.2093).await;

    // The same person and device id under another name: not the device's topic.
    let (user, _) = topic.rsplit_once('/').unwrap();
    let id = topic.rsplit('-').next().unwrap();
    let forged = format!("{user}/guessed-{id}");
    mqtt::publish(&forged, &[location(-33.8694, 151.2096, 1700042500)]).await;
    // A transition on the event subtopic, and a message that is not JSON: taken, no ping.
    mqtt::publish(
        &format!("{topic}/event"),
        &[r#"{"_type":"transition","event":"enter","tst":1700042550}"#.to_string()],
    )
    .await;
    mqtt::publish(&topic, &["not json".to_string()]).await;
    mqtt::publish(&topic, &[location(-33.8700, 151.2100, 1700042700)]).await;
    met(-33.8700, 151.2100).await;
    let answer = api
        .get_json(&format!("/api/persons/{walt}/connection?{DAY}"))
        .await;
    let forged_here = answer.as_array().unwrap().iter().any(|c| {
        c["location"]["person_id"] == vera && c["location"]["latitude"].as_f64() == Some(-33.8694)
    });
    assert!(!forged_here, "a forged topic's location was stored");
    assert!(refused(&api).await >= refused_before + 2);
}

/// "Add a phone" answers OwnTracks' importable configuration: an `.otrc` document that holds
/// the URL, user, device and password the app needs (and that work), the `owntracks:///config`
/// URL carrying it, and that URL as a QR code a decoder reads back.
pub async fn owntracks_configuration_is_a_document_a_url_and_a_qr_code(api: Api) {
    let cleo = api.create_person("Cleo").await["id"].as_i64().unwrap();
    let token = api.admin_token("attendee", cleo).await;
    let phone = register(&api, &token, cleo, "Cleo's Pixel").await;
    let owntracks = &phone["owntracks"];
    let otrc = &owntracks["otrc"];
    let device_id = phone["mqtt_topic"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    assert_eq!(
        *otrc,
        json!({"_type": "configuration", "mode": 3, "url": api.url("/pub"), "auth": true,
               "username": format!("p{cleo}"), "password": phone["token"], "deviceId": device_id,
               "tid": "CL"})
    );
    // What the app would do with it: post a location to its URL as its user.
    let location = r#"{"_type":"location","lat":48.8566,"lon":2.3522,"tst":1700042400,"tid":"CL"}"#;
    let user = (
        otrc["username"].as_str().unwrap(),
        otrc["password"].as_str().unwrap(),
    );
    let r = post_owntracks(&api, otrc["url"].as_str().unwrap(), user, location).await;
    assert_eq!(r.status(), StatusCode::OK);

    // The URL carries the document; the QR code carries the URL.
    let config_url = owntracks["config_url"].as_str().unwrap();
    let url = reqwest::Url::parse(config_url).unwrap();
    assert_eq!((url.scheme(), url.path()), ("owntracks", "/config"));
    let inline = url.query_pairs().find(|(k, _)| k == "inline").unwrap().1;
    assert!(
        !config_url.contains('+'),
        "a + in a query reads as a space: {config_url}"
    );
    use base64::Engine as _;
    let document = base64::engine::general_purpose::STANDARD
        .decode(inline.as_bytes())
        .unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&document).unwrap(), *otrc);
    let svg = owntracks["qr_svg"].as_str().unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    assert_eq!(read_qr(svg), config_url);
}

/// The text of a QR code drawn as the server draws it (one unit per module, the dark runs in
/// one path as `M{x} {y}h{w}v{h}H{x}V{y}`), read by a QR decoder from the pixels drawn.
fn read_qr(svg: &str) -> String {
    const SCALE: usize = 4;
    let between = |start: &str| {
        let from = svg
            .find(start)
            .unwrap_or_else(|| panic!("no {start} in {svg}"))
            + start.len();
        &svg[from..from + svg[from..].find('"').unwrap()]
    };
    let size: usize = between(" width=\"").parse().unwrap();
    let mut dark = vec![false; size * size];
    for run in between(" d=\"").split('M').filter(|r| !r.is_empty()) {
        let n: Vec<usize> = run
            .split(|c: char| !c.is_ascii_digit())
            .filter(|n| !n.is_empty())
            .map(|n| n.parse().unwrap())
            .collect();
        let (x, y, w, h) = (n[0], n[1], n[2], n[3]);
        for row in y..y + h {
            dark[row * size + x..row * size + x + w].fill(true);
        }
    }
    let pixels = size * SCALE;
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(pixels, pixels, |x, y| {
        if dark[(y / SCALE) * size + x / SCALE] {
            0
        } else {
            255
        }
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the picture");
    grids[0].decode().expect("a readable QR code").1
}

/// How many MQTT messages tracker-mqtt refused, from its metrics.
async fn refused(api: &Api) -> u64 {
    let text = api
        .at(Role::TrackerMqtt)
        .get("/metrics")
        .await
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("udaconnect_mqtt_messages_total{outcome=\"refused\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// A phone sends a ping again after a timeout, and Traccar Client's copy may differ below the
/// second: the same (device, fix time) is one ping, in the store (read by its id, the device's
/// and the second's), the index or PostGIS, and the connection answer.
pub async fn copies_of_a_phones_ping_are_one_ping(api: Api) {
    let ana = api.create_person("Ana").await["id"].as_i64().unwrap();
    let bo = api.create_person("Bo").await["id"].as_i64().unwrap();
    let token = api.admin_token("attendee", ana).await;
    let r = api
        .client
        .post(api.url("/api/me/devices"))
        .bearer_auth(&token)
        .json(&json!({"name": "Ana's phone", "person_id": ana}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let phone: Value = r.json().await.unwrap();
    let device = phone["id"].as_i64().unwrap();
    let device_token = phone["token"].as_str().unwrap().to_string();
    let osmand_id = phone["osmand_id"].as_str().unwrap().to_string();
    const DAY17: &str = "start_date=2023-11-17&end_date=2023-11-17&distance=20";
    // Bo is at each place Ana's phone reports, at its time.
    let places = [
        (35.6581, 139.7017, "2023-11-17T09:00:00Z"),
        (35.6590, 139.7030, "2023-11-17T09:05:00Z"),
        (35.6600, 139.7040, "2023-11-17T09:10:00Z"),
        (35.6700, 139.7100, "2023-11-17T09:15:00Z"),
    ];
    for (lat, lon, at) in places {
        api.ping(bo, lat, lon, at).await;
    }
    let pub_ = |body: String| post_owntracks(&api, &api.url("/pub"), ("ana", &device_token), body);
    let owntracks = |lat: f64, lon: f64, tst: i64| {
        json!({"_type": "location", "lat": lat, "lon": lon, "tst": tst, "acc": 5, "tid": "an"})
            .to_string()
    };
    // OwnTracks, twice (the app sends again when the answer came too late).
    for _ in 0..2 {
        let r = pub_(owntracks(35.6581, 139.7017, 1_700_211_600)).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    // The OsmAnd protocol, in seconds and then in milliseconds.
    for timestamp in ["1700211900", "1700211900000"] {
        let r = api
            .get(&format!(
                "/api/osmand?id={osmand_id}&timestamp={timestamp}&lat=35.659&lon=139.703"
            ))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    // Traccar Client's JSON, two copies in one second (its milliseconds differ).
    for at in ["2023-11-17T09:10:00.250Z", "2023-11-17T09:10:00.700Z"] {
        let r = api
            .client
            .post(api.url("/api/osmand"))
            .json(
                &json!({"device_id": osmand_id, "location": {"timestamp": at,
                "coords": {"latitude": 35.66, "longitude": 139.704, "accuracy": 6}}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    // Last, and once: when it is in the answer, every copy before it has been read (one
    // person's pings keep their order on the log).
    let r = pub_(owntracks(35.67, 139.71, 1_700_212_500)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let timeout = Duration::from_secs(20);
    http::met(
        &api.client,
        &api.base,
        (bo, DAY17),
        (ana, 35.67, 139.71),
        timeout,
    )
    .await;

    let answer = api
        .get_json(&format!("/api/persons/{bo}/connection?{DAY17}"))
        .await;
    let mut found: Vec<(i64, String)> = answer
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["location"])
        .filter(|l| l["person_id"] == ana)
        .map(|l| (l["id"].as_i64().unwrap(), l["creation_time"].to_string()))
        .collect();
    found.sort();
    let want: Vec<(i64, String)> = places
        .iter()
        .map(|(_, _, at)| {
            let t = chrono::DateTime::parse_from_rfc3339(at).unwrap().to_utc();
            let id = udaconnect_core::record::fix_id(device, t).unwrap();
            (id, format!("\"{}\"", at))
        })
        .collect();
    assert_eq!(found, want, "Ana's pings in Bo's connection answer");
    for (id, _) in &want {
        let stored = api.stored_location(*id).await;
        assert_eq!(stored["person_id"], ana);
    }
}

/// The page's "Share my location": an attendee's own pings by `POST /api/me/locations`, each
/// with its fix time; sent again, late and out of order, each is one ping, under the account's
/// browser device. Bad bodies are problems, another person's ping is 403.
pub async fn the_pages_pings_are_one_per_fix_second(api: Api) {
    let lea = api.create_person("Lea").await["id"].as_i64().unwrap();
    let max = api.create_person("Max").await["id"].as_i64().unwrap();
    let token = api.admin_token("attendee", lea).await;
    let post = |body: Value| {
        let request = api
            .client
            .post(api.url("/api/me/locations"))
            .bearer_auth(&token)
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    let ping =
        |lat: f64, at: &str| json!({"latitude": lat, "longitude": 151.2153, "creation_time": at});

    let many: Vec<Value> = (0..101)
        .map(|_| ping(-33.8568, "2023-11-18T09:00:00Z"))
        .collect();
    for (body, status) in [
        (
            json!({"latitude": 1, "longitude": 2}),
            StatusCode::BAD_REQUEST,
        ),
        (json!([]), StatusCode::UNPROCESSABLE_ENTITY),
        (Value::Array(many), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!([{"latitude": 1, "longitude": 2}]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!([ping(91.0, "2023-11-18T09:00:00Z")]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!([1]), StatusCode::BAD_REQUEST),
        (
            json!([{"person_id": max, "latitude": 1, "longitude": 2, "creation_time": "2023-11-18T09:00:00Z"}]),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let r = post(body.clone()).await;
        assert_eq!(r.status(), status, "{body}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    let anonymous = reqwest::Client::new()
        .post(api.url("/api/me/locations"))
        .json(&json!([ping(-33.8568, "2023-11-18T09:00:00Z")]))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // Two fixes, a copy of the first within its second, in one body.
    let r = post(json!([
        ping(-33.8568, "2023-11-18T09:00:00.100Z"),
        ping(-33.8570, "2023-11-18T09:00:30Z"),
        ping(-33.8568, "2023-11-18T09:00:00.900Z"),
    ]))
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["accepted"], 2, "{first}");
    // Sent again (its answer lost), then a fix from before them that waited offline, then the
    // last, whose arrival says every one before it was read.
    for body in [
        json!([
            ping(-33.8568, "2023-11-18T09:00:00Z"),
            ping(-33.8570, "2023-11-18T09:00:30Z")
        ]),
        json!([ping(-33.8566, "2023-11-18T08:59:30Z")]),
        json!([ping(-33.8572, "2023-11-18T09:01:00Z")]),
    ] {
        let r = post(body).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let mine = || http::my_locations(&api.client, &api.base, &token, "2023-11-18");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let stored = loop {
        let stored = mine().await;
        if stored
            .iter()
            .any(|l| l["creation_time"] == "2023-11-18T09:01:00Z")
        {
            break stored;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the last ping never stored: {stored:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let times: Vec<&str> = stored
        .iter()
        .map(|l| l["creation_time"].as_str().unwrap())
        .collect();
    assert_eq!(
        times,
        [
            "2023-11-18T08:59:30Z",
            "2023-11-18T09:00:00Z",
            "2023-11-18T09:00:30Z",
            "2023-11-18T09:01:00Z"
        ],
        "one ping per fix second, in time order"
    );
    assert!(stored.iter().all(|l| l["person_id"] == lea));

    // The browser's device is listed with the account's phones.
    let devices: Vec<Value> = api
        .client
        .get(api.url("/api/me/devices"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let browser: Vec<&Value> = devices.iter().filter(|d| d["app"] == "browser").collect();
    assert_eq!(browser.len(), 1, "{devices:?}");
    assert_eq!(browser[0]["name"], "Browser (Share my location)");
    let device = browser[0]["id"].as_i64().unwrap();
    let at = chrono::DateTime::parse_from_rfc3339("2023-11-18T09:00:00Z")
        .unwrap()
        .to_utc();
    let id = udaconnect_core::record::fix_id(device, at).unwrap();
    assert!(
        stored.iter().any(|l| l["id"] == id),
        "ids of the browser device and second"
    );
    // No phone may take its name: the page's pings would go to that phone.
    let r = api
        .client
        .post(api.url("/api/me/devices"))
        .bearer_auth(&token)
        .json(&json!({"name": " Browser (Share my location) "}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

/// What each app says beside the place and time is kept with its ping, in SI units (OwnTracks
/// over HTTP and over MQTT through the real Mosquitto, the OsmAnd protocol's query fields,
/// Traccar Client's JSON, the page's "Share my location"), and read back by the attendee's own
/// reads: `GET /api/me/locations` and the export. The contract's read of a ping shows none.
pub async fn each_apps_extras_are_kept_with_its_pings(api: Api) {
    let ida = api.create_person("Ida").await["id"].as_i64().unwrap();
    let token = api.admin_token("attendee", ida).await;
    let name = udaconnect_testkit::unique("ida");
    let phone = register(&api, &token, ida, &name).await;
    let device_token = phone["token"].as_str().unwrap().to_string();
    let osmand_id = phone["osmand_id"].as_str().unwrap().to_string();
    let topic = phone["mqtt_topic"].as_str().unwrap().to_string();
    let ok = |r: reqwest::Response| {
        assert!(r.status().is_success(), "{}", r.status());
    };
    // 2023-11-19T08:00:00Z, a ping a minute.
    let t0 = 1_700_380_800;
    let owntracks = |tst: i64| {
        json!({"_type": "location", "lat": 59.3293, "lon": 18.0686, "tst": tst, "acc": 9,
               "alt": 28, "vel": 18, "cog": 45, "batt": 93, "vac": 4, "tid": "id", "conn": "w"})
    };
    let user = ("ida", device_token.as_str());
    ok(post_owntracks(&api, &api.url("/pub"), user, owntracks(t0).to_string()).await);
    mqtt::publish(&topic, &[owntracks(t0 + 60).to_string()]).await;
    ok(api
        .get(&format!(
            "/api/osmand?id={osmand_id}&timestamp={}&lat=59.33&lon=18.07&speed=2&bearing=180\
             &altitude=-2.5&accuracy=11&hdop=1&batt=92",
            t0 + 120
        ))
        .await);
    let traccar = json!({"device_id": osmand_id, "location": {
        "timestamp": "2023-11-19T08:03:00.000Z", "is_moving": true, "odometer": 3,
        "coords": {"latitude": 59.331, "longitude": 18.071, "accuracy": 4.5, "speed": 1.5,
                   "heading": 359, "altitude": 30},
        "battery": {"level": 0.91, "is_charging": false}, "activity": {"type": "walking"}}});
    ok(api
        .client
        .post(api.url("/api/osmand"))
        .json(&traccar)
        .send()
        .await
        .unwrap());
    ok(api
        .client
        .post(api.url("/api/me/locations"))
        .bearer_auth(&token)
        .json(&json!([{"latitude": 59.332, "longitude": 18.072,
                       "creation_time": "2023-11-19T08:04:00Z", "accuracy": 14.5,
                       "altitude": 31.25, "speed": 0.75, "heading": 12.5}]))
        .send()
        .await
        .unwrap());
    let kept = [
        json!({"creation_time": "2023-11-19T08:00:00Z", "accuracy_m": 9.0, "altitude_m": 28.0,
               "speed_mps": 18.0 / 3.6, "heading_deg": 45.0, "battery_pct": 93.0,
               "app": "owntracks"}),
        json!({"creation_time": "2023-11-19T08:01:00Z", "accuracy_m": 9.0, "altitude_m": 28.0,
               "speed_mps": 18.0 / 3.6, "heading_deg": 45.0, "battery_pct": 93.0,
               "app": "owntracks"}),
        json!({"creation_time": "2023-11-19T08:02:00Z", "accuracy_m": 11.0, "altitude_m": -2.5,
               "speed_mps": 2.0 * 1852.0 / 3600.0, "heading_deg": 180.0, "battery_pct": 92.0,
               "app": "osmand"}),
        json!({"creation_time": "2023-11-19T08:03:00Z", "accuracy_m": 4.5, "altitude_m": 30.0,
               "speed_mps": 1.5, "heading_deg": 359.0, "battery_pct": 91.0,
               "app": "traccar-client"}),
        json!({"creation_time": "2023-11-19T08:04:00Z", "accuracy_m": 14.5, "altitude_m": 31.25,
               "speed_mps": 0.75, "heading_deg": 12.5, "app": "browser"}),
    ];
    http::assert_extras_kept(
        &api.client,
        &api.base,
        &token,
        &api.client,
        "2023-11-19",
        &kept,
        Duration::from_secs(30),
    )
    .await;
}

/// A phone revoked by its attendee stops at once: its token as a Bearer credential (which the
/// serving processes keep for a few seconds once seen) and as OwnTracks' Basic password.
pub async fn a_revoked_phone_stops_at_once(api: Api) {
    let ivo = api.create_person("Ivo").await["id"].as_i64().unwrap();
    let token = api.admin_token("attendee", ivo).await;
    let phone = register(&api, &token, ivo, "Ivo's phone").await;
    let device_token = phone["token"].as_str().unwrap().to_string();
    let post_as_phone = || {
        let ping = json!({"person_id": ivo, "latitude": -33.86, "longitude": 151.21,
            "creation_time": "2023-11-15T10:00:00Z"});
        let request = api.client.post(api.url("/api/locations"));
        http::sent(request.bearer_auth(&device_token).json(&ping))
    };
    let location = r#"{"_type":"location","lat":-33.86,"lon":151.21,"tst":1700042400}"#;
    let pub_ = || post_owntracks(&api, &api.url("/pub"), ("ivo", &device_token), location);
    assert_eq!(post_as_phone().await.status(), StatusCode::ACCEPTED);
    assert_eq!(pub_().await.status(), StatusCode::OK);

    let revoke = api
        .client
        .delete(api.url(&format!("/api/me/devices/{}", phone["id"])))
        .bearer_auth(&token);
    assert_eq!(http::sent(revoke).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(post_as_phone().await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(pub_().await.status(), StatusCode::UNAUTHORIZED);
}

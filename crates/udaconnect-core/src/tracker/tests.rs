use std::borrow::Cow;

use proptest::prelude::*;

use super::*;
use crate::validate::new_location;
use crate::ErrorCode;

fn fields(e: &crate::Error) -> Vec<&str> {
    e.violations().iter().map(|v| v.field.as_str()).collect()
}

fn query(q: &str) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    url_pairs(q)
}

/// `a=1&b=2` split as a form decoder would (no percent-decoding needed in these tests).
fn url_pairs(q: &str) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (Cow::Borrowed(k), Cow::Borrowed(v)),
            None => (Cow::Borrowed(p), Cow::Borrowed("")),
        })
        .collect()
}

fn location_of(m: OwnTracks) -> (TrackerFix, Option<String>, Option<String>) {
    match m {
        OwnTracks::Location { fix, topic, tid } => (fix, topic, tid),
        other => panic!("not a location: {other:?}"),
    }
}

#[test]
fn an_owntracks_location_as_the_booklet_writes_it() {
    let body = br#"{"_type":"location","acc":12,"alt":48,"batt":81,"bs":1,"cog":270,
        "conn":"w","created_at":1700000005,"lat":52.52,"lon":13.405,"t":"u","tid":"ab",
        "tst":1700000000,"vac":3,"vel":36,"topic":"owntracks/p7/phone-3","inregions":["x"],
        "SSID":"venue","m":1}"#;
    let (fix, topic, tid) = location_of(owntracks_message(body).unwrap());
    assert_eq!((fix.latitude(), fix.longitude()), (52.52, 13.405));
    assert_eq!(fix.time().unwrap().timestamp(), 1_700_000_000);
    assert_eq!(fix.app, App::OwnTracks);
    assert_eq!(fix.extras.accuracy_m, Some(12.0));
    assert_eq!(fix.extras.altitude_m, Some(48.0));
    assert_eq!(fix.extras.speed_mps, Some(10.0), "36 km/h");
    assert_eq!(fix.extras.heading_deg, Some(270.0));
    assert_eq!(fix.extras.battery_pct, Some(81.0));
    assert_eq!(topic.as_deref(), Some("owntracks/p7/phone-3"));
    assert_eq!(tid.as_deref(), Some("ab"));
    let ping = fix.ping(7).unwrap();
    assert_eq!(ping.person_id(), 7);
    assert_eq!(ping.creation_time(), fix.time());
    assert_eq!(ping.accuracy_m(), Some(12.0), "kept with the ping");
    let kept = Telemetry {
        altitude_m: Some(48.0),
        speed_mps: Some(10.0),
        heading_deg: Some(270.0),
        battery_pct: Some(81.0),
        app: Some(App::OwnTracks),
    };
    assert_eq!(ping.telemetry(), kept, "kept with the ping, in m/s");
}

#[test]
fn other_owntracks_messages_and_an_empty_body_are_ignored_not_refused() {
    for (body, kind) in [
        (
            &br#"{"_type":"transition","event":"enter","tst":1}"#[..],
            "transition",
        ),
        (br#"{"_type":"lwt","tst":1}"#, "lwt"),
        (br#"{"_type":"waypoints","waypoints":[]}"#, "waypoints"),
        (br#"{"_type":"encrypted","data":"AAAA"}"#, "encrypted"),
        (br#"{"_type":"card","name":"x"}"#, "card"),
        (br#"{"_type":"something-new","lat":"x"}"#, "something-new"),
        (br#"{"lat":1,"lon":2}"#, ""),
        (br#"{"_type":5}"#, ""),
        (b"", ""),
        (b"  \n", ""),
    ] {
        assert_eq!(
            owntracks_message(body).unwrap(),
            OwnTracks::Ignored { kind: kind.into() },
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn an_owntracks_location_breaking_a_rule_names_the_apps_field_with_the_shared_message() {
    let e = owntracks_message(br#"{"_type":"location","lat":91,"lon":13}"#).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidInput);
    assert_eq!(fields(&e), ["lat"]);
    let shared =
        new_location(&serde_json::json!({"person_id":1,"latitude":91,"longitude":13})).unwrap_err();
    assert_eq!(e.violations()[0].message, shared.violations()[0].message);

    let e = owntracks_message(br#"{"_type":"location","lon":13,"tst":-5}"#).unwrap_err();
    assert_eq!(fields(&e), ["lat", "tst"]);
    let e = owntracks_message(br#"{"_type":"location","lat":"north","lon":13}"#).unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadRequest);
    assert_eq!(fields(&e), ["lat"]);
    let e = owntracks_message(b"[1]").unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadRequest);
    let e = owntracks_message(b"{").unwrap_err();
    assert_eq!(fields(&e), ["body"]);
}

#[test]
fn owntracks_extras_that_make_no_sense_are_dropped_and_the_ping_kept() {
    let body = br#"{"_type":"location","lat":"1.5","lon":2,"acc":-1,"batt":300,"vel":"fast",
        "cog":400,"alt":null,"tid":7}"#;
    let (fix, topic, tid) = location_of(owntracks_message(body).unwrap());
    assert_eq!(fix.latitude(), 1.5);
    assert_eq!(fix.time(), None, "no tst: timed at ingest");
    assert_eq!(fix.extras, Extras::default());
    assert_eq!((topic, tid), (None, None));
}

#[test]
fn osmand_query_fields_as_traccar_documents_them() {
    let q = "id=abc&timestamp=1700000000&lat=52.5&lon=13.4&speed=10&bearing=90&altitude=30\
             &accuracy=5&hdop=1.2&batt=55&valid=true&charge=false";
    let report = osmand_fields(query(q), SpeedUnit::Knots).unwrap();
    assert_eq!(report.device, "abc");
    assert_eq!(report.battery_pct, Some(55.0));
    let [fix] = report.fixes.as_slice() else {
        panic!("{report:?}")
    };
    assert_eq!(fix.app, App::OsmAnd);
    assert_eq!((fix.latitude(), fix.longitude()), (52.5, 13.4));
    assert_eq!(fix.time().unwrap().timestamp(), 1_700_000_000);
    let knots = fix.extras.speed_mps.unwrap();
    assert!((knots - 5.144_444).abs() < 1e-5, "{knots}");
    assert_eq!(fix.extras.heading_deg, Some(90.0));
    assert_eq!(fix.extras.altitude_m, Some(30.0));
    assert_eq!(fix.extras.accuracy_m, Some(5.0));
    let kept = fix.ping(7).unwrap().telemetry();
    assert_eq!(
        (kept.speed_mps, kept.heading_deg, kept.battery_pct, kept.app),
        (Some(knots), Some(90.0), Some(55.0), Some(App::OsmAnd)),
        "kept with the ping, in m/s"
    );

    let mps = osmand_fields(query(q), SpeedUnit::MetresPerSecond).unwrap();
    assert_eq!(mps.fixes[0].extras.speed_mps, Some(10.0));
    let kmh = osmand_fields(query(q), SpeedUnit::KilometresPerHour).unwrap();
    assert!((kmh.fixes[0].extras.speed_mps.unwrap() - 2.777_777).abs() < 1e-5);
}

#[test]
fn osmand_takes_deviceid_location_heading_and_every_time_format() {
    let at = |q: &str| {
        let r = osmand_fields(query(q), SpeedUnit::Knots).unwrap();
        (
            r.fixes[0].latitude(),
            r.fixes[0].longitude(),
            r.fixes[0].time().map(|t| t.timestamp_millis()),
        )
    };
    for (q, want) in [
        (
            "deviceid=x&location=1.5,2.5&timestamp=1700000000123",
            (1.5, 2.5, Some(1_700_000_000_123)),
        ),
        (
            "id=x&lat=1&lon=2&timestamp=1700000000.5",
            (1.0, 2.0, Some(1_700_000_000_500)),
        ),
        (
            "id=x&lat=1&lon=2&timestamp=2023-11-14T22:13:20Z",
            (1.0, 2.0, Some(1_700_000_000_000)),
        ),
        (
            "id=x&lat=1&lon=2&timestamp=2023-11-14 22:13:20",
            (1.0, 2.0, Some(1_700_000_000_000)),
        ),
        ("id=x&lat=1&lon=2", (1.0, 2.0, None)),
        // The first of a field sent twice counts.
        ("id=x&lat=1&lat=5&lon=2", (1.0, 2.0, None)),
    ] {
        assert_eq!(at(q), want, "{q}");
    }
    let r = osmand_fields(query("id=x&lat=1&lon=2&heading=45"), SpeedUnit::Knots).unwrap();
    assert_eq!(r.fixes[0].extras.heading_deg, Some(45.0));
}

#[test]
fn an_osmand_report_without_a_position_only_names_its_device() {
    let r = osmand_fields(query("id=x&batt=40&timestamp=1700000000"), SpeedUnit::Knots).unwrap();
    assert!(r.fixes.is_empty());
    assert_eq!(r.battery_pct, Some(40.0));
}

#[test]
fn osmand_refusals_name_the_field() {
    let refused = |q: &str| osmand_fields(query(q), SpeedUnit::Knots).unwrap_err();
    assert_eq!(fields(&refused("lat=1&lon=2")), ["id"]);
    assert_eq!(fields(&refused("id=&lat=1&lon=2")), ["id"]);
    assert_eq!(fields(&refused("id=x&lat=1")), ["lon"]);
    assert_eq!(fields(&refused("id=x&lat=1&lon=200")), ["lon"]);
    assert_eq!(
        refused("id=x&lat=NaN&lon=2").violations()[0].message,
        "must be a finite number"
    );
    assert_eq!(fields(&refused("id=x&location=1")), ["location"]);
    assert_eq!(fields(&refused("id=x&location=a,b")), ["location"]);
    assert_eq!(
        fields(&refused("id=x&lat=1&lon=2&timestamp=yesterday")),
        ["timestamp"]
    );
    assert_eq!(
        fields(&refused("id=x&lat=1&lon=2&timestamp=99999999999999999")),
        ["timestamp"]
    );
    let long = format!("id={}&lat=1&lon=2", "a".repeat(129));
    assert_eq!(fields(&refused(&long)), ["id"]);
}

#[test]
fn a_traccar_client_body_as_traccar_documents_it() {
    let body = br#"{"location":{"timestamp":"2023-11-14T22:13:20.000Z",
        "coords":{"latitude":52.5,"longitude":13.4,"accuracy":7,"speed":2.5,"heading":180,
        "altitude":35},"is_moving":true,"odometer":12,"event":"motionchange",
        "battery":{"level":0.42,"is_charging":false},"activity":{"type":"walking"},
        "extras":{}},"device_id":"48241179"}"#;
    let r = traccar_json(body).unwrap();
    assert_eq!(r.device, "48241179");
    let fix = r.fixes[0];
    assert_eq!(fix.app, App::TraccarClient);
    assert_eq!((fix.latitude(), fix.longitude()), (52.5, 13.4));
    assert_eq!(fix.time().unwrap().timestamp(), 1_700_000_000);
    assert_eq!(
        fix.extras.speed_mps,
        Some(2.5),
        "m/s whatever the query unit"
    );
    assert_eq!(fix.extras.heading_deg, Some(180.0));
    assert_eq!(fix.extras.accuracy_m, Some(7.0));
    assert_eq!(fix.extras.altitude_m, Some(35.0));
    assert_eq!(fix.extras.battery_pct, Some(42.0));
    assert_eq!(r.battery_pct, Some(42.0));
    let kept = Telemetry {
        altitude_m: Some(35.0),
        speed_mps: Some(2.5),
        heading_deg: Some(180.0),
        battery_pct: Some(42.0),
        app: Some(App::TraccarClient),
    };
    assert_eq!(fix.ping(7).unwrap().telemetry(), kept, "kept with the ping");
}

#[test]
fn a_traccar_client_batch_and_its_refusals() {
    let body = br#"{"device_id":7,"location":[
        {"timestamp":"2023-11-14T22:13:20Z","coords":{"latitude":1,"longitude":2}},
        {"timestamp":"2023-11-14T22:13:21Z","coords":{"latitude":3,"longitude":4}}]}"#;
    let r = traccar_json(body).unwrap();
    assert_eq!(r.device, "7");
    assert_eq!(r.fixes.len(), 2);

    let e = traccar_json(br#"{"device_id":"x","location":[{"coords":{"latitude":1}},{"coords":{"latitude":1,"longitude":-181}}]}"#).unwrap_err();
    assert_eq!(
        fields(&e),
        [
            "location[0].coords.longitude",
            "location[1].coords.longitude"
        ]
    );
    let e = traccar_json(br#"{"location":{"coords":{"latitude":1,"longitude":2}}}"#).unwrap_err();
    assert_eq!(fields(&e), ["device_id"]);
    let e = traccar_json(br#"{"device_id":"x"}"#).unwrap_err();
    assert_eq!(fields(&e), ["location"]);
    let e = traccar_json(
        br#"{"device_id":"x","location":{"timestamp":true,"coords":{"latitude":1,"longitude":2}}}"#,
    )
    .unwrap_err();
    assert_eq!(
        (e.code(), fields(&e)),
        (ErrorCode::BadRequest, vec!["location.timestamp"])
    );
    assert_eq!(fields(&traccar_json(b"[]").unwrap_err()), ["body"]);
}

#[test]
fn basic_credentials_as_rfc_7617_writes_them() {
    // "ana:uc_x:y" in base64: the password may hold colons, the user may not.
    assert_eq!(
        basic_credentials("Basic YW5hOnVjX3g6eQ=="),
        Some(("ana".into(), "uc_x:y".into()))
    );
    assert_eq!(
        basic_credentials("basic  YW5hOnVjX3g6eQ== "),
        Some(("ana".into(), "uc_x:y".into()))
    );
    assert_eq!(basic_credentials("Bearer YW5hOnVjX3g6eQ=="), None);
    assert_eq!(basic_credentials("Basic !!!"), None);
    assert_eq!(basic_credentials("Basic YW5h"), None, "no colon");
}

#[test]
fn osmand_ids_are_random_hashed_and_read_as_typed() {
    let a = OsmAndId::generate().unwrap();
    let b = OsmAndId::generate().unwrap();
    assert_ne!(a, b);
    assert_eq!(a.expose().len(), OSMAND_ID_CHARS);
    assert!(a
        .expose()
        .bytes()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(
        a.hash(),
        OsmAndId::hash_of(&format!(" {} ", a.expose().to_uppercase()))
    );
    assert_ne!(a.hash(), b.hash());
    assert!(!format!("{a:?}").contains(a.expose()));
}

#[test]
fn topics_name_their_person_and_device() {
    assert_eq!(
        mqtt_topic(7, "Ana's Pixel 8!", 3),
        "owntracks/p7/ana-s-pixel-8-3"
    );
    assert_eq!(mqtt_topic(7, "   ", 12), "owntracks/p7/phone-12");
    assert_eq!(mqtt_topic(7, "ÄÖÜ", 1), "owntracks/p7/phone-1");
    let long = mqtt_topic(1, &"x".repeat(100), 9);
    assert!(long.len() < 50, "{long}");
    for (topic, device) in [
        ("owntracks/p7/ana-s-pixel-8-3", Some((7, 3))),
        ("owntracks/p7/phone-12/event", Some((7, 12))),
        ("owntracks/7/phone-12", None),
        ("owntracks/p7/phone", None),
        ("other/p7/phone-1", None),
        ("owntracks/p/phone-1", None),
        ("owntracks/p99999999999999999999/x-1", None),
    ] {
        assert_eq!(topic_device(topic), device, "{topic}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_input_makes_a_reader_panic_and_every_fix_is_a_valid_ping(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        text in "[a-z=&,.:0-9-]{0,80}",
    ) {
        let check = |fix: &TrackerFix| {
            prop_assert!(fix.ping(1).is_ok());
            if let Some(b) = fix.extras.battery_pct { prop_assert!((0.0..=100.0).contains(&b)); }
            if let Some(s) = fix.extras.speed_mps { prop_assert!(s >= 0.0); }
            Ok(())
        };
        if let Ok(OwnTracks::Location { fix, .. }) = owntracks_message(&bytes) { check(&fix)?; }
        if let Ok(r) = traccar_json(&bytes) { for fix in &r.fixes { check(fix)?; } }
        if let Ok(r) = osmand_fields(url_pairs(&text), SpeedUnit::Knots) {
            prop_assert!(!r.device.trim().is_empty());
            for fix in &r.fixes { check(fix)?; }
        }
    }

    #[test]
    fn an_owntracks_location_reads_back_what_was_sent(
        lat in -90.0f64..=90.0, lon in -180.0f64..=180.0, tst in 0i64..4_000_000_000,
        vel in 0u32..500, batt in 0u32..=100,
    ) {
        let body = serde_json::json!({"_type":"location","lat":lat,"lon":lon,"tst":tst,
            "vel":vel,"batt":batt});
        let (fix, _, _) = location_of(owntracks_message(body.to_string().as_bytes()).unwrap());
        prop_assert_eq!(fix.latitude(), if lat == 0.0 { 0.0 } else { lat });
        prop_assert_eq!(fix.longitude(), if lon == 0.0 { 0.0 } else { lon });
        prop_assert_eq!(fix.time().unwrap().timestamp(), tst);
        prop_assert!((fix.extras.speed_mps.unwrap() * 3.6 - f64::from(vel)).abs() < 1e-9);
        prop_assert_eq!(fix.extras.battery_pct, Some(f64::from(batt)));
    }

    #[test]
    fn osmand_seconds_and_milliseconds_are_one_instant(s in 0i64..2_000_000_000) {
        let secs = format!("id=x&lat=1&lon=2&timestamp={s}");
        let millis = format!("id=x&lat=1&lon=2&timestamp={}", s * 1000);
        let a = osmand_fields(url_pairs(&secs), SpeedUnit::Knots).unwrap().fixes[0].time();
        let b = osmand_fields(url_pairs(&millis), SpeedUnit::Knots).unwrap().fixes[0].time();
        if s * 1000 >= i64::from(i32::MAX) {
            prop_assert_eq!(a, b);
        }
    }
}

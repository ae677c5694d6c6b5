//! The venue live as organizers see it (`/api/live/*`): no answer singles a person out. Heat
//! cells and rooms count distinct persons and are left out below k (5); dots carry no id or
//! name unless the attendee chose to be named (`PUT /api/me/visibility {"on_live_map"}`), and
//! are left out where fewer than k anonymous people stand in their place.
//!
//! The engines are started with [`VENUE`], a plan far from every other body's pings.

use std::time::Duration;

use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use udaconnect_core::time::format_utc;
use udaconnect_core::venue::Venue;
use udaconnect_testkit::eventually;

use crate::suite::{assert_problem, Api};

/// The plan the engines are given (`--venue`): an open floor, a 4 m booth and a room.
pub const VENUE: &str = r#"{"name": "Kanon hall", "origin": {"latitude": 10.0, "longitude": 20.0},
  "width_m": 100.0, "depth_m": 100.0, "areas": [
  {"kind": "hall", "name": "Floor", "x": 0, "y": 0, "width": 100, "depth": 100},
  {"kind": "booth", "name": "Booth K", "x": 10, "y": 10, "width": 4, "depth": 4},
  {"kind": "room", "name": "Room K", "x": 50, "y": 50, "width": 20, "depth": 20}]}"#;

const WAIT: Duration = Duration::from_secs(30);
/// The heat's cell, as the server makes it.
const HEAT_CELL_DEG: f64 = 0.000_045;

fn venue() -> Venue {
    serde_json::from_str(VENUE).unwrap()
}

/// A new token of a staff `role` (no person), made as an operator makes one.
async fn staff_token(api: &Api, role: &str) -> String {
    api.operator_token(role, &["--name", "live"]).await
}

/// The choice of `token`'s person to be on the live map by name, or not: the choices as
/// answered.
async fn choose_live_map(api: &Api, token: &str, on: bool) -> Value {
    let r = signed(api, token, Method::PUT, "/api/me/visibility")
        .json(&json!({ "on_live_map": on }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn signed(api: &Api, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    api.client.request(method, api.url(path)).bearer_auth(token)
}

async fn answer(api: &Api, token: &str, path: &str) -> Value {
    let r = signed(api, token, Method::GET, path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

/// The dots on the plan (every other body pings elsewhere).
fn on_plan(dots: &Value) -> Vec<Value> {
    let (south, west) = (10.0, 20.0);
    dots.as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            let (lat, lon) = (
                d["latitude"].as_f64().unwrap(),
                d["longitude"].as_f64().unwrap(),
            );
            (south..south + 0.001).contains(&lat) && (west..west + 0.001).contains(&lon)
        })
        .cloned()
        .collect()
}

/// The count of the area `name` in a zones answer, if shown.
fn zone(zones: &Value, name: &str) -> Option<i64> {
    zones["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["name"] == name)
        .map(|z| z["count"].as_i64().unwrap())
}

/// The count of the heat cell holding a point, if shown.
fn heat_at(heat: &Value, (lat, lon): (f64, f64)) -> Option<i64> {
    let cell = |v: f64| (v / HEAT_CELL_DEG).floor();
    let cells = heat["cells"].as_array().unwrap();
    cells
        .iter()
        .find(|c| {
            cell(c["latitude"].as_f64().unwrap()) == cell(lat)
                && cell(c["longitude"].as_f64().unwrap()) == cell(lon)
        })
        .map(|c| c["count"].as_i64().unwrap())
}

/// Asserts what an anonymous dot may hold: where (to about a metre) and when (to the minute).
fn assert_anonymous(dot: &Value) {
    let keys: Vec<&String> = dot.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["latitude", "longitude", "time"], "{dot}");
    assert!(dot["time"].as_str().unwrap().ends_with(":00Z"), "{dot}");
    for axis in ["latitude", "longitude"] {
        let scaled = dot[axis].as_f64().unwrap() * 1e5;
        assert!((scaled - scaled.round()).abs() < 1e-6, "{dot}");
    }
}

/// Asserts the dots come in the order of their positions, whoever they are.
fn assert_by_position(dots: &[Value]) {
    let at = |d: &Value| {
        (
            d["latitude"].as_f64().unwrap(),
            d["longitude"].as_f64().unwrap(),
        )
    };
    assert!(dots.windows(2).all(|w| at(&w[0]) <= at(&w[1])), "{dots:?}");
}

/// Posts a ping of `person` at `x`, `y` of the plan, now (a hair apart for each person, as
/// phones are), and waits until it is stored.
async fn ping_at(api: &Api, person: i64, (x, y): (f64, f64)) -> (f64, f64) {
    let (lat, lon) = venue().to_lat_lon(x, y);
    let lat = lat + person as f64 % 7.0 * 1e-7;
    let r = api.ping_now(person, lat, lon).await;
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    api.stored_location(id).await;
    (lat, lon)
}

/// Four people in a booth are not counted, nor shown as dots; a fifth makes them a count of
/// five and five dots. One person's thousand pings in a room are no heat and no count. The dots
/// carry no id or name, their order follows positions; an attendee who chooses to be named
/// appears named (and no longer hides the others in their booth), and as an anonymous dot again
/// once they take it back. The stream sends the same maps.
pub async fn organizer_views_single_no_one_out(api: Api) {
    let plan = venue();
    let organizer = staff_token(&api, "organizer").await;
    let mut people = Vec::new();
    for i in 1..=10 {
        let p = api.create_person(&format!("Kanon{i}")).await;
        people.push(p["id"].as_i64().unwrap());
    }
    let (booth, room, floor) = ((12.0, 12.0), (60.0, 60.0), (85.0, 30.0));

    // Four in the booth; the fifth spends the last 100 s in the room, a ping every 0.1 s.
    let mut booth_pings = Vec::new();
    for &p in &people[..4] {
        booth_pings.push(ping_at(&api, p, booth).await);
    }
    let (lat, lon) = plan.to_lat_lon(room.0, room.1);
    let now = Utc::now();
    let batch: Vec<Value> = (0..1000)
        .map(|i| {
            let t = now - chrono::Duration::milliseconds(100_000 - i * 100);
            json!({"person_id": people[4], "latitude": lat, "longitude": lon, "creation_time": format_utc(t)})
        })
        .collect();
    let answer_ids = api
        .post_accepted("/api/locations/batch", &Value::Array(batch))
        .await;
    let last = answer_ids["ids"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_i64();
    api.stored_location(last.unwrap()).await;
    // Five others on the open floor, after the rest is stored: once their five dots show,
    // the live view has read what came before.
    for &p in &people[5..] {
        ping_at(&api, p, floor).await;
    }
    let dots = eventually("the five on the floor", WAIT, || async {
        let dots = on_plan(&answer(&api, &organizer, "/api/live/positions").await);
        (dots.len() == 5).then_some(dots)
    })
    .await;
    for d in &dots {
        assert_anonymous(d);
        let (x, y) = plan.to_local(
            d["latitude"].as_f64().unwrap(),
            d["longitude"].as_f64().unwrap(),
        );
        assert!(
            (x - floor.0).abs() < 2.0 && (y - floor.1).abs() < 2.0,
            "{d}"
        );
    }
    assert_by_position(&dots);
    let heat = answer(&api, &organizer, "/api/live/heat?minutes=10").await;
    assert_eq!(heat["k"], 5);
    assert!(heat["cells"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["count"].as_i64().unwrap() >= 5));
    assert_eq!(heat_at(&heat, booth_pings[0]), None, "four people: no heat");
    assert_eq!(
        heat_at(&heat, (lat, lon)),
        None,
        "one person's 1,000 pings: no heat"
    );
    let zones = answer(&api, &organizer, "/api/live/zones?minutes=10").await;
    assert_eq!(
        (zone(&zones, "Booth K"), zone(&zones, "Room K")),
        (None, None)
    );
    assert_eq!(zone(&zones, "Floor"), Some(5));

    // The fifth walks into the booth: five people, counted and shown.
    booth_pings.push(ping_at(&api, people[4], booth).await);
    let dots = eventually("five in the booth", WAIT, || async {
        let dots = on_plan(&answer(&api, &organizer, "/api/live/positions").await);
        (dots.len() == 10).then_some(dots)
    })
    .await;
    dots.iter().for_each(assert_anonymous);
    assert_by_position(&dots);
    let heat = answer(&api, &organizer, "/api/live/heat?minutes=10").await;
    assert_eq!(heat_at(&heat, booth_pings[0]), Some(5));
    assert_eq!(heat_at(&heat, (lat, lon)), None);
    let zones = answer(&api, &organizer, "/api/live/zones?minutes=10").await;
    assert_eq!(zone(&zones, "Booth K"), Some(5));
    assert_eq!(zone(&zones, "Room K"), None, "one person in the window");
    assert_eq!(zones["zones"][0]["kind"], "hall");
    let text =
        serde_json::to_string(&answer(&api, &organizer, "/api/live/positions").await).unwrap();
    assert!(
        !text.contains("Kanon") && !text.contains("person_id"),
        "{text}"
    );

    // The first in the booth chooses to be named: named on the map, at the ping's own place;
    // the four others left are fewer than five anonymous people, so left out.
    let first = api.admin_token("attendee", people[0]).await;
    let chosen = choose_live_map(&api, &first, true).await;
    assert_eq!(chosen, json!({"visible": false, "on_live_map": true}));
    let dots = eventually("the named attendee", WAIT, || async {
        let dots = on_plan(&answer(&api, &organizer, "/api/live/positions").await);
        dots.iter()
            .any(|d| d["person_id"] == people[0])
            .then_some(dots)
    })
    .await;
    assert_eq!(dots.len(), 6, "{dots:?}");
    let named = dots.iter().find(|d| d["person_id"] == people[0]).unwrap();
    assert_eq!(named["name"], "Kanon1 Tester");
    assert_eq!(named["latitude"].as_f64().unwrap(), booth_pings[0].0);
    dots.iter()
        .filter(|d| d["person_id"] != people[0])
        .for_each(assert_anonymous);
    let zones = answer(&api, &organizer, "/api/live/zones?minutes=10").await;
    assert_eq!(zone(&zones, "Booth K"), Some(5), "counts count everyone");

    // The stream sends the same map when pings come.
    let mut stream = signed(&api, &organizer, Method::GET, "/api/live/stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    ping_at(&api, people[9], floor).await;
    let mut text = String::new();
    let streamed: Value = tokio::time::timeout(WAIT, async {
        loop {
            let chunk = stream.chunk().await.unwrap().expect("the stream goes on");
            text.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(at) = text.find("event: dots\ndata: ") {
                let rest = &text[at + "event: dots\ndata: ".len()..];
                if let Some(end) = rest.find('\n') {
                    break serde_json::from_str(&rest[..end]).unwrap();
                }
            }
        }
    })
    .await
    .expect("a map of dots streamed");
    let streamed = on_plan(&streamed);
    assert_eq!(streamed.len(), 6, "{streamed:?}");
    let named: Vec<&Value> = streamed
        .iter()
        .filter(|d| d.get("person_id").is_some())
        .collect();
    assert_eq!(named.len(), 1);
    assert_eq!(named[0]["name"], "Kanon1 Tester");
    streamed
        .iter()
        .filter(|d| d.get("person_id").is_none())
        .for_each(assert_anonymous);
    drop(stream);

    // Taken back: an anonymous dot again, and the booth's five are shown as five.
    let chosen = choose_live_map(&api, &first, false).await;
    assert_eq!(chosen, json!({"visible": false, "on_live_map": false}));
    let dots = eventually("the attendee anonymous again", WAIT, || async {
        let dots = on_plan(&answer(&api, &organizer, "/api/live/positions").await);
        (dots.len() == 10).then_some(dots)
    })
    .await;
    dots.iter().for_each(assert_anonymous);
}

/// The live views are staff's: an attendee is refused, nobody is asked to sign in; a window
/// out of range is a problem naming `minutes`.
pub async fn live_views_are_staffs_and_bad_windows_are_problems(api: Api) {
    let person = api.create_person("Kanonvi").await["id"].as_i64().unwrap();
    let attendee = api.admin_token("attendee", person).await;
    for path in [
        "/api/live/positions",
        "/api/live/heat",
        "/api/live/zones",
        "/api/live/stream",
    ] {
        let r = signed(&api, &attendee, Method::GET, path)
            .send()
            .await
            .unwrap();
        assert_problem(r, 403, &[]).await;
        let r = reqwest::Client::new()
            .get(api.url(path))
            .send()
            .await
            .unwrap();
        assert_problem(r, 401, &[]).await;
    }
    let organizer = staff_token(&api, "organizer").await;
    for path in ["/api/live/heat", "/api/live/zones"] {
        for minutes in ["-1", "abc", "1441", "NaN"] {
            let r = signed(
                &api,
                &organizer,
                Method::GET,
                &format!("{path}?minutes={minutes}"),
            )
            .send()
            .await
            .unwrap();
            assert_problem(r, 400, &["minutes"]).await;
        }
    }
    let zones = answer(&api, &organizer, "/api/live/zones?minutes=0").await;
    assert_eq!(zones["k"], 5);
    assert_eq!(zones["zones"], json!([]));
}

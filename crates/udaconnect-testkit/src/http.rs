//! A running server over HTTP: a request's answer (sent, as JSON or as text), waiting until it is
//! ready or a ping is stored, a phone registered, a person's own pings and what they keep, and
//! raw bytes for what a well-behaved client would never send.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::eventually;

/// The answer to `request`, whatever its status.
pub async fn sent(request: RequestBuilder) -> Response {
    request.send().await.expect("the request is answered")
}

/// The JSON body of the answer to `request`, whatever its status.
pub async fn json_answer(request: RequestBuilder) -> Value {
    json_answer_as(request).await
}

/// [`json_answer`] read as a `T` (a list, a typed record).
pub async fn json_answer_as<T: DeserializeOwned>(request: RequestBuilder) -> T {
    sent(request).await.json().await.expect("a JSON body")
}

/// The body of the answer to `request` as text, whatever its status.
pub async fn text_answer(request: RequestBuilder) -> String {
    sent(request).await.text().await.expect("a text body")
}

/// `base`'s `/metrics`, as Prometheus text.
pub async fn metrics(client: &Client, base: &str) -> String {
    text_answer(client.get(format!("{base}/metrics"))).await
}

/// The series of the pings the consumer stored, as `/metrics` names it.
pub const STORED: &str = "udaconnect_consumer_records_total{outcome=\"stored\"}";

/// The value of `series` (a metric's name and labels, as `/metrics` writes them) in the
/// Prometheus text `metrics`; `None` where it is not there (a counter not counted yet). A value
/// that is not a `T` fails the test.
pub fn sample<T: FromStr>(metrics: &str, series: &str) -> Option<T> {
    let value = metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))?
        .trim();
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{series} is {value}")),
    )
}

/// Waits until `base`'s `/ready` answers 200; panics after `timeout`.
pub async fn wait_ready(client: &Client, base: &str, timeout: Duration) {
    let url = format!("{base}/ready");
    eventually(&format!("{base} to be ready"), timeout, || async {
        let status = client.get(&url).send().await.map(|r| r.status()).ok();
        (status == Some(StatusCode::OK)).then_some(())
    })
    .await
}

/// Creates a person with this first name over `base`'s API, and returns its id.
pub async fn create_person(client: &Client, base: &str, first_name: &str) -> i64 {
    let r = client
        .post(format!("{base}/api/persons"))
        .json(&json!({"first_name": first_name, "last_name": "Tester", "company_name": "Acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// Registers a phone named `name` for `person` over `base`'s API with `token` (an attendee's),
/// and returns the device as the answer describes it: its token, OsmAnd id and MQTT topic.
pub async fn register_device(
    client: &Client,
    base: &str,
    token: &str,
    (person, name): (i64, &str),
) -> Value {
    let r = client
        .post(format!("{base}/api/me/devices"))
        .bearer_auth(token)
        .json(&json!({"name": name, "person_id": person}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
    r.json().await.unwrap()
}

/// Waits until the consumer behind `base` has stored location `id`, and returns it.
pub async fn stored_location(client: &Client, base: &str, id: i64, timeout: Duration) -> Value {
    let url = format!("{base}/api/locations/{id}");
    eventually(&format!("location {id} to be stored"), timeout, || async {
        let r = client.get(&url).send().await.ok()?;
        if r.status() != StatusCode::OK {
            return None;
        }
        r.json().await.ok()
    })
    .await
}

/// Waits until `asked`'s connection answer over `base` (`query`: its window and distance)
/// holds a location of `other` at exactly this place, and returns that location.
pub async fn met(
    client: &Client,
    base: &str,
    (asked, query): (i64, &str),
    (other, lat, lon): (i64, f64, f64),
    timeout: Duration,
) -> Value {
    let url = format!("{base}/api/persons/{asked}/connection?{query}");
    eventually(
        &format!("person {other} at {lat},{lon} in {asked}'s connection answer"),
        timeout,
        || async {
            let answer: Value = client.get(&url).send().await.ok()?.json().await.ok()?;
            answer.as_array()?.iter().find_map(|c| {
                let l = &c["location"];
                let here =
                    l["latitude"].as_f64() == Some(lat) && l["longitude"].as_f64() == Some(lon);
                (l["person_id"] == other && here).then(|| l.clone())
            })
        },
    )
    .await
}

/// The pings the holder of `token` reads as their own on `day` (`YYYY-MM-DD`), by
/// `GET /api/me/locations`, which must answer 200.
pub async fn my_locations(client: &Client, base: &str, token: &str, day: &str) -> Vec<Value> {
    let url = format!("{base}/api/me/locations?start={day}&end={day}");
    let r = sent(client.get(url).bearer_auth(token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.expect("a JSON list")
}

/// Asserts that the extras of the holder of `token`'s pings on `day` (each ping's fields but
/// the contract's four: id, person, latitude, longitude) are `kept`, in order, in their own
/// reads: `GET /api/me/locations` (asked again until it holds as many pings, for up to
/// `timeout`) and `GET /api/me/export`; and that the contract's read of a ping,
/// `GET /api/locations/{id}` asked by `staff`, shows none of them.
pub async fn assert_extras_kept(
    client: &Client,
    base: &str,
    token: &str,
    staff: &Client,
    day: &str,
    kept: &[Value],
    timeout: Duration,
) {
    let extras_of = |pings: &[Value]| -> Vec<Value> {
        pings
            .iter()
            .map(|p| {
                let mut p = p.as_object().unwrap().clone();
                for contract in ["id", "person_id", "latitude", "longitude"] {
                    p.remove(contract);
                }
                Value::Object(p)
            })
            .collect()
    };
    // Stored by a consumer in its own time: asked until all are there, then compared.
    let deadline = Instant::now() + timeout;
    let mine = loop {
        let mine = my_locations(client, base, token, day).await;
        if mine.len() >= kept.len() || Instant::now() > deadline {
            break mine;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(extras_of(&mine), kept, "GET /api/me/locations");
    let r = sent(
        client
            .get(format!("{base}/api/me/export"))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let export: Value = r.json().await.expect("a JSON document");
    let exported = export["pings"].as_array().expect("the export's pings");
    assert_eq!(extras_of(exported), kept, "the export");
    let one = json_answer(staff.get(format!("{base}/api/locations/{}", mine[0]["id"]))).await;
    let mut fields: Vec<&String> = one.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(
        fields,
        ["creation_time", "id", "latitude", "longitude", "person_id"],
        "{one}"
    );
}

/// A connection to `addr` that has sent `bytes` (a request, or part of one) and is left open.
pub async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("connect to the server");
    stream.write_all(bytes).await.expect("send to the server");
    stream
}

/// What one read of `stream` brings (the head of an answer, at least its first bytes), as text.
pub async fn read_some(stream: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 64 * 1024];
    let n = stream.read(&mut buf).await.expect("read from the server");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

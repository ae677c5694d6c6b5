//! OwnTracks in MQTT mode as a deployment runs it: `serve --mqtt` on the real Mosquitto, its
//! session kept at the broker while it is down; and each device's rate, over HTTP and MQTT.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use udaconnect_testkit::http::{json_answer, register_device};
use udaconnect_testkit::mqtt::{self, Session};
use udaconnect_testkit::process::{printed_token, run_admin, RoleProc};

const BIN: &str = env!("CARGO_BIN_EXE_udaconnect");

/// `admin create-token` on the data directory `data`: the token.
fn token(data: &Path, args: &[&str]) -> String {
    let dir = data.display().to_string();
    let all = [&["create-token", "--data-dir", &dir][..], args].concat();
    printed_token(&run_admin(Path::new(BIN), &all))
        .trim()
        .to_string()
}

/// `serve --auth on --mqtt` on the real Mosquitto, ready, on a data directory and a broker
/// session of its own, with a phone registered for a person of its own.
struct Served {
    server: RoleProc,
    base: String,
    client: reqwest::Client,
    /// The person's attendee token, which reads their stored pings.
    attendee: String,
    /// The phone's topic.
    topic: String,
    /// The phone as registered (its device token, topic, ...).
    phone: Value,
    admin: String,
    // Dropped after the server stops: the kept session, then the data directory.
    _session: Session,
    data: tempfile::TempDir,
}

impl Served {
    async fn start() -> Served {
        Served::start_with(&[]).await
    }

    /// Started with `extra` flags.
    async fn start_with(extra: &[&str]) -> Served {
        Served::start_on(mqtt::BROKER, extra).await
    }

    /// Started on the broker at `broker`, with `extra` flags.
    async fn start_on(broker: &str, extra: &[&str]) -> Served {
        let data = tempfile::tempdir().unwrap();
        let session = Session::new();
        let args = [
            &[
                "--auth",
                "on",
                "--mqtt",
                broker,
                "--mqtt-client-id",
                &session.client_id,
            ][..],
            extra,
        ]
        .concat();
        let server =
            RoleProc::serve_ready(Path::new(BIN), data.path(), &args, Duration::from_secs(60))
                .await;
        // `/ready` of `serve` does not wait for the broker, which drops what is published
        // before the subscription is in place.
        wait_logged(&server, |l| {
            l["message"] == "subscribed to the OwnTracks topics"
        })
        .await;
        let base = server.base();
        let client = reqwest::Client::new();
        let admin = token(data.path(), &["--role", "admin"]);
        let (attendee, phone) = add_phone(&client, &base, &admin, data.path()).await;
        let topic = phone["mqtt_topic"].as_str().unwrap().to_string();
        Served {
            server,
            base,
            client,
            attendee,
            topic,
            phone,
            admin,
            _session: session,
            data,
        }
    }

    /// Another person with a phone: their attendee token and the phone as registered.
    async fn another_phone(&self) -> (String, Value) {
        add_phone(&self.client, &self.base, &self.admin, self.data.path()).await
    }

    /// The fix times of the person's stored pings on 2023-11-15, asked with their attendee
    /// token.
    async fn stored_times(&self) -> Vec<i64> {
        self.stored_times_of(&self.attendee).await
    }

    /// The fix times of `attendee`'s stored pings on 2023-11-15.
    async fn stored_times_of(&self, attendee: &str) -> Vec<i64> {
        let r = self
            .client
            .get(format!(
                "{}/api/me/locations?start=2023-11-15&end=2023-11-15",
                self.base
            ))
            .bearer_auth(attendee)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let pings: Vec<Value> = r.json().await.unwrap();
        pings
            .iter()
            .map(|p| {
                let at = p["creation_time"].as_str().unwrap();
                chrono::DateTime::parse_from_rfc3339(at)
                    .unwrap_or_else(|e| panic!("{at}: {e}"))
                    .timestamp()
            })
            .collect()
    }

    /// Waits until the person's stored fix times are `want` (in any order), failing after
    /// 30 s.
    async fn wait_stored(&self, want: &[i64]) {
        self.wait_stored_of(&self.attendee, want).await
    }

    /// Waits until `attendee`'s stored fix times are `want` (in any order), failing after
    /// 30 s.
    async fn wait_stored_of(&self, attendee: &str, want: &[i64]) {
        let mut want = want.to_vec();
        want.sort_unstable();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mut got = self.stored_times_of(attendee).await;
            got.sort_unstable();
            if got == want {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline && got.len() <= want.len(),
                "stored {got:?}, want {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Waits until `server` logged a line that `is` holds for, failing after 60 s.
async fn wait_logged(server: &RoleProc, is: impl Fn(&Value) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !server.log_lines().iter().any(&is) {
        assert!(std::time::Instant::now() < deadline, "never logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A person made by `admin`, with an attendee token and a phone registered for them: the
/// token and the phone as registered.
async fn add_phone(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    data: &Path,
) -> (String, Value) {
    let person = json_answer(
        client
            .post(format!("{base}/api/persons"))
            .bearer_auth(admin)
            .json(&json!({"first_name": "Mira", "last_name": "Q", "company_name": "Acme"})),
    )
    .await;
    let person = person["id"].as_i64().unwrap();
    let attendee = token(
        data,
        &["--role", "attendee", "--person", &person.to_string()],
    );
    let name = udaconnect_testkit::unique("mira");
    let phone = register_device(client, base, &attendee, (person, &name)).await;
    (attendee, phone)
}

fn location(tst: i64) -> String {
    json!({"_type": "location", "lat": 52.52, "lon": 13.405, "tst": tst, "acc": 5,
           "tid": "xy"})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_published_while_down_are_stored_once_it_is_back_none_twice() {
    let mut s = Served::start().await;

    // 2023-11-15T10:00:00Z, then one a minute.
    let first = 1_700_042_400;
    mqtt::publish(&s.topic, &[location(first)]).await;
    s.wait_stored(&[first]).await;

    assert!(s.server.terminate(Duration::from_secs(30)).await);
    // Taken by the broker for UdaConnect's kept session while no one reads it.
    let later: Vec<i64> = (1..=20).map(|i| first + 60 * i).collect();
    let mut payloads: Vec<String> = later.iter().map(|t| location(*t)).collect();
    // Copies, as a broker delivers a message again whose acknowledgement it did not get, and
    // a phone sends again what it thinks was lost: one ping per device and fix time.
    payloads.push(location(first));
    payloads.push(location(later[3]));
    mqtt::publish(&s.topic, &payloads).await;
    // A topic no device has, among them: refused, and the rest still taken.
    mqtt::publish("owntracks/p999999/nobody-1", &[location(first + 30)]).await;

    s.server.restart().await;
    s.server.wait_ready(Duration::from_secs(60)).await;
    let all: Vec<i64> = std::iter::once(first).chain(later).collect();
    s.wait_stored(&all).await;
    // Nothing comes a second time.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut got = s.stored_times().await;
    got.sort_unstable();
    assert_eq!(got, all);
    s.server.kill_9();
}

#[test]
fn the_role_and_its_flags_are_documented() {
    let help = udaconnect_testkit::process::assert_help_names(
        Path::new(BIN),
        &["tracker-mqtt"],
        &[
            "--mqtt",
            "UDACONNECT_MQTT",
            "--mqtt-client-id",
            "UDACONNECT_MQTT_CLIENT_ID",
            "--person-api",
        ],
    );
    assert!(help.contains(mqtt::BROKER.split("://").next().unwrap()));
    let out = std::process::Command::new(BIN)
        .args(["tracker-mqtt", "--mqtt", "mqtts://broker:8883"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mqtt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_loses_no_message_the_broker_took() {
    let mut s = Served::start().await;

    let first = 1_700_042_400;
    let times: Vec<i64> = (0..400).map(|i| first + 10 * i).collect();
    let burst = {
        let (topic, times) = (s.topic.clone(), times.clone());
        tokio::spawn(async move {
            for chunk in times.chunks(20) {
                let payloads: Vec<String> = chunk.iter().map(|t| location(*t)).collect();
                mqtt::publish(&topic, &payloads).await;
                // A phone's pace, so the kill lands inside the burst.
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };
    // Killed once some are stored and the burst goes on.
    loop {
        if s.stored_times().await.len() >= 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.server.restart().await;
    s.server.wait_ready(Duration::from_secs(60)).await;
    burst.await.unwrap();
    // Each fix time once: a message taken but not acknowledged before the kill comes again,
    // and is the same ping (one per device and fix time).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut got = s.stored_times().await;
        got.sort_unstable();
        if got.len() >= times.len() {
            assert_eq!(got, times);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {} stored",
            got.len(),
            times.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.server.kill_9();
}

/// A burst of more than tracker-mqtt holds at once, from a broker set as docs/deployment.md
/// advises (an in-flight window of 1000, the session's queue unbounded): every message stored.
/// Mosquitto 2.0 sends such a burst without waiting for acknowledgements; the connection's
/// loop once waited for room in the worker's queue while the worker waited for room for its
/// acknowledgements, which only that loop sends, and the bridge stopped for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_past_what_the_bridge_holds_at_once_is_all_stored() {
    let broker = mqtt::OwnBroker::start(&["max_inflight_messages 1000", "max_queued_messages 0"]);
    let mut s = Served::start_on(&broker.url(), &["--device-rate-limit", "0"]).await;

    let first = 1_700_042_400;
    let times: Vec<i64> = (0..6000).map(|i| first + i).collect();
    let payloads: Vec<String> = times.iter().map(|t| location(*t)).collect();
    mqtt::publish_at(broker.port, &s.topic, &payloads).await;

    // Fails once nothing more is stored for 30 s: the bridge has stopped.
    let label = "udaconnect_mqtt_messages_total{outcome=\"stored\"}";
    let (mut stored, mut moved) = (0, std::time::Instant::now());
    while stored < times.len() as u64 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = metric(&s, label).await;
        if now > stored {
            (stored, moved) = (now, std::time::Instant::now());
        }
        assert!(
            moved.elapsed() < Duration::from_secs(30),
            "{stored} of {} stored, none for 30 s",
            times.len()
        );
    }
    // Each once, in the store too.
    s.wait_stored(&times).await;
    s.server.kill_9();
}

/// `name`'s value on `/metrics` (0 when absent).
async fn metric(s: &Served, name: &str) -> u64 {
    let text = s
        .client
        .get(format!("{}/metrics", s.base))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_phone_is_held_to_its_rate_and_others_are_not() {
    let mut s = Served::start_with(&["--device-rate-limit", "1", "--device-burst", "3"]).await;
    let flooding = s.phone.clone();
    let (calm, other) = s.another_phone().await;
    let post = |phone: &Value, tst: i64| {
        let request = s
            .client
            .post(format!("{}/pub", s.base))
            .basic_auth("me", phone["token"].as_str())
            .header("Content-Type", "application/json")
            .body(location(tst));
        async move { request.send().await.unwrap() }
    };

    // OwnTracks over HTTP: its burst, then 429 with Retry-After; another phone meanwhile is
    // taken.
    let first = 1_700_042_400;
    let mut taken = Vec::new();
    let mut limited = 0;
    for i in 0..10 {
        let r = post(&flooding, first + i).await;
        match r.status().as_u16() {
            200 => taken.push(first + i),
            429 => {
                let wait = r.headers()["retry-after"].to_str().unwrap();
                assert!(wait.parse::<u64>().unwrap() >= 1, "{wait}");
                limited += 1;
            }
            other => panic!("{other}"),
        }
    }
    assert!((3..=5).contains(&taken.len()), "{taken:?}");
    assert_eq!(post(&other, first).await.status(), 200);
    s.wait_stored(&taken).await;
    s.wait_stored_of(&calm, &[first]).await;
    let name = "udaconnect_tracker_messages_limited_total";
    assert_eq!(metric(&s, name).await, limited);

    // Over MQTT: taken up to the rate, the rest acknowledged and dropped, counted; the other
    // phone's message among them is stored.
    let later: Vec<i64> = (0..20).map(|i| first + 1000 + i).collect();
    let payloads: Vec<String> = later.iter().map(|t| location(*t)).collect();
    mqtt::publish(&s.topic, &payloads).await;
    let calm_topic = other["mqtt_topic"].as_str().unwrap();
    mqtt::publish(calm_topic, &[location(first + 1000)]).await;
    s.wait_stored_of(&calm, &[first, first + 1000]).await;
    let stored_label = "udaconnect_mqtt_messages_total{outcome=\"stored\"}";
    let limited_label = "udaconnect_mqtt_messages_total{outcome=\"limited\"}";
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (stored, dropped) = loop {
        let stored = metric(&s, stored_label).await;
        let dropped = metric(&s, limited_label).await;
        if stored + dropped >= 21 {
            break (stored, dropped);
        }
        assert!(std::time::Instant::now() < deadline, "{stored} + {dropped}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(dropped >= 10, "{dropped} of 20 dropped");
    assert_eq!(stored + dropped, 21);
    assert_eq!(metric(&s, name).await, limited + dropped);
    let flooded = s.stored_times().await;
    assert_eq!(flooded.len() as u64, taken.len() as u64 + stored - 1);
    s.server.kill_9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_is_taken_at_once_though_its_id_came_on_a_topic_before_it_was_registered() {
    let mut s = Served::start().await;

    // The next device's id on a topic before that device exists, as another deployment's
    // phone on a shared broker, or a guess: refused.
    let next = s.phone["id"].as_i64().unwrap() + 1;
    let early = format!("owntracks/p999999/early-{next}");
    let first = 1_700_042_400;
    mqtt::publish(&early, &[location(first)]).await;
    wait_logged(&s.server, |l| {
        l["topic"] == early.as_str() && l["message"] == "MQTT message refused and acknowledged"
    })
    .await;

    // Registered then, and publishing at once: taken, as any phone.
    let (attendee, phone) = s.another_phone().await;
    assert_eq!(phone["id"].as_i64(), Some(next));
    let topic = phone["mqtt_topic"].as_str().unwrap();
    mqtt::publish(topic, &[location(first)]).await;
    s.wait_stored_of(&attendee, &[first]).await;
    s.server.kill_9();
}

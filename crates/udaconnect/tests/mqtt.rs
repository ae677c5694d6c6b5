//! OwnTracks in MQTT mode as a deployment runs it: `serve --mqtt` on the real Mosquitto, its
//! session kept at the broker while it is down.

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
    // Dropped after the server stops: the kept session, then the data directory.
    _session: Session,
    _data: tempfile::TempDir,
}

impl Served {
    async fn start() -> Served {
        let data = tempfile::tempdir().unwrap();
        let session = Session::new();
        let args = [
            "--auth",
            "on",
            "--mqtt",
            mqtt::BROKER,
            "--mqtt-client-id",
            &session.client_id,
        ];
        let server =
            RoleProc::serve_ready(Path::new(BIN), data.path(), &args, Duration::from_secs(60))
                .await;
        let base = server.base();
        let client = reqwest::Client::new();
        let admin = token(data.path(), &["--role", "admin"]);
        let person = json_answer(
            client
                .post(format!("{base}/api/persons"))
                .bearer_auth(&admin)
                .json(&json!({"first_name": "Mira", "last_name": "Q", "company_name": "Acme"})),
        )
        .await;
        let person = person["id"].as_i64().unwrap();
        let attendee = token(
            data.path(),
            &["--role", "attendee", "--person", &person.to_string()],
        );
        let name = udaconnect_testkit::unique("mira");
        let phone = register_device(&client, &base, &attendee, (person, &name)).await;
        let topic = phone["mqtt_topic"].as_str().unwrap().to_string();
        Served {
            server,
            base,
            client,
            attendee,
            topic,
            _session: session,
            _data: data,
        }
    }

    /// The fix times of the person's stored pings on 2023-11-15, asked with their attendee
    /// token.
    async fn stored_times(&self) -> Vec<i64> {
        let r = self
            .client
            .get(format!(
                "{}/api/me/locations?start=2023-11-15&end=2023-11-15",
                self.base
            ))
            .bearer_auth(&self.attendee)
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
        let mut want = want.to_vec();
        want.sort_unstable();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mut got = self.stored_times().await;
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
    let payloads: Vec<String> = later.iter().map(|t| location(*t)).collect();
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
    // Each fix time at least once: a message taken but not acknowledged before the kill comes
    // again, and is stored again until pings are one per (device, fix time).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got: std::collections::BTreeSet<i64> = s.stored_times().await.into_iter().collect();
        if got.len() == times.len() {
            assert!(got.iter().eq(times.iter()));
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

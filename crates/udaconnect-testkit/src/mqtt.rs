//! OwnTracks phones in MQTT mode, for tests: QoS 1 publishes to the local Mosquitto
//! (`scripts/setup` starts it), each returned only once the broker acknowledged it, and the
//! persistent sessions tests leave behind cleared; and a Mosquitto of a test's own, for
//! settings the shared one does not have.

use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

use crate::local::{find_program, unique};

/// The broker every test uses.
pub const BROKER: &str = "mqtt://127.0.0.1:1883";

fn options(client_id: &str, clean: bool) -> MqttOptions {
    options_at(client_id, clean, 1883)
}

fn options_at(client_id: &str, clean: bool, port: u16) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
    options
        .set_clean_session(clean)
        .set_keep_alive(Duration::from_secs(10));
    options
}

/// Publishes each of `payloads` to `topic` with QoS 1, as a phone does, and returns once the
/// broker acknowledged them all (it holds them for its subscribers from then on).
pub async fn publish(topic: &str, payloads: &[String]) {
    publish_at(1883, topic, payloads).await
}

/// [`publish`] to the broker on `port` of loopback.
pub async fn publish_at(port: u16, topic: &str, payloads: &[String]) {
    let (client, mut events) =
        AsyncClient::new(options_at(&unique("phone"), true, port), payloads.len() + 8);
    for p in payloads {
        client
            .publish(topic, QoS::AtLeastOnce, false, p.clone().into_bytes())
            .await
            .expect("the publish is queued");
    }
    let mut acked = 0;
    let all = async {
        while acked < payloads.len() {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => panic!("the test's MQTT connection failed: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("the broker acknowledges every message");
    let _ = client.try_disconnect();
}

/// A client id for a subscriber under test; the broker's session under it (and any message
/// queued there) is dropped with this value, once the subscriber has stopped.
pub struct Session {
    pub client_id: String,
}

impl Session {
    pub fn new() -> Session {
        Session {
            client_id: unique("udaconnect_test"),
        }
    }
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let id = self.client_id.clone();
        // A connection with a clean session ends the kept one. On its own thread: a drop may
        // run inside a test's runtime, where another cannot be blocked on.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let (client, mut events) = AsyncClient::new(options(&id, true), 4);
                let connected = async {
                    while let Ok(event) = events.poll().await {
                        if let Event::Incoming(Packet::ConnAck(_)) = event {
                            break;
                        }
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(5), connected).await;
                let _ = client.try_disconnect();
                let _ = tokio::time::timeout(Duration::from_millis(200), events.poll()).await;
            });
        })
        .join();
    }
}

/// A Mosquitto of a test's own (or a benchmark's) on a free port of loopback, with `settings`
/// (lines of `mosquitto.conf`) and no persistence; stopped when dropped. For a broker set as a
/// deployment sets it: the shared one on 1883 keeps Mosquitto's defaults.
pub struct OwnBroker {
    child: Child,
    conf: PathBuf,
    pub port: u16,
}

impl OwnBroker {
    /// Starts it and waits until it listens; panics where it cannot.
    pub fn start(settings: &[&str]) -> OwnBroker {
        OwnBroker::try_start(settings).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`OwnBroker::start`], saying why where it cannot: `mosquitto` is on neither `PATH` nor
    /// the `sbin` directories packages put it in, does not start, or does not listen within
    /// 10 s.
    pub fn try_start(settings: &[&str]) -> io::Result<OwnBroker> {
        let bin =
            find_program("mosquitto", [], &["/usr/sbin", "/usr/local/sbin"]).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "mosquitto is not installed (scripts/mosquitto installs it)",
                )
            })?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let conf = std::env::temp_dir().join(format!("{}.conf", unique("mosquitto")));
        let text = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{}\n",
            settings.join("\n")
        );
        std::fs::write(&conf, text)?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                let _ = std::fs::remove_file(&conf);
                io::Error::new(e.kind(), format!("mosquitto does not start: {e}"))
            })?;
        let broker = OwnBroker { child, conf, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("mosquitto does not listen on port {port}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(broker)
    }

    /// Its URL, for `--mqtt`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.conf);
    }
}

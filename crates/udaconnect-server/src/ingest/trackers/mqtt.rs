//! OwnTracks in MQTT mode: the phone publishes its messages to a broker (Mosquitto), on its
//! device's topic `owntracks/USER/DEVICE` (and transitions on `.../event`); tracker-mqtt
//! subscribes to both with QoS 1 and takes each message as `POST /pub` takes one.
//!
//! A message is acknowledged to the broker (PUBACK) only once its ping is durable in the log,
//! so a crash loses nothing acknowledged: the broker delivers again what was not. The session
//! is persistent (a stable client id, no clean session), so what phones publish while
//! UdaConnect is down waits in the broker and arrives once it is back. Delivery is at least
//! once: a message taken but not acknowledged before a crash comes again.
//!
//! A message that can never be taken (a topic no live device has, a payload that is not an
//! OwnTracks message, a place out of range) is logged with its reason, counted, and
//! acknowledged: it would come back forever otherwise and hold up every message behind it.
//! One that cannot be taken *now* (the log or a store down) is tried again until it is. One
//! over its device's rate (`--device-rate-limit`) is acknowledged and dropped, counted as
//! `limited`: a flooding phone holds up no other.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, Event, MqttOptions, Packet, Publish, QoS, SubscribeFilter, SubscribeReasonCode,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{mpsc, watch};
use udaconnect_core::auth::Action;
use udaconnect_core::model::NewLocation;
use udaconnect_core::tracker::{
    owntracks_message, topic_device, App, DeviceId, DeviceInfo, OwnTracks, Seen,
};
use udaconnect_core::ErrorCode;

use super::{device_principal, seen, Trackers};
use crate::access::Caller;
use crate::ingest::DevicePing;
use crate::metrics::Metrics;

/// What tracker-mqtt subscribes to: the OwnTracks app's topics for every user and device.
pub const SUBSCRIPTIONS: [&str; 2] = ["owntracks/+/+", "owntracks/+/+/event"];

/// The client id when none is given: stable, so the broker keeps this subscriber's session
/// (and what arrives for it) across restarts.
pub const DEFAULT_CLIENT_ID: &str = "udaconnect-tracker-mqtt";

/// Most messages taken at once.
const TAKEN_TOGETHER: usize = 256;

/// Requests (acknowledgements) waiting for the connection. The worker may wait for room here:
/// the connection's loop, which empties it, never waits for the worker (see [`run`]).
const REQUESTS: usize = 4 * TAKEN_TOGETHER;

/// Longest pause between tries of a message the log or a store refused for now, and between
/// reconnections.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Where the broker is: `mqtt://[user:password@]host[:port]` (port 1883 by default).
#[derive(Clone)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<SecretString>,
}

impl FromStr for BrokerUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let url = url::Url::parse(s.trim()).map_err(|e| format!("'{s}' is not a URL: {e}"))?;
        match url.scheme() {
            "mqtt" | "tcp" => {}
            "mqtts" | "ssl" => {
                return Err(
                    "TLS to the broker is not built in: use mqtt:// to a broker on a \
                            private network, or a TLS proxy beside UdaConnect"
                        .to_string(),
                )
            }
            other => return Err(format!("scheme '{other}' is not mqtt://")),
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("'{s}' names no host"))?;
        let (user, password) = crate::credentials::url_credentials(&url)?;
        Ok(BrokerUrl {
            host: host.trim_matches(['[', ']']).to_string(),
            port: url.port().unwrap_or(1883),
            user,
            password,
        })
    }
}

/// Shown without the password.
impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.user {
            Some(user) => write!(f, "mqtt://{user}@{}:{}", self.host, self.port),
            None => write!(f, "mqtt://{}:{}", self.host, self.port),
        }
    }
}

impl fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// How tracker-mqtt reaches its broker (`--mqtt`, `--mqtt-client-id`).
#[derive(Debug, Clone)]
pub struct MqttSettings {
    pub broker: BrokerUrl,
    /// The session's name at the broker: one per deployment, kept across restarts.
    pub client_id: String,
}

/// The device topic a message's topic is on (`owntracks/USER/DEVICE`), and whether it came
/// on its `/event` subtopic; `None` for any other topic.
pub fn device_topic(topic: &str) -> Option<(&str, bool)> {
    let levels: Vec<&str> = topic.split('/').collect();
    let event = match levels.as_slice() {
        ["owntracks", user, device] if !user.is_empty() && !device.is_empty() => false,
        ["owntracks", user, device, "event"] if !user.is_empty() && !device.is_empty() => true,
        _ => return None,
    };
    let end = levels[..3].iter().map(|l| l.len()).sum::<usize>() + 2;
    Some((&topic[..end], event))
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Its ping is durable in the log.
    Stored,
    /// A message that makes no ping (a transition, a last will, an unknown `_type`).
    Ignored,
    /// Never to be taken, and why.
    Refused(String),
    /// Over its device's rate: acknowledged and dropped, as a broker cannot be told to send
    /// it later, and holding it would hold up the messages behind it.
    Limited,
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Stored => "stored",
            Outcome::Ignored => "ignored",
            Outcome::Refused(_) => "refused",
            Outcome::Limited => "limited",
        }
    }
}

/// Whether an error is for now (tried again) rather than for good.
fn for_now(e: &udaconnect_core::Error) -> bool {
    matches!(e.code(), ErrorCode::Unavailable | ErrorCode::Internal)
}

/// How long a device read from the account store is taken as it was: a revocation reaches
/// tracker-mqtt within this, as a token's reaches the HTTP roles.
const DEVICE_TTL: Duration = Duration::from_secs(5);

/// Devices read by id, kept `DEVICE_TTL`: a busy broker delivers thousands of messages a
/// second, and a store read for each would cost more than the rest of their way to the log.
/// Ids no device has are not kept (each such message costs one read by id).
#[derive(Default)]
pub struct DeviceCache(Mutex<HashMap<DeviceId, (Instant, Option<DeviceInfo>)>>);

/// Devices kept at most; past it the cache starts over.
const DEVICES_KEPT: usize = 100_000;

impl DeviceCache {
    fn get(&self, id: DeviceId) -> Option<Option<DeviceInfo>> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&id)
            .filter(|(at, _)| at.elapsed() < DEVICE_TTL)
            .map(|(_, d)| d.clone())
    }

    fn put(&self, id: DeviceId, device: Option<DeviceInfo>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= DEVICES_KEPT {
            map.clear();
        }
        map.insert(id, (Instant::now(), device));
    }

    /// Notes what the store now says of a device seen, keeping its time in the cache.
    fn seen(&self, id: DeviceId, seen: &Seen) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, Some(d))) = map.get_mut(&id) {
            d.app = Some(seen.app);
            d.last_seen = Some(seen.at);
            if let Some(b) = seen.battery_pct.filter(|b| (0.0..=100.0).contains(b)) {
                d.battery_pct = Some(b.round() as i64);
            }
        }
    }
}

/// A message read up to its ping: what became of it already, or the ping to append.
enum Prepared {
    Done(Outcome),
    Ping {
        device: DeviceInfo,
        // Boxed: a ping with its extras would make every outcome this large.
        ping: Box<NewLocation>,
        battery_pct: Option<f64>,
    },
}

/// Reads one message published on `topic`: its device, its rate and its ping. `Err` is an
/// error for now.
async fn prepare(
    trackers: &Trackers,
    devices: &DeviceCache,
    topic: &str,
    payload: &[u8],
) -> udaconnect_core::Result<Prepared> {
    let done = |o: Outcome| Ok(Prepared::Done(o));
    let unknown = || {
        done(Outcome::Refused(
            "no live device has this topic".to_string(),
        ))
    };
    let Some((device_topic, _)) = device_topic(topic) else {
        return done(Outcome::Refused(
            "not an OwnTracks device topic".to_string(),
        ));
    };
    let Some((person, id)) = topic_device(device_topic) else {
        return unknown();
    };
    let Some(device) = live_device(trackers, devices, id).await? else {
        return unknown();
    };
    // The whole topic, name included: ids alone are easy to guess.
    if device.person != person || device.mqtt_topic() != device_topic {
        return unknown();
    }
    if trackers.admit(device.id).is_err() {
        trackers.ingest.metrics.tracker_limited.inc();
        return done(Outcome::Limited);
    }
    let fix = match owntracks_message(payload) {
        Ok(OwnTracks::Location { fix, .. }) => fix,
        Ok(OwnTracks::Ignored { .. }) => return done(Outcome::Ignored),
        Err(e) => return done(Outcome::Refused(e.to_string())),
    };
    match fix.ping(device.person) {
        Ok(ping) => Ok(Prepared::Ping {
            device,
            ping: Box::new(ping),
            battery_pct: fix.extras.battery_pct,
        }),
        Err(e) => refused(e).map(Prepared::Done),
    }
}

/// An ingest error as an outcome: for good, or (`Err`) for now.
fn refused(e: udaconnect_core::Error) -> udaconnect_core::Result<Outcome> {
    if for_now(&e) {
        Err(e)
    } else {
        Ok(Outcome::Refused(e.to_string()))
    }
}

/// Takes one message published on `topic`. `Err` is an error for now: the message is to be
/// tried again, not acknowledged.
pub async fn take(
    trackers: &Trackers,
    devices: &DeviceCache,
    topic: &str,
    payload: &[u8],
) -> udaconnect_core::Result<Outcome> {
    let (device, ping, battery_pct) = match prepare(trackers, devices, topic, payload).await? {
        Prepared::Done(outcome) => return Ok(outcome),
        Prepared::Ping {
            device,
            ping,
            battery_pct,
        } => (device, ping, battery_pct),
    };
    let caller = Caller::Signed(device_principal(&device));
    let action = Action::PostOwnTracks;
    let id = Some(device.id);
    if let Err(e) = (trackers.ingest)
        .accept_from_device(&caller, action, vec![*ping], false, id)
        .await
    {
        return refused(e);
    }
    note_seen(trackers, devices, &device, battery_pct).await;
    Ok(Outcome::Stored)
}

/// Records the device's use, and keeps the cache's copy as the store now has it.
async fn note_seen(
    trackers: &Trackers,
    devices: &DeviceCache,
    device: &DeviceInfo,
    battery_pct: Option<f64>,
) {
    let app = App::OwnTracks;
    if let Some(at) = seen(trackers, device, app, battery_pct).await {
        let seen = Seen {
            app,
            battery_pct,
            at,
        };
        devices.seen(device.id, &seen);
    }
}

/// Takes `batch` together: every message read, their pings appended to the log in one call.
/// A message whose own ping is refused gets that answer; one that meets an error for now is
/// left `None`, to be taken alone.
async fn take_together(
    trackers: &Trackers,
    devices: &DeviceCache,
    batch: &[Publish],
) -> Vec<Option<Outcome>> {
    let read = batch
        .iter()
        .map(|p| prepare(trackers, devices, &p.topic, &p.payload));
    let read = futures_util::future::join_all(read).await;
    let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
    let (mut items, mut taken) = (Vec::new(), Vec::new());
    for (i, prepared) in read.into_iter().enumerate() {
        match prepared {
            Ok(Prepared::Done(outcome)) => outcomes[i] = Some(outcome),
            Ok(Prepared::Ping {
                device,
                ping,
                battery_pct,
            }) => {
                items.push(DevicePing {
                    caller: Caller::Signed(device_principal(&device)),
                    ping: *ping,
                    device: device.id,
                });
                taken.push((i, device, battery_pct));
            }
            Err(_) => {}
        }
    }
    if items.is_empty() {
        return outcomes;
    }
    let Ok(answers) = (trackers.ingest)
        .accept_devices(Action::PostOwnTracks, items)
        .await
    else {
        // Nothing appended: each is taken alone, and tried again until it is.
        return outcomes;
    };
    for ((i, device, battery_pct), answer) in taken.into_iter().zip(answers) {
        outcomes[i] = match answer {
            Ok(()) => {
                note_seen(trackers, devices, &device, battery_pct).await;
                Some(Outcome::Stored)
            }
            Err(e) => refused(e).ok(),
        };
    }
    outcomes
}

/// Device `id`, unless it is revoked.
async fn live_device(
    trackers: &Trackers,
    devices: &DeviceCache,
    id: i64,
) -> udaconnect_core::Result<Option<DeviceInfo>> {
    if let Some(known) = devices.get(id) {
        return Ok(known);
    }
    // An id no device has yet is not kept: it may be a phone being registered now, which
    // publishes at once; a device found is kept, and a revoked one is revoked for good.
    let Some(device) = trackers.accounts.device(id).await? else {
        return Ok(None);
    };
    let live = Some(device).filter(|d| d.revoked.is_none());
    devices.put(id, live.clone());
    Ok(live)
}

/// Whether the connection to the broker is up, for `/ready`.
#[derive(Clone, Default)]
pub struct Connected(Arc<AtomicBool>);

impl Connected {
    pub fn is_up(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, up: bool) {
        self.0.store(up, Ordering::Relaxed);
    }
}

/// Reads the broker until `stop`: subscribes when the broker holds no session for this
/// client, hands each message to a worker that takes it and only then acknowledges it.
pub async fn run(
    trackers: Arc<Trackers>,
    settings: MqttSettings,
    metrics: Arc<Metrics>,
    connected: Connected,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut options = MqttOptions::new(
        settings.client_id.clone(),
        settings.broker.host.clone(),
        settings.broker.port,
    );
    options
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(30));
    if let Some(user) = &settings.broker.user {
        let password = settings
            .broker
            .password
            .as_ref()
            .map(|p| p.expose_secret().to_string())
            .unwrap_or_default();
        options.set_credentials(user.clone(), password);
    }
    let (client, mut events) = AsyncClient::new(options, REQUESTS);
    // Unbounded: this loop must never wait for the worker, whose acknowledgements only this
    // loop sends. With a bounded queue, a burst past the queue and the requests together
    // stalled both for good (the loop waiting for room in the queue, the worker for room for
    // its acknowledgements). What waits here is what the broker sent and UdaConnect has not
    // acknowledged: the broker's in-flight window bounds it, when it keeps to one (Mosquitto
    // 2.0.11 was seen sending thousands past a window of 1000).
    let (queue, queued) = mpsc::unbounded_channel::<Publish>();
    let worker = tokio::spawn(work(
        trackers,
        client.clone(),
        queued,
        metrics,
        stop.clone(),
    ));
    let mut backoff = Duration::from_millis(100);
    loop {
        let event = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            event = events.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                // Ready once messages reach us: at once with a kept session (it holds the
                // subscriptions), else only at the SubAck, as the broker drops what is
                // published to a topic before anyone subscribes to it.
                connected.set(ack.session_present);
                backoff = Duration::from_millis(100);
                tracing::info!(broker = %settings.broker, session_present = ack.session_present, "connected to the MQTT broker");
                // A kept session keeps its subscriptions; subscribing again would have the
                // broker send every retained message (each device's last) once more.
                if !ack.session_present {
                    let filters: Vec<SubscribeFilter> = SUBSCRIPTIONS
                        .iter()
                        .map(|t| SubscribeFilter::new(t.to_string(), QoS::AtLeastOnce))
                        .collect();
                    // Queued from a task of its own: this loop is what empties the queue.
                    let client = client.clone();
                    tokio::spawn(async move {
                        if let Err(e) = client.subscribe_many(filters).await {
                            tracing::error!(error = %e, "cannot subscribe to the OwnTracks topics");
                        }
                    });
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack.return_codes.contains(&SubscribeReasonCode::Failure) {
                    tracing::error!(codes = ?ack.return_codes, "the broker refused a subscription to the OwnTracks topics: may this user read owntracks/# (its ACL)?");
                } else {
                    tracing::info!(codes = ?ack.return_codes, "subscribed to the OwnTracks topics");
                    connected.set(true);
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if queue.send(publish).is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                connected.set(false);
                tracing::warn!(broker = %settings.broker, error = %e, "MQTT connection lost; reconnecting");
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    connected.set(false);
    drop(queue);
    // What the worker has not acknowledged comes again in the next session.
    worker.abort();
    Ok(())
}

/// Takes what is queued together (read one by one, appended to the log in one call, see
/// [`take_together`]) and acknowledges each once taken, in the order they came. A message the
/// batch could not take (the log or a store for now) is taken alone and tried again until it
/// is, so one device's refusal or a slow store holds up no other.
async fn work(
    trackers: Arc<Trackers>,
    client: AsyncClient,
    mut queued: mpsc::UnboundedReceiver<Publish>,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(TAKEN_TOGETHER);
    let devices = DeviceCache::default();
    while queued.recv_many(&mut batch, TAKEN_TOGETHER).await > 0 {
        let together = take_together(&trackers, &devices, &batch).await;
        let alone = batch.iter().zip(&together).map(|(publish, outcome)| async {
            match outcome {
                Some(outcome) => Some(outcome.clone()),
                None => take_until_done(&trackers, &devices, publish, &metrics, &stop).await,
            }
        });
        let outcomes = futures_util::future::join_all(alone).await;
        for (publish, outcome) in batch.drain(..).zip(outcomes) {
            // Stopped first: the broker sends it again in the next session.
            let Some(outcome) = outcome else {
                return;
            };
            if let Outcome::Refused(why) = &outcome {
                tracing::warn!(topic = %publish.topic, reason = %why, "MQTT message refused and acknowledged");
            }
            metrics
                .mqtt_messages
                .get_or_create(&label(outcome.label()))
                .inc();
            if let Err(e) = client.ack(&publish).await {
                tracing::warn!(error = %e, "acknowledgement not sent; the broker sends the message again");
            }
        }
    }
}

/// What became of `publish`, tried again while the log or a store cannot take it; `None` when
/// the role stops first.
async fn take_until_done(
    trackers: &Trackers,
    devices: &DeviceCache,
    publish: &Publish,
    metrics: &Metrics,
    stop: &watch::Receiver<bool>,
) -> Option<Outcome> {
    let mut backoff = Duration::from_millis(100);
    loop {
        match take(trackers, devices, &publish.topic, &publish.payload).await {
            Ok(outcome) => return Some(outcome),
            Err(e) => {
                metrics.mqtt_messages.get_or_create(&label("retried")).inc();
                tracing::warn!(topic = %publish.topic, error = %e, "message not taken now; trying again");
                if *stop.borrow() {
                    return None;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

fn label(outcome: &'static str) -> Vec<(&'static str, String)> {
    vec![("outcome", outcome.to_string())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_topics_are_the_subscriptions_levels() {
        for (topic, read) in [
            (
                "owntracks/p1/phone-2",
                Some(("owntracks/p1/phone-2", false)),
            ),
            (
                "owntracks/p1/phone-2/event",
                Some(("owntracks/p1/phone-2", true)),
            ),
            (
                "owntracks/alice/iphone",
                Some(("owntracks/alice/iphone", false)),
            ),
            ("owntracks/p1/phone-2/cmd", None),
            ("owntracks/p1/phone-2/event/x", None),
            ("owntracks/p1", None),
            ("owntracks//phone-2", None),
            ("owntracks/p1/", None),
            ("other/p1/phone-2", None),
            ("", None),
        ] {
            assert_eq!(device_topic(topic), read, "{topic}");
        }
    }

    #[test]
    fn broker_urls_read_host_port_and_credentials() {
        let url: BrokerUrl = "mqtt://bridge:s%40cret@broker.example:8883"
            .parse()
            .unwrap();
        assert_eq!(url.host, "broker.example");
        assert_eq!(url.port, 8883);
        assert_eq!(url.user.as_deref(), Some("bridge"));
        assert_eq!(url.password.as_ref().unwrap().expose_secret(), "s@cret");
        assert_eq!(url.to_string(), "mqtt://bridge@broker.example:8883");
        let plain: BrokerUrl = "mqtt://127.0.0.1".parse().unwrap();
        assert_eq!((plain.host.as_str(), plain.port), ("127.0.0.1", 1883));
        assert!(plain.user.is_none() && plain.password.is_none());
        for bad in ["mqtts://broker", "http://broker", "broker:1883", "mqtt://"] {
            assert!(bad.parse::<BrokerUrl>().is_err(), "{bad}");
        }
    }
}

//! The single-ping rate of each tracker protocol over HTTP, against `POST /api/locations` in
//! the same run: every request one new fix of one of the registered phones, answered once
//! durable in the log.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;

use super::{location, Phone, FIRST_FIX};

/// One protocol's single pings.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// The baseline: the original JSON contract, with the attendee's own token.
    Locations,
    OwnTracks,
    OsmAndGet,
    OsmAndForm,
    OsmAndListener,
    TraccarJson,
    /// The share page's posts, one ping a request as the page sends a fresh fix.
    MyLocations,
}

/// The order they run in: the baseline first and again last, so a change in the machine's
/// load during the run shows as a difference between its two rates.
const RUNS: [Protocol; 8] = [
    Protocol::Locations,
    Protocol::OwnTracks,
    Protocol::OsmAndGet,
    Protocol::OsmAndForm,
    Protocol::OsmAndListener,
    Protocol::TraccarJson,
    Protocol::MyLocations,
    Protocol::Locations,
];

impl Protocol {
    fn title(self) -> &'static str {
        match self {
            Protocol::Locations => {
                "`POST /api/locations` (JSON, an attendee's token; the baseline)"
            }
            Protocol::OwnTracks => "OwnTracks HTTP (`POST /pub`, Basic with the device token)",
            Protocol::OsmAndGet => "OsmAnd protocol, query (`GET /api/osmand?id=...`)",
            Protocol::OsmAndForm => "OsmAnd protocol, form (`POST /api/osmand`)",
            Protocol::OsmAndListener => "OsmAnd protocol on `--osmand-listen` (`GET /?id=...`)",
            Protocol::TraccarJson => "Traccar Client JSON (`POST /` on `--osmand-listen`)",
            Protocol::MyLocations => "share page (`POST /api/me/locations`, one ping)",
        }
    }

    /// The request for `phone`'s fix at `tst` (epoch seconds).
    fn request(
        self,
        http: &reqwest::Client,
        at: &Endpoints,
        phone: &Phone,
        tst: i64,
    ) -> reqwest::RequestBuilder {
        let (base, listener) = (&at.base, &at.osmand);
        let (id, time) = (&phone.osmand_id, iso(tst));
        match self {
            Protocol::Locations => http
                .post(format!("{base}/api/locations"))
                .bearer_auth(&phone.attendee)
                .json(&json!({"person_id": phone.person, "latitude": 52.52,
                              "longitude": 13.405, "creation_time": time})),
            Protocol::OwnTracks => http
                .post(format!("{base}/pub"))
                .basic_auth("bench", Some(&phone.token))
                .header("content-type", "application/json")
                .body(location(tst)),
            Protocol::OsmAndGet => http.get(format!(
                "{base}/api/osmand?id={id}&lat=52.52&lon=13.405&timestamp={tst}&accuracy=5"
            )),
            Protocol::OsmAndForm => http
                .post(format!("{base}/api/osmand"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!(
                    "id={id}&lat=52.52&lon=13.405&timestamp={tst}&accuracy=5&batt=80"
                )),
            Protocol::OsmAndListener => http.get(format!(
                "{listener}/?id={id}&lat=52.52&lon=13.405&timestamp={tst}&accuracy=5"
            )),
            Protocol::TraccarJson => http.post(format!("{listener}/")).json(&json!({
                "device_id": id,
                "location": {"timestamp": time, "is_moving": true,
                    "coords": {"latitude": 52.52, "longitude": 13.405, "accuracy": 5},
                    "battery": {"level": 0.8}}})),
            Protocol::MyLocations => http
                .post(format!("{base}/api/me/locations"))
                .bearer_auth(&phone.attendee)
                .json(&json!([{"latitude": 52.52, "longitude": 13.405,
                               "creation_time": time, "accuracy": 5}])),
        }
    }
}

/// Where the server under test answers: its HTTP port and its OsmAnd listener.
pub struct Endpoints {
    pub base: String,
    pub osmand: String,
}

/// `tst` (epoch seconds) in ISO 8601, as the JSON protocols send it.
fn iso(tst: i64) -> String {
    let at = chrono::DateTime::from_timestamp(tst, 0).unwrap_or_default();
    udaconnect_core::time::format_utc(at)
}

/// The single-ping rate of each protocol, `seconds` each with `clients` requests in flight,
/// written to `report` as a table against the baseline.
pub async fn rates(
    http: &reqwest::Client,
    at: Endpoints,
    phones: &[Phone],
    seconds: u64,
    clients: u64,
    report: &mut String,
) -> anyhow::Result<()> {
    let fleet = Fleet {
        http: http.clone(),
        at: Arc::new(at),
        phones: Arc::new(phones.to_vec()),
    };
    let mut measured = Vec::new();
    for (k, protocol) in RUNS.into_iter().enumerate() {
        eprintln!("single pings: {}", protocol.title());
        // Each run's fixes in days of their own, so none is a copy of another's (one ping per
        // device and second).
        let first = FIRST_FIX + 1_000_000 * (k as i64 + 1);
        let rate = rate(&fleet, protocol, first, seconds, clients).await?;
        measured.push((protocol, rate));
    }
    let baselines: Vec<f64> = measured
        .iter()
        .filter(|(p, _)| *p == Protocol::Locations)
        .map(|(_, r)| *r)
        .collect();
    let baseline = baselines.iter().sum::<f64>() / baselines.len() as f64;
    writeln!(
        report,
        "\nSingle pings over HTTP, {clients} requests in flight, {seconds} s each, in this run; \
         the baseline ran first and last ({}), the ratios are to their mean:\n\n\
         | protocol | pings/s | vs `POST /api/locations` |\n| --- | --- | --- |",
        baselines
            .iter()
            .map(|r| format!("{r:.0}/s"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    for (protocol, rate) in measured.iter().filter(|(p, _)| *p != Protocol::Locations) {
        writeln!(
            report,
            "| {} | {:.0} | {:.2}x |",
            protocol.title(),
            rate,
            rate / baseline
        )?;
    }
    writeln!(
        report,
        "| {} | {:.0} | 1.00x |",
        Protocol::Locations.title(),
        baseline
    )?;
    Ok(())
}

/// The registered phones and where they send: what each request of a run is made from, shared
/// by the run's tasks.
#[derive(Clone)]
struct Fleet {
    http: reqwest::Client,
    at: Arc<Endpoints>,
    phones: Arc<Vec<Phone>>,
}

impl Fleet {
    /// Sends `phone`'s fix at `tst` by `protocol`; an answer other than a success fails the run.
    fn ping(
        &self,
        protocol: Protocol,
        phone: &Phone,
        tst: i64,
    ) -> impl Future<Output = anyhow::Result<()>> + Send + 'static {
        let request = protocol.request(&self.http, &self.at, phone, tst);
        async move {
            let r = request.send().await?;
            if !r.status().is_success() {
                bail!("{}: {} {}", protocol.title(), r.status(), r.text().await?);
            }
            Ok(())
        }
    }
}

/// One untimed request per phone, at `tst`: what a phone does once (the share page registers
/// the account's browser device on its first ping, a connection to the OsmAnd listener is
/// opened) is not in the rate.
async fn warm_up(fleet: &Fleet, protocol: Protocol, tst: i64, clients: u64) -> anyhow::Result<()> {
    for chunk in fleet.phones.chunks(clients.max(1) as usize) {
        let mut tasks = tokio::task::JoinSet::new();
        for phone in chunk {
            tasks.spawn(fleet.ping(protocol, phone, tst));
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
    }
    Ok(())
}

/// Acknowledged pings per second of `protocol` over `seconds`, from `clients` loops each
/// sending its next request once the last is answered.
async fn rate(
    fleet: &Fleet,
    protocol: Protocol,
    first: i64,
    seconds: u64,
    clients: u64,
) -> anyhow::Result<f64> {
    warm_up(fleet, protocol, first - 1, clients).await?;
    let next = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (fleet, next) = (fleet.clone(), next.clone());
        tasks.spawn(async move {
            let (phones, mut ok) = (fleet.phones.len() as u64, 0u64);
            while Instant::now() < until {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let phone = &fleet.phones[(i % phones) as usize];
                let tst = first + (i / phones) as i64;
                fleet.ping(protocol, phone, tst).await?;
                ok += 1;
            }
            anyhow::Ok(ok)
        });
    }
    let started = Instant::now();
    let mut ok = 0;
    while let Some(done) = tasks.join_next().await {
        ok += done??;
    }
    Ok(ok as f64 / started.elapsed().as_secs_f64())
}

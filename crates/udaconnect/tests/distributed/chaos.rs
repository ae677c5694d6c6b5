//! Chaos: the distributed stack (two location-api, two location-consumer, connection-api,
//! person-api, web) under steady ingest while a random role is stopped (SIGKILL or SIGTERM) and
//! restarted every few seconds, the broker is taken away once and PostgreSQL crashes once; then
//! every acknowledged ping is stored exactly once.
//!
//! Bounded here (`UDACONNECT_CHAOS_SECONDS`, 60 by default; `UDACONNECT_CHAOS_SEED` replays a
//! run's choices), so the suite runs it; `scripts/chaos [MINUTES]` runs it for longer. It prints
//! its report: pings acknowledged, lost, duplicated, the longest ingest outage.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use udaconnect_core::ports::{Log, StartFrom};
use udaconnect_core::record::{self, DLQ_REASON_HEADER, LOCATION_DLQ_TOPIC, LOCATION_TOPIC};
use udaconnect_log::{KafkaLog, KafkaOptions};
use udaconnect_sim::Rng;
use udaconnect_testkit::pg_cluster::PgCluster;
use udaconnect_testkit::process::{RoleProc, Stop};
use udaconnect_testkit::unique;

use crate::harness::{create_person, Broker, BIN};

/// Load clients, each sending one ping at a time.
const CLIENTS: usize = 8;
/// How long a SIGTERM may take before the process is killed (and the run fails).
const GRACE: Duration = Duration::from_secs(15);
/// How long the broker stays away, and PostgreSQL down.
const BROKER_AWAY: Duration = Duration::from_secs(5);
const POSTGRES_DOWN: Duration = Duration::from_secs(3);
/// How long every role may take to be ready again once the chaos ends, all together: far
/// beyond a restart and a rebalance.
const SETTLE: Duration = Duration::from_secs(45);
/// How long every acknowledged ping may then take to be stored.
const DRAIN: Duration = Duration::from_secs(60);

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

/// One ping acknowledged with 202: what was sent, and when the answer came.
struct Acked {
    id: i64,
    latitude: f64,
    longitude: f64,
    at: Instant,
}

/// What the load clients saw.
#[derive(Default)]
struct Seen {
    acked: Vec<Acked>,
    /// Answers other than 202, by status (0: no answer).
    refused: BTreeMap<u16, u64>,
}

/// Sends pings from [`CLIENTS`] clients, each for a person of its own (so the pings spread over
/// the topic's partitions), to the location-api replicas at `bases` until `stop`: each client
/// sticks to one replica and moves to the other after any answer but 202. Every ping is
/// distinct (client, sequence number), so a stored row names its ping.
fn load(
    bases: Vec<String>,
    persons: Vec<i64>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Seen> {
    tokio::spawn(async move {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut tasks = Vec::new();
        for (client, &person) in persons.iter().enumerate() {
            let (bases, seen, stop) = (bases.clone(), seen.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                let mut replica = client % bases.len();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let (latitude, longitude) = (10.0 + client as f64 / 100.0, n as f64 / 1e5);
                    let body =
                        json!({"person_id": person, "latitude": latitude, "longitude": longitude});
                    let answer = http
                        .post(format!("{}/api/locations", bases[replica]))
                        .json(&body)
                        .send()
                        .await;
                    let status = answer.as_ref().map_or(0, |r| r.status().as_u16());
                    let id = match answer {
                        Ok(r) if status == 202 => {
                            r.json::<Value>().await.ok().and_then(|v| v["id"].as_i64())
                        }
                        _ => None,
                    };
                    {
                        let mut tally = seen.lock().unwrap();
                        match id {
                            Some(id) => tally.acked.push(Acked {
                                id,
                                latitude,
                                longitude,
                                at: Instant::now(),
                            }),
                            None => *tally.refused.entry(status).or_default() += 1,
                        }
                    }
                    if id.is_none() {
                        replica = (replica + 1) % bases.len();
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        Arc::try_unwrap(seen)
            .ok()
            .expect("every client has ended")
            .into_inner()
            .unwrap()
    })
}

/// Whether `role`'s `/ready` answers 200 by `deadline`; otherwise the reason it last gave.
async fn ready_by(role: &RoleProc, deadline: Instant) -> Result<(), String> {
    loop {
        let why = match reqwest::get(format!("{}/ready", role.base())).await {
            Ok(r) if r.status() == 200 => return Ok(()),
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(why);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where each of `ids` is on the broker's `location` and `location.dlq` topics (partition,
/// offset, and a dead letter's reason), to tell a ping never appended from one appended and
/// not stored, or dead-lettered.
async fn whereabouts(brokers: &str, ids: &[i64]) -> BTreeMap<i64, Vec<String>> {
    let mut found: BTreeMap<i64, Vec<String>> = ids.iter().map(|&id| (id, Vec::new())).collect();
    let log = KafkaLog::connect(brokers, KafkaOptions::default()).expect("kafka log");
    for topic in [LOCATION_TOPIC, LOCATION_DLQ_TOPIC] {
        let Ok(mut reader) = log
            .consumer(topic, &unique("chaos-audit"), StartFrom::Earliest)
            .await
        else {
            continue;
        };
        let mut quiet_since = Instant::now();
        while quiet_since.elapsed() < Duration::from_secs(5) {
            let batch = reader
                .poll(10_000, Duration::from_millis(500))
                .await
                .unwrap_or_default();
            if !batch.is_empty() {
                quiet_since = Instant::now();
            }
            for c in batch {
                let Ok(decoded) = record::decode_legacy(&c.record, c.position) else {
                    continue;
                };
                if let Some(places) = found.get_mut(&decoded.location.id) {
                    let reason = c.record.header_str(DLQ_REASON_HEADER).unwrap_or("");
                    let (partition, offset) = (c.position.partition, c.position.offset);
                    places.push(format!("{topic} {partition}@{offset} {reason}"));
                }
            }
        }
    }
    found
}

/// The longest time no ping was acknowledged, between the first and the last.
fn longest_outage(acked: &[Acked]) -> Duration {
    let mut times: Vec<Instant> = acked.iter().map(|a| a.at).collect();
    times.sort();
    times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

/// Every role, each its own process, on `store` and `broker`; the consumers with stable group
/// member names of their own, so a restarted one takes its partitions back at once.
async fn roles(store: &str, broker: &Broker) -> Vec<RoleProc> {
    let bin = Path::new(BIN);
    let person_api = RoleProc::spawn(bin, "person-api", &["--store".into(), store.into()]).await;
    person_api.wait_ready(Duration::from_secs(60)).await;
    let with = |log: String, extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = ["--store", store, "--log", log.as_str(), "--person-api"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.push(person_api.base());
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    let mut roles = Vec::new();
    for _ in 0..2 {
        let args = with(broker.producer_url(), &["--grpc-listen", "127.0.0.1:0"]);
        roles.push(RoleProc::spawn(bin, "location-api", &args).await);
    }
    for member in ["chaos-consumer-a", "chaos-consumer-b"] {
        let args = with(broker.consumer_url(member), &[]);
        roles.push(RoleProc::spawn(bin, "location-consumer", &args).await);
    }
    let connection_api = RoleProc::spawn(bin, "connection-api", &with(broker.url(), &[])).await;
    let web_args: Vec<String> = [
        "--person-api",
        person_api.base().as_str(),
        "--location-api",
        roles[0].base().as_str(),
        "--connection-api",
        connection_api.base().as_str(),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let web = RoleProc::spawn(bin, "web", &web_args).await;
    roles.extend([person_api, connection_api, web]);
    for r in &roles {
        r.wait_ready(Duration::from_secs(60)).await;
    }
    roles
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_loses_and_duplicates_no_acknowledged_ping() {
    let run_for = Duration::from_secs(env_u64("UDACONNECT_CHAOS_SECONDS").unwrap_or(60));
    let seed = env_u64("UDACONNECT_CHAOS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let mut rng = Rng::new(seed);
    let postgres = PgCluster::start().await;
    let store = postgres.create_database(&unique("chaos")).await;
    let broker = Broker::start_behind_cable().await;
    let mut roles = roles(&store, &broker).await;
    let location_apis: Vec<String> = roles
        .iter()
        .filter(|r| r.role == "location-api")
        .map(RoleProc::base)
        .collect();
    let person_api = roles.iter().find(|r| r.role == "person-api").unwrap();
    let mut persons = Vec::new();
    for client in 0..CLIENTS {
        persons.push(create_person(&person_api.base(), &format!("Chaos{client}")).await);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let sender = load(location_apis, persons.clone(), stop.clone());
    let started = Instant::now();
    let (mut broker_away, mut postgres_crashed) = (false, false);
    let mut stops: HashMap<(String, Stop), u32> = HashMap::new();
    let mut slow_terms = Vec::new();
    // The longest a stop and restart took, by role: a SIGTERM near the grace shows here first.
    let mut longest_stop: BTreeMap<String, Duration> = BTreeMap::new();
    while started.elapsed() < run_for {
        tokio::time::sleep(Duration::from_millis(2000 + rng.below(2000) as u64)).await;
        let elapsed = started.elapsed();
        if !broker_away && elapsed >= run_for / 3 {
            broker_away = true;
            let cable = broker.cable().expect("the broker is behind a cable");
            cable.cut();
            tokio::time::sleep(BROKER_AWAY).await;
            cable.mend();
            continue;
        }
        if !postgres_crashed && elapsed >= run_for * 2 / 3 {
            postgres_crashed = true;
            postgres.crash_and_restart(POSTGRES_DOWN).await;
            continue;
        }
        let victim = &mut roles[rng.below(7)];
        let how = if rng.below(2) == 0 {
            Stop::Kill
        } else {
            Stop::Term
        };
        *stops.entry((victim.role.clone(), how)).or_default() += 1;
        let (stopping, stopped_log) = (Instant::now(), victim.log.clone());
        let clean = victim.restart_after(how, GRACE).await;
        let took = stopping.elapsed();
        let longest = longest_stop.entry(victim.role.clone()).or_default();
        *longest = (*longest).max(took);
        if !clean {
            slow_terms.push(format!("{} ({})", victim.role, stopped_log.display()));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let seen = sender.await.unwrap();
    // Asserted after the drain: a role that stays unready is reported with the figures.
    let settled_by = Instant::now() + SETTLE;
    let mut never_ready = Vec::new();
    for r in &roles {
        if let Err(why) = ready_by(r, settled_by).await {
            never_ready.push(format!("{} ({}): {why}", r.role, r.log.display()));
        }
    }

    // Drain: wait until every acknowledged ping is stored, or the drain time is up.
    let db = udaconnect_testkit::postgres::connect(&store).await;
    let stored_rows = || async {
        db.query(
            "SELECT id, ST_Y(coordinate), ST_X(coordinate) FROM location \
             WHERE person_id = ANY($1)",
            &[&persons],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, i64>(0), (r.get::<_, f64>(1), r.get::<_, f64>(2))))
        .collect::<HashMap<i64, (f64, f64)>>()
    };
    let is_stored = |a: &Acked, rows: &HashMap<i64, (f64, f64)>| {
        rows.get(&a.id).is_some_and(|&(lat, lon)| {
            (lat - a.latitude).abs() < 1e-9 && (lon - a.longitude).abs() < 1e-9
        })
    };
    let drain_until = Instant::now() + DRAIN;
    let rows = loop {
        let rows = stored_rows().await;
        if seen.acked.iter().all(|a| is_stored(a, &rows)) || Instant::now() > drain_until {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let lost: Vec<i64> = seen
        .acked
        .iter()
        .filter(|a| !is_stored(a, &rows))
        .map(|a| a.id)
        .collect();
    // A ping stored under two ids: the same coordinates twice (every ping sent is distinct).
    let mut by_ping: HashMap<(u64, u64), u32> = HashMap::new();
    for (lat, lon) in rows.values() {
        *by_ping.entry((lat.to_bits(), lon.to_bits())).or_default() += 1;
    }
    let duplicated: u32 = by_ping.values().map(|n| n - 1).sum();
    let outage = longest_outage(&seen.acked);
    let mut stops: Vec<_> = stops.into_iter().collect();
    stops.sort_by(|a, b| a.0 .0.cmp(&b.0 .0));
    println!(
        "chaos: seed {seed}, {:.0} s, stops {stops:?}, broker away {BROKER_AWAY:?}, \
         PostgreSQL crashed and down {POSTGRES_DOWN:?}, longest stop and restart {longest_stop:?}\n\
         chaos: acknowledged {}, lost {}, duplicated {duplicated}, longest ingest outage \
         {:.1} s, refused by status {:?}",
        started.elapsed().as_secs_f64(),
        seen.acked.len(),
        lost.len(),
        outage.as_secs_f64(),
        seen.refused,
    );
    assert!(broker_away && postgres_crashed, "the run was too short");
    assert!(seen.acked.len() > 1000, "too little ingest to say anything");
    if !lost.is_empty() {
        let first = &lost[..lost.len().min(20)];
        panic!(
            "{} acknowledged pings lost (seed {seed}); the first on the broker (none: never \
             appended): {:?}; roles not ready: {never_ready:?}",
            lost.len(),
            whereabouts(&broker.brokers(), first).await
        );
    }
    assert_eq!(duplicated, 0, "pings stored twice (seed {seed})");
    assert!(
        !seen.refused.contains_key(&500),
        "a 500 answer (seed {seed})"
    );
    assert!(
        never_ready.is_empty(),
        "not ready {SETTLE:?} after the chaos ended (seed {seed}): {never_ready:?}"
    );
    assert!(
        slow_terms.is_empty(),
        "SIGTERM took over {GRACE:?}: {slow_terms:?}"
    );
}

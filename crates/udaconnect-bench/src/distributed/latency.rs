//! End-to-end ingest latency: single pings posted at a steady rate while a watcher looks for
//! each in the store, on the distributed roles and, as the baseline, on the embedded mode.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use udaconnect::progress;
use udaconnect_server::access::AuthMode;
use udaconnect_server::query::engine::SharedIndex;
use udaconnect_server::roles::Role;
use udaconnect_server::wiring::backends::{LogUrl, StoreUrl};
use udaconnect_server::wiring::context::Upstreams;
use udaconnect_server::{Application, HttpSettings, RoleSettings};
use udaconnect_sim::Rng;

use super::broker::BrokerHandle;
use super::postgres::BenchDb;
use super::ratio;
use crate::common::{create_persons, ms, p50_p99_max, post, serve_in_process};

/// How often the latency watchers look for newly stored pings.
pub const WATCH_EVERY: Duration = Duration::from_millis(2);

/// The latency stage's load.
#[derive(Debug, Clone, Copy)]
pub struct LoadShape {
    pub rate: u32,
    pub seconds: u64,
    pub warmup: Duration,
    pub clients: usize,
    pub persons: u32,
    pub origin: (f64, f64),
}

/// Per measured ping, milliseconds from sending.
#[derive(Debug, Default)]
pub struct LoadResult {
    accepted: Vec<f64>,
    stored: Vec<f64>,
    errors: u64,
}

impl LoadResult {
    pub fn row(
        &self,
        report: &mut String,
        what: &str,
        load: &LoadShape,
        baseline: &LoadResult,
    ) -> anyhow::Result<()> {
        let (a50, a99, amax) = p50_p99_max(self.accepted.clone());
        let (s50, s99, smax) = p50_p99_max(self.stored.clone());
        let (_, b_a99, _) = p50_p99_max(baseline.accepted.clone());
        let (_, b_s99, _) = p50_p99_max(baseline.stored.clone());
        writeln!(
            report,
            "| {what} | {} per second, {} client{} | {} | {a50:.1} ms | {a99:.1} ms | {amax:.1} ms | {s50:.1} ms | {s99:.1} ms | {smax:.1} ms | {} / {} |",
            load.rate,
            load.clients,
            if load.clients == 1 { "" } else { "s" },
            self.accepted.len(),
            ratio(a99 / b_a99),
            ratio(s99 / b_s99)
        )?;
        Ok(())
    }
}

/// What the senders and the watcher share.
#[derive(Default)]
struct Tracker {
    /// The largest id answered so far. Ids grow with allocation, so a request sent after an
    /// answer gets a larger id than it.
    max_answered: i64,
    /// Requests without an answer yet: request number -> `max_answered` when it was sent, a
    /// bound below its id.
    in_flight: BTreeMap<u64, i64>,
    /// Answered ids not seen stored yet.
    pending: BTreeSet<i64>,
    /// Id -> when a watcher's look first found it stored.
    arrived: HashMap<i64, Instant>,
    /// Id -> (sent, answered, counted: sent after the warm-up).
    answered: HashMap<i64, (Instant, Instant, bool)>,
    errors: u64,
}

impl Tracker {
    /// Every id not seen stored yet is above this.
    fn floor(&self) -> i64 {
        let pending = self.pending.first().map(|id| id - 1);
        let in_flight = self.in_flight.values().min().copied();
        pending
            .into_iter()
            .chain(in_flight)
            .min()
            .unwrap_or(self.max_answered)
    }

    fn saw(&mut self, id: i64, at: Instant) {
        self.arrived.entry(id).or_insert(at);
        self.pending.remove(&id);
    }

    fn settled(&self) -> bool {
        self.in_flight.is_empty() && self.pending.is_empty()
    }

    fn result(&self) -> LoadResult {
        let mut out = LoadResult {
            errors: self.errors,
            ..Default::default()
        };
        for (id, &(sent, answered, counted)) in &self.answered {
            if !counted {
                continue;
            }
            out.accepted.push(ms(answered - sent));
            if let Some(&at) = self.arrived.get(id) {
                out.stored.push(ms(at.saturating_duration_since(sent)));
            }
        }
        out
    }
}

/// Where a watcher looks for stored pings.
enum Watch {
    /// The distributed store: ids above the tracker's floor.
    Postgres(tokio_postgres::Client),
    /// The embedded mode's contact index, which the consumer feeds once SQLite has a batch:
    /// slots are taken in order, so only new slots are read.
    Index(SharedIndex, usize),
}

impl Watch {
    async fn look(&mut self, tracker: &Mutex<Tracker>) -> anyhow::Result<()> {
        match self {
            Watch::Postgres(client) => {
                let floor = lock(tracker).floor();
                let at = Instant::now();
                let rows = client
                    .query(
                        "SELECT id FROM location WHERE id > $1 ORDER BY id",
                        &[&floor],
                    )
                    .await?;
                let mut t = lock(tracker);
                for r in rows {
                    t.saw(r.get(0), at);
                }
            }
            Watch::Index(index, seen) => {
                let at = Instant::now();
                let ids: Vec<i64> = {
                    let index = index
                        .read()
                        .map_err(|_| anyhow::anyhow!("index poisoned"))?;
                    let len = index.len();
                    let ids = (*seen..len).map(|s| index.point(s as u32).id).collect();
                    *seen = len;
                    ids
                };
                let mut t = lock(tracker);
                for id in ids {
                    t.saw(id, at);
                }
            }
        }
        Ok(())
    }
}

fn lock(tracker: &Mutex<Tracker>) -> std::sync::MutexGuard<'_, Tracker> {
    tracker.lock().unwrap_or_else(|e| e.into_inner())
}

/// Posts single pings to `base` at a steady rate from several clients while `watch` looks for
/// them in the store.
/// `last_id` is the largest id stored before.
async fn run_load(
    base: &str,
    load: &LoadShape,
    mut watch: Watch,
    last_id: i64,
) -> anyhow::Result<LoadResult> {
    let tracker = Arc::new(Mutex::new(Tracker {
        max_answered: last_id,
        ..Tracker::default()
    }));
    let sending = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (tracker, sending) = (tracker.clone(), sending.clone());
        tokio::spawn(async move {
            let mut settled_since: Option<Instant> = None;
            loop {
                watch.look(&tracker).await?;
                if !sending.load(Ordering::Acquire) {
                    if lock(&tracker).settled() {
                        return anyhow::Ok(());
                    }
                    let since = *settled_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(60) {
                        bail!("pings answered 202 were not stored within a minute");
                    }
                }
                tokio::time::sleep(WATCH_EVERY).await;
            }
        })
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(load.clients)
        .timeout(Duration::from_secs(30))
        .build()?;
    let total = (load.warmup.as_secs_f64() + load.seconds as f64) * load.rate as f64;
    let total = total as u64;
    let warm = (load.warmup.as_secs_f64() * load.rate as f64) as u64;
    let period = Duration::from_secs_f64(1.0 / load.rate as f64);
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let url = Arc::new(format!("{base}/api/locations"));
    let bar = progress::bar(total, "latency");
    let mut senders = tokio::task::JoinSet::new();
    for c in 0..load.clients {
        let (client, url, tracker, bar, load) = (
            client.clone(),
            url.clone(),
            tracker.clone(),
            bar.clone(),
            *load,
        );
        senders.spawn(async move {
            let mut rng = Rng::new(0x1a7e + c as u64);
            let mut i = c as u64;
            while i < total {
                tokio::time::sleep_until(start + period * i as u32).await;
                let body = format!(
                    "{{\"person_id\":{},\"latitude\":{},\"longitude\":{}}}",
                    1 + rng.below(load.persons as usize),
                    load.origin.0 + rng.unit() * 0.002,
                    load.origin.1 + rng.unit() * 0.002
                );
                {
                    let mut t = lock(&tracker);
                    let bound = t.max_answered;
                    t.in_flight.insert(i, bound);
                }
                let sent = Instant::now();
                let answer = async {
                    let r = post(&client, url.as_str(), "application/json", body).await?;
                    let status = r.status();
                    let v: serde_json::Value = r.json().await?;
                    anyhow::Ok((status, v["id"].as_i64()))
                }
                .await;
                let answered = Instant::now();
                let mut t = lock(&tracker);
                t.in_flight.remove(&i);
                match answer {
                    Ok((status, Some(id))) if status == 202 => {
                        t.max_answered = t.max_answered.max(id);
                        if !t.arrived.contains_key(&id) {
                            t.pending.insert(id);
                        }
                        t.answered.insert(id, (sent, answered, i >= warm));
                    }
                    other => {
                        t.errors += 1;
                        tracing::warn!(answer = ?other.map(|(s, _)| s), "a ping was not accepted");
                    }
                }
                drop(t);
                bar.inc(1);
                i += load.clients as u64;
            }
        });
    }
    while let Some(done) = senders.join_next().await {
        done?;
    }
    sending.store(false, Ordering::Release);
    bar.finish_and_clear();
    watcher.await??;
    let result = lock(&tracker).result();
    if result.errors > 0 {
        bail!(
            "{} pings were not accepted during the latency stage",
            result.errors
        );
    }
    Ok(result)
}

/// Posts a few pings and waits until each is stored, so the consumer has joined its group and
/// fetches before anything is timed.
async fn warm_up(client: &reqwest::Client, base: &str, load: &LoadShape) -> anyhow::Result<()> {
    let mut ids = Vec::new();
    for person in 1..=load.persons.min(10) {
        let r = client
            .post(format!("{base}/api/locations"))
            .json(&serde_json::json!({"person_id": person, "latitude": load.origin.0, "longitude": load.origin.1}))
            .send()
            .await?;
        if r.status() != 202 {
            bail!("a warm-up ping was refused: {}", r.status());
        }
        let v: serde_json::Value = r.json().await?;
        ids.push(v["id"].as_i64().context("a 202 without an id")?);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in ids {
        while client
            .get(format!("{base}/api/locations/{id}"))
            .send()
            .await?
            .status()
            != 200
        {
            if Instant::now() > deadline {
                bail!("a warm-up ping was not stored within a minute");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Ok(())
}

async fn wait_ready(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{base}/ready")).send().await {
            if r.status() == 200 {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{base} never became ready");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// location-api and location-consumer in this process, on the benchmark's database and broker,
/// with the person-api they ask about persons; `consumer_config` holds Kafka client properties
/// for the consumer only.
pub async fn distributed(
    db: &BenchDb,
    broker: &BrokerHandle,
    load: &LoadShape,
    consumer_config: Vec<(String, String)>,
) -> anyhow::Result<LoadResult> {
    let http = reqwest::Client::new();
    let settings = |role, config, upstreams| RoleSettings {
        upstreams,
        ..RoleSettings::new(
            role,
            HttpSettings::open("127.0.0.1:0".parse().expect("a socket address")),
            db.url.parse::<StoreUrl>().expect("the database URL parses"),
            LogUrl::kafka(broker.brokers(), config),
        )
    };
    let persons =
        Application::build_role(settings(Role::PersonApi, Vec::new(), Upstreams::default()))
            .await?;
    let person_api = format!("http://{}", persons.local_addr());
    wait_ready(&http, &person_api).await?;
    let upstreams = Upstreams::default().with(Role::PersonApi, person_api);
    let api =
        Application::build_role(settings(Role::LocationApi, Vec::new(), upstreams.clone())).await?;
    let consumer =
        Application::build_role(settings(Role::LocationConsumer, consumer_config, upstreams))
            .await?;
    let base = format!("http://{}", api.local_addr());
    wait_ready(&http, &base).await?;
    wait_ready(&http, &format!("http://{}", consumer.local_addr())).await?;
    let result = async {
        warm_up(&http, &base, load).await?;
        let watcher = db.client().await?;
        let last_id: i64 = watcher
            .query_one("SELECT COALESCE(max(id), 0) FROM location", &[])
            .await?
            .get(0);
        run_load(&base, load, Watch::Postgres(watcher), last_id).await
    }
    .await;
    api.stop().await?;
    consumer.stop().await?;
    persons.stop().await?;
    result
}

/// The same load on `udaconnect serve` in this process, on a scratch data directory.
pub async fn embedded(load: &LoadShape) -> anyhow::Result<LoadResult> {
    let dir = std::env::temp_dir().join(format!(
        "udaconnect-bench-distributed-{}",
        std::process::id()
    ));
    if dir.exists() {
        bail!("{} exists: remove it first", dir.display());
    }
    let result = async {
        let app = serve_in_process(dir.join("data"), AuthMode::Off).await?;
        let base = format!("http://{}", app.local_addr());
        let http = reqwest::Client::new();
        wait_ready(&http, &base).await?;
        let persons = (0..load.persons).map(|i| {
            serde_json::json!({"first_name": format!("P{i}"), "last_name": "Bench", "company_name": "Bench"})
        });
        create_persons(&http, &base, persons).await?;
        warm_up(&http, &base, load).await?;
        let index = app.contact_index();
        let seen = index
            .read()
            .map_err(|_| anyhow::anyhow!("index poisoned"))?
            .len();
        let result = run_load(&base, load, Watch::Index(index, seen), 0).await;
        app.stop().await?;
        result
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_stays_below_every_id_not_seen() {
        let mut t = Tracker {
            max_answered: 100,
            ..Default::default()
        };
        assert_eq!(t.floor(), 100);
        t.in_flight.insert(1, 100);
        t.pending.insert(98);
        assert_eq!(t.floor(), 97);
        t.saw(98, Instant::now());
        assert_eq!(t.floor(), 100);
        t.in_flight.clear();
        t.max_answered = 120;
        assert_eq!(t.floor(), 120);
    }
}

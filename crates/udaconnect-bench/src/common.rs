//! What both benchmarks share: the simulated conference and the attendees they ask about, the
//! queries they time, the machine they ran on, and how times are summarised.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use udaconnect_core::contact::{ConnectionQuery, Contact, Point};
use udaconnect_core::time::{Micros, Window};
use udaconnect_core::track::TrackQuery;
use udaconnect_server::access::AuthMode;
use udaconnect_server::{Application, GrpcListen, HttpSettings, ServeSettings};
use udaconnect_sim::{Conference, Rng, SimConfig};

pub const DAY_US: i64 = 86_400_000_000;

/// The conference a benchmark simulates, the queries it asks, and where its report goes.
#[derive(Args, Debug)]
pub struct ConferenceArgs {
    /// Locations in the simulated conference.
    #[arg(long, env = "UDACONNECT_BENCH_LOCATIONS", default_value_t = 1_000_000)]
    pub locations: u64,
    /// Attendees (default: one per thousand locations; the venue grows with them).
    #[arg(long, env = "UDACONNECT_BENCH_ATTENDEES")]
    pub attendees: Option<u32>,
    #[arg(long, env = "UDACONNECT_BENCH_DAYS", default_value_t = 3)]
    pub days: u32,
    /// Random attendees asked per query kind.
    #[arg(long, env = "UDACONNECT_BENCH_QUERIES", default_value_t = 200)]
    pub queries: usize,
    /// How many of the attendees asked the baseline answers too (it is slow); bench-distributed
    /// times the original semantics on them as well.
    #[arg(long, env = "UDACONNECT_BENCH_BASELINE_QUERIES", default_value_t = 20)]
    pub baseline_queries: usize,
    #[arg(long, env = "UDACONNECT_BENCH_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Also write the report (Markdown) to this file.
    #[arg(long, env = "UDACONNECT_BENCH_OUT")]
    pub out: Option<PathBuf>,
}

impl ConferenceArgs {
    /// The conference: `locations` pings in all, from a thousandth as many attendees unless
    /// told.
    pub fn plan(&self) -> Conference {
        let attendees = self
            .attendees
            .unwrap_or(((self.locations / 1000).max(10)) as u32);
        let mut config = SimConfig {
            seed: self.seed,
            attendees,
            days: self.days,
            ..Default::default()
        };
        config.ping_interval_s = config.interval_for_total(self.locations);
        Conference::plan(&config)
    }

    /// The conference in a report's title: its size, venue and pace.
    pub fn title(&self, conference: &Conference) -> String {
        let config = &conference.config;
        format!(
            "{} locations: {} attendees, {} days, venue {:.0} m x {:.0} m, a ping every {:.0} s",
            self.locations,
            config.attendees,
            config.days,
            config.venue_side_m(),
            config.venue_side_m(),
            config.ping_interval_s
        )
    }

    /// The attendees the queries ask about: the same for a seed in both benchmarks, so figures
    /// of the embedded and the distributed mode concern the same people.
    pub fn asked(&self, conference: &Conference) -> Vec<i64> {
        let mut rng = Rng::new(self.seed ^ 0xbe_4c);
        (0..self.queries)
            .map(|_| 1 + rng.below(conference.config.attendees as usize) as i64)
            .collect()
    }

    /// The first of `people`, as many as the baseline answers.
    pub fn baseline<'a>(&self, people: &'a [i64]) -> &'a [i64] {
        &people[..self.baseline_queries.min(people.len())]
    }

    /// Prints the report, and writes it to `--out` if given.
    pub fn publish(&self, report: &str) -> anyhow::Result<()> {
        println!("{report}");
        if let Some(out) = &self.out {
            std::fs::write(out, report)
                .with_context(|| format!("failed to write {}", out.display()))?;
        }
        Ok(())
    }
}

/// Tasks run with a few at most in flight, as the benchmarks send bulk requests; the first
/// failure fails the whole.
pub struct InFlight {
    permits: Arc<Semaphore>,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl InFlight {
    pub fn new(at_most: usize) -> Self {
        InFlight {
            permits: Arc::new(Semaphore::new(at_most)),
            tasks: JoinSet::new(),
        }
    }

    /// Starts `task` once a place is free; a task that failed meanwhile is this call's error.
    pub async fn spawn(
        &mut self,
        task: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> anyhow::Result<()> {
        let permit = self.permits.clone().acquire_owned().await?;
        self.tasks.spawn(async move {
            let done = task.await;
            drop(permit);
            done
        });
        while let Some(done) = self.tasks.try_join_next() {
            done??;
        }
        Ok(())
    }

    /// Waits for every task started.
    pub async fn finish(mut self) -> anyhow::Result<()> {
        while let Some(done) = self.tasks.join_next().await {
            done??;
        }
        Ok(())
    }
}

/// The machine, as a report names it: cores and processor model.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("model name"))
            .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
    });
    format!(
        "{} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu.unwrap_or_default()
    )
}

/// The first `days` days from `start`.
pub fn days_from(start: Micros, days: i64) -> Window {
    Window {
        start,
        end: start + days * DAY_US,
    }
}

/// The connection query both benchmarks time: 5 m, with a time condition or without (the
/// original semantics).
pub fn connection_query(person_id: i64, window: Window, gap_us: Option<i64>) -> ConnectionQuery {
    ConnectionQuery {
        person_id,
        window,
        distance_m: 5.0,
        max_time_gap_us: gap_us,
    }
}

/// The contacts over tracks both benchmarks time: every parameter at its default (5 m,
/// contacts of 120 s at least, interpolation across 300 s).
pub fn contacts_query(person_id: i64, window: Window) -> TrackQuery {
    TrackQuery::new(person_id, window)
}

/// The query kinds both benchmarks' tables time, a row each per window.
#[derive(Debug, Clone, Copy)]
pub enum Timed {
    /// Connections with a time condition: 5 m, max_time_gap 60 s.
    Connection,
    /// Contacts over tracks, every parameter at its default ([`contacts_query`]).
    Contacts,
}

impl Timed {
    pub const ALL: [Timed; 2] = [Timed::Connection, Timed::Contacts];

    /// The row's name in the tables.
    pub fn title(self) -> &'static str {
        match self {
            Timed::Connection => "connection, distance 5 m, max_time_gap 60 s",
            Timed::Contacts => "contacts over tracks, 5 m, min 120 s",
        }
    }

    /// What the answers are called in a report of two that disagree.
    pub fn answers(self) -> &'static str {
        match self {
            Timed::Connection => "connections",
            Timed::Contacts => "contacts",
        }
    }

    /// The connection query of the [`Timed::Connection`] rows.
    pub fn connection_query(person_id: i64, window: Window) -> ConnectionQuery {
        connection_query(person_id, window, Some(60_000_000))
    }
}

/// An answer of either kind, in the form two ways of answering are compared in.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// A connection answer's locations.
    Points(Vec<Point>),
    Contacts(Vec<Contact>),
}

impl Answer {
    /// Rows in the answer.
    pub fn rows(&self) -> usize {
        match self {
            Answer::Points(points) => points.len(),
            Answer::Contacts(contacts) => contacts.len(),
        }
    }
}

/// The oracle's contacts over tracks, from the pings that decide them: the benchmark's check
/// and baseline.
pub fn contacts_oracle(all: &[Point], q: &TrackQuery) -> Vec<Contact> {
    let within = udaconnect_core::track::track_read_window(q);
    let pings: Vec<Point> = all
        .iter()
        .filter(|p| within.start <= p.t && p.t < within.end)
        .copied()
        .collect();
    udaconnect_core::track::contacts_oracle(&pings, q)
}

/// `udaconnect serve` in this process, on `data_dir`: on a port of its own, without demo data
/// or gRPC, with `auth` (`--auth`).
pub async fn serve_in_process(data_dir: PathBuf, auth: AuthMode) -> anyhow::Result<Application> {
    let listen = "127.0.0.1:0".parse()?;
    let http = match auth {
        AuthMode::On => HttpSettings::on(listen),
        AuthMode::Off => HttpSettings::open(listen),
    };
    Application::build(ServeSettings {
        http,
        data_dir,
        demo: false,
        demo_attendees: 0,
        grpc: GrpcListen::Off,
        mail: Default::default(),
        mqtt: None,
        log_retention: Default::default(),
        retention: Default::default(),
    })
    .await
}

/// Where a benchmark writes: `--data-dir` if given, else `name-PID` in the system's temporary
/// directory (for the caller to remove afterwards); refused if it exists, so no earlier run's
/// data is measured again.
pub fn scratch_dir(data_dir: Option<&Path>, name: &str) -> anyhow::Result<PathBuf> {
    let scratch = match data_dir {
        Some(d) => d.to_path_buf(),
        None => std::env::temp_dir().join(format!("{name}-{}", std::process::id())),
    };
    if scratch.exists() {
        bail!(
            "{} exists: give an empty or new --data-dir",
            scratch.display()
        );
    }
    Ok(scratch)
}

/// An admin's token for the server on `data_dir`, made by the product's own
/// `udaconnect admin create-token` (it prints the token alone on its last line).
pub fn admin_token(product: &Path, data_dir: &Path) -> anyhow::Result<String> {
    create_token(product, data_dir, "admin", None)
}

/// A new token of `role` (for `person`, where the role has one) for the server on `data_dir`,
/// made by the product's own `udaconnect admin create-token`, which prints it alone on its
/// last line.
pub fn create_token(
    product: &Path,
    data_dir: &Path,
    role: &str,
    person: Option<i64>,
) -> anyhow::Result<String> {
    let mut command = std::process::Command::new(product);
    command.args([
        "--log-level",
        "warn",
        "admin",
        "create-token",
        "--role",
        role,
    ]);
    if let Some(person) = person {
        command.arg("--person").arg(person.to_string());
    }
    let out = command
        .arg("--data-dir")
        .arg(data_dir)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("failed to run {}", product.display()))?;
    let stdout = String::from_utf8(out.stdout)?;
    match stdout.lines().last() {
        Some(token) if out.status.success() && token.starts_with("uc_") => Ok(token.to_string()),
        _ => bail!("admin create-token --role {role} failed ({})", out.status),
    }
}

/// An HTTP client for the benchmark's own requests, sending `token` with each if given.
pub fn http_client(token: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .default_headers(headers)
        .build()?)
}

/// Creates persons through the API, one request each, in order: a fresh store numbers them
/// 1, 2, ...
pub async fn create_persons(
    client: &reqwest::Client,
    base: &str,
    persons: impl IntoIterator<Item = serde_json::Value>,
) -> anyhow::Result<()> {
    for person in persons {
        let r = client
            .post(format!("{base}/api/persons"))
            .json(&person)
            .send()
            .await?;
        if r.status() != 201 {
            bail!("creating a person failed: {}", r.status());
        }
    }
    Ok(())
}

/// POSTs `body` to `url` as `content_type`.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: String,
) -> reqwest::Result<reqwest::Response> {
    let request = client.post(url).header("content-type", content_type);
    request.body(body).send().await
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// The median and the 99th percentile.
pub fn p50_p99(mut values: Vec<f64>) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    (percentile(&values, 0.5), percentile(&values, 0.99))
}

/// The median, the 99th percentile and the largest.
pub fn p50_p99_max(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        percentile(&values, 0.5),
        percentile(&values, 0.99),
        values.last().copied().unwrap_or(f64::NAN),
    )
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_value_at_or_above_the_rank() {
        let values: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(p50_p99(values.clone()), (50.0, 99.0));
        assert_eq!(p50_p99_max(values), (50.0, 99.0, 100.0));
        assert_eq!(p50_p99(vec![7.0]), (7.0, 7.0));
        assert!(p50_p99(Vec::new()).0.is_nan());
    }
}

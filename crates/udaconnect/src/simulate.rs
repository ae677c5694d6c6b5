//! `udaconnect simulate`: a deterministic conference, written to files or streamed to a
//! running server at a target rate.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use tokio::sync::Semaphore;
use udaconnect::progress;
use udaconnect_core::time::{format_utc, from_micros, Bound};
use udaconnect_core::venue::LatLon;
use udaconnect_sim::{Conference, SimConfig, SimPing};

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// Seed: the same seed and settings give the same conference, ping for ping.
    #[arg(long, env = "UDACONNECT_SIM_SEED", default_value_t = 1)]
    pub seed: u64,
    #[arg(long, env = "UDACONNECT_SIM_ATTENDEES", default_value_t = 1000)]
    pub attendees: u32,
    #[arg(long, env = "UDACONNECT_SIM_DAYS", default_value_t = 3)]
    pub days: u32,
    /// First day (YYYY-MM-DD, UTC).
    #[arg(long, env = "UDACONNECT_SIM_START", default_value = "2024-06-01")]
    pub start: String,
    /// The phones' typical seconds between two pings (their harmonic mean): each phone pings
    /// at an interval of its own between 15 s and 5 min when this lies between, else every
    /// phone at this one.
    #[arg(long, env = "UDACONNECT_SIM_PING_INTERVAL", default_value_t = 30.0)]
    pub ping_interval: f64,
    /// Aim for about this many pings in all (sets the ping interval).
    #[arg(long, env = "UDACONNECT_SIM_TOTAL")]
    pub total: Option<u64>,
    /// Standard deviation of the GPS error, metres.
    #[arg(long, env = "UDACONNECT_SIM_GPS_NOISE", default_value_t = 2.0)]
    pub gps_noise: f64,
    /// Latitude,longitude of the venue's south-west corner.
    #[arg(
        long,
        env = "UDACONNECT_SIM_ORIGIN",
        default_value = "37.5530,-122.2925"
    )]
    pub origin: String,
    /// Write persons.csv and locations.csv (or .ndjson) into this directory.
    #[arg(long, env = "UDACONNECT_SIM_OUT", conflicts_with = "target")]
    pub out: Option<PathBuf>,
    #[arg(long, env = "UDACONNECT_SIM_FORMAT", value_enum, default_value_t = Format::Csv)]
    pub format: Format,
    /// Stream to a running UdaConnect at this base URL (persons first, then pings in bulk).
    #[arg(long, env = "UDACONNECT_SIM_TARGET")]
    pub target: Option<String>,
    /// Pings per second to send at most (0: as fast as the server takes them).
    #[arg(long, env = "UDACONNECT_SIM_RATE", default_value_t = 0.0)]
    pub rate: f64,
    /// With --target: send the pings over gRPC to this location-api (`http://host:5005`),
    /// on the v1 bulk stream, instead of HTTP (persons still go to --target).
    #[arg(long, env = "UDACONNECT_SIM_GRPC", requires = "target")]
    pub grpc: Option<String>,
    /// Pings per bulk request.
    #[arg(long, env = "UDACONNECT_SIM_BATCH", default_value_t = 5000)]
    pub batch: usize,
    /// Bulk requests in flight at once.
    #[arg(long, env = "UDACONNECT_SIM_CONNECTIONS", default_value_t = 4)]
    pub connections: usize,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

pub fn config(args: &SimulateArgs) -> anyhow::Result<SimConfig> {
    let start = Bound::parse(&args.start)
        .map_err(|e| anyhow::anyhow!("--start: {e}"))?
        .as_start();
    let (lat, lon) = args
        .origin
        .split_once(',')
        .and_then(|(a, b)| Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?)))
        .filter(|(a, b)| a.abs() <= 89.0 && b.abs() <= 180.0)
        .context("--origin must be LAT,LON")?;
    if args.attendees == 0 || args.days == 0 {
        bail!("--attendees and --days must be at least 1");
    }
    if !args.ping_interval.is_finite() || args.ping_interval <= 0.0 {
        bail!("--ping-interval must be positive");
    }
    let mut config = SimConfig {
        seed: args.seed,
        attendees: args.attendees,
        days: args.days,
        start: udaconnect_core::time::to_micros(start),
        ping_interval_s: args.ping_interval,
        gps_noise_m: args.gps_noise.max(0.0),
        origin: LatLon {
            latitude: lat,
            longitude: lon,
        },
        first_person_id: 1,
        ..Default::default()
    };
    if let Some(total) = args.total {
        config.ping_interval_s = config.interval_for_total(total);
    }
    Ok(config)
}

fn estimate(config: &SimConfig) -> u64 {
    (config.attendees as f64 * config.days as f64 * 7.75 * 3600.0 * 0.95 / config.ping_interval_s)
        as u64
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let config = config(&args)?;
    let conference = Conference::plan(&config);
    match (&args.out, &args.target) {
        (Some(dir), None) => write_files(&conference, dir, args.format),
        (None, Some(target)) => stream(&conference, target, &args).await,
        _ => bail!("give --out DIR to write files, or --target URL to stream to a server"),
    }
}

fn write_files(
    conference: &Conference,
    dir: &std::path::Path,
    format: Format,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let mut persons = csv::Writer::from_path(dir.join("persons.csv"))?;
    persons.write_record(["id", "first_name", "last_name", "company_name"])?;
    for p in conference.persons() {
        persons.write_record([p.id.to_string(), p.first_name, p.last_name, p.company_name])?;
    }
    persons.flush()?;
    let name = match format {
        Format::Csv => "locations.csv",
        Format::Ndjson => "locations.ndjson",
    };
    let file = std::fs::File::create(dir.join(name))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    if format == Format::Csv {
        writeln!(out, "id,person_id,latitude,longitude,creation_time")?;
    }
    let bar = progress::bar(estimate(&conference.config), "simulate");
    let mut n = 0u64;
    for p in conference.pings() {
        let time = format_utc(from_micros(p.t));
        match format {
            // No id: the importer gives each row a fresh one.
            Format::Csv => writeln!(
                out,
                ",{},{},{},{}",
                p.person_id, p.latitude, p.longitude, time
            )?,
            Format::Ndjson => writeln!(
                out,
                "{{\"person_id\":{},\"latitude\":{},\"longitude\":{},\"creation_time\":\"{}\"}}",
                p.person_id, p.latitude, p.longitude, time
            )?,
        }
        n += 1;
        if n.is_multiple_of(65_536) {
            bar.set_position(n);
        }
    }
    out.flush()?;
    bar.finish_and_clear();
    eprintln!(
        "wrote {} persons and {n} pings to {}",
        conference.config.attendees,
        dir.display()
    );
    Ok(())
}

fn ndjson(batch: &[SimPing], ids: &[i64]) -> String {
    let mut body = String::with_capacity(batch.len() * 110);
    for p in batch {
        body.push_str(&format!(
            "{{\"person_id\":{},\"latitude\":{},\"longitude\":{},\"creation_time\":\"{}\"}}\n",
            ids[(p.person_id - 1) as usize],
            p.latitude,
            p.longitude,
            format_utc(from_micros(p.t))
        ));
    }
    body
}

async fn post_batch(client: &reqwest::Client, url: &str, body: String) -> anyhow::Result<()> {
    let mut attempt = 0u32;
    loop {
        let sent = client
            .post(url)
            .header("content-type", "application/x-ndjson")
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if r.status().as_u16() == 503 || r.status().as_u16() == 429 => {}
            Ok(r) => {
                let status = r.status();
                bail!(
                    "server refused a batch ({status}): {}",
                    r.text().await.unwrap_or_default()
                )
            }
            Err(e) if attempt >= 10 => return Err(e).context("failed to send a batch"),
            Err(_) => {}
        }
        attempt += 1;
        tokio::time::sleep(udaconnect_core::ports::retry_delay(attempt)).await;
    }
}

async fn stream(conference: &Conference, target: &str, args: &SimulateArgs) -> anyhow::Result<()> {
    let base = target.trim_end_matches('/').to_string();
    let client = reqwest::Client::new();
    // Persons first: the server gives them ids, pings then name those.
    let mut ids = Vec::with_capacity(conference.config.attendees as usize);
    let bar = progress::bar(conference.config.attendees as u64, "persons");
    for p in conference.persons() {
        let r = client
            .post(format!("{base}/api/persons"))
            .json(&serde_json::json!({"first_name": p.first_name, "last_name": p.last_name, "company_name": p.company_name}))
            .send()
            .await
            .with_context(|| format!("failed to reach {base}"))?;
        if r.status() != 201 {
            bail!(
                "creating a person failed ({}): {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        let created: serde_json::Value = r.json().await?;
        ids.push(created["id"].as_i64().context("person without id")?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(grpc) = &args.grpc {
        return stream_grpc(conference, &ids, grpc, args).await;
    }
    let ids = Arc::new(ids);
    let url = Arc::new(format!("{base}/api/locations/batch"));
    let permits = Arc::new(Semaphore::new(args.connections.max(1)));
    let bar = progress::bar(estimate(&conference.config), "stream");
    let started = Instant::now();
    let mut sent = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    let mut pings = conference.pings().peekable();
    let batch_size = args.batch.max(1);
    while pings.peek().is_some() {
        let batch: Vec<SimPing> = pings.by_ref().take(batch_size).collect();
        if args.rate > 0.0 {
            let due = Duration::from_secs_f64(sent as f64 / args.rate);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        let permit = permits.clone().acquire_owned().await?;
        let (client, url, body) = (client.clone(), url.clone(), ndjson(&batch, &ids));
        sent += batch.len() as u64;
        let n = batch.len() as u64;
        let bar2 = bar.clone();
        tasks.spawn(async move {
            let out = post_batch(&client, &url, body).await;
            bar2.inc(n);
            drop(permit);
            out
        });
        while let Some(done) = tasks.try_join_next() {
            done??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "sent {sent} pings in {secs:.1} s: {:.0} pings/s",
        sent as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// The pings over gRPC: one bidirectional `LocationIngest/Ingest` stream, each batch answered
/// once durable; a rejected batch stops the run with its violations.
async fn stream_grpc(
    conference: &Conference,
    ids: &[i64],
    endpoint: &str,
    args: &SimulateArgs,
) -> anyhow::Result<()> {
    use udaconnect_server::ingest::grpc::proto::v1::location_ingest_client::LocationIngestClient;
    use udaconnect_server::ingest::grpc::proto::v1::{Ping, PingBatch};

    let mut client = LocationIngestClient::connect(endpoint.to_string())
        .await
        .with_context(|| format!("failed to reach gRPC at {endpoint}"))?
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    // Batches in flight: the server answers each once durable, in order.
    let (tx, rx) = tokio::sync::mpsc::channel::<PingBatch>(args.connections.max(1));
    let outbound =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
    let mut results = client
        .ingest(outbound)
        .await
        .context("the gRPC ingest stream was refused")?
        .into_inner();
    let bar = progress::bar(estimate(&conference.config), "stream (gRPC)");
    let started = Instant::now();
    let batch_size = args.batch.max(1);
    let pings: Vec<SimPing> = conference.pings().collect();
    let total = pings.len() as u64;
    let producer = {
        let rate = args.rate;
        let ids = ids.to_vec();
        tokio::spawn(async move {
            let mut sent = 0u64;
            for (seq, chunk) in pings.chunks(batch_size).enumerate() {
                if rate > 0.0 {
                    let due = Duration::from_secs_f64(sent as f64 / rate);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        tokio::time::sleep(wait).await;
                    }
                }
                let batch = PingBatch {
                    sequence: seq as u64,
                    pings: chunk
                        .iter()
                        .map(|p| Ping {
                            person_id: ids[(p.person_id - 1) as usize],
                            latitude: p.latitude,
                            longitude: p.longitude,
                            creation_time: Some(prost_types::Timestamp {
                                seconds: p.t.div_euclid(1_000_000),
                                nanos: (p.t.rem_euclid(1_000_000) * 1000) as i32,
                            }),
                        })
                        .collect(),
                };
                sent += chunk.len() as u64;
                if tx.send(batch).await.is_err() {
                    break;
                }
            }
        })
    };
    let mut acked = 0u64;
    while acked < total {
        let Some(result) = results
            .message()
            .await
            .context("the gRPC ingest stream failed")?
        else {
            break;
        };
        if !result.violations.is_empty() {
            let first: Vec<String> = result
                .violations
                .iter()
                .take(5)
                .map(|v| format!("{}: {}", v.field, v.message))
                .collect();
            bail!(
                "server refused batch {} ({} problems): {}",
                result.sequence,
                result.violations.len(),
                first.join("; ")
            );
        }
        acked += result.ids.len() as u64;
        bar.inc(result.ids.len() as u64);
    }
    producer.abort();
    bar.finish_and_clear();
    if acked < total {
        bail!("the server ended the stream after {acked} of {total} pings");
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "sent {acked} pings over gRPC in {secs:.1} s: {:.0} pings/s",
        acked as f64 / secs.max(1e-9)
    );
    Ok(())
}

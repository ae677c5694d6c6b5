//! `bench-mqtt`: OwnTracks over MQTT to durable. Starts a Mosquitto of its own (its window of
//! unacknowledged QoS 1 messages per subscriber widened, as docs/deployment.md advises) and
//! `udaconnect serve --mqtt` on a scratch directory, registers phones, publishes N QoS 1
//! location messages from them over a few connections, and times until tracker-mqtt has
//! stored every one (durable in the log; each is acknowledged to the broker right after).
//! With `--http-seconds`, also the single-ping rate of each tracker protocol over HTTP against
//! `POST /api/locations`, in the same run ([`pings`]). The server runs as `serve` runs by
//! default (`--auth on`): every protocol shows its credential, as phones do.

mod pings;

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use udaconnect_testkit::mqtt::OwnBroker;

use crate::common::{admin_token, create_token, machine, scratch_dir};
use crate::distributed::load_average;

#[derive(Args, Debug)]
pub struct BenchMqttArgs {
    /// QoS 1 messages published in the timed run.
    #[arg(
        long,
        env = "UDACONNECT_BENCH_MQTT_MESSAGES",
        default_value_t = 200_000
    )]
    pub messages: u64,
    /// Phones they come from, each a person with a registered device.
    #[arg(long, env = "UDACONNECT_BENCH_MQTT_DEVICES", default_value_t = 200)]
    pub devices: u64,
    /// Publishing connections to the broker.
    #[arg(long, env = "UDACONNECT_BENCH_MQTT_PUBLISHERS", default_value_t = 4)]
    pub publishers: u64,
    /// A broker already running (`mqtt://host:port`) instead of a Mosquitto of the
    /// benchmark's own.
    #[arg(long, env = "UDACONNECT_BENCH_MQTT_BROKER")]
    pub broker: Option<String>,
    /// The own Mosquitto's `max_inflight_messages`: QoS 1 messages sent to one subscriber
    /// and not yet acknowledged (Mosquitto's default is 20).
    #[arg(long, env = "UDACONNECT_BENCH_MQTT_INFLIGHT", default_value_t = 1000)]
    pub inflight: u32,
    /// Seconds of single-ping load per HTTP protocol (OwnTracks, OsmAnd and Traccar Client,
    /// the share page, and `POST /api/locations` before and after them); 0: none.
    #[arg(long, env = "UDACONNECT_BENCH_MQTT_HTTP_SECONDS", default_value_t = 0)]
    pub http_seconds: u64,
    /// Requests in flight in the HTTP load.
    #[arg(long, env = "UDACONNECT_BENCH_MQTT_HTTP_CLIENTS", default_value_t = 64)]
    pub http_clients: u64,
    /// Scratch directory (default: a new one under the system temp dir, removed afterwards).
    #[arg(long, env = "UDACONNECT_BENCH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Also write the report to this file.
    #[arg(long, env = "UDACONNECT_BENCH_OUT")]
    pub out: Option<PathBuf>,
}

/// 2023-11-15T10:00:00Z: the first fix time; each device's fixes follow a second apart.
const FIRST_FIX: i64 = 1_700_042_400;

/// How long the count of stored messages may stand still before the run is given up: the
/// broker dropped messages (its `max_queued_messages`), or the bridge stopped.
const STALLED: Duration = Duration::from_secs(30);

/// A child process stopped (SIGKILL) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn run(args: BenchMqttArgs) -> anyhow::Result<()> {
    if args.devices == 0 || args.publishers == 0 {
        bail!("--devices and --publishers must be at least 1");
    }
    let scratch = scratch_dir(args.data_dir.as_deref(), "udaconnect-bench-mqtt")?;
    std::fs::create_dir_all(&scratch)?;
    let result = run_in(&args, &scratch).await;
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    let report = result?;
    println!("{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report)
            .with_context(|| format!("failed to write {}", out.display()))?;
    }
    Ok(())
}

async fn run_in(args: &BenchMqttArgs, scratch: &Path) -> anyhow::Result<String> {
    let (_broker, broker_url) = match &args.broker {
        Some(url) => (None, url.clone()),
        None => {
            let broker = mosquitto(args.inflight)?;
            let url = broker.url();
            (Some(broker), url)
        }
    };
    let product = crate::embedded::memory::product_binary()?;
    let data = scratch.join("data");
    let (port, osmand_port) = (free_port()?, free_port()?);
    let base = format!("http://127.0.0.1:{port}");
    let client_id = format!("udaconnect-bench-{}", std::process::id());
    let _server = Killed(
        Command::new(&product)
            .args(["serve", "--data-dir"])
            .arg(&data)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--auth", "on"])
            .args(["--osmand-listen", &format!("127.0.0.1:{osmand_port}")])
            .args(["--mqtt", &broker_url, "--mqtt-client-id", &client_id])
            // Every device floods on purpose: no rate to hold them to.
            .args(["--device-rate-limit", "0", "--ingest-rate-limit", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start udaconnect serve")?,
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    wait_ready(&http, &base).await?;
    let admin = admin_token(&product, &data)?;
    let server = Server {
        http: http.clone(),
        base: base.clone(),
        admin,
    };

    eprintln!("registering {} phones", args.devices);
    let phones = register(&server, &product, &data, args.devices).await?;
    // One message per phone first: the subscription is live and every device looked up once.
    let warm: Vec<(String, String)> = phones
        .iter()
        .map(|p| (p.topic.clone(), location(FIRST_FIX - 1)))
        .collect();
    publish_all(&broker_url, vec![warm]).await?;
    wait_stored(&server, phones.len() as u64, Duration::from_secs(60)).await?;

    eprintln!("publishing {} QoS 1 messages", args.messages);
    let mut shares: Vec<Vec<(String, String)>> = vec![Vec::new(); args.publishers as usize];
    for i in 0..args.messages {
        let phone = &phones[(i % args.devices) as usize];
        let tst = FIRST_FIX + (i / args.devices) as i64;
        shares[(i % args.publishers) as usize].push((phone.topic.clone(), location(tst)));
    }
    let load_before = load_average();
    let before = server.stored().await?;
    let started = Instant::now();
    let publishing = tokio::spawn(publish_all_timed(broker_url.clone(), shares, started));
    let want = before + args.messages;
    let (mut last, mut moved) = (before, Instant::now());
    let stored_in = loop {
        let now = server.stored().await?;
        if now >= want {
            break started.elapsed();
        }
        let refused = server
            .metric("udaconnect_mqtt_messages_total{outcome=\"refused\"}")
            .await?;
        if refused > 0 {
            bail!("tracker-mqtt refused {refused} messages: see its log");
        }
        if now > last {
            (last, moved) = (now, Instant::now());
        } else if moved.elapsed() > STALLED {
            let published = match publishing.is_finished() {
                true => "all published and acknowledged by the broker",
                false => "still publishing",
            };
            bail!(
                "{} of {} stored, none for {STALLED:?} ({published}): did the broker drop \
                 messages past its max_queued_messages (see its log), or the bridge stop?",
                now - before,
                args.messages
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let published_in = publishing.await??;
    let rate = args.messages as f64 / stored_in.as_secs_f64();

    let mut report = String::new();
    writeln!(
        report,
        "## OwnTracks over MQTT to durable\n\n\
         Machine: {}. Command: `udaconnect bench-mqtt --messages {} --devices {} --publishers {}{} \
         --http-seconds {}`.\n",
        machine(),
        args.messages,
        args.devices,
        args.publishers,
        match &args.broker {
            Some(_) => " --broker URL".to_string(),
            None => format!(" --inflight {}", args.inflight),
        },
        args.http_seconds
    )?;
    writeln!(report, "| measure | value |\n| --- | --- |")?;
    writeln!(
        report,
        "| QoS 1 messages published and acknowledged by the broker | {} in {:.2} s ({:.0}/s) |",
        args.messages,
        published_in.as_secs_f64(),
        args.messages as f64 / published_in.as_secs_f64()
    )?;
    writeln!(
        report,
        "| stored durable by tracker-mqtt (then acknowledged) | all in {:.2} s: **{:.0} messages/s** |",
        stored_in.as_secs_f64(),
        rate
    )?;
    if args.http_seconds > 0 {
        let at = pings::Endpoints {
            base,
            osmand: format!("http://127.0.0.1:{osmand_port}"),
        };
        let (seconds, clients) = (args.http_seconds, args.http_clients);
        pings::rates(&http, at, &phones, seconds, clients, &mut report).await?;
    }
    writeln!(
        report,
        "\nLoad average (1, 5, 15 min) before the MQTT run: {load_before}; at the end: {}.",
        load_average()
    )?;
    Ok(report)
}

/// A free TCP port on loopback (free when asked; taken by whoever binds it next).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts Mosquitto on a free port with `inflight` unacknowledged QoS 1 messages per
/// subscriber, no limit on its queue, and no persistence (nothing here outlives the run).
fn mosquitto(inflight: u32) -> anyhow::Result<OwnBroker> {
    let inflight = format!("max_inflight_messages {inflight}");
    OwnBroker::try_start(&[&inflight, "max_queued_messages 0"])
        .context("cannot start a Mosquitto of the benchmark's own (or give --broker)")
}

async fn wait_ready(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{base}/ready")).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("udaconnect serve is not ready after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The server under test, asked as its admin.
struct Server {
    http: reqwest::Client,
    base: String,
    admin: String,
}

/// A registered phone: its person, the person's attendee token, and the phone's topic and
/// credentials.
#[derive(Clone)]
struct Phone {
    person: i64,
    attendee: String,
    topic: String,
    token: String,
    osmand_id: String,
}

/// `n` persons, each with an attendee token (`admin create-token`) and a phone they
/// registered.
async fn register(
    server: &Server,
    product: &Path,
    data: &Path,
    n: u64,
) -> anyhow::Result<Vec<Phone>> {
    let (http, base) = (&server.http, &server.base);
    let mut phones = Vec::new();
    for i in 0..n {
        let person: Value = http
            .post(format!("{base}/api/persons"))
            .bearer_auth(&server.admin)
            .json(&json!({"first_name": format!("Phone{i}"), "last_name": "Bench", "company_name": "Bench"}))
            .send()
            .await?
            .json()
            .await?;
        let person = person["id"].as_i64().context("no person id")?;
        let attendee = create_token(product, data, "attendee", Some(person))?;
        let r = http
            .post(format!("{base}/api/me/devices"))
            .bearer_auth(&attendee)
            .json(&json!({"name": format!("bench-{i}")}))
            .send()
            .await?;
        if r.status() != 201 {
            bail!("registering a phone: {} {}", r.status(), r.text().await?);
        }
        let phone: Value = r.json().await?;
        let text = |k: &str| phone[k].as_str().unwrap_or_default().to_string();
        phones.push(Phone {
            person,
            attendee,
            topic: text("mqtt_topic"),
            token: text("token"),
            osmand_id: text("osmand_id"),
        });
    }
    Ok(phones)
}

/// An OwnTracks location at `tst`.
fn location(tst: i64) -> String {
    format!(r#"{{"_type":"location","lat":52.52,"lon":13.405,"tst":{tst},"acc":5,"tid":"bn"}}"#)
}

/// Publishes each share over a connection of its own; returns once the broker acknowledged
/// every message.
async fn publish_all(broker: &str, shares: Vec<Vec<(String, String)>>) -> anyhow::Result<()> {
    publish_all_timed(broker.to_string(), shares, Instant::now()).await?;
    Ok(())
}

/// [`publish_all`], returning the time from `started` until the last acknowledgement.
async fn publish_all_timed(
    broker: String,
    shares: Vec<Vec<(String, String)>>,
    started: Instant,
) -> anyhow::Result<Duration> {
    let url = url::Url::parse(&broker)?;
    let host = url.host_str().unwrap_or("127.0.0.1").to_string();
    let port = url.port().unwrap_or(1883);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, share) in shares.into_iter().enumerate() {
        let host = host.clone();
        tasks.spawn(async move {
            let id = format!("bench-publisher-{}-{i}", std::process::id());
            let mut options = MqttOptions::new(id, host, port);
            options
                .set_clean_session(true)
                .set_inflight(1000)
                .set_keep_alive(Duration::from_secs(30));
            let (client, mut events) = AsyncClient::new(options, 1024);
            let n = share.len();
            let sender = tokio::spawn(async move {
                for (topic, payload) in share {
                    client
                        .publish(topic, QoS::AtLeastOnce, false, payload)
                        .await?;
                }
                anyhow::Ok(client)
            });
            let mut acked = 0;
            while acked < n {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                    Ok(_) => {}
                    Err(e) => bail!("publisher {i}: {e}"),
                }
            }
            let client = sender.await??;
            let _ = client.try_disconnect();
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(started.elapsed())
}

impl Server {
    /// MQTT messages tracker-mqtt has stored.
    async fn stored(&self) -> anyhow::Result<u64> {
        self.metric("udaconnect_mqtt_messages_total{outcome=\"stored\"}")
            .await
    }

    /// A counter on `/metrics` (0 when absent).
    async fn metric(&self, name: &str) -> anyhow::Result<u64> {
        let r = self
            .http
            .get(format!("{}/metrics", self.base))
            .bearer_auth(&self.admin)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("/metrics: {}", r.status());
        }
        let text = r.text().await?;
        Ok(text
            .lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map_or(0, |v| v as u64))
    }
}

async fn wait_stored(server: &Server, want: u64, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let now = server.stored().await?;
        if now >= want {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{now} of {want} MQTT messages stored after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

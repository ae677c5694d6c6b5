//! The command line: one subcommand per job. Every flag has an environment fallback
//! (`UDACONNECT_*`); flags win over the environment, the environment over defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use udaconnect::telemetry::GlobalArgs;
use udaconnect_server::access::AuthMode;
use udaconnect_server::http::edge::EdgeSettings;
use udaconnect_server::ingest::trackers::mqtt;
use udaconnect_server::mail::{MailSettings, SmtpUrl};
use udaconnect_server::roles::Role;
use udaconnect_server::signin::SignInSettings;
use udaconnect_server::wiring::retention::LogRetention;
use udaconnect_server::{Application, GrpcListen, HttpSettings, ServeSettings};

use crate::replay::ReplayArgs;
use crate::retention::RetentionArgs;
use crate::role_args::{
    role_settings, run_role, ConnectionApiArgs, LocationApiArgs, LocationConsumerArgs, MailerArgs,
    RoleArgs, TrackerMqttArgs, WebArgs,
};

#[derive(Parser, Debug)]
#[command(
    name = "udaconnect",
    version,
    about = "UdaConnect: who met whom at a conference, from attendees' location pings",
    long_about = "UdaConnect ingests attendees' location pings and answers, for any attendee, \
        who else was within a few metres, where and when.\n\n\
        `udaconnect serve --demo` runs the whole product in one process on embedded storage \
        with the original demo data."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run every role in one process on embedded storage, with no external service.
    Serve(ServeArgs),
    /// person-api alone: persons (distributed mode; default listen 127.0.0.1:30002).
    PersonApi(RoleArgs),
    /// location-api alone: accepts pings over HTTP and gRPC and appends them to the log
    /// (default listen 127.0.0.1:30004, gRPC 127.0.0.1:5005).
    LocationApi(LocationApiArgs),
    /// location-consumer alone: stores the log's pings; serves only /health, /ready and
    /// /metrics (default listen 127.0.0.1:30005).
    LocationConsumer(LocationConsumerArgs),
    /// connection-api alone: who met whom, from the store or an in-memory index following the
    /// log (default listen 127.0.0.1:30003).
    ConnectionApi(ConnectionApiArgs),
    /// mailer alone: sends the mail requests of the notification topic over SMTP (--smtp), or
    /// writes them as .eml files under the data directory; serves only /health, /ready and
    /// /metrics (default listen 127.0.0.1:30006).
    Mailer(MailerArgs),
    /// web alone: the web page, and the one entry point that routes /api to the other roles
    /// (default listen 127.0.0.1:30000).
    Web(WebArgs),
    /// tracker-mqtt alone: takes OwnTracks messages from an MQTT broker (--mqtt) and
    /// acknowledges each once durable in the log; serves only /health, /ready and /metrics
    /// (default listen 127.0.0.1:30007).
    TrackerMqtt(TrackerMqttArgs),
    /// Rebuild the location store from the log (run while `serve` is stopped).
    Replay(ReplayArgs),
    /// Find damage in the embedded log, or repair it keeping a backup (repair with `serve` stopped).
    Log(crate::log_admin::LogArgs),
    /// List the dead-lettered records (location.dlq), or re-drive them to location once their
    /// cause is fixed.
    Dlq(crate::dlq::DlqArgs),
    /// Generate a realistic conference (seeded): write it to files or stream it to a server.
    Simulate(crate::simulate::SimulateArgs),
    /// Accounts and tokens: create a token (the way in before anyone can sign in), list and
    /// revoke them; offline, also while `serve` runs.
    Admin(crate::admin::AdminArgs),
    /// Import persons and locations CSV into a data directory (run while `serve` is stopped).
    Import(crate::import::ImportArgs),
    /// Measure ingest, queries, memory and start-up on a simulated conference (runs
    /// udaconnect-bench).
    Bench(crate::bench_entry::Forward),
    /// Measure the distributed mode (Kafka -> PostGIS consumer, end-to-end ingest latency,
    /// PostGIS queries; runs udaconnect-bench).
    BenchDistributed(crate::bench_entry::Forward),
    /// Measure OwnTracks over MQTT to durable through Mosquitto, and the tracker protocols'
    /// single-ping rates (runs udaconnect-bench).
    BenchMqtt(crate::bench_entry::Forward),
}

impl Command {
    /// Whether this command keeps a contact index in memory (see [`udaconnect::huge_pages`]).
    pub fn holds_contact_index(&self) -> bool {
        matches!(self, Command::Serve(_) | Command::ConnectionApi(_))
    }
}

#[derive(Args, Debug)]
pub struct DataDirArg {
    /// Directory holding the embedded stores and log; created if missing.
    #[arg(long, env = "UDACONNECT_DATA_DIR", default_value = "./udaconnect-data")]
    pub data_dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address the HTTP API, docs and metrics listen on.
    #[arg(long, env = "UDACONNECT_LISTEN", default_value = "127.0.0.1:30000")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub data: DataDirArg,
    /// Load the original UdaConnect demo data (5 persons, 39 locations) on first start.
    #[arg(long, env = "UDACONNECT_DEMO")]
    pub demo: bool,
    /// With --demo: attendees of a live simulated conference next to the demo data, pinging
    /// every 5 s in real time (0: none).
    #[arg(long, env = "UDACONNECT_DEMO_ATTENDEES", default_value_t = 150)]
    pub demo_attendees: u32,
    /// Serve the web page from this directory instead of the copy built into the binary
    /// (for working on the page without rebuilding).
    #[arg(long, env = "UDACONNECT_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Origins (e.g. `https://connect.example.org`) whose pages may call the API from a
    /// browser, comma-separated; pages on this machine (localhost, any port) always may.
    #[arg(long, env = "UDACONNECT_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Address of the gRPC services (the original LocationService, the v1 ingest, health and
    /// reflection), or `off`. Default: 127.0.0.1:5005 when that port is free.
    #[arg(long, env = "UDACONNECT_GRPC_LISTEN")]
    pub grpc_listen: Option<String>,
    #[command(flatten)]
    pub osmand: OsmAndListenArg,
    #[command(flatten)]
    pub listen_file: ListenFileArg,
    #[command(flatten)]
    pub edge: crate::edge::EdgeArgs,
    /// How long the log keeps pings: `keep` every one (the log alone can rebuild the store),
    /// or `stored`: delete each 128 MiB segment once its pings are stored (the store is then
    /// the only copy of older pings: back it up).
    #[arg(long, env = "UDACONNECT_LOG_RETENTION", default_value = "keep")]
    pub log_retention: LogRetention,
    #[command(flatten)]
    pub retention: RetentionArgs,
    #[command(flatten)]
    pub mail: MailArgs,
    #[command(flatten)]
    pub signin: SignInArgs,
    #[command(flatten)]
    pub access: AccessArgs,
    #[command(flatten)]
    pub mqtt: MqttArgs,
    #[command(flatten)]
    pub live: crate::edge::LiveArgs,
}

/// OwnTracks in MQTT mode (tracker-mqtt).
#[derive(Args, Debug)]
pub struct MqttArgs {
    /// The MQTT broker OwnTracks phones publish to: `mqtt://[user:password@]host[:port]`
    /// (port 1883). `serve` runs tracker-mqtt only when it is given.
    #[arg(long, env = "UDACONNECT_MQTT", hide_env_values = true)]
    pub mqtt: Option<String>,
    /// The client id of UdaConnect's session at the broker: kept across restarts, so what
    /// phones publish while UdaConnect is down waits there. One per deployment.
    #[arg(long, env = "UDACONNECT_MQTT_CLIENT_ID", default_value = mqtt::DEFAULT_CLIENT_ID)]
    pub mqtt_client_id: String,
}

impl MqttArgs {
    pub fn settings(&self) -> anyhow::Result<Option<mqtt::MqttSettings>> {
        let Some(url) = self.mqtt.as_deref().filter(|s| !s.trim().is_empty()) else {
            return Ok(None);
        };
        let broker = url.parse().map_err(|e| anyhow::anyhow!("--mqtt: {e}"))?;
        let client_id = self.mqtt_client_id.trim();
        if client_id.is_empty() || client_id.contains(['+', '#']) {
            anyhow::bail!("--mqtt-client-id: give a name without + or #");
        }
        Ok(Some(mqtt::MqttSettings {
            broker,
            client_id: client_id.to_string(),
        }))
    }
}

/// Sign-in by e-mail link.
#[derive(Args, Debug)]
pub struct SignInArgs {
    /// The address people open UdaConnect at (`https://connect.example.org`): sign-in links
    /// point there. Default: the address --listen binds (localhost for 0.0.0.0). Set it
    /// behind a proxy and in distributed mode (on person-api: the web role's address).
    #[arg(long, env = "UDACONNECT_PUBLIC_URL", value_parser = udaconnect_server::signin::parse_public_url)]
    pub public_url: Option<String>,
    /// Let anyone sign up: an address without an account that asks for a sign-in link gets
    /// an attendee account and a new person. Off by default: organizers add attendees.
    #[arg(long, env = "UDACONNECT_SELF_REGISTRATION")]
    pub self_registration: bool,
    /// A proxy in front is trusted to say the client's address (X-Forwarded-For, for the
    /// sign-in limits per client) and that it spoke HTTPS (X-Forwarded-Proto: https, which
    /// marks the session cookie Secure). Only when every request passes that proxy.
    #[arg(long, env = "UDACONNECT_TRUST_PROXY")]
    pub trust_proxy: bool,
}

impl SignInArgs {
    pub fn settings(&self) -> SignInSettings {
        SignInSettings {
            public_url: self.public_url.clone(),
            self_registration: self.self_registration,
            trust_proxy: self.trust_proxy,
            ..SignInSettings::default()
        }
    }
}

/// Who may ask what.
#[derive(Args, Debug)]
pub struct AccessArgs {
    /// `on`: every route but /health, /ready, the page and the docs needs a token
    /// (`Authorization: Bearer uc_...`, gRPC metadata `authorization`) or a signed-in session,
    /// and each role may do what the policy allows. `off`: the original open contract, for
    /// its old clients; refused unless every listen address is loopback.
    #[arg(long, env = "UDACONNECT_AUTH", default_value = "on")]
    pub auth: AuthMode,
    /// Also serve /metrics without a token on this address, for Prometheus scrapers (off by
    /// default: /metrics on the main address needs an organizer's or admin's token).
    #[arg(long, env = "UDACONNECT_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

/// How the mailer sends.
#[derive(Args, Debug)]
pub struct MailArgs {
    /// The SMTP server: `smtp://[user:password@]host[:port][?tls=required|opportunistic|none]`
    /// (STARTTLS, required by default; port 587), or `smtps://...` (TLS; port 465). Without
    /// it, mail is written as .eml files under the data directory (DIR/mail/).
    #[arg(long, env = "UDACONNECT_SMTP")]
    pub smtp: Option<String>,
    /// Without --smtp: the directory the .eml files are written to (default: DIR/mail/ of the
    /// data directory; needed when the store and the log are not directories). Unused with
    /// --smtp.
    #[arg(long, env = "UDACONNECT_MAIL_DIR")]
    pub mail_dir: Option<PathBuf>,
    /// The From of every mail: `addr@example.org` or `Name <addr@example.org>`.
    #[arg(
        long,
        env = "UDACONNECT_MAIL_FROM",
        default_value = "UdaConnect <noreply@localhost>"
    )]
    pub mail_from: String,
    /// Tries for one mail while the SMTP server says "not now" or cannot be reached, before
    /// it is dead-lettered to notification.dlq.
    #[arg(long, env = "UDACONNECT_MAIL_ATTEMPTS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub mail_attempts: u32,
    /// The pause after the first failed try, in milliseconds; it doubles after each, up to
    /// 5 minutes.
    #[arg(long, env = "UDACONNECT_MAIL_RETRY_MS", default_value_t = 2000)]
    pub mail_retry_ms: u64,
}

impl MailArgs {
    pub fn settings(&self) -> anyhow::Result<MailSettings> {
        // An empty value (a variable set but blank, as compose passes it) is no server.
        let smtp = match self.smtp.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(s) => Some(
                s.parse::<SmtpUrl>()
                    .map_err(|e| anyhow::anyhow!("--smtp: {e}"))?,
            ),
            None => None,
        };
        Ok(MailSettings {
            smtp,
            dir: self.mail_dir.clone(),
            from: self.mail_from.clone(),
            max_attempts: self.mail_attempts,
            retry_delay: std::time::Duration::from_millis(self.mail_retry_ms),
            ..MailSettings::default()
        })
    }
}

#[derive(Args, Debug)]
pub struct ListenFileArg {
    /// Once listening, write the bound addresses to this file as one JSON object
    /// ({"http":"127.0.0.1:PORT","grpc":"127.0.0.1:PORT"|null,"role":...,"pid":N}), atomically:
    /// for scripts and tests that listen on port 0.
    #[arg(long, env = "UDACONNECT_LISTEN_FILE")]
    pub listen_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct OsmAndListenArg {
    /// Address where Traccar Client and OsmAnd reports are taken at any path (the OsmAnd
    /// protocol; the same as /api/osmand on the HTTP port), or `off`. Default: the HTTP listen
    /// address's IP on port 5055, the apps' usual port, when that port is free: loopback
    /// unless --listen is opened to the network.
    #[arg(long, env = "UDACONNECT_OSMAND_LISTEN")]
    pub osmand_listen: Option<String>,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::PersonApi(args) => run_role(role_settings(Role::PersonApi, args, None)?).await,
        Command::LocationApi(args) => run_role(args.settings()?).await,
        Command::LocationConsumer(args) => run_role(args.settings()?).await,
        Command::ConnectionApi(args) => run_role(args.settings()?).await,
        Command::Mailer(args) => run_role(args.settings()?).await,
        Command::Web(args) => run_role(args.settings()?).await,
        Command::TrackerMqtt(args) => run_role(args.settings()?).await,
        Command::Replay(args) => crate::replay::run(args).await,
        Command::Log(args) => crate::log_admin::run(args).await,
        Command::Dlq(args) => crate::dlq::run(args).await,
        Command::Simulate(args) => crate::simulate::run(args).await,
        Command::Import(args) => crate::import::run(args).await,
        Command::Admin(args) => crate::admin::run(args).await,
        Command::Bench(args) => crate::bench_entry::run("bench", &cli.global, args),
        Command::BenchDistributed(args) => {
            crate::bench_entry::run("bench-distributed", &cli.global, args)
        }
        Command::BenchMqtt(args) => crate::bench_entry::run("bench-mqtt", &cli.global, args),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let app = Application::build(ServeSettings {
        http: HttpSettings {
            listen: args.listen,
            listen_file: args.listen_file.listen_file,
            web_dir: args.web_dir,
            cors_origins: args.cors_origins,
            edge: EdgeSettings {
                live: args.live.settings()?,
                ..args.edge.settings()
            },
            osmand_listen: osmand_listen(args.osmand.osmand_listen.as_deref(), args.listen)?,
            signin: args.signin.settings(),
            auth: args.access.auth,
            metrics_listen: args.access.metrics_listen,
        },
        data_dir: args.data.data_dir,
        demo: args.demo,
        demo_attendees: args.demo_attendees,
        grpc: grpc_listen(args.grpc_listen.as_deref())?,
        log_retention: args.log_retention,
        retention: args.retention.settings(),
        mail: args.mail.settings()?,
        mqtt: args.mqtt.settings()?,
    })
    .await?;
    if !app.demo_links().is_empty() {
        println!("Sign in to the demo (each link works once, for 15 minutes):");
        for (role, link) in app.demo_links() {
            println!("  as the demo {role}: {link}");
        }
    }
    app.run_until_stopped().await
}

fn grpc_listen(flag: Option<&str>) -> anyhow::Result<GrpcListen> {
    Ok(match flag.map(str::trim) {
        None => GrpcListen::Default(SocketAddr::from(([127, 0, 0, 1], 5005))),
        Some("off" | "none" | "") => GrpcListen::Off,
        Some(a) => GrpcListen::At(
            a.parse()
                .with_context(|| format!("--grpc-listen: '{a}' is not an address (or off)"))?,
        ),
    })
}

/// Where the OsmAnd listener goes: the flag's address, `off`, or by default port 5055 on the
/// HTTP listener's IP (when free).
pub(crate) fn osmand_listen(flag: Option<&str>, http: SocketAddr) -> anyhow::Result<GrpcListen> {
    Ok(match flag.map(str::trim) {
        None => GrpcListen::Default(SocketAddr::new(http.ip(), 5055)),
        Some("off" | "none" | "") => GrpcListen::Off,
        Some(a) => GrpcListen::At(
            a.parse()
                .with_context(|| format!("--osmand-listen: '{a}' is not an address (or off)"))?,
        ),
    })
}

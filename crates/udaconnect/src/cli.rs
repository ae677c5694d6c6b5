//! The command line: one subcommand per job. Every flag has an environment fallback
//! (`UDACONNECT_*`); flags win over the environment, the environment over defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use udaconnect::telemetry::GlobalArgs;
use udaconnect_core::auth::{GatewayKey, TokenSecret};
use udaconnect_core::ports::DynLog;
use udaconnect_server::access::AuthMode;
use udaconnect_server::consume::replay::{self as rebuild, ReplayMode};
use udaconnect_server::http::edge::EdgeSettings;
use udaconnect_server::ingest::trackers::mqtt;
use udaconnect_server::mail::{MailSettings, SmtpUrl};
use udaconnect_server::persons::{DynPersonDirectory, LocalPersons};
use udaconnect_server::roles::connection_api::EngineKind;
use udaconnect_server::roles::Role;
use udaconnect_server::signin::SignInSettings;
use udaconnect_server::wiring::backends::{
    open_log, open_stores, store_url_from_db_env, LogUrl, StoreUrl, Stores,
};
use udaconnect_server::wiring::context::Upstreams;
use udaconnect_server::wiring::embedded::EmbeddedStack;
use udaconnect_server::wiring::retention::LogRetention;
use udaconnect_server::{Application, GrpcListen, HttpSettings, RoleSettings, ServeSettings};

use crate::retention::RetentionArgs;

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

#[derive(Args, Debug)]
pub struct TrackerMqttArgs {
    #[command(flatten)]
    pub role: RoleArgs,
    #[command(flatten)]
    pub person_api: PersonApiArg,
    #[command(flatten)]
    pub mqtt: MqttArgs,
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

/// What a role apart presents when it asks person-api for itself.
#[derive(Args, Debug)]
pub struct ServiceTokenArg {
    /// An organizer's token (`udaconnect admin create-token --role organizer`) this role
    /// presents to person-api when it looks persons up; needed when person-api runs with
    /// --auth on. Best given by the environment (a Secret), not on the command line.
    #[arg(long, env = "UDACONNECT_SERVICE_TOKEN", hide_env_values = true)]
    pub service_token: Option<String>,
}

impl ServiceTokenArg {
    fn token(&self) -> anyhow::Result<Option<TokenSecret>> {
        match self.service_token.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(t) => TokenSecret::parse(t)
                .map(Some)
                .context("--service-token: not a UdaConnect token (uc_...)"),
        }
    }
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
pub struct MailerArgs {
    #[command(flatten)]
    pub role: RoleArgs,
    #[command(flatten)]
    pub mail: MailArgs,
}

#[derive(Args, Debug)]
pub struct ListenFileArg {
    /// Once listening, write the bound addresses to this file as one JSON object
    /// ({"http":"127.0.0.1:PORT","grpc":"127.0.0.1:PORT"|null,"role":...,"pid":N}), atomically:
    /// for scripts and tests that listen on port 0.
    #[arg(long, env = "UDACONNECT_LISTEN_FILE")]
    pub listen_file: Option<PathBuf>,
}

/// Where a role listens and finds its store and log.
#[derive(Args, Debug)]
pub struct RoleArgs {
    /// Address the role's HTTP API, /health, /ready and /metrics listen on.
    #[arg(long, env = "UDACONNECT_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The store: `postgres://user:password@host:port/db`, or an embedded data directory.
    /// Without it, the original DB_USERNAME, DB_PASSWORD, DB_HOST, DB_PORT and DB_NAME
    /// variables are used when DB_HOST is set, else ./udaconnect-data.
    #[arg(long, env = "UDACONNECT_STORE")]
    pub store: Option<String>,
    /// The log: `kafka://host:port[,host:port]`, or an embedded data directory (one process
    /// at a time). Default ./udaconnect-data.
    #[arg(long, env = "UDACONNECT_LOG")]
    pub log: Option<String>,
    /// Origins whose pages may call the API from a browser, comma-separated (pages on this
    /// machine always may).
    #[arg(long, env = "UDACONNECT_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    #[command(flatten)]
    pub listen_file: ListenFileArg,
    #[command(flatten)]
    pub edge: crate::edge::EdgeArgs,
    /// person-api's sign-in (the other roles ignore these).
    #[command(flatten)]
    pub signin: SignInArgs,
    #[command(flatten)]
    pub access: AccessArgs,
    #[command(flatten)]
    pub gateway: GatewayKeyArgs,
}

/// The key of the web gateway's signed word on who is asking.
#[derive(Args, Debug)]
pub struct GatewayKeyArgs {
    /// A file holding the key (at least 32 random bytes, e.g. from `openssl rand -base64 48`)
    /// shared by every role: web signs with it who each request's credential signs in, and
    /// the roles behind it believe that and refuse a request without it. Without a key, with
    /// --auth on, a role that takes API requests listens only on loopback.
    #[arg(long, env = "UDACONNECT_GATEWAY_KEY_FILE")]
    pub gateway_key_file: Option<PathBuf>,
    /// The key itself, instead of --gateway-key-file: best given by the environment (a
    /// Secret), not on the command line.
    #[arg(long, env = "UDACONNECT_GATEWAY_KEY", hide_env_values = true)]
    pub gateway_key: Option<String>,
}

impl GatewayKeyArgs {
    fn key(&self) -> anyhow::Result<Option<GatewayKey>> {
        let text = match (&self.gateway_key_file, self.gateway_key.as_deref()) {
            (Some(_), Some(k)) if !k.trim().is_empty() => {
                anyhow::bail!("give the gateway key once: --gateway-key-file or --gateway-key")
            }
            (Some(path), _) => std::fs::read_to_string(path).with_context(|| {
                format!("failed to read the gateway key from {}", path.display())
            })?,
            (None, Some(k)) => k.to_string(),
            (None, None) => return Ok(None),
        };
        // A Secret committed empty says "no key yet", as no variable at all does.
        match text.trim() {
            "" => Ok(None),
            key => GatewayKey::new(key.as_bytes())
                .map(Some)
                .map_err(|e| anyhow::anyhow!("--gateway-key-file: {e}")),
        }
    }
}

/// Where person-api answers, for a role that asks it about persons.
#[derive(Args, Debug)]
pub struct PersonApiArg {
    /// Base URL of person-api (persons are looked up there, not in its tables).
    #[arg(long, env = "UDACONNECT_PERSON_API", default_value_t = Role::PersonApi.default_url())]
    pub person_api: String,
    #[command(flatten)]
    pub service: ServiceTokenArg,
}

#[derive(Args, Debug)]
pub struct LocationConsumerArgs {
    #[command(flatten)]
    pub role: RoleArgs,
    #[command(flatten)]
    pub person_api: PersonApiArg,
    #[command(flatten)]
    pub retention: RetentionArgs,
}

#[derive(Args, Debug)]
pub struct LocationApiArgs {
    #[command(flatten)]
    pub role: RoleArgs,
    #[command(flatten)]
    pub person_api: PersonApiArg,
    /// Address of the gRPC services (the original LocationService, the v1 ingest, health and
    /// reflection).
    #[arg(long, env = "UDACONNECT_GRPC_LISTEN", default_value = "127.0.0.1:5005")]
    pub grpc_listen: SocketAddr,
    #[command(flatten)]
    pub osmand: OsmAndListenArg,
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

#[derive(Args, Debug)]
pub struct ConnectionApiArgs {
    #[command(flatten)]
    pub role: RoleArgs,
    #[command(flatten)]
    pub person_api: PersonApiArg,
    /// What answers queries: `store`, one set-based statement on the store per query
    /// (PostGIS); or `memory`, the embedded mode's in-memory index, built from the whole Kafka
    /// topic at start and following it (milliseconds per query; needs --log kafka://... with a
    /// topic that keeps every record, and memory for about 55 bytes per location).
    #[arg(long, env = "UDACONNECT_ENGINE", value_enum, default_value_t = EngineArg::Store)]
    pub engine: EngineArg,
    /// With `--engine memory`: the index drops pings older than this as the store does.
    #[command(flatten)]
    pub retention: RetentionArgs,
    #[command(flatten)]
    pub live: crate::edge::LiveArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineArg {
    Store,
    Memory,
}

#[derive(Args, Debug)]
pub struct WebArgs {
    /// --store and --log are accepted for uniformity; web uses neither.
    #[command(flatten)]
    pub role: RoleArgs,
    #[command(flatten)]
    pub person_api: PersonApiArg,
    /// Base URL of location-api (its HTTP port).
    #[arg(long, env = "UDACONNECT_LOCATION_API", default_value_t = Role::LocationApi.default_url())]
    pub location_api: String,
    /// Base URL of connection-api.
    #[arg(long, env = "UDACONNECT_CONNECTION_API", default_value_t = Role::ConnectionApi.default_url())]
    pub connection_api: String,
    /// Serve the web page from this directory instead of the copy built into the binary.
    #[arg(long, env = "UDACONNECT_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub data: DataDirArg,
    /// Rebuild this store instead of the data directory's: `postgres://...` (with --log).
    #[arg(long, env = "UDACONNECT_STORE", requires = "log")]
    pub store: Option<String>,
    /// Read this log instead of the data directory's: `kafka://host:port[,host:port]`.
    #[arg(long, env = "UDACONNECT_LOG", requires = "store")]
    pub log: Option<String>,
    /// Store what the log holds over the store as it is, clearing nothing: for a log whose
    /// older segments were deleted once stored (`serve --log-retention stored`).
    #[arg(long)]
    pub partial: bool,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::PersonApi(args) => run_role(role_settings(Role::PersonApi, args, None)?).await,
        Command::LocationApi(args) => {
            let mut settings = role_settings(Role::LocationApi, args.role, Some(args.person_api))?;
            settings.grpc_listen = Some(args.grpc_listen);
            settings.http.osmand_listen =
                osmand_listen(args.osmand.osmand_listen.as_deref(), settings.http.listen)?;
            run_role(settings).await
        }
        Command::LocationConsumer(args) => {
            let mut settings =
                role_settings(Role::LocationConsumer, args.role, Some(args.person_api))?;
            settings.retention = args.retention.settings();
            run_role(settings).await
        }
        Command::ConnectionApi(args) => {
            let mut settings =
                role_settings(Role::ConnectionApi, args.role, Some(args.person_api))?;
            settings.engine = match args.engine {
                EngineArg::Store => EngineKind::Store,
                EngineArg::Memory => EngineKind::Memory,
            };
            settings.retention = args.retention.settings();
            settings.http.edge.live = args.live.settings()?;
            run_role(settings).await
        }
        Command::Mailer(args) => {
            let mut settings = role_settings(Role::Mailer, args.role, None)?;
            settings.mail = args.mail.settings()?;
            run_role(settings).await
        }
        Command::Web(args) => {
            let mut settings = role_settings(Role::Web, args.role, Some(args.person_api))?;
            settings.upstreams = settings
                .upstreams
                .with(Role::LocationApi, args.location_api)
                .with(Role::ConnectionApi, args.connection_api);
            settings.http.web_dir = args.web_dir;
            run_role(settings).await
        }
        Command::TrackerMqtt(args) => {
            let mut settings = role_settings(Role::TrackerMqtt, args.role, Some(args.person_api))?;
            settings.mqtt = Some(
                args.mqtt
                    .settings()?
                    .context("tracker-mqtt needs --mqtt URL")?,
            );
            run_role(settings).await
        }
        Command::Replay(args) => replay(args).await,
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

const DEFAULT_DATA_DIR: &str = "./udaconnect-data";

fn store_url(flag: Option<String>) -> anyhow::Result<StoreUrl> {
    match flag {
        Some(s) => s
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--store: {e}")),
        None => Ok(store_url_from_db_env(|k| std::env::var(k).ok())
            .map_err(|e: String| anyhow::anyhow!("{e}"))?
            .unwrap_or_else(|| StoreUrl::Embedded(DEFAULT_DATA_DIR.into()))),
    }
}

fn log_url(flag: Option<String>) -> anyhow::Result<LogUrl> {
    flag.unwrap_or_else(|| DEFAULT_DATA_DIR.to_string())
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--log: {e}"))
}

/// A role's settings from the flags every role takes (and `--person-api` for the roles that
/// ask it about persons); the rest at their defaults.
fn role_settings(
    role: Role,
    args: RoleArgs,
    person_api: Option<PersonApiArg>,
) -> anyhow::Result<RoleSettings> {
    let upstreams = Upstreams::default();
    // person-api queues sign-in mails on the log only when given one: an older deployment
    // without --log keeps working, without sign-in mails (it says so at start).
    let signin = SignInSettings {
        mails: role != Role::PersonApi || args.log.is_some(),
        ..args.signin.settings()
    };
    Ok(RoleSettings {
        role,
        http: HttpSettings {
            listen: args.listen.unwrap_or_else(|| role.default_listen()),
            listen_file: args.listen_file.listen_file,
            web_dir: None,
            cors_origins: args.cors_origins,
            edge: args.edge.settings(),
            osmand_listen: GrpcListen::Off,
            signin,
            auth: args.access.auth,
            metrics_listen: args.access.metrics_listen,
        },
        grpc_listen: None,
        store: store_url(args.store)?,
        log: log_url(args.log)?,
        upstreams: match &person_api {
            Some(p) => upstreams.with(Role::PersonApi, p.person_api.clone()),
            None => upstreams,
        },
        engine: EngineKind::default(),
        mail: MailSettings::default(),
        mqtt: None,
        retention: Default::default(),
        service_token: match &person_api {
            Some(p) => p.service.token()?,
            None => None,
        },
        gateway_key: args.gateway.key()?,
    })
}

async fn run_role(settings: RoleSettings) -> anyhow::Result<()> {
    Application::build_role(settings)
        .await?
        .run_until_stopped()
        .await
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
fn osmand_listen(flag: Option<&str>, http: SocketAddr) -> anyhow::Result<GrpcListen> {
    Ok(match flag.map(str::trim) {
        None => GrpcListen::Default(SocketAddr::new(http.ip(), 5055)),
        Some("off" | "none" | "") => GrpcListen::Off,
        Some(a) => GrpcListen::At(
            a.parse()
                .with_context(|| format!("--osmand-listen: '{a}' is not an address (or off)"))?,
        ),
    })
}

async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    if let (Some(store), Some(log)) = (args.store.clone(), args.log.clone()) {
        // Distributed mode: a new consumer group reads the log from its first record.
        let (_keep, mut never) = tokio::sync::watch::channel(false);
        let stores = open_stores(&store_url(Some(store))?, &mut never)
            .await?
            .context("the store did not open")?;
        let log = open_log(&log_url(Some(log))?)?;
        return replay_onto(&log, &stores, None, args.partial).await;
    }
    let stack = EmbeddedStack::open(&args.data.data_dir).context(
        "failed to open the data directory (is `udaconnect serve` still running on it?)",
    )?;
    let topic = udaconnect_core::record::LOCATION_TOPIC;
    let earliest = stack.embedded_log.earliest_offset(topic)?;
    if earliest > 0 && !args.partial {
        anyhow::bail!(
            "the log starts at offset {earliest}: older records were deleted once stored \
             (--log-retention stored) and only the store holds them, so clearing it to replay \
             would lose them. `udaconnect replay --data-dir {} --partial` stores what the log \
             holds over the store as it is",
            args.data.data_dir.display()
        );
    }
    let total = stack.embedded_log.end_offset(topic)? - earliest;
    let stores = Stores {
        persons: stack.persons.clone(),
        locations: stack.locations.clone(),
        ids: stack.ids.clone(),
        keys: stack.keys.clone(),
    };
    replay_onto(&stack.log, &stores, Some(total), args.partial).await?;
    stack.mark_location_store_incomplete(false)
}

/// Rebuilds `locations` from `log` with progress; `total`, when the log knows its length,
/// gives the bar an end.
async fn replay_onto(
    log: &DynLog,
    stores: &Stores,
    total: Option<u64>,
    partial: bool,
) -> anyhow::Result<()> {
    let Stores {
        persons,
        locations,
        keys,
        ..
    } = stores;
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "replay {bar:40} {pos}/{len} records  {per_sec}  eta {eta}"
    } else {
        "replay {pos} records  {per_sec}  {msg}"
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let persons: DynPersonDirectory = Arc::new(LocalPersons::new(persons.clone()));
    let progress = |done, left| {
        bar.set_position(done);
        bar.set_message(format!("{left} to go"));
    };
    let mode = if partial {
        ReplayMode::Partial
    } else {
        ReplayMode::Rebuild
    };
    let report = rebuild::replay(log, locations, &persons, keys, mode, progress)
        .await
        .context("replay failed")?;
    bar.finish_and_clear();
    let stored = locations.count().await?;
    tracing::info!(
        records = report.records,
        stored = report.stored,
        rejected = report.rejected,
        shredded = report.shredded,
        locations_in_store = stored,
        "replay finished"
    );
    eprintln!(
        "replayed {} records: {} locations stored, {} rejected, {} of erased persons skipped",
        report.records, report.stored, report.rejected, report.shredded
    );
    Ok(())
}

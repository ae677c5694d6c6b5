//! The role subcommands (distributed mode: one role per process, its store and log by URL):
//! their flags, and the [`RoleSettings`] each builds from them.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use udaconnect_core::auth::{GatewayKey, TokenSecret};
use udaconnect_server::mail::MailSettings;
use udaconnect_server::roles::connection_api::EngineKind;
use udaconnect_server::roles::Role;
use udaconnect_server::signin::SignInSettings;
use udaconnect_server::wiring::backends::{store_url_from_db_env, LogUrl, StoreUrl};
use udaconnect_server::wiring::context::Upstreams;
use udaconnect_server::{Application, GrpcListen, HttpSettings, RoleSettings};

use crate::cli::{
    osmand_listen, AccessArgs, ListenFileArg, MailArgs, MqttArgs, OsmAndListenArg, SignInArgs,
};
use crate::retention::RetentionArgs;

#[derive(Args, Debug)]
pub struct TrackerMqttArgs {
    #[command(flatten)]
    pub role: RoleArgs,
    #[command(flatten)]
    pub person_api: PersonApiArg,
    #[command(flatten)]
    pub mqtt: MqttArgs,
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

#[derive(Args, Debug)]
pub struct MailerArgs {
    #[command(flatten)]
    pub role: RoleArgs,
    #[command(flatten)]
    pub mail: MailArgs,
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

const DEFAULT_DATA_DIR: &str = "./udaconnect-data";

pub(crate) fn store_url(flag: Option<String>) -> anyhow::Result<StoreUrl> {
    match flag {
        Some(s) => s
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--store: {e}")),
        None => Ok(store_url_from_db_env(|k| std::env::var(k).ok())
            .map_err(|e: String| anyhow::anyhow!("{e}"))?
            .unwrap_or_else(|| StoreUrl::Embedded(DEFAULT_DATA_DIR.into()))),
    }
}

pub(crate) fn log_url(flag: Option<String>) -> anyhow::Result<LogUrl> {
    flag.unwrap_or_else(|| DEFAULT_DATA_DIR.to_string())
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--log: {e}"))
}

/// A role's settings from the flags every role takes (and `--person-api` for the roles that
/// ask it about persons); the rest at their defaults.
pub(crate) fn role_settings(
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

/// Runs one role in this process until it is stopped.
pub(crate) async fn run_role(settings: RoleSettings) -> anyhow::Result<()> {
    Application::build_role(settings)
        .await?
        .run_until_stopped()
        .await
}

impl LocationApiArgs {
    pub fn settings(self) -> anyhow::Result<RoleSettings> {
        let mut settings = role_settings(Role::LocationApi, self.role, Some(self.person_api))?;
        settings.grpc_listen = Some(self.grpc_listen);
        settings.http.osmand_listen =
            osmand_listen(self.osmand.osmand_listen.as_deref(), settings.http.listen)?;
        Ok(settings)
    }
}

impl LocationConsumerArgs {
    pub fn settings(self) -> anyhow::Result<RoleSettings> {
        let mut settings = role_settings(Role::LocationConsumer, self.role, Some(self.person_api))?;
        settings.retention = self.retention.settings();
        Ok(settings)
    }
}

impl ConnectionApiArgs {
    pub fn settings(self) -> anyhow::Result<RoleSettings> {
        let mut settings = role_settings(Role::ConnectionApi, self.role, Some(self.person_api))?;
        settings.engine = match self.engine {
            EngineArg::Store => EngineKind::Store,
            EngineArg::Memory => EngineKind::Memory,
        };
        settings.retention = self.retention.settings();
        settings.http.edge.live = self.live.settings()?;
        Ok(settings)
    }
}

impl MailerArgs {
    pub fn settings(self) -> anyhow::Result<RoleSettings> {
        let mut settings = role_settings(Role::Mailer, self.role, None)?;
        settings.mail = self.mail.settings()?;
        Ok(settings)
    }
}

impl WebArgs {
    pub fn settings(self) -> anyhow::Result<RoleSettings> {
        let mut settings = role_settings(Role::Web, self.role, Some(self.person_api))?;
        settings.upstreams = settings
            .upstreams
            .with(Role::LocationApi, self.location_api)
            .with(Role::ConnectionApi, self.connection_api);
        settings.http.web_dir = self.web_dir;
        Ok(settings)
    }
}

impl TrackerMqttArgs {
    pub fn settings(self) -> anyhow::Result<RoleSettings> {
        let mut settings = role_settings(Role::TrackerMqtt, self.role, Some(self.person_api))?;
        settings.mqtt = Some(
            self.mqtt
                .settings()?
                .context("tracker-mqtt needs --mqtt URL")?,
        );
        Ok(settings)
    }
}

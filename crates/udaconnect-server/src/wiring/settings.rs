//! What a process is told to do: `serve`'s settings, a role process's, and how either serves
//! HTTP. The CLI builds them from flags; tests and benchmarks build them directly.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::access::AuthMode;
use crate::http::edge::EdgeSettings;
use crate::ingest::trackers::mqtt::MqttSettings;
use crate::retention::RetentionSettings;
use crate::roles::connection_api::EngineKind;
use crate::roles::Role;
use crate::signin::SignInSettings;
use crate::wiring::backends::{LogUrl, StoreUrl};
use crate::wiring::context::Upstreams;
use crate::wiring::retention::LogRetention;

/// What `serve` needs to know.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub http: HttpSettings,
    pub data_dir: PathBuf,
    /// Load the original demo data on first start.
    pub demo: bool,
    /// With `demo`: attendees of the live simulated conference (0: none).
    pub demo_attendees: u32,
    /// Where location-api's gRPC services listen.
    pub grpc: GrpcListen,
    /// How long the log keeps records already stored.
    pub log_retention: LogRetention,
    /// How long pings are kept (`--retention`; default: for ever).
    pub retention: RetentionSettings,
    /// The mailer: SMTP, or `.eml` files under the data directory.
    pub mail: crate::mail::MailSettings,
    /// tracker-mqtt's broker: the role runs only when one is given.
    pub mqtt: Option<MqttSettings>,
}

/// What one role process needs to know.
#[derive(Debug, Clone)]
pub struct RoleSettings {
    pub role: Role,
    pub http: HttpSettings,
    /// location-api's gRPC services.
    pub grpc_listen: Option<SocketAddr>,
    pub store: StoreUrl,
    pub log: LogUrl,
    /// Where the roles this one calls answer.
    pub upstreams: Upstreams,
    /// connection-api: what answers queries.
    pub engine: EngineKind,
    /// mailer: SMTP, or `.eml` files under its data directory.
    pub mail: crate::mail::MailSettings,
    /// tracker-mqtt: its broker (required there, unused by the other roles).
    pub mqtt: Option<MqttSettings>,
    /// location-consumer, connection-api's index: how long pings are kept.
    pub retention: RetentionSettings,
    /// What the role presents to person-api when it looks persons up (an organizer's token),
    /// needed there when person-api runs with `--auth on`.
    pub service_token: Option<udaconnect_core::auth::TokenSecret>,
    /// The key of the web gateway's assertions: web signs with it, the roles behind it
    /// believe only what it signs. Without one, with `--auth on`, a role that answers API
    /// requests listens only on loopback.
    pub gateway_key: Option<udaconnect_core::auth::GatewayKey>,
}

impl RoleSettings {
    /// `role` serving `http` on `store` and `log`, everything else at its default: no gRPC,
    /// no upstreams, no token for person-api, no gateway key.
    pub fn new(role: Role, http: HttpSettings, store: StoreUrl, log: LogUrl) -> Self {
        RoleSettings {
            role,
            http,
            grpc_listen: None,
            store,
            log,
            upstreams: Upstreams::default(),
            engine: EngineKind::default(),
            mail: Default::default(),
            mqtt: None,
            retention: Default::default(),
            service_token: None,
            gateway_key: None,
        }
    }
}

/// How a process serves HTTP, whichever roles it runs.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Where HTTP is served (the roles' API, /health, /ready, /metrics); port 0 picks a free
    /// port (tests).
    pub listen: SocketAddr,
    /// Where to write the bound addresses (see [`listen_file`](crate::wiring::listen_file)).
    pub listen_file: Option<PathBuf>,
    /// Serve the web page from this directory instead of the copy built in.
    pub web_dir: Option<PathBuf>,
    /// Origins, besides pages on this machine, whose pages may call the API.
    pub cors_origins: Vec<String>,
    /// Connections, request checks, ingest's rate and time rules, the stop's deadline.
    pub edge: EdgeSettings,
    /// Where location-api also takes OsmAnd protocol reports (Traccar Client, OsmAnd) at any
    /// path, as the apps expect on port 5055.
    pub osmand_listen: GrpcListen,
    /// Sign-in: the public URL of links, self-registration, the proxy in front.
    pub signin: SignInSettings,
    /// Whether requests must say who is asking (on by default; off only on loopback).
    pub auth: AuthMode,
    /// Where `/metrics` is also served without a token, for scrapers (default: nowhere).
    pub metrics_listen: Option<SocketAddr>,
}

impl HttpSettings {
    /// HTTP on `listen`, every other setting at its default (no OsmAnd listener).
    pub fn on(listen: SocketAddr) -> Self {
        HttpSettings {
            listen,
            listen_file: None,
            web_dir: None,
            cors_origins: Vec::new(),
            edge: EdgeSettings::default(),
            signin: SignInSettings::default(),
            auth: AuthMode::On,
            osmand_listen: GrpcListen::Off,
            metrics_listen: None,
        }
    }

    /// [`HttpSettings::on`] with the original open contract (`--auth off`): for tests of that
    /// contract and benchmarks, on loopback addresses.
    pub fn open(listen: SocketAddr) -> Self {
        HttpSettings {
            auth: AuthMode::Off,
            ..HttpSettings::on(listen)
        }
    }
}

/// Where `serve` offers gRPC (and location-api its OsmAnd listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcListen {
    Off,
    /// The usual port: taken if free, else gRPC is off with a warning (a second `serve` on
    /// one machine still starts).
    Default(SocketAddr),
    /// Asked for: failing to bind it fails the start.
    At(SocketAddr),
}

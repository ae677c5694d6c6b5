//! What a process is to be: [`Plan`], made from `serve`'s settings or a role's, and read by
//! [`process`](super::process) (what to bind) and [`run`](super::run) (which roles to start
//! with which options and backends).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::access::{AuthMode, GatewayTrust};
use crate::roles::Role;
use crate::wiring::backends::static_member_id;
use crate::wiring::context::{Backends, ByUrl, Mode, Options};
use crate::wiring::embedded::EmbeddedStack;
use crate::wiring::settings::{GrpcListen, HttpSettings, RoleSettings, ServeSettings};

/// The process to build, whichever command asked for it.
pub(super) struct Plan {
    pub(super) label: &'static str,
    pub(super) roles: Vec<Role>,
    pub(super) mode: Mode,
    pub(super) listen: SocketAddr,
    pub(super) grpc: GrpcListen,
    pub(super) osmand: GrpcListen,
    pub(super) listen_file: Option<PathBuf>,
    pub(super) cors_origins: Vec<String>,
    pub(super) auth: AuthMode,
    /// Whether the process signs or believes the web gateway's assertions (roles apart).
    pub(super) gateway: GatewayTrust,
    pub(super) metrics_listen: Option<SocketAddr>,
    pub(super) options: Options,
    pub(super) backends: Backends,
    /// `serve --demo`: the live simulated conference's attendees (0: none).
    pub(super) demo_attendees: Option<u32>,
}

impl Plan {
    /// `roles` served as `http` says, with no gRPC listener, no demo and every other option
    /// at its default; the HTTP settings the roles read themselves go to their options.
    fn new(
        label: &'static str,
        roles: Vec<Role>,
        mode: Mode,
        http: HttpSettings,
        backends: Backends,
    ) -> Plan {
        Plan {
            label,
            roles,
            mode,
            listen: http.listen,
            grpc: GrpcListen::Off,
            osmand: http.osmand_listen,
            listen_file: http.listen_file,
            cors_origins: http.cors_origins,
            auth: http.auth,
            gateway: GatewayTrust::Alone,
            metrics_listen: http.metrics_listen,
            options: Options {
                web_dir: http.web_dir,
                edge: http.edge,
                signin: http.signin,
                ..Options::default()
            },
            backends,
            demo_attendees: None,
        }
    }

    /// `serve`: every role together on the opened data directory.
    pub(super) fn serve(settings: ServeSettings, stack: EmbeddedStack) -> Plan {
        let mut plan = Plan::new(
            "serve",
            // tracker-mqtt only with a broker to read.
            Role::ALL
                .into_iter()
                .filter(|r| *r != Role::TrackerMqtt || settings.mqtt.is_some())
                .collect(),
            Mode::Together,
            settings.http,
            Backends::Embedded(Box::new(stack)),
        );
        plan.grpc = settings.grpc;
        plan.options.log_retention = settings.log_retention;
        plan.options.retention = settings.retention;
        plan.options.mail = settings.mail;
        plan.options.mqtt = settings.mqtt;
        plan.demo_attendees = settings.demo.then_some(settings.demo_attendees);
        plan
    }

    /// One role apart, its store and log by URL, each opened once the role starts.
    pub(super) fn role(settings: RoleSettings) -> Plan {
        let role = settings.role;
        let backends = Backends::Urls(Box::new(ByUrl {
            store: settings.store,
            log: settings.log,
            stores: None,
            opened_log: None,
            member_id: static_member_id(role.name(), settings.http.listen.port(), |k| {
                std::env::var(k).ok()
            }),
        }));
        let mut plan = Plan::new(
            role.name(),
            vec![role],
            Mode::Apart,
            settings.http,
            backends,
        );
        plan.grpc = settings.grpc_listen.map_or(GrpcListen::Off, GrpcListen::At);
        plan.options.engine = settings.engine;
        plan.options.upstreams = settings.upstreams;
        plan.options.mail = settings.mail;
        plan.options.mqtt = settings.mqtt;
        plan.options.service_token = settings.service_token;
        plan.options.retention = settings.retention;
        plan.gateway = match settings.gateway_key {
            Some(key) if role == Role::Web => GatewayTrust::Signs(key),
            Some(key) => GatewayTrust::Behind(key),
            None => GatewayTrust::Alone,
        };
        plan
    }
}

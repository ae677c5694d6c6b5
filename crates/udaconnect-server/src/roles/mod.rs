//! The roles UdaConnect runs: the one table of them, and the one way each is started.
//!
//! Every fact about a role lives in [`Role::spec`]: its name, the roles it calls, the roles it
//! hands stored batches to in one process, its default port, the `/api` paths it owns and its
//! readiness checks. The CLI's default ports, the gateway's routing, the start order and
//! `/ready` read them from here. Each role has one `start` function (a module below), used by
//! `serve` (every role in one process, in [`start_order`]) and by a role subcommand (one role)
//! alike; [`start`] is the one match over roles that picks it. A new role is a new variant, a
//! row in [`Role::spec`] and a module: the compiler points at every place that must know it.

pub mod connection_api;
pub mod location_api;
pub mod location_consumer;
pub mod mailer;
pub mod person_api;
pub mod tracker_mqtt;
pub mod web;

use std::fmt;
use std::net::SocketAddr;

use axum::Router;
use tokio::task::JoinHandle;

use udaconnect_core::ports::DynLog;

use crate::http::ops::{self, Check};
use crate::ingest::grpc::GrpcIngest;
use crate::wiring::backends::Stores;
use crate::wiring::context::Context;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    PersonApi,
    LocationApi,
    LocationConsumer,
    ConnectionApi,
    Mailer,
    Web,
    TrackerMqtt,
}

/// What the table says about a role.
#[derive(Debug)]
pub struct RoleSpec {
    /// The subcommand, the name in logs and in `/ready`.
    pub name: &'static str,
    /// Its name as a readiness check of the roles that call it (`person_api`).
    pub check_name: &'static str,
    /// Roles it calls. In one process they start first; apart, they are reached over the
    /// network, and each is a readiness check of the caller.
    pub depends_on: &'static [Role],
    /// Roles it hands every stored batch to when they share its process (the consumer feeds
    /// connection-api's index and live view): they start first, so no batch goes unseen.
    pub feeds: &'static [Role],
    /// Where it listens when `--listen` is not given (on 127.0.0.1).
    pub default_port: u16,
    /// The `/api` paths it answers, for the gateway: `*` is one path segment, a trailing
    /// `**` any number of them. The most specific pattern wins.
    pub paths: &'static [&'static str],
    /// What its `/ready` checks, besides the roles it calls when they run apart.
    pub readiness: &'static [Readiness],
}

/// A dependency `/ready` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    PersonStore,
    LocationStore,
    /// The log takes appends.
    Log,
    /// The contact index has read the log to its end (an index built from the topic).
    ContactIndex,
    /// location-consumer holds partitions of the log and stores what waits there.
    Consumer,
    /// A role this one calls, by its own `/ready`.
    Upstream(Role),
    /// The data directory's file system has room (see [`DiskGuard`](crate::wiring::disk)).
    Disk,
    /// The mailer's SMTP server answers, or answered lately (only with `--smtp`).
    Smtp,
    /// tracker-mqtt is connected to its MQTT broker.
    MqttBroker,
}

impl Readiness {
    pub fn name(self) -> &'static str {
        match self {
            Readiness::PersonStore => "person_store",
            Readiness::LocationStore => "location_store",
            Readiness::Log => "log",
            Readiness::ContactIndex => "contact_index",
            Readiness::Consumer => "consumer",
            Readiness::Upstream(role) => role.spec().check_name,
            Readiness::Disk => "disk",
            Readiness::Smtp => "smtp",
            Readiness::MqttBroker => "mqtt_broker",
        }
    }
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 7] = [
        Role::PersonApi,
        Role::LocationApi,
        Role::LocationConsumer,
        Role::ConnectionApi,
        Role::Mailer,
        Role::Web,
        Role::TrackerMqtt,
    ];

    /// The table.
    pub const fn spec(self) -> &'static RoleSpec {
        match self {
            Role::PersonApi => &RoleSpec {
                name: "person-api",
                check_name: "person_api",
                depends_on: &[],
                feeds: &[],
                default_port: 30002,
                paths: &[
                    "persons/**",
                    "me",
                    "me/tokens/**",
                    "me/visibility/**",
                    "me/sessions/**",
                    "me/email",
                    "me/secondary-email",
                    "accounts/**",
                    "auth/**",
                ],
                readiness: &[Readiness::PersonStore],
            },
            Role::LocationApi => &RoleSpec {
                name: "location-api",
                check_name: "location_api",
                depends_on: &[Role::PersonApi],
                feeds: &[],
                default_port: 30004,
                paths: &["locations/**", "me/locations/**", "me/devices/**", "osmand"],
                readiness: &[Readiness::LocationStore, Readiness::Log],
            },
            Role::LocationConsumer => &RoleSpec {
                name: "location-consumer",
                check_name: "location_consumer",
                depends_on: &[Role::PersonApi],
                feeds: &[Role::ConnectionApi],
                default_port: 30005,
                paths: &[],
                readiness: &[
                    Readiness::LocationStore,
                    Readiness::Log,
                    Readiness::Consumer,
                ],
            },
            Role::ConnectionApi => &RoleSpec {
                name: "connection-api",
                check_name: "connection_api",
                depends_on: &[Role::PersonApi],
                feeds: &[],
                default_port: 30003,
                paths: &[
                    "persons/*/connection/**",
                    "persons/*/contacts/**",
                    "persons/*/summary/**",
                    "me/connection/**",
                    "me/contacts/**",
                    "me/reveals/**",
                    "me/export",
                    "me/summary/**",
                    "live/**",
                    "venue/**",
                ],
                readiness: &[Readiness::LocationStore, Readiness::ContactIndex],
            },
            Role::Mailer => &RoleSpec {
                name: "mailer",
                check_name: "mailer",
                depends_on: &[],
                feeds: &[],
                default_port: 30006,
                paths: &[],
                readiness: &[Readiness::Log, Readiness::Smtp],
            },
            Role::Web => &RoleSpec {
                name: "web",
                check_name: "web",
                depends_on: &[Role::PersonApi, Role::LocationApi, Role::ConnectionApi],
                feeds: &[],
                default_port: 30000,
                paths: &[],
                readiness: &[],
            },
            // In `serve` only with `--mqtt`; it shares location-api's ingest when both run in
            // one process, and comes last in `ALL` so location-api starts first.
            Role::TrackerMqtt => &RoleSpec {
                name: "tracker-mqtt",
                check_name: "tracker_mqtt",
                depends_on: &[Role::PersonApi],
                feeds: &[],
                default_port: 30007,
                paths: &[],
                readiness: &[
                    Readiness::LocationStore,
                    Readiness::Log,
                    Readiness::MqttBroker,
                ],
            },
        }
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// Roles this one calls.
    pub fn depends_on(self) -> &'static [Role] {
        self.spec().depends_on
    }

    /// Where the role listens by default.
    pub fn default_listen(self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.spec().default_port))
    }

    /// Where the role answers by default, for the roles that call it.
    pub fn default_url(self) -> String {
        format!("http://{}", self.default_listen())
    }

    /// The role that answers an `/api` path, by the table's path patterns (and OwnTracks'
    /// `/pub`, at the path the OwnTracks Recorder has, location-api's).
    pub fn owner_of(path: &str) -> Option<Role> {
        if path == "/pub" {
            return Some(Role::LocationApi);
        }
        let rest = path.strip_prefix("/api/")?;
        let segments: Vec<&str> = rest.split('/').collect();
        Role::ALL
            .iter()
            .flat_map(|&role| role.spec().paths.iter().map(move |p| (role, *p)))
            .filter_map(|(role, pattern)| Some((specificity(pattern, &segments)?, role)))
            .max_by_key(|(score, _)| *score)
            .map(|(_, role)| role)
    }
}

/// How many segments `pattern` fixes when it matches `segments`; `None` when it does not.
fn specificity(pattern: &str, segments: &[&str]) -> Option<usize> {
    let parts: Vec<&str> = pattern.split('/').collect();
    let (fixed, open) = match parts.split_last() {
        Some((&"**", fixed)) => (fixed, true),
        _ => (&parts[..], false),
    };
    let fits = segments.len() == fixed.len() || (open && segments.len() >= fixed.len());
    let matches = fits && fixed.iter().zip(segments).all(|(p, s)| *p == "*" || p == s);
    matches.then_some(fixed.len())
}

/// `roles` in an order where each starts after the roles it calls and the roles it feeds
/// (those among `roles`); among roles free to start, the order of [`Role::ALL`].
pub fn start_order(roles: &[Role]) -> Vec<Role> {
    let mut order: Vec<Role> = Vec::with_capacity(roles.len());
    while order.len() < roles.len() {
        let next = Role::ALL.into_iter().find(|r| {
            roles.contains(r)
                && !order.contains(r)
                && r.spec()
                    .depends_on
                    .iter()
                    .chain(r.spec().feeds)
                    .all(|before| !roles.contains(before) || order.contains(before))
        });
        match next {
            Some(r) => order.push(r),
            None => unreachable!("the role table has a cycle"),
        }
    }
    order
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A started role: what the process serves for it and waits for when it stops.
pub struct RunningRole {
    /// Its HTTP API.
    pub router: Router,
    /// Its readiness checks, each one the table declares for it.
    pub checks: Vec<(Readiness, Check)>,
    /// Its background work (the consumer, a follower of the log), ended by the role's stop
    /// signal.
    pub tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    /// Its gRPC services, which the process serves on its gRPC listener.
    pub grpc: Option<GrpcIngest>,
    /// What it answers on the OsmAnd listener (`--osmand-listen`), if anything.
    pub osmand: Option<Router>,
}

impl RunningRole {
    pub fn new(router: Router) -> RunningRole {
        RunningRole {
            router,
            checks: Vec::new(),
            tasks: Vec::new(),
            grpc: None,
            osmand: None,
        }
    }
}

/// The checks of a role that uses the location store and the log.
fn location_store_and_log(stores: &Stores, log: &DynLog) -> Vec<(Readiness, Check)> {
    vec![
        (Readiness::LocationStore, ops::ping_check(&stores.locations)),
        (Readiness::Log, ops::ping_check(log)),
    ]
}

/// Starts `role` in the process `ctx` describes. `Ok(None)` when the process was asked to
/// stop before the role's store opened.
pub async fn start(role: Role, ctx: &mut Context) -> anyhow::Result<Option<RunningRole>> {
    match role {
        Role::PersonApi => person_api::start(ctx).await,
        Role::LocationApi => location_api::start(ctx).await,
        Role::LocationConsumer => location_consumer::start(ctx).await,
        Role::ConnectionApi => connection_api::start(ctx).await,
        Role::Mailer => mailer::start(ctx).await,
        Role::Web => web::start(ctx).await,
        Role::TrackerMqtt => tracker_mqtt::start(ctx).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_order_respects_dependencies_and_feeds() {
        let order = start_order(&Role::ALL);
        assert_eq!(order.len(), Role::ALL.len());
        for (i, role) in order.iter().enumerate() {
            for before in role.spec().depends_on.iter().chain(role.spec().feeds) {
                let j = order.iter().position(|r| r == before).unwrap();
                assert!(j < i, "{role} starts before {before}");
            }
        }
        assert_eq!(start_order(&[Role::Web]), [Role::Web]);
        assert_eq!(
            start_order(&[Role::LocationConsumer, Role::ConnectionApi]),
            [Role::ConnectionApi, Role::LocationConsumer]
        );
    }

    #[test]
    fn names_ports_and_checks_are_unique() {
        for (i, a) in Role::ALL.iter().enumerate() {
            for b in &Role::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
                assert_ne!(a.spec().check_name, b.spec().check_name);
                assert_ne!(a.spec().default_port, b.spec().default_port);
            }
            assert_eq!(a.spec().check_name, a.name().replace('-', "_"));
        }
    }

    #[test]
    fn routes_each_path_to_its_owner() {
        use Role::{ConnectionApi, LocationApi, PersonApi};
        for (path, owner) in [
            ("/api/persons", Some(PersonApi)),
            ("/api/persons/5", Some(PersonApi)),
            ("/api/persons/lookup", Some(PersonApi)),
            ("/api/persons/5/other", Some(PersonApi)),
            ("/api/auth/login", Some(PersonApi)),
            ("/api/auth/logout", Some(PersonApi)),
            ("/api/persons/5/connection", Some(ConnectionApi)),
            ("/api/persons/5/contacts", Some(ConnectionApi)),
            ("/api/persons/5/summary", Some(ConnectionApi)),
            ("/api/locations", Some(LocationApi)),
            ("/api/locations/batch", Some(LocationApi)),
            ("/api/locations/7", Some(LocationApi)),
            ("/api/me/devices/3", Some(LocationApi)),
            ("/api/osmand", Some(LocationApi)),
            ("/pub", Some(LocationApi)),
            ("/api/live/stream", Some(ConnectionApi)),
            ("/api/live", Some(ConnectionApi)),
            ("/api/venue", Some(ConnectionApi)),
            ("/api/me", Some(PersonApi)),
            ("/api/me/tokens", Some(PersonApi)),
            ("/api/me/tokens/3", Some(PersonApi)),
            ("/api/me/visibility", Some(PersonApi)),
            ("/api/me/sessions", Some(PersonApi)),
            ("/api/me/sessions/3", Some(PersonApi)),
            ("/api/me/email", Some(PersonApi)),
            ("/api/me/secondary-email", Some(PersonApi)),
            ("/api/accounts", Some(PersonApi)),
            ("/api/accounts/3/role", Some(PersonApi)),
            ("/api/me/contacts", Some(ConnectionApi)),
            ("/api/me/contacts/c_x/reveal", Some(ConnectionApi)),
            ("/api/me/reveals", Some(ConnectionApi)),
            ("/api/me/export", Some(ConnectionApi)),
            ("/api/me/connection", Some(ConnectionApi)),
            ("/api/me/summary", Some(ConnectionApi)),
            ("/api/me/locations", Some(LocationApi)),
            ("/api/me/other", None),
            ("/api/other", None),
            ("/api/", None),
            ("/api", None),
            ("/health", None),
        ] {
            assert_eq!(Role::owner_of(path), owner, "{path}");
        }
    }

    #[test]
    fn default_ports_are_the_deployments() {
        let ports: Vec<(Role, u16)> = Role::ALL
            .iter()
            .map(|r| (*r, r.default_listen().port()))
            .collect();
        assert_eq!(
            ports,
            [
                (Role::PersonApi, 30002),
                (Role::LocationApi, 30004),
                (Role::LocationConsumer, 30005),
                (Role::ConnectionApi, 30003),
                (Role::Mailer, 30006),
                (Role::Web, 30000),
                (Role::TrackerMqtt, 30007),
            ]
        );
    }
}

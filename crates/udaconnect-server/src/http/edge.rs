//! How a process meets the outside: how many connections it holds, how long it waits for a
//! slow or silent client, which Host names it answers to, how fast one client may send pings,
//! and how long a stop may take. One set of settings for every role, in `serve` and apart.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::TimeDelta;
use udaconnect_core::validate::DEFAULT_FUTURE_SKEW;

use crate::query::limits::QueryLimits;

/// The edge's settings; [`Default`] is what the command line defaults to.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeSettings {
    /// Most client connections held at once, HTTP and gRPC together. `None`: derived from the
    /// open-files limit, leaving room for the stores, the log and outgoing connections.
    pub max_connections: Option<usize>,
    /// Once the first byte of a request has arrived, its line and headers must arrive whole
    /// within this: a client trickling its head a byte at a time (slowloris) is closed.
    pub header_timeout: Duration,
    /// A connection waiting for a request (new, or after an answer) is closed after this.
    pub idle_timeout: Duration,
    /// At SIGTERM, requests still under way after this are cut off; event streams end at once.
    pub shutdown_timeout: Duration,
    /// Host names (without port) requests may carry besides localhost and IP addresses; `*`
    /// takes any. Empty: the listen address's host and localhost (and any IP address when
    /// listening on every interface).
    pub allowed_hosts: Vec<String>,
    /// Ingest requests (HTTP posts of pings, gRPC calls) one client address may send per
    /// second, with a burst of one second's worth; 0: no limit.
    pub ingest_rate: u32,
    /// Pings timed more than this ahead of the server's clock are refused.
    pub future_skew: TimeDelta,
    /// Free bytes on the data directory's file system below which a warning is logged.
    pub disk_low_space: u64,
    /// Free bytes below which ingest answers 503 and `/ready` fails.
    pub disk_min_free: u64,
    /// connection-api's bounds on heavy queries.
    pub query: QueryLimits,
    /// connection-api's venue live: the plan, and how many people every count and anonymous
    /// dot organizers see stands among.
    pub live: crate::query::live::LiveSettings,
    /// The unit of `speed` in OsmAnd query and form fields (knots, as the protocol says).
    pub osmand_speed_unit: udaconnect_core::tracker::SpeedUnit,
    /// Tracker messages (OwnTracks, OsmAnd protocol, MQTT) one device may send per second;
    /// 0: no limit.
    pub device_rate: u32,
    /// Messages a device may send at once beyond its rate (a phone sending what it kept
    /// while offline).
    pub device_burst: u32,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        EdgeSettings {
            max_connections: None,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(10),
            allowed_hosts: Vec::new(),
            ingest_rate: DEFAULT_INGEST_RATE,
            future_skew: DEFAULT_FUTURE_SKEW,
            disk_low_space: crate::wiring::disk::DEFAULT_LOW_SPACE,
            disk_min_free: crate::wiring::disk::DEFAULT_MIN_FREE,
            query: QueryLimits::default(),
            live: Default::default(),
            osmand_speed_unit: udaconnect_core::tracker::SpeedUnit::Knots,
            device_rate: DEFAULT_DEVICE_RATE,
            device_burst: DEFAULT_DEVICE_BURST,
        }
    }
}

/// Ten times what a phone sends when it reports every second, its fastest setting: a phone
/// only floods when something is wrong with it.
pub const DEFAULT_DEVICE_RATE: u32 = 10;

/// A phone back online sends what it kept, one message after another: ten minutes' worth at
/// one a second pass at once, the rest at the rate (the apps send again what was refused).
pub const DEFAULT_DEVICE_BURST: u32 = 600;

/// Above what one client reaches in the benchmark (about 45,000 single-ping posts a second
/// from 64 connections on two cores), so bulk loads are never throttled by default; an
/// operator facing the internet sets a lower one.
pub const DEFAULT_INGEST_RATE: u32 = 100_000;

/// Most connections held by default, whatever the file limit: an idle connection costs a
/// buffer and a task, and tens of thousands of them are an attack, not a conference.
const DEFAULT_CONNECTION_CEILING: usize = 32_768;

/// Files kept for the process's own use beyond client connections: the stores (SQLite's
/// database, journal and shared memory per connection), the log's segments and index, Kafka
/// and PostgreSQL connections, the runtime's own descriptors.
fn reserved_files(limit: u64) -> u64 {
    (limit / 4).max(64)
}

/// Raises the soft open-files limit to the hard one (capped at 2^20), where the system allows
/// it; returns the limit now in force, `None` where it cannot be read.
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    const MOST: u64 = 1 << 20;
    let now = getrlimit(Resource::Nofile);
    let soft = now.current;
    let wanted = now.maximum.unwrap_or(MOST).min(MOST);
    if soft.is_some_and(|s| s >= wanted) {
        return soft;
    }
    let raised = Rlimit {
        current: Some(wanted),
        maximum: now.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => Some(wanted),
        Err(e) => {
            tracing::warn!(error = %e, limit = ?soft, "could not raise the open-files limit");
            soft
        }
    }
}

/// How many connections each listener may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCaps {
    pub http: usize,
    /// Zero when the process serves no gRPC.
    pub grpc: usize,
}

impl EdgeSettings {
    /// The caps under `files` (the open-files limit): the configured total, or what the limit
    /// leaves after `reserved_files`, never more than the limit allows. With gRPC, a quarter
    /// goes to it, so neither listener can take the other's room.
    pub fn connection_caps(&self, files: Option<u64>, grpc: bool) -> ConnectionCaps {
        let room = files.map(|f| f.saturating_sub(reserved_files(f)).max(2) as usize);
        let total = match (self.max_connections, room) {
            (Some(asked), Some(room)) if asked > room => {
                tracing::warn!(
                    asked,
                    room,
                    "--max-connections is above what the open-files limit leaves; using the latter"
                );
                room
            }
            (Some(asked), _) => asked.max(1),
            (None, Some(room)) => room.min(DEFAULT_CONNECTION_CEILING),
            (None, None) => DEFAULT_CONNECTION_CEILING,
        };
        if grpc {
            let grpc = (total / 4).max(1);
            ConnectionCaps {
                http: total.saturating_sub(grpc).max(1),
                grpc,
            }
        } else {
            ConnectionCaps {
                http: total,
                grpc: 0,
            }
        }
    }

    /// The Host names requests to a process listening on `listen` may carry (see
    /// [`EdgeSettings::allowed_hosts`]).
    pub fn hosts(&self, listen: SocketAddr) -> AllowedHosts {
        let mut names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
            normalise_host(&listen.ip().to_string()),
        ];
        names.extend(
            self.allowed_hosts
                .iter()
                .map(|h| normalise_host(h.trim()))
                .filter(|h| !h.is_empty()),
        );
        AllowedHosts {
            any: names.iter().any(|h| h == "*"),
            // An IP address is no rebinding risk (a page whose origin is an address of this
            // server is this server's): on every interface, or where names are listed (a
            // deployment, whose probes dial the pod's address), any address is answered.
            any_ip: listen.ip().is_unspecified() || !self.allowed_hosts.is_empty(),
            names,
        }
    }
}

/// Which Host names are answered: DNS rebinding makes a browser send a page's requests to
/// this server under the attacker's name, which is refused here.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    any: bool,
    any_ip: bool,
    names: Vec<String>,
}

impl AllowedHosts {
    /// Whether `host` (a Host header or URI authority, with or without port) is answered.
    pub fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        let name = normalise_host(strip_port(host));
        (self.any_ip && name.parse::<std::net::IpAddr>().is_ok()) || self.names.contains(&name)
    }
}

/// `host:port` or `[v6]:port` to the host alone.
fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        // One colon: a port; more: a bare IPv6 address.
        Some((h, _)) if !h.contains(':') => h,
        _ => authority,
    }
}

/// Lowercase, without brackets or a trailing dot, so `LOCALHOST.` and `localhost` agree.
fn normalise_host(h: &str) -> String {
    h.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_leave_room_for_the_process_and_split_with_grpc() {
        let s = EdgeSettings::default();
        assert_eq!(
            s.connection_caps(Some(1024), false),
            ConnectionCaps { http: 768, grpc: 0 }
        );
        assert_eq!(
            s.connection_caps(Some(256), true),
            ConnectionCaps {
                http: 144,
                grpc: 48
            }
        );
        assert_eq!(s.connection_caps(Some(1 << 20), false).http, 32_768);
        let asked = EdgeSettings {
            max_connections: Some(10_000),
            ..EdgeSettings::default()
        };
        // Asked for more than the limit leaves: held to what it leaves.
        assert_eq!(asked.connection_caps(Some(1024), false).http, 768);
        assert_eq!(asked.connection_caps(Some(1 << 20), false).http, 10_000);
    }

    #[test]
    fn default_hosts_are_the_listen_host_and_localhost() {
        let s = EdgeSettings::default();
        let local = s.hosts("127.0.0.1:30000".parse().unwrap());
        for ok in [
            "localhost",
            "LOCALHOST:30000",
            "127.0.0.1:30000",
            "[::1]:8080",
            "localhost.",
        ] {
            assert!(local.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:30000",
            "10.0.0.1",
            "localhost.evil.example",
        ] {
            assert!(!local.allows(bad), "{bad}");
        }
        let every = s.hosts("0.0.0.0:30000".parse().unwrap());
        assert!(every.allows("10.1.2.3:30000"));
        assert!(every.allows("[fe80::1]:30000"));
        assert!(!every.allows("rebind.evil.example"));
    }

    #[test]
    fn listed_hosts_are_added_to_the_defaults() {
        let s = EdgeSettings {
            allowed_hosts: vec!["Connect.Example.org".into(), " person-api ".into()],
            ..EdgeSettings::default()
        };
        let hosts = s.hosts("127.0.0.1:30000".parse().unwrap());
        assert!(hosts.allows("connect.example.org:443"));
        assert!(hosts.allows("person-api:30002"));
        assert!(hosts.allows("localhost"));
        assert!(hosts.allows("10.0.0.1"));
        assert!(!hosts.allows("location-api"));
        let any = EdgeSettings {
            allowed_hosts: vec!["*".into()],
            ..EdgeSettings::default()
        };
        assert!(any
            .hosts("127.0.0.1:1".parse().unwrap())
            .allows("anything.example"));
    }
}

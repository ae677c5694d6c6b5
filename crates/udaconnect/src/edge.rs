//! The flags of a server's edge (connections, request checks, ingest's rate and time rules,
//! the bounds on queries), the same for `serve` and every role; and what organizers may see
//! of the venue live (`serve`, connection-api).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use udaconnect_core::venue::Venue;
use udaconnect_server::http::edge::{
    EdgeSettings, DEFAULT_DEVICE_BURST, DEFAULT_DEVICE_RATE, DEFAULT_INGEST_RATE,
};
use udaconnect_server::query::limits::{
    default_query_concurrency, QueryLimits, DEFAULT_MAX_CONNECTION_ROWS, DEFAULT_QUERY_QUEUE,
};
use udaconnect_server::query::live::{LiveSettings, DEFAULT_K_ANONYMITY};

#[derive(Args, Debug, Clone)]
pub struct EdgeArgs {
    /// Most client connections held at once, HTTP and gRPC together (a quarter for gRPC).
    /// Default: what the open-files limit leaves after a quarter kept for the stores and the
    /// log, at most 32768. At the cap a new client replaces the connection idle longest.
    #[arg(long, env = "UDACONNECT_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Once a request's first byte has arrived, its line and headers must arrive within this
    /// (slowloris clients are closed), e.g. `10s`.
    #[arg(long, env = "UDACONNECT_HEADER_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub header_timeout: Duration,
    /// A connection waiting for a request (new, or kept alive after an answer) is closed after
    /// this.
    #[arg(long, env = "UDACONNECT_IDLE_TIMEOUT", default_value = "60s", value_parser = duration)]
    pub idle_timeout: Duration,
    /// At SIGTERM, requests still under way after this are cut off (event streams end at
    /// once).
    #[arg(long, env = "UDACONNECT_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub shutdown_timeout: Duration,
    /// Host names requests may carry besides localhost and IP addresses, comma-separated (`*`:
    /// any). Others are refused with 421 (DNS rebinding). Default: the listen address's host
    /// and localhost, and any IP address when listening on every interface.
    #[arg(long, env = "UDACONNECT_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Ingest requests (HTTP posts of pings, gRPC calls) one client address may send per
    /// second, with a burst of one second's worth; beyond it 429 with Retry-After. 0: no limit.
    #[arg(long, env = "UDACONNECT_INGEST_RATE_LIMIT", default_value_t = DEFAULT_INGEST_RATE)]
    pub ingest_rate_limit: u32,
    /// Pings whose fix time is further ahead of the server's clock than this are refused
    /// (422), e.g. `1d`, `2h`.
    #[arg(long, env = "UDACONNECT_MAX_FUTURE_SKEW", default_value = "1d", value_parser = duration)]
    pub max_future_skew: Duration,
    /// Free space on the data directory's file system below which a warning is logged, e.g.
    /// `1GiB` (roles with a local data directory, and `serve`).
    #[arg(long, env = "UDACONNECT_DISK_LOW_SPACE", default_value = "1GiB", value_parser = bytes)]
    pub disk_low_space: u64,
    /// Free space below which ingest answers 503 with Retry-After and `/ready` fails, until
    /// space returns, e.g. `64MiB`.
    #[arg(long, env = "UDACONNECT_DISK_MIN_FREE", default_value = "64MiB", value_parser = bytes)]
    pub disk_min_free: u64,
    /// A connection or contacts query not answered within this (waiting for a place
    /// included) is stopped and answered 503, e.g. `15s`.
    #[arg(long, env = "UDACONNECT_QUERY_DEADLINE", default_value = "15s", value_parser = duration)]
    pub query_deadline: Duration,
    /// Connection and contacts queries computed at once. Default: the number of cores.
    #[arg(long, env = "UDACONNECT_QUERY_CONCURRENCY", value_parser = clap::value_parser!(u32).range(1..))]
    pub query_concurrency: Option<u32>,
    /// Queries waiting for a place at most; beyond, 503 with Retry-After at once.
    #[arg(long, env = "UDACONNECT_QUERY_QUEUE", default_value_t = DEFAULT_QUERY_QUEUE)]
    pub query_queue: usize,
    /// Most locations in one connection answer; a larger one is refused (422, narrow the
    /// window). The default answers a whole day of a 1,000-attendee venue (about 100,000).
    #[arg(long, env = "UDACONNECT_MAX_CONNECTION_ROWS",
        default_value_t = DEFAULT_MAX_CONNECTION_ROWS as u64,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connection_rows: u64,
    /// Metres: pings less accurate than this (as their phone said) do not count as meetings
    /// in contacts queries that give no `max_accuracy`. Pings without an accuracy count.
    #[arg(long, env = "UDACONNECT_MAX_ACCURACY",
        default_value_t = udaconnect_core::track::defaults::MAX_ACCURACY_M,
        value_parser = clap::value_parser!(u32)
            .range(0..=i64::from(udaconnect_core::track::defaults::MAX_ACCURACY_LIMIT_M)))]
    pub max_accuracy: u32,
    /// The unit of `speed` in OsmAnd query and form fields: `knots` (the OsmAnd protocol, and
    /// Traccar Client), `mps` or `kmh` (some apps and versions). Traccar Client's JSON body
    /// is always metres per second.
    #[arg(long, env = "UDACONNECT_OSMAND_SPEED_UNIT", default_value = "knots",
        value_parser = udaconnect_core::tracker::SpeedUnit::parse)]
    pub osmand_speed_unit: udaconnect_core::tracker::SpeedUnit,
    /// Tracker messages (OwnTracks over HTTP or MQTT, OsmAnd protocol) one registered device
    /// may send per second; beyond its burst, 429 with Retry-After over HTTP, and over MQTT
    /// the message is acknowledged and dropped (counted as `limited`). 0: no limit.
    #[arg(long, env = "UDACONNECT_DEVICE_RATE_LIMIT", default_value_t = DEFAULT_DEVICE_RATE)]
    pub device_rate_limit: u32,
    /// Messages a device may send at once above its rate (a phone back online sending what
    /// it kept).
    #[arg(long, env = "UDACONNECT_DEVICE_BURST", default_value_t = DEFAULT_DEVICE_BURST,
        value_parser = clap::value_parser!(u32).range(1..))]
    pub device_burst: u32,
}

/// What organizers may see of the venue live (serve, connection-api).
#[derive(Args, Debug)]
pub struct LiveArgs {
    /// Heat cells and room or booth counts are shown only when at least this many distinct
    /// people were there in the window, and an anonymous dot only among at least this many
    /// in its place; smaller counts are left out. 2 at least.
    #[arg(long, env = "UDACONNECT_K_ANONYMITY", default_value_t = DEFAULT_K_ANONYMITY,
        value_parser = clap::value_parser!(u32).range(2..))]
    pub k_anonymity: u32,
    /// The venue's plan, a JSON file shaped as `GET /api/venue` answers (name, origin,
    /// width_m, depth_m, areas): the live view counts people per room and booth on it.
    #[arg(long, env = "UDACONNECT_VENUE")]
    pub venue: Option<PathBuf>,
}

impl LiveArgs {
    pub fn settings(&self) -> anyhow::Result<LiveSettings> {
        let venue = match &self.venue {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("failed to read --venue {}", path.display()))?;
                let venue: Venue = serde_json::from_str(&text)
                    .with_context(|| format!("--venue {}: not a venue plan", path.display()))?;
                Some(venue)
            }
        };
        Ok(LiveSettings {
            k_anonymity: self.k_anonymity,
            venue,
        })
    }
}

impl EdgeArgs {
    pub fn settings(&self) -> EdgeSettings {
        EdgeSettings {
            max_connections: self.max_connections,
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            shutdown_timeout: self.shutdown_timeout,
            allowed_hosts: self.allowed_hosts.clone(),
            ingest_rate: self.ingest_rate_limit,
            future_skew: chrono::TimeDelta::from_std(self.max_future_skew)
                .unwrap_or(chrono::TimeDelta::MAX),
            disk_low_space: self.disk_low_space,
            disk_min_free: self.disk_min_free,
            query: QueryLimits {
                deadline: self.query_deadline,
                concurrency: self
                    .query_concurrency
                    .map_or_else(default_query_concurrency, |n| n as usize),
                queue: self.query_queue,
                max_connection_rows: usize::try_from(self.max_connection_rows)
                    .unwrap_or(usize::MAX),
                max_accuracy_m: self.max_accuracy,
            },
            // serve's and connection-api's own flags (`LiveArgs`) set it.
            live: Default::default(),
            osmand_speed_unit: self.osmand_speed_unit,
            device_rate: self.device_rate_limit,
            device_burst: self.device_burst,
        }
    }
}

/// A duration as a number and a unit: `500ms`, `10s`, `5m`, `2h`, `1d` (a bare number is
/// seconds).
pub fn duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("'{raw}' is not a duration (like 500ms, 10s, 5m, 2h, 1d)"))?;
    let seconds = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        other => return Err(format!("unknown unit '{other}' (ms, s, m, h, d)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("'{raw}': {e}"))
}

/// A size in bytes: a number with an optional unit, `B`, `KiB`, `MiB`, `GiB`, `TiB` (or `K`,
/// `M`, `G`, `T`, the same powers of 1024).
pub fn bytes(raw: &str) -> Result<u64, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{raw}' is not a size (like 64MiB, 1GiB)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        other => return Err(format!("unknown unit '{other}' (B, KiB, MiB, GiB, TiB)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("'{raw}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_their_units() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("1d"), Ok(Duration::from_secs(86_400)));
        assert!(duration("soon").is_err());
        assert!(duration("3w").is_err());
        assert!(duration("").is_err());
    }

    #[test]
    fn sizes_read_with_their_units() {
        assert_eq!(bytes("64MiB"), Ok(64 << 20));
        assert_eq!(bytes("1GiB"), Ok(1 << 30));
        assert_eq!(bytes("2g"), Ok(2 << 30));
        assert_eq!(bytes("4096"), Ok(4096));
        assert_eq!(bytes("0"), Ok(0));
        assert!(bytes("lots").is_err());
        assert!(bytes("1PiB").is_err());
        assert!(bytes("99999999999TiB").is_err());
        assert!(bytes("").is_err());
    }
}

//! Where a role's store and log are: parsed from `--store` / `--log`, and opened.
//!
//! - store: `postgres://user:password@host:port/db` (PostgreSQL + PostGIS), or the path of an
//!   embedded data directory;
//! - log: `kafka://host:port[,host:port]` (Apache Kafka protocol), or the path of an embedded
//!   data directory.
//!
//! A role started before its database or broker waits for it, retrying with backoff, so a
//! whole distributed stack can start in any order.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use udaconnect_core::ports::{retry_delay, DynIdLeaser, DynLocationStore, DynLog, DynPersonStore};
use udaconnect_log::{EmbeddedLog, EmbeddedLogOptions, KafkaLog, KafkaOptions};
use udaconnect_store::{
    FileIdLeaser, Postgres, PostgresIdLeaser, PostgresLocationStore, PostgresPersonStore,
    SqliteLocationStore, SqlitePersonStore,
};

/// Where the stores are.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Postgres(String),
    Embedded(PathBuf),
}

/// Where the log is.
#[derive(Clone, PartialEq, Eq)]
pub enum LogUrl {
    /// Bootstrap brokers, `host:port[,host:port]`, and librdkafka properties given as the URL's
    /// query (`kafka://h:9092?security.protocol=ssl&group.instance.id=consumer-0`).
    Kafka {
        brokers: String,
        config: Vec<(String, String)>,
    },
    Embedded(PathBuf),
}

impl fmt::Debug for LogUrl {
    /// Property values may be secrets (SASL passwords): only their names are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Debug for StoreUrl {
    /// Never prints a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Postgres(url) => write!(f, "Postgres({})", redact(url)),
            StoreUrl::Embedded(p) => write!(f, "Embedded({})", p.display()),
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Postgres(url) => f.write_str(&redact(url)),
            StoreUrl::Embedded(p) => write!(f, "{}", p.display()),
        }
    }
}

impl fmt::Display for LogUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogUrl::Kafka { brokers, config } if config.is_empty() => {
                write!(f, "kafka://{brokers}")
            }
            LogUrl::Kafka { brokers, config } => {
                let keys: Vec<String> = config.iter().map(|(k, _)| format!("{k}=***")).collect();
                write!(f, "kafka://{brokers}?{}", keys.join("&"))
            }
            LogUrl::Embedded(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A URL with its password replaced, for logs.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}

impl FromStr for StoreUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("the store location is empty".into());
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(s.to_string()));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(format!(
                "unknown store scheme '{scheme}': use postgres://user:password@host:port/db or a data directory path"
            ));
        }
        Ok(StoreUrl::Embedded(PathBuf::from(s)))
    }
}

impl FromStr for LogUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("the log location is empty".into());
        }
        if let Some(rest) = s.strip_prefix("kafka://") {
            let (brokers, query) = rest.split_once('?').unwrap_or((rest, ""));
            let brokers = brokers.trim_end_matches('/');
            let valid = !brokers.is_empty()
                && brokers.split(',').all(|b| {
                    b.rsplit_once(':')
                        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
                });
            if !valid {
                return Err(format!(
                    "'{s}' is not a Kafka bootstrap list: use kafka://host:port[,host:port]"
                ));
            }
            let mut config = Vec::new();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("'{pair}' in the Kafka URL is not name=value"))?;
                config.push((percent_decode(k)?, percent_decode(v)?));
            }
            return Ok(LogUrl::Kafka {
                brokers: brokers.to_string(),
                config,
            });
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(format!(
                "unknown log scheme '{scheme}': use kafka://host:port[,host:port] or a data directory path"
            ));
        }
        Ok(LogUrl::Embedded(PathBuf::from(s)))
    }
}

/// The original deployment's database settings (DB_USERNAME, DB_PASSWORD, DB_HOST, DB_PORT,
/// DB_NAME) as a store URL, when DB_HOST is set.
pub fn store_url_from_db_env(get: impl Fn(&str) -> Option<String>) -> Option<StoreUrl> {
    let host = get("DB_HOST").filter(|h| !h.trim().is_empty())?;
    let user = get("DB_USERNAME").unwrap_or_else(|| "postgres".into());
    let password = get("DB_PASSWORD").unwrap_or_default();
    let port = get("DB_PORT")
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "5432".into());
    let name = get("DB_NAME")
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "geoconnections".into());
    let auth = if password.is_empty() {
        percent_encode(&user)
    } else {
        format!("{}:{}", percent_encode(&user), percent_encode(&password))
    };
    Some(StoreUrl::Postgres(format!(
        "postgres://{auth}@{}:{}/{}",
        host.trim(),
        port.trim(),
        percent_encode(name.trim())
    )))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in '{s}'"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("'{s}' is not UTF-8 once decoded"))
}

/// Percent-encodes everything but unreserved characters (RFC 3986), so a password with `@`,
/// `:` or `/` survives inside a URL.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The opened stores.
#[derive(Clone)]
pub struct Stores {
    pub persons: DynPersonStore,
    pub locations: DynLocationStore,
    pub ids: DynIdLeaser,
}

/// Opens the stores, waiting for a database that does not answer yet. `Ok(None)` when
/// `shutdown` turned true first.
pub async fn open_stores(
    url: &StoreUrl,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<Option<Stores>> {
    match url {
        StoreUrl::Embedded(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("failed to create data directory {}", dir.display()))?;
            let persons = SqlitePersonStore::open(dir.join("persons.sqlite3"))
                .context("failed to open the person store")?;
            let locations = SqliteLocationStore::open(dir.join("locations.sqlite3"))
                .context("failed to open the location store")?;
            let ids = FileIdLeaser::new(dir.join("ids"), "location")
                .context("failed to open the id leaser")?;
            Ok(Some(Stores {
                persons: Arc::new(persons),
                locations: Arc::new(locations),
                ids: Arc::new(ids),
            }))
        }
        StoreUrl::Postgres(conn) => {
            let mut attempt = 0;
            let pg = loop {
                match Postgres::connect(conn).await {
                    Ok(pg) => break pg,
                    Err(e) => {
                        tracing::warn!(store = %url, error = %e, attempt, "database not ready; retrying");
                        let delay = retry_delay(attempt).max(Duration::from_millis(500));
                        attempt += 1;
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = shutdown.wait_for(|s| *s) => return Ok(None),
                        }
                    }
                }
            };
            Ok(Some(Stores {
                persons: Arc::new(PostgresPersonStore::new(&pg)),
                locations: Arc::new(PostgresLocationStore::new(&pg)),
                ids: Arc::new(PostgresIdLeaser::new(&pg, "location")),
            }))
        }
    }
}

/// Opens the log. Kafka clients connect lazily, so a broker that is down makes appends fail
/// (503) until it returns, not the start.
pub fn open_log(url: &LogUrl) -> anyhow::Result<DynLog> {
    match url {
        LogUrl::Embedded(dir) => {
            let log = EmbeddedLog::open(dir.join("log"), EmbeddedLogOptions::default())
                .context("failed to open the embedded log")?;
            Ok(Arc::new(log))
        }
        LogUrl::Kafka { brokers, config } => {
            let options = KafkaOptions {
                client_config: config.clone(),
                ..KafkaOptions::default()
            };
            let log = KafkaLog::connect(brokers, options)
                .with_context(|| format!("failed to set up the Kafka client for {brokers}"))?;
            Ok(Arc::new(log))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        assert_eq!(
            "postgres://u:p@h:5432/db".parse::<StoreUrl>().unwrap(),
            StoreUrl::Postgres("postgres://u:p@h:5432/db".into())
        );
        assert_eq!(
            "./data".parse::<StoreUrl>().unwrap(),
            StoreUrl::Embedded("./data".into())
        );
        assert!("mysql://x".parse::<StoreUrl>().is_err());
        assert!(" ".parse::<StoreUrl>().is_err());
        let shown = format!(
            "{:?}",
            "postgres://u:secret@h/db".parse::<StoreUrl>().unwrap()
        );
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn log_urls() {
        assert_eq!(
            "kafka://a:9092,b:9093".parse::<LogUrl>().unwrap(),
            LogUrl::Kafka {
                brokers: "a:9092,b:9093".into(),
                config: vec![]
            }
        );
        let with_config = "kafka://a:9092?sasl.password=p%40ss&group.instance.id=c-0"
            .parse::<LogUrl>()
            .unwrap();
        assert_eq!(
            with_config,
            LogUrl::Kafka {
                brokers: "a:9092".into(),
                config: vec![
                    ("sasl.password".into(), "p@ss".into()),
                    ("group.instance.id".into(), "c-0".into())
                ]
            }
        );
        assert!(!format!("{with_config:?}").contains("p@ss"));
        assert!("kafka://a:9092?novalue".parse::<LogUrl>().is_err());
        assert!("kafka://".parse::<LogUrl>().is_err());
        assert!("kafka://host".parse::<LogUrl>().is_err());
        assert!("kafka://host:port".parse::<LogUrl>().is_err());
        assert_eq!(
            "/var/lib/udaconnect".parse::<LogUrl>().unwrap(),
            LogUrl::Embedded("/var/lib/udaconnect".into())
        );
    }

    #[test]
    fn original_db_env() {
        let env = |k: &str| {
            match k {
                "DB_HOST" => Some("postgres"),
                "DB_USERNAME" => Some("ct_admin"),
                "DB_PASSWORD" => Some("p@ss:w/rd"),
                "DB_PORT" => Some("5432"),
                "DB_NAME" => Some("geoconnections"),
                _ => None,
            }
            .map(str::to_string)
        };
        assert_eq!(
            store_url_from_db_env(env),
            Some(StoreUrl::Postgres(
                "postgres://ct_admin:p%40ss%3Aw%2Frd@postgres:5432/geoconnections".into()
            ))
        );
        assert_eq!(store_url_from_db_env(|_| None), None);
    }
}

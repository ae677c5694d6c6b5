//! Where a role's store and log are: parsed from `--store` / `--log`, and opened.
//!
//! - store: `postgres://user:password@host:port/db` (PostgreSQL + PostGIS), or the path of an
//!   embedded data directory;
//! - log: `kafka://host:port[,host:port]` (Apache Kafka protocol), or the path of an embedded
//!   data directory.
//!
//! PostgreSQL and Kafka are cargo features (`postgres`, `kafka`, both on by default); a binary
//! built without one refuses its URLs with an error naming the feature. Passwords (in a
//! PostgreSQL URL, or any Kafka client property) are kept as secrets: Display and Debug never
//! show them. A role started before its database or broker waits for it, retrying with
//! backoff, so a whole distributed stack can start in any order.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use percent_encoding::percent_decode_str;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;
use udaconnect_core::ports::{
    DynAccountStore, DynIdLeaser, DynLocationStore, DynLog, DynPersonStore,
};
use udaconnect_log::{EmbeddedLog, EmbeddedLogOptions};
use udaconnect_store::{
    FileIdLeaser, SqliteAccountStore, SqliteKeyStore, SqliteLocationStore, SqlitePersonStore,
};
use url::Url;

use crate::keys::Keyring;

/// Where the stores are.
#[derive(Debug, Clone)]
pub enum StoreUrl {
    Postgres(PostgresUrl),
    Embedded(PathBuf),
}

/// A PostgreSQL connection URL, its password kept apart.
#[derive(Clone)]
pub struct PostgresUrl {
    /// The URL as given, password and all: only for the database client.
    full: SecretString,
    /// The URL with its password replaced by `***`, for logs.
    shown: Url,
}

/// Where the log is.
#[derive(Debug, Clone)]
pub enum LogUrl {
    Kafka(KafkaUrl),
    Embedded(PathBuf),
}

/// Bootstrap brokers, `host:port[,host:port]`, and librdkafka properties given as the URL's
/// query (`kafka://h:9092?security.protocol=ssl&group.instance.id=consumer-0`).
#[derive(Clone)]
pub struct KafkaUrl {
    pub brokers: String,
    /// Property values may be secrets (SASL passwords): only their names are ever shown.
    pub config: Vec<(String, SecretString)>,
}

/// Which engines this binary has.
#[derive(Debug, Clone, Copy)]
struct Compiled {
    postgres: bool,
    kafka: bool,
}

const COMPILED: Compiled = Compiled {
    postgres: cfg!(feature = "postgres"),
    kafka: cfg!(feature = "kafka"),
};

/// The error for a URL of an engine this binary was built without.
pub fn not_compiled_in(scheme: &str, feature: &str) -> String {
    format!("{scheme}:// needs the `{feature}` feature, which this binary was built without")
}

impl PostgresUrl {
    fn parse(s: &str) -> Result<PostgresUrl, String> {
        let url = Url::parse(s).map_err(|e| format!("'{}' is not a URL: {e}", redact(s)))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!(
                "'{}' names no host: use postgres://user:password@host:port/db",
                redact(s)
            ));
        }
        Ok(PostgresUrl::from_url(url))
    }

    fn from_url(url: Url) -> PostgresUrl {
        let mut shown = url.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        PostgresUrl {
            full: url.as_str().into(),
            shown,
        }
    }

    /// The URL the database client connects with, password included.
    pub fn expose(&self) -> &str {
        self.full.expose_secret()
    }
}

/// A URL with its password replaced, for an error about a URL that does not parse.
fn redact(s: &str) -> String {
    match s.split_once("://").and_then(|(scheme, rest)| {
        let (userinfo, host) = rest.split_once('@')?;
        let user = userinfo.split(':').next().unwrap_or("");
        Some(format!("{scheme}://{user}:***@{host}"))
    }) {
        Some(r) => r,
        None => s.to_string(),
    }
}

impl KafkaUrl {
    pub fn new(brokers: impl Into<String>, config: Vec<(String, String)>) -> KafkaUrl {
        KafkaUrl {
            brokers: brokers.into(),
            config: config.into_iter().map(|(k, v)| (k, v.into())).collect(),
        }
    }

    fn parse(s: &str, rest: &str) -> Result<KafkaUrl, String> {
        let (brokers, query) = rest.split_once('?').unwrap_or((rest, ""));
        let brokers = brokers.trim_end_matches('/');
        // Each bootstrap server as the authority of a URL: a host and a port.
        let valid = !brokers.is_empty()
            && brokers.split(',').all(|b| {
                Url::parse(&format!("kafka://{b}")).is_ok_and(|u| {
                    u.host_str().is_some_and(|h| !h.is_empty())
                        && u.port().is_some()
                        && u.path().is_empty()
                        && u.username().is_empty()
                })
            });
        if !valid {
            return Err(format!(
                "'{}' is not a Kafka bootstrap list: use kafka://host:port[,host:port]",
                s.split_once('?').map_or(s, |(b, _)| b)
            ));
        }
        let mut config = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("'{pair}' in the Kafka URL is not name=value"))?;
            // Percent-decoded as in a URL, where `+` is a plus (a password may hold one).
            let decode = |x: &str| {
                percent_decode_str(x)
                    .decode_utf8()
                    .map(|d| d.into_owned())
                    .map_err(|_| format!("'{k}' in the Kafka URL is not UTF-8 once decoded"))
            };
            config.push((decode(k)?, decode(v)?.into()));
        }
        Ok(KafkaUrl {
            brokers: brokers.to_string(),
            config,
        })
    }

    /// The client properties, values exposed: only for the Kafka client.
    pub fn exposed_config(&self) -> Vec<(String, String)> {
        self.config
            .iter()
            .map(|(k, v)| (k.clone(), v.expose_secret().to_string()))
            .collect()
    }
}

impl LogUrl {
    /// A Kafka log at `brokers` with these client properties.
    pub fn kafka(brokers: impl Into<String>, config: Vec<(String, String)>) -> LogUrl {
        LogUrl::Kafka(KafkaUrl::new(brokers, config))
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.shown.as_str())
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresUrl({self})")
    }
}

impl fmt::Display for KafkaUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kafka://{}", self.brokers)?;
        for (i, (k, _)) in self.config.iter().enumerate() {
            write!(f, "{}{k}=***", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

impl fmt::Debug for KafkaUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KafkaUrl({self})")
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Postgres(url) => url.fmt(f),
            StoreUrl::Embedded(p) => write!(f, "{}", p.display()),
        }
    }
}

impl fmt::Display for LogUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogUrl::Kafka(url) => url.fmt(f),
            LogUrl::Embedded(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A URL's scheme, or `None` for a path.
fn scheme(s: &str) -> Option<&str> {
    s.split_once("://").map(|(scheme, _)| scheme)
}

fn parse_store_url(s: &str, compiled: Compiled) -> Result<StoreUrl, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("the store location is empty".into());
    }
    match scheme(s) {
        None => Ok(StoreUrl::Embedded(PathBuf::from(s))),
        Some(scheme @ ("postgres" | "postgresql")) if !compiled.postgres => {
            Err(not_compiled_in(scheme, "postgres"))
        }
        Some("postgres" | "postgresql") => PostgresUrl::parse(s).map(StoreUrl::Postgres),
        Some(scheme) => Err(format!(
            "unknown store scheme '{scheme}': use postgres://user:password@host:port/db or a data directory path"
        )),
    }
}

fn parse_log_url(s: &str, compiled: Compiled) -> Result<LogUrl, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("the log location is empty".into());
    }
    match s.split_once("://") {
        None => Ok(LogUrl::Embedded(PathBuf::from(s))),
        Some(("kafka", _)) if !compiled.kafka => Err(not_compiled_in("kafka", "kafka")),
        Some(("kafka", rest)) => KafkaUrl::parse(s, rest).map(LogUrl::Kafka),
        Some((scheme, _)) => Err(format!(
            "unknown log scheme '{scheme}': use kafka://host:port[,host:port] or a data directory path"
        )),
    }
}

impl FromStr for StoreUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_store_url(s, COMPILED)
    }
}

impl FromStr for LogUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_log_url(s, COMPILED)
    }
}

/// The original deployment's database settings (DB_USERNAME, DB_PASSWORD, DB_HOST, DB_PORT,
/// DB_NAME) as a store URL, when DB_HOST is set.
pub fn store_url_from_db_env(
    get: impl Fn(&str) -> Option<String>,
) -> Result<Option<StoreUrl>, String> {
    db_env_url(get, COMPILED)
}

fn db_env_url(
    get: impl Fn(&str) -> Option<String>,
    compiled: Compiled,
) -> Result<Option<StoreUrl>, String> {
    let Some(host) = get("DB_HOST").filter(|h| !h.trim().is_empty()) else {
        return Ok(None);
    };
    let set = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let user = get("DB_USERNAME").unwrap_or_else(|| "postgres".into());
    let password = get("DB_PASSWORD").unwrap_or_default();
    let port = set("DB_PORT").unwrap_or_else(|| "5432".into());
    let name = set("DB_NAME").unwrap_or_else(|| "geoconnections".into());
    let bad = |what: &str| format!("DB_HOST, DB_PORT: {what}");
    let mut url = Url::parse(&format!("postgres://{}:{}", host.trim(), port.trim()))
        .map_err(|e| bad(&e.to_string()))?;
    // The url crate percent-encodes what it is given: a password with `@`, `:` or `/` survives.
    url.set_username(&user)
        .map_err(|()| bad("no username fits"))?;
    if !password.is_empty() {
        url.set_password(Some(&password))
            .map_err(|()| bad("no password fits"))?;
    }
    url.path_segments_mut()
        .map_err(|()| bad("no database name fits"))?
        .push(name.trim());
    if !compiled.postgres {
        return Err(not_compiled_in("postgres", "postgres"));
    }
    Ok(Some(StoreUrl::Postgres(PostgresUrl::from_url(url))))
}

/// The opened stores.
#[derive(Clone)]
pub struct Stores {
    pub persons: DynPersonStore,
    pub locations: DynLocationStore,
    pub ids: DynIdLeaser,
    /// Persons' keys for the log, one cache per process.
    pub keys: Arc<Keyring>,
}

/// Opens the stores, waiting for a database that does not answer yet. `Ok(None)` when
/// `shutdown` turned true first.
pub async fn open_stores(
    url: &StoreUrl,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<Option<Stores>> {
    match url {
        StoreUrl::Embedded(dir) => Ok(Some(open_embedded_stores(dir)?)),
        #[cfg(feature = "postgres")]
        StoreUrl::Postgres(conn) => open_postgres(conn, shutdown).await,
        #[cfg(not(feature = "postgres"))]
        StoreUrl::Postgres(_) => {
            let _ = shutdown;
            anyhow::bail!(not_compiled_in("postgres", "postgres"))
        }
    }
}

/// The key store's file in an embedded data directory: a file of its own, deleting by
/// overwriting (see `migrations/sqlite/keys.sql`).
pub const KEY_STORE_FILE: &str = "keys.sqlite3";

/// The location store's file in an embedded data directory.
pub const LOCATION_STORE_FILE: &str = "locations.sqlite3";

/// The embedded stores in `dir`, created when missing.
pub fn open_embedded_stores(dir: &std::path::Path) -> anyhow::Result<Stores> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create data directory {}", dir.display()))?;
    let persons = SqlitePersonStore::open(dir.join(PERSON_STORE_FILE))
        .context("failed to open the person store")?;
    let locations = SqliteLocationStore::open(dir.join(LOCATION_STORE_FILE))
        .context("failed to open the location store")?;
    let ids =
        FileIdLeaser::new(dir.join("ids"), "location").context("failed to open the id leaser")?;
    let keys =
        SqliteKeyStore::open(dir.join(KEY_STORE_FILE)).context("failed to open the key store")?;
    Ok(Stores {
        persons: Arc::new(persons),
        locations: Arc::new(locations),
        ids: Arc::new(ids),
        keys: Arc::new(Keyring::new(Arc::new(keys))),
    })
}

/// The account store's file in an embedded data directory: a file of its own, deleting by
/// overwriting (see `migrations/sqlite/accounts.sql`).
pub const ACCOUNT_STORE_FILE: &str = "accounts.sqlite3";

/// The person store's file in an embedded data directory.
pub const PERSON_STORE_FILE: &str = "persons.sqlite3";

/// What an administrative command on accounts opens: the account store, and the persons to
/// check the persons it names against.
#[derive(Clone)]
pub struct AccountStores {
    pub accounts: DynAccountStore,
    /// `None` in a data directory that has no person store yet (so no person).
    pub persons: Option<DynPersonStore>,
}

/// Opens the account store at `url`, once: for a command, which fails rather than waits. On
/// a data directory it works beside a running `serve` (SQLite in WAL mode, busy timeouts).
pub async fn open_account_stores(url: &StoreUrl) -> anyhow::Result<AccountStores> {
    match url {
        StoreUrl::Embedded(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("failed to create data directory {}", dir.display()))?;
            let accounts = SqliteAccountStore::open(dir.join(ACCOUNT_STORE_FILE))
                .context("failed to open the account store")?;
            let persons_file = dir.join(PERSON_STORE_FILE);
            let persons: Option<DynPersonStore> = if persons_file.exists() {
                Some(Arc::new(
                    SqlitePersonStore::open(persons_file)
                        .context("failed to open the person store")?,
                ))
            } else {
                None
            };
            Ok(AccountStores {
                accounts: Arc::new(accounts),
                persons,
            })
        }
        #[cfg(feature = "postgres")]
        StoreUrl::Postgres(conn) => {
            use udaconnect_store::{Postgres, PostgresAccountStore, PostgresPersonStore};
            let pg = Postgres::connect(conn.expose())
                .await
                .with_context(|| format!("failed to open the store {conn}"))?;
            Ok(AccountStores {
                accounts: Arc::new(PostgresAccountStore::new(&pg)),
                persons: Some(Arc::new(PostgresPersonStore::new(&pg))),
            })
        }
        #[cfg(not(feature = "postgres"))]
        StoreUrl::Postgres(_) => anyhow::bail!(not_compiled_in("postgres", "postgres")),
    }
}

/// The mailer's file of sent keys in an embedded data directory.
pub const MAIL_STORE_FILE: &str = "mail.sqlite3";

/// Opens the mailer's record of sent keys, waiting for a database that does not answer yet.
/// `Ok(None)` when `shutdown` turned true first.
pub async fn open_sent_mail(
    url: &StoreUrl,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<Option<udaconnect_core::mail::DynSentMail>> {
    match url {
        StoreUrl::Embedded(dir) => {
            let sent = udaconnect_store::SqliteSentMail::open(dir.join(MAIL_STORE_FILE))
                .context("failed to open the sent-mail record")?;
            Ok(Some(Arc::new(sent)))
        }
        #[cfg(feature = "postgres")]
        StoreUrl::Postgres(conn) => Ok(connect_postgres(conn, shutdown)
            .await?
            .map(|pg| Arc::new(udaconnect_store::PostgresSentMail::new(&pg)) as _)),
        #[cfg(not(feature = "postgres"))]
        StoreUrl::Postgres(_) => {
            let _ = shutdown;
            anyhow::bail!(not_compiled_in("postgres", "postgres"))
        }
    }
}

#[cfg(feature = "postgres")]
async fn open_postgres(
    url: &PostgresUrl,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<Option<Stores>> {
    use udaconnect_store::{
        PostgresIdLeaser, PostgresKeyStore, PostgresLocationStore, PostgresPersonStore,
    };
    let Some(pg) = connect_postgres(url, shutdown).await? else {
        return Ok(None);
    };
    Ok(Some(Stores {
        persons: Arc::new(PostgresPersonStore::new(&pg)),
        locations: Arc::new(PostgresLocationStore::new(&pg)),
        ids: Arc::new(PostgresIdLeaser::new(&pg, "location")),
        keys: Arc::new(Keyring::new(Arc::new(PostgresKeyStore::new(&pg)))),
    }))
}

/// Connects (and migrates), retrying until the database answers; `None` when `shutdown`
/// turned true first.
#[cfg(feature = "postgres")]
async fn connect_postgres(
    url: &PostgresUrl,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<Option<udaconnect_store::Postgres>> {
    use udaconnect_core::ports::retry_delay;
    use udaconnect_store::Postgres;
    let mut attempt = 0;
    let pg = loop {
        match Postgres::connect(url.expose()).await {
            Ok(pg) => break pg,
            Err(e) => {
                tracing::warn!(store = %url, error = %e, attempt, "database not ready; retrying");
                let delay = retry_delay(attempt).max(std::time::Duration::from_millis(500));
                attempt += 1;
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.wait_for(|s| *s) => return Ok(None),
                }
            }
        }
    };
    Ok(Some(pg))
}

/// Opens the log. Kafka clients connect lazily, so a broker that is down makes appends fail
/// (503) until it returns, not the start.
pub fn open_log(url: &LogUrl) -> anyhow::Result<DynLog> {
    open_log_as(url, None)
}

/// [`open_log`] for a process whose Kafka consumers join their groups as static members
/// named `member_id` (a `group.instance.id` in the URL's query wins).
pub fn open_log_as(url: &LogUrl, member_id: Option<String>) -> anyhow::Result<DynLog> {
    match url {
        LogUrl::Embedded(dir) => {
            let log = EmbeddedLog::open(dir.join("log"), EmbeddedLogOptions::default())
                .context("failed to open the embedded log")?;
            Ok(Arc::new(log))
        }
        #[cfg(feature = "kafka")]
        LogUrl::Kafka(kafka) => {
            let options = udaconnect_log::KafkaOptions {
                client_config: kafka.exposed_config(),
                group_instance_id: member_id,
                ..udaconnect_log::KafkaOptions::default()
            };
            let log = udaconnect_log::KafkaLog::connect(&kafka.brokers, options)
                .with_context(|| format!("failed to set up the Kafka client for {kafka}"))?;
            Ok(Arc::new(log))
        }
        #[cfg(not(feature = "kafka"))]
        LogUrl::Kafka(_) => {
            let _ = member_id;
            anyhow::bail!(not_compiled_in("kafka", "kafka"))
        }
    }
}

/// The stable name a role process's Kafka consumers join their groups under, so a restarted
/// replica takes its partitions back at once instead of after a rebalance and a session
/// timeout: `POD_NAME` (Kubernetes), else the host name, then the role (two roles on one host
/// differ) and the listen port (so do two replicas of one role). `None` when the process
/// listens on port 0, which names nothing stable (tests), or no name is known.
pub fn static_member_id(
    role: &str,
    port: u16,
    env: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    if port == 0 {
        return None;
    }
    let host = env("POD_NAME")
        .or_else(|| env("HOSTNAME"))
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())?;
    Some(format!("{host}-{role}-{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_member_ids_name_the_pod_or_host_the_role_and_the_port() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let both = env(&[("POD_NAME", "consumer-0"), ("HOSTNAME", "node-7")]);
        assert_eq!(
            static_member_id("location-consumer", 8080, both).as_deref(),
            Some("consumer-0-location-consumer-8080")
        );
        let host = env(&[("HOSTNAME", "node-7\n")]);
        assert_eq!(
            static_member_id("connection-api", 30003, host).as_deref(),
            Some("node-7-connection-api-30003")
        );
        // Two roles, or two replicas of one, on one host never share a name.
        let host = env(&[("HOSTNAME", "node-7")]);
        let a = static_member_id("location-consumer", 30005, host);
        let b = static_member_id("location-consumer", 30006, host);
        assert_ne!(a, b);
        assert_eq!(static_member_id("location-consumer", 0, host), None);
    }

    const ALL: Compiled = Compiled {
        postgres: true,
        kafka: true,
    };
    const NONE: Compiled = Compiled {
        postgres: false,
        kafka: false,
    };

    fn postgres(s: &str) -> PostgresUrl {
        match parse_store_url(s, ALL) {
            Ok(StoreUrl::Postgres(url)) => url,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn kafka(s: &str) -> KafkaUrl {
        match parse_log_url(s, ALL) {
            Ok(LogUrl::Kafka(url)) => url,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn store_urls() {
        let url = postgres("postgres://u:p@h:5432/db");
        assert_eq!(url.expose(), "postgres://u:p@h:5432/db");
        assert_eq!(url.to_string(), "postgres://u:***@h:5432/db");
        assert_eq!(
            postgres("postgresql://u@h/db").expose(),
            "postgresql://u@h/db"
        );
        assert!(matches!(
            parse_store_url("./data", ALL),
            Ok(StoreUrl::Embedded(p)) if p == std::path::Path::new("./data")
        ));
        assert!(parse_store_url("mysql://x", ALL).is_err());
        assert!(parse_store_url(" ", ALL).is_err());
        assert!(parse_store_url("postgres://", ALL).is_err());
    }

    /// A password reaches neither Display nor Debug, of the URL or of what holds it, nor an
    /// error about a URL that does not parse.
    #[test]
    fn passwords_are_never_shown() {
        let store = parse_store_url("postgres://u:secret@h/db", ALL).unwrap();
        for shown in [format!("{store:?}"), store.to_string()] {
            assert!(!shown.contains("secret"), "{shown}");
            assert!(shown.contains("postgres://u:***@h/db"), "{shown}");
        }
        let log = parse_log_url("kafka://a:9092?sasl.password=p%40ss+w", ALL).unwrap();
        for shown in [format!("{log:?}"), log.to_string()] {
            assert!(
                !shown.contains("p@ss") && !shown.contains("p%40ss"),
                "{shown}"
            );
            assert!(shown.contains("sasl.password=***"), "{shown}");
        }
        let bad = parse_store_url("postgres://u:secret@h:notaport/db", ALL).unwrap_err();
        assert!(!bad.contains("secret"), "{bad}");
    }

    #[test]
    fn log_urls() {
        let url = kafka("kafka://a:9092,b:9093");
        assert_eq!(url.brokers, "a:9092,b:9093");
        assert!(url.config.is_empty());
        let with_config = kafka("kafka://a:9092?sasl.password=p%40ss+w&group.instance.id=c-0");
        assert_eq!(with_config.brokers, "a:9092");
        assert_eq!(
            with_config.exposed_config(),
            [
                ("sasl.password".to_string(), "p@ss+w".to_string()),
                ("group.instance.id".to_string(), "c-0".to_string())
            ]
        );
        assert!(parse_log_url("kafka://a:9092?novalue", ALL).is_err());
        assert!(parse_log_url("kafka://", ALL).is_err());
        assert!(parse_log_url("kafka://host", ALL).is_err());
        assert!(parse_log_url("kafka://host:port", ALL).is_err());
        assert!(parse_log_url("kafka://a:9092,", ALL).is_err());
        assert!(parse_log_url("nats://a:4222", ALL).is_err());
        assert!(matches!(
            parse_log_url("/var/lib/udaconnect", ALL),
            Ok(LogUrl::Embedded(p)) if p == std::path::Path::new("/var/lib/udaconnect")
        ));
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
        let Ok(Some(StoreUrl::Postgres(url))) = db_env_url(env, ALL) else {
            panic!("DB_* make a PostgreSQL URL");
        };
        assert_eq!(
            url.expose(),
            "postgres://ct_admin:p%40ss%3Aw%2Frd@postgres:5432/geoconnections"
        );
        assert_eq!(
            url.to_string(),
            "postgres://ct_admin:***@postgres:5432/geoconnections"
        );
        assert!(matches!(db_env_url(|_| None, ALL), Ok(None)));
        assert_eq!(
            db_env_url(env, NONE).unwrap_err(),
            not_compiled_in("postgres", "postgres")
        );
    }

    /// A binary built without an engine says which feature its URL needs; the parsing path is
    /// the one the real binary runs, with the engines it was built with swapped out.
    #[test]
    fn urls_of_engines_not_compiled_in_name_the_feature() {
        assert_eq!(
            not_compiled_in("kafka", "kafka"),
            "kafka:// needs the `kafka` feature, which this binary was built without"
        );
        assert_eq!(
            parse_log_url("kafka://a:9092", NONE).unwrap_err(),
            "kafka:// needs the `kafka` feature, which this binary was built without"
        );
        assert_eq!(
            parse_store_url("postgres://u@h/db", NONE).unwrap_err(),
            "postgres:// needs the `postgres` feature, which this binary was built without"
        );
        assert_eq!(
            parse_store_url("postgresql://u@h/db", NONE).unwrap_err(),
            "postgresql:// needs the `postgres` feature, which this binary was built without"
        );
        // Paths need no feature.
        assert!(parse_log_url("./data", NONE).is_ok());
        assert!(parse_store_url("./data", NONE).is_ok());
    }

    #[cfg(not(feature = "kafka"))]
    #[test]
    fn this_binary_refuses_kafka_urls() {
        assert_eq!(
            "kafka://a:9092".parse::<LogUrl>().unwrap_err(),
            not_compiled_in("kafka", "kafka")
        );
    }

    #[cfg(not(feature = "postgres"))]
    #[test]
    fn this_binary_refuses_postgres_urls() {
        assert_eq!(
            "postgres://u@h/db".parse::<StoreUrl>().unwrap_err(),
            not_compiled_in("postgres", "postgres")
        );
    }
}

//! What a role's `start` is given: the process it runs in (every role together, or this one
//! apart), its stores and log, the person directory, and what the roles started before it in
//! the same process offer it. The difference between `serve` and a role process is here, in
//! which adapters the context hands out, not in the roles.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::watch;
use udaconnect_core::ports::{DynAccountStore, DynLog};
use udaconnect_core::record::LOCATION_TOPIC;

use crate::access::Authenticator;
use crate::feed::{self, OnErased, OnStored};
use crate::http::edge::EdgeSettings;
use crate::http::guard::RateLimiter;
use crate::http::upstream::Upstream;
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::persons::{DynPersonDirectory, PersonApiClient, RemotePersons};
use crate::query::engine::SharedIndex;
use crate::query::live::Live;
use crate::roles::connection_api::EngineKind;
use crate::roles::Role;
use crate::wiring::backends::{open_log_as, open_stores, LogUrl, StoreUrl, Stores};
use crate::wiring::disk::DiskGuard;
use crate::wiring::embedded::EmbeddedStack;
use crate::wiring::retention::LogRetention;

/// Where the roles of a process are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every role in this process (`serve`): roles call each other directly and share one
    /// embedded stack.
    Together,
    /// One role in this process: the roles it calls are reached over the network, its store
    /// and log by URL.
    Apart,
}

/// Where each role answers, for the roles that call it when they run apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstreams(BTreeMap<Role, String>);

impl Default for Upstreams {
    /// Every role at its default address on this machine.
    fn default() -> Self {
        Upstreams(Role::ALL.iter().map(|r| (*r, r.default_url())).collect())
    }
}

impl Upstreams {
    /// `role` answers at `url`.
    pub fn with(mut self, role: Role, url: impl Into<String>) -> Self {
        self.0.insert(role, url.into());
        self
    }

    pub fn url(&self, role: Role) -> anyhow::Result<&str> {
        self.0
            .get(&role)
            .map(String::as_str)
            .with_context(|| format!("no URL for {role}"))
    }
}

/// How the roles of a process are set up, besides their stores and log.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// web: serve the page from this directory instead of the copy built in.
    pub web_dir: Option<PathBuf>,
    /// connection-api apart: what answers queries.
    pub engine: EngineKind,
    /// Where the roles this process calls answer, when they run apart.
    pub upstreams: Upstreams,
    /// Connections, request checks, ingest's rate and time rules.
    pub edge: EdgeSettings,
    /// `serve`: how long the embedded log keeps records already stored.
    pub log_retention: LogRetention,
    /// How long pings are kept anywhere (`--retention`), and the job's clock.
    pub retention: crate::retention::RetentionSettings,
    /// mailer: where and how mail is sent.
    pub mail: crate::mail::MailSettings,
    /// tracker-mqtt: its broker.
    pub mqtt: Option<crate::ingest::trackers::mqtt::MqttSettings>,
    /// person-api: sign-in links, sessions, self-registration; the mailer: the clock of the
    /// links it makes.
    pub signin: crate::signin::SignInSettings,
    /// The token a role apart presents when it asks another for itself (person lookups).
    pub service_token: Option<udaconnect_core::auth::TokenSecret>,
}

/// The stores and log of a process.
pub(crate) enum Backends {
    /// `serve`: one data directory, opened before any role starts.
    Embedded(Box<EmbeddedStack>),
    /// A role process: opened by the first role that asks, waiting for a database that does
    /// not answer yet.
    Urls(Box<ByUrl>),
}

/// A role process's stores and log, by URL, and once opened.
pub(crate) struct ByUrl {
    pub(crate) store: StoreUrl,
    pub(crate) log: LogUrl,
    pub(crate) stores: Option<Stores>,
    pub(crate) opened_log: Option<DynLog>,
    /// The stable name of this process's Kafka consumers (see
    /// [`static_member_id`](crate::wiring::backends::static_member_id)).
    pub(crate) member_id: Option<String>,
}

pub struct Context {
    pub mode: Mode,
    /// Who is asking, for every role of the process (and `--auth`).
    pub auth: Arc<Authenticator>,
    pub options: Options,
    pub metrics: Arc<Metrics>,
    /// The role being started: its stop signal. The process stops roles one at a time, in
    /// the reverse of their start order.
    pub stop: watch::Receiver<bool>,
    /// The contact index of this process (empty where no role keeps one): connection-api
    /// fills it; benchmarks time it directly.
    pub index: SharedIndex,
    pub(crate) backends: Backends,
    /// person-api in this process, as a direct call.
    pub(crate) persons: Option<DynPersonDirectory>,
    /// Receivers of every stored batch in this process (connection-api's index and live view).
    pub(crate) stored_receivers: Vec<OnStored>,
    /// Receivers of every erasure the consumer in this process reads (connection-api's index).
    pub(crate) erased_receivers: Vec<OnErased>,
    /// location-api's ingest, for the demo conference.
    pub(crate) ingest: Option<Arc<Ingest>>,
    /// connection-api's live view, for the demo conference's venue.
    pub(crate) live: Option<Arc<Live>>,
    /// The process's per-client ingest limit, shared by HTTP and gRPC (`None`: unlimited).
    pub(crate) ingest_limit: Option<Arc<RateLimiter>>,
    /// Clients of the roles this process reaches over the network, made once each.
    pub(crate) upstreams: BTreeMap<Role, Arc<Upstream>>,
    /// The roles the role being started asked to reach: each is a readiness check of it.
    pub(crate) called: Vec<Role>,
    /// Free space where this process writes locally (`None` when it writes nowhere local).
    pub(crate) disk: Option<Arc<DiskGuard>>,
}

impl Context {
    /// The stores, opened (and waited for) on first use. `None` when the role is asked to stop
    /// first.
    pub async fn stores(&mut self, role: Role) -> anyhow::Result<Option<Stores>> {
        match &mut self.backends {
            Backends::Embedded(stack) => Ok(Some(Stores {
                persons: stack.persons.clone(),
                locations: stack.locations.clone(),
                ids: stack.ids.clone(),
                keys: stack.keys.clone(),
            })),
            Backends::Urls(by_url) => {
                if let Some(s) = &by_url.stores {
                    return Ok(Some(s.clone()));
                }
                let mut stop = self.stop.clone();
                let Some(opened) = open_stores(&by_url.store, &mut stop).await? else {
                    return Ok(None);
                };
                tracing::info!(role = %role, store = %by_url.store, "store open");
                by_url.stores = Some(opened.clone());
                Ok(Some(opened))
            }
        }
    }

    /// The account store (accounts, tokens, devices): the authenticator's, opened on first
    /// use, so a process holds one (one set of SQLite connections, one PostgreSQL pool), not
    /// one for its roles and another for its credentials.
    pub async fn account_store(&self) -> anyhow::Result<DynAccountStore> {
        let store = self.auth.store().await;
        Ok(store.context("failed to open the account store")?.clone())
    }

    /// The log, opened on first use.
    pub fn log(&mut self, role: Role) -> anyhow::Result<DynLog> {
        match &mut self.backends {
            Backends::Embedded(stack) => Ok(stack.log.clone()),
            Backends::Urls(by_url) => {
                if let Some(l) = &by_url.opened_log {
                    return Ok(l.clone());
                }
                let opened = open_log_as(&by_url.log, by_url.member_id.clone())?;
                tracing::info!(role = %role, log = %by_url.log, "log open");
                by_url.opened_log = Some(opened.clone());
                Ok(opened)
            }
        }
    }

    /// The mailer's record of sent keys: `mail.sqlite3` in a data directory, the `mail_sent`
    /// table on PostgreSQL (waited for). `None` when the role is asked to stop first.
    pub async fn sent_mail(
        &mut self,
        role: Role,
    ) -> anyhow::Result<Option<udaconnect_core::mail::DynSentMail>> {
        let url = match &self.backends {
            Backends::Embedded(stack) => StoreUrl::Embedded(stack.data_dir.clone()),
            Backends::Urls(by_url) => by_url.store.clone(),
        };
        let mut stop = self.stop.clone();
        let opened = crate::wiring::backends::open_sent_mail(&url, &mut stop).await?;
        if opened.is_some() {
            tracing::info!(role = %role, store = %url, "sent-mail record open");
        }
        Ok(opened)
    }

    /// The directory this process writes its own files to, if any: `serve`'s data directory,
    /// or a role's store or log given as a path.
    pub(crate) fn local_dir(&self) -> Option<PathBuf> {
        match &self.backends {
            Backends::Embedded(stack) => Some(stack.data_dir.clone()),
            Backends::Urls(by_url) => match (&by_url.store, &by_url.log) {
                (StoreUrl::Embedded(dir), _) | (_, LogUrl::Embedded(dir)) => Some(dir.clone()),
                _ => None,
            },
        }
    }

    /// The log's URL when the role runs apart; `None` in `serve`.
    pub fn log_url(&self) -> Option<&LogUrl> {
        match &self.backends {
            Backends::Embedded(_) => None,
            Backends::Urls(by_url) => Some(&by_url.log),
        }
    }

    /// How roles reach person-api: in `serve` the direct call person-api offers; apart, over
    /// HTTP (and the role is then ready only while person-api is).
    pub fn persons(&mut self, role: Role) -> anyhow::Result<DynPersonDirectory> {
        if let Some(p) = &self.persons {
            return Ok(p.clone());
        }
        match self.mode {
            Mode::Together => anyhow::bail!("{role} starts before person-api"),
            Mode::Apart => {
                let client = PersonApiClient::new(self.upstream(Role::PersonApi)?);
                let persons: DynPersonDirectory = Arc::new(RemotePersons::new(client));
                self.persons = Some(persons.clone());
                Ok(persons)
            }
        }
    }

    /// What a role on the ping's path needs: the stores, the person directory and the log.
    /// `None` when the role is asked to stop before its store opens.
    pub async fn stores_persons_log(
        &mut self,
        role: Role,
    ) -> anyhow::Result<Option<(Stores, DynPersonDirectory, DynLog)>> {
        let Some(stores) = self.stores(role).await? else {
            return Ok(None);
        };
        Ok(Some((stores, self.persons(role)?, self.log(role)?)))
    }

    /// A client of `role`, which runs apart; the role being started is then ready only while
    /// `role` is.
    pub fn upstream(&mut self, role: Role) -> anyhow::Result<Arc<Upstream>> {
        if !self.called.contains(&role) {
            self.called.push(role);
        }
        if let Some(u) = self.upstreams.get(&role) {
            return Ok(u.clone());
        }
        let u = Arc::new(
            Upstream::new(role, self.options.upstreams.url(role)?)?
                .with_credential(self.options.service_token.as_ref(), self.auth.clone()),
        );
        self.upstreams.insert(role, u.clone());
        Ok(u)
    }

    /// How many locations the store holds at most, when the log knows it cheaply (the
    /// embedded log's length): sizes the contact index without counting the store.
    pub fn expected_locations(&self) -> Option<u64> {
        match &self.backends {
            Backends::Embedded(stack) => stack.embedded_log.end_offset(LOCATION_TOPIC).ok(),
            Backends::Urls(_) => None,
        }
    }

    /// `f` receives every batch stored in this process from now on.
    pub fn receive_stored(&mut self, f: OnStored) {
        self.stored_receivers.push(f);
    }

    /// Everything that receives stored batches in this process, as one.
    pub fn stored_receivers(&self) -> Option<OnStored> {
        feed::all(self.stored_receivers.clone())
    }

    /// `f` receives every erasure read in this process from now on.
    pub fn receive_erased(&mut self, f: OnErased) {
        self.erased_receivers.push(f);
    }

    /// Everything that receives erasures in this process, as one.
    pub fn erased_receivers(&self) -> Option<OnErased> {
        let receivers = self.erased_receivers.clone();
        (!receivers.is_empty())
            .then(|| Arc::new(move |person| receivers.iter().for_each(|r| r(person))) as OnErased)
    }
}

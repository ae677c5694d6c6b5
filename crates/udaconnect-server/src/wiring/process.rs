//! The process: `udaconnect serve` (every role, embedded storage) and a role subcommand (one
//! role, its dependencies by URL) are the same code. [`Application`] binds its listeners
//! first, writes the listen file, answers `/health` at once and 503 on everything else while
//! its roles start, starts them through the role table's `start` functions in dependency
//! order, installs their routes and readiness checks, and stops them in reverse order.
//!
//! `serve` returns from [`Application::build`] once every role has started (a start failure
//! is its error); a role process returns at once and starts its role in the background, as
//! its database or broker may come up after it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use axum::extract::Request;
use axum::response::IntoResponse;
use axum::Router;
use futures_util::FutureExt as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::access::{
    check_gateway_key, check_open_listeners, AuthMode, Authenticator, GatewayTrust,
};
use crate::http;
use crate::http::edge;
use crate::http::guard::{Guards, RateLimiter};
use crate::http::ops::{self, starting, Ops};
use crate::http::serve::{self, serve_http, ConnectionRules};
use crate::ingest::demo::LiveConference;
use crate::ingest::{grpc, seed};
use crate::metrics::Metrics;
use crate::query::engine::SharedIndex;
use crate::roles::connection_api::new_index;
use crate::roles::{self, start_order, Readiness, Role};
use crate::signin::SignInSettings;
use crate::wiring::backends::{open_account_stores, static_member_id, StoreUrl};
use crate::wiring::context::{Backends, ByUrl, Context, Mode, Options};
use crate::wiring::disk::DiskGuard;
use crate::wiring::embedded::EmbeddedStack;
use crate::wiring::listen_file::{self, Listening};
use crate::wiring::retention::{self, LogRetention};
use crate::wiring::{shutdown::shutdown_signal, startup};

pub use crate::wiring::settings::{GrpcListen, HttpSettings, RoleSettings, ServeSettings};

/// Where the process's roles are in their start.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Startup {
    Starting,
    Started,
    Failed(String),
}

/// A running UdaConnect process.
pub struct Application {
    local_addr: SocketAddr,
    grpc_addr: Option<SocketAddr>,
    osmand_addr: Option<SocketAddr>,
    /// Where `/metrics` is served open (`--metrics-listen`), and its server.
    metrics_addr: Option<SocketAddr>,
    scrape: Option<JoinHandle<anyhow::Result<()>>>,
    /// The contact index connection-api answers from in this process (benchmarks time it
    /// directly); empty where no role keeps one.
    index: SharedIndex,
    /// Flipped first to stop: the listeners stop accepting and drain, the demo ends.
    accept: watch::Sender<bool>,
    /// Flipped next: the roles stop, in the reverse of their start order (the consumer commits).
    stop_roles: watch::Sender<bool>,
    startup: watch::Receiver<Startup>,
    http: JoinHandle<anyhow::Result<()>>,
    /// The OsmAnd listener's server, stopped with the HTTP one.
    osmand_server: Option<JoinHandle<anyhow::Result<()>>>,
    roles: JoinHandle<anyhow::Result<()>>,
    /// `serve --demo`: sign-in links for the demo's organizer and attendee.
    demo_links: Vec<(udaconnect_core::auth::Role, String)>,
}

/// The process to build, whichever command asked for it.
struct Plan {
    label: &'static str,
    roles: Vec<Role>,
    mode: Mode,
    listen: SocketAddr,
    grpc: GrpcListen,
    osmand: GrpcListen,
    listen_file: Option<PathBuf>,
    cors_origins: Vec<String>,
    auth: AuthMode,
    /// Whether the process signs or believes the web gateway's assertions (roles apart).
    gateway: GatewayTrust,
    metrics_listen: Option<SocketAddr>,
    options: Options,
    backends: Backends,
    /// `serve --demo`: the live simulated conference's attendees (0: none).
    demo_attendees: Option<u32>,
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
}

impl Application {
    /// `udaconnect serve`: opens the data directory, loads the demo data once when asked,
    /// binds, and starts every role; returns once they serve.
    pub async fn build(mut settings: ServeSettings) -> anyhow::Result<Application> {
        let stack = EmbeddedStack::open(&settings.data_dir)?;
        if settings.demo {
            let first = seed::persons()?.first().map(|p| p.id).unwrap_or(1);
            settings.http.signin.demo_attendee = Some(first);
        }
        let signin = settings.http.signin.clone();
        for r in stack.embedded_log.recoveries() {
            if r.truncated_bytes > 0 {
                tracing::warn!(topic = %r.topic, truncated_bytes = r.truncated_bytes, "log recovered after a crash");
            }
        }
        startup::check(&stack).await?;
        if settings.demo {
            seed::load_once(
                &stack.data_dir,
                &stack.persons,
                &stack.log,
                &stack.ids,
                &stack.keys,
            )
            .await
            .context("failed to load the demo data")?;
        }
        let auth = settings.http.auth;
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
        let mut app = Application::start(plan).await?;
        let failed = match app.startup.wait_for(|s| *s != Startup::Starting).await {
            Ok(s) => match &*s {
                Startup::Failed(why) => Some(why.clone()),
                Startup::Starting | Startup::Started => None,
            },
            Err(_) => Some("the roles stopped while starting".to_string()),
        };
        if let Some(why) = failed {
            app.stop().await.ok();
            anyhow::bail!(why);
        }
        tracing::info!(address = %app.local_addr, data_dir = %settings.data_dir.display(), "udaconnect is serving");
        if auth == AuthMode::On {
            sign_in_hint(&settings.data_dir).await;
        }
        if settings.demo {
            let public_url = signin.public_url_or(app.local_addr);
            match demo_links(&settings.data_dir, &public_url, &signin).await {
                Ok(links) => app.demo_links = links,
                Err(e) => tracing::warn!(error = %e, "cannot make the demo's sign-in links"),
            }
        }
        Ok(app)
    }

    /// One role in its own process: binds the listeners and returns at once; the role opens
    /// its store and log in the background.
    pub async fn build_role(settings: RoleSettings) -> anyhow::Result<Application> {
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
        let app = Application::start(plan).await?;
        tracing::info!(
            role = %role,
            address = %app.local_addr,
            grpc = app.grpc_addr.map(|a| a.to_string()).unwrap_or_default(),
            "udaconnect role is listening"
        );
        Ok(app)
    }

    async fn start(mut plan: Plan) -> anyhow::Result<Application> {
        let mut addresses = vec![plan.listen];
        if plan.roles.contains(&Role::LocationApi) {
            match plan.grpc {
                GrpcListen::Default(a) | GrpcListen::At(a) => addresses.push(a),
                GrpcListen::Off => {}
            }
        }
        addresses.extend(plan.metrics_listen);
        check_open_listeners(plan.auth, &addresses)?;
        if plan.mode == Mode::Apart {
            check_gateway_key(&plan.roles, plan.auth, &plan.gateway, plan.listen)?;
        }
        let files = edge::raise_open_files_limit();
        let listener = TcpListener::bind(plan.listen)
            .await
            .with_context(|| format!("failed to listen on {}", plan.listen))?;
        let local_addr = listener.local_addr()?;
        // Links point here unless --public-url says otherwise (port 0 is known only now).
        let signin = &mut plan.options.signin;
        signin.public_url = Some(signin.public_url_or(local_addr));
        let (grpc_listener, osmand_listener) = if plan.roles.contains(&Role::LocationApi) {
            (
                bind_extra("gRPC", "--grpc-listen", plan.grpc).await?,
                bind_extra("OsmAnd", "--osmand-listen", plan.osmand).await?,
            )
        } else {
            (None, None)
        };
        let grpc_addr = grpc_listener.as_ref().map(|l| l.local_addr()).transpose()?;
        let osmand_addr = osmand_listener
            .as_ref()
            .map(|l| l.local_addr())
            .transpose()?;
        if let Some(path) = &plan.listen_file {
            listen_file::write(
                path,
                &Listening {
                    http: local_addr,
                    grpc: grpc_addr,
                    role: plan.label,
                    pid: std::process::id(),
                },
            )?;
        }
        let edge = plan.options.edge.clone();
        let caps = edge.connection_caps(files, grpc_listener.is_some());
        tracing::debug!(open_files = ?files, http = caps.http, grpc = caps.grpc, "connection caps");
        let metrics = Arc::new(Metrics::new());
        if let Some(f) = files {
            metrics.open_files_limit.set(f.min(i64::MAX as u64) as i64);
        }
        let guards = Arc::new(Guards {
            hosts: edge.hosts(local_addr),
            ingest: (edge.ingest_rate > 0).then(|| Arc::new(RateLimiter::new(edge.ingest_rate))),
            metrics: metrics.clone(),
        });
        let (accept, accept_rx) = watch::channel(false);
        let (metrics_addr, scrape) = match plan.metrics_listen {
            Some(addr) => {
                let l = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("failed to listen for metrics on {addr}"))?;
                let bound = l.local_addr()?;
                let served = tokio::spawn(serve_http(
                    l,
                    ops::scrape_routes(metrics.clone()),
                    ConnectionRules {
                        cap: 64,
                        header_timeout: edge.header_timeout,
                        idle_timeout: edge.idle_timeout,
                        shutdown_timeout: edge.shutdown_timeout,
                    },
                    metrics.clone(),
                    accept_rx.clone(),
                ));
                (Some(bound), Some(served))
            }
            None => (None, None),
        };
        let (stop_roles, stop_rx) = watch::channel(false);
        let (startup_tx, startup) = watch::channel(Startup::Starting);
        let installed: Arc<OnceLock<Router>> = Arc::new(OnceLock::new());
        let rules = ConnectionRules {
            cap: caps.http,
            header_timeout: edge.header_timeout,
            idle_timeout: edge.idle_timeout,
            shutdown_timeout: edge.shutdown_timeout,
        };
        let http = tokio::spawn(serve_http(
            listener,
            front(plan.label, installed.clone()),
            rules,
            metrics.clone(),
            accept_rx.clone(),
        ));
        let osmand_installed: Arc<OnceLock<Router>> = Arc::new(OnceLock::new());
        let osmand_server = osmand_listener.map(|l| {
            tokio::spawn(serve_http(
                l,
                osmand_front(plan.label, osmand_installed.clone()),
                rules,
                metrics.clone(),
                accept_rx.clone(),
            ))
        });
        let index = new_index();
        let roles = tokio::spawn(run_roles(
            plan,
            index.clone(),
            Listeners {
                http: local_addr,
                grpc: grpc_listener,
                grpc_cap: caps.grpc,
                guards,
                osmand: osmand_installed,
            },
            installed,
            startup_tx,
            accept_rx,
            stop_rx,
        ));
        Ok(Application {
            local_addr,
            grpc_addr,
            osmand_addr,
            osmand_server,
            metrics_addr,
            scrape,
            index,
            accept,
            stop_roles,
            startup,
            http,
            roles,
            demo_links: Vec::new(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `serve --demo`: a sign-in link for the demo's organizer and one for its attendee, each
    /// working once, for 15 minutes from the start.
    pub fn demo_links(&self) -> &[(udaconnect_core::auth::Role, String)] {
        &self.demo_links
    }

    /// Where gRPC is served, when it is.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// Where OsmAnd protocol reports are taken at any path, when they are.
    pub fn osmand_addr(&self) -> Option<SocketAddr> {
        self.osmand_addr
    }

    /// Where `/metrics` is served without a token, when `--metrics-listen` asks.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    pub fn contact_index(&self) -> SharedIndex {
        self.index.clone()
    }

    /// Serves until SIGINT or SIGTERM (or a role fails to start), then stops gracefully.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let mut startup = self.startup.clone();
        let failed = tokio::select! {
            _ = shutdown_signal() => None,
            s = startup.wait_for(|s| matches!(s, Startup::Failed(_))) => match s.as_deref() {
                Ok(Startup::Failed(why)) => Some(why.clone()),
                Ok(Startup::Starting | Startup::Started) | Err(_) => None,
            },
        };
        tracing::info!("stopping: draining requests, stopping the roles");
        let stopped = self.stop().await;
        match failed {
            Some(why) => Err(anyhow::anyhow!(why)),
            None => stopped,
        }
    }

    /// Stops accepting, drains in-flight requests, stops the roles in reverse start order
    /// (the consumer commits), and returns.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.accept.send(true);
        let http = self.http.await.context("server task failed");
        if let Some(osmand) = self.osmand_server {
            log_ending(osmand.await);
        }
        if let Some(scrape) = self.scrape {
            scrape.await.context("metrics server task failed")??;
        }
        let _ = self.stop_roles.send(true);
        let roles = self.roles.await.context("role task failed");
        http??;
        roles??;
        Ok(())
    }
}

/// With `--demo`, sign-in links for the demo's organizer and attendee (the command prints
/// them on stdout; never in the log).
async fn demo_links(
    data_dir: &std::path::Path,
    public_url: &str,
    signin: &SignInSettings,
) -> anyhow::Result<Vec<(udaconnect_core::auth::Role, String)>> {
    let accounts = open_account_stores(&StoreUrl::Embedded(data_dir.to_path_buf()))
        .await?
        .accounts;
    let first = signin.demo_attendee.unwrap_or(1);
    let now = signin.clock.now();
    Ok(crate::signin::demo_links(&accounts, first, public_url, now).await?)
}

/// Says how to get in while the data directory has no admin yet: the command line makes the
/// first token.
async fn sign_in_hint(data_dir: &std::path::Path) {
    let admins = match open_account_stores(&StoreUrl::Embedded(data_dir.to_path_buf())).await {
        Ok(stores) => stores.accounts.count_admins().await.ok(),
        Err(_) => None,
    };
    if admins == Some(0) {
        tracing::info!(
            "no admin yet; to sign in, make a token: udaconnect admin create-token --role admin \
             --data-dir {} (it prints the token on its last line; send it as Authorization: \
             Bearer TOKEN)",
            data_dir.display()
        );
    }
}

/// The OsmAnd listener's front: every path is a report (the apps post to the server's root),
/// so each request is taken as one to `/api/osmand`, the path the ingest checks know.
fn osmand_front(label: &'static str, installed: Arc<OnceLock<Router>>) -> Router {
    Router::new()
        .fallback(move |mut request: Request| {
            let installed = installed.clone();
            async move {
                let query = request
                    .uri()
                    .query()
                    .map(|q| format!("?{q}"))
                    .unwrap_or_default();
                if let Ok(uri) = format!("/api/osmand{query}").parse() {
                    *request.uri_mut() = uri;
                }
                match installed.get() {
                    Some(router) => router.clone().oneshot(request).await.into_response(),
                    None => starting(label, request).await,
                }
            }
        })
        .layer(axum::middleware::map_response(
            crate::http::guard::security_headers,
        ))
}

/// Binds a listener besides HTTP as `at` says: `what` names it, `flag` is the option that
/// moves it.
async fn bind_extra(what: &str, flag: &str, at: GrpcListen) -> anyhow::Result<Option<TcpListener>> {
    Ok(match at {
        GrpcListen::Off => None,
        GrpcListen::Default(addr) => match TcpListener::bind(addr).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(address = %addr, error = %e, "{what} port taken; {what} is off ({flag} picks another)");
                None
            }
        },
        GrpcListen::At(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("failed to listen for {what} on {addr}"))?,
        ),
    })
}

/// The HTTP front: the roles' router once installed, the answers of a process still starting
/// until then.
fn front(label: &'static str, installed: Arc<OnceLock<Router>>) -> Router {
    Router::new()
        .fallback(move |request: Request| {
            let installed = installed.clone();
            async move {
                match installed.get() {
                    Some(router) => router.clone().oneshot(request).await.into_response(),
                    None => starting(label, request).await,
                }
            }
        })
        .layer(axum::middleware::map_response(
            crate::http::guard::security_headers,
        ))
}

struct Listeners {
    http: SocketAddr,
    grpc: Option<TcpListener>,
    /// gRPC connections held at most.
    grpc_cap: usize,
    /// The request checks of the HTTP router, and the ingest limit gRPC shares.
    guards: Arc<Guards>,
    /// Where the OsmAnd listener's router goes once location-api has started.
    osmand: Arc<OnceLock<Router>>,
}

/// A started role and how to stop it.
struct Started {
    role: Role,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

/// Starts the plan's roles in order, installs their routes, serves until `stop`, then stops
/// them in reverse order, and the audit writer last (its rows queued are written).
async fn run_roles(
    plan: Plan,
    index: SharedIndex,
    listeners: Listeners,
    installed: Arc<OnceLock<Router>>,
    startup: watch::Sender<Startup>,
    accept: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let guards = listeners.guards.clone();
    let metrics = guards.metrics.clone();
    let data_dir = match &plan.backends {
        Backends::Embedded(stack) => Some(stack.data_dir.clone()),
        Backends::Urls(_) => None,
    };
    let auth = Arc::new(
        Authenticator::new(
            plan.auth,
            Some(match &plan.backends {
                Backends::Embedded(stack) => StoreUrl::Embedded(stack.data_dir.clone()),
                Backends::Urls(by_url) => by_url.store.clone(),
            }),
        )
        .with_clock(plan.options.signin.clock.clone())
        .with_gateway(plan.gateway.clone()),
    );
    let mut ctx = Context {
        auth: auth.clone(),
        mode: plan.mode,
        options: plan.options,
        metrics: metrics.clone(),
        stop: stop.clone(),
        index,
        backends: plan.backends,
        persons: None,
        stored_receivers: Vec::new(),
        erased_receivers: Vec::new(),
        ingest: None,
        live: None,
        ingest_limit: guards.ingest.clone(),
        upstreams: Default::default(),
        called: Vec::new(),
        disk: None,
        accounts: None,
    };
    ctx.disk = ctx.local_dir().map(|dir| {
        let edge = &ctx.options.edge;
        DiskGuard::new(
            &dir,
            edge.disk_low_space,
            edge.disk_min_free,
            metrics.clone(),
        )
    });
    let mut started: Vec<Started> = Vec::new();
    // Servers that stop with the listeners: gRPC, the demo conference, the disk watch, the
    // log retention.
    let mut servers: Vec<JoinHandle<anyhow::Result<()>>> = Vec::new();
    let outcome: anyhow::Result<bool> = async {
        let mut router = Router::new();
        let mut checks = Vec::new();
        let mut grpc = None;
        let mut osmand: Option<Router> = None;
        for role in start_order(&plan.roles) {
            let (role_stop, role_stop_rx) = watch::channel(false);
            ctx.stop = role_stop_rx;
            ctx.called.clear();
            let running = tokio::select! {
                r = roles::start(role, &mut ctx) => r.with_context(|| format!("failed to start {role}"))?,
                _ = stop.wait_for(|s| *s) => None,
            };
            let Some(running) = running else {
                return Ok(false);
            };
            debug_assert!(running
                .checks
                .iter()
                .all(|(r, _)| role.spec().readiness.contains(r)));
            checks.extend(running.checks);
            // The roles it reaches over the network are ready, or it is not.
            for upstream in ctx.called.clone() {
                let u = ctx.upstream(upstream)?;
                checks.push((
                    Readiness::Upstream(upstream),
                    ops::check(move || {
                        let u = u.clone();
                        async move { u.ready().await }
                    }),
                ));
            }
            router = router.merge(running.router);
            grpc = grpc.or(running.grpc);
            osmand = osmand.or(running.osmand);
            started.push(Started {
                role,
                stop: role_stop,
                tasks: running.tasks,
            });
        }
        if let (LogRetention::Stored, Backends::Embedded(stack)) =
            (ctx.options.log_retention, &ctx.backends)
        {
            let log = stack.embedded_log.clone();
            servers.push(tokio::spawn(retention::run(log, accept.clone()).map(Ok)));
        }
        // `serve`: one job over the store, the index and the log (roles apart run their own).
        if let (Some(mut job), Backends::Embedded(stack)) = (
            crate::retention::Retention::new(&ctx.options.retention, metrics.clone()),
            &ctx.backends,
        ) {
            job.store = Some(stack.locations.clone());
            job.index = Some(ctx.index.clone());
            job.log = Some(stack.embedded_log.clone());
            let every = ctx.options.retention.every;
            servers.push(tokio::spawn(job.run(every, accept.clone()).map(Ok)));
        }
        if let Some(disk) = ctx.disk.clone() {
            servers.push(tokio::spawn(disk.clone().watch(accept.clone()).map(Ok)));
            checks.push((
                Readiness::Disk,
                ops::check(move || {
                    let disk = disk.clone();
                    async move { disk.check() }
                }),
            ));
        }
        if let (Some(listener), Some(service)) = (listeners.grpc, grpc) {
            let incoming = serve::grpc_incoming(
                listener,
                listeners.grpc_cap,
                ctx.options.edge.idle_timeout,
                metrics.clone(),
                accept.clone(),
            );
            servers.push(tokio::spawn(grpc::serve(incoming, service, accept.clone())));
        }
        if let (Some(attendees @ 1..), Some(dir)) = (plan.demo_attendees, &data_dir) {
            servers.push(start_demo(&ctx, dir, attendees, accept.clone()).await?);
        }
        let ops = Arc::new(Ops {
            metrics: metrics.clone(),
            checks: dedup_checks(checks),
            roles: started.iter().map(|s| s.role.name()).collect(),
        });
        if let Some(osmand) = osmand {
            let osmand =
                http::with_common_layers(osmand, &metrics, &[], guards.clone(), auth.clone());
            let _ = listeners.osmand.set(osmand);
        }
        let router = http::with_common_layers(
            router.merge(ops::routes(ops)),
            &metrics,
            &plan.cors_origins,
            guards,
            auth,
        );
        let _ = installed.set(router);
        Ok(true)
    }
    .await;
    match &outcome {
        Ok(true) => {
            match plan.mode {
                Mode::Apart => {
                    tracing::info!(role = plan.label, address = %listeners.http, "role is serving")
                }
                Mode::Together => {}
            }
            startup.send_replace(Startup::Started);
            let _ = stop.wait_for(|s| *s).await;
        }
        Ok(false) => {}
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "udaconnect failed to start");
            startup.send_replace(Startup::Failed(format!("{e:#}")));
        }
    }
    for s in servers {
        log_ending(s.await);
    }
    for s in started.into_iter().rev() {
        let _ = s.stop.send(true);
        for t in s.tasks {
            log_ending(t.await);
        }
        tracing::debug!(role = %s.role, "role stopped");
    }
    ctx.auth.close().await;
    outcome.map(|_| ())
}

/// Prepares the demo's live conference and runs it until the listeners stop.
async fn start_demo(
    ctx: &Context,
    data_dir: &std::path::Path,
    attendees: u32,
    accept: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
    let (Backends::Embedded(stack), Some(ingest), Some(live)) =
        (&ctx.backends, ctx.ingest.clone(), ctx.live.clone())
    else {
        anyhow::bail!("the demo conference needs every role in one process");
    };
    let conference = LiveConference::prepare(data_dir, &stack.persons, attendees)
        .await
        .context("failed to prepare the demo conference")?;
    live.set_venue(conference.venue());
    Ok(tokio::spawn(async move {
        conference.run(ingest, accept).await;
        Ok(())
    }))
}

/// One check per name (roles in one process share their stores and log), the first kept.
fn dedup_checks(checks: Vec<(Readiness, ops::Check)>) -> Vec<(&'static str, ops::Check)> {
    let mut out: Vec<(&'static str, ops::Check)> = Vec::new();
    for (r, check) in checks {
        if !out.iter().any(|(name, _)| *name == r.name()) {
            out.push((r.name(), check));
        }
    }
    out
}

fn log_ending(ended: Result<anyhow::Result<()>, tokio::task::JoinError>) {
    match ended {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "a role task ended with an error"),
        Err(e) => tracing::warn!(error = %e, "a role task failed"),
    }
}

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
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use axum::extract::Request;
use axum::response::IntoResponse;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::access::{check_gateway_key, check_open_listeners, AuthMode};
use crate::http::edge;
use crate::http::guard::{Guards, RateLimiter};
use crate::http::ops::{self, starting};
use crate::http::serve::{serve_http, ConnectionRules};
use crate::ingest::seed;
use crate::metrics::Metrics;
use crate::query::engine::SharedIndex;
use crate::roles::connection_api::new_index;
use crate::roles::Role;
use crate::signin::SignInSettings;
use crate::wiring::backends::{open_account_stores, StoreUrl};
use crate::wiring::context::Mode;
use crate::wiring::embedded::EmbeddedStack;
use crate::wiring::listen_file::{self, Listening};
use crate::wiring::plan::Plan;
use crate::wiring::run::{log_ending, run_roles, Listeners, Startup};
use crate::wiring::shutdown::shutdown_signal;
use crate::wiring::startup;

pub use crate::wiring::settings::{GrpcListen, HttpSettings, RoleSettings, ServeSettings};

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
        let data_dir = settings.data_dir.clone();
        let demo = settings.demo;
        let mut app = Application::start(Plan::serve(settings, stack)).await?;
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
        tracing::info!(address = %app.local_addr, data_dir = %data_dir.display(), "udaconnect is serving");
        if auth == AuthMode::On {
            sign_in_hint(&data_dir).await;
        }
        if demo {
            let public_url = signin.public_url_or(app.local_addr);
            match demo_links(&data_dir, &public_url, &signin).await {
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
        let app = Application::start(Plan::role(settings)).await?;
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

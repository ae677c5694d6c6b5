//! Running a process's roles: [`run_roles`] starts them through the role table's `start`
//! functions in dependency order, installs their routes and readiness checks (and the
//! servers that stop with the listeners: gRPC, the demo conference, the disk watch, the
//! retention jobs), serves until told to stop, then stops them in reverse order.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use axum::Router;
use futures_util::FutureExt as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::access::Authenticator;
use crate::http;
use crate::http::guard::Guards;
use crate::http::ops::{self, Ops};
use crate::http::serve;
use crate::ingest::demo::LiveConference;
use crate::ingest::grpc;
use crate::query::engine::SharedIndex;
use crate::roles::{self, start_order, Readiness, Role};
use crate::wiring::backends::StoreUrl;
use crate::wiring::context::{Backends, Context, Mode};
use crate::wiring::disk::DiskGuard;
use crate::wiring::plan::Plan;
use crate::wiring::retention::{self, LogRetention};

/// Where the process's roles are in their start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Startup {
    Starting,
    Started,
    Failed(String),
}

/// What the process bound before its roles start, for the roles to serve on.
pub(super) struct Listeners {
    pub(super) http: SocketAddr,
    pub(super) grpc: Option<TcpListener>,
    /// gRPC connections held at most.
    pub(super) grpc_cap: usize,
    /// The request checks of the HTTP router, and the ingest limit gRPC shares.
    pub(super) guards: Arc<Guards>,
    /// Where the OsmAnd listener's router goes once location-api has started.
    pub(super) osmand: Arc<OnceLock<Router>>,
}

/// A started role and how to stop it.
struct Started {
    role: Role,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

/// Starts the plan's roles in order, installs their routes, serves until `stop`, then stops
/// them in reverse order, and the audit writer last (its rows queued are written).
pub(super) async fn run_roles(
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
    data_dir: &Path,
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

pub(super) fn log_ending(ended: Result<anyhow::Result<()>, tokio::task::JoinError>) {
    match ended {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "a role task ended with an error"),
        Err(e) => tracing::warn!(error = %e, "a role task failed"),
    }
}

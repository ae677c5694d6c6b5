//! One role in its own process: `udaconnect person-api`, `location-api`, `location-consumer`,
//! `connection-api`, `web`.
//!
//! The HTTP listener is bound first and answers /health at once; until the role's store and
//! log are open (a database may start after its clients), every other path answers 503 and
//! /ready says what it waits for. Then the role's routes take over.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use anyhow::Context;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;
use udaconnect_core::index::ContactIndex;
use udaconnect_core::ports::{DynLog, StartFrom};

use crate::consume::consumer::LocationConsumer;
use crate::http;
use crate::http::gateway::{self, Gateway, Upstreams};
use crate::http::ops::{self, Check, Ops};
use crate::http::problem::Problem;
use crate::http::web::{self, Web};
use crate::ingest::grpc::{self, GrpcIngest};
use crate::ingest::http::{self as location_api, LocationApi};
use crate::ingest::{IdAllocator, Ingest};
use crate::metrics::Metrics;
use crate::persons::http::{self as person_api, PersonApi};
use crate::persons::{DynPersonDirectory, LocalPersons};
use crate::query::engine::{point, DynContactEngine, SharedIndex};
use crate::query::http::{self as connection_api, ConnectionApi};
use crate::query::live::{self, Live};
use crate::query::memory::MemoryEngine;
use crate::query::store::StoreEngine;
use crate::query::workers::RayonWorkers;
use crate::roles::Role;
use crate::wiring::backends::{open_log, open_stores, LogUrl, StoreUrl, Stores};

/// What one role process needs to know.
#[derive(Debug, Clone)]
pub struct RoleSettings {
    pub role: Role,
    /// HTTP: the role's API (if any), /health, /ready, /metrics. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// location-api's gRPC services.
    pub grpc_listen: Option<SocketAddr>,
    pub store: StoreUrl,
    pub log: LogUrl,
    /// web: where the other roles answer.
    pub upstreams: Option<Upstreams>,
    pub web_dir: Option<PathBuf>,
    pub cors_origins: Vec<String>,
    /// connection-api: what answers queries.
    pub engine: EngineKind,
}

/// What answers connection-api's queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineKind {
    /// One set-based statement on the store per query (PostGIS), then the exact predicate.
    #[default]
    Store,
    /// The in-memory index of the embedded mode, built from the whole `location` topic at start
    /// (a group of its own, from the first record, never committing) and following it: answers
    /// in milliseconds; needs a Kafka log that keeps every record, and memory for the index.
    Memory,
}

/// A running role.
pub struct RoleApp {
    local_addr: SocketAddr,
    grpc_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

/// Checks of the person store, then the location store.
fn store_checks(stores: &Stores) -> Vec<(&'static str, Check)> {
    vec![
        ops::person_store_check(&stores.persons),
        ops::location_store_check(&stores.locations),
    ]
}

/// Answers while the role waits for its dependencies.
async fn starting(role: Role, request: Request) -> Response {
    match request.uri().path() {
        "/health" => axum::Json(
            serde_json::json!({"status": "ok", "role": role.name(), "state": "starting"}),
        )
        .into_response(),
        "/metrics" => (StatusCode::OK, String::new()).into_response(),
        _ => {
            let mut r = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "urn:udaconnect:problem:unavailable",
                format!("{role} is starting: waiting for its store or log"),
            )
            .into_response();
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
            r
        }
    }
}

impl RoleApp {
    /// Binds the listeners and starts the role; returns at once, the role opening its store
    /// and log in the background.
    pub async fn build(settings: RoleSettings) -> anyhow::Result<RoleApp> {
        let role = settings.role;
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("failed to listen on {}", settings.listen))?;
        let local_addr = listener.local_addr()?;
        let grpc_listener = match (role, settings.grpc_listen) {
            (Role::LocationApi, Some(addr)) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("failed to listen for gRPC on {addr}"))?,
            ),
            _ => None,
        };
        let grpc_addr = grpc_listener.as_ref().map(|l| l.local_addr()).transpose()?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let inner: Arc<OnceLock<Router>> = Arc::new(OnceLock::new());
        let front = {
            let inner = inner.clone();
            Router::new().fallback(move |request: Request| {
                let inner = inner.clone();
                async move {
                    match inner.get() {
                        Some(router) => router.clone().oneshot(request).await.into_response(),
                        None => starting(role, request).await,
                    }
                }
            })
        };
        let mut stop = shutdown_rx.clone();
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let server = tokio::spawn(async move {
            axum::serve(listener, front)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
                .context("HTTP server failed")
        });
        let setup = tokio::spawn(start_role(settings, inner, grpc_listener, shutdown_rx));
        tracing::info!(
            role = %role,
            address = %local_addr,
            grpc = grpc_addr.map(|a| a.to_string()).unwrap_or_default(),
            "udaconnect role is listening"
        );
        Ok(RoleApp {
            local_addr,
            grpc_addr,
            shutdown,
            tasks: vec![server, setup],
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// Serves until SIGINT or SIGTERM, then stops gracefully.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        crate::wiring::serve::shutdown_signal().await;
        tracing::info!("stopping: draining requests");
        self.stop().await
    }

    /// Stops accepting, drains in-flight requests, lets a consumer commit, and returns.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        let mut first_error = None;
        for t in self.tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(anyhow::anyhow!("role task failed: {e}"));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Opens the role's dependencies, then installs its routes and starts its background work;
/// returns when the role has stopped.
async fn start_role(
    settings: RoleSettings,
    inner: Arc<OnceLock<Router>>,
    grpc_listener: Option<TcpListener>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let role = settings.role;
    let metrics = Arc::new(Metrics::new());
    let ops = |checks: Vec<(&'static str, Check)>| {
        ops::routes(Arc::new(Ops {
            metrics: metrics.clone(),
            checks,
            roles: vec![role.name()],
        }))
    };
    let mut background: Vec<JoinHandle<anyhow::Result<()>>> = Vec::new();
    let router = match role {
        Role::Web => {
            let upstreams = settings
                .upstreams
                .clone()
                .context("web needs the URLs of person-api, location-api and connection-api")?;
            let gw = Arc::new(Gateway::new(&upstreams)?);
            let checks = [Role::PersonApi, Role::LocationApi, Role::ConnectionApi]
                .into_iter()
                .map(|r| {
                    let gw = gw.clone();
                    let name = match r {
                        Role::PersonApi => "person_api",
                        Role::LocationApi => "location_api",
                        _ => "connection_api",
                    };
                    (
                        name,
                        ops::check(move || {
                            let gw = gw.clone();
                            async move { gw.check(r).await }
                        }),
                    )
                })
                .collect();
            Router::new()
                .merge(gateway::routes(gw))
                .merge(ops(checks))
                .merge(web::routes(Arc::new(Web {
                    dir: settings.web_dir.clone(),
                })))
        }
        _ => {
            let Some(stores) = open_stores(&settings.store, &mut shutdown).await? else {
                return Ok(());
            };
            tracing::info!(role = %role, store = %settings.store, "store open");
            let persons: DynPersonDirectory = Arc::new(LocalPersons::new(stores.persons.clone()));
            match role {
                Role::PersonApi => Router::new()
                    .merge(person_api::routes(Arc::new(PersonApi {
                        store: stores.persons.clone(),
                        metrics: metrics.clone(),
                    })))
                    .merge(ops(store_checks(&stores).into_iter().take(1).collect())),
                Role::ConnectionApi => {
                    let kafka = matches!(settings.log, LogUrl::Kafka { .. });
                    if settings.engine == EngineKind::Memory && !kafka {
                        anyhow::bail!("--engine memory needs a Kafka log (--log kafka://...)");
                    }
                    // With a Kafka log, the venue live (positions, heat, the event stream the
                    // web page shows) follows the topic; an embedded log belongs to the one
                    // process that writes it.
                    let follower = if kafka {
                        let log = open_log(&settings.log)?;
                        let index: SharedIndex = Arc::new(RwLock::new(ContactIndex::new(
                            Arc::new(RayonWorkers::new()),
                        )));
                        let live = Arc::new(Live::new(index.clone(), metrics.clone()));
                        let (caught_up_tx, caught_up) = watch::channel(false);
                        let start = match settings.engine {
                            EngineKind::Memory => StartFrom::Earliest,
                            EngineKind::Store => StartFrom::Latest,
                        };
                        background.push(tokio::spawn(follow_log(
                            log,
                            start,
                            persons.clone(),
                            index.clone(),
                            live.clone(),
                            caught_up_tx,
                            shutdown.clone(),
                        )));
                        Some((index, live, caught_up))
                    } else {
                        None
                    };
                    let mut checks = store_checks(&stores);
                    let engine: DynContactEngine = match (&follower, settings.engine) {
                        (Some((index, _, caught_up)), EngineKind::Memory) => {
                            let caught_up = caught_up.clone();
                            checks.push((
                                "contact_index",
                                ops::check(move || {
                                    let ready = *caught_up.borrow();
                                    async move {
                                        if ready {
                                            Ok(())
                                        } else {
                                            Err(udaconnect_core::Error::Unavailable(
                                                "contact index (reading the log)".into(),
                                            ))
                                        }
                                    }
                                }),
                            ));
                            Arc::new(MemoryEngine {
                                index: index.clone(),
                            })
                        }
                        _ => Arc::new(StoreEngine {
                            store: stores.locations.clone(),
                        }),
                    };
                    let api = Arc::new(ConnectionApi {
                        engine,
                        persons: persons.clone(),
                        metrics: metrics.clone(),
                    });
                    let mut router = Router::new()
                        .merge(connection_api::routes(api))
                        .merge(ops(checks));
                    if let Some((_, live, _)) = follower {
                        router = router.merge(live::routes(live));
                    }
                    router
                }
                Role::LocationApi | Role::LocationConsumer => {
                    let log = open_log(&settings.log)?;
                    tracing::info!(role = %role, log = %settings.log, "log open");
                    let mut checks = store_checks(&stores);
                    checks.push(ops::log_check(&log));
                    if role == Role::LocationConsumer {
                        let consumer = LocationConsumer {
                            log: log.clone(),
                            store: stores.locations.clone(),
                            persons: persons.clone(),
                            metrics: metrics.clone(),
                            on_stored: None,
                        };
                        let stop = shutdown.clone();
                        background.push(tokio::spawn(async move {
                            consumer.run(stop).await;
                            Ok(())
                        }));
                        ops(checks)
                    } else {
                        let ingest = Arc::new(Ingest {
                            persons: persons.clone(),
                            ids: IdAllocator::new(stores.ids.clone()),
                            log: log.clone(),
                            metrics: metrics.clone(),
                        });
                        if let Some(listener) = grpc_listener {
                            let (ready_tx, ready_rx) = watch::channel(false);
                            background.push(tokio::spawn(watch_log(
                                log.clone(),
                                ready_tx,
                                shutdown.clone(),
                            )));
                            background.push(tokio::spawn(grpc::serve(
                                listener,
                                GrpcIngest {
                                    ingest: ingest.clone(),
                                    metrics: metrics.clone(),
                                },
                                ready_rx,
                                shutdown.clone(),
                            )));
                        }
                        Router::new()
                            .merge(location_api::routes(Arc::new(LocationApi {
                                ingest,
                                store: stores.locations.clone(),
                            })))
                            .merge(ops(checks))
                    }
                }
                Role::Web => unreachable!("handled above"),
            }
        }
    };
    let _ = inner.set(http::with_common_layers(
        router,
        &metrics,
        &settings.cors_origins,
    ));
    tracing::info!(role = %role, "role is serving");
    let _ = shutdown.wait_for(|s| *s).await;
    for t in background {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "a role task ended with an error"),
            Err(e) => tracing::warn!(error = %e, "a role task failed"),
        }
    }
    Ok(())
}

/// Feeds the contact index and the live view from the `location` topic. `caught_up` turns true
/// once it has read to the end of the log.
async fn follow_log(
    log: DynLog,
    start: StartFrom,
    persons: DynPersonDirectory,
    index: SharedIndex,
    live: Arc<Live>,
    caught_up: watch::Sender<bool>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let on_read: crate::feed::OnStored = {
        let index = index.clone();
        Arc::new(move |batch: &[udaconnect_core::model::Location]| {
            udaconnect_core::index::feed(&index, batch.iter().map(point));
            live.publish(batch);
        })
    };
    let read_to_end = move || {
        let indexed = index.read().map(|i| i.len()).unwrap_or(0);
        tracing::info!(
            locations = indexed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "contact index has read the log"
        );
        caught_up.send_replace(true);
    };
    crate::consume::follow::follow(log, start, persons, on_read, read_to_end, shutdown).await?;
    Ok(())
}

/// Tells the gRPC health service whether the log takes appends, checked every two seconds.
async fn watch_log(
    log: udaconnect_core::ports::DynLog,
    ready: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    loop {
        let ok = matches!(
            tokio::time::timeout(Duration::from_secs(2), log.ping()).await,
            Ok(Ok(()))
        );
        ready.send_if_modified(|v| std::mem::replace(v, ok) != ok);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
        }
    }
}

//! Building and running UdaConnect in one process: `udaconnect serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::consume::consumer::LocationConsumer;
use crate::http;
use crate::http::ops::{self, Ops};
use crate::http::web::{self, Web};
use crate::ingest::demo::LiveConference;
use crate::ingest::grpc::{self, GrpcIngest};
use crate::ingest::http::{self as location_api, LocationApi};
use crate::ingest::seed;
use crate::ingest::{IdAllocator, Ingest};
use crate::metrics::Metrics;
use crate::persons::http::{self as person_api, PersonApi};
use crate::persons::{DynPersonDirectory, LocalPersons};
use crate::query::engine::SharedIndex;
use crate::query::http::{self as connection_api, ConnectionApi};
use crate::query::live::{self, Live};
use crate::query::memory::MemoryEngine;
use crate::roles::Role;
use crate::wiring::embedded::EmbeddedStack;

/// What `serve` needs to know.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// Where HTTP is served; port 0 picks a free port (tests).
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Load the original demo data on first start.
    pub demo: bool,
    /// With `demo`: attendees of the live simulated conference (0: none).
    pub demo_attendees: u32,
    /// Serve the web page from this directory instead of the copy built in.
    pub web_dir: Option<PathBuf>,
    /// Origins, besides pages on this machine, whose pages may call the API.
    pub cors_origins: Vec<String>,
    /// Where location-api's gRPC services listen.
    pub grpc: GrpcListen,
}

/// Where `serve` offers gRPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcListen {
    Off,
    /// The usual port: taken if free, else gRPC is off with a warning (a second `serve` on
    /// one machine still starts).
    Default(SocketAddr),
    /// Asked for: failing to bind it fails the start.
    At(SocketAddr),
}

/// A running UdaConnect.
pub struct Application {
    local_addr: SocketAddr,
    /// Flipped once to stop: the HTTP server stops accepting and drains, the consumer finishes
    /// and commits its batch.
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    consumer: JoinHandle<()>,
    demo: Option<JoinHandle<()>>,
    grpc: Option<(SocketAddr, JoinHandle<anyhow::Result<()>>)>,
    /// The contact index connection-api answers from (benchmarks time it directly).
    index: SharedIndex,
}

impl Application {
    /// Opens the data directory, starts every role, and binds the listener.
    pub async fn build(settings: ServeSettings) -> anyhow::Result<Application> {
        let stack = EmbeddedStack::open(&settings.data_dir)?;
        for r in stack.embedded_log.recoveries() {
            if r.truncated_bytes > 0 {
                tracing::warn!(topic = %r.topic, truncated_bytes = r.truncated_bytes, "log recovered after a crash");
            }
        }
        let metrics = Arc::new(Metrics::new());
        let persons: DynPersonDirectory = Arc::new(LocalPersons::new(stack.persons.clone()));
        if settings.demo {
            seed::load_once(&stack.data_dir, &stack.persons, &stack.log, &stack.ids)
                .await
                .context("failed to load the demo data")?;
        }
        let (shutdown, shutdown_rx) = watch::channel(false);

        tracing::info!(roles = ?Role::ALL.map(|r| r.name()), "starting roles");
        let person_api = Arc::new(PersonApi {
            store: stack.persons.clone(),
            metrics: metrics.clone(),
        });
        let started = std::time::Instant::now();
        let expected = stack
            .embedded_log
            .end_offset(udaconnect_core::record::LOCATION_TOPIC)
            .ok();
        let engine = MemoryEngine::build(&stack.locations, expected, |_| {}).await?;
        let indexed = engine.index.read().map(|i| i.len()).unwrap_or(0);
        tracing::info!(
            locations = indexed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "contact index built"
        );
        let index = engine.index.clone();
        let live = Arc::new(Live::new(engine.index.clone(), metrics.clone()));
        let feed_index = engine.feeder();
        let feed_live = live.clone();
        let consumer = LocationConsumer {
            log: stack.log.clone(),
            store: stack.locations.clone(),
            persons: persons.clone(),
            metrics: metrics.clone(),
            on_stored: Some(Arc::new(move |batch| {
                feed_index(batch);
                feed_live.publish(batch);
            })),
        };
        let consumer = tokio::spawn(consumer.run(shutdown_rx.clone()));
        let location_api = Arc::new(LocationApi {
            ingest: Arc::new(Ingest {
                persons: persons.clone(),
                ids: IdAllocator::new(stack.ids.clone()),
                log: stack.log.clone(),
                metrics: metrics.clone(),
            }),
            store: stack.locations.clone(),
        });
        let connection_api = Arc::new(ConnectionApi {
            engine: Arc::new(engine),
            persons: persons.clone(),
            metrics: metrics.clone(),
        });
        let checks = vec![
            ops::person_store_check(&stack.persons),
            ops::location_store_check(&stack.locations),
            ops::log_check(&stack.log),
        ];
        let ops = Arc::new(Ops {
            metrics: metrics.clone(),
            checks,
            roles: Role::ALL.iter().map(|r| r.name()).collect(),
        });

        let routes = Router::new()
            .merge(person_api::routes(person_api))
            .merge(location_api::routes(location_api.clone()))
            .merge(connection_api::routes(connection_api))
            .merge(ops::routes(ops))
            .merge(live::routes(live.clone()))
            .merge(web::routes(Arc::new(Web {
                dir: settings.web_dir.clone(),
            })));
        let router = http::with_common_layers(routes, &metrics, &settings.cors_origins);

        let demo = if settings.demo && settings.demo_attendees > 0 {
            let conference =
                LiveConference::prepare(&stack.data_dir, &stack.persons, settings.demo_attendees)
                    .await
                    .context("failed to prepare the demo conference")?;
            live.set_venue(conference.venue());
            Some(tokio::spawn(
                conference.run(location_api.clone(), shutdown_rx.clone()),
            ))
        } else {
            None
        };

        let grpc = match settings.grpc {
            GrpcListen::Off => None,
            GrpcListen::Default(addr) => match TcpListener::bind(addr).await {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::warn!(address = %addr, error = %e, "gRPC port taken; gRPC is off (--grpc-listen picks another)");
                    None
                }
            },
            GrpcListen::At(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("failed to listen for gRPC on {addr}"))?,
            ),
        };
        let grpc = match grpc {
            None => None,
            Some(listener) => {
                let addr = listener.local_addr()?;
                // The embedded log is local: gRPC health follows the process.
                let (_ready, ready_rx) = watch::channel(true);
                let service = GrpcIngest {
                    ingest: location_api.ingest.clone(),
                    metrics: metrics.clone(),
                };
                let task = tokio::spawn(grpc::serve(
                    listener,
                    service,
                    ready_rx,
                    shutdown_rx.clone(),
                ));
                Some((addr, task))
            }
        };
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("failed to listen on {}", settings.listen))?;
        let local_addr = listener.local_addr()?;
        let mut stop = shutdown_rx.clone();
        // Without TCP_NODELAY a streamed answer's last small write waits for the client's
        // delayed ACK: 40 ms added to an answer that took one.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        });
        tracing::info!(address = %local_addr, data_dir = %settings.data_dir.display(), "udaconnect is serving");
        Ok(Application {
            local_addr,
            shutdown,
            server,
            consumer,
            demo,
            grpc,
            index,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where gRPC is served, when it is.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().map(|(a, _)| *a)
    }

    pub fn contact_index(&self) -> SharedIndex {
        self.index.clone()
    }

    /// Serves until SIGINT or SIGTERM, then stops gracefully.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        shutdown_signal().await;
        tracing::info!("stopping: draining requests, committing the consumer");
        self.stop().await
    }

    /// Stops accepting, drains in-flight requests, lets the consumer commit, and returns.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        if let Some(demo) = self.demo {
            let _ = demo.await;
        }
        self.server.await.context("server task failed")??;
        if let Some((_, grpc)) = self.grpc {
            grpc.await.context("gRPC task failed")??;
        }
        self.consumer.await.context("consumer task failed")?;
        Ok(())
    }
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

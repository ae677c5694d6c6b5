//! connection-api: whom did a person meet, and the venue live. In `serve` it answers from the
//! contact index, built from the store at start and fed by the consumer in the same process;
//! apart, from the store (PostGIS) or from an index following the topic.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use udaconnect_core::consent::HandleKey;
use udaconnect_core::contact::Point;
use udaconnect_core::index::ContactIndex;
use udaconnect_core::model::Location;
use udaconnect_core::ports::StartFrom;
use udaconnect_core::{index, Error};

use crate::consume::follow::{follow, Following};
use crate::feed::{OnErased, OnStored};
use crate::http::ops;
use crate::mail::MailLog;
use crate::query::engine::DynContactEngine;
use crate::query::http::{routes, ConnectionApi};
use crate::query::limits::QueryLimiter;
use crate::query::live::{self, Live};
use crate::query::memory::MemoryEngine;
use crate::query::store::StoreEngine;
use crate::query::workers::RayonWorkers;
use crate::retention::Retention;
use crate::roles::{Readiness, Role, RunningRole};
use crate::wiring::backends::LogUrl;
use crate::wiring::context::{Context, Mode};

/// What answers connection-api's queries when it runs apart.
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

pub async fn start(ctx: &mut Context) -> anyhow::Result<Option<RunningRole>> {
    const ROLE: Role = Role::ConnectionApi;
    let Some(stores) = ctx.stores(ROLE).await? else {
        return Ok(None);
    };
    let persons = ctx.persons(ROLE)?;
    let live = Arc::new(Live::new(
        ctx.index.clone(),
        ctx.metrics.clone(),
        ctx.auth.clone(),
        persons.clone(),
        &ctx.options.edge.live,
    ));
    ctx.live = Some(live.clone());
    // Every batch this role learns of goes to its index and to the browsers watching live.
    let to_index_and_live: OnStored = {
        let (index, live) = (ctx.index.clone(), live.clone());
        Arc::new(move |batch: &[Location]| {
            index::feed(&index, batch.iter().map(Point::from));
            live.publish(batch);
        })
    };
    // An erased person's pings leave the index (the live view reads the index too).
    let drop_from_index: OnErased = {
        let index = ctx.index.clone();
        Arc::new(move |person| drop_person(&index, person))
    };
    let mut role = RunningRole::new(axum::Router::new());
    role.checks
        .push((Readiness::LocationStore, ops::ping_check(&stores.locations)));
    let store_engine: DynContactEngine = Arc::new(StoreEngine {
        store: stores.locations.clone(),
    });
    let memory_engine: DynContactEngine = Arc::new(MemoryEngine {
        index: ctx.index.clone(),
    });
    let (engine, live_view) = match ctx.mode {
        Mode::Together => {
            let started = Instant::now();
            let built =
                MemoryEngine::build_index(&stores.locations, ctx.expected_locations(), |_| {})
                    .await?;
            let indexed = built.len();
            *ctx.index.write().unwrap_or_else(|e| e.into_inner()) = built;
            tracing::info!(
                locations = indexed,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "contact index built"
            );
            // The consumer starts after this role, so it feeds the index every batch stored
            // after the build read the store; a batch stored during the build may come twice,
            // which the index takes as once.
            ctx.receive_stored(to_index_and_live);
            ctx.receive_erased(drop_from_index);
            (memory_engine, true)
        }
        Mode::Apart => {
            let engine = ctx.options.engine;
            let kafka = matches!(ctx.log_url(), Some(LogUrl::Kafka(_)));
            if engine == EngineKind::Memory && !kafka {
                anyhow::bail!("--engine memory needs a Kafka log (--log kafka://...)");
            }
            if kafka {
                // With a Kafka log, the venue live (positions, heat, the event stream the web
                // page shows) follows the topic; an embedded log belongs to the one process
                // that writes it.
                let (caught_up_tx, caught_up) = tokio::sync::watch::channel(false);
                let start = match engine {
                    EngineKind::Memory => StartFrom::Earliest,
                    EngineKind::Store => StartFrom::Latest,
                };
                let index = ctx.index.clone();
                let started = Instant::now();
                let read_to_end = move || {
                    let indexed = index.read().map(|i| i.len()).unwrap_or(0);
                    tracing::info!(
                        locations = indexed,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "contact index has read the log"
                    );
                    caught_up_tx.send_replace(true);
                };
                let following = Following {
                    persons: persons.clone(),
                    keys: stores.keys.clone(),
                    on_read: to_index_and_live,
                    on_erased: drop_from_index,
                };
                let follower = follow(
                    ctx.log(ROLE)?,
                    start,
                    following,
                    read_to_end,
                    ctx.stop.clone(),
                );
                role.tasks
                    .push(tokio::spawn(async move { Ok(follower.await?) }));
                if engine == EngineKind::Memory {
                    // The index following the topic drops old pings as the store does.
                    if let Some(mut job) =
                        Retention::new(&ctx.options.retention, ctx.metrics.clone())
                    {
                        job.index = Some(ctx.index.clone());
                        let (every, stop) = (ctx.options.retention.every, ctx.stop.clone());
                        role.tasks.push(tokio::spawn(async move {
                            job.run(every, stop).await;
                            Ok(())
                        }));
                    }
                    role.checks.push((
                        Readiness::ContactIndex,
                        ops::check(move || {
                            let ready = *caught_up.borrow();
                            async move {
                                ready.then_some(()).ok_or_else(|| {
                                    Error::Unavailable("contact index (reading the log)".into())
                                })
                            }
                        }),
                    ));
                }
            }
            match engine {
                EngineKind::Memory => (memory_engine, kafka),
                EngineKind::Store => (store_engine, kafka),
            }
        }
    };
    // Requests to exchange e-mail addresses are mailed through the log: the process's own in
    // `serve`, Kafka apart (an embedded log belongs to the one process that writes it).
    let log = match ctx.mode {
        Mode::Together => Some(ctx.log(ROLE)?),
        Mode::Apart if matches!(ctx.log_url(), Some(LogUrl::Kafka(_))) => Some(ctx.log(ROLE)?),
        Mode::Apart => {
            tracing::warn!("no Kafka log: requests to exchange e-mail addresses are not mailed");
            None
        }
    };
    // Every connection-api of a deployment makes the same handles from the shared key; a
    // process without one makes its own, good while it runs.
    let handles = match ctx.auth.gateway_key() {
        Some(key) => HandleKey::new(&key.derive("contact handles"))?,
        None => HandleKey::random()?,
    };
    role.router = routes(Arc::new(ConnectionApi {
        engine,
        persons,
        metrics: ctx.metrics.clone(),
        limiter: QueryLimiter::new(ctx.options.edge.query.clone(), ctx.metrics.clone()),
        auth: ctx.auth.clone(),
        locations: stores.locations.clone(),
        log: log.map(|log| MailLog {
            log,
            keys: stores.keys.clone(),
        }),
        handles,
        public_url: ctx.options.signin.public_url.clone().unwrap_or_default(),
        exports: Default::default(),
    }));
    if live_view {
        role.router = role.router.merge(live::routes(live));
    }
    Ok(Some(role))
}

/// Rebuilds `index` without `person`'s pings, if it holds any. Under the write lock, so no
/// batch fed meanwhile is lost: queries and feeding wait for the rebuild (about what loading
/// the index at start takes), which erasures, being rare, can afford.
fn drop_person(
    index: &crate::query::engine::SharedIndex,
    person: udaconnect_core::model::PersonId,
) {
    let started = Instant::now();
    let mut current = index.write().unwrap_or_else(|e| e.into_inner());
    let Some(without) = current.without_person(person) else {
        return;
    };
    *current = without;
    tracing::info!(
        locations = current.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "erased person dropped from the contact index"
    );
}

/// An empty index for a process to share among its roles.
pub fn new_index() -> crate::query::engine::SharedIndex {
    Arc::new(RwLock::new(ContactIndex::new(
        Arc::new(RayonWorkers::new()),
    )))
}

//! location-api: accepts pings over HTTP and gRPC (and from tracker apps: OwnTracks, Traccar
//! Client, OsmAnd, with their devices), gives each an id, and acknowledges once the log has it
//! durably; reads single stored locations back.

use std::sync::Arc;

use udaconnect_core::clock::SystemClock;
use udaconnect_core::ports::DynLog;

use crate::ingest::floor::LogFloor;
use crate::ingest::grpc::GrpcIngest;
use crate::ingest::http::{routes, LocationApi};
use crate::ingest::trackers::{self, Trackers};
use crate::ingest::{IdAllocator, Ingest};
use crate::roles::{location_store_and_log, Role, RunningRole};
use crate::wiring::backends::Stores;
use crate::wiring::context::{Context, Mode};

pub async fn start(ctx: &mut Context) -> anyhow::Result<Option<RunningRole>> {
    const ROLE: Role = Role::LocationApi;
    let Some((stores, log, ingest)) = ingest(ctx, ROLE).await? else {
        return Ok(None);
    };
    let trackers = Arc::new(Trackers::new(
        ingest.clone(),
        ctx.account_store().await?,
        Arc::new(SystemClock),
        &ctx.options.edge,
        ctx.auth.clone(),
    ));
    let router = routes(Arc::new(LocationApi {
        ingest: ingest.clone(),
        store: stores.locations.clone(),
    }))
    .merge(trackers::routes(trackers.clone()));
    let mut role = RunningRole::new(router);
    role.osmand = Some(trackers::osmand_listener_routes(trackers));
    role.checks = location_store_and_log(&stores, &log);
    role.grpc = Some(GrpcIngest {
        ingest,
        metrics: ctx.metrics.clone(),
        limit: ctx.ingest_limit.clone(),
        auth: ctx.auth.clone(),
    });
    Ok(Some(role))
}

/// The ingest use case of the process, and the stores and log it writes to: location-api's
/// when it was started here before `role`, else a new one (location-api itself, or
/// tracker-mqtt apart). `None` when the role is asked to stop before its store opens.
pub(crate) async fn ingest(
    ctx: &mut Context,
    role: Role,
) -> anyhow::Result<Option<(Stores, DynLog, Arc<Ingest>)>> {
    let Some((stores, persons, log)) = ctx.stores_persons_log(role).await? else {
        return Ok(None);
    };
    if let Some(ingest) = &ctx.ingest {
        return Ok(Some((stores, log, ingest.clone())));
    }
    let mut ids = stores.ids.clone();
    if ctx.mode == Mode::Apart {
        // A database restored from a backup may have a lease below ids it stores, or below
        // ids only the log holds yet (`serve` checks its data directory before any role
        // starts).
        if let Some(max) = stores.locations.max_leased_id().await? {
            stores.ids.reserve_through(max).await?;
        }
        let floor = Arc::new(LogFloor::new(
            stores.ids.clone(),
            log.clone(),
            stores.keys.clone(),
        ));
        // Read now, so the first ping need not wait for it; a failure (the broker not up
        // yet) is tried again by the first lease.
        tokio::spawn({
            let floor = floor.clone();
            async move { floor.raise().await }
        });
        ids = floor;
    }
    let ingest = Arc::new(Ingest {
        persons,
        ids: IdAllocator::new(ids),
        log: log.clone(),
        keys: stores.keys.clone(),
        metrics: ctx.metrics.clone(),
        clock: Arc::new(SystemClock),
        future_skew: ctx.options.edge.future_skew,
        disk: ctx.disk.clone(),
    });
    ctx.ingest = Some(ingest.clone());
    Ok(Some((stores, log, ingest)))
}

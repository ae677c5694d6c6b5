//! location-api: accepts pings over HTTP and gRPC, gives each an id, and acknowledges once the
//! log has it durably; reads single stored locations back.

use std::sync::Arc;

use crate::http::ops;
use crate::ingest::grpc::GrpcIngest;
use crate::ingest::http::{routes, LocationApi};
use crate::ingest::{IdAllocator, Ingest};
use crate::roles::{Readiness, Role, RunningRole};
use crate::wiring::context::Context;

pub async fn start(ctx: &mut Context) -> anyhow::Result<Option<RunningRole>> {
    const ROLE: Role = Role::LocationApi;
    let Some(stores) = ctx.stores(ROLE).await? else {
        return Ok(None);
    };
    let persons = ctx.persons(ROLE)?;
    let log = ctx.log(ROLE)?;
    let ingest = Arc::new(Ingest {
        persons,
        ids: IdAllocator::new(stores.ids.clone()),
        log: log.clone(),
        metrics: ctx.metrics.clone(),
    });
    ctx.ingest = Some(ingest.clone());
    let mut role = RunningRole::new(routes(Arc::new(LocationApi {
        ingest: ingest.clone(),
        store: stores.locations.clone(),
    })));
    role.checks = vec![
        (Readiness::LocationStore, ops::ping_check(&stores.locations)),
        (Readiness::Log, ops::ping_check(&log)),
    ];
    role.grpc = Some(GrpcIngest {
        ingest,
        metrics: ctx.metrics.clone(),
    });
    Ok(Some(role))
}

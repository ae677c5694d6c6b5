//! location-consumer: stores the log's pings, dead-letters what it cannot store, and commits
//! after both are durable; hands every stored batch to the receivers in its process.

use crate::consume::consumer::LocationConsumer;
use crate::http::ops;
use crate::roles::{Readiness, Role, RunningRole};
use crate::wiring::context::Context;

pub async fn start(ctx: &mut Context) -> anyhow::Result<Option<RunningRole>> {
    const ROLE: Role = Role::LocationConsumer;
    let Some(stores) = ctx.stores(ROLE).await? else {
        return Ok(None);
    };
    let persons = ctx.persons(ROLE)?;
    let log = ctx.log(ROLE)?;
    let consumer = LocationConsumer {
        log: log.clone(),
        store: stores.locations.clone(),
        persons,
        metrics: ctx.metrics.clone(),
        on_stored: ctx.stored_receivers(),
    };
    let stop = ctx.stop.clone();
    let mut role = RunningRole::new(axum::Router::new());
    role.checks = vec![
        (Readiness::LocationStore, ops::ping_check(&stores.locations)),
        (Readiness::Log, ops::ping_check(&log)),
    ];
    role.tasks.push(tokio::spawn(async move {
        consumer.run(stop).await;
        Ok(())
    }));
    Ok(Some(role))
}

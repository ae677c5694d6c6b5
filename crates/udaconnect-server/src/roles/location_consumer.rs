//! location-consumer: stores the log's pings, dead-letters what it cannot store, and commits
//! after both are durable; hands every stored batch to the receivers in its process.

use crate::consume::consumer::LocationConsumer;
use crate::roles::{location_store_and_log, Role, RunningRole};
use crate::wiring::context::Context;

pub async fn start(ctx: &mut Context) -> anyhow::Result<Option<RunningRole>> {
    const ROLE: Role = Role::LocationConsumer;
    let Some((stores, persons, log)) = ctx.stores_persons_log(ROLE).await? else {
        return Ok(None);
    };
    let consumer = LocationConsumer {
        log: log.clone(),
        store: stores.locations.clone(),
        persons,
        metrics: ctx.metrics.clone(),
        on_stored: ctx.stored_receivers(),
    };
    let stop = ctx.stop.clone();
    let mut role = RunningRole::new(axum::Router::new());
    role.checks = location_store_and_log(&stores, &log);
    role.tasks.push(tokio::spawn(async move {
        consumer.run(stop).await;
        Ok(())
    }));
    Ok(Some(role))
}

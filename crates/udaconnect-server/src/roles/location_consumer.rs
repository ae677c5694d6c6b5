//! location-consumer: stores the log's pings, dead-letters what it cannot store, and commits
//! after both are durable; hands every stored batch to the receivers in its process.

use udaconnect_core::Error;

use crate::consume::consumer::LocationConsumer;
use crate::consume::dlq;
use crate::consume::health::ConsumerHealth;
use crate::http::ops;
use crate::retention::Retention;
use crate::roles::{location_store_and_log, Readiness, Role, RunningRole};
use crate::wiring::context::{Context, Mode};

pub async fn start(ctx: &mut Context) -> anyhow::Result<Option<RunningRole>> {
    const ROLE: Role = Role::LocationConsumer;
    let Some((stores, persons, log)) = ctx.stores_persons_log(ROLE).await? else {
        return Ok(None);
    };
    let health = ConsumerHealth::new(ctx.metrics.clone());
    let consumer = LocationConsumer {
        log: log.clone(),
        store: stores.locations.clone(),
        persons,
        keys: stores.keys.clone(),
        metrics: ctx.metrics.clone(),
        on_stored: ctx.stored_receivers(),
        on_erased: ctx.erased_receivers(),
        health: Some(health.clone()),
    };
    let stop = ctx.stop.clone();
    let mut role = RunningRole::new(axum::Router::new());
    role.checks = location_store_and_log(&stores, &log);
    role.checks.push((
        Readiness::Consumer,
        ops::check(move || {
            let health = health.clone();
            async move { health.check().map_err(Error::Unavailable) }
        }),
    ));
    role.tasks.push(tokio::spawn(async move {
        consumer.run(stop).await;
        Ok(())
    }));
    let depth = dlq::watch_depth(
        log.clone(),
        stores.locations.clone(),
        stores.keys.clone(),
        ctx.metrics.clone(),
        ctx.stop.clone(),
    );
    role.tasks.push(tokio::spawn(async move {
        depth.await;
        Ok(())
    }));
    // Apart, this role removes old pings from the store it writes, and has the broker
    // delete old records; in `serve` the process's one job does both.
    let retention = &ctx.options.retention;
    if let (Mode::Apart, Some(mut job), Some(keep)) = (
        ctx.mode,
        Retention::new(retention, ctx.metrics.clone()),
        retention.keep,
    ) {
        job.store = Some(stores.locations.clone());
        let (every, stop) = (retention.every, ctx.stop.clone());
        role.tasks.push(tokio::spawn(async move {
            job.run(every, stop).await;
            Ok(())
        }));
        #[cfg(feature = "kafka")]
        if let Some(crate::wiring::backends::LogUrl::Kafka(url)) = ctx.log_url() {
            let set = crate::retention::set_kafka_retention(url.clone(), keep, ctx.stop.clone());
            role.tasks.push(tokio::spawn(async move {
                set.await;
                Ok(())
            }));
        }
        #[cfg(not(feature = "kafka"))]
        let _ = keep;
    }
    Ok(Some(role))
}

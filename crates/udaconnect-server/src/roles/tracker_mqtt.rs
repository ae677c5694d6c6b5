//! tracker-mqtt: OwnTracks phones in MQTT mode. Reads the devices' topics on an MQTT broker
//! (`--mqtt`), takes each message as location-api takes a ping, and acknowledges it to the
//! broker once durable in the log (see [`crate::ingest::trackers::mqtt`]); serves only
//! /health, /ready and /metrics.

use std::sync::Arc;

use anyhow::Context as _;
use udaconnect_core::clock::SystemClock;

use crate::http::ops;
use crate::ingest::trackers::mqtt::{self, Connected};
use crate::ingest::trackers::Trackers;
use crate::roles::{location_api, location_store_and_log, Readiness, Role, RunningRole};
use crate::wiring::context::{Context, Mode};

pub async fn start(ctx: &mut Context) -> anyhow::Result<Option<RunningRole>> {
    const ROLE: Role = Role::TrackerMqtt;
    let settings = ctx
        .options
        .mqtt
        .clone()
        .context("tracker-mqtt reads a broker: give --mqtt mqtt://host:1883")?;
    let Some((stores, log, ingest)) = location_api::ingest(ctx, ROLE).await? else {
        return Ok(None);
    };
    let trackers = Arc::new(Trackers::new(
        ingest,
        ctx.account_store().await?,
        Arc::new(SystemClock),
        &ctx.options.edge,
        ctx.auth.clone(),
    ));
    let mut role = RunningRole::new(axum::Router::new());
    role.checks = location_store_and_log(&stores, &log);
    let connected = Connected::default();
    let up = connected.clone();
    // Apart only: in `serve` a broker away would take the whole API out of rotation; there the
    // log says when the connection is lost.
    if ctx.mode == Mode::Apart {
        role.checks.push((
            Readiness::MqttBroker,
            ops::check(move || {
                let up = up.is_up();
                async move {
                    match up {
                        true => Ok(()),
                        false => Err(udaconnect_core::Error::Unavailable(
                            "the MQTT broker".to_string(),
                        )),
                    }
                }
            }),
        ));
    }
    tracing::info!(broker = %settings.broker, client_id = %settings.client_id, "reading OwnTracks topics");
    role.tasks.push(tokio::spawn(mqtt::run(
        trackers,
        settings,
        ctx.metrics.clone(),
        connected,
        ctx.stop.clone(),
    )));
    Ok(Some(role))
}

//! The venue live: where everyone is now, pushed to browsers as pings are stored.
//!
//! The consumer hands every stored batch to [`Live::publish`]; each `/api/live/stream` client
//! receives them as server-sent events, with the ingest rate once a second. Snapshots (latest
//! position of each person, recent density) come from the contact index.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::broadcast;
use udaconnect_core::clock::{Clock, SystemClock};
use udaconnect_core::model::Location;
use udaconnect_core::time::{format_utc, to_micros};
use udaconnect_core::venue::Venue;
use udaconnect_core::Error;

use crate::access::ruled;
use crate::http::problem::{ApiResult, Problem};
use crate::http::Params;
use crate::metrics::Metrics;
use crate::query::engine::SharedIndex;

/// Batches kept for a slow browser before it skips ahead.
const BACKLOG: usize = 256;
/// Most minutes a heat map may cover.
const MAX_HEAT_MINUTES: f64 = 24.0 * 60.0;
/// Heat-map cells are this many degrees of latitude and longitude (about 5 m of latitude).
const HEAT_CELL_DEG: f64 = 0.000_045;

pub struct Live {
    batches: broadcast::Sender<Arc<Vec<Location>>>,
    index: SharedIndex,
    metrics: Arc<Metrics>,
    venue: RwLock<Option<Venue>>,
}

impl Live {
    pub fn new(index: SharedIndex, metrics: Arc<Metrics>) -> Self {
        Live {
            batches: broadcast::channel(BACKLOG).0,
            index,
            metrics,
            venue: RwLock::new(None),
        }
    }

    /// Hands a stored batch to every connected browser; free when none is connected.
    pub fn publish(&self, batch: &[Location]) {
        if self.batches.receiver_count() > 0 && !batch.is_empty() {
            let _ = self.batches.send(Arc::new(batch.to_vec()));
        }
    }

    /// The plan of the venue the locations belong to, when one is known (the demo's).
    pub fn set_venue(&self, venue: Venue) {
        if let Ok(mut v) = self.venue.write() {
            *v = Some(venue);
        }
    }
}

pub fn routes(live: Arc<Live>) -> Router {
    ruled![
        "/api/live/stream" => LiveStream on Service: get(stream),
        "/api/live/positions" => LivePositions on Service: get(positions),
        "/api/live/heat" => LiveHeat on Service: get(heat),
        "/api/venue" => GetVenue on Service: get(venue),
    ]
    .with_state(live)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Rate {
    pub time: String,
    /// Pings acknowledged in the last second.
    pub pings_per_second: u64,
    /// Pings acknowledged since start.
    pub total: u64,
}

/// Live events: `positions` (a JSON array of stored locations, as they are stored) and
/// `rate` (`{"time","pings_per_second","total"}`, once a second).
#[utoipa::path(get, path = "/api/live/stream", tag = "live",
    responses((status = 200, description = "Server-sent events", content_type = "text/event-stream")))]
pub async fn stream(
    State(live): State<Arc<Live>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = live.batches.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let last = live.metrics.locations_accepted.get();
    let events = futures_util::stream::unfold(
        (rx, tick, last, live),
        |(mut rx, mut tick, last, live)| async move {
            loop {
                tokio::select! {
                    batch = rx.recv() => match batch {
                        Ok(batch) => {
                            let event = Event::default().event("positions").json_data(&*batch).ok()?;
                            return Some((Ok(event), (rx, tick, last, live)));
                        }
                        // A browser too slow for the flow skips ahead; the next batch resyncs it.
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = tick.tick() => {
                        let total = live.metrics.locations_accepted.get();
                        let rate = Rate { time: format_utc(SystemClock.now()), pings_per_second: total.saturating_sub(last), total };
                        let event = Event::default().event("rate").json_data(&rate).ok()?;
                        return Some((Ok(event), (rx, tick, total, live)));
                    }
                }
            }
        },
    );
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// The latest ping of every person (by ping time).
#[utoipa::path(get, path = "/api/live/positions", tag = "live",
    responses((status = 200, description = "One location per person", body = [Location])))]
pub async fn positions(State(live): State<Arc<Live>>) -> Json<Vec<Location>> {
    let index = live.index.read().unwrap_or_else(|e| e.into_inner());
    let mut out: Vec<Location> = index
        .latest()
        .iter()
        .map(|&s| Location::from(&index.point(s)))
        .collect();
    out.sort_by_key(|l| l.person_id);
    Json(out)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct HeatCell {
    pub latitude: f64,
    pub longitude: f64,
    pub count: u32,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Heat {
    /// The earliest ping time counted.
    pub since: String,
    /// Cell size, in degrees of latitude and of longitude.
    pub cell_degrees: f64,
    pub cells: Vec<HeatCell>,
}

/// Where pings were in the last `minutes` (default 10): counts per small cell.
#[utoipa::path(get, path = "/api/live/heat", tag = "live",
    params(("minutes" = Option<f64>, Query, minimum = 0, maximum = 1440, description = "How far back, 0 to 1440 (default 10)")),
    responses(
        (status = 200, description = "Counts per cell", body = Heat),
        (status = 400, description = "Bad minutes", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn heat(State(live): State<Arc<Live>>, Params(params): Params) -> ApiResult<Json<Heat>> {
    let minutes = match params.get("minutes").map(|m| m.trim().parse::<f64>()) {
        None => 10.0,
        Some(Ok(m)) if (0.0..=MAX_HEAT_MINUTES).contains(&m) => m,
        Some(_) => {
            return Err(Error::bad_request(
                "minutes",
                format!("must be a number from 0 to {MAX_HEAT_MINUTES}"),
            )
            .into())
        }
    };
    let since = SystemClock.now() - chrono::Duration::milliseconds((minutes * 60_000.0) as i64);
    let index = live.index.read().unwrap_or_else(|e| e.into_inner());
    let mut cells: HashMap<(i64, i64), u32> = HashMap::new();
    for s in index.since(to_micros(since)) {
        let p = index.point(s);
        let key = (
            (p.lat / HEAT_CELL_DEG).floor() as i64,
            (p.lon / HEAT_CELL_DEG).floor() as i64,
        );
        *cells.entry(key).or_default() += 1;
    }
    let mut cells: Vec<HeatCell> = cells
        .into_iter()
        .map(|((a, b), count)| HeatCell {
            latitude: (a as f64 + 0.5) * HEAT_CELL_DEG,
            longitude: (b as f64 + 0.5) * HEAT_CELL_DEG,
            count,
        })
        .collect();
    cells.sort_by_key(|c| std::cmp::Reverse(c.count));
    Ok(Json(Heat {
        since: format_utc(since),
        cell_degrees: HEAT_CELL_DEG,
        cells,
    }))
}

/// The venue plan, in local metres from its south-west corner.
#[utoipa::path(get, path = "/api/venue", tag = "live",
    responses(
        (status = 200, description = "The plan", body = Venue),
        (status = 404, description = "No venue is known (no simulated conference runs)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn venue(State(live): State<Arc<Live>>) -> ApiResult<Json<Venue>> {
    live.venue
        .read()
        .ok()
        .and_then(|v| v.clone())
        .map(Json)
        .ok_or_else(|| Error::not_found("venue", "plan").into())
}

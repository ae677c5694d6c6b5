//! The venue live: where everyone is now, pushed to browsers as pings are stored, for
//! organizers, in views that cannot single a person out (see [`crate::query::crowd`]).
//!
//! The consumer tells [`Live::publish`] of every stored batch; each `/api/live/stream` client
//! then receives the whole map of dots anew (at most four times a second), and the ingest
//! rate once a second. Snapshots (dots, heat, people per room) come from the contact index.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::watch;
use udaconnect_core::clock::{Clock, SystemClock};
use udaconnect_core::model::PersonId;
use udaconnect_core::time::{format_utc, to_micros};
use udaconnect_core::venue::Venue;
use udaconnect_core::Error;

use crate::access::{ruled, Authenticator};
use crate::http::problem::{ApiResult, Problem};
use crate::http::Params;
use crate::metrics::Metrics;
use crate::persons::DynPersonDirectory;
use crate::query::crowd::{self, HEAT_CELL_DEG};
pub use crate::query::crowd::{Dot, HeatCell, ZoneCount};
use crate::query::engine::SharedIndex;

/// Most minutes a heat map or a room count may cover.
const MAX_HEAT_MINUTES: f64 = 24.0 * 60.0;
/// Least time between two maps of dots sent to one browser while pings flow.
const DOTS_EVERY: Duration = Duration::from_millis(250);
/// How long the list of attendees shown by name is reused before the store is asked again:
/// a choice to be shown, or no longer, takes effect within it.
const NAMED_FOR: Duration = Duration::from_secs(2);

/// Five people at least behind every count and anonymous dot an organizer sees: a common
/// choice for published location statistics, and small enough for a booth.
pub const DEFAULT_K_ANONYMITY: u32 = 5;

/// What the venue live is told at start.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSettings {
    /// The fewest distinct people behind a count or an anonymous dot (2 at least).
    pub k_anonymity: u32,
    /// The venue's plan, for people per room and booth (`serve --demo` has its own).
    pub venue: Option<Venue>,
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings {
            k_anonymity: DEFAULT_K_ANONYMITY,
            venue: None,
        }
    }
}

/// Attendees shown by name on the live map, with their names.
type Named = Arc<HashMap<PersonId, String>>;

pub struct Live {
    /// Counts stored batches: a browser sends a new map when it moves.
    stored: watch::Sender<u64>,
    index: SharedIndex,
    metrics: Arc<Metrics>,
    venue: RwLock<Option<Venue>>,
    /// The fewest distinct people behind a count or an anonymous dot.
    k: usize,
    /// The account store: who chose to be shown by name.
    auth: Arc<Authenticator>,
    /// The names of those.
    persons: DynPersonDirectory,
    /// Those shown by name, and when the store was asked.
    named: tokio::sync::Mutex<Option<(Instant, Named)>>,
}

impl Live {
    pub fn new(
        index: SharedIndex,
        metrics: Arc<Metrics>,
        auth: Arc<Authenticator>,
        persons: DynPersonDirectory,
        settings: &LiveSettings,
    ) -> Self {
        Live {
            stored: watch::channel(0).0,
            index,
            metrics,
            venue: RwLock::new(settings.venue.clone()),
            k: settings.k_anonymity.max(2) as usize,
            auth,
            persons,
            named: tokio::sync::Mutex::new(None),
        }
    }

    /// Tells every connected browser the map moved; free when none is connected.
    pub fn publish(&self, batch: &[udaconnect_core::model::Location]) {
        if !batch.is_empty() {
            self.stored.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// The plan of the venue the locations belong to (the demo's, over `--venue`'s).
    pub fn set_venue(&self, venue: Venue) {
        if let Ok(mut v) = self.venue.write() {
            *v = Some(venue);
        }
    }

    /// The attendees who chose to be shown by name, with their names. When the store cannot
    /// say, nobody is: the map falls back to anonymous dots, never to names.
    async fn named(&self) -> Named {
        let mut cached = self.named.lock().await;
        if let Some((at, named)) = cached.as_ref() {
            if at.elapsed() < NAMED_FOR {
                return named.clone();
            }
        }
        let named = Arc::new(self.ask_named().await.unwrap_or_else(|error| {
            tracing::warn!(%error, "live map: who is shown by name is unknown, showing nobody");
            HashMap::new()
        }));
        *cached = Some((Instant::now(), named.clone()));
        named
    }

    async fn ask_named(&self) -> udaconnect_core::Result<HashMap<PersonId, String>> {
        let ids = self.auth.store().await?.persons_on_live_map().await?;
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let persons = self.persons.get_many(&ids).await?;
        Ok(persons
            .into_iter()
            .map(|p| (p.id, format!("{} {}", p.first_name, p.last_name)))
            .collect())
    }

    /// Everyone's latest ping as organizers may see it.
    async fn dots(&self) -> Vec<Dot> {
        let named = self.named().await;
        let venue = self.venue.read().ok().and_then(|v| v.clone());
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        let latest: Vec<_> = index.latest().iter().map(|&s| index.point(s)).collect();
        drop(index);
        crowd::dots(venue.as_ref(), &latest, &named, self.k)
    }
}

pub fn routes(live: Arc<Live>) -> Router {
    ruled![
        "/api/live/stream" => LiveStream on Service: get(stream),
        "/api/live/positions" => LivePositions on Service: get(positions),
        "/api/live/heat" => LiveHeat on Service: get(heat),
        "/api/live/zones" => LiveZones on Service: get(zones),
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

/// What a stream holds between two events.
struct Watching {
    live: Arc<Live>,
    stored: watch::Receiver<u64>,
    tick: tokio::time::Interval,
    last_total: u64,
    /// The map moved since the last one sent.
    moved: bool,
    last_sent: Option<Instant>,
}

/// Live events: `dots` (the whole map, as `GET /api/live/positions` answers: anonymous dots
/// carry no id, so each map replaces the last), sent when pings were stored, at most four
/// times a second; and `rate` (`{"time","pings_per_second","total"}`, once a second).
#[utoipa::path(get, path = "/api/live/stream", tag = "live",
    responses((status = 200, description = "Server-sent events", content_type = "text/event-stream")))]
pub async fn stream(
    State(live): State<Arc<Live>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let watching = Watching {
        stored: live.stored.subscribe(),
        last_total: live.metrics.locations_accepted.get(),
        live,
        tick,
        moved: false,
        last_sent: None,
    };
    let events = futures_util::stream::unfold(watching, |mut w| async move {
        loop {
            let wait = match (w.moved, w.last_sent) {
                (true, Some(at)) => DOTS_EVERY.saturating_sub(at.elapsed()),
                (true, None) => Duration::ZERO,
                (false, _) => Duration::from_secs(3600),
            };
            tokio::select! {
                changed = w.stored.changed(), if !w.moved => {
                    changed.ok()?;
                    w.moved = true;
                }
                _ = tokio::time::sleep(wait), if w.moved => {
                    w.moved = false;
                    w.last_sent = Some(Instant::now());
                    w.stored.mark_unchanged();
                    let dots = w.live.dots().await;
                    let event = Event::default().event("dots").json_data(&dots).ok()?;
                    return Some((Ok(event), w));
                }
                _ = w.tick.tick() => {
                    let total = w.live.metrics.locations_accepted.get();
                    let rate = Rate { time: format_utc(SystemClock.now()), pings_per_second: total.saturating_sub(w.last_total), total };
                    w.last_total = total;
                    let event = Event::default().event("rate").json_data(&rate).ok()?;
                    return Some((Ok(event), w));
                }
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// Everyone's latest ping, as organizers may see it: a dot named only for an attendee who
/// chose it (`PUT /api/me/visibility {"on_live_map": true}`); the others anonymous (no id,
/// no name, to about a metre and the minute), and left out where fewer than k anonymous
/// people are in their place (the smallest room or booth of the plan holding them, else a
/// cell of about 50 m). Sorted by position, so the order says nothing of who is who.
#[utoipa::path(get, path = "/api/live/positions", tag = "live",
    responses((status = 200, description = "One dot per person shown", body = [Dot])))]
pub async fn positions(State(live): State<Arc<Live>>) -> Json<Vec<Dot>> {
    Json(live.dots().await)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Heat {
    /// The earliest ping time counted.
    pub since: String,
    /// Cell size, in degrees of latitude and of longitude.
    pub cell_degrees: f64,
    /// The fewest distinct persons a cell shown holds.
    pub k: u32,
    pub cells: Vec<HeatCell>,
}

/// Distinct persons per room and booth of the venue plan.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Zones {
    /// The earliest ping time counted.
    pub since: String,
    /// The fewest distinct persons an area shown holds.
    pub k: u32,
    /// The areas with k persons at least, in the plan's order; the others are left out.
    pub zones: Vec<ZoneCount>,
}

/// The window of `minutes` (default 10) back from now.
fn window(params: &HashMap<String, String>) -> Result<chrono::DateTime<chrono::Utc>, Error> {
    let minutes = match params.get("minutes").map(|m| m.trim().parse::<f64>()) {
        None => 10.0,
        Some(Ok(m)) if (0.0..=MAX_HEAT_MINUTES).contains(&m) => m,
        Some(_) => {
            return Err(Error::bad_request(
                "minutes",
                format!("must be a number from 0 to {MAX_HEAT_MINUTES}"),
            ))
        }
    };
    Ok(SystemClock.now() - chrono::Duration::milliseconds((minutes * 60_000.0) as i64))
}

impl Live {
    /// Every ping since `since`.
    fn pings_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Vec<udaconnect_core::contact::Point> {
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        index
            .since(to_micros(since))
            .into_iter()
            .map(|s| index.point(s))
            .collect()
    }
}

/// Where people were in the last `minutes` (default 10): distinct persons per small cell,
/// only cells with k at least (smaller counts are left out, not rounded).
#[utoipa::path(get, path = "/api/live/heat", tag = "live",
    params(("minutes" = Option<f64>, Query, minimum = 0, maximum = 1440, description = "How far back, 0 to 1440 (default 10)")),
    responses(
        (status = 200, description = "Distinct persons per cell, k at least", body = Heat),
        (status = 400, description = "Bad minutes", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn heat(State(live): State<Arc<Live>>, Params(params): Params) -> ApiResult<Json<Heat>> {
    let since = window(&params)?;
    let cells = crowd::heat(live.pings_since(since), live.k);
    Ok(Json(Heat {
        since: format_utc(since),
        cell_degrees: HEAT_CELL_DEG,
        k: live.k as u32,
        cells,
    }))
}

/// How many distinct persons were in each room and booth of the venue plan in the last
/// `minutes` (default 10): only areas with k at least (smaller counts are left out). No area
/// without a plan (`serve --demo`'s, or `--venue`).
#[utoipa::path(get, path = "/api/live/zones", tag = "live",
    params(("minutes" = Option<f64>, Query, minimum = 0, maximum = 1440, description = "How far back, 0 to 1440 (default 10)")),
    responses(
        (status = 200, description = "Distinct persons per area, k at least", body = Zones),
        (status = 400, description = "Bad minutes", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn zones(
    State(live): State<Arc<Live>>,
    Params(params): Params,
) -> ApiResult<Json<Zones>> {
    let since = window(&params)?;
    let venue = live.venue.read().ok().and_then(|v| v.clone());
    let zones = match venue {
        Some(venue) => crowd::zones(&venue, live.pings_since(since), live.k),
        None => Vec::new(),
    };
    Ok(Json(Zones {
        since: format_utc(since),
        k: live.k as u32,
        zones,
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

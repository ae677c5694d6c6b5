//! connection-api: whom did a person meet, where and when.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use udaconnect_core::contact::{self, ConnectionQuery, Point};
use udaconnect_core::model::{Connection, Location, PersonId};
use udaconnect_core::ports::DynLocationStore;
use udaconnect_core::time::to_micros;
use udaconnect_core::{validate, Error, Result};

use crate::directory::DynPersonDirectory;
use crate::http::Params;
use crate::metrics::Metrics;
use crate::problem::{ApiResult, Problem};

pub struct ConnectionApi {
    pub locations: DynLocationStore,
    pub persons: DynPersonDirectory,
    pub metrics: Arc<Metrics>,
}

pub fn routes(api: Arc<ConnectionApi>) -> Router {
    Router::new()
        .route("/api/persons/{id}/connection", get(find_connections))
        .with_state(api)
}

fn point(l: &Location) -> Point {
    Point {
        id: l.id,
        person_id: l.person_id,
        lat: l.latitude,
        lon: l.longitude,
        t: to_micros(l.creation_time),
    }
}

impl ConnectionApi {
    /// The connection query, as the contract defines it.
    pub async fn connections(&self, q: ConnectionQuery) -> Result<Vec<Connection>> {
        if !self.persons.missing(&[q.person_id]).await?.is_empty() {
            return Err(Error::not_found("person", q.person_id));
        }
        let own = self
            .locations
            .in_window(q.window, Some(q.person_id))
            .await?;
        if own.is_empty() {
            return Ok(Vec::new());
        }
        let everyone = self.locations.in_window(q.window, None).await?;
        let own_points: Vec<Point> = own.iter().map(point).collect();
        let all_points: Vec<Point> = everyone.iter().map(point).collect();
        let found = contact::connections(&own_points, &all_points, &q);
        let by_id: HashMap<i64, &Location> = everyone.iter().map(|l| (l.id, l)).collect();
        let mut person_ids: Vec<PersonId> = found.iter().map(|p| p.person_id).collect();
        person_ids.sort_unstable();
        person_ids.dedup();
        let persons: HashMap<PersonId, _> = self
            .persons
            .get_many(&person_ids)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        Ok(found
            .iter()
            .filter_map(|p| {
                Some(Connection {
                    person: persons.get(&p.person_id)?.clone(),
                    location: (*by_id.get(&p.id)?).clone(),
                })
            })
            .collect())
    }
}

/// Whom a person met: other persons' locations near theirs.
///
/// Window `W = [start_date 00:00Z, end_date + 1 day 00:00Z)`: both dates inclusive, UTC (an RFC
/// 3339 timestamp may be given instead of a date: it is then the exact bound, the end
/// exclusive). The answer holds every location `L'` of another person with time in `W` such
/// that some location `L` of this person, also in `W`, lies within `distance` metres of `L'`
/// (great-circle on a sphere of radius 6,371,008.8 m; a point at exactly `distance` counts).
/// With `max_time_gap`, `L` and `L'` must also be at most that many seconds apart. Each `L'` once,
/// ordered by (creation_time, id).
#[utoipa::path(get, path = "/api/persons/{id}/connection", tag = "connections",
    params(
        ("id" = i64, Path, description = "Person id"),
        ("start_date" = String, Query, description = "First day, YYYY-MM-DD (inclusive)"),
        ("end_date" = String, Query, description = "Last day, YYYY-MM-DD (inclusive); not before start_date"),
        ("distance" = Option<f64>, Query, description = "Metres, 0 < distance <= 1000 (default 5)"),
        ("max_time_gap" = Option<f64>, Query, description = "Seconds between the two pings, at most (default: no condition)"),
    ),
    responses(
        (status = 200, description = "Connections, by time then location id", body = [Connection]),
        (status = 400, description = "A parameter is missing or invalid", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such person", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn find_connections(
    State(api): State<Arc<ConnectionApi>>,
    Path(raw): Path<String>,
    Params(params): Params,
) -> ApiResult<Json<Vec<Connection>>> {
    let person_id = validate::path_id(&raw, "id")?;
    let p = validate::connection_params(&params)?;
    let started = Instant::now();
    let found = api
        .connections(ConnectionQuery {
            person_id,
            window: p.window,
            distance_m: p.distance_m,
            max_time_gap_us: p.max_time_gap_us,
        })
        .await?;
    api.metrics
        .connection_query_duration
        .observe(started.elapsed().as_secs_f64());
    tracing::debug!(person_id, connections = found.len(), "connections found");
    Ok(Json(found))
}

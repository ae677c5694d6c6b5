//! location-api: accepts pings, gives each an id, and acknowledges only once the log has it
//! durably. Reads single stored locations back.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::Mutex;
use udaconnect_core::clock::{Clock, SystemClock};
use udaconnect_core::model::{Location, NewLocation};
use udaconnect_core::ports::{DynIdLeaser, DynLocationStore, DynLog};
use udaconnect_core::record::{self, LOCATION_TOPIC};
use udaconnect_core::{validate, Error, Result};

use crate::directory::DynPersonDirectory;
use crate::http::{correlation_id, parse_json, BodyBytes};
use crate::metrics::Metrics;
use crate::problem::{ApiResult, Problem};

/// Ids leased per round trip to the leaser: one durable write per this many pings.
const ID_BLOCK: u64 = 4096;

/// Hands out ids from leased blocks (hi/lo).
pub struct IdAllocator {
    leaser: DynIdLeaser,
    /// The unused rest of the current block: `next..end`.
    block: Mutex<(i64, i64)>,
}

impl IdAllocator {
    pub fn new(leaser: DynIdLeaser) -> Self {
        IdAllocator {
            leaser,
            block: Mutex::new((0, 0)),
        }
    }

    /// `n` consecutive unused ids; returns the first.
    pub async fn allocate(&self, n: u64) -> Result<i64> {
        let mut block = self.block.lock().await;
        if ((block.1 - block.0) as u64) < n {
            // The rest of the old block is abandoned: gaps are harmless, reuse is not.
            let size = ID_BLOCK.max(n);
            let first = self.leaser.lease(size).await?;
            *block = (first, first + size as i64);
        }
        let first = block.0;
        block.0 += n as i64;
        Ok(first)
    }
}

/// The ingest path shared by every transport (HTTP now; gRPC and bulk calls use it too).
pub struct Ingest {
    pub persons: DynPersonDirectory,
    pub ids: IdAllocator,
    pub log: DynLog,
    pub metrics: Arc<Metrics>,
}

impl Ingest {
    /// Validates references, assigns ids and appends to the log; returns once durable. With
    /// `indexed`, violations name items by index (`[3].person_id`), as batches do.
    pub async fn accept(&self, pings: Vec<NewLocation>, indexed: bool) -> Result<Vec<Location>> {
        let person_ids: Vec<i64> = pings.iter().map(|p| p.person_id()).collect();
        let missing = self.persons.missing(&person_ids).await?;
        if !missing.is_empty() {
            let field = |i: usize| {
                if indexed {
                    format!("[{i}].person_id")
                } else {
                    "person_id".to_string()
                }
            };
            return Err(Error::Invalid(
                pings
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| missing.contains(&p.person_id()))
                    .map(|(i, p)| {
                        udaconnect_core::FieldViolation::new(
                            field(i),
                            format!("no person with id {}", p.person_id()),
                        )
                    })
                    .collect(),
            ));
        }
        let first = self.ids.allocate(pings.len() as u64).await?;
        let now = SystemClock.now();
        let correlation = correlation_id();
        let locations: Vec<Location> = pings
            .into_iter()
            .enumerate()
            .map(|(i, p)| Location {
                id: first + i as i64,
                person_id: p.person_id(),
                latitude: p.latitude(),
                longitude: p.longitude(),
                creation_time: p.creation_time().unwrap_or(now),
            })
            .collect();
        let records = locations
            .iter()
            .map(|l| record::encode(l, correlation.as_deref(), now))
            .collect();
        let started = Instant::now();
        self.log.append(LOCATION_TOPIC, records).await?;
        self.metrics
            .log_append_duration
            .observe(started.elapsed().as_secs_f64());
        self.metrics
            .locations_accepted
            .inc_by(locations.len() as u64);
        Ok(locations)
    }
}

impl Ingest {
    /// Accepts a validated batch all or nothing: unknown persons are reported with the other
    /// violations, so one answer lists them all.
    pub async fn accept_batch(&self, mut check: validate::BatchCheck) -> Result<Vec<Location>> {
        let ids: Vec<i64> = check.valid.iter().map(|(_, l)| l.person_id()).collect();
        let missing = self.persons.missing(&ids).await?;
        if !missing.is_empty() {
            let unknown: Vec<(usize, i64)> = check
                .valid
                .iter()
                .filter(|(_, l)| missing.contains(&l.person_id()))
                .map(|(i, l)| (*i, l.person_id()))
                .collect();
            for (i, id) in unknown {
                check.invalid_item(i, "person_id", format!("no person with id {id}"));
            }
        }
        self.accept(check.finish()?, true).await
    }
}

pub struct LocationApi {
    pub ingest: Arc<Ingest>,
    pub store: DynLocationStore,
}

pub fn routes(api: Arc<LocationApi>) -> Router {
    Router::new()
        .route("/api/locations", post(create_location))
        .route("/api/locations/batch", post(create_locations))
        .route("/api/locations/{id}", get(get_location))
        .with_state(api)
}

/// Body of `POST /api/locations`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct NewLocationBody {
    #[schema(example = 5)]
    person_id: i64,
    /// Degrees in [-90, 90]; a number or a numeric string.
    #[schema(example = 37.55363)]
    latitude: f64,
    /// Degrees in [-180, 180]; a number or a numeric string.
    #[schema(example = -122.290883)]
    longitude: f64,
    /// RFC 3339; without an offset it is UTC; absent means the time of ingest.
    #[schema(example = "2020-07-07T10:37:06Z")]
    creation_time: Option<String>,
}

/// Ingest one location ping.
///
/// Answers 202 once the ping is durable in the log, with the id it was given. The ping is
/// readable at `GET /api/locations/{id}` once the location consumer has stored it, normally
/// within milliseconds.
#[utoipa::path(post, path = "/api/locations", tag = "locations",
    request_body = NewLocationBody,
    responses(
        (status = 202, description = "Durable in the log", body = Location),
        (status = 400, description = "Malformed JSON or wrong types", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Out of range, or no such person", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The log cannot take it now; retry", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_location(
    State(api): State<Arc<LocationApi>>,
    BodyBytes(body): BodyBytes,
) -> ApiResult<(StatusCode, Json<Location>)> {
    // Most pings are plain and valid; the general reading names what is wrong with the rest.
    let ping = match validate::plain_new_location(&body) {
        Some(ping) => ping,
        None => validate::new_location(&parse_json(&body)?)?,
    };
    let mut stored = api.ingest.accept(vec![ping], false).await?;
    let location = stored
        .pop()
        .ok_or_else(|| Error::Internal("empty ingest answer".into()))?;
    tracing::debug!(
        location_id = location.id,
        person_id = location.person_id,
        "location accepted"
    );
    Ok((StatusCode::ACCEPTED, Json(location)))
}

/// Answer to a batch: the ids given, in the order of the items.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct BatchAccepted {
    #[schema(example = 3)]
    pub accepted: usize,
    #[schema(example = json!([101, 102, 103]))]
    pub ids: Vec<i64>,
}

/// Reads a batch body: a JSON array, or NDJSON (one object per line) when the content type
/// says `application/x-ndjson`.
fn batch_items(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<std::result::Result<serde_json::Value, String>>> {
    let ndjson = content_type.is_some_and(|c| {
        c.starts_with("application/x-ndjson") || c.starts_with("application/jsonl")
    });
    if ndjson {
        return Ok(body
            .split(|b| *b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .map(|line| serde_json::from_slice(line).map_err(|e| e.to_string()))
            .collect());
    }
    match crate::http::parse_json(body).map_err(|e| e.0)? {
        serde_json::Value::Array(items) => Ok(items.into_iter().map(Ok).collect()),
        _ => Err(Error::bad_request(
            "body",
            "must be a JSON array of locations (or NDJSON with content type application/x-ndjson)",
        )),
    }
}

/// Ingest a batch of pings, all or nothing.
///
/// The body is a JSON array of locations, or NDJSON (`Content-Type: application/x-ndjson`, one
/// location per line). Every item is validated first: if any is bad, the answer lists every bad
/// item by its index (`[3].latitude`) and nothing of the batch is stored. Otherwise the whole
/// batch is appended to the log in one durable write and the ids are returned in item order.
#[utoipa::path(post, path = "/api/locations/batch", tag = "locations",
    request_body(content = [NewLocationBody], description = "JSON array, or NDJSON with Content-Type application/x-ndjson"),
    responses(
        (status = 202, description = "Durable in the log", body = BatchAccepted),
        (status = 400, description = "An item is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An item is out of range or names no person", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The log cannot take it now; retry", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_locations(
    State(api): State<Arc<LocationApi>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<BatchAccepted>)> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let check = validate::location_batch(batch_items(content_type, &body)?);
    let stored = api.ingest.accept_batch(check).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(BatchAccepted {
            accepted: stored.len(),
            ids: stored.iter().map(|l| l.id).collect(),
        }),
    ))
}

/// Get one stored location.
#[utoipa::path(get, path = "/api/locations/{id}", tag = "locations",
    params(("id" = i64, Path, description = "Location id")),
    responses(
        (status = 200, description = "The location", body = Location),
        (status = 400, description = "The id is not an integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown, or not stored yet", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_location(
    State(api): State<Arc<LocationApi>>,
    Path(raw): Path<String>,
) -> ApiResult<Json<Location>> {
    let id = validate::path_id(&raw, "id")?;
    api.store
        .get(id)
        .await?
        .map(Json)
        .ok_or_else(|| Error::not_found("location", id).into())
}

//! location-api over HTTP: accepts pings, and reads single stored locations back.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::{Json, Router};
use serde_json::Value;
use udaconnect_core::auth::{Action, Resource};
use udaconnect_core::model::{KeptLocation, Location};
use udaconnect_core::ports::DynLocationStore;
use udaconnect_core::validate::BatchCheck;
use udaconnect_core::{validate, Error, Result};

use crate::access::{ruled, Authenticator, Caller, MyPerson};
use crate::http::guard::json;
use crate::http::openapi::{
    fix_time_schema, id_schema, latitude_schema, longitude_schema, BadId, IngestProblems,
    MalformedJson, NoPersonOfMine, Unauthenticated,
};
use crate::http::problem::{found, ApiResult, Problem};
use crate::http::{parse_json, BodyBytes, Params, PathId};
use crate::ingest::Ingest;

pub struct LocationApi {
    pub ingest: Arc<Ingest>,
    pub store: DynLocationStore,
}

pub fn routes(api: Arc<LocationApi>) -> Router {
    ruled![
        "/api/locations" => PostLocation on Handler: json(post(create_location)),
        "/api/locations/batch" => PostLocationBatch on Handler: json(post(create_locations)),
        "/api/locations/{id}" => GetLocation on Handler: get(get_location),
        "/api/me/locations" => GetLocation on MyPerson: get(my_locations),
    ]
    .with_state(api)
}

/// Body of `POST /api/locations`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct NewLocationBody {
    #[schema(schema_with = id_schema)]
    person_id: i64,
    #[schema(schema_with = latitude_schema)]
    latitude: f64,
    #[schema(schema_with = longitude_schema)]
    longitude: f64,
    #[schema(schema_with = fix_time_schema)]
    creation_time: Option<String>,
}

/// Body of `POST /api/locations/batch` as JSON: 1 to 100,000 pings.
pub struct LocationBatch;

impl utoipa::PartialSchema for LocationBatch {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(utoipa::openapi::Ref::from_schema_name("NewLocationBody"))
            .min_items(Some(1))
            .max_items(Some(validate::MAX_BATCH))
            .into()
    }
}

impl utoipa::ToSchema for LocationBatch {}

/// Ingest one location ping.
///
/// Answers 202 once the ping is durable in the log, with the id it was given. The ping is
/// readable at `GET /api/locations/{id}` once the location consumer has stored it, normally
/// within milliseconds.
#[utoipa::path(post, path = "/api/locations", tag = "locations",
    request_body = NewLocationBody,
    responses(
        (status = 202, description = "Durable in the log", body = Location,
            links(("GetLocation" = (operation_id = "get_location", parameters(("id" = "$response.body#/id")))))),
        MalformedJson,
        (status = 422, description = "Out of range, no such person, or timed more than --max-future-skew ahead", body = Problem, content_type = "application/problem+json"),
        IngestProblems,
    ))]
pub async fn create_location(
    State(api): State<Arc<LocationApi>>,
    caller: Caller,
    BodyBytes(body): BodyBytes,
) -> ApiResult<(StatusCode, Json<Location>)> {
    // Most pings are plain and valid; the general reading names what is wrong with the rest.
    let ping = match validate::plain_new_location(&body) {
        Some(ping) => ping,
        None => validate::new_location(&parse_json(&body)?)?,
    };
    let mut stored = api
        .ingest
        .accept(&caller, Action::PostLocation, vec![ping], false)
        .await?;
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

/// Reads and checks a batch body: a JSON array, or NDJSON (one object per line) when the
/// content type says `application/x-ndjson`. Items are read one at a time and dropped once
/// checked, so the memory a body takes beyond its bytes is its valid pings and the violations
/// listed, not a tree of every item (a 16 MiB body of bad lines held near a gigabyte that way).
fn check_batch(ndjson: bool, body: &[u8]) -> Result<BatchCheck> {
    if ndjson {
        let items = body
            .split(|b| *b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .map(|line| {
                let item = serde_json::from_slice::<Value>(line).map_err(|e| e.to_string());
                validate::location_item(item.as_ref())
            });
        return Ok(BatchCheck::of(items));
    }
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
        // Not an array: what is wrong with it, as for any JSON body.
        parse_json(body).map_err(|e| e.0)?;
        return Err(Error::bad_request(
            "body",
            "must be a JSON array of locations (or NDJSON with content type application/x-ndjson)",
        ));
    }
    let mut check = BatchCheck::default();
    let mut reader = serde_json::Deserializer::from_slice(body);
    serde::Deserializer::deserialize_seq(&mut reader, EachItem(&mut check))
        .and_then(|()| reader.end())
        .map_err(|e| Error::bad_request("body", format!("malformed JSON: {e}")))?;
    Ok(check)
}

/// Visits a JSON array's items one by one into a [`BatchCheck`].
struct EachItem<'a>(&'a mut BatchCheck);

impl<'de> serde::de::Visitor<'de> for EachItem<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array of locations")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        while let Some(item) = items.next_element::<Value>()? {
            if !self.0.push(validate::new_location(&item)) {
                // Over the batch's size: the rest is only read through, to its end.
                while items.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            }
        }
        Ok(())
    }
}

/// Ingest a batch of pings, all or nothing.
///
/// The body is a JSON array of locations, or NDJSON (`Content-Type: application/x-ndjson`, one
/// location per line). Every item is validated first: if any is bad, the answer lists every bad
/// item by its index (`[3].latitude`; the first 100 violations, then how many more) and nothing
/// of the batch is stored; a bad value is repeated by its first 64 characters at most. Otherwise the whole
/// batch is appended to the log in one durable write and the ids are returned in item order.
#[utoipa::path(post, path = "/api/locations/batch", tag = "locations",
    request_body(content = LocationBatch, description = "1 to 100,000 pings: a JSON array, or NDJSON with Content-Type application/x-ndjson (one ping per line)"),
    responses(
        (status = 202, description = "Durable in the log", body = BatchAccepted,
            links(("GetFirstLocation" = (operation_id = "get_location", parameters(("id" = "$response.body#/ids/0")))))),
        (status = 400, description = "An item is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An item is out of range, names no person, or is timed more than --max-future-skew ahead", body = Problem, content_type = "application/problem+json"),
        IngestProblems,
    ))]
pub async fn create_locations(
    State(api): State<Arc<LocationApi>>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<BatchAccepted>)> {
    let ndjson = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| {
            c.starts_with("application/x-ndjson") || c.starts_with("application/jsonl")
        });
    // Reading 100,000 items is CPU work of tens of milliseconds: off the async workers, so the
    // other connections are not held up behind it.
    let check = tokio::task::spawn_blocking(move || check_batch(ndjson, &body))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    let stored = api
        .ingest
        .accept_batch(&caller, Action::PostLocationBatch, check)
        .await?;
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
    params(("id" = i64, Path, minimum = 1, maximum = 9007199254740991_i64, description = "Location id")),
    responses(
        (status = 200, description = "The location", body = Location),
        BadId,
        (status = 404, description = "Unknown, or not stored yet", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_location(
    State(api): State<Arc<LocationApi>>,
    caller: Caller,
    auth: Option<Extension<Arc<Authenticator>>>,
    PathId(id): PathId,
) -> ApiResult<Json<Location>> {
    let location = api.store.get(id).await?;
    if let Some(l) = &location {
        caller.may(Action::GetLocation, Resource::Person(l.person_id))?;
        // Someone else's ping is a piece of their trail: audited as the path-person reads are.
        if let Some(Extension(auth)) = auth {
            auth.audit_read(&caller, Action::GetLocation, l.person_id)
                .await?;
        }
    }
    found("location", id, location)
}

/// Most pings one `GET /api/me/locations` answers.
pub const MAX_MY_PINGS: usize = 100_000;

/// The caller's own stored pings in a window, in (time, id) order, each with what its app
/// said beside it (accuracy, altitude, speed, heading, battery, app) where known.
#[utoipa::path(get, path = "/api/me/locations", tag = "me",
    params(
        ("start" = String, Query, format = Date, pattern = "^(19[7-9][0-9]|[2-9][0-9]{3})-", description = "Window start, years 1970 to 9999: a date (its first instant) or RFC 3339"),
        ("end" = String, Query, format = Date, pattern = "^(19[7-9][0-9]|[2-9][0-9]{3})-", description = "Window end, not before start: a date (included whole) or RFC 3339 (exclusive)"),
    ),
    responses(
        (status = 200, description = "The caller's pings, by time then id", body = [crate::query::export::StoredPing]),
        (status = 400, description = "start or end is missing or invalid, or end is before start", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        (status = 403, description = "A device token, or a role that keeps no trail (organizer)", body = Problem, content_type = "application/problem+json"),
        NoPersonOfMine,
        (status = 422, description = "More than 100,000 pings in the window; narrow it", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn my_locations(
    State(api): State<Arc<LocationApi>>,
    Params(params): Params,
    MyPerson(person): MyPerson,
) -> ApiResult<Response> {
    let mut violations = Vec::new();
    let window = validate::window_params(&params, "start", "end", true, &mut violations);
    let window = match window {
        Some(w) if violations.is_empty() => w,
        _ => return Err(Error::BadRequest(violations).into()),
    };
    let pings = api.store.in_window(window, Some(person)).await?;
    if pings.len() > MAX_MY_PINGS {
        return Err(Error::invalid(
            "end",
            format!("the window holds more than {MAX_MY_PINGS} pings; narrow it"),
        )
        .into());
    }
    let kept: Vec<KeptLocation<'_>> = pings.iter().map(KeptLocation::of).collect();
    Ok(Json(kept).into_response())
}

//! person-api: create, read and list persons.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use udaconnect_core::model::Person;
use udaconnect_core::ports::DynPersonStore;
use udaconnect_core::{validate, Error};

use crate::http::problem::{ApiResult, Problem};
use crate::http::{JsonBody, Params};
use crate::metrics::Metrics;

/// Page size when a client asks for none: large enough that the original's clients, which
/// knew no paging, still see every person of a mid-sized event.
pub const DEFAULT_PAGE: usize = 1000;
pub const MAX_PAGE: usize = 10_000;

pub struct PersonApi {
    pub store: DynPersonStore,
    pub metrics: Arc<Metrics>,
}

pub fn routes(api: Arc<PersonApi>) -> Router {
    Router::new()
        .route("/api/persons", get(list_persons).post(create_person))
        .route("/api/persons/{id}", get(get_person))
        .with_state(api)
}

/// Body of `POST /api/persons`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct NewPersonBody {
    #[schema(example = "Ada")]
    first_name: String,
    #[schema(example = "Lovelace")]
    last_name: String,
    #[schema(example = "Analytical Engines")]
    company_name: String,
}

/// Create a person.
#[utoipa::path(post, path = "/api/persons", tag = "persons",
    request_body = NewPersonBody,
    responses(
        (status = 201, description = "Created", body = Person),
        (status = 400, description = "Malformed JSON or wrong types", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or empty", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_person(
    State(api): State<Arc<PersonApi>>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let new = validate::new_person(&body)?;
    let person = api.store.create(new).await?;
    api.metrics.persons_created.inc();
    tracing::info!(person_id = person.id, "person created");
    let location = HeaderValue::from_str(&format!("/api/persons/{}", person.id)).ok();
    let mut resp = (StatusCode::CREATED, Json(person)).into_response();
    if let Some(l) = location {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    Ok(resp)
}

/// List persons in id order, a page at a time.
///
/// Without `limit` the first 1000 persons are returned. When more may follow, the answer has a
/// `Link: <...>; rel="next"` header and `X-Next-Cursor` with the cursor of the next page.
#[utoipa::path(get, path = "/api/persons", tag = "persons",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 10000 (default 1000)"),
        ("cursor" = Option<String>, Query, description = "The cursor of the page to read, from X-Next-Cursor"),
    ),
    responses(
        (status = 200, description = "A page of persons", body = [Person]),
        (status = 400, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_persons(
    State(api): State<Arc<PersonApi>>,
    Params(params): Params,
) -> ApiResult<Response> {
    let (after, limit) = validate::paging_params(&params, DEFAULT_PAGE, MAX_PAGE)?;
    let page = api.store.list(after, limit).await?;
    let next = (page.len() == limit)
        .then(|| page.last().map(|p| p.id))
        .flatten();
    let mut resp = Json(page).into_response();
    if let Some(cursor) = next {
        let link = format!("</api/persons?limit={limit}&cursor={cursor}>; rel=\"next\"");
        if let (Ok(l), Ok(c)) = (
            HeaderValue::from_str(&link),
            HeaderValue::from_str(&cursor.to_string()),
        ) {
            resp.headers_mut().insert(header::LINK, l);
            resp.headers_mut().insert("x-next-cursor", c);
        }
    }
    Ok(resp)
}

/// Get one person.
#[utoipa::path(get, path = "/api/persons/{id}", tag = "persons",
    params(("id" = i64, Path, description = "Person id")),
    responses(
        (status = 200, description = "The person", body = Person),
        (status = 400, description = "The id is not an integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such person", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_person(
    State(api): State<Arc<PersonApi>>,
    Path(raw): Path<String>,
) -> ApiResult<Json<Person>> {
    let id = validate::path_id(&raw, "id")?;
    api.store
        .get(id)
        .await?
        .map(Json)
        .ok_or_else(|| Error::not_found("person", id).into())
}

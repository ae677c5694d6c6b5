//! Errors as HTTP answers: RFC 9457 `application/problem+json` bodies.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use udaconnect_core::{Error, ErrorCode, FieldViolation};

use crate::http::RequestContext;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem details body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem; `about:blank` when the status says it all.
    #[serde(rename = "type")]
    #[schema(example = "urn:udaconnect:problem:invalid-input")]
    pub kind: String,
    #[schema(example = "Invalid input")]
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    #[schema(example = "latitude: 91 is outside [-90, 90]")]
    pub detail: String,
    /// The path of the request that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// One entry per invalid field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldViolation>,
}

/// The HTTP status for each error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
        ErrorCode::InvalidInput => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn kind_of(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::BadRequest => "urn:udaconnect:problem:bad-request",
        ErrorCode::InvalidInput => "urn:udaconnect:problem:invalid-input",
        ErrorCode::NotFound => "urn:udaconnect:problem:not-found",
        ErrorCode::Conflict => "urn:udaconnect:problem:conflict",
        ErrorCode::Unauthenticated => "urn:udaconnect:problem:unauthenticated",
        ErrorCode::Forbidden => "urn:udaconnect:problem:forbidden",
        ErrorCode::Unavailable => "urn:udaconnect:problem:unavailable",
        ErrorCode::Internal => "about:blank",
    }
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Problem {
        let ctx = RequestContext::current();
        Problem {
            kind: kind.to_string(),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            instance: ctx.as_ref().map(|c| c.path.clone()),
            correlation_id: ctx.map(|c| c.correlation_id),
            errors: Vec::new(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"udaconnect\""),
            );
        }
        resp
    }
}

/// A handler's error: a domain error rendered as a problem.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        let status = status_of(code);
        if code == ErrorCode::Internal {
            // Details of internal failures go to the log, not to the client.
            tracing::error!(error = %self.0, "request failed");
            return Problem::new(
                status,
                kind_of(code),
                "the server failed to answer; the error is logged under this correlation id",
            )
            .into_response();
        }
        if code == ErrorCode::Unavailable {
            tracing::warn!(error = %self.0, "dependency unavailable");
        }
        let mut p = Problem::new(status, kind_of(code), self.0.to_string());
        p.errors = self.0.violations().to_vec();
        if code == ErrorCode::InvalidInput || code == ErrorCode::BadRequest {
            p.title = if code == ErrorCode::BadRequest {
                "Malformed request".into()
            } else {
                "Invalid input".into()
            };
        }
        p.into_response()
    }
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;

/// A lookup by id answered: the item, or a 404 problem naming what has no such id.
pub fn found<T>(what: &'static str, id: i64, item: Option<T>) -> ApiResult<Json<T>> {
    item.map(Json)
        .ok_or_else(|| Error::not_found(what, id).into())
}

//! What every HTTP role shares: correlation ids, request logging and metrics, problem answers
//! for unknown routes and unreadable input, and the extractors that turn requests into values
//! the domain validates.
//!
//! - [`edge`], [`serve`], [`guard`]: the settings of the process's edge; the connection
//!   layer (caps, timeouts, the stop's deadline); the request checks (Host, ingest rate, and
//!   the body's type on the routes that take JSON) and security headers.
//! - [`problem`]: errors as RFC 9457 problem answers.
//! - [`ops`], [`openapi`], [`responses`]: /health, /ready, /metrics, the OpenAPI description
//!   (with the answers operations share) and docs page.
//! - [`gateway`]: web's proxy routing `/api` to the role that owns each path.
//! - [`paging`]: a paged list's `limit` and `cursor`, checked and described from its bounds.
//! - [`upstream`]: another role reached over HTTP.
//! - [`web`]: the web page and its assets.

pub mod edge;
pub mod gateway;
pub mod guard;
pub mod openapi;
pub mod ops;
pub mod paging;
pub mod problem;
pub mod responses;
pub mod serve;
pub mod upstream;
pub mod web;

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;
use udaconnect_core::validate::{self, QueryParams};
use udaconnect_core::Error;

use crate::http::problem::{ApiError, Problem};
use crate::metrics::Metrics;

pub const CORRELATION_HEADER: HeaderName = HeaderName::from_static("x-correlation-id");
/// The original services' header name, still sent by their clients.
pub const LEGACY_CORRELATION_HEADER: HeaderName = HeaderName::from_static("correlationid");

/// What the code answering a request knows about it without being handed it.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub correlation_id: String,
    pub path: String,
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

impl RequestContext {
    /// The context of the request being answered on this task, if any.
    pub fn current() -> Option<RequestContext> {
        CONTEXT.try_with(|c| c.clone()).ok()
    }
}

/// Runs `f` as the code answering a request with `ctx` (for transports other than HTTP).
pub async fn within_request<F: std::future::Future>(ctx: RequestContext, f: F) -> F::Output {
    CONTEXT.scope(ctx, f).await
}

/// A fresh correlation id: a version-4 UUID whose random bits hash a per-thread counter under
/// per-thread random SipHash keys (drawn from the OS once per thread), where `Uuid::new_v4`
/// asks the OS for randomness, a system call, on every request.
pub fn new_correlation_id() -> String {
    use std::cell::Cell;
    use std::hash::{BuildHasher, RandomState};
    thread_local! {
        static IDS: (RandomState, Cell<u64>) = (RandomState::new(), Cell::new(0));
    }
    let halves = IDS.with(|(keys, count)| {
        let n = count.get();
        count.set(n.wrapping_add(1));
        [keys.hash_one((n, 0u8)), keys.hash_one((n, 1u8))]
    });
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&halves[0].to_le_bytes());
    bytes[8..].copy_from_slice(&halves[1].to_le_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The correlation id of the request being answered, for log records and headers.
pub fn correlation_id() -> Option<String> {
    CONTEXT.try_with(|c| c.correlation_id.clone()).ok()
}

/// Accepts a client's id when it is short, printable ASCII; anything else is replaced, so logs
/// and headers never carry what a client should not be able to inject.
fn usable_id(v: &HeaderValue) -> Option<String> {
    usable_correlation_id(v.to_str().ok()?)
}

/// `usable_id` for ids that arrive by other transports (gRPC metadata).
pub fn usable_correlation_id(raw: &str) -> Option<String> {
    let s = raw.trim();
    (!s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| s.to_string())
}

/// Largest request body accepted.
const BODY_LIMIT: usize = 16 << 20;

/// The layers every HTTP router sits in, whatever roles it serves: unknown paths and bare
/// rejections as problems, panics caught, who is asking ([`crate::access`]), a body limit,
/// the request checks ([`guard`]), CORS, correlation ids, request metrics and logs, security
/// headers.
pub fn with_common_layers(
    router: axum::Router,
    metrics: &Arc<Metrics>,
    cors_origins: &[String],
    guards: Arc<guard::Guards>,
    auth: Arc<crate::access::Authenticator>,
) -> axum::Router {
    let metrics = metrics.clone();
    router
        .fallback(not_found)
        .layer(axum::middleware::from_fn(problems_for_bare_errors))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(axum::middleware::from_fn(move |req, next| {
            crate::access::authenticate::authenticate(auth.clone(), req, next)
        }))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(move |req, next| {
            guard::check(guards.clone(), req, next)
        }))
        .layer(cors(cors_origins))
        .layer(axum::middleware::from_fn(move |req, next| {
            observe(metrics.clone(), req, next)
        }))
        .layer(axum::middleware::map_response(guard::security_headers))
}

/// Takes or makes the correlation id, runs the request inside a span carrying it, echoes it,
/// logs one line per request and records its metrics.
pub async fn observe(metrics: Arc<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let headers = request.headers();
    let correlation_id = headers
        .get(&CORRELATION_HEADER)
        .or_else(|| headers.get(&LEGACY_CORRELATION_HEADER))
        .and_then(usable_id)
        .unwrap_or_else(new_correlation_id);
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let span = tracing::info_span!("request", correlation_id = %correlation_id, %method, %path);
    let ctx = RequestContext {
        correlation_id: correlation_id.clone(),
        path: path.clone(),
    };
    let mut response = CONTEXT
        .scope(ctx, next.run(request).instrument(span.clone()))
        .await;
    if let Ok(v) = HeaderValue::from_str(&correlation_id) {
        response.headers_mut().insert(CORRELATION_HEADER, v);
    }
    let status = response.status();
    let elapsed = started.elapsed();
    let labels = vec![
        ("method", method.to_string()),
        ("route", route.clone()),
        ("status", status.as_u16().to_string()),
    ];
    metrics.http_requests.get_or_create(&labels).inc();
    metrics
        .http_duration
        .get_or_create(&vec![("route", route)])
        .observe(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            latency_us = elapsed.as_micros() as u64,
            "request answered"
        )
    });
    response
}

/// Turns axum's bare rejections (wrong method, oversized body) into problem answers, so every
/// error a client sees has the same shape. HTML pages are answers made for people (a sign-in
/// link that does not work) and pass as they are.
pub async fn problems_for_bare_errors(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status();
    let is_answer = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/problem+json")
                || v.as_bytes().starts_with(b"text/html")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_answer {
        return response;
    }
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => format!("{path} does not take this method"),
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the request body is larger than {BODY_LIMIT} bytes")
        }
        StatusCode::NOT_FOUND => format!("no resource at {path}"),
        _ => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut p = Problem::new(status, "about:blank", detail).into_response();
    if let Some(allow) = allow {
        p.headers_mut().insert(header::ALLOW, allow);
    }
    p
}

/// Answer for paths no role serves.
pub async fn not_found(request: Request) -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "urn:udaconnect:problem:not-found",
        format!("no resource at {}", request.uri().path()),
    )
    .into_response()
}

/// Answer when a handler panics: a problem, never a dropped connection. The panic itself is
/// logged by the hook installed at start.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "about:blank",
        "the server failed to answer; the error is logged",
    )
    .into_response()
}

/// Query-string parameters as text, for the domain to validate. A parameter given twice, or
/// given with no value, is refused: which one was meant cannot be told.
pub struct Params(pub QueryParams);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| ApiError(Error::bad_request("query", e.body_text())))?;
        let mut params = QueryParams::with_capacity(pairs.len());
        for (name, value) in pairs {
            let field = udaconnect_core::error::quoted(&name).to_string();
            if value.trim().is_empty() {
                return Err(ApiError(Error::bad_request(
                    "query",
                    format!("{field} is given without a value; leave it out for its default"),
                )));
            }
            if params.insert(name, value).is_some() {
                return Err(ApiError(Error::bad_request(
                    "query",
                    format!("{field} is given more than once"),
                )));
            }
        }
        Ok(Params(params))
    }
}

/// The cursor of the page after `page`, when it is full (`limit` rows) and more may follow:
/// its last row's id.
fn next_cursor<T>(page: &[T], limit: usize, id: impl Fn(&T) -> i64) -> Option<i64> {
    (page.len() == limit).then(|| page.last().map(id)).flatten()
}

/// A page of a paged list as its JSON answer: when it is full, the next page's cursor in
/// `X-Next-Cursor`, and with `link` (the list's path) in a `Link` to that page too.
pub fn page_answer<T: serde::Serialize>(
    page: Vec<T>,
    limit: usize,
    id: impl Fn(&T) -> i64,
    link: Option<&str>,
) -> Response {
    let next = next_cursor(&page, limit, id);
    let mut answer = axum::Json(page).into_response();
    let Some(cursor) = next else {
        return answer;
    };
    let headers = answer.headers_mut();
    if let Some(path) = link {
        let next_page = format!("<{path}?limit={limit}&cursor={cursor}>; rel=\"next\"");
        if let Ok(l) = HeaderValue::from_str(&next_page) {
            headers.insert(header::LINK, l);
        }
    }
    headers.insert(NEXT_CURSOR, HeaderValue::from(cursor));
    answer
}

/// The header that carries the cursor of a paged list's next page.
const NEXT_CURSOR: HeaderName = HeaderName::from_static("x-next-cursor");

/// The `{id}` of a route's path as an integer; anything else is refused with a problem naming
/// `id`.
pub struct PathId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        validate::path_id(&raw, "id")
            .map(PathId)
            .map_err(|e| ApiError(e).into_response())
    }
}

/// A JSON body as an untyped value; the domain checks each field. Its content type was
/// checked before, by the route (see [`guard::json`]).
pub struct JsonBody(pub serde_json::Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Response;

    async fn from_request(req: Request<Body>, state: &S) -> Result<Self, Self::Rejection> {
        let BodyBytes(bytes) = BodyBytes::from_request(req, state).await?;
        parse_json(&bytes)
            .map(JsonBody)
            .map_err(IntoResponse::into_response)
    }
}

/// A body as it came, for handlers that read it themselves; refused as [`JsonBody`] refuses
/// one it cannot read (too large, cut off).
pub struct BodyBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for BodyBytes {
    type Rejection = Response;

    async fn from_request(req: Request<Body>, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(BodyBytes)
            .map_err(|e| {
                // A body over the limit is refused as such, whether it said its length or
                // came in chunks that added up past it.
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    return too_large();
                }
                ApiError(Error::bad_request("body", e.body_text().to_lowercase())).into_response()
            })
    }
}

/// 413 for a body over `BODY_LIMIT`.
pub fn too_large() -> Response {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "urn:udaconnect:problem:too-large",
        format!("the request body is larger than {BODY_LIMIT} bytes"),
    )
    .into_response()
}

pub fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError(Error::bad_request(
            "body",
            "is empty; a JSON object is required",
        )));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError(Error::bad_request("body", format!("malformed JSON: {e}"))))
}

/// Cross-origin access for browser pages served elsewhere (the original page on port 30000
/// called the APIs on 30002 and 30003): the configured origins and any page on this machine
/// (`localhost`, `127.0.0.1`, `[::1]`, any port) may call the API.
pub fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::Method;
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let allowed: Vec<String> = origins
        .iter()
        .map(|o| o.trim_end_matches('/').to_string())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            let Ok(origin) = origin.to_str() else {
                return false;
            };
            allowed.iter().any(|a| a == origin) || is_loopback_origin(origin)
        }))
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            CORRELATION_HEADER,
            LEGACY_CORRELATION_HEADER,
        ])
        .expose_headers([
            CORRELATION_HEADER,
            header::WWW_AUTHENTICATE,
            header::LOCATION,
            header::LINK,
            NEXT_CURSOR,
        ])
        .max_age(std::time::Duration::from_secs(600))
}

fn is_loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = match rest.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => rest,
    };
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

#[cfg(test)]
mod tests {
    /// Made correlation ids are version-4 UUIDs, none repeated, within a thread or across
    /// threads, and their random bits vary (not a counter shown through).
    #[test]
    fn made_correlation_ids_are_distinct_v4_uuids() {
        let per_thread = 50_000;
        let ids: Vec<String> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(move || {
                        (0..per_thread)
                            .map(|_| super::new_correlation_id())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        let mut seen = std::collections::HashSet::new();
        let mut ones = [0u32; 128];
        for id in &ids {
            let uuid = uuid::Uuid::parse_str(id).expect(id);
            assert_eq!(uuid.get_version_num(), 4, "{id}");
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(id, &uuid.hyphenated().to_string());
            assert!(seen.insert(uuid), "{id} made twice");
            let bits = uuid.as_u128();
            for (b, n) in ones.iter_mut().enumerate() {
                *n += (bits >> b & 1) as u32;
            }
        }
        // Every bit but the six fixed ones is set in about half the ids.
        let fixed = ones
            .iter()
            .filter(|&&n| n == 0 || n as usize == ids.len())
            .count();
        assert_eq!(fixed, 6);
        let n = ids.len() as f64;
        for &count in ones.iter().filter(|&&c| c != 0 && c as usize != ids.len()) {
            assert!((count as f64 / n - 0.5).abs() < 0.01, "{count} of {n}");
        }
    }

    #[test]
    fn loopback_origins() {
        for ok in [
            "http://localhost:30000",
            "http://127.0.0.1",
            "https://[::1]:8443",
            "http://localhost",
        ] {
            assert!(super::is_loopback_origin(ok), "{ok}");
        }
        for bad in [
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io:80",
            "file://",
            "null",
            "http://10.0.0.1:30000",
        ] {
            assert!(!super::is_loopback_origin(bad), "{bad}");
        }
    }
}

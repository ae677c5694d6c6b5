//! What every service answers for operators: /health, /ready, /metrics, /openapi.json and the
//! API docs page.

use std::sync::Arc;

use axum::extract::Request;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use udaconnect_core::ports::{LocationStore, Log, PersonStore};
use udaconnect_core::Result;

use crate::access::ruled;
use crate::http::problem::Problem;
use crate::metrics::Metrics;

/// A named check of a dependency: succeeds when it answers.
pub type Check = Box<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>>
        + Send
        + Sync,
>;

/// A check from a closure returning a future.
pub fn check<F, Fut>(f: F) -> Check
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    Box::new(move || Box::pin(f()))
}

/// Something `/ready` can ask whether it answers: a store or the log.
#[async_trait::async_trait]
pub trait Pings: Send + Sync + 'static {
    async fn answers(&self) -> Result<()>;
}

#[async_trait::async_trait]
impl Pings for dyn PersonStore {
    async fn answers(&self) -> Result<()> {
        self.ping().await
    }
}

#[async_trait::async_trait]
impl Pings for dyn LocationStore {
    async fn answers(&self) -> Result<()> {
        self.ping().await
    }
}

#[async_trait::async_trait]
impl Pings for dyn Log {
    async fn answers(&self) -> Result<()> {
        self.ping().await
    }
}

/// A check that `dependency` answers.
pub fn ping_check<T: Pings + ?Sized>(dependency: &Arc<T>) -> Check {
    let dependency = dependency.clone();
    check(move || {
        let d = dependency.clone();
        async move { d.answers().await }
    })
}

/// The answers of a process whose roles are still starting (waiting for a store or the log):
/// alive, with empty metrics, and 503 for everything else.
pub async fn starting(label: &str, request: Request) -> Response {
    match request.uri().path() {
        "/health" => Json(serde_json::json!({"status": "ok", "role": label, "state": "starting"}))
            .into_response(),
        "/metrics" => (StatusCode::OK, String::new()).into_response(),
        _ => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "urn:udaconnect:problem:unavailable",
            format!("{label} is starting: waiting for its store or log"),
        )
        .into_response(),
    }
}

pub struct Ops {
    pub metrics: Arc<Metrics>,
    pub checks: Vec<(&'static str, Check)>,
    pub roles: Vec<&'static str>,
}

pub fn routes(ops: Arc<Ops>) -> Router {
    ruled![
        "/health" => Health on Service: get(health),
        "/ready" => Ready on Service: get(ready),
        "/metrics" => Metrics on Service: get(metrics),
        "/openapi.json" => ApiDocs on Service: get(openapi),
        "/docs" => ApiDocs on Service: get(docs),
        "/docs.js" => ApiDocs on Service: get(docs_script),
        "/docs.css" => ApiDocs on Service: get(docs_style),
    ]
    .with_state(ops)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    #[schema(example = "ready")]
    status: &'static str,
    roles: Vec<&'static str>,
    /// Each dependency and `ok` or what failed.
    checks: std::collections::BTreeMap<&'static str, String>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Alive")))]
pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the store and the log this process uses answer.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A dependency does not answer", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ))]
pub async fn ready(State(ops): State<Arc<Ops>>) -> Response {
    let mut checks = std::collections::BTreeMap::new();
    let mut failed = Vec::new();
    for (name, check) in &ops.checks {
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(2), check()).await;
        let text = match outcome {
            Ok(Ok(())) => "ok".to_string(),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_string(),
        };
        if text != "ok" {
            failed.push(format!("{name}: {text}"));
        }
        checks.insert(*name, text);
    }
    if failed.is_empty() {
        Json(Readiness {
            status: "ready",
            roles: ops.roles.clone(),
            checks,
        })
        .into_response()
    } else {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "urn:udaconnect:problem:unavailable",
            format!("not ready: {}", failed.join("; ")),
        )
        .into_response()
    }
}

/// Prometheus metrics, for organizers and admins; scrapers read them without a token on
/// `--metrics-listen`, an address of their own.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(ops): State<Arc<Ops>>) -> Response {
    render_metrics(&ops.metrics)
}

fn render_metrics(metrics: &Metrics) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

/// What `--metrics-listen` serves: `/metrics` alone, open to whoever reaches that address
/// (a scraper inside the cluster), and problems for the rest.
pub fn scrape_routes(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move { render_metrics(&metrics) }
            }),
        )
        .fallback(crate::http::not_found)
        .layer(axum::middleware::map_response(
            crate::http::guard::security_headers,
        ))
}

pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::http::openapi::spec_json(),
    )
        .into_response()
}

pub async fn docs() -> Html<&'static str> {
    Html(include_str!("../../assets/docs.html"))
}

/// The docs page's script and style, files of their own: the page's policy runs no inline
/// script or style.
pub async fn docs_script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../assets/docs.js"),
    )
        .into_response()
}

pub async fn docs_style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../assets/docs.css"),
    )
        .into_response()
}

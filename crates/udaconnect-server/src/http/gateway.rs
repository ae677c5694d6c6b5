//! web: the one entry point of a distributed deployment. Serves the web page and passes every
//! `/api` request to the role that owns it, streaming bodies both ways (large connection
//! answers and the live event stream are never buffered here).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::http::problem::Problem;
use crate::http::{correlation_id, CORRELATION_HEADER};
use crate::roles::Role;

/// Base URLs of the roles the gateway routes to.
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub person_api: String,
    pub location_api: String,
    pub connection_api: String,
}

pub struct Gateway {
    client: Client<HttpConnector, Body>,
    person_api: Uri,
    location_api: Uri,
    connection_api: Uri,
}

/// Headers that describe one connection, not the message: never forwarded (RFC 9110 7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn base(url: &str, role: Role) -> anyhow::Result<Uri> {
    let uri: Uri = url
        .trim_end_matches('/')
        .parse()
        .map_err(|e| anyhow::anyhow!("{role} URL '{url}': {e}"))?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        anyhow::bail!("{role} URL '{url}' must look like http://host:port");
    }
    Ok(uri)
}

/// Which role answers `path`.
pub fn route(path: &str) -> Option<Role> {
    let rest = path.strip_prefix("/api/")?;
    let mut parts = rest.split('/');
    match parts.next()? {
        "persons" => {
            // /api/persons/{id}/connection|contacts|summary belong to connection-api.
            let _id = parts.next();
            match parts.next() {
                Some("connection" | "contacts" | "summary") => Some(Role::ConnectionApi),
                _ => Some(Role::PersonApi),
            }
        }
        "locations" => Some(Role::LocationApi),
        "live" | "venue" => Some(Role::ConnectionApi),
        _ => None,
    }
}

impl Gateway {
    pub fn new(upstreams: &Upstreams) -> anyhow::Result<Gateway> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Gateway {
            client,
            person_api: base(&upstreams.person_api, Role::PersonApi)?,
            location_api: base(&upstreams.location_api, Role::LocationApi)?,
            connection_api: base(&upstreams.connection_api, Role::ConnectionApi)?,
        })
    }

    fn base_of(&self, role: Role) -> &Uri {
        match role {
            Role::PersonApi => &self.person_api,
            Role::LocationApi => &self.location_api,
            _ => &self.connection_api,
        }
    }

    /// The upstream URI for `uri` at `role`.
    fn target(&self, role: Role, uri: &Uri) -> Result<Uri, axum::http::Error> {
        let base = self.base_of(role);
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        Uri::builder()
            .scheme("http")
            .authority(base.authority().map(|a| a.as_str()).unwrap_or_default())
            .path_and_query(path)
            .build()
    }

    /// Whether `role` is ready, by its own /ready.
    pub async fn check(&self, role: Role) -> udaconnect_core::Result<()> {
        let unavailable =
            |why: String| udaconnect_core::Error::Unavailable(format!("{role}: {why}"));
        let uri = self
            .target(role, &Uri::from_static("/ready"))
            .map_err(|e| unavailable(e.to_string()))?;
        let request = Request::get(uri)
            .body(Body::empty())
            .map_err(|e| unavailable(e.to_string()))?;
        match tokio::time::timeout(Duration::from_secs(2), self.client.request(request)).await {
            Ok(Ok(r)) if r.status().is_success() => Ok(()),
            Ok(Ok(r)) => Err(unavailable(format!("not ready ({})", r.status()))),
            Ok(Err(e)) => Err(unavailable(e.to_string())),
            Err(_) => Err(unavailable("timed out".into())),
        }
    }

    async fn forward(&self, role: Role, mut request: Request) -> Response {
        let uri = match self.target(role, request.uri()) {
            Ok(u) => u,
            Err(e) => {
                return Problem::new(
                    StatusCode::BAD_REQUEST,
                    "urn:udaconnect:problem:bad-request",
                    format!("cannot route this URL: {e}"),
                )
                .into_response()
            }
        };
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        for h in HOP_BY_HOP {
            headers.remove(h);
        }
        headers.remove(header::HOST);
        // The upstream logs the same id as this gateway, whether the client sent one or not.
        if let Some(id) = correlation_id().and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(CORRELATION_HEADER, id);
        }
        match self.client.request(request).await {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                for h in HOP_BY_HOP {
                    parts.headers.remove(h);
                }
                Response::from_parts(parts, Body::new(body))
            }
            Err(e) => {
                tracing::warn!(upstream = %role, error = %e, "upstream unreachable");
                let mut r = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "urn:udaconnect:problem:unavailable",
                    format!("{role} is unavailable; retry shortly"),
                )
                .into_response();
                r.headers_mut().insert(
                    HeaderName::from_static("retry-after"),
                    HeaderValue::from_static("1"),
                );
                r
            }
        }
    }
}

async fn proxy(State(gw): State<Arc<Gateway>>, request: Request) -> Response {
    match route(request.uri().path()) {
        Some(role) => gw.forward(role, request).await,
        None => crate::http::not_found(request).await,
    }
}

/// Every `/api` path, passed on.
pub fn routes(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/api", axum::routing::any(proxy))
        .route("/api/{*rest}", axum::routing::any(proxy))
        .with_state(gw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_each_path_to_its_owner() {
        assert_eq!(route("/api/persons"), Some(Role::PersonApi));
        assert_eq!(route("/api/persons/5"), Some(Role::PersonApi));
        assert_eq!(
            route("/api/persons/5/connection"),
            Some(Role::ConnectionApi)
        );
        assert_eq!(route("/api/persons/5/contacts"), Some(Role::ConnectionApi));
        assert_eq!(route("/api/persons/5/summary"), Some(Role::ConnectionApi));
        assert_eq!(route("/api/locations"), Some(Role::LocationApi));
        assert_eq!(route("/api/locations/batch"), Some(Role::LocationApi));
        assert_eq!(route("/api/locations/7"), Some(Role::LocationApi));
        assert_eq!(route("/api/live/stream"), Some(Role::ConnectionApi));
        assert_eq!(route("/api/venue"), Some(Role::ConnectionApi));
        assert_eq!(route("/api/other"), None);
        assert_eq!(route("/health"), None);
    }
}

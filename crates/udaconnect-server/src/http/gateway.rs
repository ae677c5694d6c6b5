//! web: the one entry point of a distributed deployment. Serves the web page and passes every
//! `/api` request to the role that owns it (by the role table's paths), streaming bodies both
//! ways (large connection answers and the live event stream are never buffered here).
//!
//! With `--auth on` and a gateway key, the request's credential is looked up here, once, and
//! what it signs in goes on in a signed assertion the role behind believes (see
//! [`crate::access::authenticate`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::access::authenticate::{
    assertion_for, forgotten_in, ASSERTION_HEADER, FORGOTTEN_HEADER,
};
use crate::access::{upstream, Authenticator};
use crate::http::guard::ClientAddr;
use crate::http::problem::{ApiError, Problem};
use crate::http::upstream::Upstream;
use crate::http::{correlation_id, CORRELATION_HEADER};
use crate::roles::Role;

pub struct Gateway {
    upstreams: BTreeMap<Role, Arc<Upstream>>,
    /// Who is asking, found here and asserted to the role behind.
    auth: Arc<Authenticator>,
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

impl Gateway {
    /// Routes to each of `upstreams`, asserting callers as `auth` finds them.
    pub fn new(upstreams: Vec<Arc<Upstream>>, auth: Arc<Authenticator>) -> Gateway {
        Gateway {
            upstreams: upstreams.into_iter().map(|u| (u.role, u)).collect(),
            auth,
        }
    }

    async fn forward(&self, upstream: &Upstream, mut request: Request) -> Response {
        let path_and_query = request
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
        let uri = match upstream.uri(&path_and_query) {
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
        // The role behind answers to its own name; the page's host goes on for the check
        // that a cookie-signed write comes from the page (a browser sends this header only
        // from a page allowed to, after asking: CORS does not allow it).
        if let Some(host) = headers.remove(header::HOST) {
            headers.insert(HeaderName::from_static("x-forwarded-host"), host);
        }
        // The client, for the limits of the role behind (sign-in counts requests per client;
        // that role trusts this header only with --trust-proxy).
        if let Some(ClientAddr(peer)) = request.extensions().get::<ClientAddr>().copied() {
            let headers = request.headers_mut();
            let forwarded = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
                Some(before) => format!("{before}, {}", peer.ip()),
                None => peer.ip().to_string(),
            };
            if let Ok(v) = HeaderValue::from_str(&forwarded) {
                headers.insert(HeaderName::from_static("x-forwarded-for"), v);
            }
        }
        let headers = request.headers_mut();
        // Only this gateway asserts: whatever a client says in the header is dropped.
        headers.remove(ASSERTION_HEADER);
        // After the host moved to X-Forwarded-Host: the CSRF check reads the page's host there.
        let assertion = assertion_for(
            &self.auth,
            request.method(),
            path_and_query.as_str(),
            request.headers(),
        )
        .await;
        let asserted = match assertion {
            Ok(Some((value, principal))) => {
                request.headers_mut().insert(ASSERTION_HEADER, value);
                principal
            }
            Ok(None) => None,
            Err(e) => return ApiError(e).into_response(),
        };
        // A write person-api accepted may have ended the caller's credentials (sign-out, a
        // token revoked, the account deleted): what this gateway remembers of them goes, so
        // an ended session is refused here at once, not seconds later. Pings go elsewhere, so
        // this costs a lookup only after the rare account change.
        let may_revoke = upstream.role == Role::PersonApi && !request.method().is_safe();
        let headers = request.headers_mut();
        // The upstream logs the same id as this gateway, whether the client sent one or not.
        if let Some(id) = correlation_id().and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(CORRELATION_HEADER, id);
        }
        match upstream.send(request).await {
            Ok(mut response) => {
                for h in HOP_BY_HOP {
                    response.headers_mut().remove(h);
                }
                if let (true, Some(p)) = (may_revoke && response.status().is_success(), asserted) {
                    self.auth.forget_account(p.account);
                }
                // Accounts other than the caller's whose credentials the role ended or
                // changed (an admin's role change or erasure): forgotten here too, at once.
                for account in forgotten_in(response.headers()) {
                    self.auth.forget_account(account);
                }
                response.headers_mut().remove(FORGOTTEN_HEADER);
                response
            }
            Err(e) => {
                tracing::warn!(upstream = %upstream.role, error = %e, "upstream unreachable");
                let mut r = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "urn:udaconnect:problem:unavailable",
                    format!("{} is unavailable; retry shortly", upstream.role),
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
    let upstream = Role::owner_of(request.uri().path()).and_then(|r| gw.upstreams.get(&r));
    match upstream {
        Some(upstream) => gw.forward(upstream, request).await,
        None => crate::http::not_found(request).await,
    }
}

/// The pages a sign-in or verification link opens, and their POSTs: person-api's, outside
/// `/api` because the links are read by people.
async fn confirm(State(gw): State<Arc<Gateway>>, request: Request) -> Response {
    match gw.upstreams.get(&Role::PersonApi) {
        Some(upstream) => gw.forward(upstream, request).await,
        None => crate::http::not_found(request).await,
    }
}

/// Every `/api` path, OwnTracks' `/pub`, and the pages links open, passed on.
pub fn routes(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/pub", upstream(axum::routing::any(proxy)))
        .route("/api", upstream(axum::routing::any(proxy)))
        .route("/api/{*rest}", upstream(axum::routing::any(proxy)))
        .route(
            crate::signin::CONFIRM_PATH,
            upstream(axum::routing::any(confirm)),
        )
        .route(
            crate::signin::VERIFY_PATH,
            upstream(axum::routing::any(confirm)),
        )
        .with_state(gw)
}

//! Another role, reached over HTTP: the gateway's routes and the remote person directory go
//! through one of these, and `/ready` asks its `/ready`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Uri};
use axum::response::Response;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use udaconnect_core::auth::{Asserted, TokenKind, TokenSecret};
use udaconnect_core::{Error, Result};

use crate::access::authenticate::{sign, ASSERTION_HEADER};
use crate::access::Authenticator;
use crate::roles::Role;

/// How long a readiness question may take.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Upstream {
    pub role: Role,
    /// What this process presents when it calls the role for itself (never on a client's
    /// request it forwards).
    own: Option<OwnCredential>,
    base: Uri,
    client: Client<HttpConnector, Body>,
}

/// A process's own credential for its calls to another role.
struct OwnCredential {
    token: TokenSecret,
    /// `Bearer` and the token, marked sensitive.
    bearer: HeaderValue,
    auth: Arc<Authenticator>,
}

impl Upstream {
    /// `role` at `url` (`http://host:port`).
    pub fn new(role: Role, url: &str) -> anyhow::Result<Upstream> {
        let base: Uri = url
            .trim_end_matches('/')
            .parse()
            .map_err(|e| anyhow::anyhow!("{role} URL '{url}': {e}"))?;
        if base.scheme_str() != Some("http") || base.authority().is_none() {
            anyhow::bail!("{role} URL '{url}' must look like http://host:port");
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Upstream {
            role,
            base,
            client,
            own: None,
        })
    }

    /// This client, presenting `token` on the calls the process makes for itself; `auth`
    /// finds who the token signs in, to assert it where the role behind requires the
    /// gateway's assertion.
    pub fn with_credential(
        mut self,
        token: Option<&TokenSecret>,
        auth: Arc<Authenticator>,
    ) -> Self {
        self.own = token.and_then(|t| {
            let mut bearer = HeaderValue::from_str(&format!("Bearer {}", t.expose())).ok()?;
            bearer.set_sensitive(true);
            Some(OwnCredential {
                token: t.clone(),
                bearer,
                auth,
            })
        });
        self
    }

    /// Puts this process's own credential on `request` (its URI made by [`Self::uri`]): the
    /// service token, and with a gateway key the assertion of who the token signs in, as the
    /// gateway would make it (roles behind it believe nothing else). Nothing without a token.
    pub async fn present_own(&self, request: &mut Request) -> Result<()> {
        let Some(own) = &self.own else {
            return Ok(());
        };
        request
            .headers_mut()
            .insert(header::AUTHORIZATION, own.bearer.clone());
        if let Some(key) = own.auth.gateway_key() {
            let principal = own.auth.verify(&own.token, TokenKind::Api).await?;
            let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
            let value = sign(key, &Asserted::Signed(principal), request.method(), path)?;
            request.headers_mut().insert(ASSERTION_HEADER, value);
        }
        Ok(())
    }

    /// The URI of `path_and_query` at this role.
    pub fn uri(&self, path_and_query: &str) -> std::result::Result<Uri, axum::http::Error> {
        Uri::builder()
            .scheme("http")
            .authority(
                self.base
                    .authority()
                    .map(|a| a.as_str())
                    .unwrap_or_default(),
            )
            .path_and_query(path_and_query)
            .build()
    }

    /// Sends `request` as it is (its URI already made by [`Self::uri`]); the answer's body is
    /// streamed, never buffered here.
    pub async fn send(
        &self,
        request: Request,
    ) -> std::result::Result<Response, hyper_util::client::legacy::Error> {
        let (parts, body) = self.client.request(request).await?.into_parts();
        Ok(Response::from_parts(parts, Body::new(body)))
    }

    /// Unavailable, naming this role and why.
    pub fn unavailable(&self, why: impl std::fmt::Display) -> Error {
        Error::Unavailable(format!("{}: {why}", self.role))
    }

    /// Whether the role is ready, by its own `/ready`.
    pub async fn ready(&self) -> Result<()> {
        let uri = self.uri("/ready").map_err(|e| self.unavailable(e))?;
        let request = Request::get(uri)
            .body(Body::empty())
            .map_err(|e| self.unavailable(e))?;
        match tokio::time::timeout(READY_TIMEOUT, self.send(request)).await {
            Ok(Ok(r)) if r.status().is_success() => Ok(()),
            Ok(Ok(r)) => Err(self.unavailable(format!("not ready ({})", r.status()))),
            Ok(Err(e)) => Err(self.unavailable(e)),
            Err(_) => Err(self.unavailable("timed out")),
        }
    }
}

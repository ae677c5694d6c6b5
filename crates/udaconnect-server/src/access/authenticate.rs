//! The credential of a request, looked up once: `Authorization: Bearer uc_...` (API and
//! device tokens) or the session cookie, through the account store, whose lookups record the
//! last use. Answers are kept a few seconds so a phone posting a ping a second costs one
//! lookup per few seconds; a revocation through this process drops them at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::OnceCell;
use udaconnect_core::auth::{AccountId, Principal, TokenKind, TokenSecret, SESSION_COOKIE};
use udaconnect_core::clock::{DynClock, SystemClock};
use udaconnect_core::ports::DynAccountStore;
use udaconnect_core::{Error, Result};

use super::{AuthMode, Caller, Ruled};
use crate::http::problem::ApiError;
use crate::wiring::backends::{open_account_stores, StoreUrl};

/// How long a looked-up credential is believed without asking the store again.
const CACHE_FOR: Duration = Duration::from_secs(5);
/// Most credentials remembered; past it the expired ones go, then all.
const CACHE_ENTRIES: usize = 10_000;

/// Where a credential came from: a cookie is sent by the browser on its own, so a request
/// authenticated by one must show it comes from our own page (CSRF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Bearer,
    Cookie,
}

/// Turns credentials into principals for one process.
pub struct Authenticator {
    mode: AuthMode,
    /// Where the account store is; opened on the first credential (a role may start before
    /// its database answers, and a request without credential needs no store).
    url: Option<StoreUrl>,
    store: OnceCell<DynAccountStore>,
    cache: Mutex<HashMap<CacheKey, (Principal, Instant)>>,
    /// What "now" is for a credential's expiry: the clock sessions are made by.
    clock: DynClock,
}

/// A credential in the cache: its kind and hash, never the secret.
type CacheKey = (TokenKind, [u8; 32]);

impl Authenticator {
    pub fn new(mode: AuthMode, url: Option<StoreUrl>) -> Authenticator {
        Authenticator {
            mode,
            url,
            store: OnceCell::new(),
            cache: Mutex::new(HashMap::new()),
            clock: Arc::new(SystemClock),
        }
    }

    /// An authenticator over a store already open (tests, `serve`).
    pub fn with_store(mode: AuthMode, store: DynAccountStore) -> Authenticator {
        Authenticator {
            mode,
            url: None,
            store: OnceCell::new_with(Some(store)),
            cache: Mutex::new(HashMap::new()),
            clock: Arc::new(SystemClock),
        }
    }

    /// This authenticator, judging expiry by `clock` (the one sign-in makes sessions by).
    pub fn with_clock(self, clock: DynClock) -> Authenticator {
        Authenticator { clock, ..self }
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// The account store, opened on first use.
    pub async fn store(&self) -> Result<&DynAccountStore> {
        self.store
            .get_or_try_init(|| async {
                let url = self.url.as_ref().ok_or_else(|| {
                    Error::Unavailable("account store (this process has none)".into())
                })?;
                open_account_stores(url)
                    .await
                    .map(|s| s.accounts)
                    .map_err(|e| {
                        tracing::warn!(error = format!("{e:#}"), "account store did not open");
                        Error::Unavailable("account store".into())
                    })
            })
            .await
    }

    /// Who presents `secret` of `kind`: a known, live credential's principal; an unknown,
    /// expired or revoked one is refused.
    pub async fn verify(&self, secret: &TokenSecret, kind: TokenKind) -> Result<Principal> {
        let key = (kind, *secret.hash(kind).as_bytes());
        if let Some((p, at)) = self.cached(&key) {
            if at.elapsed() < CACHE_FOR {
                return Ok(p);
            }
        }
        let store = self.store().await?;
        let now = self.clock.now();
        let found = match kind {
            TokenKind::Session => store.verify_session(secret, now).await?,
            TokenKind::Api | TokenKind::SignInLink | TokenKind::EmailLink => {
                store.verify_token(secret, now).await?
            }
        };
        let p = found.ok_or_else(|| {
            Error::Unauthenticated(match kind {
                TokenKind::Session => "the session has ended; sign in again".to_string(),
                TokenKind::Api | TokenKind::SignInLink | TokenKind::EmailLink => {
                    "the token is unknown, expired or revoked".to_string()
                }
            })
        })?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_ENTRIES {
            cache.retain(|_, (_, at)| at.elapsed() < CACHE_FOR);
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(key, (p, Instant::now()));
        Ok(p)
    }

    fn cached(&self, key: &CacheKey) -> Option<(Principal, Instant)> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(key).copied()
    }

    /// Drops what this process remembers of the account's credentials: called on each
    /// revocation made through it, so a revoked token stops working here at once.
    pub fn forget_account(&self, account: AccountId) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, (p, _)| p.account != account);
    }

    /// Who is asking, by the request's headers; where the credential came from.
    pub async fn caller(&self, headers: &HeaderMap) -> Result<(Caller, Option<Via>)> {
        if self.mode == AuthMode::Off {
            return Ok((Caller::Open, None));
        }
        if let Some(secret) = bearer(headers)? {
            let p = self.verify(&secret, TokenKind::Api).await?;
            return Ok((Caller::Signed(p), Some(Via::Bearer)));
        }
        if let Some(raw) = cookie(headers, SESSION_COOKIE) {
            let secret = TokenSecret::parse(raw).ok_or_else(|| {
                Error::Unauthenticated("the session has ended; sign in again".into())
            })?;
            let p = self.verify(&secret, TokenKind::Session).await?;
            return Ok((Caller::Signed(p), Some(Via::Cookie)));
        }
        Ok((Caller::Nobody, None))
    }
}

/// The bearer token of `Authorization`, if the request has one. Another scheme (Basic, for
/// trackers that only know it) is not this layer's credential.
fn bearer(headers: &HeaderMap) -> Result<Option<TokenSecret>> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    let Some((scheme, token)) = text.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    TokenSecret::parse(token.trim()).map(Some).ok_or_else(|| {
        Error::Unauthenticated("the bearer token is not a UdaConnect token (uc_...)".into())
    })
}

/// The value of the cookie `name`, from every `Cookie` header.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Whether a state-changing request authenticated by cookie comes from a page of this host:
/// its `Origin` names this host, or the browser says `Sec-Fetch-Site: same-origin`.
fn same_origin(headers: &HeaderMap) -> bool {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site == Some("same-origin") {
        return true;
    }
    // Behind the web gateway, the host the page was served from is the forwarded one.
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST));
    let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        host.and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    origin_host.is_some_and(|h| h.eq_ignore_ascii_case(host))
}

/// Who sent a request with `headers`: 401 for a credential that signs no one in, 403 for a write made with
/// the session cookie from another site.
pub async fn identify(
    auth: &Authenticator,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Caller> {
    let (caller, via) = auth.caller(headers).await?;
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if via == Some(Via::Cookie) && !safe && !same_origin(headers) {
        return Err(Error::Forbidden(
            "a request signed in by the session cookie must come from this site's page \
             (Origin or Sec-Fetch-Site)"
                .into(),
        ));
    }
    Ok(caller)
}

/// The layer every HTTP router sits in: hands the routes' rules the process's
/// [`Authenticator`] (a rule finds the caller when its action needs one, so the gateway's
/// routes, decided behind it, look up nothing), and refuses to let an answer out of a route
/// that declared no rule (see [`super::rule`]).
pub async fn authenticate(auth: Arc<Authenticator>, mut request: Request, next: Next) -> Response {
    request.extensions_mut().insert(auth);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let response = next.run(request).await;
    let answered = response.status().as_u16() < 400;
    if answered && route.is_some() && response.extensions().get::<Ruled>().is_none() {
        // A route without a rule is a mistake in the code, found by the matrix test: it
        // must not pass as open.
        tracing::error!(route = route.as_deref(), "route has no access rule");
        return ApiError(Error::Internal(format!(
            "route {} has no access rule",
            route.unwrap_or_default()
        )))
        .into_response();
    }
    response
}

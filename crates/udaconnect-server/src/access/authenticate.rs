//! The credential of a request, looked up once: `Authorization: Bearer uc_...` (API and
//! device tokens) or the session cookie, through the account store, whose lookups record the
//! last use. Answers are kept a few seconds so a phone posting a ping a second costs one
//! lookup per few seconds; a revocation through this process drops them at once.
//!
//! In distributed mode the web role is the gateway: it looks the credential up here and
//! passes the outcome on in a signed [`Assertion`] ([`assertion_for`]); the roles behind it
//! believe that instead of looking up again, and refuse a request without one
//! ([`caller_of`]), so a role's port reached directly is no way around the gateway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::OnceCell;
use udaconnect_core::audit::AuditEntry;
use udaconnect_core::auth::{
    AccountId, Action, Asserted, Assertion, GatewayKey, Principal, TokenKind, TokenSecret,
    SESSION_COOKIE,
};
use udaconnect_core::clock::{Clock, DynClock, SystemClock};
use udaconnect_core::model::PersonId;
use udaconnect_core::ports::DynAccountStore;
use udaconnect_core::{Error, Result};

use super::audit::AuditWriter;
use super::{AuthMode, Caller, Ruled};
use crate::http::problem::ApiError;
use crate::wiring::backends::{open_account_stores, StoreUrl};

/// How long a looked-up credential is believed without asking the store again.
const CACHE_FOR: Duration = Duration::from_secs(5);
/// Most credentials remembered; past it the expired ones go, then all.
const CACHE_ENTRIES: usize = 10_000;

/// The header the gateway's [`Assertion`] travels in, from the web role to the role behind.
pub const ASSERTION_HEADER: HeaderName = HeaderName::from_static("x-udaconnect-assertion");

/// The header a role behind the gateway answers with the accounts whose credentials its
/// request ended or changed (an admin's role change, an erasure), so the gateway drops what
/// it remembers of them at once; the gateway removes it before the answer leaves.
pub const FORGOTTEN_HEADER: HeaderName = HeaderName::from_static("x-udaconnect-forgotten");

tokio::task_local! {
    /// The accounts forgotten while a request behind the gateway is answered.
    static FORGOTTEN: Arc<Mutex<Vec<AccountId>>>;
}

/// How a process stands to the gateway's assertions (they matter only with `--auth on`).
#[derive(Debug, Clone, Default)]
pub enum GatewayTrust {
    /// No gateway: `serve`, or a role apart without a key (on loopback only); credentials are
    /// looked up where they arrive.
    #[default]
    Alone,
    /// The web role apart: looks credentials up and signs what it found for the role behind.
    Signs(GatewayKey),
    /// A role behind the gateway: believes a valid assertion and requires one; signs its own
    /// calls to another role with the same key.
    Behind(GatewayKey),
}

impl GatewayTrust {
    /// The shared key, where there is one.
    pub fn key(&self) -> Option<&GatewayKey> {
        match self {
            GatewayTrust::Alone => None,
            GatewayTrust::Signs(k) | GatewayTrust::Behind(k) => Some(k),
        }
    }
}

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
    /// Writes the audit rows of staff reads, grouped; started with the first one.
    audit: OnceCell<AuditWriter>,
    cache: Mutex<HashMap<CacheKey, (Principal, Instant)>>,
    /// What "now" is for a credential's expiry: the clock sessions are made by.
    clock: DynClock,
    /// Whether this process signs or believes the gateway's assertions.
    gateway: GatewayTrust,
}

/// A credential in the cache: its kind and hash, never the secret.
type CacheKey = (TokenKind, [u8; 32]);

impl Authenticator {
    pub fn new(mode: AuthMode, url: Option<StoreUrl>) -> Authenticator {
        Authenticator {
            mode,
            url,
            store: OnceCell::new(),
            audit: OnceCell::new(),
            cache: Mutex::new(HashMap::new()),
            clock: Arc::new(SystemClock),
            gateway: GatewayTrust::Alone,
        }
    }

    /// An authenticator over a store already open (tests, `serve`).
    pub fn with_store(mode: AuthMode, store: DynAccountStore) -> Authenticator {
        Authenticator {
            mode,
            url: None,
            store: OnceCell::new_with(Some(store)),
            audit: OnceCell::new(),
            cache: Mutex::new(HashMap::new()),
            clock: Arc::new(SystemClock),
            gateway: GatewayTrust::Alone,
        }
    }

    /// This authenticator, judging expiry by `clock` (the one sign-in makes sessions by).
    pub fn with_clock(self, clock: DynClock) -> Authenticator {
        Authenticator { clock, ..self }
    }

    /// This authenticator, standing to the gateway's assertions as `gateway` says.
    pub fn with_gateway(self, gateway: GatewayTrust) -> Authenticator {
        Authenticator { gateway, ..self }
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// The key assertions are signed with, when this process signs or checks them with
    /// `--auth on`.
    pub fn gateway_key(&self) -> Option<&GatewayKey> {
        match self.mode {
            AuthMode::On => self.gateway.key(),
            AuthMode::Off => None,
        }
    }

    /// The account store, opened on first use.
    pub async fn store(&self) -> Result<&DynAccountStore> {
        self.store
            .get_or_try_init(|| async {
                let url = self.url.as_ref().ok_or_else(|| {
                    Error::Unavailable("account store (this process has none)".into())
                })?;
                let opened = open_account_stores(url).await.map_err(|e| {
                    tracing::warn!(error = format!("{e:#}"), "account store did not open");
                    Error::Unavailable("account store".into())
                })?;
                tracing::info!(store = %url, "account store open");
                Ok(opened.accounts)
            })
            .await
    }

    /// Records that `caller` read `person`'s data by `action`, when that is audited (an
    /// organizer's or an admin's read of someone else: [`AuditEntry::of_read`]). Returns once
    /// the row is durable: a read that cannot be recorded is not answered, and nothing
    /// recorded waits in memory to be lost. The rows of reads waiting at once are written in
    /// one transaction ([`AuditWriter`]), so staff reading many persons at once pay one sync
    /// to disk per group rather than one each.
    pub async fn audit_read(
        &self,
        caller: &Caller,
        action: Action,
        person: PersonId,
    ) -> Result<()> {
        let Some(principal) = caller.principal() else {
            return Ok(());
        };
        match AuditEntry::of_read(principal, action, person, self.clock.now()) {
            Some(entry) => self.audit_writer().await?.record(entry).await,
            None => Ok(()),
        }
    }

    /// The audit writer, started on the first audited read.
    async fn audit_writer(&self) -> Result<&AuditWriter> {
        self.audit
            .get_or_try_init(|| async { Ok(AuditWriter::start(self.store().await?.clone())) })
            .await
    }

    /// Stops taking audit rows and waits until the queued ones are written: the last step of
    /// a process's stop, after its requests drained.
    pub async fn close(&self) {
        if let Some(writer) = self.audit.get() {
            writer.close().await;
        }
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
        // Behind the gateway, the gateway's cache must hear of it too (see FORGOTTEN_HEADER).
        let _ = FORGOTTEN.try_with(|f| f.lock().unwrap_or_else(|e| e.into_inner()).push(account));
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

/// Who sent a request to a route ruled by `action` with `method` on `path` (with its query):
/// behind the gateway, who its assertion says (a request without one is refused, but for
/// `/metrics`, which scrapers ask each role for with a token of their own); elsewhere, by
/// the request's credential ([`identify`]).
pub async fn caller_of(
    auth: &Authenticator,
    action: Action,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<Caller> {
    if let (AuthMode::On, GatewayTrust::Behind(key)) = (auth.mode, &auth.gateway) {
        match headers.get(ASSERTION_HEADER) {
            Some(value) => return believe(key, value, method, path),
            None if action == Action::Metrics => {}
            None => {
                return Err(Error::Unauthenticated(
                    "this role answers only requests passed on by the web role (the gateway); \
                     send the request there"
                        .into(),
                ))
            }
        }
    }
    identify(auth, method, headers).await
}

/// What a gateway's assertion `value` says about the request `method` `path`.
fn believe(key: &GatewayKey, value: &HeaderValue, method: &Method, path: &str) -> Result<Caller> {
    // The machine's clock, not a test's: the gateway signed by its own machine's.
    let now = SystemClock.now().timestamp();
    let value = value.to_str().unwrap_or_default();
    match Assertion::verify(key, value, method.as_str(), path, now)? {
        Asserted::Nobody => Ok(Caller::Nobody),
        Asserted::Signed(p) => Ok(Caller::Signed(p)),
        Asserted::Refused { forbidden, why } => Err(Asserted::refusal(forbidden, why)),
    }
}

/// The web gateway's assertion for a request it passes on: who its credential signs in, or
/// why it signs no one in (the role behind says so only where its route needs a caller);
/// with the principal asserted, if any. `None` where this process signs nothing (no key,
/// `--auth off`, not the gateway).
pub async fn assertion_for(
    auth: &Authenticator,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<Option<(HeaderValue, Option<Principal>)>> {
    let (AuthMode::On, GatewayTrust::Signs(key)) = (auth.mode, &auth.gateway) else {
        return Ok(None);
    };
    let who = match identify(auth, method, headers).await {
        Ok(Caller::Signed(p)) => Asserted::Signed(p),
        Ok(Caller::Nobody | Caller::Open) => Asserted::Nobody,
        Err(Error::Unauthenticated(why)) => Asserted::Refused {
            forbidden: false,
            why,
        },
        Err(Error::Forbidden(why)) => Asserted::Refused {
            forbidden: true,
            why,
        },
        Err(e) => return Err(e),
    };
    let principal = match &who {
        Asserted::Signed(p) => Some(*p),
        Asserted::Nobody | Asserted::Refused { .. } => None,
    };
    Ok(Some((sign(key, &who, method, path)?, principal)))
}

/// `who` asserted for `method` `path`, as a header value.
pub(crate) fn sign(
    key: &GatewayKey,
    who: &Asserted,
    method: &Method,
    path: &str,
) -> Result<HeaderValue> {
    let now = SystemClock.now().timestamp();
    let mut value = HeaderValue::try_from(Assertion::sign(key, who, method.as_str(), path, now))
        .map_err(|e| Error::Internal(format!("assertion header: {e}")))?;
    value.set_sensitive(true);
    Ok(value)
}

/// The layer every HTTP router sits in: hands the routes' rules the process's
/// [`Authenticator`] (a rule finds the caller when its action needs one, so the gateway's
/// routes, decided behind it, look up nothing), and refuses to let an answer out of a route
/// that declared no rule (see [`super::rule`]).
pub async fn authenticate(auth: Arc<Authenticator>, mut request: Request, next: Next) -> Response {
    let behind = matches!(auth.gateway, GatewayTrust::Behind(_));
    request.extensions_mut().insert(auth);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let response = if behind {
        let forgotten = Arc::new(Mutex::new(Vec::new()));
        let mut response = FORGOTTEN.scope(forgotten.clone(), next.run(request)).await;
        let forgotten = forgotten.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(value) = forgotten_value(&forgotten) {
            response.headers_mut().insert(FORGOTTEN_HEADER, value);
        }
        response
    } else {
        next.run(request).await
    };
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

/// `accounts` as a [`FORGOTTEN_HEADER`] value (`3,7`), or none when there are none.
fn forgotten_value(accounts: &[AccountId]) -> Option<HeaderValue> {
    let mut ids: Vec<AccountId> = accounts.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let text = ids
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(",");
    (!ids.is_empty())
        .then(|| HeaderValue::try_from(text).ok())
        .flatten()
}

/// The accounts a role behind the gateway named in its answer's [`FORGOTTEN_HEADER`]; what
/// does not parse is ignored (the header comes from our own roles).
pub fn forgotten_in(headers: &HeaderMap) -> Vec<AccountId> {
    headers
        .get_all(FORGOTTEN_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|id| id.trim().parse().ok())
        .collect()
}

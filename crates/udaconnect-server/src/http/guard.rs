//! What every request meets before a handler: its target may be at most [`MAX_URI`] long,
//! its Host must be one this server answers to (DNS rebinding), and one client may send only
//! so many pings a second. A route that takes a JSON body declares it ([`json`]), and a
//! body of another type is refused there (a browser sends `text/plain` from any origin without
//! asking first, so a body read as JSON whatever its type lets any page write here). Every
//! answer carries the security headers; pages get a content security policy without inline
//! script.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;

use crate::http::edge::AllowedHosts;
use crate::http::problem::Problem;
use crate::metrics::Metrics;

/// The address of the client on the other end of the connection a request came on, set by
/// the connection layer.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// The request checks of one process.
pub struct Guards {
    pub hosts: AllowedHosts,
    /// Ingest requests per client; `None`: unlimited.
    pub ingest: Option<Arc<RateLimiter>>,
    pub metrics: Arc<Metrics>,
}

/// Media types a JSON write may carry.
const JSON_TYPES: [&str; 3] = [
    "application/json",
    "application/x-ndjson",
    "application/jsonl",
];

/// The policy of every HTML page: scripts, styles and fetches from this server only, no
/// inline script or style, never framed (clickjacking), no plugins.
const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// Longest part of a client's value repeated in an answer.
const ECHO: usize = 64;

/// Longest request target (path and query) answered; a longer one gets 414. Query values are
/// short (dates, a distance, an id): 8 KiB is ample, and keeps a handler from parsing and
/// echoing megabytes.
pub const MAX_URI: usize = 8 << 10;

/// Checks a request's target length, Host and the ingest rate, in that order, and hands the
/// request checks on to the route (`json_body` counts its refusals with them).
pub async fn check(guards: Arc<Guards>, mut request: Request, next: Next) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if target > MAX_URI {
        guards.refused("uri_too_long");
        return Problem::new(
            StatusCode::URI_TOO_LONG,
            "urn:udaconnect:problem:uri-too-long",
            format!("the request target is {target} bytes long; at most {MAX_URI} are answered"),
        )
        .into_response();
    }
    let host = request.uri().authority().map(|a| a.as_str()).or_else(|| {
        request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
    });
    // No Host at all is HTTP/1.0 or a tool, never a browser: nothing to rebind.
    if let Some(host) = host {
        if !guards.hosts.allows(host) {
            guards.refused("host");
            return Problem::new(
                StatusCode::MISDIRECTED_REQUEST,
                "urn:udaconnect:problem:misdirected",
                format!(
                    "this server does not answer to the host '{}' (see --allowed-hosts)",
                    prefix(host)
                ),
            )
            .into_response();
        }
    }
    // The OsmAnd protocol also reports with GET.
    let writes = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH
    ) || request.uri().path() == "/api/osmand";
    if let (Some(limiter), true) = (&guards.ingest, writes && is_ingest(request.uri().path())) {
        if let Some(ClientAddr(addr)) = request.extensions().get::<ClientAddr>().copied() {
            if let Err(wait) = limiter.take(addr.ip()) {
                guards.refused("rate");
                return too_many(wait, "ingest requests from this address");
            }
        }
    }
    request.extensions_mut().insert(guards);
    next.run(request).await
}

/// A route that takes a JSON body (or NDJSON), `json(post(handler))`: the route's one
/// declaration of its body type. A body of another type is refused with 415 before anything
/// reads it; the path's other methods are the router's to answer (405 with Allow).
pub fn json<S>(route: MethodRouter<S>) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    route.route_layer(axum::middleware::from_fn(json_body))
}

/// 415 for a body that does not say it is JSON; `detail` says what it must be.
pub fn not_json(detail: &str) -> Problem {
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "urn:udaconnect:problem:unsupported-media-type",
        detail,
    )
}

/// Refuses a body that does not say it is JSON, before it is read.
async fn json_body(request: Request, next: Next) -> Response {
    if is_json(request.headers().get(header::CONTENT_TYPE)) {
        return next.run(request).await;
    }
    if let Some(guards) = request.extensions().get::<Arc<Guards>>() {
        guards.refused("content_type");
    }
    let mut r = not_json(
        "the body must be sent with Content-Type application/json (a batch may be \
         application/x-ndjson)",
    )
    .into_response();
    r.headers_mut().insert(
        HeaderName::from_static("accept-post"),
        HeaderValue::from_static("application/json, application/x-ndjson"),
    );
    r
}

impl Guards {
    fn refused(&self, reason: &str) {
        self.metrics
            .requests_refused
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }
}

/// The paths that take pings.
fn is_ingest(path: &str) -> bool {
    path == "/api/locations"
        || path.starts_with("/api/locations/")
        || path == "/pub"
        || path == "/api/osmand"
}

pub(crate) fn is_json(content_type: Option<&HeaderValue>) -> bool {
    let Some(media) = content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
    else {
        return false;
    };
    JSON_TYPES.contains(&media.as_str())
        || (media.starts_with("application/") && media.ends_with("+json"))
}

fn prefix(s: &str) -> String {
    match s.char_indices().nth(ECHO) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// 429 with the whole seconds to wait (at least one) in the detail and in Retry-After; `what`
/// names the requests counted and whose they are ("ingest requests from this address").
pub fn too_many(wait: Duration, what: &str) -> Response {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut r = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "urn:udaconnect:problem:rate-limited",
        format!("too many {what}; retry in {secs} s"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Adds the headers every answer carries, and a page's policy to HTML.
pub async fn security_headers(mut response: Response) -> Response {
    let page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if page {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_POLICY),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

/// Token buckets per client address: `rate` a second, up to one second's worth saved.
/// IPv6 clients are counted per /64, the block one subscriber usually holds. Keyed by
/// something else (a tracker device), the same buckets with a burst of their own.
pub struct RateLimiter<K = IpAddr> {
    rate: f64,
    /// Most tokens saved.
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Clients remembered before the quiet ones are forgotten.
const MAX_CLIENTS: usize = 100_000;

impl RateLimiter<IpAddr> {
    pub fn new(per_second: u32) -> Self {
        Self::with_burst(per_second, per_second)
    }

    /// Takes one request's token for `ip`, or says how long until one is there.
    pub fn take(&self, ip: IpAddr) -> Result<(), Duration> {
        self.take_at(ip, Instant::now())
    }

    fn take_at(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        self.take_key_at(client_key(ip), now)
    }
}

impl<K: std::hash::Hash + Eq + Copy> RateLimiter<K> {
    /// `per_second` tokens a second (at least one), at most `burst` saved (at least one).
    pub fn with_burst(per_second: u32, burst: u32) -> Self {
        RateLimiter {
            rate: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how long until one is there.
    pub fn take_key(&self, key: K) -> Result<(), Duration> {
        self.take_key_at(key, Instant::now())
    }

    fn take_key_at(&self, key: K, now: Instant) -> Result<(), Duration> {
        let (rate, burst) = (self.rate, self.burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&key) {
            // A full bucket is a client quiet long enough: nothing to remember.
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
            if buckets.len() >= MAX_CLIENTS {
                buckets.clear();
            }
        }
        let b = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }
}

fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_rate_and_a_second_of_burst() {
        let limiter = RateLimiter::new(10);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(limiter.take_at(a, t0).is_ok());
        }
        let wait = limiter.take_at(a, t0).unwrap_err();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100));
        // Another client is not held back by the first.
        assert!(limiter.take_at(b, t0).is_ok());
        // A tenth of a second later, one more.
        let later = t0 + Duration::from_millis(100);
        assert!(limiter.take_at(a, later).is_ok());
        assert!(limiter.take_at(a, later).is_err());
    }

    #[test]
    fn a_device_gets_its_burst_then_its_rate() {
        let limiter = RateLimiter::<i64>::with_burst(2, 5);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(limiter.take_key_at(1, t0).is_ok());
        }
        let wait = limiter.take_key_at(1, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(limiter.take_key_at(2, t0).is_ok());
        let later = t0 + Duration::from_millis(500);
        assert!(limiter.take_key_at(1, later).is_ok());
        assert!(limiter.take_key_at(1, later).is_err());
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let limiter = RateLimiter::new(1);
        let t0 = Instant::now();
        assert!(limiter.take_at("2001:db8::1".parse().unwrap(), t0).is_ok());
        assert!(limiter
            .take_at("2001:db8::ffff:1234".parse().unwrap(), t0)
            .is_err());
        assert!(limiter
            .take_at("2001:db8:0:1::1".parse().unwrap(), t0)
            .is_ok());
        // An IPv4 client seen through an IPv6 socket is the same client.
        assert!(limiter.take_at("192.0.2.9".parse().unwrap(), t0).is_ok());
        assert!(limiter
            .take_at("::ffff:192.0.2.9".parse().unwrap(), t0)
            .is_err());
    }

    #[test]
    fn json_writes_must_say_so() {
        let v = |s: &'static str| Some(HeaderValue::from_static(s));
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/x-ndjson",
            "application/merge-patch+json",
        ] {
            assert!(is_json(v(ok).as_ref()), "{ok}");
        }
        for bad in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
        ] {
            assert!(!is_json(v(bad).as_ref()), "{bad}");
        }
        assert!(!is_json(None));
    }
}

//! Pings from tracker apps, and the devices that send them: the same ingest use case as
//! `POST /api/locations` (persons checked, ids given, acknowledged once durable in the log),
//! reached through the apps' own protocols and credentials.
//!
//! - [`browser`]: `POST /api/me/locations`, the page's "Share my location": the caller's own
//!   pings, one per fix time under the account's browser device.
//! - [`devices`]: `POST`/`GET /api/me/devices`, `DELETE /api/me/devices/{id}`: register a
//!   phone (a device token, an OsmAnd id and an OwnTracks topic, shown once), list, revoke.
//! - [`owntracks`]: `POST /pub`, OwnTracks' HTTP mode (Basic authentication, the device
//!   token as password).
//! - [`osmand`]: `/api/osmand` and the OsmAnd listener (`--osmand-listen`, port 5055):
//!   Traccar Client and OsmAnd, the device named by its OsmAnd id.
//! - [`mqtt`]: OwnTracks' MQTT mode, for tracker-mqtt: the messages a broker delivers on the
//!   devices' topics, acknowledged once durable.

pub mod browser;
pub mod devices;
pub mod mqtt;
pub mod osmand;
pub mod otrc;
pub mod owntracks;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use udaconnect_core::auth::{Principal, Role, Scope, Scopes};
use udaconnect_core::clock::DynClock;
use udaconnect_core::ports::DynAccountStore;
use udaconnect_core::tracker::{App, DeviceId, DeviceInfo, Seen, SpeedUnit, TrackerFix};

use crate::access::{own_credential, ruled, Authenticator};
use crate::http::edge::EdgeSettings;
use crate::http::guard::{json, too_many, RateLimiter};
use crate::http::problem::{ApiError, Problem};
use crate::ingest::Ingest;

/// What the tracker routes share.
pub struct Trackers {
    pub ingest: Arc<Ingest>,
    /// Devices and their credentials.
    pub accounts: DynAccountStore,
    pub clock: DynClock,
    /// The unit of `speed` in OsmAnd query and form fields (`--osmand-speed-unit`).
    pub speed_unit: SpeedUnit,
    /// Messages per device (`--device-rate-limit`, `--device-burst`); `None`: unlimited.
    pub device_limit: Option<RateLimiter<DeviceId>>,
    /// Held while an account's browser device is looked up or registered.
    pub browser_registration: tokio::sync::Mutex<()>,
    /// The process's credential cache, told of each device revoked here.
    pub auth: Arc<Authenticator>,
}

impl Trackers {
    /// What tracker routes and tracker-mqtt share, with the edge's device limit.
    pub fn new(
        ingest: Arc<Ingest>,
        accounts: DynAccountStore,
        clock: DynClock,
        edge: &EdgeSettings,
        auth: Arc<Authenticator>,
    ) -> Trackers {
        let device_limit = (edge.device_rate > 0)
            .then(|| RateLimiter::with_burst(edge.device_rate, edge.device_burst));
        Trackers {
            ingest,
            accounts,
            clock,
            speed_unit: edge.osmand_speed_unit,
            device_limit,
            browser_registration: tokio::sync::Mutex::new(()),
            auth,
        }
    }

    /// Takes one message's token for `device`, or says how long until one is there. A
    /// device's flood waits on its own bucket only: others are not held back.
    pub fn admit(&self, device: DeviceId) -> Result<(), Duration> {
        match &self.device_limit {
            Some(limit) => limit.take_key(device),
            None => Ok(()),
        }
    }

    /// [`Self::admit`] over HTTP: 429 with Retry-After, counted.
    fn admit_http(&self, device: DeviceId) -> Result<(), Refused> {
        self.admit(device).map_err(|wait| {
            self.ingest.metrics.tracker_limited.inc();
            Refused::from(too_many(wait, "messages from this device"))
        })
    }
}

/// The routes on the HTTP port. Phones are registered under the caller's rules; OwnTracks
/// and the OsmAnd protocol carry their own credential, checked by their handlers.
pub fn routes(trackers: Arc<Trackers>) -> Router {
    let mine = "/api/me/devices";
    ruled![
        mine => CreateDevice on Handler: json(post(devices::create_device)),
        mine => ListDevices on MyAccount: get(devices::list_devices),
        "/api/me/devices/{id}" => RevokeDevice on MyAccount: delete(devices::revoke_device),
        "/api/me/locations" => PostLocationBatch on MyPerson: json(post(browser::post_my_locations)),
    ]
    .route("/pub", own_credential(post(owntracks::publish)))
    .with_state(trackers.clone())
    .merge(osmand_listener_routes(trackers))
}

/// The report route alone: the OsmAnd listener's router (which reads every path as this
/// one, as the apps post to the server's root) and a part of the HTTP port's.
pub fn osmand_listener_routes(trackers: Arc<Trackers>) -> Router {
    let report = get(osmand::report).post(osmand::report);
    Router::new()
        .route("/api/osmand", own_credential(report))
        .with_state(trackers)
}

/// The principal a device is on the protocols where it shows no token (OsmAnd): its own
/// person's device, for ingest only.
fn device_principal(device: &DeviceInfo) -> Principal {
    Principal {
        account: device.account,
        person: Some(device.person),
        role: Role::Device,
        scopes: Scopes::only(Scope::Ingest),
    }
}

/// 401 naming the scheme the client should use (`Basic` for OwnTracks, `Bearer` for the
/// API).
fn unauthorized(scheme: &'static str, detail: &str) -> Response {
    let mut r = Problem::new(
        StatusCode::UNAUTHORIZED,
        "urn:udaconnect:problem:unauthorized",
        detail,
    )
    .into_response();
    let challenge = match scheme {
        "Basic" => "Basic realm=\"udaconnect\", charset=\"UTF-8\"",
        _ => "Bearer realm=\"udaconnect\"",
    };
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    r
}

fn forbidden(detail: &str) -> Response {
    Problem::new(
        StatusCode::FORBIDDEN,
        "urn:udaconnect:problem:forbidden",
        detail,
    )
    .into_response()
}

/// A request refused, as its answer: what the tracker handlers return early with `?`.
pub struct Refused(Box<Response>);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<Response> for Refused {
    fn from(r: Response) -> Refused {
        Refused(Box::new(r))
    }
}

impl From<udaconnect_core::Error> for Refused {
    fn from(e: udaconnect_core::Error) -> Refused {
        ApiError(e).into_response().into()
    }
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Refused {
        e.into_response().into()
    }
}

/// What a tracker handler answers: its answer, or why not.
type Answer = Result<Response, Refused>;

/// Records where a device's ping came from; a failure costs only the list's freshness. The
/// time recorded, if it was.
async fn seen(
    trackers: &Trackers,
    device: &DeviceInfo,
    app: App,
    battery_pct: Option<f64>,
) -> Option<DateTime<Utc>> {
    let at = trackers.clock.now();
    let seen = Seen {
        app,
        battery_pct,
        at,
    };
    match trackers.accounts.device_seen(device, seen).await {
        Ok(()) => Some(at),
        Err(e) => {
            tracing::warn!(device_id = device.id, error = %e, "device use not recorded");
            None
        }
    }
}

/// The pings `fixes` are for `person`, in order.
fn pings(
    fixes: &[TrackerFix],
    person: i64,
) -> udaconnect_core::Result<Vec<udaconnect_core::model::NewLocation>> {
    fixes.iter().map(|f| f.ping(person)).collect()
}

/// `200` with an empty body, as Traccar's server answers a report it took.
fn ok_empty() -> Response {
    StatusCode::OK.into_response()
}

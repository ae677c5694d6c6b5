//! "Add a phone": a device registered for one person, its credentials shown once, what to
//! type into each app; the account's devices listed; a device revoked.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use udaconnect_core::auth::{Action, Resource};
use udaconnect_core::time::format_utc;
use udaconnect_core::tracker::{DeviceInfo, NewDevice};
use udaconnect_core::{Error, Result};

use super::{otrc, Answer, Trackers};
use crate::access::Caller;
use crate::http::{parse_json, BodyBytes, PathId};

/// Most devices an account holds at once: each is a credential to keep track of, and a row
/// per request is what listing costs.
pub const MAX_DEVICES: usize = 20;

/// A device as listed: no secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Device {
    #[schema(example = 3)]
    pub id: i64,
    #[schema(example = "Pixel")]
    pub name: String,
    #[schema(example = 10)]
    pub person_id: i64,
    #[schema(example = "2026-05-04T09:30:00Z")]
    pub created: String,
    /// When a ping last came from it (to the minute), if ever.
    pub last_seen: Option<String>,
    /// The app of that ping: `owntracks`, `osmand`, `traccar-client` or `browser`.
    pub app: Option<String>,
    /// Battery level in percent, as the app last said.
    pub battery: Option<i64>,
    /// The OwnTracks topic it publishes to in MQTT mode.
    #[schema(example = "owntracks/p10/pixel-3")]
    pub mqtt_topic: String,
}

impl From<&DeviceInfo> for Device {
    fn from(d: &DeviceInfo) -> Device {
        Device {
            id: d.id,
            name: d.name.clone(),
            person_id: d.person,
            created: format_utc(d.created),
            last_seen: d.last_seen.map(format_utc),
            app: d.app.map(|a| a.as_str().to_string()),
            battery: d.battery_pct,
            mqtt_topic: d.mqtt_topic(),
        }
    }
}

/// OwnTracks' settings (Preferences → Connection), HTTP mode.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OwnTracksSettings {
    #[schema(example = "https://udaconnect.example.org/pub")]
    pub url: String,
    /// Identification → Username (any name works; this one names the topic's user).
    #[schema(example = "p10")]
    pub username: String,
    /// Identification → Password: the device token.
    pub password: String,
    /// Identification → Device ID.
    #[schema(example = "pixel-3")]
    pub device_id: String,
    /// These settings as OwnTracks' importable configuration (`_type: configuration`, HTTP
    /// mode): the content of an `.otrc` file the app opens.
    #[schema(value_type = Object)]
    pub otrc: Value,
    /// `owntracks:///config?inline=...`: the configuration in base64; opened on the phone, it
    /// configures the app.
    #[schema(example = "owntracks:///config?inline=eyJfdHlwZSI6ImNvbmZpZ3VyYXRpb24ifQ%3D%3D")]
    pub config_url: String,
    /// `config_url` as a QR code (an SVG document), for the app's scanner.
    pub qr_svg: String,
}

/// Traccar Client's settings (and OsmAnd's online tracking URL).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TraccarSettings {
    /// Server URL on the HTTP port (the OsmAnd listener, port 5055 by default, takes the
    /// same reports at any path).
    #[schema(example = "https://udaconnect.example.org/api/osmand")]
    pub url: String,
    /// Device identifier: the OsmAnd id.
    pub device_id: String,
}

/// A device just registered: its secrets, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RegisteredDevice {
    #[serde(flatten)]
    pub device: Device,
    /// Its device token (`uc_...`): the OwnTracks password, and `Authorization: Bearer` for
    /// `POST /api/locations`. Stored only as a hash: it cannot be shown again.
    pub token: String,
    /// The device identifier for Traccar Client / OsmAnd. Stored only as a hash.
    pub osmand_id: String,
    pub owntracks: OwnTracksSettings,
    pub traccar: TraccarSettings,
}

/// Body of `POST /api/me/devices`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct NewDeviceBody {
    /// What the phone is called in lists: 1 to 64 characters.
    #[schema(example = "Pixel")]
    name: String,
    /// The person it posts for: an admin's choice; others register devices for themselves.
    person_id: Option<i64>,
}

/// The base URL the client reached: its `Host` (behind the web gateway, the one it forwards),
/// and `https` when a proxy says so.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// The person field of a body: absent, or an id.
fn person_field(body: &Value) -> Result<Option<i64>> {
    match body.get("person_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => udaconnect_core::validate::integer(n)
            .filter(|id| (1..=udaconnect_core::model::MAX_ID).contains(id))
            .map(Some)
            .ok_or_else(|| Error::invalid("person_id", format!("{n} is not an id"))),
        Some(_) => Err(Error::bad_request("person_id", "must be an integer")),
    }
}

/// A phone's name. The browser's device is found by its name, so no phone may take it: the
/// page's pings would be stored under that phone.
fn name_field(body: &Value) -> Result<String> {
    match body.get("name") {
        None | Some(Value::Null) => Err(Error::invalid("name", "is required")),
        Some(Value::String(s)) if s.trim() == super::browser::BROWSER_DEVICE => {
            Err(Error::invalid(
                "name",
                "is the browser's own device (Share my location): choose another",
            ))
        }
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Error::bad_request("name", "must be a string")),
    }
}

/// Register a tracker device.
///
/// Answers, once, the device token (OwnTracks' password, and a bearer token for the API),
/// the OsmAnd id (Traccar Client's device identifier) and the OwnTracks MQTT topic, with what
/// to type into each app. An attendee registers devices for themselves; an admin for any
/// person with an account (`person_id`). At most 20 devices per account.
#[utoipa::path(post, path = "/api/me/devices", tag = "devices",
    request_body = NewDeviceBody,
    responses(
        (status = 201, description = "Registered; the secrets are in this answer only", body = RegisteredDevice),
        crate::http::openapi::MalformedJson,
        (status = 401, description = "No valid credential", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not this caller's person", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::openapi::BodyProblems,
        (status = 409, description = "The account holds 20 devices already", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad name, or the person has no account", body = crate::http::problem::Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_device(
    State(trackers): State<Arc<Trackers>>,
    caller: Caller,
    headers: HeaderMap,
    BodyBytes(body): BodyBytes,
) -> Answer {
    let body = parse_json(&body)?;
    let (name, person) = (name_field(&body)?, person_field(&body)?);
    let own = caller.principal().and_then(|p| p.person);
    let Some(person) = person.or(own) else {
        let why = "is required: this account has no person";
        return Err(Error::invalid("person_id", why).into());
    };
    caller.may(Action::CreateDevice, Resource::Person(person))?;
    let issued = register(&trackers, &name, person).await?;
    let base = base_url(&headers);
    let device = Device::from(&issued.device);
    let device_id = device
        .mqtt_topic
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let (url, username) = (format!("{base}/pub"), format!("p{person}"));
    let password = issued.token.expose().to_string();
    let otrc = otrc::configuration(&url, &username, &password, &device_id, &device.name);
    let config_url = otrc::config_url(&otrc.to_string());
    let answer = RegisteredDevice {
        owntracks: OwnTracksSettings {
            qr_svg: otrc::qr_svg(&config_url)?,
            url,
            username,
            password,
            device_id,
            otrc,
            config_url,
        },
        traccar: TraccarSettings {
            url: format!("{base}/api/osmand"),
            device_id: issued.osmand_id.expose().to_string(),
        },
        token: issued.token.expose().to_string(),
        osmand_id: issued.osmand_id.expose().to_string(),
        device,
    };
    tracing::info!(
        device_id = answer.device.id,
        person_id = person,
        "device registered"
    );
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

pub(super) async fn register(
    trackers: &Trackers,
    name: &str,
    person: i64,
) -> Result<udaconnect_core::tracker::IssuedDevice> {
    let Some(account) = trackers.accounts.account_by_person(person).await? else {
        return Err(Error::invalid(
            "person_id",
            format!("person {person} has no account"),
        ));
    };
    let new = NewDevice::new(account.id, person, name)?;
    if trackers.accounts.devices(account.id).await?.len() >= MAX_DEVICES {
        return Err(Error::Conflict(format!(
            "an account holds at most {MAX_DEVICES} devices: revoke one first"
        )));
    }
    trackers
        .accounts
        .create_device(new, trackers.clock.now())
        .await
}

/// List the caller's devices.
///
/// Name, person, when registered, when last seen, through which app and with what battery;
/// never a secret.
#[utoipa::path(get, path = "/api/me/devices", tag = "devices",
    responses(
        (status = 200, description = "The caller's devices, oldest first", body = Vec<Device>),
        (status = 401, description = "No valid credential", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::openapi::DeviceToken,
    ))]
pub async fn list_devices(State(trackers): State<Arc<Trackers>>, caller: Caller) -> Answer {
    let Some(p) = caller.principal() else {
        let why = "a device list is an account's: sign in";
        return Err(Error::Unauthenticated(why.into()).into());
    };
    let devices = trackers.accounts.devices(p.account).await?;
    Ok(Json(devices.iter().map(Device::from).collect::<Vec<_>>()).into_response())
}

/// Revoke a device: its token and OsmAnd id stop working at once.
#[utoipa::path(delete, path = "/api/me/devices/{id}", tag = "devices",
    params(("id" = i64, Path, minimum = 1, maximum = 9007199254740991_i64, description = "Device id")),
    responses(
        (status = 204, description = "Revoked"),
        crate::http::openapi::BadId,
        (status = 401, description = "No valid credential", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another account's device", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such device, or revoked already", body = crate::http::problem::Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke_device(
    State(trackers): State<Arc<Trackers>>,
    caller: Caller,
    PathId(id): PathId,
) -> Answer {
    let device = trackers.accounts.device(id).await?;
    let Some(device) = device.filter(|d| d.revoked.is_none()) else {
        return Err(Error::not_found("device", id).into());
    };
    caller.may(Action::RevokeDevice, Resource::Account(device.account))?;
    if !trackers
        .accounts
        .revoke_device(id, trackers.clock.now())
        .await?
    {
        return Err(Error::not_found("device", id).into());
    }
    // Its token may be in this process's cache from a Bearer request: it stops working at once.
    trackers.auth.forget_account(device.account);
    tracing::info!(device_id = id, "device revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

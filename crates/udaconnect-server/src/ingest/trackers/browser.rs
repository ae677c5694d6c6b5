//! `POST /api/me/locations`: the caller's own pings from the page's "Share my location" (a
//! browser's Geolocation API), sent with the session.
//!
//! The page queues each fix in the browser and sends it from the queue, so a ping can come
//! late, out of order and more than once (its answer lost, the page closed mid-send). Each
//! ping carries its fix time and is stored under the account's browser device and that
//! second ([`crate::ingest::Ingest::accept_from_device`]), as a phone's are: a copy sent
//! again is the same ping, in both modes. The browser device is registered on the first
//! ping (its token and OsmAnd id are never shown: nothing signs in with them) and is listed
//! with the account's phones, with its last ping.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::Value;
use udaconnect_core::auth::Action;
use udaconnect_core::model::Telemetry;
use udaconnect_core::tracker::{App, DeviceInfo};
use udaconnect_core::validate::{self, BatchCheck};
use udaconnect_core::{Error, Result};

use super::{devices, seen, Answer, Trackers};
use crate::access::{Caller, MyPerson};
use crate::http::{parse_json, BodyBytes};
use crate::ingest::http::BatchAccepted;

/// Most pings one request carries: the page sends its queue in pieces this size.
pub const MAX_MY_PINGS_POSTED: usize = 100;

/// The name of the device a browser's pings are stored under, one per account.
pub const BROWSER_DEVICE: &str = "Browser (Share my location)";

/// Body of `POST /api/me/locations`: 1 to 100 of the caller's pings.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct MyPing {
    #[schema(schema_with = crate::http::openapi::latitude_schema)]
    latitude: f64,
    #[schema(schema_with = crate::http::openapi::longitude_schema)]
    longitude: f64,
    /// The fix time, required: a ping sent again with the same second is one ping.
    #[schema(value_type = String, format = DateTime, example = "2026-05-04T09:30:00.250Z")]
    creation_time: String,
    /// The fix's accuracy in metres (the Geolocation API's `coords.accuracy`), kept with the
    /// ping; a value that is no radius is dropped, the ping kept (as tracker apps' extras).
    #[schema(example = 12.5)]
    accuracy: Option<f64>,
    /// Metres above sea level (`coords.altitude`), kept with the ping as the accuracy is.
    #[schema(example = 512.0)]
    altitude: Option<f64>,
    /// Metres per second (`coords.speed`), kept with the ping as the accuracy is.
    #[schema(example = 1.4)]
    speed: Option<f64>,
    /// Degrees clockwise from north (`coords.heading`), kept with the ping as the accuracy is.
    #[schema(example = 270.0)]
    heading: Option<f64>,
}

/// Post the caller's own pings.
///
/// For the page's "Share my location": a JSON array of 1 to 100 pings of the caller's own
/// person, each with its fix time. Each is stored once per fix time (to the second) under
/// the account's browser device, registered on the first ping: a ping sent again (late,
/// out of order, twice) is one ping. Answers 202 once durable in the log, with the ids of
/// the pings (a copy within the body once).
#[utoipa::path(post, path = "/api/me/locations", tag = "me",
    request_body(content = Vec<MyPing>, description = "1 to 100 pings, each with its fix time"),
    responses(
        (status = 202, description = "Durable in the log", body = BatchAccepted),
        (status = 400, description = "Not a JSON array of objects, or a field of the wrong type", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "A ping names another person, or a role that posts no pings of its own", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::openapi::NoPersonOfMine,
        (status = 409, description = "The account holds 20 devices already: its browser cannot be one more", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Empty, more than 100 pings, no fix time, out of range, or timed too far ahead", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::openapi::DeviceRateLimited,
        crate::http::openapi::IngestProblems,
    ))]
pub async fn post_my_locations(
    State(trackers): State<Arc<Trackers>>,
    caller: Caller,
    MyPerson(person): MyPerson,
    BodyBytes(body): BodyBytes,
) -> Answer {
    let pings = my_pings(parse_json(&body)?, person)?;
    let Some(account) = caller.principal().map(|p| p.account) else {
        return Err(Error::Unauthenticated(crate::access::NO_ME.into()).into());
    };
    let device = browser_device(&trackers, account, person).await?;
    trackers.admit_http(device.id)?;
    let stored = trackers
        .ingest
        .accept_from_device(
            &caller,
            Action::PostLocationBatch,
            pings,
            true,
            Some(device.id),
        )
        .await?;
    seen(&trackers, &device, App::Browser, None).await;
    let ids: Vec<i64> = stored.iter().map(|l| l.id).collect();
    let accepted = BatchAccepted {
        accepted: ids.len(),
        ids,
    };
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

/// The pings of a body, each of `person` (a ping naming another person stays so, and is
/// refused as not the caller's) and with its fix time.
fn my_pings(body: Value, person: i64) -> Result<Vec<udaconnect_core::model::NewLocation>> {
    let Value::Array(items) = body else {
        return Err(Error::bad_request("body", "must be a JSON array of pings"));
    };
    if items.is_empty() || items.len() > MAX_MY_PINGS_POSTED {
        let why = format!("must hold 1 to {MAX_MY_PINGS_POSTED} pings");
        return Err(Error::invalid("body", why));
    }
    let check = BatchCheck::of(items.into_iter().map(|mut item| {
        if let Value::Object(fields) = &mut item {
            fields.entry("person_id").or_insert(person.into());
        }
        let extra = |key: &str| item.get(key).and_then(Value::as_f64);
        let telemetry = Telemetry {
            altitude_m: extra("altitude"),
            speed_mps: extra("speed"),
            heading_deg: extra("heading"),
            battery_pct: None,
            app: Some(App::Browser),
        };
        let ping = validate::new_location(&item)?
            .with_accuracy(extra("accuracy"))
            .with_telemetry(telemetry);
        match ping.creation_time() {
            Some(_) => Ok(ping),
            None => Err(Error::invalid(
                "creation_time",
                "is required: the fix time makes a ping sent again one ping",
            )),
        }
    }));
    check.finish()
}

/// The account's browser device, registered on its first ping. Registrations take turns, so
/// two first pings at once make one device (within this process); finding it takes none.
async fn browser_device(trackers: &Trackers, account: i64, person: i64) -> Result<DeviceInfo> {
    let find = || async {
        let devices = trackers.accounts.devices(account).await?;
        Ok::<_, Error>(
            devices
                .into_iter()
                .find(|d| d.person == person && d.name == BROWSER_DEVICE),
        )
    };
    if let Some(device) = find().await? {
        return Ok(device);
    }
    let _turn = trackers.browser_registration.lock().await;
    match find().await? {
        Some(device) => Ok(device),
        None => Ok(devices::register(trackers, BROWSER_DEVICE, person)
            .await?
            .device),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_browsers_accuracy_is_kept_and_an_odd_one_dropped() {
        let ping = |accuracy: Value| {
            json!({"latitude": 1.0, "longitude": 2.0,
                   "creation_time": "2026-05-04T09:30:00Z", "accuracy": accuracy})
        };
        let body = json!([
            ping(json!(12.5)),
            ping(json!(-1)),
            ping(json!("far")),
            ping(Value::Null)
        ]);
        let got: Vec<Option<f64>> = my_pings(body, 7)
            .unwrap()
            .iter()
            .map(|p| p.accuracy_m())
            .collect();
        assert_eq!(got, [Some(12.5), None, None, None]);
    }

    /// The Geolocation API's altitude, speed and heading are kept in its units (metres, m/s,
    /// degrees) with the browser as the app; one out of bounds or not a number is dropped.
    #[test]
    fn the_browsers_altitude_speed_and_heading_are_kept() {
        let body = json!([
            {"latitude": 1.0, "longitude": 2.0, "creation_time": "2026-05-04T09:30:00Z",
             "altitude": 512.5, "speed": 1.4, "heading": 270},
            {"latitude": 1.0, "longitude": 2.0, "creation_time": "2026-05-04T09:30:01Z",
             "altitude": "high", "speed": -1, "heading": 361},
            {"latitude": 1.0, "longitude": 2.0, "creation_time": "2026-05-04T09:30:02Z"}
        ]);
        let got: Vec<Telemetry> = my_pings(body, 7)
            .unwrap()
            .iter()
            .map(|p| p.telemetry())
            .collect();
        let browser = Telemetry {
            app: Some(App::Browser),
            ..Telemetry::default()
        };
        let full = Telemetry {
            altitude_m: Some(512.5),
            speed_mps: Some(1.4),
            heading_deg: Some(270.0),
            ..browser
        };
        assert_eq!(got, [full, browser, browser]);
    }
}

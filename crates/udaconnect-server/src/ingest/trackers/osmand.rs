//! The OsmAnd protocol: Traccar Client and OsmAnd report at `/api/osmand` (GET or POST,
//! query or form fields, or Traccar Client's JSON body), and at any path of the OsmAnd
//! listener. The device is named by its OsmAnd id, its only credential here; an id no live
//! device has is refused with 400, as Traccar's server refuses an unknown device. A report
//! taken is answered `200` with an empty body once its pings are durable in the log.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use udaconnect_core::auth::Action;
use udaconnect_core::tracker::{osmand_fields, traccar_json, App, OsmAndReport};
use udaconnect_core::Error;

use super::{device_principal, ok_empty, pings, seen, Answer, Trackers};
use crate::access::Caller;
use crate::http::problem::Problem;

/// How the body says it is written.
fn media(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The report a request carries: Traccar Client's JSON body, else the query's fields and a
/// form body's.
fn read_report(
    trackers: &Trackers,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> udaconnect_core::Result<OsmAndReport> {
    let media = media(headers);
    let json = media == "application/json" || media.ends_with("+json");
    if json {
        return traccar_json(body);
    }
    let query = uri.query().unwrap_or_default().as_bytes();
    let form: &[u8] = if media == "application/x-www-form-urlencoded" || media.is_empty() {
        body
    } else {
        &[]
    };
    let pairs = url::form_urlencoded::parse(query)
        .chain(url::form_urlencoded::parse(form))
        .map(|(k, v)| (Cow::Owned(k.into_owned()), Cow::Owned(v.into_owned())));
    osmand_fields(pairs, trackers.speed_unit)
}

/// A Traccar Client or OsmAnd report.
///
/// The OsmAnd protocol: fields in the query or a form body (`id`, `lat`, `lon`, `timestamp`,
/// `speed`, `bearing`, `altitude`, `accuracy`, `batt`, ...) or Traccar Client's JSON body
/// (`device_id`, `location`). The device id is the OsmAnd id "Add a phone" gave; `speed` in
/// fields is read in the unit `--osmand-speed-unit` sets (knots by default).
#[utoipa::path(post, path = "/api/osmand", tag = "trackers",
    params(
        ("id" = Option<String>, Query, description = "The device's OsmAnd id (or `deviceid`)"),
        ("lat" = Option<f64>, Query, description = "Degrees"),
        ("lon" = Option<f64>, Query, description = "Degrees"),
        ("timestamp" = Option<String>, Query, description = "Seconds or milliseconds since 1970, or ISO 8601"),
    ),
    request_body(content = String, description = "Nothing, form fields (application/x-www-form-urlencoded), or Traccar Client's JSON body"),
    responses(
        (status = 200, description = "Taken: durable in the log (empty body)"),
        (status = 400, description = "Unreadable fields, or no device has this id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Out of range, or timed too far ahead", body = Problem, content_type = "application/problem+json"),
        crate::http::openapi::DeviceRateLimited,
        crate::http::openapi::IngestBusy,
    ))]
pub async fn report(
    State(trackers): State<Arc<Trackers>>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Answer {
    if method != Method::GET && method != Method::POST {
        let why = "reports are sent with GET or POST";
        return Err(
            Problem::new(StatusCode::METHOD_NOT_ALLOWED, "about:blank", why)
                .into_response()
                .into(),
        );
    }
    let report = read_report(&trackers, &headers, &uri, &body)?;
    let Some(device) = trackers
        .accounts
        .device_by_osmand_id(&report.device)
        .await?
    else {
        // Traccar's answer to a device it does not know.
        let why = "no registered device has this id: register the phone and use its OsmAnd id";
        return Err(Error::bad_request("id", why).into());
    };
    trackers.admit_http(device.id)?;
    let caller = Caller::Signed(device_principal(&device));
    let app = report.fixes.first().map_or(App::OsmAnd, |f| f.app);
    if !report.fixes.is_empty() {
        let pings = pings(&report.fixes, device.person)?;
        let batch = pings.len() > 1;
        trackers
            .ingest
            .accept_from_device(&caller, Action::PostOsmAnd, pings, batch, Some(device.id))
            .await?;
    }
    seen(&trackers, &device, app, report.battery_pct).await;
    Ok(ok_empty())
}

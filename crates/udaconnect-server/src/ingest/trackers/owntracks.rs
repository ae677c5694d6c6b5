//! `POST /pub`: OwnTracks in HTTP mode, at the path of the OwnTracks Recorder.
//!
//! The app authenticates with HTTP Basic: any user name, and a token as the password (a
//! device token from "Add a phone", or an attendee's own token). The ping is the token's
//! person's; a message that names another person's device (its `topic`, or the Recorder's
//! `X-Limit-U`/`X-Limit-D` headers, user and device) is refused with 403. The answer is `200`
//! with a JSON array, sent only once the ping is durable in the log: the app drops a message
//! from its queue on any 2xx.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use udaconnect_core::auth::{Action, Principal, TokenSecret};
use udaconnect_core::tracker::{
    basic_credentials, owntracks_message, topic_device, App, OwnTracks,
};

use super::{forbidden, pings, seen, unauthorized, Answer, Refused, Trackers};
use crate::access::Caller;
use crate::http::BodyBytes;

/// The password of `Authorization: Basic`, if it is a token's form.
fn basic_password(headers: &HeaderMap) -> Option<TokenSecret> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (_, password) = basic_credentials(value)?;
    TokenSecret::parse(&password)
}

/// The device a message names: its `topic`, else the Recorder's headers.
fn named_device(headers: &HeaderMap, topic: Option<&str>) -> Option<(i64, i64)> {
    if let Some(named) = topic.and_then(topic_device) {
        return Some(named);
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (user, device) = (header("x-limit-u")?, header("x-limit-d")?);
    topic_device(&format!("owntracks/{user}/{device}"))
}

/// An OwnTracks message.
///
/// Takes one message of the OwnTracks HTTP mode: a `location` becomes a ping of the token's
/// person; every other `_type`, and an empty body, is accepted and ignored. Answers `200 []`
/// once the ping is durable in the log. Basic authentication: any user, a device token as
/// the password.
#[utoipa::path(post, path = "/pub", tag = "trackers",
    request_body(content = String, content_type = "application/json", description = "One OwnTracks message (`_type` location, transition, lwt, ...), or nothing"),
    params(
        ("X-Limit-U" = Option<String>, Header, description = "The OwnTracks user (the topic's second level)"),
        ("X-Limit-D" = Option<String>, Header, description = "The OwnTracks device (the topic's third level)"),
    ),
    responses(
        (status = 200, description = "Taken (durable in the log) or ignored: an empty JSON array", body = Vec<String>),
        (status = 400, description = "Not a JSON object, or unreadable fields", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No token as the Basic password, or one unknown, expired or revoked", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The message names another person's device", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::openapi::DeviceRateLimited,
        (status = 422, description = "Out of range, or timed too far ahead", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::openapi::IngestBusy,
    ))]
pub async fn publish(
    State(trackers): State<Arc<Trackers>>,
    headers: HeaderMap,
    BodyBytes(body): BodyBytes,
) -> Answer {
    let Some(secret) = basic_password(&headers) else {
        return Err(unauthorized("Basic", "the password must be a device token").into());
    };
    let now = trackers.clock.now();
    let Some(principal) = trackers.accounts.verify_token(&secret, now).await? else {
        let why = "the token is unknown, expired or revoked";
        return Err(unauthorized("Basic", why).into());
    };
    // A device token's messages count against its device's rate, and its pings are one per
    // device and second; an attendee's own token has no device (its address's rate holds).
    let device = trackers.accounts.device_by_token(&secret).await?;
    if let Some(d) = &device {
        trackers.admit_http(d.id)?;
    }
    let OwnTracks::Location { fix, topic, .. } = owntracks_message(&body)? else {
        return Ok(answer());
    };
    let person = whose(&principal, named_device(&headers, topic.as_deref()))?;
    let pings = pings(std::slice::from_ref(&fix), person)?;
    let caller = Caller::Signed(principal);
    let id = device.as_ref().map(|d| d.id);
    trackers
        .ingest
        .accept_from_device(&caller, Action::PostOwnTracks, pings, false, id)
        .await?;
    if let Some(device) = device {
        seen(&trackers, &device, App::OwnTracks, fix.extras.battery_pct).await;
    }
    Ok(answer())
}

/// Whose ping a message is: the token's person; one naming another person's device is
/// refused.
fn whose(principal: &Principal, named: Option<(i64, i64)>) -> Result<i64, Refused> {
    match (principal.person, named) {
        (Some(own), Some((person, _))) if person != own => {
            Err(forbidden("the message names another person's device").into())
        }
        (Some(own), _) => Ok(own),
        (None, Some((person, _))) => Ok(person),
        (None, None) => Err(forbidden("this token acts for no person: use a device token").into()),
    }
}

/// The Recorder's answer: a JSON array (here empty: no friends' cards are shared).
fn answer() -> Response {
    let mut r = (StatusCode::OK, "[]").into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

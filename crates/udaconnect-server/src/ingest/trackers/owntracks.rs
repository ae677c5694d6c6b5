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
use udaconnect_core::auth::{Action, Principal, Resource, TokenSecret};
use udaconnect_core::tracker::{
    basic_credentials, owntracks_message, topic_device, App, OwnTracks,
};

use super::{decide, forbidden, pings, seen, unauthorized, Trackers};
use crate::http::problem::ApiError;
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
        (status = 422, description = "Out of range, or timed too far ahead", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::openapi::IngestBusy,
    ))]
pub async fn publish(
    State(trackers): State<Arc<Trackers>>,
    headers: HeaderMap,
    BodyBytes(body): BodyBytes,
) -> Response {
    let Some(secret) = basic_password(&headers) else {
        return unauthorized("Basic", "the password must be a device token");
    };
    let principal = match trackers
        .accounts
        .verify_token(&secret, trackers.clock.now())
        .await
    {
        Ok(Some(p)) => p,
        Ok(None) => return unauthorized("Basic", "the token is unknown, expired or revoked"),
        Err(e) => return ApiError(e).into_response(),
    };
    let message = match owntracks_message(&body) {
        Ok(m) => m,
        Err(e) => return ApiError(e).into_response(),
    };
    let OwnTracks::Location { fix, topic, .. } = message else {
        return answer();
    };
    let person = match whose(&principal, named_device(&headers, topic.as_deref())) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    if let Err(r) = decide(
        Some(&principal),
        Action::PostOwnTracks,
        Resource::Person(person),
        "Basic",
    ) {
        return *r;
    }
    let accepted = match pings(std::slice::from_ref(&fix), person) {
        Ok(pings) => trackers.ingest.accept(pings, false).await,
        Err(e) => Err(e),
    };
    if let Err(e) = accepted {
        return ApiError(e).into_response();
    }
    if let Ok(Some(device)) = trackers.accounts.device_by_token(&secret).await {
        seen(&trackers, &device, App::OwnTracks, fix.extras.battery_pct).await;
    }
    answer()
}

/// Whose ping a message is: the token's person; one naming another person's device is
/// refused.
fn whose(principal: &Principal, named: Option<(i64, i64)>) -> Result<i64, Box<Response>> {
    match (principal.person, named) {
        (Some(own), Some((person, _))) if person != own => Err(Box::new(forbidden(
            "the message names another person's device",
        ))),
        (Some(own), _) => Ok(own),
        (None, Some((person, _))) => Ok(person),
        (None, None) => Err(Box::new(forbidden(
            "this token acts for no person: use a device token",
        ))),
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

//! `/api/me/visibility`: whether the people the caller met may see the caller's name and
//! company in their contacts. No by default; the caller's own choice, kept with the account.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Serialize;
use udaconnect_core::Error;

use super::{ruled, Authenticator, Caller, MyPerson, NO_ME};
use crate::http::guard::json;
use crate::http::openapi::{MalformedJson, MyPersonProblems, NotJson};
use crate::http::problem::{ApiResult, Problem};
use crate::http::JsonBody;

pub fn routes(auth: Arc<Authenticator>) -> Router {
    ruled![
        "/api/me/visibility" => GetVisibility on MyAccount: get(my_visibility),
        "/api/me/visibility" => SetVisibility on MyAccount: json(put(set_my_visibility)),
    ]
    .with_state(auth)
}

/// Whether the people the caller met see who the caller is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Visibility {
    /// `true`: the people the caller met see the caller's name and company in their contacts;
    /// `false` (the default): they see "someone", with the time and place of the meeting only.
    pub visible: bool,
}

/// Whether the people the caller met may see the caller's name and company.
#[utoipa::path(get, path = "/api/me/visibility", tag = "me",
    responses(
        (status = 200, description = "The caller's choice; false until they make one", body = Visibility),
        MyPersonProblems,
    ))]
pub async fn my_visibility(
    State(auth): State<Arc<Authenticator>>,
    caller: Caller,
    MyPerson(_): MyPerson,
) -> ApiResult<Json<Visibility>> {
    let visible = auth
        .store()
        .await?
        .visible(caller.signed(NO_ME)?.account)
        .await?;
    Ok(Json(Visibility { visible }))
}

/// Body of `PUT /api/me/visibility`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct VisibilityBody {
    /// Whether the people the caller met may see the caller's name and company.
    visible: bool,
}

/// Let the people the caller met see the caller's name and company in their contacts, or
/// stop them: from the next answer they are given on, meetings past and future alike.
#[utoipa::path(put, path = "/api/me/visibility", tag = "me",
    request_body = VisibilityBody,
    responses(
        (status = 200, description = "The choice, as stored", body = Visibility),
        MalformedJson,
        MyPersonProblems,
        NotJson,
        (status = 422, description = "`visible` is missing or not true or false", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_my_visibility(
    State(auth): State<Arc<Authenticator>>,
    caller: Caller,
    MyPerson(_): MyPerson,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Visibility>> {
    let account = caller.signed(NO_ME)?.account;
    if !body.is_object() {
        return Err(Error::bad_request("body", "must be a JSON object").into());
    }
    let visible = match body.get("visible") {
        Some(serde_json::Value::Bool(b)) => *b,
        _ => return Err(Error::invalid("visible", "must be true or false").into()),
    };
    if !auth
        .store()
        .await?
        .set_visible(account, visible, chrono::Utc::now())
        .await?
    {
        return Err(Error::Unauthenticated("the account no longer exists".into()).into());
    }
    tracing::info!(account, visible, "visibility to met people chosen");
    Ok(Json(Visibility { visible }))
}

//! `/api/me/visibility`: whether the people the caller met may see the caller's name and
//! company in their contacts. No by default; the caller's own choice, kept with the account.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use udaconnect_core::auth::Action;
use udaconnect_core::Error;

use super::{rule, Authenticator, Caller, MyPerson, On};
use crate::http::guard::put_json;
use crate::http::openapi::{MalformedJson, MyPersonProblems};
use crate::http::problem::{ApiResult, Problem};
use crate::http::JsonBody;

pub fn routes(auth: Arc<Authenticator>) -> Router {
    Router::new()
        .route(
            "/api/me/visibility",
            rule(Action::GetVisibility, On::MyAccount, get(my_visibility)).merge(rule(
                Action::SetVisibility,
                On::MyAccount,
                put_json(set_my_visibility),
            )),
        )
        .with_state(auth)
}

/// Whether the people the caller met see who the caller is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Visibility {
    /// `true`: the people the caller met see the caller's name and company in their contacts;
    /// `false` (the default): they see "someone", with the time and place of the meeting only.
    pub visible: bool,
}

/// The caller's account, which the rule found signed in.
fn account(caller: &Caller) -> ApiResult<i64> {
    Ok(caller
        .principal()
        .ok_or_else(|| Error::Unauthenticated("sign in (or send a token) to have a 'me'".into()))?
        .account)
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
    let visible = auth.store().await?.visible(account(&caller)?).await?;
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
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`visible` is missing or not true or false", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_my_visibility(
    State(auth): State<Arc<Authenticator>>,
    caller: Caller,
    MyPerson(_): MyPerson,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Visibility>> {
    let account = account(&caller)?;
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

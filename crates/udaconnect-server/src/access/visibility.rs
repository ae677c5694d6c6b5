//! `/api/me/visibility`: whether the people the caller met may see the caller's name and
//! company in their contacts, and whether organizers see the caller by name on the live map.
//! No to both by default; the caller's own choices, kept with the account.

use axum::Json;
use serde::Serialize;
use udaconnect_core::auth::AccountId;
use udaconnect_core::consent::Shown;
use udaconnect_core::ports::DynAccountStore;
use udaconnect_core::{Error, Result};

use super::me::MeApi;
use super::{account_gone, MyPerson, Own};
use crate::http::openapi::{MalformedJson, MyPersonProblems, NotJson};
use crate::http::problem::{ApiResult, Problem};
use crate::http::JsonBody;

/// Whether the people the caller met, and organizers watching the venue live, see who the
/// caller is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Visibility {
    /// `true`: the people the caller met see the caller's name and company in their contacts;
    /// `false` (the default): they see "someone", with the time and place of the meeting only.
    pub visible: bool,
    /// `true`: organizers see the caller's name and person id on the live map; `false` (the
    /// default): an anonymous dot, shown only among at least k people (see docs/privacy.md).
    pub on_live_map: bool,
}

/// Whether the people the caller met may see the caller's name and company.
#[utoipa::path(get, path = "/api/me/visibility", tag = "me",
    responses(
        (status = 200, description = "The caller's choice; false until they make one", body = Visibility),
        MyPersonProblems,
    ))]
pub async fn my_visibility(
    Own(api, p): Own<MeApi>,
    MyPerson(_): MyPerson,
) -> ApiResult<Json<Visibility>> {
    Ok(Json(
        Visibility::of(api.auth.store().await?, p.account).await?,
    ))
}

impl Visibility {
    /// The account's choices as stored.
    async fn of(store: &DynAccountStore, account: AccountId) -> Result<Visibility> {
        Ok(Visibility {
            visible: store.shown(account, Shown::ToContacts).await?,
            on_live_map: store.shown(account, Shown::OnLiveMap).await?,
        })
    }
}

/// Body of `PUT /api/me/visibility`: either choice or both; one left out stays as it was.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct VisibilityBody {
    /// Whether the people the caller met may see the caller's name and company.
    visible: Option<bool>,
    /// Whether organizers see the caller by name on the live map.
    on_live_map: Option<bool>,
}

/// Let the people the caller met see the caller's name and company in their contacts, or
/// stop them: from the next answer they are given on, meetings past and future alike. And
/// let organizers see the caller by name on the live map, or not (within seconds).
#[utoipa::path(put, path = "/api/me/visibility", tag = "me",
    request_body = VisibilityBody,
    responses(
        (status = 200, description = "The choice, as stored", body = Visibility),
        MalformedJson,
        MyPersonProblems,
        NotJson,
        (status = 422, description = "Neither `visible` nor `on_live_map` is given, or one is not true or false", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_my_visibility(
    Own(api, p): Own<MeApi>,
    MyPerson(_): MyPerson,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Visibility>> {
    let account = p.account;
    if !body.is_object() {
        return Err(Error::bad_request("body", "must be a JSON object").into());
    }
    let choice = |name: &str| match body.get(name) {
        None => Ok(None),
        Some(serde_json::Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Error::invalid(name, "must be true or false")),
    };
    let (visible, on_live_map) = (choice("visible")?, choice("on_live_map")?);
    if visible.is_none() && on_live_map.is_none() {
        return Err(Error::invalid("visible", "must be true or false").into());
    }
    let store = api.auth.store().await?;
    let now = chrono::Utc::now();
    let chosen = [
        (Shown::ToContacts, visible),
        (Shown::OnLiveMap, on_live_map),
    ];
    for (shown, yes) in chosen {
        let Some(yes) = yes else { continue };
        if !store.set_shown(account, shown, yes, now).await? {
            return Err(account_gone().into());
        }
        tracing::info!(account, ?shown, yes, "visibility chosen");
    }
    Ok(Json(Visibility::of(store, account).await?))
}

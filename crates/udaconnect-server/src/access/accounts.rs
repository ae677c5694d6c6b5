//! `/api/accounts`: every account and its role, for admins; a role changed.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::Json;
use serde::Serialize;
use udaconnect_core::auth::{Account, Action, Resource, Role};
use udaconnect_core::Error;

use super::me::MeApi;
use super::Caller;
use crate::http::openapi::{BadPage, BodyProblems, LastAdmin, NotAdmin, Unauthenticated};
use crate::http::paging::Paging;
use crate::http::problem::{ApiResult, Problem};
use crate::http::{page_answer, JsonBody, PathId};

/// Accounts in a page when `limit` is not given.
const DEFAULT_PAGE: usize = 100;
/// The largest page: an account row is small, but a page is one store read.
const MAX_PAGE: usize = 1000;

/// An account as admins see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountView {
    #[schema(example = 12)]
    pub id: i64,
    /// The attendee this account is; absent for staff accounts without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person_id: Option<i64>,
    #[schema(example = "ada@example.org")]
    pub email: Option<String>,
    pub email_verified: bool,
    pub secondary_email: Option<String>,
    #[schema(example = "organizer")]
    pub role: String,
    #[schema(example = "2026-12-05T10:00:00Z")]
    pub created: String,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        AccountView {
            id: a.id,
            person_id: a.person,
            email: a.email.as_ref().map(ToString::to_string),
            email_verified: a.email_verified,
            secondary_email: a.secondary_email.as_ref().map(ToString::to_string),
            role: a.role.to_string(),
            created: udaconnect_core::time::format_utc(a.created),
        }
    }
}

/// Every account, in id order, a page at a time (admins).
///
/// When more may follow, the answer has `X-Next-Cursor` with the cursor of the next page.
#[utoipa::path(get, path = "/api/accounts", tag = "accounts",
    params(Paging<DEFAULT_PAGE, MAX_PAGE>),
    responses(
        (status = 200, description = "A page of accounts", body = [AccountView],
            headers(("X-Next-Cursor" = i64, description = "The cursor of the next page, when more may follow"))),
        BadPage,
        Unauthenticated,
        NotAdmin,
    ))]
pub async fn list_accounts(
    State(api): State<Arc<MeApi>>,
    Paging { after, limit }: Paging<DEFAULT_PAGE, MAX_PAGE>,
) -> ApiResult<Response> {
    let page = api.auth.store().await?.accounts(after, limit).await?;
    let views: Vec<AccountView> = page.iter().map(AccountView::from).collect();
    let mut resp = page_answer(views, limit, |a| a.id, None);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Body of `PUT /api/accounts/{id}/role`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct RoleBody {
    /// admin, organizer, attendee or device.
    #[schema(schema_with = crate::http::openapi::role_schema, example = "organizer")]
    role: String,
}

/// Change an account's role (admins).
///
/// The account's tokens above the new role are revoked; its sessions act in the new role at
/// once. Attendee and device accounts act for a person, so an account without one cannot take
/// those roles; the last admin keeps theirs.
#[utoipa::path(put, path = "/api/accounts/{id}/role", tag = "accounts",
    params(("id" = i64, Path, minimum = 1, description = "Account id")),
    request_body = RoleBody,
    responses(
        (status = 200, description = "The account in its new role", body = AccountView),
        (status = 400, description = "Malformed JSON, wrong types, or an id that is not an integer", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        NotAdmin,
        (status = 404, description = "No account with this id", body = Problem, content_type = "application/problem+json"),
        LastAdmin,
        (status = 422, description = "No role, an unknown one, or one that needs a person the account has not", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ))]
pub async fn change_role(
    State(api): State<Arc<MeApi>>,
    caller: Caller,
    PathId(id): PathId,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<AccountView>> {
    let role: Role = match body.as_object().map(|o| o.get("role")) {
        None => {
            return Err(
                Error::bad_request("body", r#"must be a JSON object ({"role": ...})"#).into(),
            )
        }
        Some(None | Some(serde_json::Value::Null)) => {
            return Err(Error::invalid("role", "is required").into())
        }
        Some(Some(serde_json::Value::String(s))) => {
            s.parse().map_err(|e: String| Error::invalid("role", e))?
        }
        Some(Some(_)) => return Err(Error::bad_request("role", "must be a string").into()),
    };
    caller.may(Action::ChangeRole, Resource::Grant { account: id, role })?;
    let store = api.auth.store().await?;
    let account = store
        .account(id)
        .await?
        .ok_or_else(|| Error::not_found("account", id))?;
    if role.needs_person() && account.person.is_none() {
        return Err(Error::invalid(
            "role",
            format!("a {role} account acts for a person, and this account has none"),
        )
        .into());
    }
    if account.role == Role::Admin && role != Role::Admin && store.count_admins().await? <= 1 {
        return Err(Error::Conflict(
            "this is the last admin account; make another admin before changing its role".into(),
        )
        .into());
    }
    let changed = store
        .set_role(id, role, chrono::Utc::now())
        .await?
        .ok_or_else(|| Error::not_found("account", id))?;
    // Cached sessions and tokens of the account carry its former role.
    api.auth.forget_account(id);
    let by = caller.principal().map(|p| p.account);
    tracing::info!(account = id, by = ?by, from = %account.role, to = %role, "account role changed");
    Ok(Json(AccountView::from(&changed)))
}

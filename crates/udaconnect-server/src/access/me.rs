//! `/api/me`: who the caller is, and the caller's own tokens (the same tokens the command
//! line makes; device tokens for one's own person, the secret shown once).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Serialize;
use udaconnect_core::auth::{Action, NewToken, Resource, Role, Scopes, TokenInfo};
use udaconnect_core::model::Person;
use udaconnect_core::ports::DynPersonStore;
use udaconnect_core::{Error, Result};

use super::{
    accounts, own_account, ruled, sessions, visibility, Authenticator, Caller, Own, OwnApi, NO_ME,
};
use crate::http::guard::json;
use crate::http::openapi::{
    BadId, DeviceToken, LastAdmin, MalformedJson, NoManageScope, NotJson, Unauthenticated,
};
use crate::http::problem::{ApiResult, Problem};
use crate::http::{JsonBody, PathId};
use crate::persons::erase::Eraser;
use crate::persons::http::erase_and_forget;
use crate::persons::DynPersonDirectory;

/// Live tokens one account may hold: each is a credential to keep track of.
pub const MAX_TOKENS: usize = 100;
/// Longest token name, in characters.
const MAX_NAME: usize = 100;
/// Longest life of a token made here, in days.
const MAX_DAYS: i64 = 3650;

pub struct MeApi {
    pub auth: Arc<Authenticator>,
    pub persons: DynPersonStore,
    /// Erases the caller's person with their account.
    pub eraser: Arc<Eraser>,
    pub directory: DynPersonDirectory,
}

impl OwnApi for MeApi {
    const NO_ONE: &'static str = NO_ME;
}

/// The routes about accounts, in one table: the caller's own (`/api/me`, its tokens,
/// [`visibility`], [`sessions`]) and, for admins, every one ([`accounts`]).
pub fn routes(api: Arc<MeApi>) -> Router {
    ruled![
        "/api/me" => GetMe on MyPerson: get(me),
        "/api/me" => DeleteAccount on MyAccount: delete(delete_me),
        "/api/me/tokens" => ListTokens on MyAccount: get(my_tokens),
        "/api/me/tokens" => CreateToken on MyGrant: json(post(create_my_token)),
        "/api/me/tokens/{id}" => RevokeToken on MyAccount: delete(revoke_my_token),
        "/api/me/visibility" => GetVisibility on MyAccount: get(visibility::my_visibility),
        "/api/me/visibility" => SetVisibility on MyAccount: json(put(visibility::set_my_visibility)),
        "/api/me/sessions" => ListSessions on MyAccount: get(sessions::my_sessions),
        "/api/me/sessions/{id}" => RevokeSession on MyAccount: delete(sessions::revoke_my_session),
        "/api/accounts" => ListAccounts on Service: get(accounts::list_accounts),
        "/api/accounts/{id}/role" => ChangeRole on Service: json(put(accounts::change_role)),
    ]
    .with_state(api)
}

/// Who the caller is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    #[schema(example = 12)]
    pub account: i64,
    /// admin, organizer, attendee or device: the credential's role.
    #[schema(example = "attendee")]
    pub role: String,
    /// What the credential may be used for.
    #[schema(example = "read,ingest,manage")]
    pub scopes: String,
    /// The caller's person; null for staff accounts without one.
    pub person: Option<Person>,
    /// The account's own address: shown to no one else.
    #[schema(example = "ada@example.org")]
    pub email: Option<String>,
    /// The account's secondary address, once verified: shown to no one else.
    #[schema(example = "ada@home.example.org")]
    pub secondary_email: Option<String>,
}

/// Who is asking: the caller's account, role and person.
#[utoipa::path(get, path = "/api/me", tag = "me",
    responses(
        (status = 200, description = "The caller", body = Me),
        Unauthenticated,
        (status = 403, description = "A device token (it only posts pings)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn me(Own(api, p): Own<MeApi>) -> ApiResult<Json<Me>> {
    let account = api.auth.store().await?.account(p.account).await?;
    let person = match p.person {
        Some(id) => api.persons.get(id).await?,
        None => None,
    };
    Ok(Json(Me {
        account: p.account,
        role: p.role.to_string(),
        scopes: p.scopes.to_string(),
        person,
        email: account
            .as_ref()
            .and_then(|a| a.email.as_ref())
            .map(ToString::to_string),
        secondary_email: account
            .as_ref()
            .and_then(|a| a.secondary_email.as_ref())
            .map(ToString::to_string),
    }))
}

/// A token as its holder sees it in lists: never its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    #[schema(example = 3)]
    pub id: i64,
    #[schema(example = "phone")]
    pub name: String,
    #[schema(example = "device")]
    pub role: String,
    #[schema(example = "ingest")]
    pub scopes: String,
    /// The person it acts for (attendee and device tokens); absent for staff tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person_id: Option<i64>,
    #[schema(example = "2026-12-05T10:00:00Z")]
    pub created: String,
    pub expires: Option<String>,
    pub revoked: Option<String>,
    /// To the minute.
    pub last_used: Option<String>,
}

impl From<&TokenInfo> for TokenView {
    fn from(t: &TokenInfo) -> Self {
        use udaconnect_core::time::format_utc as time;
        TokenView {
            id: t.id,
            name: t.name.clone(),
            role: t.role.to_string(),
            scopes: t.scopes.to_string(),
            person_id: t.person,
            created: time(t.created),
            expires: t.expires.map(time),
            revoked: t.revoked.map(time),
            last_used: t.last_used.map(time),
        }
    }
}

/// The caller's tokens, revoked and expired ones included, oldest first; never a secret.
#[utoipa::path(get, path = "/api/me/tokens", tag = "me",
    responses(
        (status = 200, description = "The account's tokens", body = [TokenView]),
        Unauthenticated,
        DeviceToken,
    ))]
pub async fn my_tokens(Own(api, p): Own<MeApi>) -> ApiResult<Json<Vec<TokenView>>> {
    let tokens = api.auth.store().await?.tokens(p.account).await?;
    Ok(Json(tokens.iter().map(TokenView::from).collect()))
}

/// Body of `POST /api/me/tokens`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct NewTokenBody {
    /// What the holder calls it, 1 to 100 characters.
    #[schema(example = "phone")]
    name: String,
    /// The token's role, no higher than the account's (default `device`).
    #[schema(example = "device")]
    role: Option<String>,
    /// Comma-separated scopes within the role's (`read`, `ingest`, `manage`; default all).
    #[schema(example = "ingest")]
    scopes: Option<String>,
    /// Days until it expires, 1 to 3650 (default: never).
    #[schema(example = 365, minimum = 1, maximum = 3650)]
    expires_in_days: Option<i64>,
}

/// A new token, with its secret: shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    /// The secret, `uc_...`: send it as `Authorization: Bearer <token>`. Never shown again.
    #[schema(example = "uc_Q2hhbmdlIG1lOiB0aGlzIGlzIGFuIGV4YW1wbGUgdG9rZW4")]
    pub token: String,
    #[serde(flatten)]
    pub info: TokenView,
}

fn text_field<'a>(body: &'a serde_json::Value, name: &str) -> Result<Option<&'a str>> {
    match body.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::bad_request(name, "must be a string")),
    }
}

/// Create a token for the caller's own account (a device token for the caller's phone).
#[utoipa::path(post, path = "/api/me/tokens", tag = "me",
    request_body = NewTokenBody,
    responses(
        (status = 201, description = "Created; the secret is in `token`, shown this once", body = CreatedToken),
        MalformedJson,
        Unauthenticated,
        (status = 403, description = "A role above the caller's, or a device token", body = Problem, content_type = "application/problem+json"),
        NotJson,
        (status = 409, description = "The account holds 100 live tokens already: revoke one first", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad name, role, scope or expiry", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_my_token(
    State(api): State<Arc<MeApi>>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let p = caller.signed(NO_ME)?;
    if !body.is_object() {
        return Err(Error::bad_request("body", "must be a JSON object").into());
    }
    let name = text_field(&body, "name")?
        .unwrap_or_default()
        .trim()
        .to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            format!("must be 1 to {MAX_NAME} printable characters"),
        )
        .into());
    }
    let role: Role = match text_field(&body, "role")? {
        Some(r) => r.parse().map_err(|e: String| Error::invalid("role", e))?,
        None => Role::Device,
    };
    let scopes: Scopes = match text_field(&body, "scopes")? {
        Some(s) => s.parse().map_err(|e: String| Error::invalid("scopes", e))?,
        None => Scopes::ALL,
    };
    let expires_in = match body.get("expires_in_days") {
        None | Some(serde_json::Value::Null) => None,
        // A whole number, whether written 30 or 30.0.
        Some(v) => match v.as_f64().filter(|d| d.fract() == 0.0) {
            Some(d) if (1.0..=MAX_DAYS as f64).contains(&d) => {
                Some(chrono::TimeDelta::days(d as i64))
            }
            Some(_) => {
                return Err(
                    Error::invalid("expires_in_days", format!("must be 1 to {MAX_DAYS}")).into(),
                )
            }
            None => return Err(Error::bad_request("expires_in_days", "must be an integer").into()),
        },
    };
    caller.may(
        Action::CreateToken,
        Resource::Grant {
            account: p.account,
            role,
        },
    )?;
    let store = api.auth.store().await?;
    let account = own_account(store, p.account).await?;
    let now = chrono::Utc::now();
    let live = store
        .tokens(p.account)
        .await?
        .iter()
        .filter(|t| t.revoked.is_none() && t.expires.is_none_or(|e| e > now))
        .count();
    if live >= MAX_TOKENS {
        return Err(Error::Conflict(format!(
            "this account holds {MAX_TOKENS} live tokens already; revoke one first"
        ))
        .into());
    }
    let token = NewToken {
        account: p.account,
        name,
        role,
        // Never more than the credential creating it may do.
        scopes: scopes.and(role.scopes()).and(p.scopes),
        person: if role.needs_person() {
            account.person
        } else {
            None
        },
        expires: expires_in.and_then(|d| now.checked_add_signed(d)),
    };
    account.check_grant(&token)?;
    let issued = store.create_token(token, now).await?;
    tracing::info!(account = p.account, token_id = issued.item.id, role = %role, "token created");
    let created = CreatedToken {
        token: issued.secret.expose().to_string(),
        info: TokenView::from(&issued.item),
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Revoke one of the caller's tokens; it stops working at once in this process, and within
/// seconds everywhere.
#[utoipa::path(delete, path = "/api/me/tokens/{id}", tag = "me",
    params(("id" = i64, Path, minimum = 1, description = "Token id")),
    responses(
        (status = 204, description = "Revoked"),
        BadId,
        Unauthenticated,
        DeviceToken,
        (status = 404, description = "No live token of the caller's with this id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke_my_token(PathId(id): PathId, Own(api, p): Own<MeApi>) -> ApiResult<StatusCode> {
    let store = api.auth.store().await?;
    let mine = store.token(id).await?.filter(|t| t.account == p.account);
    if mine.is_none() || !store.revoke_token(id, chrono::Utc::now()).await? {
        return Err(Error::not_found("token", id).into());
    }
    api.auth.forget_account(p.account);
    tracing::info!(account = p.account, token_id = id, "token revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Delete the caller's account: every session and token of it ends at once, then the account
/// goes with its devices, and the caller's person is erased: their pings in every store and
/// the contact index, and the key their pings on the log are sealed with (docs/privacy.md).
/// Irreversible: a `confirm` other than `true` deletes nothing, so a client can ask for the
/// refusal it shows before the real call.
#[utoipa::path(delete, path = "/api/me", tag = "me",
    params(("confirm" = Option<bool>, Query, description = "Absent or `true` deletes; any other value deletes nothing (422): the account cannot be restored")),
    responses(
        (status = 204, description = "Deleted; every session and token of the account is revoked, and the caller's person is erased"),
        Unauthenticated,
        NoManageScope,
        LastAdmin,
        (status = 422, description = "`confirm` is given and is not `true`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_me(
    Own(api, p): Own<MeApi>,
    RawQuery(query): RawQuery,
) -> ApiResult<StatusCode> {
    if !matches!(query.as_deref(), None | Some("") | Some("confirm=true")) {
        return Err(Error::invalid(
            "confirm",
            "must be true: deleting the account cannot be undone",
        )
        .into());
    }
    let store = api.auth.store().await?;
    let account = own_account(store, p.account).await?;
    if account.role == Role::Admin && store.count_admins().await? <= 1 {
        return Err(Error::Conflict(
            "this is the last admin account; make another admin before deleting it".into(),
        )
        .into());
    }
    // Credentials first: should the delete fail, none of them still signs anyone in.
    let revoked = store.revoke_all(p.account, chrono::Utc::now()).await?;
    if let Some(person) = account.person {
        // The account goes with the person.
        erase_and_forget(&api.eraser, &api.directory, &api.auth, person).await?;
    }
    store.delete_account(p.account).await?;
    api.auth.forget_account(p.account);
    tracing::info!(
        account = p.account,
        person_id = account.person,
        tokens = revoked.tokens,
        sessions = revoked.sessions,
        "account deleted by its holder"
    );
    Ok(StatusCode::NO_CONTENT)
}

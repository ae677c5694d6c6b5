//! `/api/me/sessions`: the caller's browser sessions, each ended from wherever the caller
//! is signed in (a phone left somewhere, a shared computer).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Serialize;
use udaconnect_core::auth::SessionInfo;
use udaconnect_core::Error;

use super::me::MeApi;
use super::Caller;
use crate::http::openapi::{BadId, DeviceToken, NoManageScope, Unauthenticated};
use crate::http::problem::{ApiResult, Problem};
use crate::http::PathId;
use crate::signin::http::session_cookie;

/// What these handlers answer a caller who is no one (`--auth off`).
const NO_SESSIONS: &str = "sign in (or send a token) to have sessions";

/// A session as its holder sees it: never its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    #[schema(example = 4)]
    pub id: i64,
    #[schema(example = "2026-12-05T10:00:00Z")]
    pub created: String,
    #[schema(example = "2026-12-19T10:00:00Z")]
    pub expires: String,
    /// To the minute.
    pub last_used: Option<String>,
    /// The browser that signed in, as it named itself (at most 200 characters).
    #[schema(example = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0")]
    pub user_agent: Option<String>,
    /// Whether this is the session the list was asked with.
    pub current: bool,
}

impl From<&SessionInfo> for SessionView {
    fn from(s: &SessionInfo) -> Self {
        use udaconnect_core::time::format_utc as time;
        SessionView {
            id: s.id,
            created: time(s.created),
            expires: time(s.expires),
            last_used: s.last_used.map(time),
            user_agent: s.user_agent.clone(),
            current: s.current,
        }
    }
}

/// The caller's live browser sessions, oldest first; the one asking is marked `current`.
#[utoipa::path(get, path = "/api/me/sessions", tag = "me",
    responses(
        (status = 200, description = "The account's live sessions", body = [SessionView]),
        Unauthenticated,
        DeviceToken,
    ))]
pub async fn my_sessions(
    State(api): State<Arc<MeApi>>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<SessionView>>> {
    let p = caller.signed(NO_SESSIONS)?;
    let current = session_cookie(&headers);
    let now = chrono::Utc::now();
    let sessions = api
        .auth
        .store()
        .await?
        .sessions(p.account, current.as_ref(), now)
        .await?;
    Ok(Json(sessions.iter().map(SessionView::from).collect()))
}

/// End one of the caller's sessions (the current one too: that signs this browser out).
#[utoipa::path(delete, path = "/api/me/sessions/{id}", tag = "me",
    params(("id" = i64, Path, minimum = 1, description = "Session id")),
    responses(
        (status = 204, description = "Ended"),
        BadId,
        Unauthenticated,
        NoManageScope,
        (status = 404, description = "No live session of the caller's with this id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke_my_session(
    State(api): State<Arc<MeApi>>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    let p = caller.signed(NO_SESSIONS)?;
    let store = api.auth.store().await?;
    if !store
        .revoke_session_id(p.account, id, chrono::Utc::now())
        .await?
    {
        return Err(Error::not_found("session", id).into());
    }
    // This process's cache would otherwise believe the ended session for a few seconds more.
    api.auth.forget_account(p.account);
    tracing::info!(account = p.account, session_id = id, "session ended");
    Ok(StatusCode::NO_CONTENT)
}

//! `GET /api/me/export`: everything held about the caller as one JSON document, streamed.
//!
//! connection-api answers it: it holds the contacts engine (the contacts are shown as the
//! caller's own contacts answer shows them), the location store (the pings), and the account
//! store through its authenticator (account, tokens, devices, sessions, decisions, audit).
//! The small parts are read first; the pings follow page by page from the store, so a trail
//! of any length is never held whole in memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::{stream, StreamExt};
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use udaconnect_core::audit::MAX_AUDIT_ROWS;
use udaconnect_core::consent::Shown;
use udaconnect_core::model::{KeptLocation, Location, Person, PersonId, Telemetry};
use udaconnect_core::ports::DynLocationStore;
use udaconnect_core::time::{format_utc, to_micros, Window};
use udaconnect_core::track::TrackQuery;
use udaconnect_core::{Error, Result};

use crate::access::sessions::SessionView;
use crate::access::{me::TokenView, Caller, MyPerson, NO_ME};
use crate::http::guard::too_many;
use crate::http::problem::{ApiResult, Problem};
use crate::http::Params;
use crate::ingest::trackers::devices::Device;
use crate::query::http::{names_need_consent, ConnectionApi, ContactRow};
use crate::query::reveal::{my_reveals, Reveals};
use crate::signin::http::session_cookie;
use crate::signin::WindowLimiter;

/// Pings read from the store at a time, and written to the answer as one chunk.
pub const EXPORT_PAGE: usize = 1000;
/// Exports one account may start within [`EXPORT_WINDOW`]: each reads a whole trail.
pub const EXPORTS_PER_WINDOW: usize = 10;
pub const EXPORT_WINDOW: Duration = Duration::from_secs(3600);
/// Exports streaming at once in one process.
pub const EXPORTS_AT_ONCE: usize = 4;

/// How many exports run: per account in a window, and at once.
pub struct ExportLimits {
    per_account: WindowLimiter,
    at_once: Arc<Semaphore>,
}

impl Default for ExportLimits {
    fn default() -> Self {
        ExportLimits {
            per_account: WindowLimiter::new(EXPORTS_PER_WINDOW, EXPORT_WINDOW),
            at_once: Arc::new(Semaphore::new(EXPORTS_AT_ONCE)),
        }
    }
}

/// The caller's account as the export shows it: never a secret or a hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExportAccount {
    #[schema(example = 12)]
    pub id: i64,
    #[schema(example = "attendee")]
    pub role: String,
    #[schema(example = "ada@example.org")]
    pub email: Option<String>,
    pub email_verified: bool,
    pub secondary_email: Option<String>,
    #[schema(example = "2026-12-05T10:00:00Z")]
    pub created: String,
    /// Whether the people the caller met may see their name (`PUT /api/me/visibility`).
    pub visible: bool,
}

/// One read of the caller's data by another account (an organizer or an admin).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DataRead {
    #[schema(example = 1)]
    pub reader_account: i64,
    #[schema(example = "admin")]
    pub reader_role: String,
    /// What was read: `GetContacts`, `GetConnection`, `GetSummary`, `GetPerson` or
    /// `GetLocation`.
    #[schema(example = "GetContacts")]
    pub action: String,
    #[schema(example = "2026-12-05T10:37:06Z")]
    pub at: String,
}

/// The export as one document (its parts are written in this order).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Export {
    #[schema(example = "2026-12-05T10:37:06Z")]
    exported_at: String,
    account: ExportAccount,
    /// The caller's person; null for an account without one (staff).
    person: Option<Person>,
    /// The account's tokens, revoked and expired ones included: no secret.
    tokens: Vec<TokenView>,
    /// The account's tracker devices: no secret.
    devices: Vec<Device>,
    /// The account's live browser sessions: no secret.
    sessions: Vec<SessionView>,
    /// Requests to exchange addresses made by and to the caller, and hidden contacts, as
    /// `GET /api/me/reveals` answers them; null without a person.
    reveals: Option<Reveals>,
    /// Who read the caller's data (organizers and admins; never the caller's own reads),
    /// newest first, at most 10,000.
    reads_of_my_data: Vec<DataRead>,
    /// Whether older reads than those listed were left out.
    reads_left_out: bool,
    /// The caller's contacts over all time, as `GET /api/me/contacts` shows them.
    #[serde(skip_serializing_if = "Streamed::written_after")]
    #[schema(value_type = Vec<ContactRow>, required = true)]
    contacts: Streamed,
    /// Every stored ping of the caller's, by time then id.
    #[serde(skip_serializing_if = "Streamed::written_after")]
    #[schema(value_type = Vec<StoredPing>, required = true)]
    pings: Streamed,
}

/// A part of the export that is not serialised with the rest but written after it, streamed:
/// the rest is the document's head.
#[derive(Serialize)]
struct Streamed;

impl Streamed {
    fn written_after(&self) -> bool {
        true
    }
}

/// A stored ping as its own person reads it (the export, `GET /api/me/locations`): the
/// location, and what its app said beside it, each only where known ([`KeptLocation`]
/// writes it).
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct StoredPing {
    #[serde(flatten)]
    location: Location,
    /// Horizontal accuracy (radius), metres.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 12.5)]
    accuracy_m: Option<f64>,
    #[serde(flatten)]
    telemetry: Telemetry,
}

/// Everything held about the caller, as one JSON document to save (`Content-Disposition:
/// attachment`): the account, the person, the tokens', devices' and sessions' metadata (no
/// secret), the requests to exchange addresses and hidden contacts, who read the caller's
/// data, the contacts as the caller's own contacts answer shows them, and every ping. Streamed:
/// the pings come page by page from the store; an error after the first bytes ends the
/// answer early (the document is then not complete JSON). At most 10 exports per account an
/// hour.
#[utoipa::path(get, path = "/api/me/export", tag = "me",
    responses(
        (status = 200, description = "The caller's data", body = Export,
            headers(("Content-Disposition" = String, description = "attachment; filename=\"udaconnect-export-<account>.json\""))),
        (status = 400, description = "A query parameter was given: the export takes none", body = Problem, content_type = "application/problem+json"),
        crate::http::openapi::Unauthenticated,
        crate::http::openapi::DeviceToken,
        (status = 429, description = "This account started 10 exports within the hour, or too many exports are running; retry after Retry-After seconds", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        crate::http::openapi::QueryBusy,
    ))]
pub async fn export(
    State(api): State<Arc<ConnectionApi>>,
    caller: Caller,
    headers: HeaderMap,
    Params(params): Params,
) -> ApiResult<Response> {
    let p = caller.signed(NO_ME)?;
    if let Some(name) = params.keys().min() {
        return Err(Error::bad_request(name.as_str(), "the export takes no parameters").into());
    }
    if let Err(wait) = api
        .exports
        .per_account
        .take(&p.account.to_string(), Instant::now())
    {
        return Ok(too_many(wait, "exports of this account"));
    }
    let Ok(permit) = api.exports.at_once.clone().try_acquire_owned() else {
        return Ok(too_many(Duration::from_secs(10), "exports running at once"));
    };
    let store = api.auth.store().await?;
    let account = store
        .account(p.account)
        .await?
        .ok_or_else(|| Error::not_found("account", p.account))?;
    let me = account.person;
    let person = match me {
        Some(id) => api.persons.get_many(&[id]).await?.pop(),
        None => None,
    };
    let reads = match me {
        Some(id) => store.reads_of(id, MAX_AUDIT_ROWS).await?,
        None => Vec::new(),
    };
    let reveals = match me {
        Some(id) => Some(my_reveals(State(api.clone()), MyPerson(id)).await?.0),
        None => None,
    };
    let contacts = match me {
        Some(id) => {
            let q = TrackQuery::new(id, Window::all());
            match api
                .limiter
                .run(api.contacts(q, names_need_consent(&caller)))
                .await
            {
                Ok(contacts) => contacts?,
                Err(refused) => return Ok(refused.into_response()),
            }
        }
        None => b"[]".to_vec(),
    };
    let current = session_cookie(&headers);
    let now = chrono::Utc::now();
    let head = Export {
        exported_at: format_utc(now),
        account: ExportAccount {
            id: account.id,
            role: account.role.to_string(),
            email: account.email.as_ref().map(ToString::to_string),
            email_verified: account.email_verified,
            secondary_email: account.secondary_email.as_ref().map(ToString::to_string),
            created: format_utc(account.created),
            visible: store.shown(account.id, Shown::ToContacts).await?,
        },
        person,
        tokens: shown(&store.tokens(account.id).await?),
        devices: shown(&store.devices(account.id).await?),
        sessions: shown(&store.sessions(account.id, current.as_ref(), now).await?),
        reveals,
        reads_left_out: reads.len() >= MAX_AUDIT_ROWS,
        reads_of_my_data: reads
            .into_iter()
            .map(|r| DataRead {
                reader_account: r.reader,
                reader_role: r.role.to_string(),
                action: r.action,
                at: format_utc(r.at),
            })
            .collect(),
        contacts: Streamed,
        pings: Streamed,
    };
    let mut first = serde_json::to_vec(&head).map_err(|e| Error::Internal(e.to_string()))?;
    // The head's closing brace gives way to the parts that follow it.
    first.pop();
    first.extend_from_slice(b",\"contacts\":");
    first.extend_from_slice(&contacts);
    first.extend_from_slice(b",\"pings\":[");
    let pings = Pings {
        store: api.locations.clone(),
        person: me,
        after: None,
        written: 0,
        _permit: permit,
    };
    let body =
        stream::once(async move { Ok::<_, Error>(Bytes::from(first)) }).chain(pings.stream());
    let attachment = format!(
        "attachment; filename=\"udaconnect-export-{}.json\"",
        account.id
    );
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&attachment) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    tracing::info!(account_id = account.id, "export started");
    Ok(response)
}

/// Each of `items` as the export shows it: its view, never a secret or a hash.
fn shown<'a, T, V: From<&'a T>>(items: &'a [T]) -> Vec<V> {
    items.iter().map(V::from).collect()
}

/// The pings part of an export: one page of the store per chunk, then the document's end.
struct Pings {
    store: DynLocationStore,
    /// `None`: an account without a person, whose pings are none.
    person: Option<PersonId>,
    /// Where the next page starts: the last ping written (its time and id).
    after: Option<(i64, i64)>,
    written: u64,
    /// Held until the last chunk is written.
    _permit: OwnedSemaphorePermit,
}

impl Pings {
    fn stream(self) -> impl futures_util::Stream<Item = Result<Bytes>> {
        stream::try_unfold(Some(self), |state| async move {
            let Some(mut pings) = state else {
                return Ok(None);
            };
            let page = match pings.person {
                Some(person) => {
                    pings
                        .store
                        .person_page(person, pings.after, EXPORT_PAGE)
                        .await?
                }
                None => Vec::new(),
            };
            let Some(last) = page.last() else {
                return Ok(Some((Bytes::from_static(b"]}"), None)));
            };
            pings.after = Some((to_micros(last.creation_time), last.id));
            let mut chunk = Vec::with_capacity(page.len() * 110);
            for l in &page {
                if pings.written > 0 {
                    chunk.push(b',');
                }
                serde_json::to_writer(&mut chunk, &KeptLocation::of(l))
                    .map_err(|e| Error::Internal(e.to_string()))?;
                pings.written += 1;
            }
            Ok(Some((Bytes::from(chunk), Some(pings))))
        })
    }
}

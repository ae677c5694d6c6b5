//! An attendee's decisions about the people they met: asking to exchange e-mail addresses
//! (mutual reveal: each sees the other's address once both asked), hiding or disputing a
//! contact, and the list of both for their page.
//!
//! A contact is named in the path by the person's id where the caller may see who it is, or
//! by the handle of the contacts answer where not (see [`udaconnect_core::consent`]). It must
//! be a contact of the caller in the window the query names (the contacts query's own
//! parameters and defaults): any other id is 404, whether the person exists or not, so that
//! asking never tells whom the caller met.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use udaconnect_core::consent::{Choice, ContactRef};
use udaconnect_core::mail::{MailKind, MailRequest};
use udaconnect_core::model::{Person, PersonId};
use udaconnect_core::time::format_utc;
use udaconnect_core::{validate, Error, Result};

use crate::access::MyPerson;
use crate::http::guard::{is_json, not_json};
use crate::http::openapi::{response_set, MyPersonProblems, QueryBusy};
use crate::http::problem::{ApiResult, Problem, PROBLEM_JSON};
use crate::http::{parse_json, BodyBytes, Params};
use crate::query::consent::Sight;
use crate::query::http::ConnectionApi;

/// Where the caller stands with one contact.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContactState {
    /// The caller asked to exchange e-mail addresses with this contact.
    pub asked: bool,
    /// The contact asked the caller (not said while the contact has hidden the caller).
    pub asked_by: bool,
    /// The contact's address: present only once both asked and neither hid the other.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The caller hid this contact: it is left out of the caller's contacts, and the caller
    /// is never revealed to them.
    pub hidden: bool,
    /// The caller disputes the meeting ("I did not meet this person").
    pub dispute: bool,
}

/// The contact a `/api/me/contacts/{person_id}/...` request names: the caller's person, the
/// path's id or handle, and the window's parameters, not looked for yet.
pub struct NamedContact {
    pub me: PersonId,
    pub raw: String,
    pub params: validate::QueryParams,
}

impl<S: Send + Sync> FromRequestParts<S> for NamedContact {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        // Who asks, then what they name: the refusals come in the order they always did.
        let MyPerson(me) = MyPerson::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Params(params) = Params::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(NamedContact { me, raw, params })
    }
}

/// What the caller decides about a contact.
enum Decision {
    AskReveal,
    WithdrawReveal,
    Hide { dispute: bool },
    Unhide,
}

impl ConnectionApi {
    async fn state(&self, sight: &Sight, other: PersonId) -> Result<ContactState> {
        let c = &sight.choices;
        let email = match c.revealed(other) {
            true => self.email_of(other).await?,
            false => None,
        };
        Ok(ContactState {
            asked: c.has_asked(other),
            asked_by: c.is_asked_by(other) && !c.is_hidden_by(other),
            email,
            hidden: c.has_hidden(other),
            dispute: c.hidden.iter().any(|h| h.other == other && h.dispute),
        })
    }

    async fn email_of(&self, person: PersonId) -> Result<Option<String>> {
        let store = self.auth.store().await?;
        Ok(store
            .account_by_person(person)
            .await?
            .and_then(|a| a.email)
            .map(|e| e.as_str().to_string()))
    }

    /// The contact the path names, found among the caller's in the query's window, within
    /// the query limits.
    async fn contact_of(
        &self,
        me: PersonId,
        params: &validate::QueryParams,
        raw: &str,
    ) -> ApiResult<std::result::Result<(PersonId, Sight), Response>> {
        let target = ContactRef::parse(raw)?;
        let q = self.contact_params(params, me)?;
        match self.limiter.run(self.find_contact(q, &target, raw)).await {
            Ok(found) => {
                let (contact, sight) = found?;
                Ok(Ok((contact.person_id, sight)))
            }
            Err(refused) => Ok(Err(refused.into_response())),
        }
    }

    /// Finds the contact `named`, stores the caller's decision about them, and answers where
    /// the caller then stands with them.
    async fn decide(&self, named: NamedContact, decision: Decision) -> ApiResult<Response> {
        let me = named.me;
        let (other, mut sight) = match self.contact_of(me, &named.params, &named.raw).await? {
            Ok(found) => found,
            Err(refused) => return Ok(refused),
        };
        let choices = &mut sight.choices;
        match decision {
            Decision::AskReveal => {
                if choices.has_hidden(other) {
                    return Err(Error::Conflict(
                        "you hid this contact: show it again first".into(),
                    )
                    .into());
                }
                let store = self.auth.store().await?;
                let now = chrono::Utc::now();
                if store.ask_reveal(me, other, now).await? {
                    // Not mailed to someone who hid the caller: their choice was not to hear
                    // of them.
                    if !choices.is_hidden_by(other) {
                        if let Err(e) = self.mail_request(me, other).await {
                            // The request stands without its mail only if the mail was never
                            // queued: undone, so that asking again mails.
                            store.withdraw_reveal(me, other).await?;
                            return Err(e.into());
                        }
                    }
                    tracing::info!(person_id = me, "exchange of addresses asked");
                    choices.asked.push(Choice {
                        other,
                        at: now,
                        dispute: false,
                    });
                }
            }
            Decision::WithdrawReveal => {
                self.auth.store().await?.withdraw_reveal(me, other).await?;
                choices.asked.retain(|c| c.other != other);
            }
            Decision::Hide { dispute } => {
                let hidden = Choice {
                    other,
                    at: chrono::Utc::now(),
                    dispute,
                };
                self.auth.store().await?.hide_contact(me, hidden).await?;
                tracing::info!(person_id = me, dispute, "contact hidden");
                choices.hidden.retain(|c| c.other != other);
                choices.hidden.push(hidden);
            }
            Decision::Unhide => {
                self.auth.store().await?.unhide_contact(me, other).await?;
                choices.hidden.retain(|c| c.other != other);
            }
        }
        Ok(Json(self.state(&sight, other).await?).into_response())
    }

    /// Mails `other` that someone they met asks to exchange addresses: once per pair, under
    /// a key the mailer sends once (asking, withdrawing and asking again mails no more).
    async fn mail_request(&self, me: PersonId, other: PersonId) -> Result<()> {
        let Some(log) = &self.log else {
            tracing::warn!("no log here: a request to exchange addresses is not mailed");
            return Ok(());
        };
        let Some(to) = self.email_of(other).await? else {
            return Ok(());
        };
        // The mail names no one: the recipient sees who asks on their page, as far as the
        // one asking lets the people they met see them.
        let text = format!(
            "Someone you met at the event asks to exchange e-mail addresses with you.\n\n\
             Your address is shown to them only if you ask too. Answer on your page:\n\n{}/\n\n\
             If you do not want to, ignore this mail.\n",
            self.public_url.trim_end_matches('/')
        );
        let key = format!("reveal:{}", self.handles.handle(me, other));
        let mail = MailRequest::new(
            &key,
            &to,
            "Someone you met asks to exchange e-mail addresses",
            &text,
            None,
            MailKind::Reveal,
        )?
        .for_person(Some(other));
        log.enqueue(&mail).await
    }
}

/// A decision that takes no body: its handler and its OpenAPI entry, which states the answers
/// every decision shares and the decision's own.
macro_rules! decision {
    ($(#[doc = $doc:tt])* $method:ident $path:tt => $name:ident($decision:expr) $(, $own:tt)*) => {
        $(#[doc = $doc])*
        #[utoipa::path($method, path = $path, tag = "me",
            params(ContactPath, ContactWindow),
            responses(Standing, NamedContactProblems, $($own,)*))]
        pub async fn $name(
            State(api): State<Arc<ConnectionApi>>,
            named: NamedContact,
        ) -> ApiResult<Response> {
            api.decide(named, $decision).await
        }
    };
}

decision! {
    /// Ask a contact to exchange e-mail addresses. The contact is mailed once (and sees the
    /// request on their page); once both asked, each sees the other's address in their contacts.
    /// Asking again changes nothing.
    post "/api/me/contacts/{person_id}/reveal" => ask_reveal(Decision::AskReveal),
    (status = 409, description = "The caller hid this contact: show it again first", body = Problem, content_type = "application/problem+json")
}

decision! {
    /// Withdraw the caller's request: neither sees the other's address any more.
    delete "/api/me/contacts/{person_id}/reveal" => withdraw_reveal(Decision::WithdrawReveal)
}

/// Body of `POST /api/me/contacts/{person_id}/hide`, which may also come without one.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct HideBody {
    /// The caller disputes the meeting: "I did not meet this person" (default false).
    dispute: Option<bool>,
}

/// The `dispute` of an optional JSON body; or the refusal of the body (boxed: a response is
/// large, and the common path is Ok).
fn dispute_of(headers: &HeaderMap, body: &[u8]) -> std::result::Result<bool, Box<Response>> {
    if body.is_empty() {
        return Ok(false);
    }
    if !is_json(headers.get(header::CONTENT_TYPE)) {
        return Err(Box::new(
            not_json("the body must be sent with Content-Type application/json").into_response(),
        ));
    }
    let value = parse_json(body).map_err(|e| Box::new(e.into_response()))?;
    let invalid = |e: Error| Box::new(crate::http::problem::ApiError(e).into_response());
    let Some(object) = value.as_object() else {
        return Err(invalid(Error::bad_request("body", "must be a JSON object")));
    };
    match object.get("dispute") {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(Error::invalid("dispute", "must be true or false"))),
    }
}

/// Hide a contact (with `{"dispute": true}`: and dispute the meeting). It leaves the caller's
/// contacts, and the caller is not named, nor their address shown, to that person; a request
/// to exchange addresses between them is not honoured while it stands.
#[utoipa::path(post, path = "/api/me/contacts/{person_id}/hide", tag = "me",
    params(ContactPath, ContactWindow),
    request_body(content = Option<HideBody>, description = "Optional"),
    responses(
        Standing,
        NamedContactProblems,
        (status = 415, description = "A body that is not JSON", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn hide_contact(
    State(api): State<Arc<ConnectionApi>>,
    named: NamedContact,
    headers: HeaderMap,
    BodyBytes(body): BodyBytes,
) -> ApiResult<Response> {
    match dispute_of(&headers, &body) {
        Ok(dispute) => api.decide(named, Decision::Hide { dispute }).await,
        Err(refused) => Ok(*refused),
    }
}

decision! {
    /// Show a hidden contact again.
    delete "/api/me/contacts/{person_id}/hide" => unhide_contact(Decision::Unhide)
}

/// One entry of the caller's list: a contact, named where the caller may see who it is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContactEntry {
    /// Null for someone who has not let the people they met see them, or who hid the caller.
    pub person: Option<Person>,
    /// How the caller names this contact in `/api/me/contacts/{person_id}/...`.
    pub handle: String,
    /// When the request was made, or the contact hidden.
    #[schema(example = "2026-12-05T10:37:06Z")]
    pub at: String,
    /// Both asked: the contact's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// For a hidden contact: the caller disputes the meeting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispute: Option<bool>,
}

/// The caller's page of decisions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Reveals {
    /// The contacts the caller asked to exchange addresses with, oldest first.
    pub asked: Vec<ContactEntry>,
    /// The contacts asking the caller (not those the caller hid, nor those who hid the
    /// caller), oldest first.
    pub asking_me: Vec<ContactEntry>,
    /// The contacts the caller hid.
    pub hidden: Vec<ContactEntry>,
}

/// Requests to exchange e-mail addresses made by and to the caller, and the contacts the
/// caller hid. Answered from what was decided, whatever the window; at most the 1,000 oldest
/// of each list.
#[utoipa::path(get, path = "/api/me/reveals", tag = "me",
    responses(
        (status = 200, description = "The caller's requests, the requests to the caller, the hidden contacts", body = Reveals),
        MyPersonProblems,
    ))]
pub async fn my_reveals(
    State(api): State<Arc<ConnectionApi>>,
    MyPerson(me): MyPerson,
) -> ApiResult<Json<Reveals>> {
    const MOST: usize = 1000;
    let choices = api.auth.store().await?.contact_choices(me).await?;
    let mut ids: Vec<PersonId> = choices
        .asked
        .iter()
        .chain(&choices.asking_me)
        .chain(&choices.hidden)
        .map(|c| c.other)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let sight = api.sight(me, &ids).await?;
    let persons = api.persons.get_many(&ids).await?;
    let entry = |c: &Choice, email: Option<String>, dispute: Option<bool>| ContactEntry {
        person: match sight.named(c.other) {
            true => persons.iter().find(|p| p.id == c.other).cloned(),
            false => None,
        },
        handle: api.handles.handle(me, c.other),
        at: format_utc(c.at),
        email,
        dispute,
    };
    let mut asked = Vec::new();
    for c in sight.choices.asked.iter().take(MOST) {
        let email = match sight.choices.revealed(c.other) {
            true => api.email_of(c.other).await?,
            false => None,
        };
        asked.push(entry(c, email, None));
    }
    let asking_me = sight
        .choices
        .asking_me
        .iter()
        .filter(|c| !sight.choices.has_hidden(c.other) && !sight.choices.is_hidden_by(c.other))
        .take(MOST)
        .map(|c| entry(c, None, None))
        .collect();
    let hidden = sight
        .choices
        .hidden
        .iter()
        .take(MOST)
        .map(|c| entry(c, None, Some(c.dispute)))
        .collect();
    Ok(Json(Reveals {
        asked,
        asking_me,
        hidden,
    }))
}

/// The contact in the path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ContactPath {
    /// The contact's person id where the caller's contacts name them; otherwise the
    /// `handle` of the contacts answer (`c_` and 22 characters).
    #[param(example = "c_3q2-7wZkR0mYx1vT8bN4Aa")]
    person_id: String,
}

/// The window the contact is looked for in: the parameters of `GET /api/me/contacts`, with
/// its defaults.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ContactWindow {
    /// Window start: a date or RFC 3339, as for /api/me/contacts (default: unbounded).
    start: Option<String>,
    /// Window end: a date (included whole) or RFC 3339 (exclusive); default: unbounded.
    end: Option<String>,
    /// Metres (default 5), as for /api/me/contacts; also `min_duration`,
    /// `max_interpolation`, `ping_tolerance` and `join_gap`.
    distance: Option<f64>,
    /// Whole metres, 0 to 1000, as for /api/me/contacts: pings less accurate do not count
    /// (default: the server's `--max-accuracy`, 50).
    #[param(minimum = 0, maximum = 1000)]
    max_accuracy: Option<u32>,
}

/// Where the caller stands with a contact, the answer to each decision about them.
#[derive(utoipa::IntoResponses)]
#[response(status = 200, description = "Where the caller stands with the contact")]
#[allow(dead_code)]
pub struct Standing(ContactState);

response_set!(
    /// What a `/api/me/contacts/{person_id}/...` operation may answer besides its own answer
    /// and checks: the caller's person ([`MyPersonProblems`]), the contact named
    /// ([`ContactProblems`], whose 404 stands for both), the query limits ([`QueryBusy`]).
    NamedContactProblems = MyPersonProblems, ContactProblems, QueryBusy
);

/// What naming a contact may be answered.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ContactProblems {
    #[response(status = 400, description = "The path names neither a person id nor a handle, or a parameter is invalid", content_type = PROBLEM_JSON)]
    BadContact(Problem),
    #[response(status = 404, description = "The caller met no such contact in the window (or may not name them by that id); or the account has no person", content_type = PROBLEM_JSON)]
    NotMet(Problem),
    #[response(status = 422, description = "The path names the caller themselves, or a body field is invalid", content_type = PROBLEM_JSON)]
    Myself(Problem),
}

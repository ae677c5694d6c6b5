//! connection-api: whom did a person meet, where and when.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Serialize;
use udaconnect_core::auth::Role;
use udaconnect_core::consent::HandleKey;
use udaconnect_core::contact::ConnectionQuery;
use udaconnect_core::model::{Person, PersonId};
use udaconnect_core::ports::DynLocationStore;
use udaconnect_core::time::{format_utc, from_micros, Window};
use udaconnect_core::track::TrackQuery;
use udaconnect_core::{validate, Error, Result};

use crate::access::{ruled, Authenticator, Caller, MyPerson};
use crate::http::openapi::{
    problem_answers, BadId, MyPersonProblems, NoSuchPerson, PersonPath, QueryBusy,
};
use crate::http::problem::{ApiResult, Problem, PROBLEM_JSON};
use crate::http::{Params, PathId};
use crate::metrics::Metrics;
use crate::persons::DynPersonDirectory;
use crate::query::answer::{write_contacts, ConnectionBody};
use crate::query::engine::DynContactEngine;
use crate::query::limits::QueryLimiter;
use crate::query::{evidence, export, reveal};

pub struct ConnectionApi {
    pub engine: DynContactEngine,
    pub persons: DynPersonDirectory,
    pub metrics: Arc<Metrics>,
    pub limiter: QueryLimiter,
    /// The account store's answer to who lets the people they met see their name, and to
    /// what attendees decided about their contacts.
    pub auth: Arc<Authenticator>,
    /// The pings a contact's evidence is read from.
    pub locations: DynLocationStore,
    /// Where requests to exchange e-mail addresses are mailed from (`None`: not mailed).
    pub log: Option<crate::mail::MailLog>,
    /// Makes the handles that name contacts a reader may not see named.
    pub handles: HandleKey,
    /// The page's address, for the links in mails.
    pub public_url: String,
    /// How many exports of the caller's data run (`GET /api/me/export`).
    pub exports: crate::query::export::ExportLimits,
}

/// A contact's person where the reader may not see who it is: `"person":null,"anonymous":true`
/// once [`write_contacts`] writes it after `"person":`. The rest of the row (when, where, how
/// long) stays: that the reader was there is theirs to know.
pub(crate) const SOMEONE: &[u8] = b"null,\"anonymous\":true";

/// Whether the caller reads others' names in a contacts answer only where those others allow
/// it: an attendee does, about their own meetings. Admins (who may read anyone's) keep the
/// whole answer, as does the open contract of `--auth off`.
pub(crate) fn names_need_consent(caller: &Caller) -> bool {
    caller.principal().is_some_and(|p| p.role != Role::Admin)
}

/// connection-api's routes, in one table: the queries, the caller's export, and a contact's
/// decisions ([`reveal`]) and evidence.
pub fn routes(api: Arc<ConnectionApi>) -> Router {
    ruled![
        "/api/persons/{id}/connection" => GetConnection on PathPerson: get(find_connections),
        "/api/persons/{id}/contacts" => GetContacts on PathPerson: get(find_contacts),
        "/api/persons/{id}/summary" => GetSummary on PathPerson: get(summary),
        "/api/me/connection" => GetConnection on MyPerson: get(my_connections),
        "/api/me/contacts" => GetContacts on MyPerson: get(my_contacts),
        "/api/me/summary" => GetSummary on MyPerson: get(my_summary),
        "/api/me/export" => ExportMe on MyAccount: get(export::export),
        "/api/me/reveals" => ListReveals on MyPerson: get(reveal::my_reveals),
        "/api/me/contacts/{person_id}/reveal" => AskReveal on MyPerson: post(reveal::ask_reveal),
        "/api/me/contacts/{person_id}/reveal" => WithdrawReveal on MyPerson: delete(reveal::withdraw_reveal),
        "/api/me/contacts/{person_id}/hide" => HideContact on MyPerson: post(reveal::hide_contact),
        "/api/me/contacts/{person_id}/hide" => UnhideContact on MyPerson: delete(reveal::unhide_contact),
        "/api/me/contacts/{person_id}/evidence" => GetEvidence on MyPerson: get(evidence::evidence),
    ]
    .with_state(api)
}

impl ConnectionApi {
    /// [`validate::contact_params`], with the server's `max_accuracy` where none is asked.
    pub(crate) fn contact_params(
        &self,
        params: &validate::QueryParams,
        person_id: i64,
    ) -> Result<TrackQuery> {
        let mut q = validate::contact_params(params, person_id)?;
        q.max_accuracy_m
            .get_or_insert(self.limiter.limits().max_accuracy_m);
        Ok(q)
    }

    pub(crate) async fn ensure_person(&self, id: PersonId) -> Result<()> {
        if self.persons.missing(&[id]).await?.is_empty() {
            Ok(())
        } else {
            Err(Error::not_found("person", id))
        }
    }

    /// The connection query, as the contract defines it, as a streamed JSON body.
    /// With `consent`, only the pings of people who let those they met see them: a ping names
    /// its person and says where they were, so the others' are left out (their meetings are
    /// in the contacts answer, as someone's).
    pub async fn connections(&self, q: ConnectionQuery, consent: bool) -> Result<ConnectionBody> {
        self.ensure_person(q.person_id).await?;
        let rows = self.engine.connections(q).await?;
        let most = self.limiter.limits().max_connection_rows;
        if rows.len() > most {
            self.limiter.refused("answer_too_large");
            return Err(Error::invalid(
                "end_date",
                format!(
                    "the answer holds {} locations, more than the {most} one answer may hold; \
                     narrow the window (start_date, end_date) or the distance",
                    rows.len()
                ),
            ));
        }
        let ids = rows.person_ids();
        let mut persons = self.persons.json_many(&ids).await?;
        if consent && !persons.is_empty() {
            let sight = self.sight(q.person_id, &ids).await?;
            // A row whose person is not among `persons` is not written.
            persons.retain(|(id, _)| sight.named(*id));
        }
        Ok(ConnectionBody::new(rows, persons))
    }

    /// Runs a query within the query limits and answers its JSON body; a query the limits
    /// refuse or stop is answered by them.
    async fn answer(&self, query: impl Future<Output = Result<Body>>) -> ApiResult<Response> {
        let started = Instant::now();
        let body = match self.limiter.run(query).await {
            Ok(body) => body?,
            Err(refused) => return Ok(refused.into_response()),
        };
        self.metrics
            .connection_query_duration
            .observe(started.elapsed().as_secs_f64());
        Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
    }

    /// The contacts query as the JSON array of [`ContactRow`]s; with `consent`, as the
    /// reader may see it (see [`crate::query::consent`]): those who have not let the people
    /// they met see them appear as someone, contacts the reader hid are left out.
    pub async fn contacts(&self, q: TrackQuery, consent: bool) -> Result<Vec<u8>> {
        self.ensure_person(q.person_id).await?;
        let mut contacts = self.engine.contacts(q).await?;
        let ids: Vec<PersonId> = contacts.iter().map(|c| c.person_id).collect();
        let mut persons: HashMap<PersonId, Bytes> =
            self.persons.json_many(&ids).await?.into_iter().collect();
        if consent && !persons.is_empty() {
            let sight = self.sight(q.person_id, &ids).await?;
            self.apply_sight(&sight, &mut contacts, &mut persons)
                .await?;
        }
        Ok(write_contacts(&contacts, &persons))
    }
}

/// The parameters of a connection query: the person's and the caller's own.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ConnectionParams {
    /// First day, YYYY-MM-DD (inclusive), years 1970 to 9999; an RFC 3339 timestamp is taken as the exact start
    #[param(format = Date, pattern = "^(19[7-9][0-9]|[2-9][0-9]{3})-")]
    start_date: String,
    /// Last day, YYYY-MM-DD (inclusive), years 1970 to 9999; not before start_date; an RFC 3339 timestamp is taken as the exact (exclusive) end
    #[param(format = Date, pattern = "^(19[7-9][0-9]|[2-9][0-9]{3})-")]
    end_date: String,
    /// Metres, 0 < distance <= 1000 (default 5)
    #[param(exclusive_minimum = 0, maximum = 1000)]
    distance: Option<f64>,
    /// Seconds between the two pings, at most: 0 to 31,622,400 (366 days); default: no condition
    #[param(minimum = 0, maximum = 31622400)]
    max_time_gap: Option<f64>,
}

/// The parameters of a contacts query: the person's and the caller's own.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ContactParams {
    /// Window start, years 1970 to 9999: a date (its first instant) or RFC 3339; default: unbounded
    #[param(format = Date, pattern = "^(19[7-9][0-9]|[2-9][0-9]{3})-")]
    start: Option<String>,
    /// Window end, years 1970 to 9999, not before start: a date (included whole) or RFC 3339 (exclusive); default: unbounded
    #[param(format = Date, pattern = "^(19[7-9][0-9]|[2-9][0-9]{3})-")]
    end: Option<String>,
    /// Metres, 0 < distance <= 1000 (default 5)
    #[param(exclusive_minimum = 0, maximum = 1000)]
    distance: Option<f64>,
    /// Seconds of time together at least, 0 to 31,622,400 (default 120)
    #[param(minimum = 0, maximum = 31622400)]
    min_duration: Option<f64>,
    /// Seconds: consecutive pings at most this far apart are joined by a straight walk; a longer gap is a hole. 0 to 3600 (default 300)
    #[param(minimum = 0, maximum = 3600)]
    max_interpolation: Option<f64>,
    /// Seconds an isolated ping counts as present on each side of its time, 0 to 300 (default 30)
    #[param(minimum = 0, maximum = 300)]
    ping_tolerance: Option<f64>,
    /// Seconds: periods together less than this apart form one encounter, 0 to 3600 (default 120)
    #[param(minimum = 0, maximum = 3600)]
    join_gap: Option<f64>,
    /// Whole metres, 0 to 1000: pings whose phone said they were less accurate than this do
    /// not count as meetings (the track's pieces touching them are left out); pings without
    /// an accuracy count. Default: the server's `--max-accuracy`, 50.
    #[param(minimum = 0, maximum = 1000)]
    max_accuracy: Option<u32>,
}

problem_answers! {
    /// A connection query's parameters refused.
    BadConnectionParams = 400, "A parameter is missing or invalid, or end_date is before start_date";

    /// A connection answer over its bound.
    TooManyConnectionRows = 422, "The answer would hold more locations than --max-connection-rows allows (default 250,000); narrow the window or the distance";

    /// A contacts query's parameters refused.
    BadContactParams = 400, "A parameter is invalid, or end is before start";
}

/// Whom a person met: other persons' locations near theirs.
///
/// Window `W = [start_date 00:00Z, end_date + 1 day 00:00Z)`: both dates inclusive, UTC (an RFC
/// 3339 timestamp may be given instead of a date: it is then the exact bound, the end
/// exclusive). The answer holds every location `L'` of another person with time in `W` such
/// that some location `L` of this person, also in `W`, lies within `distance` metres of `L'`
/// (great-circle on a sphere of radius 6,371,008.8 m; a point at exactly `distance` counts).
/// With `max_time_gap`, `L` and `L'` must also be at most that many seconds apart. Each `L'` once,
/// ordered by (creation_time, id). Large answers are streamed, up to `--max-connection-rows`
/// locations (default 250,000: a whole day of a 1,000-attendee venue is about 100,000); a
/// larger answer is refused with 422: ask for a narrower window.
#[utoipa::path(get, path = "/api/persons/{id}/connection", tag = "connections",
    params(
        PersonPath,
        ConnectionParams,
    ),
    responses(
        (status = 200, description = "Connections, by time then location id", body = [udaconnect_core::model::Connection]),
        BadConnectionParams,
        NoSuchPerson,
        TooManyConnectionRows,
        QueryBusy,
    ))]
pub async fn find_connections(
    State(api): State<Arc<ConnectionApi>>,
    caller: Caller,
    Params(params): Params,
    PathId(person_id): PathId,
) -> ApiResult<Response> {
    let q = validate::connection_params(&params, person_id)?;
    let consent = names_need_consent(&caller);
    api.answer(async { Ok(Body::new(api.connections(q, consent).await?)) })
        .await
}

/// One co-presence episode.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EncounterRow {
    #[schema(example = "2020-07-07T10:37:06Z")]
    pub start: String,
    #[schema(example = "2020-07-07T10:47:06Z")]
    pub end: String,
    #[schema(example = 600.0)]
    pub duration_seconds: f64,
    /// Where they met: the time-weighted centre of the meeting positions.
    pub latitude: f64,
    pub longitude: f64,
    /// The other person's pings that bound the pieces of their track in this encounter.
    pub pings: u32,
}

/// Everything one other person and the asked person shared.
///
/// An attendee reading their own contacts sees the name and company only of those who allow
/// it (`PUT /api/me/visibility`); the others are someone: `person` null and `anonymous`
/// true, the time, place and length of the meetings kept. Admins see every person.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContactRow {
    /// Null for someone who has not let the people they met see who they are.
    pub person: Option<Person>,
    /// Present, and true, only where `person` is null.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = true)]
    pub anonymous: Option<bool>,
    /// Where `person` is null: how the reader names this contact in
    /// `/api/me/contacts/{person_id}/...` (the same for one reader and person, another for
    /// another reader; it cannot be turned back into an id).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "c_3q2-7wZkR0mYx1vT8bN4Aa")]
    pub handle: Option<String>,
    /// The contact's e-mail address, present only once both asked to exchange them
    /// (`POST /api/me/contacts/{person_id}/reveal`) and neither withdrew or hid the other.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "ada@example.org")]
    pub email: Option<String>,
    #[schema(example = "2020-07-07T10:37:06Z")]
    pub first_met: String,
    #[schema(example = "2020-07-08T15:02:00Z")]
    pub last_met: String,
    /// Time together: the sum of the encounters' durations.
    #[schema(example = 1260.0)]
    pub duration_seconds: f64,
    pub encounter_count: usize,
    pub encounters: Vec<EncounterRow>,
}

#[cfg(test)]
fn seconds(us: i64) -> f64 {
    us as f64 / 1e6
}

#[cfg(test)]
impl ContactRow {
    fn new(person: Person, c: udaconnect_core::contact::Contact) -> Self {
        ContactRow {
            person: Some(person),
            anonymous: None,
            handle: None,
            email: None,
            first_met: format_utc(from_micros(c.first)),
            last_met: format_utc(from_micros(c.last)),
            duration_seconds: seconds(c.total_us),
            encounter_count: c.encounters.len(),
            encounters: c.encounters.iter().map(EncounterRow::new).collect(),
        }
    }
}

#[cfg(test)]
impl EncounterRow {
    fn new(e: &udaconnect_core::contact::Encounter) -> Self {
        EncounterRow {
            start: format_utc(from_micros(e.start)),
            end: format_utc(from_micros(e.end)),
            duration_seconds: seconds(e.duration_us()),
            latitude: e.latitude,
            longitude: e.longitude,
            pings: e.pings,
        }
    }
}

/// Whom a person met, and for how long: one row per other person, from their tracks.
///
/// Semantics, with window `[start, end)` (`start`/`end` are dates or RFC 3339 timestamps; a
/// date as `end` includes that whole day; either may be left out for an open window):
/// 1. **Track.** A person's pings in time order (pings just outside the window still shape the
///    track inside it). Between two consecutive pings at most `max_interpolation` seconds apart
///    the position moves at constant speed along the straight line between them; a longer gap
///    is a hole, where no position is assumed. A ping with no neighbour that close counts as
///    present at its place for `ping_tolerance` seconds on each side of its time.
/// 2. **Together.** Two persons are together at an instant when both tracks exist then and
///    their positions are within `distance` metres (great-circle, sphere of radius
///    6,371,008.8 m; exactly `distance` counts).
/// 3. **Encounter.** A period of togetherness; periods less than `join_gap` seconds apart form
///    one encounter. It lasts from its start to its end; its place is the time-weighted centre
///    of the meeting positions; `pings` counts the other person's pings that bound the pieces
///    of their track in it.
/// 4. **Contact.** Time together is the sum of the encounters' durations. Persons with less
///    than `min_duration` seconds together are left out; the rest are ordered by time
///    together, longest first, then by person id.
///
/// Phones pinging at other intervals or phases along the same walk change each encounter's
/// ends by at most one interval. `max_time_gap` (contacts from coincident pings) is refused
/// with 400: use `max_interpolation`, `ping_tolerance` and `join_gap`.
#[utoipa::path(get, path = "/api/persons/{id}/contacts", tag = "connections",
    params(
        PersonPath,
        ContactParams,
    ),
    responses(
        (status = 200, description = "Contacts, longest time together first", body = [ContactRow]),
        BadContactParams,
        NoSuchPerson,
        QueryBusy,
    ))]
pub async fn find_contacts(
    State(api): State<Arc<ConnectionApi>>,
    caller: Caller,
    Params(params): Params,
    PathId(person_id): PathId,
) -> ApiResult<Response> {
    let q = api.contact_params(&params, person_id)?;
    let consent = names_need_consent(&caller);
    api.answer(async { Ok(Body::from(api.contacts(q, consent).await?)) })
        .await
}

/// What is known of a person's pings.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PersonSummary {
    pub person: Person,
    /// Stored pings.
    pub pings: u64,
    /// Time of the first and last stored ping; null without pings.
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

/// A person and the time span of their stored pings (the default window of the web page).
#[utoipa::path(get, path = "/api/persons/{id}/summary", tag = "connections",
    params(PersonPath),
    responses(
        (status = 200, description = "Summary", body = PersonSummary),
        BadId,
        NoSuchPerson,
    ))]
pub async fn summary(
    State(api): State<Arc<ConnectionApi>>,
    PathId(id): PathId,
) -> ApiResult<Json<PersonSummary>> {
    let person = api
        .persons
        .get_many(&[id])
        .await?
        .pop()
        .ok_or_else(|| Error::not_found("person", id))?;
    let span = api.engine.span(id, Window::all()).await?;
    Ok(Json(PersonSummary {
        person,
        pings: span.map_or(0, |s| s.pings),
        first_seen: span.map(|s| format_utc(from_micros(s.first))),
        last_seen: span.map(|s| format_utc(from_micros(s.last))),
    }))
}

/// The caller's own connections: `GET /api/persons/{id}/connection` for the caller's person,
/// holding only the pings of people who let those they met see them (`PUT
/// /api/me/visibility`).
#[utoipa::path(get, path = "/api/me/connection", tag = "me",
    params(ConnectionParams),
    responses(
        (status = 200, description = "Connections, by time then location id: the pings of people who let those they met see them", body = [udaconnect_core::model::Connection]),
        BadConnectionParams,
        MyPersonProblems,
        TooManyConnectionRows,
        QueryBusy,
    ))]
pub async fn my_connections(
    api: State<Arc<ConnectionApi>>,
    caller: Caller,
    params: Params,
    MyPerson(id): MyPerson,
) -> ApiResult<Response> {
    find_connections(api, caller, params, PathId(id)).await
}

/// The caller's own contacts: `GET /api/persons/{id}/contacts` for the caller's person, with
/// the same parameters and answer. Only people who allow it are named (`PUT
/// /api/me/visibility`); the others appear as someone, with `person` null and `anonymous`
/// true: the time, place and length of the meetings, no id, name or company.
#[utoipa::path(get, path = "/api/me/contacts", tag = "me",
    params(ContactParams),
    responses(
        (status = 200, description = "Contacts, longest time together first; those who have not let the people they met see them (PUT /api/me/visibility) as someone: person null, anonymous true", body = [ContactRow]),
        BadContactParams,
        MyPersonProblems,
        QueryBusy,
    ))]
pub async fn my_contacts(
    api: State<Arc<ConnectionApi>>,
    caller: Caller,
    params: Params,
    MyPerson(id): MyPerson,
) -> ApiResult<Response> {
    find_contacts(api, caller, params, PathId(id)).await
}

/// The caller's own summary: `GET /api/persons/{id}/summary` for the caller's person.
#[utoipa::path(get, path = "/api/me/summary", tag = "me",
    responses(
        (status = 200, description = "Summary", body = PersonSummary),
        MyPersonProblems,
    ))]
pub async fn my_summary(
    api: State<Arc<ConnectionApi>>,
    MyPerson(id): MyPerson,
) -> ApiResult<Json<PersonSummary>> {
    summary(api, PathId(id)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use udaconnect_core::contact::{Contact, Encounter};

    /// The contacts answer written directly is byte for byte what serialising [`ContactRow`]s
    /// gives (the schema the OpenAPI document publishes), persons without a record left out.
    #[test]
    fn written_contacts_equal_serialised_rows() {
        let mut rng = udaconnect_sim::Rng::new(9);
        let persons: Vec<Person> = (1..=40)
            .map(|id| Person {
                id,
                first_name: format!("F{id}"),
                last_name: "O\"Brien \\ é".into(),
                company_name: "C".into(),
            })
            .collect();
        let contacts: Vec<Contact> = (1..=45)
            .map(|person_id| {
                let mut t = 1_717_200_000_000_000 + (rng.unit() * 3e11) as i64;
                // Whole seconds, milliseconds and microseconds, across midnight.
                let encounters: Vec<Encounter> = (0..1 + rng.below(6))
                    .map(|i| {
                        let start = t;
                        let end = start + [0, 80_000_000, 123_000, 86_400_000_001][i % 4];
                        t = end + 61_000_000 + (rng.unit() * 1e9) as i64;
                        Encounter {
                            start,
                            end,
                            latitude: 37.55 + rng.unit() * 1e-3,
                            longitude: if i == 2 {
                                -122.0
                            } else {
                                -122.29 - rng.unit() * 1e-3
                            },
                            pings: 1 + i as u32,
                        }
                    })
                    .collect();
                Contact {
                    person_id,
                    first: encounters[0].start,
                    last: encounters[encounters.len() - 1].end,
                    total_us: encounters.iter().map(Encounter::duration_us).sum(),
                    encounters,
                }
            })
            .collect();
        let by_id: HashMap<PersonId, Person> = persons.iter().map(|p| (p.id, p.clone())).collect();
        let want: Vec<ContactRow> = contacts
            .iter()
            .filter_map(|c| Some(ContactRow::new(by_id.get(&c.person_id)?.clone(), c.clone())))
            .collect();
        assert_eq!(want.len(), 40);
        let jsons: HashMap<PersonId, Bytes> = persons
            .iter()
            .map(|p| (p.id, crate::persons::person_json(p)))
            .collect();
        let got = write_contacts(&contacts, &jsons);
        assert_eq!(
            String::from_utf8(got).unwrap(),
            serde_json::to_string(&want).unwrap()
        );
        assert_eq!(write_contacts(&[], &jsons), b"[]");

        // Someone: every third person hidden, written as the schema's anonymous row.
        let hidden = |id: PersonId| id % 3 == 0;
        let jsons: HashMap<PersonId, Bytes> = jsons
            .into_iter()
            .map(|(id, json)| match hidden(id) {
                true => (id, Bytes::from_static(SOMEONE)),
                false => (id, json),
            })
            .collect();
        let want: Vec<ContactRow> = want
            .into_iter()
            .map(
                |row| match row.person.as_ref().is_some_and(|p| hidden(p.id)) {
                    true => ContactRow {
                        person: None,
                        anonymous: Some(true),
                        ..row
                    },
                    false => row,
                },
            )
            .collect();
        let got = String::from_utf8(write_contacts(&contacts, &jsons)).unwrap();
        assert_eq!(got, serde_json::to_string(&want).unwrap());
        assert_eq!(
            got.matches(r#""person":null,"anonymous":true,"first_met""#)
                .count(),
            13
        );
    }
}

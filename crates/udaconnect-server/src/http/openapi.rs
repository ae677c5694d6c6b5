//! The OpenAPI description, generated from the handlers and types.

use udaconnect_core::auth::Action;
use udaconnect_core::model::MAX_ID;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{
    KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::{Content, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::access::{accounts, me, sessions, visibility};
use crate::http::ops;
use crate::ingest::http as location_api;
use crate::ingest::trackers;
use crate::persons::http as person_api;
use crate::query::http as connection_api;
use crate::query::live;
use crate::query::{evidence, export, reveal};
use crate::signin::email;
use crate::signin::http as signin;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "UdaConnect",
        description = "Who met whom at a conference, from attendees' location pings. \
            Every operation but /health, /ready and the description itself needs a token \
            (Authorization: Bearer uc_..., bearerAuth) or a signed-in session (the uc_session \
            cookie, cookieAuth; a write by cookie must come from this site's page): 401 \
            without one, 403 when the caller's role may not (an attendee reaches their own \
            data, under /api/me too; organizers the directory and the venue; admins all). \
            Errors are RFC 9457 problem+json bodies naming the invalid fields. Every answer \
            carries X-Correlation-ID (taken from the request when sent, also as correlationId). \
            Any operation answers 421 to a Host header the server is not configured for \
            (--allowed-hosts), and a method a path does not take 405 with Allow. Bodies \
            are at most 16 MiB (413), request targets (path and query) 8 KiB (414). Ids are integers from 1 to 2^53-1. Pings timed more \
            than --max-future-skew (default 1 day) ahead of the server's clock are refused \
            with 422.",
        license(name = "Apache-2.0"),
    ),
    paths(
        person_api::create_person,
        person_api::list_persons,
        person_api::get_person,
        person_api::erase_person,
        person_api::lookup_persons,
        location_api::create_location,
        location_api::create_locations,
        location_api::get_location,
        connection_api::find_connections,
        connection_api::find_contacts,
        connection_api::summary,
        live::stream,
        live::positions,
        live::heat,
        live::zones,
        live::venue,
        signin::login,
        signin::demo,
        signin::confirm_page,
        signin::confirm,
        signin::logout,
        ops::health,
        ops::ready,
        ops::metrics,
        me::me,
        me::delete_me,
        me::my_tokens,
        me::create_my_token,
        me::revoke_my_token,
        connection_api::my_connections,
        connection_api::my_contacts,
        connection_api::my_summary,
        location_api::my_locations,
        trackers::browser::post_my_locations,
        trackers::devices::create_device,
        trackers::devices::list_devices,
        trackers::devices::revoke_device,
        visibility::my_visibility,
        visibility::set_my_visibility,
        reveal::my_reveals,
        reveal::ask_reveal,
        reveal::withdraw_reveal,
        reveal::hide_contact,
        reveal::unhide_contact,
        evidence::evidence,
        export::export,
        sessions::my_sessions,
        sessions::revoke_my_session,
        email::change_email,
        email::set_secondary_email,
        email::remove_secondary_email,
        email::verify_page,
        email::verify,
        accounts::list_accounts,
        accounts::change_role,
    ),
    // utoipa collects the schemas the paths' bodies name, and the schemas those name. Listed
    // here are the two it does not reach: `ContactState`, carried by the `reveal::Standing`
    // answer (an `IntoResponses` type), and the live stream's `rate` event, which no body names.
    components(schemas(reveal::ContactState, live::Rate)),
    tags(
        (name = "persons", description = "Attendees"),
        (name = "locations", description = "Location pings"),
        (name = "connections", description = "Who was near whom"),
        (name = "live", description = "The venue live: positions as they arrive"),
        (name = "sign-in", description = "Sign-in by e-mail link, browser sessions"),
        (name = "operations", description = "Health, readiness, metrics"),
        (name = "me", description = "The caller: their person, meetings, tokens, sessions and addresses"),
        (name = "accounts", description = "Every account and its role, for admins"),
        (name = "devices", description = "Phones registered to post pings through tracker apps (OwnTracks at POST /pub, Traccar Client and OsmAnd at /api/osmand: see docs/trackers.md)"),
    ),
    modifiers(&EveryOperation, &Security),
)]
pub struct ApiDoc;

pub(crate) use super::responses::{problem_answers, response_set};
pub use super::responses::{
    BadId, BadPage, BodyProblems, DeviceRateLimited, DeviceToken, IngestBusy, IngestProblems,
    LastAdmin, MalformedJson, MyPersonProblems, NoManageScope, NoPersonOfMine, NoSuchPerson,
    NotAdmin, NotJson, PageCursor, PersonPath, QueryBusy, Unauthenticated,
};

/// Adds what every operation may answer, whatever its route: 414 for a target over
/// [`MAX_URI`](crate::http::guard::MAX_URI), 421 for a foreign Host, and on
/// the API 503 (starting, or a store, the log or another role not answering) with Retry-After.
struct EveryOperation;

impl Modify for EveryOperation {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        for (path, item) in api.paths.paths.iter_mut() {
            let on_api = path.starts_with("/api/");
            for op in operations(item) {
                add_problem(
                    op,
                    "414",
                    "The request target (path and query) is over 8 KiB",
                    false,
                );
                add_problem(
                    op,
                    "421",
                    "The Host header names a host this server does not answer to (--allowed-hosts)",
                    false,
                );
                if on_api {
                    add_problem(
                        op,
                        "503",
                        "Starting, or a store, the log or another role does not answer; retry \
                         after Retry-After seconds",
                        true,
                    );
                }
            }
        }
    }
}

/// Each operation of the document and the [`Action`] its route declares: what the security
/// each operation states is derived from, and what the authorization matrix test expects.
pub const OPERATIONS: &[(&str, &str, Action)] = &[
    ("post", "/api/persons", Action::CreatePerson),
    ("get", "/api/persons", Action::ListPersons),
    ("get", "/api/persons/{id}", Action::GetPerson),
    ("delete", "/api/persons/{id}", Action::ErasePerson),
    ("post", "/api/persons/lookup", Action::LookupPersons),
    ("post", "/api/locations", Action::PostLocation),
    ("post", "/api/locations/batch", Action::PostLocationBatch),
    ("get", "/api/locations/{id}", Action::GetLocation),
    ("get", "/api/persons/{id}/connection", Action::GetConnection),
    ("get", "/api/persons/{id}/contacts", Action::GetContacts),
    ("get", "/api/persons/{id}/summary", Action::GetSummary),
    ("get", "/api/live/stream", Action::LiveStream),
    ("get", "/api/live/positions", Action::LivePositions),
    ("get", "/api/live/heat", Action::LiveHeat),
    ("get", "/api/live/zones", Action::LiveZones),
    ("get", "/api/venue", Action::GetVenue),
    ("get", "/health", Action::Health),
    ("get", "/ready", Action::Ready),
    ("get", "/metrics", Action::Metrics),
    ("get", "/api/me", Action::GetMe),
    ("delete", "/api/me", Action::DeleteAccount),
    ("get", "/api/me/tokens", Action::ListTokens),
    ("post", "/api/me/tokens", Action::CreateToken),
    ("delete", "/api/me/tokens/{id}", Action::RevokeToken),
    ("get", "/api/me/connection", Action::GetConnection),
    ("get", "/api/me/contacts", Action::GetContacts),
    ("get", "/api/me/summary", Action::GetSummary),
    ("get", "/api/me/locations", Action::GetLocation),
    ("post", "/api/me/locations", Action::PostLocationBatch),
    ("post", "/api/me/devices", Action::CreateDevice),
    ("get", "/api/me/devices", Action::ListDevices),
    ("delete", "/api/me/devices/{id}", Action::RevokeDevice),
    ("get", "/api/me/visibility", Action::GetVisibility),
    ("put", "/api/me/visibility", Action::SetVisibility),
    ("get", "/api/me/reveals", Action::ListReveals),
    ("get", "/api/me/export", Action::ExportMe),
    (
        "post",
        "/api/me/contacts/{person_id}/reveal",
        Action::AskReveal,
    ),
    (
        "delete",
        "/api/me/contacts/{person_id}/reveal",
        Action::WithdrawReveal,
    ),
    (
        "post",
        "/api/me/contacts/{person_id}/hide",
        Action::HideContact,
    ),
    (
        "delete",
        "/api/me/contacts/{person_id}/hide",
        Action::UnhideContact,
    ),
    (
        "get",
        "/api/me/contacts/{person_id}/evidence",
        Action::GetEvidence,
    ),
    ("post", "/api/auth/login", Action::RequestSignIn),
    ("get", "/api/auth/demo", Action::DemoSignIn),
    ("get", "/auth/confirm", Action::ConfirmSignIn),
    ("post", "/auth/confirm", Action::ConfirmSignIn),
    ("post", "/api/auth/logout", Action::SignOut),
    ("get", "/api/me/sessions", Action::ListSessions),
    ("delete", "/api/me/sessions/{id}", Action::RevokeSession),
    ("post", "/api/me/email", Action::ChangeEmail),
    ("put", "/api/me/secondary-email", Action::AddSecondaryEmail),
    (
        "delete",
        "/api/me/secondary-email",
        Action::AddSecondaryEmail,
    ),
    ("get", "/auth/verify-email", Action::ConfirmEmail),
    ("post", "/auth/verify-email", Action::ConfirmEmail),
    ("get", "/api/accounts", Action::ListAccounts),
    ("put", "/api/accounts/{id}/role", Action::ChangeRole),
];

/// The action of the operation `method` (lowercase) `path`, as [`OPERATIONS`] lists it.
pub fn action_of(method: &str, path: &str) -> Option<Action> {
    OPERATIONS
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|(_, _, a)| *a)
}

/// The two ways to say who is asking (`bearerAuth`: API and device tokens; `cookieAuth`: the
/// browser session), and each operation's security from its action: none for public ones,
/// either scheme for the rest, which may then answer 401 and 403.
struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
        };
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "cookieAuth",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                udaconnect_core::auth::SESSION_COOKIE,
            ))),
        );
        for (path, item) in api.paths.paths.iter_mut() {
            for (method, op) in [
                ("get", &mut item.get),
                ("post", &mut item.post),
                ("put", &mut item.put),
                ("patch", &mut item.patch),
                ("delete", &mut item.delete),
            ] {
                let Some(op) = op.as_mut() else { continue };
                // An operation missing from the table states no security: the unit test
                // below and the matrix test refuse it.
                let Some(action) = action_of(method, path) else {
                    continue;
                };
                if action.is_public() {
                    op.security = Some(Vec::new());
                    continue;
                }
                op.security = Some(vec![
                    SecurityRequirement::new("bearerAuth", Vec::<String>::new()),
                    SecurityRequirement::new("cookieAuth", Vec::<String>::new()),
                ]);
                add_problem(
                    op,
                    "401",
                    "No credential, or one that is unknown, expired or revoked \
                     (WWW-Authenticate: Bearer)",
                    false,
                );
                add_problem(
                    op,
                    "403",
                    "The caller's role or token may not do this, for this person; or a write \
                     signed in by the session cookie from another site",
                    false,
                );
            }
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// A problem+json answer with `status`, unless the operation already describes one.
fn add_problem(op: &mut Operation, status: &str, description: &str, retry_after: bool) {
    if op.responses.responses.contains_key(status) {
        return;
    }
    let mut response = ResponseBuilder::new().description(description).content(
        crate::http::problem::PROBLEM_JSON,
        Content::new(Some(Ref::from_schema_name("Problem"))),
    );
    if retry_after {
        response = response.header("Retry-After", retry_after_header());
    }
    op.responses
        .responses
        .insert(status.to_string(), response.build().into());
}

/// The Retry-After header of a 429 or 503: whole seconds.
pub fn retry_after_header() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        )
        .description(Some("Seconds to wait before retrying"))
        .build()
}

/// An id in a body: a JSON integer (`5.0` counts) or its digits as a string, as the original
/// clients sent it.
pub fn id_schema() -> Schema {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(1))
                .maximum(Some(MAX_ID)),
        )
        // At most 15 digits: every such id is below 2^53.
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[1-9][0-9]{0,14}$")),
        )
        .description(Some(
            "An id from 1 to 2^53-1, as a number or a string of digits",
        ))
        .examples([5])
        .into()
}

/// Degrees of latitude, in [-90, 90], as a number or its decimal text.
pub fn latitude_schema() -> Schema {
    degrees(90, r"^-?(90(\.0+)?|[1-8]?[0-9](\.[0-9]+)?)$", 37.55363)
}

/// Degrees of longitude, in [-180, 180], as a number or its decimal text.
pub fn longitude_schema() -> Schema {
    degrees(
        180,
        r"^-?(180(\.0+)?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]+)?)$",
        -122.290883,
    )
}

fn degrees(limit: i32, text: &str, example: f64) -> Schema {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
                .minimum(Some(-limit))
                .maximum(Some(limit)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(text)),
        )
        .description(Some(format!(
            "Degrees in [-{limit}, {limit}]: a number, or a numeric string"
        )))
        .examples([example])
        .into()
}

/// A ping's time: RFC 3339 in the years 1970 to 9999 (UTC); without an offset it is UTC. The
/// pattern keeps to whole years inside that range, so an offset cannot take it outside.
pub fn fix_time_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .pattern(Some(FIX_TIME_YEARS))
        .description(Some(
            "RFC 3339, years 1970 to 9999; without an offset it is UTC; absent or null means \
             the time of ingest; more than --max-future-skew ahead is refused (422)",
        ))
        .examples(["2020-07-07T10:37:06Z"])
        .into()
}

/// Years 1971 to 9998, the ones no UTC offset can move outside 1970 to 9999.
pub const FIX_TIME_YEARS: &str =
    "^(197[1-9]|19[89][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-";

/// A name or company: 1 to 256 characters, not all white space, no NUL.
pub fn text_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(udaconnect_core::validate::MAX_TEXT_CHARS))
        .pattern(Some(TEXT_PATTERN))
        .description(Some(
            "1 to 256 characters, at least one of them not white space, none of them NUL",
        ))
        .into()
}

/// An e-mail address as [`udaconnect_core::auth::Email::parse`] takes one: one `@`, something
/// on each side, no white space, control characters, `<`, `>`, comma or semicolon, a domain
/// that neither starts nor ends with a dot; at most 254 characters.
pub fn email_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(3))
        .max_length(Some(254))
        .pattern(Some(EMAIL_PATTERN))
        .into()
}

/// An account's role, by name.
pub fn role_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(udaconnect_core::auth::Role::ALL.map(|r| r.as_str())))
        .into()
}

/// [`email_schema`], or null for none (an optional address).
pub fn optional_email_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .min_length(Some(3))
        .max_length(Some(254))
        .pattern(Some(EMAIL_PATTERN))
        .into()
}

const EMAIL_PATTERN: &str = r"^[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000<>,;@]+@[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000<>,;@.]([^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000<>,;@]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000<>,;@.])?$";

/// A credential as a client presents it: `uc_` and 43 characters of base64url, the last one
/// of the 16 that end 32 bytes.
pub fn token_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^uc_[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))
        .examples(["uc_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"])
        .into()
}

/// At least one character that is neither white space (as Unicode defines it) nor NUL, and
/// no NUL anywhere.
const TEXT_PATTERN: &str = r"^[^\u0000]*[^\u0000\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$";

pub fn spec_json() -> String {
    let mut spec = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    link_keys_as_openapi_spells_them(&mut spec);
    serde_json::to_string_pretty(&spec).unwrap_or_else(|_| "{}".into())
}

/// utoipa 5 writes a link's `operationId` as `operation_id` (and `requestBody` as
/// `request_body`); OpenAPI readers find no operation under those names.
fn link_keys_as_openapi_spells_them(spec: &mut serde_json::Value) {
    let Some(paths) = spec.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let responses = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses").and_then(|r| r.as_object_mut()))
        .flat_map(|responses| responses.values_mut());
    for response in responses {
        let Some(links) = response.get_mut("links").and_then(|l| l.as_object_mut()) else {
            continue;
        };
        for link in links.values_mut().filter_map(|l| l.as_object_mut()) {
            for (wrong, right) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(v) = link.remove(wrong) {
                    link.insert(right.to_string(), v);
                }
            }
        }
    }
}

/// The ids of a lookup: JSON integers (any that fit 64 bits; those naming no person are left
/// out of the answer), at most 10,000 of them.
pub fn lookup_ids_schema() -> Schema {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(i64::MIN))
                .maximum(Some(i64::MAX)),
        )
        .max_items(Some(crate::persons::http::MAX_LOOKUP_IDS))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation of the document has its action in [`OPERATIONS`], and every row there
    /// is an operation of the document: a new route without a rule fails here.
    #[test]
    fn every_operation_has_an_action() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serialises");
        let mut seen = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("a path item") {
                let action = action_of(method, path)
                    .unwrap_or_else(|| panic!("{method} {path} has no action in OPERATIONS"));
                let security = op["security"].as_array().expect("security stated");
                assert_eq!(security.is_empty(), action.is_public(), "{method} {path}");
                seen.push((method.clone(), path.clone()));
            }
        }
        for (m, p, _) in OPERATIONS {
            assert!(
                seen.contains(&(m.to_string(), p.to_string())),
                "{m} {p} is not in the document"
            );
        }
    }
}

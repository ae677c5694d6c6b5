//! Answers and parameters several operations share, each described once for the OpenAPI
//! document (see [`super::openapi`]). The types are never built: they only carry the
//! descriptions into the document.

use crate::http::problem::{Problem, PROBLEM_JSON};

/// The person id in a path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct PersonPath {
    /// Person id
    #[param(minimum = 1, maximum = 9007199254740991_i64)]
    id: i64,
}

/// The `cursor` of a paged list.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageCursor {
    /// The cursor of the page to read, from X-Next-Cursor: the last id of the previous page
    #[param(minimum = 0, maximum = 9007199254740991_i64)]
    cursor: Option<i64>,
}

// Answers several operations share, each described once. The variants are never built: they
// only carry the descriptions into the document.

/// The person a path names does not exist.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 404,
    description = "No such person",
    content_type = PROBLEM_JSON
)]
#[allow(dead_code)]
pub struct NoSuchPerson(Problem);

/// No credential, or one that signs no one in: what every operation for a signed-in caller
/// may answer.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 401,
    description = "No credential, or one that signs no one in",
    content_type = PROBLEM_JSON
)]
#[allow(dead_code)]
pub struct Unauthenticated(Problem);

/// A device token asked for what only its holder may do (a device only posts pings).
#[derive(utoipa::IntoResponses)]
#[response(status = 403, description = "A device token", content_type = PROBLEM_JSON)]
#[allow(dead_code)]
pub struct DeviceToken(Problem);

/// A `/api/me/...` operation about the caller's person, from an account that has none.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 404,
    description = "The caller's account has no person",
    content_type = PROBLEM_JSON
)]
#[allow(dead_code)]
pub struct NoPersonOfMine(Problem);

/// The `{id}` of a path is not an integer.
#[derive(utoipa::IntoResponses)]
#[response(status = 400, description = "The id is not an integer", content_type = PROBLEM_JSON)]
#[allow(dead_code)]
pub struct BadId(Problem);

/// A JSON body that does not parse, or holds a field of the wrong type.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 400,
    description = "Malformed JSON or wrong types",
    content_type = PROBLEM_JSON
)]
#[allow(dead_code)]
pub struct MalformedJson(Problem);

/// A body that does not say it is JSON, for an operation that answers nothing else of
/// [`BodyProblems`].
#[derive(utoipa::IntoResponses)]
#[response(status = 415, description = "The body is not JSON", content_type = PROBLEM_JSON)]
#[allow(dead_code)]
pub struct NotJson(Problem);

/// A device token, or a token without the manage scope, asked to change the caller's account.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 403,
    description = "A device token, or a token without the manage scope",
    content_type = PROBLEM_JSON
)]
#[allow(dead_code)]
pub struct NoManageScope(Problem);

/// An admins' operation asked by someone else.
#[derive(utoipa::IntoResponses)]
#[response(status = 403, description = "Not an admin", content_type = PROBLEM_JSON)]
#[allow(dead_code)]
pub struct NotAdmin(Problem);

/// The last admin account would lose its role.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 409,
    description = "The last admin account: make another admin first",
    content_type = PROBLEM_JSON
)]
#[allow(dead_code)]
pub struct LastAdmin(Problem);

/// A paged list's `limit` or `cursor` is not one.
#[derive(utoipa::IntoResponses)]
#[response(status = 400, description = "Bad limit or cursor", content_type = PROBLEM_JSON)]
#[allow(dead_code)]
pub struct BadPage(Problem);

/// A tracker app's device sent more than its rate allows.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 429,
    description = "Over the device's rate (`--device-rate-limit`); Retry-After says when to send again",
    content_type = PROBLEM_JSON
)]
#[allow(dead_code)]
pub struct DeviceRateLimited(Problem);

/// What an operation that takes a body answers before reading it.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum BodyProblems {
    #[response(
        status = 413,
        description = "The body is larger than 16 MiB (declared or sent in chunks)",
        content_type = PROBLEM_JSON
    )]
    TooLarge(Problem),
    #[response(
        status = 415,
        description = "Content-Type is not application/json (or application/x-ndjson for a batch)",
        content_type = PROBLEM_JSON
    )]
    NotJson(Problem),
}

/// Ingest refused for now: this client is over its rate, or the log is not taking pings.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum IngestBusy {
    #[response(status = 429, description = "This client address sent more ingest requests than --ingest-rate-limit allows; retry after Retry-After seconds", content_type = PROBLEM_JSON,
        headers(("Retry-After" = u32, description = "Seconds to wait")))]
    RateLimited(Problem),
    #[response(status = 503, description = "The log cannot take it now; retry", content_type = PROBLEM_JSON,
        headers(("Retry-After" = u32, description = "Seconds to wait")))]
    LogBusy(Problem),
}

/// A set of answers several operations share: `response_set!(Name = A, B, ...)` declares
/// `Name`, whose responses are those of every part (each an [`IntoResponses`]).
macro_rules! response_set {
    ($(#[$doc:meta])* $name:ident = $($part:ty),+ $(,)?) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::Response>,
            > {
                let mut responses = std::collections::BTreeMap::new();
                $(responses.extend(<$part as utoipa::IntoResponses>::responses());)+
                responses
            }
        }
    };
}
pub(crate) use response_set;

response_set!(
    /// What an ingest operation may answer besides its own checks: the body's problems
    /// ([`BodyProblems`]) and the ingest's refusals ([`IngestBusy`]).
    IngestProblems = BodyProblems, IngestBusy
);

response_set!(
    /// What a `/api/me/...` operation about the caller's person may answer besides its own
    /// checks: no one signed in ([`Unauthenticated`]), a device token ([`DeviceToken`]), an
    /// account with no person ([`NoPersonOfMine`]).
    MyPersonProblems = Unauthenticated, DeviceToken, NoPersonOfMine
);

/// A query refused or stopped by the query limits.
#[derive(utoipa::IntoResponses)]
#[response(status = 503, description = "Every query place is taken and the queue is full (--query-concurrency, --query-queue), or the query was not answered within --query-deadline (default 15 s) and was stopped; retry after Retry-After seconds", content_type = PROBLEM_JSON,
    headers(("Retry-After" = u32, description = "Seconds to wait before retrying")))]
#[allow(dead_code)]
pub struct QueryBusy(Problem);

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

/// Answers of one problem+json each, several operations share: `problem_answers! { /// doc
/// Name = status, "description"; }` declares `Name`, an [`IntoResponses`](utoipa::IntoResponses)
/// with that status and description (and `headers(...)` after them, where given). The types
/// are never built: they only carry the descriptions into the document.
macro_rules! problem_answers {
    ($($(#[$doc:meta])* $vis:vis $name:ident = $status:tt, $description:tt $(, headers $headers:tt)?;)+) => {$(
        $(#[$doc])*
        #[derive(utoipa::IntoResponses)]
        #[response(status = $status, description = $description, content_type = PROBLEM_JSON $(, headers $headers)?)]
        #[allow(dead_code)]
        $vis struct $name(Problem);
    )+};
}
pub(crate) use problem_answers;

problem_answers! {
    /// The person a path names does not exist.
    pub NoSuchPerson = 404, "No such person";

    /// No credential, or one that signs no one in: what every operation for a signed-in
    /// caller may answer.
    pub Unauthenticated = 401, "No credential, or one that signs no one in";

    /// A device token asked for what only its holder may do (a device only posts pings).
    pub DeviceToken = 403, "A device token";

    /// A `/api/me/...` operation about the caller's person, from an account that has none.
    pub NoPersonOfMine = 404, "The caller's account has no person";

    /// The `{id}` of a path is not an integer.
    pub BadId = 400, "The id is not an integer";

    /// A JSON body that does not parse, or holds a field of the wrong type.
    pub MalformedJson = 400, "Malformed JSON or wrong types";

    /// A body that does not say it is JSON, for an operation that answers nothing else of
    /// [`BodyProblems`].
    pub NotJson = 415, "The body is not JSON";

    /// A device token, or a token without the manage scope, asked to change the caller's
    /// account.
    pub NoManageScope = 403, "A device token, or a token without the manage scope";

    /// An admins' operation asked by someone else.
    pub NotAdmin = 403, "Not an admin";

    /// The last admin account would lose its role.
    pub LastAdmin = 409, "The last admin account: make another admin first";

    /// A paged list's `limit` or `cursor` is not one.
    pub BadPage = 400, "Bad limit or cursor";

    /// A tracker app's device sent more than its rate allows.
    pub DeviceRateLimited = 429,
        "Over the device's rate (`--device-rate-limit`); Retry-After says when to send again";

    /// A query refused or stopped by the query limits.
    pub QueryBusy = 503, "Every query place is taken and the queue is full (--query-concurrency, --query-queue), or the query was not answered within --query-deadline (default 15 s) and was stopped; retry after Retry-After seconds",
        headers(("Retry-After" = u32, description = "Seconds to wait before retrying"));
}

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

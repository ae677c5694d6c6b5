//! An account's addresses: a new primary or secondary address is the account's only once a
//! link mailed to it is followed, the way sign-in links are (made by the mailer, stored as a
//! hash, 15 minutes, once, a page with a button before the POST that uses it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Serialize;
use udaconnect_core::auth::{AddressSlot, EmailChange};
use udaconnect_core::mail::{MailKind, MailRequest};
use udaconnect_core::Error;

use super::http::{body_email, SignInApi};
use super::page::{self, link_page, LinkRefusals, VERIFY};
use super::{mail_key, WindowLimiter, TOKEN_PLACEHOLDER, VERIFY_PATH};
use crate::access::{ruled, Caller, Own, OwnApi};
use crate::http::guard::{json, too_many};
use crate::http::openapi::{
    email_schema, problem_answers, response_set, BodyProblems, MalformedJson, NoManageScope,
    Unauthenticated,
};
use crate::http::problem::{ApiResult, Problem, PROBLEM_JSON};
use crate::http::JsonBody;

/// Verification links one account may ask for within [`LIMIT_WINDOW`]: each is a mail to an
/// address of the caller's choosing.
pub const PER_ACCOUNT: usize = 5;
pub const LIMIT_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The address routes, over sign-in's stores and mail log.
pub struct AddressApi {
    pub signin: Arc<SignInApi>,
    per_account: WindowLimiter,
}

impl OwnApi for AddressApi {
    const NO_ONE: &'static str = NO_ADDRESSES;
}

impl AddressApi {
    pub fn new(signin: Arc<SignInApi>) -> Arc<AddressApi> {
        Arc::new(AddressApi {
            signin,
            per_account: WindowLimiter::new(PER_ACCOUNT, LIMIT_WINDOW),
        })
    }
}

pub fn routes(api: Arc<AddressApi>) -> Router {
    ruled![
        "/api/me/email" => ChangeEmail on MyAccount: json(post(change_email)),
        SECONDARY => AddSecondaryEmail on MyAccount: json(put(set_secondary_email)),
        SECONDARY => AddSecondaryEmail on MyAccount: delete(remove_secondary_email),
        VERIFY_PATH => ConfirmEmail on Service: get(verify_page),
        VERIFY_PATH => ConfirmEmail on Service: post(verify),
    ]
    .with_state(api)
}

const SECONDARY: &str = "/api/me/secondary-email";

/// Body of `POST /api/me/email` and `PUT /api/me/secondary-email`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct AddressBody {
    /// The address to verify (at most 254 characters).
    #[schema(schema_with = email_schema)]
    email: String,
}

/// The answer to an accepted address change.
#[derive(Serialize, utoipa::ToSchema)]
pub struct VerificationSent {
    #[schema(example = "a link to confirm the address is on its way to it")]
    status: String,
}

problem_answers! {
    /// More address changes for this account than [`PER_ACCOUNT`] within [`LIMIT_WINDOW`].
    TooManyChanges = 429, "Over 5 address changes for this account in 15 minutes",
        headers(("Retry-After" = u32, description = "Seconds to wait before retrying"));
}

response_set!(
    /// What asking for an address may answer besides its own checks.
    AddressChangeProblems =
        MalformedJson, Unauthenticated, NoManageScope, TooManyChanges, BodyProblems
);

/// What these handlers answer a caller who is no one (`--auth off`).
const NO_ADDRESSES: &str = "sign in to change your addresses";

/// Records the change and queues the mail whose link applies it.
async fn request(
    api: &AddressApi,
    caller: &Caller,
    body: &serde_json::Value,
    slot: AddressSlot,
) -> ApiResult<Response> {
    let p = caller.signed(NO_ADDRESSES)?;
    let email = body_email(body)?;
    let store = &api.signin.accounts;
    let account = crate::access::own_account(store, p.account).await?;
    let current = match slot {
        AddressSlot::Primary => account.email.as_ref(),
        AddressSlot::Secondary => account.secondary_email.as_ref(),
    };
    if current.is_some_and(|c| c.key() == email.key()) {
        return Err(Error::invalid("email", "is the account's address already").into());
    }
    let log = api.signin.mail_log()?;
    if let Err(wait) = api.per_account.take(&p.account.to_string(), Instant::now()) {
        return Ok(too_many(wait, "address changes for this account"));
    }
    let key = mail_key(MailKind::VerifyEmail)?;
    let now = api.signin.settings.clock.now();
    let change = EmailChange {
        key: key.clone(),
        account: p.account,
        email: email.clone(),
        slot,
    };
    store.request_email_change(change, now).await?;
    let link = format!(
        "{}{VERIFY_PATH}?token={TOKEN_PLACEHOLDER}",
        api.signin.public_url
    );
    let text = format!(
        "Someone (we hope you) asked to use this address with an UdaConnect account. Confirm \
         it with this link:\n\n{link}\n\nThe link works once, for 15 minutes. If you did not \
         ask for it, ignore this mail: nothing changes.\n"
    );
    let mail = MailRequest::new(
        &key,
        email.as_str(),
        "Confirm your address for UdaConnect",
        &text,
        None,
        MailKind::VerifyEmail,
    )?
    .for_person(account.person);
    log.enqueue(&mail).await?;
    tracing::info!(account = p.account, slot = ?slot, "address change asked for");
    let sent = VerificationSent {
        status: "a link to confirm the address is on its way to it".into(),
    };
    Ok((StatusCode::ACCEPTED, Json(sent)).into_response())
}

/// An operation that asks for an address: the two differ only in the slot they fill and
/// what their answers say.
macro_rules! ask_for_address {
    ($(#[$doc:meta])* $method:ident $path:literal, $name:ident, $slot:ident, $sent:literal, $already:literal) => {
        $(#[$doc])*
        #[utoipa::path($method, path = $path, tag = "me",
            request_body = AddressBody,
            responses(
                (status = 202, description = $sent, body = VerificationSent),
                (status = 422, description = $already, body = Problem, content_type = "application/problem+json"),
                AddressChangeProblems,
            ))]
        pub async fn $name(
            State(api): State<Arc<AddressApi>>,
            caller: Caller,
            JsonBody(body): JsonBody,
        ) -> ApiResult<Response> {
            request(&api, &caller, &body, AddressSlot::$slot).await
        }
    };
}

ask_for_address!(
    /// Change the caller's primary address.
    ///
    /// Mails a link to the new address; the account keeps its address until the link is
    /// followed (and confirmed on the page it opens). Whether another account has the address is
    /// told only then (409), not to whoever asks here. At most 5 per account in 15 minutes.
    post "/api/me/email", change_email, Primary,
    "A link is on its way to the new address",
    "No email, not an address, or the account's address already"
);

ask_for_address!(
    /// Set the caller's secondary address.
    ///
    /// Mails a link to the address; it becomes the account's secondary address once the link is
    /// followed. At most 5 address changes per account in 15 minutes.
    put "/api/me/secondary-email", set_secondary_email, Secondary,
    "A link is on its way to the address",
    "No email, not an address, or the account's secondary address already"
);

/// Remove the caller's secondary address.
#[utoipa::path(delete, path = "/api/me/secondary-email", tag = "me",
    responses(
        (status = 204, description = "Removed"),
        Unauthenticated,
        NoManageScope,
        (status = 404, description = "The account has no secondary address", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove_secondary_email(Own(api, p): Own<AddressApi>) -> ApiResult<StatusCode> {
    if !api
        .signin
        .accounts
        .remove_secondary_email(p.account)
        .await?
    {
        return Err(Error::NotFound {
            what: "secondary address of account",
            id: p.account.to_string(),
        }
        .into());
    }
    tracing::info!(account = p.account, "secondary address removed");
    Ok(StatusCode::NO_CONTENT)
}

link_page!(
    /// The page an address's verification link opens.
    ///
    /// Shows a button that confirms the address (a POST); opening the page uses nothing up.
    verify_page, "/auth/verify-email", "me", VERIFY,
    "The token of the verification link (`uc_` and 43 characters)",
    "The page with the confirm button"
);

/// Confirm an address with a link's token.
///
/// Uses up the link and gives the account the address, verified. A link used before, expired
/// or unknown: 410; an address another account signs in with: 409, and the link still works.
#[utoipa::path(post, path = "/auth/verify-email", tag = "me",
    request_body(content = crate::signin::http::ConfirmForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The address is the account's", body = String, content_type = "text/html"),
        (status = 409, description = "Another account has this address", body = String, content_type = "text/html"),
        LinkRefusals,
    ))]
pub async fn verify(State(api): State<Arc<AddressApi>>, request: Request) -> Response {
    let token = match VERIFY.posted(request).await {
        Ok(t) => t,
        Err(refused) => return refused,
    };
    let now = api.signin.settings.clock.now();
    match api.signin.accounts.confirm_email_change(&token, now).await {
        Ok(Some(account)) => {
            // Sessions and tokens carry the account's role and person, not its address:
            // nothing cached needs forgetting.
            tracing::info!(account = account.id, "address confirmed");
            page::verified()
        }
        Ok(None) => VERIFY.refuse(
            StatusCode::GONE,
            "This link was used before, has expired, or is not known.",
        ),
        Err(Error::Conflict(_)) => VERIFY.refuse(
            StatusCode::CONFLICT,
            "Another UdaConnect account signs in with this address, so yours cannot use it.",
        ),
        Err(e) => {
            tracing::warn!(error = %e, "address not confirmed: store unavailable");
            page::unavailable()
        }
    }
}

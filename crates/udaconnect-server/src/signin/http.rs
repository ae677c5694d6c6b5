//! The sign-in routes: ask for a link, follow it (a page, then a POST that signs in), sign out.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use udaconnect_core::auth::{
    Account, Email, NewAccount, NewSession, Role, TokenSecret, SESSION_COOKIE,
};
use udaconnect_core::mail::MailKind;
use udaconnect_core::model::NewPerson;
use udaconnect_core::ports::{DynAccountStore, DynPersonStore};
use udaconnect_core::{Error, Result};

use super::page::{self, link_page, LinkRefusals, SIGN_IN};
use super::{send_link, SignInSettings, WindowLimiter, CONFIRM_PATH, SESSION_TTL};
use crate::access::authenticate::cookie;
use crate::access::{ruled, Authenticator, Caller};
use crate::http::guard::{json, too_many, ClientAddr};
use crate::http::openapi::{email_schema, token_schema, BodyProblems, MalformedJson};
use crate::http::problem::{ApiResult, Problem};
use crate::http::JsonBody;
use crate::mail::MailLog;

/// Links asked for one address within [`LIMIT_WINDOW`].
pub const PER_ADDRESS: usize = 5;
/// Sign-in requests from one client within [`LIMIT_WINDOW`].
pub const PER_CLIENT: usize = 20;
pub const LIMIT_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Sign-in requests accepted and waiting for their lookup and mail; past it, 503.
const QUEUE: usize = 256;

/// The sign-in side of person-api: its stores, the log its mails go on, and its limits.
pub struct SignInApi {
    pub accounts: DynAccountStore,
    /// For self-registration: the new account's person.
    pub persons: DynPersonStore,
    /// Where mail requests go; `None` when this process sends no mail (see
    /// [`SignInSettings::mails`]).
    pub log: Option<MailLog>,
    pub settings: SignInSettings,
    /// Where links point (the public URL, or the listen address).
    pub public_url: String,
    /// Forgets a signed-out session at once, rather than when its cached lookup expires.
    auth: Arc<Authenticator>,
    per_address: WindowLimiter,
    per_client: WindowLimiter,
    /// Addresses asked for, handled off the answer's path (see [`login`]).
    work: mpsc::Sender<Email>,
}

impl SignInApi {
    /// The API, and the task that handles accepted requests until `stop`.
    pub fn start(
        accounts: DynAccountStore,
        persons: DynPersonStore,
        log: Option<MailLog>,
        settings: SignInSettings,
        public_url: String,
        auth: Arc<Authenticator>,
        mut stop: watch::Receiver<bool>,
    ) -> (Arc<SignInApi>, JoinHandle<anyhow::Result<()>>) {
        let (work, mut queue) = mpsc::channel(QUEUE);
        let api = Arc::new(SignInApi {
            accounts,
            persons,
            log,
            settings,
            public_url,
            auth,
            per_address: WindowLimiter::new(PER_ADDRESS, LIMIT_WINDOW),
            per_client: WindowLimiter::new(PER_CLIENT, LIMIT_WINDOW),
            work,
        });
        let worker = api.clone();
        let task = tokio::spawn(async move {
            loop {
                let email = tokio::select! {
                    e = queue.recv() => match e {
                        Some(e) => e,
                        None => return Ok(()),
                    },
                    _ = stop.wait_for(|s| *s) => return Ok(()),
                };
                if let Err(e) = worker.handle_request(&email).await {
                    // The address is not logged: whether it has an account is not the log's.
                    tracing::warn!(error = %e, "sign-in request not handled");
                }
            }
        });
        (api, task)
    }

    /// A link for the account with `email`, or, with self-registration, for a new attendee.
    async fn handle_request(&self, email: &Email) -> Result<()> {
        let Some(log) = &self.log else {
            return Ok(());
        };
        let account = match self.accounts.account_by_email(email).await? {
            Some(a) => a,
            None if self.settings.self_registration => self.register(email).await?,
            None => return Ok(()),
        };
        send_link(log, &account, MailKind::SignIn, &self.public_url).await
    }

    /// A new attendee: a person named after the address, and their account.
    async fn register(&self, email: &Email) -> Result<Account> {
        let local = email.as_str().split('@').next().unwrap_or("attendee");
        let person = self
            .persons
            .create(NewPerson {
                first_name: local.chars().take(64).collect(),
                last_name: "-".into(),
                company_name: "-".into(),
            })
            .await?;
        tracing::info!(person_id = person.id, "attendee registered by sign-in");
        self.create_attendee(person.id, email).await
    }

    /// An attendee account for `person` with `email`, its address taken as verified once a
    /// link sent to it is followed.
    pub async fn create_attendee(&self, person: i64, email: &Email) -> Result<Account> {
        self.accounts
            .create_account(
                NewAccount {
                    person: Some(person),
                    email: Some(email.clone()),
                    email_verified: false,
                    secondary_email: None,
                    role: Role::Attendee,
                },
                self.settings.clock.now(),
            )
            .await
    }

    /// The log mail requests go on; unavailable where this process sends no mail.
    pub fn mail_log(&self) -> Result<&MailLog> {
        self.log.as_ref().ok_or_else(|| {
            Error::Unavailable("sign-in mails are off here: person-api needs --log".into())
        })
    }

    /// Queues the welcome mail of a new account.
    pub async fn welcome(&self, account: &Account) -> Result<()> {
        send_link(
            self.mail_log()?,
            account,
            MailKind::Welcome,
            &self.public_url,
        )
        .await
    }

    /// The client a request is counted against: the connection's peer, or behind a trusted
    /// proxy the address it forwarded for.
    fn client(&self, request_headers: &HeaderMap, peer: Option<IpAddr>) -> String {
        let forwarded = self
            .settings
            .trust_proxy
            .then(|| {
                request_headers
                    .get("x-forwarded-for")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.rsplit(',').next())
                    .and_then(|v| v.trim().parse::<IpAddr>().ok())
            })
            .flatten();
        match forwarded.or(peer) {
            Some(IpAddr::V6(v6)) => {
                // One subscriber usually holds a /64.
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            Some(ip) => ip.to_string(),
            None => "unknown".into(),
        }
    }
}

pub fn routes(api: Arc<SignInApi>) -> Router {
    ruled![
        "/api/auth/login" => RequestSignIn on Service: json(post(login)),
        "/api/auth/demo" => DemoSignIn on Service: get(demo),
        "/api/auth/logout" => SignOut on Service: post(logout),
        CONFIRM_PATH => ConfirmSignIn on Service: get(confirm_page),
        CONFIRM_PATH => ConfirmSignIn on Service: post(confirm),
    ]
    .with_state(api)
}

/// The answer to every accepted sign-in request.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginAccepted {
    #[schema(example = "if this address has an account, a sign-in link is on its way")]
    status: String,
}

/// Body of `POST /api/auth/login`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct LoginBody {
    /// The address to send a sign-in link to (at most 254 characters).
    #[schema(schema_with = email_schema)]
    email: String,
}

/// Ask for a sign-in link by e-mail.
///
/// Always 202 with the same body, whether or not the address has an account: the lookup and
/// the mail happen after the answer. A link works once, for 15 minutes. At most 5 requests per
/// address and 20 per client in 15 minutes.
#[utoipa::path(post, path = "/api/auth/login", tag = "sign-in",
    request_body = LoginBody,
    responses(
        (status = 202, description = "Accepted; a link is mailed if the address has an account", body = LoginAccepted),
        MalformedJson,
        (status = 422, description = "No email, or not an address", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over 5 requests for this address or 20 from this client in 15 minutes", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
        BodyProblems,
    ))]
pub async fn login(State(api): State<Arc<SignInApi>>, request: Request) -> Response {
    let peer = request
        .extensions()
        .get::<ClientAddr>()
        .map(|ClientAddr(a)| a.ip());
    let client = api.client(request.headers(), peer);
    let body = match <JsonBody as FromRequest<()>>::from_request(request, &()).await {
        Ok(JsonBody(b)) => b,
        Err(refused) => return refused,
    };
    let email = match body_email(&body) {
        Ok(e) => e,
        Err(e) => return crate::http::problem::ApiError(e).into_response(),
    };
    let now = Instant::now();
    if let Err(wait) = api.per_client.take(&client, now) {
        return too_many(wait, "sign-in requests from this client");
    }
    if let Err(wait) = api.per_address.take(&email.key(), now) {
        return too_many(wait, "sign-in requests for this address");
    }
    if api.work.try_send(email).is_err() {
        let mut r = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "urn:udaconnect:problem:unavailable",
            "too many sign-in requests waiting; retry shortly",
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return r;
    }
    let accepted = LoginAccepted {
        status: "if this address has an account, a sign-in link is on its way".into(),
    };
    (StatusCode::ACCEPTED, Json(accepted)).into_response()
}

/// One demo account's way in.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DemoLink {
    /// `organizer` or `attendee`.
    #[schema(example = "attendee")]
    role: &'static str,
    #[schema(example = "attendee@demo.udaconnect.test")]
    email: &'static str,
    /// The sign-in link: single use, valid 15 minutes.
    #[schema(example = "http://localhost:30000/auth/confirm?token=...")]
    url: String,
}

/// The answer of `GET /api/auth/demo`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DemoLinks {
    links: Vec<DemoLink>,
}

/// Sign-in links for the demo's organizer and attendee.
///
/// Only from `serve --demo`, and only to a browser on the server's own machine (a loopback
/// connection that no proxy forwarded): elsewhere a demo is entered by the links its command
/// printed, or by e-mail. Each call makes fresh links (single use, 15 minutes) and counts
/// against the client's 20 sign-in requests in 15 minutes.
#[utoipa::path(get, path = "/api/auth/demo", tag = "sign-in",
    responses(
        (status = 200, description = "The demo's links", body = DemoLinks),
        (status = 404, description = "Not a demo, or not asked from the server's machine", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over 20 sign-in requests from this client in 15 minutes", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    ))]
pub async fn demo(State(api): State<Arc<SignInApi>>, request: Request) -> Response {
    let Some(attendee) = api.settings.demo_attendee else {
        return not_offered("this server is not a demo (serve --demo)");
    };
    let peer = request
        .extensions()
        .get::<ClientAddr>()
        .map(|ClientAddr(a)| a.ip());
    // A proxy on this machine makes every client look local: what it forwarded is not.
    let forwarded = ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|h| request.headers().contains_key(*h));
    if forwarded || !peer.is_some_and(|ip| ip.is_loopback()) {
        return not_offered("demo sign-in links are offered only on the server's own machine");
    }
    let client = api.client(request.headers(), peer);
    if let Err(wait) = api.per_client.take(&client, Instant::now()) {
        return too_many(wait, "sign-in requests from this client");
    }
    let now = api.settings.clock.now();
    match super::demo_links(&api.accounts, attendee, &api.public_url, now).await {
        Ok(made) => {
            let links = made
                .into_iter()
                .map(|(role, url)| DemoLink {
                    role: role.as_str(),
                    email: match role {
                        Role::Organizer => super::DEMO_ORGANIZER,
                        _ => super::DEMO_ATTENDEE,
                    },
                    url,
                })
                .collect();
            Json(DemoLinks { links }).into_response()
        }
        Err(e) => crate::http::problem::ApiError(e).into_response(),
    }
}

fn not_offered(detail: &str) -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "urn:udaconnect:problem:not-found",
        detail,
    )
    .into_response()
}

/// The address of a body (`{"email": ...}`): a sign-in request's, or an address change's.
pub(super) fn body_email(body: &serde_json::Value) -> Result<Email> {
    match body.as_object().map(|o| o.get("email")) {
        None => Err(Error::bad_request(
            "body",
            r#"must be a JSON object ({"email": ...})"#,
        )),
        Some(None | Some(serde_json::Value::Null)) => Err(Error::invalid("email", "is required")),
        Some(Some(serde_json::Value::String(s))) => Email::parse(s),
        Some(Some(_)) => Err(Error::bad_request("email", "must be a string")),
    }
}

/// The query of `GET /auth/confirm`.
#[derive(serde::Deserialize)]
pub struct ConfirmQuery {
    pub(crate) token: String,
}

link_page!(
    /// The page a sign-in link opens.
    ///
    /// Shows a button that signs in (a POST); opening the page uses nothing up, so a mail scanner
    /// that fetches the link leaves it working. HTML, no script.
    confirm_page, "/auth/confirm", "sign-in", SIGN_IN,
    "The token of the sign-in link (`uc_` and 43 characters)",
    "The page with the sign-in button"
);

/// Body of `POST /auth/confirm` (a form).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ConfirmForm {
    /// The token of the sign-in link.
    #[schema(schema_with = token_schema)]
    token: String,
}

/// Sign in with a link's token.
///
/// Uses up the link and starts a browser session: the `uc_session` cookie (HttpOnly,
/// SameSite=Lax, Path=/, Secure over HTTPS), then 303 to `/`. A link used before, expired or
/// unknown: 410, nothing created.
#[utoipa::path(post, path = "/auth/confirm", tag = "sign-in",
    request_body(content = ConfirmForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed in: the session cookie is set; to /",
            headers(("Set-Cookie" = String, description = "uc_session=...; HttpOnly; SameSite=Lax; Path=/"))),
        LinkRefusals,
    ))]
pub async fn confirm(State(api): State<Arc<SignInApi>>, request: Request) -> Response {
    let headers = request.headers().clone();
    let token = match SIGN_IN.posted(request).await {
        Ok(t) => t,
        Err(refused) => return refused,
    };
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    match sign_in(&api, &token, user_agent).await {
        Ok(Some(session)) => {
            let secure = secure_request(&api.settings, &headers);
            let cookie = format!(
                "{SESSION_COOKIE}={}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{}",
                session.expose(),
                SESSION_TTL.num_seconds(),
                if secure { "; Secure" } else { "" }
            );
            let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Ok(None) => SIGN_IN.refuse(
            StatusCode::GONE,
            "This sign-in link was used before, has expired, or is not known.",
        ),
        Err(e) => {
            tracing::warn!(error = %e, "sign-in not confirmed: store unavailable");
            page::unavailable()
        }
    }
}

/// Uses up the link and opens a session for its address's account; `None` when the link does
/// not work or its address has no account.
async fn sign_in(
    api: &SignInApi,
    token: &TokenSecret,
    user_agent: Option<&str>,
) -> Result<Option<TokenSecret>> {
    let now = api.settings.clock.now();
    let Some(email) = api.accounts.consume_sign_in_link(token, now).await? else {
        return Ok(None);
    };
    let Some(account) = api.accounts.account_by_email(&email).await? else {
        return Ok(None);
    };
    let session = NewSession::new(account.id, user_agent, now + SESSION_TTL);
    let session = api.accounts.start_session(session, now).await?;
    tracing::info!(account_id = account.id, role = %account.role, "signed in");
    Ok(Some(session))
}

/// Whether the request came over HTTPS: said by a trusted proxy, or the URL's scheme.
pub(super) fn secure_request(settings: &SignInSettings, headers: &HeaderMap) -> bool {
    settings.trust_proxy
        && headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// The session id in the request's cookies, if any.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<TokenSecret> {
    cookie(headers, SESSION_COOKIE).and_then(TokenSecret::parse)
}

/// Sign out.
///
/// Ends the session of the `uc_session` cookie and clears the cookie. A caller signed in by a
/// token alone has no session to end: 204, the token keeps working.
#[utoipa::path(post, path = "/api/auth/logout", tag = "sign-in",
    responses(
        (status = 204, description = "Signed out; the cookie is cleared",
            headers(("Set-Cookie" = String, description = "uc_session=; Max-Age=0"))),
        (status = 401, description = "No session to end (none sent, expired or ended before)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn logout(
    State(api): State<Arc<SignInApi>>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let now = api.settings.clock.now();
    let session = session_cookie(&headers);
    let account = match (caller, &session) {
        (Caller::Signed(p), _) => p.account,
        // --auth off: the cookie alone says whose session ends.
        (Caller::Open | Caller::Nobody, Some(s)) => api
            .accounts
            .verify_session(s, now)
            .await?
            .map(|p| p.account)
            .ok_or_else(|| Error::Unauthenticated("the session has ended; sign in again".into()))?,
        (Caller::Open | Caller::Nobody, None) => {
            return Err(Error::Unauthenticated("no session to end: sign in first".into()).into())
        }
    };
    if let Some(s) = &session {
        api.accounts.revoke_session(s, now).await?;
    }
    // This process's cache would otherwise believe the ended session for a few seconds more.
    api.auth.forget_account(account);
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("uc_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"),
    );
    Ok(r)
}

//! Who is asking, and whether they may: the authentication layer every HTTP role sits in
//! (and gRPC's equivalent), and the rule each route declares where it is declared.
//!
//! A request's credential (`Authorization: Bearer uc_...`, or the session cookie) becomes a
//! [`Caller`] once, in [`authenticate`]; each route states its [`Action`] and where its
//! resource is ([`rule`]; a role lists its routes so in one table, `ruled!`), and the one
//! decision point, [`authorize`], answers. A route that answers without having declared a
//! rule is turned into an error by the layer, so the authorization matrix test finds it.
//!
//! - [`authenticate`]: the credential read, looked up (with a short cache), and CSRF.
//! - [`audit`]: the audit log's writer, which writes the rows of staff reads waiting at once
//!   in one transaction.
//! - [`me`]: `/api/me` and the caller's own tokens.
//! - [`visibility`]: whether the people the caller met may see who the caller is.
//! - [`sessions`]: the caller's browser sessions, listed and ended.
//! - [`accounts`]: every account and its role, for admins.

pub mod accounts;
pub mod audit;
pub mod authenticate;
pub mod me;
pub mod sessions;
pub mod visibility;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Router;
use udaconnect_core::auth::{authorize, Account, AccountId, Action, Principal, Resource};
use udaconnect_core::ports::DynAccountStore;
use udaconnect_core::{validate, Error, Result};

use crate::http::problem::ApiError;

pub use authenticate::{Authenticator, GatewayTrust};

/// Whether requests must say who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Every route but the public ones needs a credential (the default, in both modes).
    #[default]
    On,
    /// The original open contract, for its old clients; only on loopback addresses.
    Off,
}

impl std::str::FromStr for AuthMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<AuthMode, String> {
        match s.trim() {
            "on" => Ok(AuthMode::On),
            "off" => Ok(AuthMode::Off),
            other => Err(format!("unknown auth mode '{other}': use on or off")),
        }
    }
}

/// Refuses `--auth off` unless every address the process listens on is loopback: an open
/// trail of everyone's whereabouts must not be reachable from the network.
pub fn check_open_listeners(mode: AuthMode, listeners: &[SocketAddr]) -> anyhow::Result<()> {
    if mode == AuthMode::On {
        return Ok(());
    }
    if let Some(open) = listeners.iter().find(|a| !a.ip().is_loopback()) {
        anyhow::bail!(
            "--auth off serves every attendee's data to anyone who can connect, so it is only \
             allowed on loopback addresses; {open} is not one (listen on 127.0.0.1, or leave \
             --auth on)"
        );
    }
    tracing::warn!(
        "authentication is off (--auth off): anyone who can reach this machine's loopback \
         addresses reads and writes every attendee's data"
    );
    Ok(())
}

/// Refuses, with `--auth on`, a role apart that takes API requests (web, and the roles
/// behind it) on an address other than loopback without the gateway's key: without one the
/// gateway cannot vouch for a caller, and a role's port would be a second way in beside it.
/// On loopback the roles look credentials up themselves, as before the gateway signed.
pub fn check_gateway_key(
    roles: &[crate::roles::Role],
    mode: AuthMode,
    gateway: &GatewayTrust,
    listen: SocketAddr,
) -> anyhow::Result<()> {
    use crate::roles::Role;
    let takes_api = roles
        .iter()
        .any(|r| *r == Role::Web || !r.spec().paths.is_empty());
    if mode == AuthMode::Off || gateway.key().is_some() || !takes_api {
        return Ok(());
    }
    if !listen.ip().is_loopback() {
        anyhow::bail!(
            "{listen} is not a loopback address, and without the gateway's key this role \
             cannot tell requests passed on by the web role from any other: give every role \
             the same key (--gateway-key-file, or UDACONNECT_GATEWAY_KEY from a Secret; \
             docs/deployment.md), or listen on 127.0.0.1"
        );
    }
    tracing::warn!(
        "no gateway key (--gateway-key-file): credentials are looked up by each role, \
         allowed only because this role listens on loopback"
    );
    Ok(())
}

/// Who is asking, as [`authenticate`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// No one is asked: `--auth off`, or the product itself (the demo conference).
    Open,
    /// No credential came with the request.
    Nobody,
    Signed(Principal),
}

impl Caller {
    /// Whether the caller may perform `action` on `resource` (always, when [`Caller::Open`]).
    pub fn may(&self, action: Action, resource: Resource) -> Result<()> {
        match self {
            Caller::Open => Ok(()),
            Caller::Nobody => Ok(authorize(None, action, resource)?),
            Caller::Signed(p) => Ok(authorize(Some(p), action, resource)?),
        }
    }

    /// The caller's principal, for a handler about the caller's own account: the rule found
    /// them signed in, but `--auth off` has no caller (401, saying `why`).
    pub fn signed(&self, why: &str) -> Result<Principal> {
        self.principal()
            .copied()
            .ok_or_else(|| Error::Unauthenticated(why.into()))
    }

    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Caller::Signed(p) => Some(p),
            Caller::Open | Caller::Nobody => None,
        }
    }

    /// The resource standing for "what is the caller's own" before a handler knows the real
    /// one: their person, or (with none) the service.
    pub fn own(&self) -> Resource {
        match self.principal().and_then(|p| p.person) {
            Some(person) => Resource::Person(person),
            None => Resource::Service,
        }
    }
}

/// Handlers read the caller the layer found; without the layer, nobody (fail closed).
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .copied()
            .unwrap_or(Caller::Nobody))
    }
}

/// An API whose handlers are about the caller's own account, and what they answer a caller
/// who is no one (`--auth off`).
pub trait OwnApi: Send + Sync + 'static {
    const NO_ONE: &'static str;
}

/// The API and the caller's principal, for a handler about the caller's own account: the
/// preamble such handlers share (see [`Caller::signed`]).
pub struct Own<T>(pub Arc<T>, pub Principal);

impl<T: OwnApi> FromRequestParts<Arc<T>> for Own<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        api: &Arc<T>,
    ) -> std::result::Result<Self, Self::Rejection> {
        let Ok(caller) = Caller::from_request_parts(parts, api).await;
        Ok(Own(api.clone(), caller.signed(T::NO_ONE)?))
    }
}

/// The caller's own account, as the store holds it now. One deleted since the credential was
/// read (by its holder, elsewhere) is 401: the credential no longer signs anyone in.
pub async fn own_account(store: &DynAccountStore, account: AccountId) -> Result<Account> {
    store.account(account).await?.ok_or_else(account_gone)
}

/// The answer to a caller whose account was deleted while they asked.
pub fn account_gone() -> Error {
    Error::Unauthenticated("the account no longer exists".into())
}

/// What a `/api/me/...` handler answers a caller who is no one (`--auth off`).
pub const NO_ME: &str = "sign in (or send a token) to have a 'me'";

/// The caller's own person, for `/api/me/...` handlers: 401 without a caller, 404 for an
/// account that has no person.
pub struct MyPerson(pub udaconnect_core::model::PersonId);

impl<S: Send + Sync> FromRequestParts<S> for MyPerson {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        let Ok(caller) = Caller::from_request_parts(parts, state).await;
        let p = caller.signed(NO_ME)?;
        p.person.map(MyPerson).ok_or_else(|| {
            ApiError(Error::NotFound {
                what: "person of account",
                id: p.account.to_string(),
            })
        })
    }
}

/// Where a route's resource is, for its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// Nothing in particular: a list, the venue, the service itself.
    Service,
    /// The person named by the path's `{id}`.
    PathPerson,
    /// The caller's own person (`/api/me/...`).
    MyPerson,
    /// The caller's own account (their tokens).
    MyAccount,
    /// A credential for the caller's own account in the caller's own role: the least a new
    /// token can be; the handler asks again for the role asked for.
    MyGrant,
    /// Known only to the handler (a location's person, each ping of a body): the rule refuses here whoever could not do this even to what is their
    /// own, and the handler asks again with the real resource.
    Handler,
}

/// Marks an answer as given under a declared rule (see [`authenticate`]).
#[derive(Debug, Clone, Copy)]
pub struct Ruled;

/// `route` with its access rule: `action` on the resource `on` names, decided before the
/// handler runs. Every route of every role is declared through this.
pub fn rule<S>(action: Action, on: On, route: MethodRouter<S>) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    route.route_layer(axum::middleware::from_fn(
        move |req: Request, next: Next| decide(action, on, req, next),
    ))
}

/// A role's routes, each declared on one line with its rule, as [`rule`] takes it:
///
/// ```ignore
/// ruled![
///     "/api/me" => GetMe on MyPerson: get(me),
///     "/api/me" => DeleteAccount on MyAccount: delete(delete_me),
/// ]
/// ```
///
/// `path => action on resource: method router`, the action an [`Action`] and the resource an
/// [`On`]; a path that takes several methods has one line per method.
macro_rules! ruled {
    ($($path:expr => $action:ident on $on:ident: $route:expr),+ $(,)?) => {
        $crate::access::rule_all([$((
            $path,
            udaconnect_core::auth::Action::$action,
            $crate::access::On::$on,
            $route,
        )),+])
    };
}
pub(crate) use ruled;

/// The router of `ruled!`'s lines: each `(path, action, on, route)` through [`rule`].
pub fn rule_all<S>(
    routes: impl IntoIterator<Item = (&'static str, Action, On, MethodRouter<S>)>,
) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    routes
        .into_iter()
        .fold(Router::new(), |router, (path, action, on, route)| {
            router.route(path, rule(action, on, route))
        })
}

/// `route` (the gateway's) answered by a role behind it, which authenticates the request and
/// decides by its own rule.
pub fn upstream<S>(route: MethodRouter<S>) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    // `layer`, not `route_layer`: the gateway's route is `any`, which has no method routes.
    ruled_elsewhere(route)
}

/// `route` that authenticates by its protocol's own credential (OwnTracks' Basic password,
/// the OsmAnd protocol's device id) and asks [`authorize`] itself, with the person it finds.
pub fn own_credential<S>(route: MethodRouter<S>) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    ruled_elsewhere(route)
}

/// `route` with its answers marked as ruled on, for a rule that is not a [`rule`] layer.
fn ruled_elsewhere<S>(route: MethodRouter<S>) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    route.layer(axum::middleware::map_response(
        |mut response: Response| async move {
            response.extensions_mut().insert(Ruled);
            response
        },
    ))
}

async fn decide(action: Action, on: On, request: Request, next: Next) -> Response {
    let auth = request.extensions().get::<Arc<Authenticator>>().cloned();
    let auth_for_audit = auth.clone().filter(|_| on == On::PathPerson);
    let (mut parts, body) = request.into_parts();
    let caller = match auth {
        // Public: whoever asks, nothing to look up.
        Some(_) if action.is_public() => Caller::Nobody,
        Some(auth) => match authenticate::caller_of(
            &auth,
            action,
            &parts.method,
            parts.uri.path_and_query().map_or("/", |p| p.as_str()),
            &parts.headers,
        )
        .await
        {
            Ok(caller) => caller,
            Err(e) => return marked(ApiError(e).into_response()),
        },
        // Outside the layer: nobody (fail closed).
        None => Caller::Nobody,
    };
    parts.extensions.insert(caller);
    let resource = match on {
        On::Service => Ok(Resource::Service),
        On::MyPerson | On::Handler => Ok(caller.own()),
        On::MyAccount => Ok(caller
            .principal()
            .map_or(Resource::Service, |p| Resource::Account(p.account))),
        On::MyGrant => Ok(caller
            .principal()
            .map_or(Resource::Service, |p| Resource::Grant {
                account: p.account,
                role: p.role,
            })),
        On::PathPerson => path_person(&mut parts).await,
    };
    let person = match resource {
        Ok(Resource::Person(person)) => Some(person),
        _ => None,
    };
    let decided = match resource {
        // A path that names no person: whoever may not even ask about their own hears that
        // first, the rest what is wrong with the path.
        Err(e) => caller.may(action, caller.own()).and(Err(e)),
        Ok(resource) => caller.may(action, resource),
    };
    if let Err(e) = decided {
        return marked(ApiError(e).into_response());
    }
    let answer = next.run(Request::from_parts(parts, body));
    // A person's data read by someone else is recorded before the answer leaves. The row is
    // written while the read runs, so its sync to disk hides behind the query instead of
    // adding to it; a read that finds nothing (a 404, a 400) is recorded as asked.
    let (Some(auth), Some(person)) = (auth_for_audit.filter(|_| audited(action)), person) else {
        return marked(answer.await);
    };
    let (response, recorded) = tokio::join!(answer, auth.audit_read(&caller, action, person));
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "a read of a person's data was not recorded");
        return marked(ApiError(e).into_response());
    }
    marked(response)
}

/// The reads of one person's data (named by the path) that are written to the audit log
/// when someone else makes them (see [`Authenticator::audit_read`]).
fn audited(action: Action) -> bool {
    matches!(
        action,
        Action::GetPerson | Action::GetConnection | Action::GetContacts | Action::GetSummary
    )
}

fn marked(mut response: Response) -> Response {
    response.extensions_mut().insert(Ruled);
    response
}

/// The `{id}` of the path as a person.
async fn path_person(parts: &mut Parts) -> Result<Resource> {
    let Path(raw) = Path::<String>::from_request_parts(parts, &())
        .await
        .map_err(|e| Error::bad_request("id", e.body_text()))?;
    validate::path_id(&raw, "id").map(Resource::Person)
}

use super::account::AccountId;
use super::role::Role;
use crate::model::PersonId;

/// Declares [`Action`] and [`Action::ALL`] from one list, so a new action is in the table test
/// as soon as it exists.
macro_rules! actions {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// Every operation the API offers, over HTTP and gRPC, and the account operations of
        /// sign-in and self-service.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $( $(#[$doc])* $name, )*
        }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$name),*];
        }
    };
}

actions! {
    /// `GET /health`.
    Health,
    /// `GET /ready`.
    Ready,
    /// `GET /metrics`.
    Metrics,
    /// `GET /openapi.json` and the docs page: what the API is, no data.
    ApiDocs,
    /// The web page and its assets: the sign-in page must load before anyone signs in.
    WebPage,
    /// `POST /api/persons`.
    CreatePerson,
    /// Persons (and their e-mail addresses) from a CSV file.
    ImportPersons,
    /// `GET /api/persons`: the attendee directory.
    ListPersons,
    /// `GET /api/persons/{id}`.
    GetPerson,
    /// `POST /api/persons/lookup`: many persons by id.
    LookupPersons,
    /// `DELETE /api/persons/{id}`: erase a person, their pings and their account.
    ErasePerson,
    /// `POST /api/locations`.
    PostLocation,
    /// `POST /api/locations/batch`.
    PostLocationBatch,
    /// `GET /api/locations/{id}`; the resource is the location's person.
    GetLocation,
    /// `GET /api/persons/{id}/connection`.
    GetConnection,
    /// `GET /api/persons/{id}/contacts`.
    GetContacts,
    /// `GET /api/persons/{id}/summary`.
    GetSummary,
    /// `GET /api/live/stream`: every attendee's position as it comes.
    LiveStream,
    /// `GET /api/live/positions`.
    LivePositions,
    /// `GET /api/live/heat`.
    LiveHeat,
    /// `GET /api/live/zones`: people per room and booth.
    LiveZones,
    /// `GET /api/venue`: the plan, no person in it.
    GetVenue,
    /// gRPC `/LocationService/Create`, the original producers' call.
    GrpcLegacyCreate,
    /// gRPC `udaconnect.location.v1.LocationService/Create`.
    GrpcCreate,
    /// gRPC `udaconnect.location.v1.LocationService/Ingest`, batches on a stream.
    GrpcIngest,
    /// gRPC health.
    GrpcHealth,
    /// gRPC reflection: the services' descriptions, no data.
    GrpcReflection,
    /// `POST /api/auth/login`: ask for a sign-in link by e-mail.
    RequestSignIn,
    /// Follow a sign-in link: the page with a button, and its POST that signs in.
    ConfirmSignIn,
    /// `GET /api/auth/demo`: fresh sign-in links for the demo's accounts, with `--demo` and
    /// to a browser on the server's own machine only.
    DemoSignIn,
    /// Follow an address's verification link: the page with a button, and its POST that
    /// makes the address the account's. The link's token is the credential: it may be opened
    /// in a browser signed in as no one (the mail read on a phone).
    ConfirmEmail,
    /// End the current session.
    SignOut,
    /// `GET /api/me`: the caller's person and role.
    GetMe,
    /// The caller's tokens (no secret).
    ListTokens,
    /// A new token; the resource is a [`Resource::Grant`].
    CreateToken,
    RevokeToken,
    /// `GET /api/me/sessions`: the caller's live browser sessions.
    ListSessions,
    /// `DELETE /api/me/sessions/{id}`; the resource is the caller's account.
    RevokeSession,
    /// `POST /api/me/email`: change the primary address (verified by a link to the new one).
    ChangeEmail,
    /// `PUT` and `DELETE /api/me/secondary-email` (added once verified by a link).
    AddSecondaryEmail,
    /// Delete the account; at least every session and token goes at once.
    DeleteAccount,
    /// `GET /api/accounts`: every account and its role.
    ListAccounts,
    /// A new account, sent a sign-in link; the resource is [`Resource::NewAccount`].
    InviteAccount,
    /// `PUT /api/accounts/{id}/role`; the resource is a [`Resource::Grant`].
    ChangeRole,
    /// `GET /api/me/devices`: an account's tracker devices (no secret).
    ListDevices,
    /// `POST /api/me/devices`: register a tracker device; the resource is its person.
    CreateDevice,
    /// `DELETE /api/me/devices/{id}`; the resource is the device's account.
    RevokeDevice,
    /// `GET /api/me/visibility`: whether the people the caller met may see who they are.
    GetVisibility,
    /// `PUT /api/me/visibility`: the caller's choice of it.
    SetVisibility,
    /// `GET /api/me/reveals`: the requests to exchange e-mail addresses made by and to the
    /// caller, and the contacts the caller hid.
    ListReveals,
    /// `POST /api/me/contacts/{person_id}/reveal`: ask someone the caller met to exchange
    /// e-mail addresses.
    AskReveal,
    /// `DELETE /api/me/contacts/{person_id}/reveal`: withdraw that request.
    WithdrawReveal,
    /// `POST /api/me/contacts/{person_id}/hide`: take a contact off the caller's list (and
    /// dispute the meeting).
    HideContact,
    /// `DELETE /api/me/contacts/{person_id}/hide`: show it again.
    UnhideContact,
    /// `GET /api/me/contacts/{person_id}/evidence`: the caller's pings that made a contact.
    GetEvidence,
    /// `GET /api/me/export`: everything held about the caller's account and person.
    ExportMe,
    /// `POST /pub`: an OwnTracks message; the resource is the ping's person.
    PostOwnTracks,
    /// `/api/osmand` and the OsmAnd listener: a Traccar Client or OsmAnd report; the resource
    /// is the ping's person.
    PostOsmAnd,
}

/// What an action acts on, as far as the decision needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// Nothing in particular: a list, the venue, the service itself.
    Service,
    /// One person's data (their person, pings, meetings, contacts).
    Person(PersonId),
    /// One account (its tokens, sessions, addresses).
    Account(AccountId),
    /// A credential or a role given to an account.
    Grant { account: AccountId, role: Role },
    /// An account about to be created in this role.
    NewAccount(Role),
}

use super::action::{Action, Resource};
use super::role::{Principal, Role, Scope};

/// Why [`authorize`] said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// Nobody signed in, and the action needs someone (HTTP 401, gRPC UNAUTHENTICATED).
    #[error("sign-in required")]
    SignInRequired,
    /// The principal may not do this (HTTP 403, gRPC PERMISSION_DENIED).
    #[error("not allowed for this account")]
    Forbidden,
}

/// Who may perform an action; what the resource must be, where it matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Anyone, signed in or not.
    Public,
    /// Any account but a device.
    Member,
    /// Organizers and admins.
    Staff,
    Admin,
    /// An attendee for their own person; organizers and admins for anyone.
    OwnPersonOrStaff,
    /// An attendee for their own person; admins for anyone. Trails and meetings are not the
    /// organizers': they get the directory and aggregates.
    OwnPersonOrAdmin,
    /// An attendee or a device for their own person; admins for anyone.
    OwnPings,
    /// The account itself (not through a device token); admins for any account.
    OwnAccount,
    /// A credential for the account itself, no more than the principal holds; admins any.
    OwnGrant,
    /// Admins any role; organizers attendees.
    Invite,
}

/// Who may perform each action, and the scope a credential needs for it (`None`: none is
/// asked: public actions, signing out). Each action stands here once, so its two answers are
/// read and changed together.
fn policy(action: Action) -> (Rule, Option<Scope>) {
    use Scope::{Ingest, Manage, Read};
    match action {
        Action::Health
        | Action::Ready
        | Action::ApiDocs
        | Action::WebPage
        | Action::GrpcHealth
        | Action::GrpcReflection
        | Action::RequestSignIn
        | Action::ConfirmSignIn
        | Action::DemoSignIn => (Rule::Public, None),
        Action::ConfirmEmail => (Rule::Public, None),
        Action::SignOut => (Rule::Member, None),
        Action::GetMe | Action::GetVenue => (Rule::Member, Some(Read)),
        Action::Metrics
        | Action::ListPersons
        | Action::LookupPersons
        | Action::LiveStream
        | Action::LivePositions
        | Action::LiveHeat
        | Action::LiveZones => (Rule::Staff, Some(Read)),
        Action::CreatePerson | Action::ImportPersons => (Rule::Staff, Some(Manage)),
        Action::ListAccounts => (Rule::Admin, Some(Read)),
        Action::ChangeRole | Action::ErasePerson => (Rule::Admin, Some(Manage)),
        // A summary is the directory's view of one attendee: pings counted, first and last
        // seen; no place, no other person.
        Action::GetPerson | Action::GetSummary => (Rule::OwnPersonOrStaff, Some(Read)),
        Action::GetLocation
        | Action::GetConnection
        | Action::GetContacts
        | Action::ListReveals
        | Action::GetEvidence => (Rule::OwnPersonOrAdmin, Some(Read)),
        // A person's own meetings: what they ask of, or hide from, the people they met.
        Action::AskReveal
        | Action::WithdrawReveal
        | Action::HideContact
        | Action::UnhideContact => (Rule::OwnPersonOrAdmin, Some(Manage)),
        Action::PostLocation
        | Action::PostLocationBatch
        | Action::GrpcLegacyCreate
        | Action::GrpcCreate
        | Action::GrpcIngest
        | Action::PostOwnTracks
        | Action::PostOsmAnd => (Rule::OwnPings, Some(Ingest)),
        // Consent is the account holder's own, whatever their role; never a device's.
        Action::ListTokens
        | Action::ListSessions
        | Action::ListDevices
        | Action::GetVisibility
        | Action::ExportMe => (Rule::OwnAccount, Some(Read)),
        // A device is a credential for a person's pings: the person's own, or an admin's.
        Action::CreateDevice => (Rule::OwnPersonOrAdmin, Some(Manage)),
        Action::RevokeDevice
        | Action::RevokeToken
        | Action::RevokeSession
        | Action::ChangeEmail
        | Action::AddSecondaryEmail
        | Action::DeleteAccount
        | Action::SetVisibility => (Rule::OwnAccount, Some(Manage)),
        Action::CreateToken => (Rule::OwnGrant, Some(Manage)),
        Action::InviteAccount => (Rule::Invite, Some(Manage)),
    }
}

impl Action {
    /// The scope a credential needs for this action; `None` where none is asked (public
    /// actions, signing out).
    pub fn scope(self) -> Option<Scope> {
        policy(self).1
    }

    /// Whether anyone may do this without signing in.
    pub fn is_public(self) -> bool {
        policy(self).0 == Rule::Public
    }
}

/// Whether `principal` (`None`: nobody signed in) may perform `action` on `resource`. The one
/// decision point: every route asks it, and nothing else decides.
///
/// A resource of another kind than the action's rule expects (a person where an account is
/// meant) is refused to all but those allowed on every resource: a mistake in a route fails
/// closed.
pub fn authorize(
    principal: Option<&Principal>,
    action: Action,
    resource: Resource,
) -> Result<(), Denied> {
    let (rule, scope) = policy(action);
    if rule == Rule::Public {
        return Ok(());
    }
    let p = principal.ok_or(Denied::SignInRequired)?;
    let scoped = scope.is_none_or(|s| p.scopes.contains(s) && p.role.scopes().contains(s));
    if scoped && allowed(rule, p, resource) {
        Ok(())
    } else {
        Err(Denied::Forbidden)
    }
}

fn allowed(rule: Rule, p: &Principal, resource: Resource) -> bool {
    let own_person = matches!(resource, Resource::Person(id) if p.person == Some(id));
    let own_account = match resource {
        Resource::Account(id) | Resource::Grant { account: id, .. } => id == p.account,
        Resource::Service | Resource::Person(_) | Resource::NewAccount(_) => false,
    };
    let own_grant = |holder: Role| match resource {
        Resource::Grant { account, role } => account == p.account && holder.may_issue(role),
        Resource::Service
        | Resource::Person(_)
        | Resource::Account(_)
        | Resource::NewAccount(_) => false,
    };
    match p.role {
        Role::Admin => true,
        Role::Organizer => match rule {
            Rule::Public | Rule::Member | Rule::Staff | Rule::OwnPersonOrStaff => true,
            Rule::Admin | Rule::OwnPersonOrAdmin | Rule::OwnPings => false,
            Rule::OwnAccount => own_account,
            Rule::OwnGrant => own_grant(Role::Organizer),
            Rule::Invite => resource == Resource::NewAccount(Role::Attendee),
        },
        Role::Attendee => match rule {
            Rule::Public | Rule::Member => true,
            Rule::Staff | Rule::Admin | Rule::Invite => false,
            Rule::OwnPersonOrStaff | Rule::OwnPersonOrAdmin | Rule::OwnPings => own_person,
            Rule::OwnAccount => own_account,
            Rule::OwnGrant => own_grant(Role::Attendee),
        },
        Role::Device => match rule {
            Rule::Public => true,
            Rule::OwnPings => own_person,
            Rule::Member
            | Rule::Staff
            | Rule::Admin
            | Rule::OwnPersonOrStaff
            | Rule::OwnPersonOrAdmin
            | Rule::OwnAccount
            | Rule::OwnGrant
            | Rule::Invite => false,
        },
    }
}

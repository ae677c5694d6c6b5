use std::fmt;
use std::str::FromStr;

use super::account::AccountId;
use crate::model::PersonId;

/// What an account, or a credential of it, is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Everything, accounts and tokens included.
    Admin,
    /// The attendee directory, the venue live, heat, imports, person management.
    Organizer,
    /// One person's own data: their person, pings, meetings and contacts.
    Attendee,
    /// A phone or tracker: posts pings for one person, nothing else.
    Device,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Organizer, Role::Attendee, Role::Device];

    /// The name used on the command line, in stores and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Organizer => "organizer",
            Role::Attendee => "attendee",
            Role::Device => "device",
        }
    }

    /// Whether an account in this role may hold a credential acting in `credential`: never one
    /// that could do more than the account itself.
    pub fn may_issue(self, credential: Role) -> bool {
        match self {
            Role::Admin => true,
            Role::Organizer => {
                matches!(credential, Role::Organizer | Role::Attendee | Role::Device)
            }
            Role::Attendee => matches!(credential, Role::Attendee | Role::Device),
            Role::Device => credential == Role::Device,
        }
    }

    /// Whether a credential in this role acts for one person, and so needs one.
    pub fn needs_person(self) -> bool {
        match self {
            Role::Attendee | Role::Device => true,
            Role::Admin | Role::Organizer => false,
        }
    }

    /// The scopes a credential in this role can use: a device only ever posts pings.
    pub fn scopes(self) -> Scopes {
        match self {
            Role::Device => Scopes::only(Scope::Ingest),
            Role::Admin | Role::Organizer | Role::Attendee => Scopes::ALL,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role '{s}': use admin, organizer, attendee or device"))
    }
}

/// A kind of work a credential may be limited to, whatever its role allows: a token for a
/// script that only reads, or one that only posts pings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Reading data.
    Read,
    /// Posting pings.
    Ingest,
    /// Changing persons, accounts and credentials.
    Manage,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Ingest, Scope::Manage];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Ingest => "ingest",
            Scope::Manage => "manage",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Scope::Read => 1,
            Scope::Ingest => 2,
            Scope::Manage => 4,
        }
    }
}

/// A set of [`Scope`]s; written as their names joined by commas (`read,ingest`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

impl Scopes {
    pub const ALL: Scopes = Scopes(1 | 2 | 4);
    pub const NONE: Scopes = Scopes(0);

    pub fn only(scope: Scope) -> Scopes {
        Scopes(scope.bit())
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn with(self, scope: Scope) -> Scopes {
        Scopes(self.0 | scope.bit())
    }

    /// The scopes in both sets.
    pub fn and(self, other: Scopes) -> Scopes {
        Scopes(self.0 & other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(","))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({self})")
    }
}

impl FromStr for Scopes {
    type Err = String;
    fn from_str(s: &str) -> Result<Scopes, String> {
        s.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .try_fold(Scopes::NONE, |set, name| {
                Scope::ALL
                    .into_iter()
                    .find(|s| s.as_str() == name)
                    .map(|s| set.with(s))
                    .ok_or_else(|| format!("unknown scope '{name}': use read, ingest or manage"))
            })
    }
}

/// Who is asking: an account, acting through one credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub account: AccountId,
    /// The person the credential acts for (an attendee's own, a device's one), if any.
    pub person: Option<PersonId>,
    /// The credential's role, never above the account's.
    pub role: Role,
    /// What the credential may be used for, within its role.
    pub scopes: Scopes,
}

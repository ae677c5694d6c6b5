//! The audit log: every read of one person's data by someone else (an organizer or an admin),
//! kept so the person can see in their export who looked at them.

use chrono::{DateTime, Utc};

use crate::auth::{AccountId, Action, Principal, Role};
use crate::model::PersonId;

/// Most audit rows one read of them answers: a person's export lists at most this many, the
/// newest kept (a person read more often than this is told how many were left out).
pub const MAX_AUDIT_ROWS: usize = 10_000;

/// One read of a person's data by another account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Whose data was read.
    pub person: PersonId,
    /// Who read it: the account, and the role its credential acted in.
    pub reader: AccountId,
    pub role: Role,
    /// What was read: the action's name (`GetContacts`, `GetSummary`, ...).
    pub action: String,
    pub at: DateTime<Utc>,
}

impl AuditEntry {
    /// The entry for `principal` performing `action` on `person`'s data, or `None` when the
    /// read is not audited: a person reading their own data, or a role that reads no one
    /// else's (attendees and devices).
    pub fn of_read(
        principal: &Principal,
        action: Action,
        person: PersonId,
        at: DateTime<Utc>,
    ) -> Option<AuditEntry> {
        let staff = matches!(principal.role, Role::Admin | Role::Organizer);
        (staff && principal.person != Some(person)).then(|| AuditEntry {
            person,
            reader: principal.account,
            role: principal.role,
            action: format!("{action:?}"),
            at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Scopes;

    fn principal(role: Role, person: Option<PersonId>) -> Principal {
        Principal {
            account: 7,
            person,
            role,
            scopes: Scopes::ALL,
        }
    }

    #[test]
    fn only_staff_reading_someone_else_is_audited() {
        let now = Utc::now();
        let read = |p: &Principal| AuditEntry::of_read(p, Action::GetContacts, 3, now);
        let entry = read(&principal(Role::Admin, None)).expect("an admin's read is audited");
        assert_eq!((entry.person, entry.reader), (3, 7));
        assert_eq!(
            (entry.role, entry.action.as_str()),
            (Role::Admin, "GetContacts")
        );
        assert!(read(&principal(Role::Organizer, Some(4))).is_some());
        assert!(
            read(&principal(Role::Organizer, Some(3))).is_none(),
            "their own"
        );
        assert!(read(&principal(Role::Attendee, Some(3))).is_none());
        assert!(read(&principal(Role::Device, Some(3))).is_none());
    }
}

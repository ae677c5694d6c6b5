//! What both account stores share: how scopes are written, how often a token's use is
//! recorded, and which clash a unique index reports.

use chrono::TimeDelta;
use udaconnect_core::auth::Scopes;
use udaconnect_core::Error;

/// A token's last use is written again only once this much time has passed since the one
/// recorded: a token in steady use costs a read per request, not a write.
pub(crate) const LAST_USED_STEP: TimeDelta = TimeDelta::minutes(1);

/// Scopes as stored: their names joined by commas.
pub(crate) fn scopes_of(stored: &str) -> Result<Scopes, String> {
    stored.parse()
}

/// A unique index's refusal (its message or constraint name names the column) as the clash
/// it means.
pub(crate) fn conflict(which: &str) -> Error {
    if which.contains("email") {
        Error::Conflict("an account with this e-mail address exists".into())
    } else if which.contains("person") {
        Error::Conflict("this person has an account already".into())
    } else {
        Error::Conflict(format!("account store: {which}"))
    }
}

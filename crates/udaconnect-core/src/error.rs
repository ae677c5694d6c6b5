//! The domain error: every failure a port or a use case can report, each mapped to one
//! [`ErrorCode`] that transports turn into an HTTP status or a gRPC code.

use serde::Serialize;

/// One invalid field of a request: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldViolation {
    /// The field's name as the client sent it (`latitude`, `end_date`, `[3].person_id`).
    pub field: String,
    /// What is wrong, lowercase, without trailing punctuation.
    pub message: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Stable classification of an [`Error`], independent of any transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request is syntactically unreadable (malformed JSON, wrong types, bad query string).
    BadRequest,
    /// The request is readable but a value breaks a rule (range, unknown reference).
    InvalidInput,
    NotFound,
    /// The request clashes with what is stored (an address another account has).
    Conflict,
    /// No one is signed in, or the credential is unknown, expired or revoked.
    Unauthenticated,
    /// The caller is known and may not do this.
    Forbidden,
    /// A dependency (log, store) cannot take the request now; retrying later is safe.
    Unavailable,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("malformed request: {}", describe(.0))]
    BadRequest(Vec<FieldViolation>),
    #[error("invalid input: {}", describe(.0))]
    Invalid(Vec<FieldViolation>),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} unavailable")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::BadRequest(_) => ErrorCode::BadRequest,
            Error::Invalid(_) => ErrorCode::InvalidInput,
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::Unavailable(_) => ErrorCode::Unavailable,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The field violations behind a `BadRequest` or `Invalid` error, empty otherwise.
    pub fn violations(&self) -> &[FieldViolation] {
        match self {
            Error::BadRequest(v) | Error::Invalid(v) => v,
            _ => &[],
        }
    }

    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::BadRequest(vec![FieldViolation::new(field, message)])
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid(vec![FieldViolation::new(field, message)])
    }

    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        Error::NotFound {
            what,
            id: id.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::auth::Denied> for Error {
    fn from(d: crate::auth::Denied) -> Self {
        match d {
            crate::auth::Denied::SignInRequired => Error::Unauthenticated(d.to_string()),
            crate::auth::Denied::Forbidden => Error::Forbidden(d.to_string()),
        }
    }
}

/// Most characters of a client's bad value a message repeats: enough to recognise it, never a
/// whole body echoed back.
pub const SHOWN_CHARS: usize = 64;

/// A client's value quoted for a message, cut to its first [`SHOWN_CHARS`] characters (a cut
/// is marked `...` with the full length). Written only when the message is.
pub fn quoted(raw: &str) -> Quoted<'_> {
    Quoted(raw)
}

/// See [`quoted`].
#[derive(Debug, Clone, Copy)]
pub struct Quoted<'a>(&'a str);

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let raw = self.0;
        match raw.char_indices().nth(SHOWN_CHARS) {
            None => write!(f, "'{raw}'"),
            Some((cut, _)) => write!(
                f,
                "'{}...' ({} characters)",
                &raw[..cut],
                raw.chars().count()
            ),
        }
    }
}

/// Violations found so far while reading one request, split into the two classes of
/// [`Error`]: every violation is reported at once, each under its field.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub(crate) unreadable: Vec<FieldViolation>,
    pub(crate) invalid: Vec<FieldViolation>,
}

impl Findings {
    pub(crate) fn unreadable(&mut self, field: &str, message: impl Into<String>) {
        self.unreadable.push(FieldViolation::new(field, message));
    }

    pub(crate) fn invalid(&mut self, field: &str, message: impl Into<String>) {
        self.invalid.push(FieldViolation::new(field, message));
    }

    /// `value` of `field` checked by `rule`, a violation recorded as invalid.
    pub(crate) fn check<T, U>(
        &mut self,
        field: &str,
        value: T,
        rule: impl FnOnce(T) -> std::result::Result<U, String>,
    ) -> Option<U> {
        rule(value).map_err(|m| self.invalid(field, m)).ok()
    }

    /// `value` when nothing was found, else every violation. Unreadable input wins: a client
    /// must fix types before range rules make sense. (A value is missing only where a
    /// violation was recorded.)
    pub(crate) fn finish<T>(self, value: Option<T>) -> Result<T> {
        match value {
            Some(v) if self.unreadable.is_empty() && self.invalid.is_empty() => Ok(v),
            _ if !self.unreadable.is_empty() => {
                let mut all = self.unreadable;
                all.extend(self.invalid);
                Err(Error::BadRequest(all))
            }
            _ => Err(Error::Invalid(self.invalid)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_value_is_quoted_by_its_prefix() {
        assert_eq!(quoted("abc").to_string(), "'abc'");
        let exact = "é".repeat(SHOWN_CHARS);
        assert_eq!(quoted(&exact).to_string(), format!("'{exact}'"));
        let long = format!("{exact}xyz");
        assert_eq!(
            quoted(&long).to_string(),
            format!("'{exact}...' ({} characters)", SHOWN_CHARS + 3)
        );
        let huge = "9".repeat(1 << 20);
        assert!(quoted(&huge).to_string().len() < 100);
    }
}

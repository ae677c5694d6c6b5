//! Untrusted input to validated domain values.
//!
//! Bodies are read as [`serde_json::Value`] first and checked field by field, so every violation
//! names its field and all of them are reported at once (a serde type error would name a line and
//! column, and stop at the first). Two classes, as the transports report them:
//! [`Error::BadRequest`](crate::Error::BadRequest) for what cannot be read (not JSON, wrong JSON
//! types, unparsable query values) and [`Error::Invalid`](crate::Error::Invalid) for readable
//! values that break a rule (range, emptiness). The rules themselves are the domain types'
//! ([`crate::domain`]); reading here only finds the values they are given.
//! One shortcut: the single-ping endpoint first tries [`plain_new_location`], which takes
//! only pings the general reading accepts, as the same ping, without building the tree.
//!
//! # Layout
//! - `body.rs`: the bodies of a person and of a ping, the plain ping read straight into its
//!   fields, and a person or a ping whose fields came as text ([`text_person`],
//!   [`text_location`]: a CSV row).
//! - `batch.rs`: batches of pings, every bad item named by its index ([`BatchCheck`]).
//! - `csv_rows.rs`: the rows of the CSV import ([`PersonRows`], [`LocationRows`]).
//! - `grpc.rs`: pings as the gRPC calls decode them, the original's and v1's.
//! - `future.rs`: fix times too far ahead of the server's clock (the clock is the caller's).
//! - `query.rs`: path ids and the query strings of the connection, contacts and paging
//!   queries.

mod batch;
mod body;
mod csv_rows;
mod future;
mod grpc;
mod query;

pub use crate::domain::{DEFAULT_DISTANCE_M, MAX_DISTANCE_M, MAX_TIME_GAP_S};
pub use batch::{location_batch, location_item, BatchCheck, MAX_BATCH, MAX_LISTED};
pub use body::{
    integer, new_location, new_person, plain_new_location, text_location, text_person,
    MAX_TEXT_CHARS,
};
pub use csv_rows::{LocationRow, LocationRows, PersonRows, Row};
pub use future::{future_violations, too_far_ahead, DEFAULT_FUTURE_SKEW};
pub use grpc::{legacy_ping, timestamp_time, v1_batch, v1_ping, V1Ping};
pub use query::{
    connection_params, contact_params, paging_params, path_id, window_params, QueryParams,
    DEFAULT_MIN_DURATION_S,
};

pub(crate) use body::{as_object, json_type, PlainPing};

/// `text` without its surrounding blanks, when that is neither empty nor longer than `max`
/// characters; else the violation of `field`.
pub(crate) fn trimmed_text<'a>(text: &'a str, field: &str, max: usize) -> crate::Result<&'a str> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(crate::Error::invalid(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(crate::Error::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(trimmed)
}

/// The fields an error names, in order.
#[cfg(test)]
fn fields(e: &crate::Error) -> Vec<&str> {
    e.violations().iter().map(|v| v.field.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::trimmed_text;

    #[test]
    fn trimmed_text_is_neither_blank_nor_longer_than_its_bound() {
        assert_eq!(trimmed_text(" phone\n", "name", 5).unwrap(), "phone");
        assert_eq!(
            trimmed_text("éééé", "name", 4).unwrap(),
            "éééé",
            "characters, not bytes"
        );
        for (text, message) in [
            ("  ", "must not be empty"),
            ("phone", "must be at most 4 characters"),
        ] {
            let err = trimmed_text(text, "name", 4).unwrap_err();
            let violations = err.violations();
            assert_eq!(violations.len(), 1, "{text:?}");
            assert_eq!(
                (violations[0].field.as_str(), violations[0].message.as_str()),
                ("name", message)
            );
        }
    }
}

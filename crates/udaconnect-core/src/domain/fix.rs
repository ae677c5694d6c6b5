//! When a ping was taken.

use chrono::{DateTime, Utc};

use crate::time::{
    format_utc, in_supported_years, outside_years, parse_timestamp, to_micros, truncate_to_micros,
};

/// The time of a fix: an instant in the years 1970 to 9999, in whole microseconds. The same
/// rule holds however the time arrives: RFC 3339 text, a number of microseconds, or an instant
/// a transport decoded (a protobuf timestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FixTime(DateTime<Utc>);

impl FixTime {
    /// RFC 3339 text, as [`parse_timestamp`] reads it.
    pub fn parse(raw: &str) -> Result<Self, String> {
        parse_timestamp(raw).map(FixTime)
    }

    /// An instant, cut to whole microseconds.
    pub fn new(t: DateTime<Utc>) -> Result<Self, String> {
        in_supported_years(t, format_utc(t)).map(|t| FixTime(truncate_to_micros(t)))
    }

    /// Microseconds since 1970-01-01T00:00:00Z.
    pub fn from_micros(us: i64) -> Result<Self, String> {
        match DateTime::from_timestamp_micros(us) {
            Some(t) => Self::new(t),
            None => Err(outside_years(format_args!("{us} microseconds since 1970"))),
        }
    }

    pub fn get(self) -> DateTime<Utc> {
        self.0
    }

    pub fn micros(self) -> i64 {
        to_micros(self.0)
    }
}

//! Time on the wire and query windows.
//!
//! Input accepts RFC 3339 with or without an offset (none means UTC, as the original's clients
//! sent naive times); output is always UTC with `Z`. Internally time is microseconds since the
//! Unix epoch: the stores keep that precision and the contact engine compares integers.

use crate::error::quoted;
use chrono::{
    DateTime, Duration, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Timelike, Utc,
};

/// Microseconds since 1970-01-01T00:00:00Z.
pub type Micros = i64;

pub fn to_micros(t: DateTime<Utc>) -> Micros {
    t.timestamp_micros()
}

/// `t` cut to whole microseconds, the precision every store keeps. (Rounding by a duration
/// counts nanoseconds since 1970 in an `i64`, which ends in 2262: it would leave later times
/// uncut.)
pub fn truncate_to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = t.timestamp_subsec_nanos();
    t.with_nanosecond(nanos - nanos % 1000).unwrap_or(t)
}

pub fn from_micros(us: Micros) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `2020-08-18T10:37:06Z`, with fractional seconds only when they are not zero.
pub fn format_utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// `t` if it lies in the years accepted anywhere, 1970 to 9999 (they keep every timestamp
/// representable in microseconds and in every store's native type), else why not, naming the
/// time as `shown`.
pub(crate) fn in_supported_years(
    t: DateTime<Utc>,
    shown: impl std::fmt::Display,
) -> Result<DateTime<Utc>, String> {
    let min = Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap();
    let max = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap();
    if (min..=max).contains(&t) {
        Ok(t)
    } else {
        Err(outside_years(shown))
    }
}

/// Why a time named `shown` is not accepted (see [`in_supported_years`]).
pub(crate) fn outside_years(shown: impl std::fmt::Display) -> String {
    format!("{shown} is outside the years 1970 to 9999")
}

/// Parses an RFC 3339 timestamp; without an offset it is taken as UTC. A space instead of
/// `T` is accepted, as Python's `str(datetime)` writes it.
pub fn parse_timestamp(raw: &str) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    let parsed = DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M",
            ]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
            .map(|naive| naive.and_utc())
            .ok_or(())
        })
        .map_err(|_| format!("{} is not an RFC 3339 timestamp", quoted(raw)))?;
    in_supported_years(parsed, quoted(raw)).map(truncate_to_micros)
}

/// Parses a calendar date `YYYY-MM-DD`.
pub fn parse_date(raw: &str) -> Result<NaiveDate, String> {
    let date = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{} is not a date (YYYY-MM-DD)", quoted(raw)))?;
    let t = date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    in_supported_years(t, quoted(raw)).map(|_| date)
}

/// A bound of a query window as a client wrote it: a whole day or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Date(NaiveDate),
    Instant(DateTime<Utc>),
}

impl Bound {
    /// Reads a date (`2020-07-07`) or an RFC 3339 timestamp.
    pub fn parse(raw: &str) -> Result<Bound, String> {
        let trimmed = raw.trim();
        if trimmed.len() == 10 {
            return parse_date(trimmed).map(Bound::Date);
        }
        parse_timestamp(trimmed).map(Bound::Instant).map_err(|_| {
            format!(
                "{} is neither a date (YYYY-MM-DD) nor an RFC 3339 timestamp",
                quoted(raw)
            )
        })
    }

    /// As a window start: a date means its first instant.
    pub fn as_start(self) -> DateTime<Utc> {
        match self {
            Bound::Date(d) => d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
            Bound::Instant(t) => t,
        }
    }

    /// As an exclusive window end: a date includes that whole day, so the window ends at the
    /// next midnight.
    pub fn as_end(self) -> DateTime<Utc> {
        match self {
            Bound::Date(d) => {
                d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc() + Duration::days(1)
            }
            Bound::Instant(t) => t,
        }
    }
}

/// A half-open time window `[start, end)` in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Micros,
    pub end: Micros,
}

impl Window {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Window {
            start: to_micros(start),
            end: to_micros(end),
        }
    }

    /// Every representable instant.
    pub fn all() -> Self {
        Window {
            start: i64::MIN,
            end: i64::MAX,
        }
    }

    pub fn contains(&self, t: Micros) -> bool {
        self.start <= t && t < self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cut to the microsecond in every supported year, after 2262 too (where nanoseconds
    /// since 1970 no longer fit an `i64`).
    #[test]
    fn times_are_cut_to_the_microsecond_in_every_year() {
        for (raw, cut) in [
            ("1970-01-01T00:00:00.000000999Z", "1970-01-01T00:00:00Z"),
            (
                "2020-08-18T10:37:06.123456789Z",
                "2020-08-18T10:37:06.123456Z",
            ),
            (
                "2262-04-12T00:00:00.123456789Z",
                "2262-04-12T00:00:00.123456Z",
            ),
            (
                "9999-12-31T23:59:58.999999999Z",
                "9999-12-31T23:59:58.999999Z",
            ),
        ] {
            assert_eq!(format_utc(parse_timestamp(raw).unwrap()), cut);
        }
    }

    #[test]
    fn timestamps_with_and_without_offset() {
        let z = parse_timestamp("2020-08-18T10:37:06Z").unwrap();
        assert_eq!(format_utc(z), "2020-08-18T10:37:06Z");
        let naive = parse_timestamp("2020-08-18T10:37:06").unwrap();
        assert_eq!(z, naive);
        let offset = parse_timestamp("2020-08-18T12:37:06+02:00").unwrap();
        assert_eq!(z, offset);
        let spaced = parse_timestamp("2020-08-18 10:37:06.250000").unwrap();
        assert_eq!(format_utc(spaced), "2020-08-18T10:37:06.250Z");
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("2020-13-01T00:00:00Z").is_err());
        assert!(parse_timestamp("1960-01-01T00:00:00Z").is_err());
    }

    #[test]
    fn date_bounds_cover_whole_days() {
        let d = Bound::parse("2020-07-07").unwrap();
        assert_eq!(format_utc(d.as_start()), "2020-07-07T00:00:00Z");
        assert_eq!(format_utc(d.as_end()), "2020-07-08T00:00:00Z");
        let t = Bound::parse("2020-07-07T10:00:00Z").unwrap();
        assert_eq!(format_utc(t.as_end()), "2020-07-07T10:00:00Z");
        assert!(Bound::parse("2020-02-30").is_err());
        assert!(Bound::parse("07/07/2020").is_err());
    }
}

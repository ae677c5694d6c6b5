//! Pings timed in the future. A phone's clock can be off by a few hours (a time zone taken for
//! UTC), but a fix days ahead is a wrong clock or made up: stored, it would sit in every
//! window that reaches that far and meet pings that do not exist yet. Ingest refuses it, on
//! every transport, with the clock it is handed, so a test decides what time it is.

use chrono::{DateTime, TimeDelta, Utc};

use crate::error::FieldViolation;
use crate::model::NewLocation;

/// How far ahead of the server's clock a fix time may be, unless configured otherwise.
pub const DEFAULT_FUTURE_SKEW: TimeDelta = TimeDelta::days(1);

/// The rule for one ping: why it is refused when its fix time is more than `skew` after `now`.
pub fn too_far_ahead(ping: &NewLocation, now: DateTime<Utc>, skew: TimeDelta) -> Option<String> {
    let latest = now
        .checked_add_signed(skew)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    ping.creation_time().is_some_and(|t| t > latest).then(|| {
        format!(
            "is more than {} s ahead of the server's clock",
            skew.num_seconds()
        )
    })
}

/// The violations of `pings` whose fix time is more than `skew` after `now`, each named
/// `creation_time` (or `[i].creation_time` when `indexed`, as batches name items).
pub fn future_violations(
    pings: &[NewLocation],
    now: DateTime<Utc>,
    skew: TimeDelta,
    indexed: bool,
) -> Vec<FieldViolation> {
    pings
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let message = too_far_ahead(p, now, skew)?;
            let field = if indexed {
                format!("[{i}].creation_time")
            } else {
                "creation_time".to_string()
            };
            Some(FieldViolation::new(field, message))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FixTime;
    use crate::time::parse_timestamp;

    fn ping(at: Option<&str>) -> NewLocation {
        let t = at.map(|s| FixTime::parse(s).unwrap());
        NewLocation::parse(1, 10.0, 20.0, t).unwrap()
    }

    #[test]
    fn a_fix_beyond_the_skew_is_refused_and_named() {
        let now = parse_timestamp("2026-03-01T12:00:00Z").unwrap();
        let pings = [
            ping(Some("2026-03-02T12:00:00Z")), // exactly one day ahead: taken
            ping(Some("2026-03-02T12:00:00.000001Z")), // just beyond
            ping(None),                         // the time of ingest
            ping(Some("1999-01-01T00:00:00Z")),
            ping(Some("9999-12-31T23:59:59Z")),
        ];
        let found = future_violations(&pings, now, DEFAULT_FUTURE_SKEW, true);
        let fields: Vec<_> = found.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["[1].creation_time", "[4].creation_time"]);
        assert_eq!(
            found[0].message,
            "is more than 86400 s ahead of the server's clock"
        );
        let single = future_violations(&pings[1..2], now, DEFAULT_FUTURE_SKEW, false);
        assert_eq!(single[0].field, "creation_time");
        assert!(future_violations(&pings[..1], now, DEFAULT_FUTURE_SKEW, false).is_empty());
    }

    #[test]
    fn the_skew_and_the_clock_are_the_callers() {
        let now = parse_timestamp("2026-03-01T12:00:00Z").unwrap();
        let p = [ping(Some("2026-03-01T12:00:10Z"))];
        assert_eq!(too_far_ahead(&p[0], now, TimeDelta::seconds(10)), None);
        assert!(too_far_ahead(&p[0], now, TimeDelta::seconds(9)).is_some());
        let later = parse_timestamp("2026-03-01T12:00:01Z").unwrap();
        assert_eq!(too_far_ahead(&p[0], later, TimeDelta::seconds(9)), None);
        // A skew too large to add to the clock refuses nothing.
        assert_eq!(too_far_ahead(&p[0], now, TimeDelta::MAX), None);
    }
}

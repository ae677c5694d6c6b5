//! Path ids and the query strings of the connection, contacts and paging queries. Every
//! violation here is of the unreadable class: a query string is read and checked at once.

use std::collections::HashMap;

use crate::contact::ConnectionQuery;
use crate::domain::{Distance, TimeGap, MAX_TIME_GAP_S};
use crate::error::{quoted, Error, FieldViolation, Findings, Result};
use crate::model::{PersonId, MAX_ID};
use crate::time::{Bound, Window};
use crate::track::{defaults as track_defaults, TrackQuery};

/// A request's query string, parameter by parameter.
pub type QueryParams = HashMap<String, String>;

/// Parses an id taken from a URL path segment.
pub fn path_id(raw: &str, field: &str) -> Result<i64> {
    raw.parse::<i64>()
        .map_err(|_| Error::bad_request(field, format!("{} is not an integer id", quoted(raw))))
}

fn parse_bound(
    params: &QueryParams,
    field: &str,
    required: bool,
    f: &mut Findings,
) -> Option<Bound> {
    match params
        .get(field)
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        None => {
            if required {
                f.unreadable(field, "is required (YYYY-MM-DD)");
            }
            None
        }
        Some(raw) => match Bound::parse(raw) {
            Ok(b) => Some(b),
            Err(e) => {
                f.unreadable(field, e);
                None
            }
        },
    }
}

fn parse_number_param(params: &QueryParams, field: &str, f: &mut Findings) -> Option<f64> {
    let raw = params.get(field)?.trim();
    match raw.parse::<f64>() {
        Ok(v) if v.is_finite() => Some(v),
        _ => {
            f.unreadable(field, format!("{} is not a finite number", quoted(raw)));
            None
        }
    }
}

/// The window of a query from its `start_date`/`end_date` (or `start`/`end`) parameters; both
/// dates are inclusive.
pub fn window_params(
    params: &QueryParams,
    start_field: &str,
    end_field: &str,
    required: bool,
    f_out: &mut Vec<FieldViolation>,
) -> Option<Window> {
    let mut f = Findings::default();
    let start = parse_bound(params, start_field, required, &mut f);
    let end = parse_bound(params, end_field, required, &mut f);
    let window = match (start, end) {
        (Some(s), Some(e)) => {
            // A date end covers its whole day, so it is before the start when its next
            // midnight is not after the start.
            let before_start = match e {
                Bound::Date(_) => e.as_end() <= s.as_start(),
                Bound::Instant(_) => e.as_end() < s.as_start(),
            };
            let (s, e) = (s.as_start(), e.as_end());
            if before_start {
                f.unreadable(end_field, format!("must not be before {start_field}"));
                None
            } else {
                Some(Window::new(s, e))
            }
        }
        (None, None) if !required => Some(Window::all()),
        (Some(s), None) if !required => Some(Window {
            start: crate::time::to_micros(s.as_start()),
            end: i64::MAX,
        }),
        (None, Some(e)) if !required => Some(Window {
            start: i64::MIN,
            end: crate::time::to_micros(e.as_end()),
        }),
        _ => None,
    };
    f_out.extend(f.unreadable);
    f_out.extend(f.invalid);
    window
}

/// Validates the query string of `GET /api/persons/{id}/connection`: the query of
/// `person_id`, the path's person.
pub fn connection_params(params: &QueryParams, person_id: PersonId) -> Result<ConnectionQuery> {
    let mut violations = Vec::new();
    let window = window_params(params, "start_date", "end_date", true, &mut violations);
    let mut f = Findings::default();
    let distance_m = distance_param(params, &mut f);
    let max_time_gap_us = parse_number_param(params, "max_time_gap", &mut f)
        .and_then(|g| {
            TimeGap::parse(g)
                .map_err(|m| f.unreadable("max_time_gap", m))
                .ok()
        })
        .map(TimeGap::micros);
    read_all(window, violations, f, |window| ConnectionQuery {
        person_id,
        window,
        distance_m,
        max_time_gap_us,
    })
}

/// The query `make` builds once its window and every parameter were read, else every
/// violation: those of the window, then the others'.
fn read_all<T>(
    window: Option<Window>,
    mut violations: Vec<FieldViolation>,
    f: Findings,
    make: impl FnOnce(Window) -> T,
) -> Result<T> {
    violations.extend(f.unreadable);
    match window {
        Some(window) if violations.is_empty() => Ok(make(window)),
        _ => Err(Error::BadRequest(violations)),
    }
}

/// Default of the contacts query's `min_duration`.
pub const DEFAULT_MIN_DURATION_S: f64 = track_defaults::MIN_DURATION_S as f64;

fn bounded_seconds(
    params: &QueryParams,
    field: &str,
    default: f64,
    max: f64,
    f: &mut Findings,
) -> i64 {
    parse_number_param(params, field, f)
        .and_then(|v| {
            TimeGap::parse_at_most(v, max)
                .map_err(|m| f.unreadable(field, m))
                .ok()
        })
        .or_else(|| TimeGap::parse_at_most(default, max).ok())
        .map_or(0, TimeGap::micros)
}

fn distance_param(params: &QueryParams, f: &mut Findings) -> f64 {
    parse_number_param(params, "distance", f)
        .and_then(|d| {
            Distance::parse(d)
                .map_err(|m| f.unreadable("distance", m))
                .ok()
        })
        .unwrap_or(Distance::DEFAULT)
        .metres()
}

/// Validates the query string of `GET /api/persons/{id}/contacts`: `start`/`end` (dates or
/// RFC 3339; both optional, absent means unbounded), `distance`, `min_duration`,
/// `max_interpolation`, `ping_tolerance`, `join_gap`, `max_accuracy`. `max_time_gap`, the parameter of
/// contacts from coincident pings, is refused with the names of those that replace it. The
/// query is of `person_id`, the path's person.
pub fn contact_params(params: &QueryParams, person_id: PersonId) -> Result<TrackQuery> {
    let mut violations = Vec::new();
    let window = window_params(params, "start", "end", false, &mut violations);
    let mut f = Findings::default();
    let distance_m = distance_param(params, &mut f);
    if params.contains_key("max_time_gap") {
        f.unreadable(
            "max_time_gap",
            "is not a contacts parameter: contacts follow tracks, tuned by max_interpolation, \
             ping_tolerance and join_gap (seconds)",
        );
    }
    let mut seconds = |field, default: i64, max: i64| {
        bounded_seconds(params, field, default as f64, max as f64, &mut f)
    };
    let min_duration_us = seconds(
        "min_duration",
        track_defaults::MIN_DURATION_S,
        MAX_TIME_GAP_S as i64,
    );
    let max_interpolation_us = seconds(
        "max_interpolation",
        track_defaults::MAX_INTERPOLATION_S,
        track_defaults::MAX_INTERPOLATION_LIMIT_S,
    );
    let ping_tolerance_us = seconds(
        "ping_tolerance",
        track_defaults::PING_TOLERANCE_S,
        track_defaults::PING_TOLERANCE_LIMIT_S,
    );
    let join_gap_us = seconds(
        "join_gap",
        track_defaults::JOIN_GAP_S,
        track_defaults::JOIN_GAP_LIMIT_S,
    );
    let max_accuracy_m = max_accuracy_param(params, &mut f);
    read_all(window, violations, f, |window| TrackQuery {
        person_id,
        window,
        distance_m,
        min_duration_us,
        max_interpolation_us,
        ping_tolerance_us,
        join_gap_us,
        max_accuracy_m,
    })
}

/// `max_accuracy`: whole metres, 0 to [`track_defaults::MAX_ACCURACY_LIMIT_M`]; `None` when
/// absent (the server's default then applies).
fn max_accuracy_param(params: &QueryParams, f: &mut Findings) -> Option<u32> {
    let raw = params.get("max_accuracy")?.trim();
    let limit = track_defaults::MAX_ACCURACY_LIMIT_M;
    match raw.parse::<u32>() {
        Ok(m) if m <= limit => Some(m),
        _ => {
            f.unreadable(
                "max_accuracy",
                format!(
                    "{} is not a whole number of metres from 0 to {limit}",
                    quoted(raw)
                ),
            );
            None
        }
    }
}

/// Validates paging parameters: `limit` (1 to `max`, default `default`) and `cursor` (the last
/// id of the previous page: 0 to [`MAX_ID`]).
pub fn paging_params(
    params: &QueryParams,
    default: usize,
    max: usize,
) -> Result<(Option<PersonId>, usize)> {
    let mut violations = Vec::new();
    let limit = match params.get("limit").map(|s| s.trim()) {
        None | Some("") => default,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                violations.push(FieldViolation::new(
                    "limit",
                    format!("{} is not an integer from 1 to {max}", quoted(raw)),
                ));
                default
            }
        },
    };
    let cursor = match params.get("cursor").map(|s| s.trim()) {
        None | Some("") => None,
        Some(raw) => match raw.parse::<i64>() {
            Ok(id) if (0..=MAX_ID).contains(&id) => Some(id),
            _ => {
                violations.push(FieldViolation::new(
                    "cursor",
                    format!("{} is not a cursor from a previous page", quoted(raw)),
                ));
                None
            }
        },
    };
    if violations.is_empty() {
        Ok((cursor, limit))
    } else {
        Err(Error::BadRequest(violations))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::fields;

    fn q(pairs: &[(&str, &str)]) -> QueryParams {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn connection_params_rules() {
        let p = connection_params(
            &q(&[("start_date", "2020-01-01"), ("end_date", "2020-01-01")]),
            7,
        )
        .unwrap();
        assert_eq!(p.person_id, 7);
        assert_eq!(p.distance_m, 5.0);
        assert_eq!(p.window.end - p.window.start, 86_400_000_000);
        for (field, bad) in [
            ("distance", "0"),
            ("distance", "-1"),
            ("distance", "1000.5"),
            ("distance", "abc"),
            ("distance", "NaN"),
            ("max_time_gap", "-1"),
            ("max_time_gap", "1e300"),
        ] {
            let e = connection_params(
                &q(&[
                    ("start_date", "2020-01-01"),
                    ("end_date", "2020-01-02"),
                    (field, bad),
                ]),
                7,
            )
            .unwrap_err();
            assert_eq!(fields(&e), [field], "{field}={bad}");
        }
        let e = connection_params(
            &q(&[("start_date", "2020-01-02"), ("end_date", "2020-01-01")]),
            7,
        )
        .unwrap_err();
        assert_eq!(fields(&e), ["end_date"]);
        let e = connection_params(&q(&[("end_date", "2020-31-01")]), 7).unwrap_err();
        assert_eq!(fields(&e), ["start_date", "end_date"]);
    }

    #[test]
    fn contact_params_rules() {
        let p = contact_params(&q(&[]), 7).unwrap();
        assert_eq!(p.person_id, 7);
        assert_eq!(p.window, Window::all());
        assert_eq!(
            (
                p.distance_m,
                p.min_duration_us,
                p.max_interpolation_us,
                p.ping_tolerance_us,
                p.join_gap_us
            ),
            (5.0, 120_000_000, 300_000_000, 30_000_000, 120_000_000)
        );
        assert_eq!(p, TrackQuery::new(7, Window::all()));
        let p = contact_params(
            &q(&[
                ("start", "2020-07-07"),
                ("end", "2020-07-07T12:00:00Z"),
                ("max_interpolation", "90"),
                ("ping_tolerance", "0"),
                ("join_gap", "3600"),
                ("max_accuracy", "500"),
            ]),
            7,
        )
        .unwrap();
        assert_eq!(p.max_accuracy_m, Some(500));
        assert_eq!(p.window.end - p.window.start, 12 * 3_600_000_000);
        assert_eq!(
            (p.max_interpolation_us, p.ping_tolerance_us, p.join_gap_us),
            (90_000_000, 0, 3_600_000_000)
        );
        let p = contact_params(&q(&[("end", "2020-07-07")]), 7).unwrap();
        assert_eq!(p.window.start, i64::MIN);
        for (field, bad) in [
            ("max_time_gap", "60"),
            ("max_interpolation", "3601"),
            ("max_interpolation", "-1"),
            ("ping_tolerance", "301"),
            ("join_gap", "nan"),
            ("join_gap", "3601"),
            ("max_accuracy", "1001"),
            ("max_accuracy", "-1"),
            ("max_accuracy", "2.5"),
            ("max_accuracy", ""),
            ("min_duration", "x"),
            ("distance", "0"),
            ("start", "2020-99-01"),
        ] {
            let e = contact_params(&q(&[(field, bad)]), 7).unwrap_err();
            assert_eq!(fields(&e), [field], "{field}={bad}");
        }
    }

    #[test]
    fn paging_rules() {
        assert_eq!(paging_params(&q(&[]), 100, 1000).unwrap(), (None, 100));
        assert_eq!(
            paging_params(&q(&[("limit", "2"), ("cursor", "8")]), 100, 1000).unwrap(),
            (Some(8), 2)
        );
        let e = paging_params(&q(&[("limit", "0"), ("cursor", "x")]), 100, 1000).unwrap_err();
        assert_eq!(fields(&e), ["limit", "cursor"]);
        let last = MAX_ID.to_string();
        assert_eq!(
            paging_params(&q(&[("cursor", &last)]), 100, 1000).unwrap(),
            (Some(MAX_ID), 100)
        );
        for bad in ["-1", "9007199254740992", "1001"] {
            let (field, raw) = if bad == "1001" {
                ("limit", bad)
            } else {
                ("cursor", bad)
            };
            let e = paging_params(&q(&[(field, raw)]), 100, 1000).unwrap_err();
            assert_eq!(fields(&e), [field], "{field}={raw}");
        }
    }
}

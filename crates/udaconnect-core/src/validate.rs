//! Untrusted input to validated domain values.
//!
//! Bodies are read as [`serde_json::Value`] first and checked field by field, so every violation
//! names its field and all of them are reported at once (a serde type error would name a line and
//! column, and stop at the first). Two classes, as the transports report them:
//! [`Error::BadRequest`] for what cannot be read (not JSON, wrong JSON types, unparsable query
//! values) and [`Error::Invalid`] for readable values that break a rule (range, emptiness).
//! One shortcut: the single-ping endpoint first tries [`plain_new_location`], which takes
//! only pings the general reading accepts, as the same ping, without building the tree.

use std::collections::HashMap;

use serde_json::Value;

use crate::error::{Error, FieldViolation, Result};
use crate::model::{NewLocation, NewPerson, PersonId, MAX_ID};
use crate::time::{parse_timestamp, Bound, Window};

/// Longest accepted name or company, in characters.
pub const MAX_TEXT_CHARS: usize = 256;
/// Largest distance a connection query may ask for, in metres.
pub const MAX_DISTANCE_M: f64 = 1000.0;
/// Distance used when a query names none, in metres.
pub const DEFAULT_DISTANCE_M: f64 = 5.0;
/// Largest `max_time_gap`, in seconds: a year, beyond which the condition means nothing.
pub const MAX_TIME_GAP_S: f64 = 366.0 * 86_400.0;

/// Violations found so far, split into the two classes.
#[derive(Debug, Default)]
struct Findings {
    unreadable: Vec<FieldViolation>,
    invalid: Vec<FieldViolation>,
}

impl Findings {
    fn unreadable(&mut self, field: &str, message: impl Into<String>) {
        self.unreadable.push(FieldViolation::new(field, message));
    }
    fn invalid(&mut self, field: &str, message: impl Into<String>) {
        self.invalid.push(FieldViolation::new(field, message));
    }
    /// Unreadable input wins: a client must fix types before range rules make sense.
    fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T> {
        if !self.unreadable.is_empty() {
            let mut all = self.unreadable;
            all.extend(self.invalid);
            Err(Error::BadRequest(all))
        } else if !self.invalid.is_empty() {
            Err(Error::Invalid(self.invalid))
        } else {
            Ok(value())
        }
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn as_object<'a>(body: &'a Value, what: &str) -> Result<&'a serde_json::Map<String, Value>> {
    body.as_object().ok_or_else(|| {
        Error::bad_request(
            "body",
            format!("must be a JSON object ({what}), not {}", json_type(body)),
        )
    })
}

fn text_field(obj: &serde_json::Map<String, Value>, field: &str, f: &mut Findings) -> String {
    match obj.get(field) {
        None | Some(Value::Null) => {
            f.invalid(field, "is required");
            String::new()
        }
        Some(Value::String(s)) => {
            if s.trim().is_empty() {
                f.invalid(field, "must not be empty");
            } else if s.chars().count() > MAX_TEXT_CHARS {
                f.invalid(
                    field,
                    format!("must be at most {MAX_TEXT_CHARS} characters"),
                );
            }
            s.clone()
        }
        Some(other) => {
            f.unreadable(field, format!("must be a string, not {}", json_type(other)));
            String::new()
        }
    }
}

/// Validates the body of `POST /api/persons`.
pub fn new_person(body: &Value) -> Result<NewPerson> {
    let obj = as_object(body, "a person")?;
    let mut f = Findings::default();
    let first_name = text_field(obj, "first_name", &mut f);
    let last_name = text_field(obj, "last_name", &mut f);
    let company_name = text_field(obj, "company_name", &mut f);
    f.finish(|| NewPerson {
        first_name,
        last_name,
        company_name,
    })
}

/// Reads a number sent as a JSON number or a numeric string (the original clients sent
/// coordinates as strings).
fn number_field(
    obj: &serde_json::Map<String, Value>,
    field: &str,
    f: &mut Findings,
) -> Option<f64> {
    let n = match obj.get(field) {
        None | Some(Value::Null) => {
            f.invalid(field, "is required");
            return None;
        }
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(n) => Some(n),
            Err(_) => {
                f.unreadable(field, format!("'{s}' is not a number"));
                return None;
            }
        },
        Some(other) => {
            f.unreadable(field, format!("must be a number, not {}", json_type(other)));
            return None;
        }
    };
    match n {
        Some(n) if n.is_finite() => Some(n),
        _ => {
            f.invalid(field, "must be a finite number");
            None
        }
    }
}

fn check_range(value: Option<f64>, field: &str, limit: f64, f: &mut Findings) -> f64 {
    match value {
        Some(v) if (-limit..=limit).contains(&v) => v,
        Some(v) => {
            f.invalid(field, format!("{v} is outside [-{limit}, {limit}]"));
            0.0
        }
        None => 0.0,
    }
}

/// Reads an id sent as a JSON integer or a string of digits.
fn id_field(obj: &serde_json::Map<String, Value>, field: &str, f: &mut Findings) -> i64 {
    let id = match obj.get(field) {
        None | Some(Value::Null) => {
            f.invalid(field, "is required");
            return 0;
        }
        Some(Value::Number(n)) => match n.as_i64() {
            Some(id) => id,
            None => {
                f.unreadable(field, format!("{n} is not an integer id"));
                return 0;
            }
        },
        Some(Value::String(s)) => match s.trim().parse::<i64>() {
            Ok(id) => id,
            Err(_) => {
                f.unreadable(field, format!("'{s}' is not an integer id"));
                return 0;
            }
        },
        Some(other) => {
            f.unreadable(
                field,
                format!("must be an integer, not {}", json_type(other)),
            );
            return 0;
        }
    };
    if !(1..=MAX_ID).contains(&id) {
        f.invalid(field, format!("{id} is not an id (1 to 2^53-1)"));
    }
    id
}

/// Validates one ping: the body of `POST /api/locations`, one item of a batch, or a record
/// taken off the log. Whether the person exists is the caller's check: it needs I/O.
pub fn new_location(body: &Value) -> Result<NewLocation> {
    let obj = as_object(body, "a location")?;
    let mut f = Findings::default();
    let person_id = id_field(obj, "person_id", &mut f);
    let lat = number_field(obj, "latitude", &mut f);
    let latitude = check_range(lat, "latitude", 90.0, &mut f);
    let lon = number_field(obj, "longitude", &mut f);
    let longitude = check_range(lon, "longitude", 180.0, &mut f);
    let creation_time = match obj.get("creation_time") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match parse_timestamp(s) {
            Ok(t) => Some(t),
            Err(e) => {
                f.unreadable("creation_time", e);
                None
            }
        },
        Some(other) => {
            f.unreadable(
                "creation_time",
                format!("must be an RFC 3339 string, not {}", json_type(other)),
            );
            None
        }
    };
    f.finish(|| NewLocation {
        person_id,
        latitude,
        longitude,
        creation_time,
    })
}

/// A ping as most clients send it: numbers as numbers, the time as a string or absent.
#[derive(serde::Deserialize)]
struct PlainPing<'a> {
    person_id: i64,
    latitude: f64,
    longitude: f64,
    #[serde(default, borrow)]
    creation_time: Option<std::borrow::Cow<'a, str>>,
}

/// The ping in a JSON text when it is in the plain shape and valid, read straight into its
/// fields: the single-ping endpoint's hot path, with no tree of values and keys allocated
/// per request. `None` for anything else (ids or coordinates sent as strings, any
/// violation, not JSON): [`new_location`] on the parsed body then gives the answer, and for
/// every body this accepts it gives the same ping.
pub fn plain_new_location(body: &[u8]) -> Option<NewLocation> {
    let ping: PlainPing<'_> = serde_json::from_slice(body).ok()?;
    let valid = (1..=MAX_ID).contains(&ping.person_id)
        && (-90.0..=90.0).contains(&ping.latitude)
        && (-180.0..=180.0).contains(&ping.longitude);
    if !valid {
        return None;
    }
    let creation_time = match ping.creation_time {
        None => None,
        Some(raw) => Some(parse_timestamp(&raw).ok()?),
    };
    Some(NewLocation {
        person_id: ping.person_id,
        latitude: ping.latitude,
        longitude: ping.longitude,
        creation_time,
    })
}

/// Most pings one batch may carry.
pub const MAX_BATCH: usize = 100_000;

/// A batch of pings read item by item: the items that passed, and every violation found.
#[derive(Debug, Default)]
pub struct BatchCheck {
    /// Items that passed, with their index.
    pub valid: Vec<(usize, NewLocation)>,
    findings: Findings,
}

impl BatchCheck {
    /// Adds a violation found later (an unknown person) for item `index`.
    pub fn invalid_item(&mut self, index: usize, field: &str, message: impl Into<String>) {
        self.findings
            .invalid(&format!("[{index}].{field}"), message);
    }

    /// All or nothing: the items when none failed, else every violation.
    pub fn finish(self) -> Result<Vec<NewLocation>> {
        let BatchCheck {
            valid,
            mut findings,
        } = self;
        findings.invalid.sort_by_key(|v| item_index(&v.field));
        findings.unreadable.sort_by_key(|v| item_index(&v.field));
        findings.finish(|| valid.into_iter().map(|(_, l)| l).collect())
    }
}

fn item_index(field: &str) -> usize {
    field
        .strip_prefix('[')
        .and_then(|f| f.split(']').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

/// Validates a batch of pings item by item: every bad item is reported, its fields prefixed by
/// its index (`[3].latitude`). Items that could not even be read as JSON come as `Err`.
pub fn location_batch(
    items: impl IntoIterator<Item = std::result::Result<Value, String>>,
) -> BatchCheck {
    let mut check = BatchCheck::default();
    let f = &mut check.findings;
    for (i, item) in items.into_iter().enumerate() {
        if i >= MAX_BATCH {
            f.invalid(
                "body",
                format!("more than {MAX_BATCH} items; split the batch"),
            );
            break;
        }
        let parsed = match item {
            Ok(v) => new_location(&v),
            Err(e) => Err(Error::bad_request("", format!("malformed JSON: {e}"))),
        };
        match parsed {
            Ok(l) => check.valid.push((i, l)),
            Err(e) => {
                let unreadable = matches!(e, Error::BadRequest(_));
                for v in e.violations() {
                    let field = if v.field.is_empty() || v.field == "body" {
                        format!("[{i}]")
                    } else {
                        format!("[{i}].{}", v.field)
                    };
                    if unreadable {
                        f.unreadable(&field, v.message.clone());
                    } else {
                        f.invalid(&field, v.message.clone());
                    }
                }
            }
        }
    }
    if check.valid.is_empty() && f.unreadable.is_empty() && f.invalid.is_empty() {
        f.invalid("body", "the batch is empty");
    }
    check
}

/// Parses an id taken from a URL path segment.
pub fn path_id(raw: &str, field: &str) -> Result<i64> {
    raw.parse::<i64>()
        .map_err(|_| Error::bad_request(field, format!("'{raw}' is not an integer id")))
}

/// A validated connection query, minus the person (a path parameter).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectionParams {
    pub window: Window,
    pub distance_m: f64,
    /// In microseconds; `None` means no time condition (the original semantics).
    pub max_time_gap_us: Option<i64>,
}

fn parse_bound(
    params: &HashMap<String, String>,
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

fn parse_number_param(
    params: &HashMap<String, String>,
    field: &str,
    f: &mut Findings,
) -> Option<f64> {
    let raw = params.get(field)?.trim();
    match raw.parse::<f64>() {
        Ok(v) if v.is_finite() => Some(v),
        _ => {
            f.unreadable(field, format!("'{raw}' is not a finite number"));
            None
        }
    }
}

/// The window of a query from its `start_date`/`end_date` (or `start`/`end`) parameters; both
/// dates are inclusive.
pub fn window_params(
    params: &HashMap<String, String>,
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

/// Validates the query string of `GET /api/persons/{id}/connection`.
pub fn connection_params(params: &HashMap<String, String>) -> Result<ConnectionParams> {
    let mut violations = Vec::new();
    let window = window_params(params, "start_date", "end_date", true, &mut violations);
    let mut f = Findings::default();
    let distance_m = distance_param(params, &mut f);
    let max_time_gap_us = match parse_number_param(params, "max_time_gap", &mut f) {
        None => None,
        Some(g) if (0.0..=MAX_TIME_GAP_S).contains(&g) => Some((g * 1e6).round() as i64),
        Some(g) => {
            f.unreadable(
                "max_time_gap",
                format!("{g} is outside [0, {MAX_TIME_GAP_S}] seconds"),
            );
            None
        }
    };
    violations.extend(f.unreadable);
    match window {
        Some(window) if violations.is_empty() => Ok(ConnectionParams {
            window,
            distance_m,
            max_time_gap_us,
        }),
        _ => Err(Error::BadRequest(violations)),
    }
}

/// Defaults of the contacts query.
pub const DEFAULT_CONTACT_GAP_S: f64 = 60.0;
pub const DEFAULT_MIN_DURATION_S: f64 = 120.0;
/// Largest gap a contacts query may use: co-presence an hour apart is not co-presence.
pub const MAX_CONTACT_GAP_S: f64 = 3600.0;

/// A validated contacts query, minus the person.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContactParams {
    pub window: Window,
    pub distance_m: f64,
    pub max_time_gap_us: i64,
    pub min_duration_us: i64,
}

fn bounded_seconds(
    params: &HashMap<String, String>,
    field: &str,
    default: f64,
    max: f64,
    f: &mut Findings,
) -> i64 {
    let s = match parse_number_param(params, field, f) {
        None => default,
        Some(v) if (0.0..=max).contains(&v) => v,
        Some(v) => {
            f.unreadable(field, format!("{v} is outside [0, {max}] seconds"));
            default
        }
    };
    (s * 1e6).round() as i64
}

fn distance_param(params: &HashMap<String, String>, f: &mut Findings) -> f64 {
    match parse_number_param(params, "distance", f) {
        None => DEFAULT_DISTANCE_M,
        Some(d) if d > 0.0 && d <= MAX_DISTANCE_M => d,
        Some(d) => {
            f.unreadable(
                "distance",
                format!("{d} is outside (0, {MAX_DISTANCE_M}] metres"),
            );
            DEFAULT_DISTANCE_M
        }
    }
}

/// Validates the query string of `GET /api/persons/{id}/contacts`: `start`/`end` (dates or
/// RFC 3339; both optional, absent means unbounded), `distance`, `max_time_gap`,
/// `min_duration`.
pub fn contact_params(params: &HashMap<String, String>) -> Result<ContactParams> {
    let mut violations = Vec::new();
    let window = window_params(params, "start", "end", false, &mut violations);
    let mut f = Findings::default();
    let distance_m = distance_param(params, &mut f);
    let max_time_gap_us = bounded_seconds(
        params,
        "max_time_gap",
        DEFAULT_CONTACT_GAP_S,
        MAX_CONTACT_GAP_S,
        &mut f,
    );
    let min_duration_us = bounded_seconds(
        params,
        "min_duration",
        DEFAULT_MIN_DURATION_S,
        MAX_TIME_GAP_S,
        &mut f,
    );
    violations.extend(f.unreadable);
    match window {
        Some(window) if violations.is_empty() => Ok(ContactParams {
            window,
            distance_m,
            max_time_gap_us,
            min_duration_us,
        }),
        _ => Err(Error::BadRequest(violations)),
    }
}

/// Validates paging parameters: `limit` (1 to `max`, default `default`) and `cursor` (the last
/// id of the previous page).
pub fn paging_params(
    params: &HashMap<String, String>,
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
                    format!("'{raw}' is not an integer from 1 to {max}"),
                ));
                default
            }
        },
    };
    let cursor = match params.get("cursor").map(|s| s.trim()) {
        None | Some("") => None,
        Some(raw) => match raw.parse::<i64>() {
            Ok(id) if id >= 0 => Some(id),
            _ => {
                violations.push(FieldViolation::new(
                    "cursor",
                    format!("'{raw}' is not a cursor from a previous page"),
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
    use proptest::prelude::*;
    use serde_json::json;

    fn fields(e: &Error) -> Vec<&str> {
        e.violations().iter().map(|v| v.field.as_str()).collect()
    }

    #[test]
    fn location_accepts_strings_and_numbers() {
        let l = new_location(&json!({"person_id": 5, "latitude": "37.5", "longitude": -122.2}))
            .unwrap();
        assert_eq!(
            (l.latitude, l.longitude, l.creation_time),
            (37.5, -122.2, None)
        );
        let l = new_location(&json!({"person_id": "5", "latitude": 1, "longitude": 2,
            "creation_time": "2020-08-18T10:37:06"}))
        .unwrap();
        assert_eq!(l.person_id, 5);
        assert!(l.creation_time.is_some());
    }

    #[test]
    fn location_names_every_bad_field() {
        let e = new_location(&json!({"latitude": 91, "longitude": -180.5})).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)));
        assert_eq!(fields(&e), ["person_id", "latitude", "longitude"]);
        let e = new_location(
            &json!({"person_id": 1.5, "latitude": true, "longitude": "x",
            "creation_time": "soon"}),
        )
        .unwrap_err();
        assert!(matches!(e, Error::BadRequest(_)));
        assert_eq!(
            fields(&e),
            ["person_id", "latitude", "longitude", "creation_time"]
        );
        let e = new_location(&json!([1, 2])).unwrap_err();
        assert_eq!(fields(&e), ["body"]);
        let e = new_location(&json!({"person_id": -3, "latitude": 0, "longitude": 0})).unwrap_err();
        assert_eq!(fields(&e), ["person_id"]);
    }

    #[test]
    fn person_requires_non_empty_strings() {
        let e = new_person(&json!({"first_name": " ", "last_name": 3})).unwrap_err();
        assert_eq!(fields(&e), ["last_name", "first_name", "company_name"]);
        assert!(
            new_person(&json!({"first_name": "A", "last_name": "B", "company_name": "C"})).is_ok()
        );
    }

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn connection_params_rules() {
        let p = connection_params(&q(&[
            ("start_date", "2020-01-01"),
            ("end_date", "2020-01-01"),
        ]))
        .unwrap();
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
            let e = connection_params(&q(&[
                ("start_date", "2020-01-01"),
                ("end_date", "2020-01-02"),
                (field, bad),
            ]))
            .unwrap_err();
            assert_eq!(fields(&e), [field], "{field}={bad}");
        }
        let e = connection_params(&q(&[
            ("start_date", "2020-01-02"),
            ("end_date", "2020-01-01"),
        ]))
        .unwrap_err();
        assert_eq!(fields(&e), ["end_date"]);
        let e = connection_params(&q(&[("end_date", "2020-31-01")])).unwrap_err();
        assert_eq!(fields(&e), ["start_date", "end_date"]);
    }

    #[test]
    fn contact_params_rules() {
        let p = contact_params(&q(&[])).unwrap();
        assert_eq!(p.window, Window::all());
        assert_eq!(
            (p.distance_m, p.max_time_gap_us, p.min_duration_us),
            (5.0, 60_000_000, 120_000_000)
        );
        let p = contact_params(&q(&[
            ("start", "2020-07-07"),
            ("end", "2020-07-07T12:00:00Z"),
        ]))
        .unwrap();
        assert_eq!(p.window.end - p.window.start, 12 * 3_600_000_000);
        let p = contact_params(&q(&[("end", "2020-07-07")])).unwrap();
        assert_eq!(p.window.start, i64::MIN);
        for (field, bad) in [
            ("max_time_gap", "3601"),
            ("max_time_gap", "-1"),
            ("min_duration", "x"),
            ("distance", "0"),
            ("start", "2020-99-01"),
        ] {
            let e = contact_params(&q(&[(field, bad)])).unwrap_err();
            assert_eq!(fields(&e), [field], "{field}={bad}");
        }
    }

    #[test]
    fn batches_report_every_bad_item_by_index() {
        let items = vec![
            Ok(json!({"person_id": 1, "latitude": 1, "longitude": 1})),
            Ok(json!({"person_id": 1, "latitude": 100, "longitude": 1})),
            Err("eof".to_string()),
            Ok(json!({"person_id": 1, "latitude": 1, "longitude": "east"})),
            Ok(json!(7)),
        ];
        let e = location_batch(items).finish().unwrap_err();
        assert!(matches!(e, Error::BadRequest(_)));
        assert_eq!(fields(&e), ["[2]", "[3].longitude", "[4]", "[1].latitude"]);
        let mut check = location_batch(vec![
            Ok(json!({"person_id": 1, "latitude": 1, "longitude": 1})),
            Ok(json!({"person_id": 1, "latitude": 100, "longitude": 1})),
        ]);
        check.invalid_item(0, "person_id", "no person with id 1");
        let e = check.finish().unwrap_err();
        assert!(matches!(e, Error::Invalid(_)));
        assert_eq!(fields(&e), ["[0].person_id", "[1].latitude"]);
        assert_eq!(
            fields(&location_batch(Vec::new()).finish().unwrap_err()),
            ["body"]
        );
        let one = location_batch(vec![Ok(
            json!({"person_id": 1, "latitude": 1, "longitude": 1}),
        )]);
        assert_eq!(one.finish().unwrap().len(), 1);
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
    }

    #[test]
    fn plain_ping_is_read_directly() {
        let body = br#"{"person_id": 5, "latitude": 37.55, "longitude": -122.29,
            "creation_time": "2020-08-18T10:37:06Z", "extra": [1, {"a": null}]}"#;
        let fast = plain_new_location(body).expect("plain shape");
        let general = new_location(&serde_json::from_slice(body).unwrap()).unwrap();
        assert_eq!(fast, general);
        // Shapes the general way accepts but the plain one leaves to it.
        for body in [
            &br#"{"person_id": "5", "latitude": 1, "longitude": 2}"#[..],
            br#"{"person_id": 5, "latitude": "1.5", "longitude": 2}"#,
            br#"{"person_id": 5, "latitude": 1, "longitude": 2, "person_id": 6}"#,
        ] {
            assert_eq!(plain_new_location(body), None);
            assert!(new_location(&serde_json::from_slice(body).unwrap()).is_ok());
        }
    }

    /// JSON text for a field: mostly `good`, often `near` (just outside the valid range), else
    /// one of the kinds clients get wrong (absent, null, other types, strings, too large, bad
    /// times).
    fn field_json(
        good: impl Strategy<Value = String> + 'static,
        near: impl Strategy<Value = String> + 'static,
    ) -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            24 => good.prop_map(Some),
            6 => near.prop_map(Some),
            1 => Just(None),
            1 => Just(Some("null".to_string())),
            1 => Just(Some("true".to_string())),
            1 => Just(Some("[]".to_string())),
            1 => (-200i64..200).prop_map(|n| Some(n.to_string())),
            1 => (-400f64..400.0).prop_map(|x| Some(format!("{x}"))),
            1 => (-400f64..400.0).prop_map(|x| Some(format!("\"{x}\""))),
            1 => Just(Some("9007199254740992".to_string())),
            1 => Just(Some("1e400".to_string())),
            1 => Just(Some("\"2020-08-18 10:37\"".to_string())),
            1 => Just(Some("\"1969-12-31T23:59:59Z\"".to_string())),
            1 => Just(Some("\"yesterday\"".to_string())),
        ]
    }

    fn coordinate(limit: f64) -> impl Strategy<Value = String> {
        prop_oneof![Just(limit), Just(-limit), -limit..=limit].prop_map(|x| format!("{x}"))
    }

    fn beyond(limit: f64) -> impl Strategy<Value = String> {
        (limit * 1.000_001..limit * 1.1, any::<bool>())
            .prop_map(|(x, negative)| format!("{}", if negative { -x } else { x }))
    }

    fn timestamp_json(secs: i64) -> String {
        let t = chrono::DateTime::from_timestamp(secs, 0).unwrap();
        format!("\"{}\"", t.to_rfc3339())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever the plain reading accepts, the general one accepts as the same ping.
        #[test]
        fn plain_reading_agrees_with_the_general_one(
            person in field_json(
                prop_oneof![Just(1), Just(MAX_ID), 1i64..100_000].prop_map(|n| n.to_string()),
                prop_oneof![Just(0), Just(-1), Just(MAX_ID + 1)].prop_map(|n| n.to_string()),
            ),
            lat in field_json(coordinate(90.0), beyond(90.0)),
            lon in field_json(coordinate(180.0), beyond(180.0)),
            time in field_json(
                (0i64..4_000_000_000).prop_map(timestamp_json),
                prop_oneof![Just(timestamp_json(-1)), Just(timestamp_json(253_402_300_800))],
            ),
        ) {
            let fields: Vec<String> = [("person_id", person), ("latitude", lat),
                ("longitude", lon), ("creation_time", time)]
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| format!("\"{k}\": {v}")))
                .collect();
            let body = format!("{{{}}}", fields.join(", "));
            if let Some(fast) = plain_new_location(body.as_bytes()) {
                let value: Value = serde_json::from_str(&body).unwrap();
                prop_assert_eq!(Some(fast), new_location(&value).ok());
            }
        }
    }
}

//! The bodies of a person and of a ping, read field by field.

use std::borrow::Cow;
use std::str::FromStr;

use serde_json::{Map, Number, Value};

use crate::domain::{ping_parts, FixTime, NewLocation, Read, Telemetry};
use crate::error::{quoted, Error, Findings, Result};
use crate::model::NewPerson;
use crate::tracker::App;

/// Longest accepted name or company, in characters.
pub const MAX_TEXT_CHARS: usize = 256;

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn as_object<'a>(body: &'a Value, what: &str) -> Result<&'a Map<String, Value>> {
    body.as_object().ok_or_else(|| {
        Error::bad_request(
            "body",
            format!("must be a JSON object ({what}), not {}", json_type(body)),
        )
    })
}

fn text_field(obj: &Map<String, Value>, field: &str, f: &mut Findings) -> String {
    match obj.get(field) {
        None | Some(Value::Null) => {
            f.invalid(field, "is required");
            String::new()
        }
        Some(Value::String(s)) => text(s, field, f),
        Some(other) => {
            f.unreadable(field, format!("must be a string, not {}", json_type(other)));
            String::new()
        }
    }
}

/// A name or company: not blank, at most [`MAX_TEXT_CHARS`] characters, no NUL (PostgreSQL
/// text cannot hold one).
fn text(s: &str, field: &str, f: &mut Findings) -> String {
    if s.trim().is_empty() {
        f.invalid(field, "must not be empty");
    } else if s.contains('\0') {
        f.invalid(field, "must not contain NUL (\\u0000)");
    } else if s.chars().count() > MAX_TEXT_CHARS {
        f.invalid(
            field,
            format!("must be at most {MAX_TEXT_CHARS} characters"),
        );
    }
    s.to_string()
}

/// A person whose fields came as text (a CSV row), checked as [`new_person`] checks them.
pub fn text_person(first_name: &str, last_name: &str, company_name: &str) -> Result<NewPerson> {
    let mut f = Findings::default();
    let person = NewPerson {
        first_name: text(first_name, "first_name", &mut f),
        last_name: text(last_name, "last_name", &mut f),
        company_name: text(company_name, "company_name", &mut f),
    };
    f.finish(Some(person))
}

/// Validates the body of `POST /api/persons`.
pub fn new_person(body: &Value) -> Result<NewPerson> {
    let obj = as_object(body, "a person")?;
    let mut f = Findings::default();
    let first_name = text_field(obj, "first_name", &mut f);
    let last_name = text_field(obj, "last_name", &mut f);
    let company_name = text_field(obj, "company_name", &mut f);
    f.finish(Some(NewPerson {
        first_name,
        last_name,
        company_name,
    }))
}

/// What messages call a number and an id (the value, and the kind of JSON expected).
const NUMBER: (&str, &str) = ("a number", "a number");
const ID: (&str, &str) = ("an integer id", "an integer");

/// Reads a number sent as a JSON number or a numeric string (the original clients sent
/// coordinates as strings). Whether it is finite is the rule's to say.
fn number_field(obj: &Map<String, Value>, field: &str, f: &mut Findings) -> Read<f64> {
    numeric_field(obj, field, f, NUMBER, |n| {
        Some(n.as_f64().unwrap_or(f64::NAN))
    })
}

/// Reads an id sent as a JSON integer or a string of digits.
fn id_field(obj: &Map<String, Value>, field: &str, f: &mut Findings) -> Read<i64> {
    numeric_field(obj, field, f, ID, integer)
}

/// A JSON number that is an integer: written as one, or with a zero fraction (`5.0`, which
/// JSON Schema counts as an integer and the original services accepted as 5).
pub fn integer(n: &Number) -> Option<i64> {
    // `i64::MAX as f64` is 2^63, the first float past i64: from it on, no id.
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|x| x.fract() == 0.0 && x.abs() < i64::MAX as f64)
            .map(|x| x as i64)
    })
}

/// Reads a field sent as a JSON number (taken by `of_number`) or as text; `names` are what
/// messages call a value of the kind and the kind of JSON expected.
fn numeric_field<T: FromStr>(
    obj: &Map<String, Value>,
    field: &str,
    f: &mut Findings,
    (noun, kind): (&str, &str),
    of_number: impl FnOnce(&Number) -> Option<T>,
) -> Read<T> {
    let read = match obj.get(field) {
        None | Some(Value::Null) => return Read::Missing,
        Some(Value::Number(n)) => of_number(n).ok_or_else(|| format!("{n} is not {noun}")),
        Some(Value::String(s)) => from_text(s, noun),
        Some(other) => Err(format!("must be {kind}, not {}", json_type(other))),
    };
    recorded(f, field, read)
}

/// A value of the kind `noun` names, written as text.
fn from_text<T: FromStr>(s: &str, noun: &str) -> std::result::Result<T, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{} is not {noun}", quoted(s)))
}

/// A field's value as read, a failure to read it recorded as unreadable.
fn recorded<T>(f: &mut Findings, field: &str, read: std::result::Result<T, String>) -> Read<T> {
    match read {
        Ok(v) => Read::Value(v),
        Err(m) => {
            f.unreadable(field, m);
            Read::Unreadable
        }
    }
}

/// A fix time written as RFC 3339 text, a failure recorded as unreadable.
fn time_text(s: &str, field: &str, f: &mut Findings) -> Option<FixTime> {
    FixTime::parse(s).map_err(|e| f.unreadable(field, e)).ok()
}

/// Reads a fix time sent as RFC 3339 text; absent or null means the time of ingest.
fn time_field(obj: &Map<String, Value>, field: &str, f: &mut Findings) -> Option<FixTime> {
    match obj.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => time_text(s, field, f),
        Some(other) => {
            f.unreadable(
                field,
                format!("must be an RFC 3339 string, not {}", json_type(other)),
            );
            None
        }
    }
}

/// Validates one ping: the body of `POST /api/locations`, one item of a batch, or a record
/// taken off the log. Whether the person exists is the caller's check: it needs I/O.
pub fn new_location(body: &Value) -> Result<NewLocation> {
    let obj = as_object(body, "a location")?;
    let mut f = Findings::default();
    // Each field read (types), then each checked by its rule, in field order.
    let parts = ping_parts(
        id_field(obj, "person_id", &mut f),
        number_field(obj, "latitude", &mut f),
        number_field(obj, "longitude", &mut f),
        &mut f,
    );
    let creation_time = time_field(obj, "creation_time", &mut f);
    f.finish(parts.map(|(p, lat, lon)| NewLocation::new(p, lat, lon, creation_time)))
}

/// A ping whose fields came as text (a CSV row): each read as [`new_location`] reads the
/// field sent as a JSON string, then checked by the same rules, so the ping or the violations
/// are the ones that reading gives. `None` for the time: the time of ingest.
pub fn text_location(
    person_id: &str,
    latitude: &str,
    longitude: &str,
    creation_time: Option<&str>,
) -> Result<NewLocation> {
    let mut f = Findings::default();
    let parts = ping_parts(
        recorded(&mut f, "person_id", from_text(person_id, ID.0)),
        recorded(&mut f, "latitude", from_text(latitude, NUMBER.0)),
        recorded(&mut f, "longitude", from_text(longitude, NUMBER.0)),
        &mut f,
    );
    let creation_time = creation_time.and_then(|s| time_text(s, "creation_time", &mut f));
    f.finish(parts.map(|(p, lat, lon)| NewLocation::new(p, lat, lon, creation_time)))
}

/// A ping as most clients send it, and as UdaConnect writes it to the log: numbers as
/// numbers, the time as a string or absent, an id or none.
///
/// Other fields send the text to the general reading: skipped here, a value in them would go
/// unchecked (a number beyond `f64`'s range, which the general reading refuses).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlainPing<'a> {
    #[serde(default)]
    pub(crate) id: Option<i64>,
    person_id: i64,
    latitude: f64,
    longitude: f64,
    #[serde(default, borrow)]
    creation_time: Option<Cow<'a, str>>,
    /// Kept on log records only (see [`crate::record`]); the API's JSON takes no accuracy.
    #[serde(default)]
    pub(crate) accuracy_m: Option<f64>,
    // The telemetry, on log records only as the accuracy ([`crate::model::Telemetry`]).
    #[serde(default)]
    altitude_m: Option<f64>,
    #[serde(default)]
    speed_mps: Option<f64>,
    #[serde(default)]
    heading_deg: Option<f64>,
    #[serde(default)]
    battery_pct: Option<f64>,
    /// Text, so an app this version does not know costs the app only.
    #[serde(default, borrow)]
    app: Option<Cow<'a, str>>,
}

impl<'a> PlainPing<'a> {
    /// The plain shape read from JSON text; `None` for text of any other shape. A derived
    /// reading would also take an array of the fields in order, and skip fields without
    /// checking they are UTF-8: a ping is an object, and JSON is UTF-8 throughout.
    pub(crate) fn read(body: &'a [u8]) -> Option<Self> {
        if body.trim_ascii_start().first() != Some(&b'{') {
            return None;
        }
        serde_json::from_str(std::str::from_utf8(body).ok()?).ok()
    }

    /// The telemetry a log record carries, each value within its bounds.
    pub(crate) fn telemetry(&self) -> Telemetry {
        Telemetry {
            altitude_m: self.altitude_m,
            speed_mps: self.speed_mps,
            heading_deg: self.heading_deg,
            battery_pct: self.battery_pct,
            app: self.app.as_deref().and_then(App::parse),
        }
        .checked()
    }

    /// Puts the axes right when they came swapped (see [`crate::geo::axes_swapped`]); true
    /// when it did.
    pub(crate) fn repair_axes(&mut self) -> bool {
        let swapped = crate::geo::axes_swapped(self.latitude, self.longitude);
        if swapped {
            std::mem::swap(&mut self.latitude, &mut self.longitude);
        }
        swapped
    }

    /// The ping, or every violation, exactly as [`new_location`] gives them for the same
    /// text; `None` when the time cannot be read, which [`new_location`] reports with the rest.
    pub(crate) fn check(&self) -> Option<Result<NewLocation>> {
        let creation_time = match &self.creation_time {
            None => None,
            Some(raw) => Some(FixTime::parse(raw).ok()?),
        };
        Some(NewLocation::parse(
            self.person_id,
            self.latitude,
            self.longitude,
            creation_time,
        ))
    }
}

/// The ping in a JSON text when it is in the plain shape and valid, read straight into its
/// fields: the single-ping endpoint's hot path, with no tree of values and keys allocated
/// per request. `None` for anything else (ids or coordinates sent as strings, any
/// violation, not JSON): [`new_location`] on the parsed body then gives the answer, and for
/// every body this accepts it gives the same ping.
pub fn plain_new_location(body: &[u8]) -> Option<NewLocation> {
    PlainPing::read(body)?.check()?.ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MAX_ID;
    use crate::validate::fields;
    use proptest::prelude::*;
    use serde_json::json;

    /// A field the plain shape does not know is left to the general reading, which checks
    /// it: skipped, a number beyond `f64` would pass where the general reading refuses it.
    #[test]
    fn plain_reading_leaves_other_fields_to_the_general_one() {
        let body = br#"{"person_id":1,"latitude":1,"longitude":1,"note":-1e4004}"#;
        assert_eq!(plain_new_location(body), None);
        assert!(serde_json::from_slice::<Value>(body).is_err());
        let known = br#"{"id":3,"person_id":1,"latitude":1,"longitude":1,"creation_time":null}"#;
        assert!(plain_new_location(known).is_some());
    }

    #[test]
    fn location_accepts_strings_and_numbers() {
        let l = new_location(&json!({"person_id": 5, "latitude": "37.5", "longitude": -122.2}))
            .unwrap();
        assert_eq!(
            (l.latitude(), l.longitude(), l.creation_time()),
            (37.5, -122.2, None)
        );
        let l = new_location(&json!({"person_id": "5", "latitude": 1, "longitude": 2,
            "creation_time": "2020-08-18T10:37:06"}))
        .unwrap();
        assert_eq!(l.person_id(), 5);
        assert!(l.creation_time().is_some());
    }

    /// An id written with a zero fraction is that id; with any other fraction, none.
    #[test]
    fn ids_with_a_zero_fraction_are_integers() {
        let l = new_location(&json!({"person_id": 5.0, "latitude": 1, "longitude": 2})).unwrap();
        assert_eq!(l.person_id(), 5);
        let e =
            new_location(&json!({"person_id": 5.5, "latitude": 1, "longitude": 2})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed request: person_id: 5.5 is not an integer id"
        );
        let e = new_location(&json!({"person_id": 9007199254740992.0, "latitude": 1,
            "longitude": 2}))
        .unwrap_err();
        assert_eq!(fields(&e), ["person_id"]);
        assert_eq!(
            integer(&serde_json::Number::from_f64(-0.0).unwrap()),
            Some(0)
        );
        assert_eq!(
            integer(&serde_json::Number::from_f64(9.3e18).unwrap()),
            None
        );
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

    /// The messages clients and tests read, to the byte, in the order of the fields.
    #[test]
    fn location_messages_stay_as_they_are() {
        let e = new_location(&json!({"person_id": 0, "longitude": 200,
            "creation_time": "1969-12-31T23:59:59Z"}))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed request: creation_time: '1969-12-31T23:59:59Z' is outside the years \
             1970 to 9999; person_id: 0 is not an id (1 to 2^53-1); latitude: is required; \
             longitude: 200 is outside [-180, 180]"
        );
        let e = new_location(&json!({"person_id": "x", "latitude": "NaN", "longitude": []}))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed request: person_id: 'x' is not an integer id; longitude: must be a \
             number, not an array; latitude: must be a finite number"
        );
        let e = new_location(
            &json!({"person_id": 1e20, "latitude": "inf", "longitude": null,
            "creation_time": 5}),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed request: person_id: 1e+20 is not an integer id; creation_time: must be \
             an RFC 3339 string, not a number; latitude: must be a finite number; longitude: \
             is required"
        );
    }

    #[test]
    fn a_person_from_text_meets_the_same_rules() {
        let long = "x".repeat(MAX_TEXT_CHARS + 1);
        let e = text_person(" ", "B", &long).unwrap_err();
        let body = json!({"first_name": " ", "last_name": "B", "company_name": long});
        assert_eq!(
            e.to_string(),
            "invalid input: first_name: must not be empty; company_name: must be at most 256 \
             characters"
        );
        assert_eq!(e.violations(), new_person(&body).unwrap_err().violations());
        let p = text_person("Taco", "Fargo", "Alpha Omega Upholstery").unwrap();
        assert_eq!(
            (
                p.first_name.as_str(),
                p.last_name.as_str(),
                p.company_name.as_str()
            ),
            ("Taco", "Fargo", "Alpha Omega Upholstery")
        );
    }

    #[test]
    fn names_hold_no_nul() {
        let e = new_person(&json!({"first_name": "A\u{0}", "last_name": "B", "company_name": "C"}))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid input: first_name: must not contain NUL (\\u0000)"
        );
    }

    #[test]
    fn person_requires_non_empty_strings() {
        let e = new_person(&json!({"first_name": " ", "last_name": 3})).unwrap_err();
        assert_eq!(fields(&e), ["last_name", "first_name", "company_name"]);
        assert!(
            new_person(&json!({"first_name": "A", "last_name": "B", "company_name": "C"})).is_ok()
        );
    }

    #[test]
    fn plain_ping_is_read_directly() {
        let body = br#"{"person_id": 5, "latitude": 37.55, "longitude": -122.29,
            "creation_time": "2020-08-18T10:37:06Z", "id": null}"#;
        let fast = plain_new_location(body).expect("plain shape");
        let general = new_location(&serde_json::from_slice(body).unwrap()).unwrap();
        assert_eq!(fast, general);
        // Shapes the general way accepts but the plain one leaves to it.
        for body in [
            &br#"{"person_id": 5, "latitude": 1, "longitude": 2, "extra": [1, {"a": null}]}"#[..],
            br#"{"person_id": "5", "latitude": 1, "longitude": 2}"#,
            br#"{"person_id": 5, "latitude": "1.5", "longitude": 2}"#,
            br#"{"person_id": 5, "latitude": 1, "longitude": 2, "person_id": 6}"#,
        ] {
            assert_eq!(plain_new_location(body), None);
            assert!(new_location(&serde_json::from_slice(body).unwrap()).is_ok());
        }
    }

    /// An array of a ping's values is no ping, even in the order of its fields.
    #[test]
    fn plain_reading_refuses_arrays() {
        let body = b" [7, 2, 2.5, 3]";
        assert_eq!(plain_new_location(body), None);
        let e = new_location(&serde_json::from_slice(body).unwrap()).unwrap_err();
        assert_eq!(fields(&e), ["body"]);
    }

    /// Bytes that are not UTF-8 are not JSON.
    #[test]
    fn plain_reading_refuses_what_is_not_utf8() {
        let body = b"{\"person_id\": 1, \"latitude\": 1, \"longitude\": 0, \"creation_time\": \"2020-01-01T00:00:00Z\xff\"}";
        assert!(serde_json::from_slice::<Value>(body).is_err());
        assert_eq!(plain_new_location(body), None);
        let mut valid = body.to_vec();
        valid.retain(|b| *b != 0xff);
        assert!(plain_new_location(&valid).is_some());
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

    /// A ping's JSON text, its fields drawn by [`field_json`], an id among them at times.
    fn ping_text() -> impl Strategy<Value = String> {
        (
            field_json(
                prop_oneof![Just(1), Just(MAX_ID), 1i64..100_000].prop_map(|n| n.to_string()),
                prop_oneof![Just(0), Just(-1), Just(MAX_ID + 1)].prop_map(|n| n.to_string()),
            ),
            field_json(coordinate(90.0), beyond(90.0)),
            field_json(coordinate(180.0), beyond(180.0)),
            field_json(
                (0i64..4_000_000_000).prop_map(timestamp_json),
                prop_oneof![
                    Just(timestamp_json(-1)),
                    Just(timestamp_json(253_402_300_800))
                ],
            ),
            prop::option::of(prop_oneof![
                Just("7".to_string()),
                Just("\"7\"".to_string())
            ]),
        )
            .prop_map(|(person, lat, lon, time, id)| {
                let fields: Vec<String> = [
                    ("person_id", person),
                    ("latitude", lat),
                    ("longitude", lon),
                    ("creation_time", time),
                    ("id", id),
                ]
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| format!("\"{k}\": {v}")))
                .collect();
                format!("{{{}}}", fields.join(", "))
            })
    }

    /// A field as a CSV cell: a good value, one just outside its rule, or text that is no
    /// value of the kind.
    fn cell(
        good: impl Strategy<Value = String> + 'static,
        near: impl Strategy<Value = String> + 'static,
    ) -> impl Strategy<Value = String> {
        prop_oneof![
            12 => good,
            4 => near,
            1 => prop::sample::select(vec![
                "", " ", "north", "NaN", "-inf", "-0", " 7 ", "1e400", "1.5", "0x10",
                "9007199254740992", "2020-08-18T10:37:06Z",
            ])
            .prop_map(String::from),
        ]
    }

    #[test]
    fn text_messages_stay_as_they_are() {
        let e = text_location("5", "north", "1", Some("not-a-time")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed request: latitude: 'north' is not a number; creation_time: 'not-a-time' \
             is not an RFC 3339 timestamp"
        );
        let e = text_location("0", "95", " -0 ", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid input: person_id: 0 is not an id (1 to 2^53-1); latitude: 95 is outside \
             [-90, 90]"
        );
        let l = text_location(" 5", "37.5", "-0", Some("2020-08-18T10:37:06")).unwrap();
        assert_eq!((l.person_id(), l.latitude()), (5, 37.5));
        assert_eq!(l.longitude().to_bits(), 0.0f64.to_bits());
        assert!(l.creation_time().is_some());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// A ping read from text is the ping, or has the violations and class, that the JSON
        /// reading gives for the same text sent as JSON strings.
        #[test]
        fn text_reading_agrees_with_the_json_one(
            person in cell(
                prop_oneof![Just(1), Just(MAX_ID), 1i64..100_000].prop_map(|n| n.to_string()),
                prop_oneof![Just(0), Just(-1), Just(MAX_ID + 1)].prop_map(|n| n.to_string()),
            ),
            lat in cell(coordinate(90.0), beyond(90.0)),
            lon in cell(coordinate(180.0), beyond(180.0)),
            time in prop::option::of(cell(
                (0i64..4_000_000_000).prop_map(|s| timestamp_json(s).replace('"', "")),
                Just("1969-12-31T23:59:59Z".to_string()),
            )),
        ) {
            let text = text_location(&person, &lat, &lon, time.as_deref());
            let json = new_location(&json!({
                "person_id": person, "latitude": lat, "longitude": lon, "creation_time": time,
            }));
            match (text, json) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(a), Err(b)) => {
                    prop_assert_eq!(a.code(), b.code());
                    prop_assert_eq!(a.violations(), b.violations());
                }
                (a, b) => prop_assert!(false, "text {a:?}, JSON {b:?}"),
            }
        }

        /// Whatever the plain reading accepts, the general one accepts as the same ping.
        #[test]
        fn plain_reading_agrees_with_the_general_one(body in ping_text()) {
            if let Some(fast) = plain_new_location(body.as_bytes()) {
                let value: Value = serde_json::from_str(&body).unwrap();
                prop_assert_eq!(Some(fast), new_location(&value).ok());
            }
        }

        /// Where the plain reading answers at all, its answer is the general one's, violations
        /// and their class included: the log's decoding relies on it.
        #[test]
        fn plain_check_gives_the_general_answer(body in ping_text()) {
            if let Some(plain) = PlainPing::read(body.as_bytes()) {
                if let Some(answer) = plain.check() {
                    let value: Value = serde_json::from_str(&body).unwrap();
                    let general = new_location(&value);
                    prop_assert_eq!(answer.is_ok(), general.is_ok());
                    match (answer, general) {
                        (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                        (Err(a), Err(b)) => {
                            prop_assert_eq!(a.code(), b.code());
                            prop_assert_eq!(a.violations(), b.violations());
                        }
                        _ => unreachable!(),
                    }
                }
            }
        }
    }
}

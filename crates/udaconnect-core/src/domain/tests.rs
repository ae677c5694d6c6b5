//! Each `parse` accepts exactly its range, and the direct constructor of a ping agrees with the
//! JSON reading.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::model::MAX_ID;
use crate::time::format_utc;
use crate::validate;
use crate::Error;

/// Any `f64`, the values at and just beyond `bounds`, and the ones that are no number at all.
fn any_f64_around(bounds: &'static [f64]) -> impl Strategy<Value = f64> {
    let edges: Vec<f64> = bounds
        .iter()
        .flat_map(|&b| {
            [
                b,
                b.next_up(),
                b.next_down(),
                -b,
                (-b).next_up(),
                (-b).next_down(),
            ]
        })
        .chain([
            0.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
        ])
        .collect();
    prop_oneof![
        2 => prop::sample::select(edges),
        1 => any::<f64>(),
        2 => -2000.0..2000.0f64,
    ]
}

fn any_i64_around(bounds: &'static [i64]) -> impl Strategy<Value = i64> {
    let edges: Vec<i64> = bounds
        .iter()
        .flat_map(|&b| [b, b.saturating_add(1), b.saturating_sub(1)])
        .chain([i64::MIN, i64::MAX])
        .collect();
    prop_oneof![prop::sample::select(edges), any::<i64>(), -10i64..10]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_coordinate_is_a_finite_number_within_its_limit(x in any_f64_around(&[90.0, 180.0])) {
        for (parsed, limit) in [
            (Latitude::parse(x).map(Latitude::get), 90.0),
            (Longitude::parse(x).map(Longitude::get), 180.0),
        ] {
            if !x.is_finite() {
                prop_assert_eq!(parsed, Err("must be a finite number".to_string()));
            } else if (-limit..=limit).contains(&x) {
                // As it came, to the bit, but for zero's sign: -0.0 is 0.0.
                let want = if x == 0.0 { 0.0 } else { x };
                prop_assert_eq!(parsed.map(f64::to_bits), Ok(want.to_bits()));
            } else {
                prop_assert_eq!(parsed, Err(format!("{x} is outside [-{limit}, {limit}]")));
            }
        }
    }

    #[test]
    fn an_id_is_from_1_to_2_53_minus_1(id in any_i64_around(&[0, 1, MAX_ID])) {
        let want = if (1..=MAX_ID).contains(&id) {
            Ok(id)
        } else {
            Err(format!("{id} is not an id (1 to 2^53-1)"))
        };
        prop_assert_eq!(PersonId::parse(id).map(PersonId::get), want.clone());
        prop_assert_eq!(LocationId::parse(id).map(LocationId::get), want);
    }

    #[test]
    fn a_distance_is_above_0_and_at_most_1000_metres(d in any_f64_around(&[1000.0, 5.0])) {
        let got = Distance::parse(d).map(Distance::metres);
        if d > 0.0 && d <= 1000.0 {
            prop_assert_eq!(got, Ok(d));
        } else {
            prop_assert_eq!(got, Err(format!("{d} is outside (0, 1000] metres")));
        }
    }

    #[test]
    fn a_time_gap_is_from_0_to_its_bound_in_whole_microseconds(
        s in any_f64_around(&[MAX_TIME_GAP_S, 3600.0, 1e-7]),
        bound in prop_oneof![Just(MAX_TIME_GAP_S), Just(3600.0), Just(1e12)],
    ) {
        let max = bound.min(MAX_TIME_GAP_S);
        let got = TimeGap::parse_at_most(s, bound).map(TimeGap::micros);
        if (0.0..=max).contains(&s) {
            prop_assert_eq!(got.clone(), Ok((s * 1e6).round() as i64));
            prop_assert!(got.unwrap() >= 0);
        } else {
            prop_assert_eq!(got, Err(format!("{s} is outside [0, {max}] seconds")));
        }
        prop_assert_eq!(TimeGap::parse(s), TimeGap::parse_at_most(s, MAX_TIME_GAP_S));
    }

    /// The years rule holds however the time comes: as microseconds, as an instant, as text.
    #[test]
    fn a_fix_time_is_in_the_years_1970_to_9999(us in any_i64_around(&[0, LAST_SECOND_US])) {
        let got = FixTime::from_micros(us);
        if (0..=LAST_SECOND_US).contains(&us) {
            let t = got.clone().unwrap();
            prop_assert_eq!(t.micros(), us);
            prop_assert_eq!(FixTime::new(t.get()), Ok(t));
            prop_assert_eq!(FixTime::parse(&format_utc(t.get())), Ok(t));
        } else {
            prop_assert!(got.unwrap_err().ends_with(" is outside the years 1970 to 9999"));
            if let Some(t) = DateTime::<Utc>::from_timestamp_micros(us) {
                prop_assert_eq!(
                    FixTime::new(t),
                    Err(format!("{} is outside the years 1970 to 9999", format_utc(t)))
                );
                let raw = t.to_rfc3339();
                prop_assert!(FixTime::parse(&raw).is_err(), "{}", raw);
            }
        }
    }

    /// A ping built from decoded values is the ping the JSON reading makes of the same values
    /// (numbers as numbers or as text), or has the same violations.
    #[test]
    fn the_direct_constructor_agrees_with_the_json_reading(
        person_id in any_i64_around(&[0, 1, MAX_ID]),
        latitude in any_f64_around(&[90.0]),
        longitude in any_f64_around(&[180.0]),
        time in prop::option::of(any_i64_around(&[0, LAST_SECOND_US])),
        as_text in any::<[bool; 3]>(),
    ) {
        let time = time.and_then(|us| FixTime::from_micros(us).ok());
        let direct = NewLocation::parse(person_id, latitude, longitude, time);
        let number = |x: f64, text: bool| {
            if text || !x.is_finite() {
                // JSON has no NaN nor infinities: clients send them as text.
                Value::String(format!("{x}"))
            } else {
                json!(x)
            }
        };
        let body = json!({
            "person_id": if as_text[0] { json!(person_id.to_string()) } else { json!(person_id) },
            "latitude": number(latitude, as_text[1]),
            "longitude": number(longitude, as_text[2]),
            "creation_time": time.map(|t| format_utc(t.get())),
        });
        let read = validate::new_location(&body);
        match (direct, read) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(a, b);
                prop_assert_eq!(a.latitude().to_bits(), (latitude + 0.0).to_bits());
                prop_assert_eq!(a.creation_time(), time.map(FixTime::get));
            }
            (Err(a), Err(b)) => {
                prop_assert!(matches!(a, Error::Invalid(_)), "{a}");
                prop_assert_eq!(a.code(), b.code());
                prop_assert_eq!(a.violations(), b.violations());
            }
            (a, b) => prop_assert!(false, "direct {a:?}, JSON {b:?}"),
        }
    }
}

/// 9999-12-31T23:59:59Z, the last instant accepted, in microseconds.
const LAST_SECOND_US: i64 = 253_402_300_799_000_000;

#[test]
fn a_ping_reports_every_violation_at_once() {
    let e = NewLocation::parse(0, f64::NAN, -180.5, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid input: person_id: 0 is not an id (1 to 2^53-1); latitude: must be a finite \
         number; longitude: -180.5 is outside [-180, 180]"
    );
    let t = FixTime::parse("2020-07-07T10:17:06.5Z").unwrap();
    let mut ping = NewLocation::parse(5, 0.5, 180.0, None).unwrap();
    assert_eq!(ping.creation_time(), None);
    ping.set_creation_time(Some(t));
    assert_eq!(
        (
            ping.person_id(),
            ping.latitude().to_bits(),
            ping.longitude(),
            ping.creation_time()
        ),
        (5, 0.5f64.to_bits(), 180.0, Some(t.get()))
    );
}

/// `-0.0` and `0.0` are one point; every ping carries the one the stores answer, `0.0`, so
/// the index fed from the log agrees with them to the bit.
#[test]
fn a_negative_zero_coordinate_becomes_zero() {
    assert_eq!(
        Latitude::parse(-0.0).unwrap().get().to_bits(),
        0.0f64.to_bits()
    );
    assert_eq!(
        Longitude::parse(-0.0).unwrap().get().to_bits(),
        0.0f64.to_bits()
    );
    let ping = NewLocation::parse(5, -0.0, -0.0, None).unwrap();
    assert_eq!(
        (ping.latitude().to_bits(), ping.longitude().to_bits()),
        (0.0f64.to_bits(), 0.0f64.to_bits())
    );
    let read = validate::new_location(&json!({"person_id": 5, "latitude": -0.0,
        "longitude": "-0"}))
    .unwrap();
    assert_eq!(read, ping);
    assert_eq!(read.latitude().to_bits(), 0.0f64.to_bits());
    assert_eq!(read.longitude().to_bits(), 0.0f64.to_bits());
    // Other values keep every bit, the smallest ones too.
    let tiny = -f64::from_bits(1);
    assert_eq!(
        Latitude::parse(tiny).unwrap().get().to_bits(),
        tiny.to_bits()
    );
}

#[test]
fn a_fix_time_keeps_whole_microseconds() {
    let t = DateTime::from_timestamp(1_594_117_026, 123_456_789).unwrap();
    assert_eq!(FixTime::new(t).unwrap().micros(), 1_594_117_026_123_456);
    assert_eq!(
        FixTime::from_micros(i64::MAX).unwrap_err(),
        "9223372036854775807 microseconds since 1970 is outside the years 1970 to 9999"
    );
    assert_eq!(
        FixTime::parse("9999-12-31T23:59:59.5Z").unwrap_err(),
        "'9999-12-31T23:59:59.5Z' is outside the years 1970 to 9999"
    );
}

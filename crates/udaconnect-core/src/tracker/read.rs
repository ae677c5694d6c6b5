//! Numbers, times and extras as tracker apps write them.

use serde_json::Value;

use crate::domain::{FixTime, Read};
use crate::error::{quoted, Error, Findings, Result};
use crate::time::outside_years;
pub(super) use crate::validate::json_type;

/// A body read as JSON, a failure named as every JSON body's is.
pub(super) fn json_body(body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body)
        .map_err(|e| Error::bad_request("body", format!("malformed JSON: {e}")))
}

/// A number written as text (a query field, or a JSON string): what the rule then checks.
pub(super) fn text_number(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("{} is not a number", quoted(s)))
}

/// A number sent as a JSON number or as numeric text.
pub(super) fn json_number(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => Ok(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => text_number(s),
        other => Err(format!("must be a number, not {}", json_type(other))),
    }
}

/// A field of `obj` read as a number under `field`, absent or null being missing; a value
/// that is no number is recorded as unreadable.
pub(super) fn number_field(
    obj: &serde_json::Map<String, Value>,
    key: &str,
    field: &str,
    f: &mut Findings,
) -> Read<f64> {
    match obj.get(key) {
        None | Some(Value::Null) => Read::Missing,
        Some(v) => read(json_number(v), field, f),
    }
}

/// A value as read: the value, or its failure recorded as unreadable under `field`.
pub(super) fn read(value: Result<f64, String>, field: &str, f: &mut Findings) -> Read<f64> {
    match value {
        Ok(v) => Read::Value(v),
        Err(m) => {
            f.unreadable(field, m);
            Read::Unreadable
        }
    }
}

/// What was read, if it was.
pub(super) fn value<T>(read: Read<T>) -> Option<T> {
    match read {
        Read::Value(v) => Some(v),
        Read::Missing | Read::Unreadable => None,
    }
}

/// An extra as a number if it is one; anything else is as good as absent.
pub(super) fn extra(v: Option<&Value>) -> Option<f64> {
    v.and_then(|v| json_number(v).ok())
}

/// Seconds since 1970 (a fraction allowed), as an instant in the years every ping may have.
pub(super) fn epoch_seconds(s: f64) -> Result<FixTime, String> {
    if !s.is_finite() {
        return Err("must be a finite number".into());
    }
    let micros = (s * 1e6).round();
    // `as` saturates: anything beyond i64 lands on a bound, which is outside the years too.
    FixTime::from_micros(micros as i64)
        .map_err(|_| outside_years(format_args!("{s} seconds since 1970")))
}

/// The OsmAnd protocol's `timestamp`: seconds since 1970, or milliseconds when the number is
/// too large to be seconds in a 32-bit integer (Traccar's reading), a decimal number of
/// seconds, or ISO 8601 text.
pub(super) fn osmand_time(raw: &str) -> Result<FixTime, String> {
    let s = raw.trim();
    if let Ok(n) = s.parse::<i64>() {
        return if n.unsigned_abs() < i32::MAX as u64 {
            epoch_seconds(n as f64)
        } else {
            FixTime::from_micros(n.saturating_mul(1000))
                .map_err(|_| outside_years(format_args!("{n} milliseconds since 1970")))
        };
    }
    if s.bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        && !s.is_empty()
    {
        if let Ok(x) = s.parse::<f64>() {
            return epoch_seconds(x);
        }
    }
    FixTime::parse(s).map_err(|_| {
        format!(
            "{} is not a time: seconds or milliseconds since 1970, or ISO 8601",
            quoted(raw)
        )
    })
}

/// `x` when it lies in `[lo, hi]` (a finite number), else nothing.
pub(super) fn within(x: Option<f64>, lo: f64, hi: f64) -> Option<f64> {
    x.filter(|x| (lo..=hi).contains(x))
}

/// Sensible bounds of each extra: beyond them the app sent noise.
pub(super) use crate::domain::{ALTITUDE_M, MAX_ACCURACY_M, MAX_SPEED_MPS};

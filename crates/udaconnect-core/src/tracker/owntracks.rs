//! One message of the OwnTracks HTTP mode: the JSON object the app POSTs, told apart by its
//! `_type`. Only `location` makes a ping; every other type (`transition`, `waypoint`, `lwt`,
//! `card`, `cmd`, `steps`, `status`, `encrypted`, and types not known yet) is read as
//! [`OwnTracks::Ignored`], never an error, so a phone never retries a message forever.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{Map, Value};

use super::read::{
    epoch_seconds, extra, json_body, number_field, value, within, ALTITUDE_M, MAX_ACCURACY_M,
    MAX_SPEED_MPS,
};
use super::{App, Extras, TrackerFix};
use crate::domain::{required, Latitude, Longitude};
use crate::error::{Findings, Result};
use crate::validate::as_object;

/// Longest `tid` or `topic` kept; longer ones are not OwnTracks'.
const MAX_LABEL_CHARS: usize = 256;

/// What a message is to UdaConnect.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnTracks {
    /// A `_type: location`: a fix, and the `topic` it names, if any (`owntracks/user/device`,
    /// which the iOS app adds in HTTP mode).
    Location {
        fix: TrackerFix,
        topic: Option<String>,
        /// The tracker id shown on friends' maps (two characters by default).
        tid: Option<String>,
    },
    /// Any other message, or none (an empty body): `kind` is its `_type` (empty when none).
    Ignored { kind: String },
}

/// Reads one OwnTracks message. An empty body is [`OwnTracks::Ignored`]; a body that is not a
/// JSON object is [`crate::Error::BadRequest`]; a location whose place or time breaks the rules every
/// ping follows is refused, each violation under the app's field name (`lat`, `lon`, `tst`).
///
/// Fields of a location, as the OwnTracks booklet defines them: `lat`, `lon` (degrees,
/// required), `tst` (seconds since 1970 of the fix; without it the ping is timed at ingest),
/// `acc` (metres), `alt` (metres), `vel` (km/h), `cog` (degrees), `batt` (percent), `tid`,
/// `topic`. The others (`vac`, `t`, `conn`, `created_at`, `bs`, `inregions`, `SSID`, ...) are
/// read past.
pub fn owntracks_message(body: &[u8]) -> Result<OwnTracks> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(OwnTracks::Ignored {
            kind: String::new(),
        });
    }
    let value = json_body(body)?;
    let obj = as_object(&value, "an OwnTracks message")?;
    let kind = match obj.get("_type") {
        Some(Value::String(kind)) => kind.as_str(),
        _ => "",
    };
    if kind != "location" {
        return Ok(OwnTracks::Ignored {
            kind: kind.chars().take(MAX_LABEL_CHARS).collect(),
        });
    }
    location(obj)
}

fn location(obj: &Map<String, Value>) -> Result<OwnTracks> {
    let mut f = Findings::default();
    let lat = number_field(obj, "lat", "lat", &mut f);
    let lon = number_field(obj, "lon", "lon", &mut f);
    let tst = value(number_field(obj, "tst", "tst", &mut f));
    let latitude = required(&mut f, "lat", lat, Latitude::parse);
    let longitude = required(&mut f, "lon", lon, Longitude::parse);
    let time = tst.and_then(|s| f.check("tst", s, epoch_seconds));
    let extras = Extras {
        accuracy_m: within(extra(obj.get("acc")), 0.0, MAX_ACCURACY_M),
        altitude_m: within(extra(obj.get("alt")), ALTITUDE_M.0, ALTITUDE_M.1),
        // km/h on the wire.
        speed_mps: within(extra(obj.get("vel")).map(|v| v / 3.6), 0.0, MAX_SPEED_MPS),
        heading_deg: within(extra(obj.get("cog")), 0.0, 360.0),
        battery_pct: within(extra(obj.get("batt")), 0.0, 100.0),
    };
    let fix = match (latitude, longitude) {
        (Some(latitude), Some(longitude)) => Some(TrackerFix {
            latitude,
            longitude,
            time,
            extras,
            app: App::OwnTracks,
        }),
        _ => None,
    };
    let fix = f.finish(fix)?;
    Ok(OwnTracks::Location {
        fix,
        topic: label(obj.get("topic")),
        tid: label(obj.get("tid")),
    })
}

/// A short text field, if it is one.
fn label(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_LABEL_CHARS => {
            Some(s.clone())
        }
        _ => None,
    }
}

/// The user and password of an `Authorization: Basic` header's value (RFC 7617: base64 of
/// `user:password`, UTF-8); `None` for any other scheme or a value that does not decode.
pub fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

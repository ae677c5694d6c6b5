//! The OsmAnd protocol as Traccar defines it: one report per HTTP request, its fields in the
//! query string or a form body (OsmAnd, Traccar Client before 9), or a JSON body (Traccar
//! Client 9 and later, the format of its background-location library).

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::read::{
    extra, json_body, json_type, number_field, osmand_time, read, text_number, within, ALTITUDE_M,
    MAX_ACCURACY_M, MAX_SPEED_MPS,
};
use super::{App, Extras, TrackerFix};
use crate::domain::{required, Latitude, Longitude, Read};
use crate::error::{Findings, Result};
use crate::validate::as_object;

/// Longest device id read: OsmAnd ids UdaConnect hands out are far shorter, and an id is
/// looked up by its hash, so a longer one names no device.
const MAX_DEVICE_ID_CHARS: usize = 128;

/// Most locations one Traccar Client JSON body may carry (its library's batch upload).
pub const MAX_TRACCAR_LOCATIONS: usize = 1000;

/// The unit of `speed` in query and form fields. The OsmAnd protocol says knots, and Traccar
/// Client sends knots; some apps and versions send metres per second (OsmAnd's own online
/// tracking) or km/h. Traccar Client's JSON body is always metres per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpeedUnit {
    #[default]
    Knots,
    MetresPerSecond,
    KilometresPerHour,
}

impl SpeedUnit {
    pub const NAMES: [&'static str; 3] = ["knots", "mps", "kmh"];

    /// `knots`, `mps` or `kmh`.
    pub fn parse(name: &str) -> std::result::Result<SpeedUnit, String> {
        match name {
            "knots" => Ok(SpeedUnit::Knots),
            "mps" => Ok(SpeedUnit::MetresPerSecond),
            "kmh" => Ok(SpeedUnit::KilometresPerHour),
            other => Err(format!(
                "unknown speed unit '{other}': use knots, mps or kmh"
            )),
        }
    }

    fn to_mps(self, v: f64) -> f64 {
        match self {
            SpeedUnit::Knots => v * 1852.0 / 3600.0,
            SpeedUnit::MetresPerSecond => v,
            SpeedUnit::KilometresPerHour => v / 3.6,
        }
    }
}

/// A report of the OsmAnd protocol: the device it names, and its fixes (none when the report
/// carried no position, which the protocol allows: the device is then only seen).
#[derive(Debug, Clone, PartialEq)]
pub struct OsmAndReport {
    /// As sent; the caller looks it up (by hash) among registered devices.
    pub device: String,
    pub fixes: Vec<TrackerFix>,
    /// Battery level in percent, as the report says, with or without a position.
    pub battery_pct: Option<f64>,
}

/// Reads the query or form fields of one report: `id` or `deviceid` (required), `lat` and
/// `lon` or `location=lat,lon` (degrees), `timestamp` (seconds or milliseconds since 1970, or
/// ISO 8601; none: the time of ingest), `speed` (in `unit`), `bearing` or `heading`
/// (degrees), `altitude` (metres), `accuracy` (metres), `batt` (percent); `hdop`, `valid`,
/// `charge` and any other field are read past. Where a field comes twice, the first counts.
pub fn osmand_fields<'a>(
    pairs: impl IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
    unit: SpeedUnit,
) -> Result<OsmAndReport> {
    let mut fields: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::new();
    for (k, v) in pairs {
        if !fields.iter().any(|(seen, _)| *seen == k) {
            fields.push((k, v));
        }
    }
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    };
    let mut f = Findings::default();
    let device = device_id(get("id").or_else(|| get("deviceid")), "id", &mut f);
    let number = |f: &mut Findings, field: &str| match get(field) {
        Some(s) => read(text_number(s), field, f),
        None => Read::Missing,
    };
    let (lat, lon, lat_field, lon_field) = match (get("lat"), get("lon"), get("location")) {
        (None, None, Some(both)) => {
            let pair = both
                .split_once(',')
                .ok_or_else(|| "must be 'latitude,longitude'".to_string())
                .and_then(|(a, b)| Ok((text_number(a)?, text_number(b)?)));
            match pair {
                Ok((lat, lon)) => (Read::Value(lat), Read::Value(lon), "location", "location"),
                Err(m) => {
                    f.unreadable("location", m);
                    (Read::Unreadable, Read::Unreadable, "location", "location")
                }
            }
        }
        _ => (number(&mut f, "lat"), number(&mut f, "lon"), "lat", "lon"),
    };
    let no_position = get("lat").is_none() && get("lon").is_none() && get("location").is_none();
    let time = get("timestamp").and_then(|t| f.check("timestamp", t, osmand_time));
    let extra_of = |key: &str| get(key).and_then(|s| text_number(s).ok());
    let battery_pct = within(extra_of("batt"), 0.0, 100.0);
    let extras = Extras {
        accuracy_m: within(extra_of("accuracy"), 0.0, MAX_ACCURACY_M),
        altitude_m: within(extra_of("altitude"), ALTITUDE_M.0, ALTITUDE_M.1),
        speed_mps: within(
            extra_of("speed").map(|v| unit.to_mps(v)),
            0.0,
            MAX_SPEED_MPS,
        ),
        heading_deg: within(
            extra_of("bearing").or_else(|| extra_of("heading")),
            0.0,
            360.0,
        ),
        battery_pct,
    };
    let fix = if no_position {
        None
    } else {
        let latitude = required(&mut f, lat_field, lat, Latitude::parse);
        let longitude = required(&mut f, lon_field, lon, Longitude::parse);
        match (latitude, longitude) {
            (Some(latitude), Some(longitude)) => Some(TrackerFix {
                latitude,
                longitude,
                time,
                extras,
                app: App::OsmAnd,
            }),
            _ => None,
        }
    };
    let report = device.map(|device| OsmAndReport {
        device,
        fixes: fix.into_iter().collect(),
        battery_pct,
    });
    f.finish(report)
}

/// Reads a Traccar Client JSON body: `device_id`, and `location` (one object, or an array of
/// at most [`MAX_TRACCAR_LOCATIONS`] when the app uploads a batch) with `timestamp` (ISO
/// 8601), `coords.latitude`, `coords.longitude`, `coords.accuracy` (metres), `coords.speed`
/// (m/s), `coords.heading` (degrees), `coords.altitude` (metres) and `battery.level` (0 to
/// 1); `is_moving`, `odometer`, `event`, `activity` and `extras` are read past.
pub fn traccar_json(body: &[u8]) -> Result<OsmAndReport> {
    let value = json_body(body)?;
    let obj = as_object(&value, "a Traccar Client report")?;
    let mut f = Findings::default();
    let device = match obj.get("device_id") {
        Some(Value::String(s)) => device_id(Some(s), "device_id", &mut f),
        Some(Value::Number(n)) => device_id(Some(&n.to_string()), "device_id", &mut f),
        None | Some(Value::Null) => device_id(None, "device_id", &mut f),
        Some(other) => {
            f.unreadable(
                "device_id",
                format!("must be a string, not {}", json_type(other)),
            );
            None
        }
    };
    let mut fixes = Vec::new();
    let mut battery_pct = None;
    match obj.get("location") {
        None | Some(Value::Null) => f.invalid("location", "is required"),
        Some(Value::Array(items)) if items.len() > MAX_TRACCAR_LOCATIONS => f.invalid(
            "location",
            format!("must hold at most {MAX_TRACCAR_LOCATIONS} locations"),
        ),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let at = format!("location[{i}]");
                if let Some((fix, batt)) = traccar_location(item, &at, &mut f) {
                    fixes.push(fix);
                    battery_pct = batt.or(battery_pct);
                }
            }
        }
        Some(item) => {
            if let Some((fix, batt)) = traccar_location(item, "location", &mut f) {
                fixes.push(fix);
                battery_pct = batt;
            }
        }
    }
    let report = device.map(|device| OsmAndReport {
        device,
        fixes,
        battery_pct,
    });
    f.finish(report)
}

/// One location of a Traccar Client body, its fields named under `at`.
fn traccar_location(item: &Value, at: &str, f: &mut Findings) -> Option<(TrackerFix, Option<f64>)> {
    let Value::Object(location) = item else {
        f.unreadable(at, format!("must be an object, not {}", json_type(item)));
        return None;
    };
    let empty = Map::new();
    let coords = match location.get("coords") {
        Some(Value::Object(coords)) => coords,
        None | Some(Value::Null) => &empty,
        Some(other) => {
            f.unreadable(
                &format!("{at}.coords"),
                format!("must be an object, not {}", json_type(other)),
            );
            return None;
        }
    };
    let lat_field = format!("{at}.coords.latitude");
    let lon_field = format!("{at}.coords.longitude");
    let lat = number_field(coords, "latitude", &lat_field, f);
    let lon = number_field(coords, "longitude", &lon_field, f);
    let latitude = required(f, &lat_field, lat, Latitude::parse);
    let longitude = required(f, &lon_field, lon, Longitude::parse);
    let time_field = format!("{at}.timestamp");
    let time = match location.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => f.check(&time_field, s.as_str(), osmand_time),
        Some(Value::Number(n)) => f.check(&time_field, n.to_string().as_str(), osmand_time),
        Some(other) => {
            f.unreadable(
                &time_field,
                format!("must be an ISO 8601 string, not {}", json_type(other)),
            );
            None
        }
    };
    let battery_pct = match location.get("battery") {
        Some(Value::Object(b)) => within(extra(b.get("level")).map(|l| l * 100.0), 0.0, 100.0),
        _ => None,
    };
    let extras = Extras {
        accuracy_m: within(extra(coords.get("accuracy")), 0.0, MAX_ACCURACY_M),
        altitude_m: within(extra(coords.get("altitude")), ALTITUDE_M.0, ALTITUDE_M.1),
        speed_mps: within(extra(coords.get("speed")), 0.0, MAX_SPEED_MPS),
        heading_deg: within(extra(coords.get("heading")), 0.0, 360.0),
        battery_pct,
    };
    Some((
        TrackerFix {
            latitude: latitude?,
            longitude: longitude?,
            time,
            extras,
            app: App::TraccarClient,
        },
        battery_pct,
    ))
}

/// A device id as sent under `field`: required, at most [`MAX_DEVICE_ID_CHARS`] characters.
/// A report without a usable id cannot be read at all (Traccar answers it 400 too).
fn device_id(raw: Option<&str>, field: &str, f: &mut Findings) -> Option<String> {
    match raw.map(str::trim) {
        None | Some("") => {
            f.unreadable(field, "is required");
            None
        }
        Some(s) if s.chars().count() > MAX_DEVICE_ID_CHARS => {
            f.unreadable(
                field,
                format!("must be at most {MAX_DEVICE_ID_CHARS} characters"),
            );
            None
        }
        Some(s) => Some(s.to_string()),
    }
}

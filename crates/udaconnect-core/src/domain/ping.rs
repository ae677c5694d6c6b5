//! A ping before it has an id, built only from valid parts.

use chrono::{DateTime, Utc};

use super::{FixTime, Latitude, Longitude, PersonId};
use crate::error::{Findings, Result};
use crate::tracker::App;

/// A validated ping before the ingest node has given it an id. Its parts can only be valid
/// ones, so whoever holds one need not check it again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewLocation {
    person_id: PersonId,
    latitude: Latitude,
    longitude: Longitude,
    /// `None`: the time of ingest.
    creation_time: Option<FixTime>,
    /// Horizontal accuracy in metres, where a tracker app said it (see [`Self::with_accuracy`]).
    accuracy_m: Option<f64>,
    /// What else the app said (see [`Self::with_telemetry`]).
    telemetry: Telemetry,
}

impl NewLocation {
    pub fn new(
        person_id: PersonId,
        latitude: Latitude,
        longitude: Longitude,
        creation_time: Option<FixTime>,
    ) -> Self {
        NewLocation {
            person_id,
            latitude,
            longitude,
            creation_time,
            accuracy_m: None,
            telemetry: Telemetry::default(),
        }
    }

    /// A ping from the values a transport decoded (gRPC, CSV, the log): every violation at
    /// once, each under the field name and with the message the JSON reading
    /// ([`crate::validate::new_location`]) gives for the same values.
    pub fn parse(
        person_id: i64,
        latitude: f64,
        longitude: f64,
        creation_time: Option<FixTime>,
    ) -> Result<Self> {
        let mut f = Findings::default();
        let parts = ping_parts(
            Read::Value(person_id),
            Read::Value(latitude),
            Read::Value(longitude),
            &mut f,
        );
        f.finish(parts.map(|(p, lat, lon)| NewLocation::new(p, lat, lon, creation_time)))
    }

    pub fn person_id(&self) -> i64 {
        self.person_id.get()
    }

    pub fn latitude(&self) -> f64 {
        self.latitude.get()
    }

    pub fn longitude(&self) -> f64 {
        self.longitude.get()
    }

    /// When the ping was taken; `None`: at ingest.
    pub fn creation_time(&self) -> Option<DateTime<Utc>> {
        self.creation_time.map(FixTime::get)
    }

    /// Horizontal accuracy in metres, where known.
    pub fn accuracy_m(&self) -> Option<f64> {
        self.accuracy_m
    }

    /// The ping with the accuracy its app said; a value that is no radius (negative, not
    /// finite, beyond [`MAX_ACCURACY_M`]) is dropped, as tracker readers drop odd extras.
    pub fn with_accuracy(mut self, accuracy_m: Option<f64>) -> Self {
        self.accuracy_m = accuracy_m.filter(|a| (0.0..=MAX_ACCURACY_M).contains(a));
        self
    }

    /// Altitude, speed, heading, battery and app, each where known.
    pub fn telemetry(&self) -> Telemetry {
        self.telemetry
    }

    /// The ping with what else its app said, each value outside its bounds dropped
    /// ([`Telemetry::checked`]).
    pub fn with_telemetry(mut self, telemetry: Telemetry) -> Self {
        self.telemetry = telemetry.checked();
        self
    }

    /// Gives the ping the time a transport carries beside its other fields.
    pub fn set_creation_time(&mut self, t: Option<FixTime>) {
        self.creation_time = t;
    }
}

/// The largest accuracy a ping keeps, in metres: beyond, a phone's radius says nothing.
pub const MAX_ACCURACY_M: f64 = 1.0e7;
/// The altitudes a ping keeps, in metres: below the deepest trench to the edge of space.
pub const ALTITUDE_M: (f64, f64) = (-12_000.0, 100_000.0);
/// Ten times a jet's speed, in metres per second: anything above is a unit or sensor error.
pub const MAX_SPEED_MPS: f64 = 3_000.0;

/// What a tracker app said of a ping beside its place, time and accuracy, in SI units
/// whatever unit the app used, each only where it said it. Kept on the log record and in the
/// stores, and shown in the export; the contract's location JSON and the contact engine need
/// none of it.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, utoipa::ToSchema)]
pub struct Telemetry {
    /// Above sea level, metres.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 512.0)]
    pub altitude_m: Option<f64>,
    /// Over ground, metres per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 1.4)]
    pub speed_mps: Option<f64>,
    /// Course over ground, degrees clockwise from north, 0 to 360.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 270.0)]
    pub heading_deg: Option<f64>,
    /// Battery level, percent, 0 to 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 81.0)]
    pub battery_pct: Option<f64>,
    /// The app the ping came from: `owntracks` (HTTP or MQTT), `osmand`, `traccar-client` or
    /// `browser`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "owntracks")]
    pub app: Option<App>,
}

impl Telemetry {
    /// Each value where it lies within its bounds (those the tracker readers hold the apps'
    /// fields to); one outside, or not finite, is dropped: an odd field never costs the ping.
    pub fn checked(self) -> Self {
        let within = |x: Option<f64>, lo: f64, hi: f64| x.filter(|x| (lo..=hi).contains(x));
        Telemetry {
            altitude_m: within(self.altitude_m, ALTITUDE_M.0, ALTITUDE_M.1),
            speed_mps: within(self.speed_mps, 0.0, MAX_SPEED_MPS),
            heading_deg: within(self.heading_deg, 0.0, 360.0),
            battery_pct: within(self.battery_pct, 0.0, 100.0),
            app: self.app,
        }
    }
}

/// A field as a reader found it: its value, absent, or unreadable (already reported).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Read<T> {
    Value(T),
    Missing,
    Unreadable,
}

/// The parts of a ping from its fields as read, each checked by its rule in field order, a
/// violation recorded under its field: the one place the fields of a ping meet their rules.
pub(crate) fn ping_parts(
    person_id: Read<i64>,
    latitude: Read<f64>,
    longitude: Read<f64>,
    f: &mut Findings,
) -> Option<(PersonId, Latitude, Longitude)> {
    let person_id = required(f, "person_id", person_id, PersonId::parse);
    let latitude = required(f, "latitude", latitude, Latitude::parse);
    let longitude = required(f, "longitude", longitude, Longitude::parse);
    Some((person_id?, latitude?, longitude?))
}

pub(crate) fn required<T, U>(
    f: &mut Findings,
    field: &str,
    value: Read<T>,
    rule: impl FnOnce(T) -> std::result::Result<U, String>,
) -> Option<U> {
    match value {
        Read::Value(v) => f.check(field, v, rule),
        Read::Missing => {
            f.invalid(field, "is required");
            None
        }
        Read::Unreadable => None,
    }
}

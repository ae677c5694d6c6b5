//! Persons and locations as the API and the stores see them.
//!
//! Ids are `i64` on the inside and JSON integers below 2^53 on the outside, so a browser reads
//! them exactly: [`MAX_ID`] bounds every id the product hands out or accepts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::time::format_utc;

/// The largest id a JavaScript number holds exactly (2^53 - 1).
pub const MAX_ID: i64 = (1 << 53) - 1;

/// Ids as stored and sent; [`crate::domain::PersonId`] and [`crate::domain::LocationId`] are
/// ids known to be in range.
pub type PersonId = i64;
pub type LocationId = i64;

/// A validated ping, built from validated parts (see [`crate::domain`]), and what a tracker
/// app says beside it.
pub use crate::domain::{NewLocation, Telemetry};

/// An attendee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Person {
    #[schema(example = 5)]
    pub id: PersonId,
    #[schema(example = "Taco")]
    pub first_name: String,
    #[schema(example = "Fargo")]
    pub last_name: String,
    #[schema(example = "Alpha Omega Upholstery")]
    pub company_name: String,
}

/// A person before the store has given it an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPerson {
    pub first_name: String,
    pub last_name: String,
    pub company_name: String,
}

/// One location ping of one person, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Location {
    #[schema(example = 29)]
    pub id: LocationId,
    #[schema(example = 1)]
    pub person_id: PersonId,
    #[schema(example = 37.553441)]
    pub latitude: f64,
    #[schema(example = -122.290524)]
    pub longitude: f64,
    /// Always UTC, RFC 3339 with `Z`; fractional seconds only when present.
    #[serde(with = "utc_rfc3339")]
    #[schema(value_type = String, format = DateTime, example = "2020-08-18T10:37:06Z")]
    pub creation_time: DateTime<Utc>,
    /// Horizontal accuracy (radius) in metres where the phone said it (tracker apps do). Kept
    /// on the log and in the stores; the contract's location JSON stays as it was, without it.
    #[serde(skip)]
    pub accuracy_m: Option<f64>,
    /// Altitude, speed, heading, battery and app where a tracker app said them: kept as the
    /// accuracy is, and as it is left out of the contract's location JSON.
    #[serde(skip)]
    pub telemetry: Telemetry,
}

/// A location with all that is kept of it: the contract's fields, then the accuracy and the
/// telemetry, each only when known, so a location without them is the contract's JSON byte
/// for byte. The log record's JSON, and a ping in the export.
#[derive(Serialize)]
pub struct KeptLocation<'a> {
    #[serde(flatten)]
    location: &'a Location,
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy_m: Option<f64>,
    #[serde(flatten)]
    telemetry: &'a Telemetry,
}

impl<'a> KeptLocation<'a> {
    pub fn of(location: &'a Location) -> Self {
        KeptLocation {
            location,
            accuracy_m: location.accuracy_m,
            telemetry: &location.telemetry,
        }
    }
}

/// One answer row of the connection query: another person and one of their locations.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Connection {
    pub person: Person,
    pub location: Location,
}

mod utc_rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_utc(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = String::deserialize(d)?;
        crate::time::parse_timestamp(&raw).map_err(serde::de::Error::custom)
    }
}

impl Location {
    /// The wire form of [`Location::creation_time`].
    pub fn creation_time_string(&self) -> String {
        format_utc(self.creation_time)
    }
}

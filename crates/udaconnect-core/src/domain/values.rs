//! The values a ping or a query is made of, each only buildable within its rule. Every rule is
//! written here once, with the message that names what is wrong; the transports record it
//! under the field the client sent.

use std::fmt::Display;

use crate::model::MAX_ID;

/// Largest distance a connection query may ask for, in metres.
pub const MAX_DISTANCE_M: f64 = 1000.0;
/// Distance used when a query names none, in metres.
pub const DEFAULT_DISTANCE_M: f64 = 5.0;
/// Largest time gap, in seconds: a year, beyond which the condition means nothing.
pub const MAX_TIME_GAP_S: f64 = 366.0 * 86_400.0;

/// Degrees north of the equator, -90 to 90.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Latitude(f64);

impl Latitude {
    pub fn parse(degrees: f64) -> Result<Self, String> {
        coordinate(degrees, 90.0).map(Latitude)
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

/// Degrees east of Greenwich, -180 to 180.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Longitude(f64);

impl Longitude {
    pub fn parse(degrees: f64) -> Result<Self, String> {
        coordinate(degrees, 180.0).map(Longitude)
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

/// A finite number within `[-limit, limit]`, as it came except that `-0.0` becomes `0.0`: the
/// same point, and the stores cannot keep the sign, so every reader of a ping (the index fed
/// from the log included) sees the value the stores answer.
fn coordinate(v: f64, limit: f64) -> Result<f64, String> {
    if !v.is_finite() {
        Err("must be a finite number".into())
    } else if !(-limit..=limit).contains(&v) {
        Err(format!("{v} is outside [-{limit}, {limit}]"))
    } else if v == 0.0 {
        Ok(0.0)
    } else {
        Ok(v)
    }
}

/// The id of a person: 1 to 2^53-1, so a browser reads it exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PersonId(i64);

impl PersonId {
    pub fn parse(id: i64) -> Result<Self, String> {
        id_in_range(id).map(PersonId)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// The id of a location: 1 to 2^53-1, as every id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocationId(i64);

impl LocationId {
    pub fn parse(id: i64) -> Result<Self, String> {
        id_in_range(id).map(LocationId)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

fn id_in_range(id: i64) -> Result<i64, String> {
    if (1..=MAX_ID).contains(&id) {
        Ok(id)
    } else {
        Err(not_an_id(id))
    }
}

/// Why `shown` (an integer out of range, or a value that is no integer) is not an id.
pub(crate) fn not_an_id(shown: impl Display) -> String {
    format!("{shown} is not an id (1 to 2^53-1)")
}

/// How near two pings must be to count as met, in metres: more than 0, at most
/// [`MAX_DISTANCE_M`].
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Distance(f64);

impl Distance {
    /// [`DEFAULT_DISTANCE_M`].
    pub const DEFAULT: Distance = Distance(DEFAULT_DISTANCE_M);

    pub fn parse(metres: f64) -> Result<Self, String> {
        if metres > 0.0 && metres <= MAX_DISTANCE_M {
            Ok(Distance(metres))
        } else {
            Err(format!("{metres} is outside (0, {MAX_DISTANCE_M}] metres"))
        }
    }

    pub fn metres(self) -> f64 {
        self.0
    }
}

/// A span a query allows or asks for (the gap between two pings, how long a contact lasts):
/// given in seconds from 0 up to a bound of at most [`MAX_TIME_GAP_S`], kept in whole
/// microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeGap(i64);

impl TimeGap {
    /// Seconds from 0 to [`MAX_TIME_GAP_S`].
    pub fn parse(seconds: f64) -> Result<Self, String> {
        Self::parse_at_most(seconds, MAX_TIME_GAP_S)
    }

    /// Seconds from 0 to `max_s` (itself at most [`MAX_TIME_GAP_S`]).
    pub fn parse_at_most(seconds: f64, max_s: f64) -> Result<Self, String> {
        let max_s = max_s.min(MAX_TIME_GAP_S);
        if (0.0..=max_s).contains(&seconds) {
            Ok(TimeGap((seconds * 1e6).round() as i64))
        } else {
            Err(format!("{seconds} is outside [0, {max_s}] seconds"))
        }
    }

    pub fn micros(self) -> i64 {
        self.0
    }
}

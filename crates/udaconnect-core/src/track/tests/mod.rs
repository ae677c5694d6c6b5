//! Tests of the track semantics: the pair function against sampling, the oracle against
//! reordered input and an engine-shaped path, and the scenarios.

use super::*;
use crate::geo::EARTH_RADIUS_M;

pub(crate) mod oracle;
mod pair;
mod scenarios;

const S: i64 = 1_000_000;
/// A city centre the scenarios take place around.
const CITY: (f64, f64) = (37.55, -122.29);

/// The point `east_m`, `north_m` metres from `centre` on the local tangent plane, longitude
/// wrapped into [-180, 180].
pub(crate) fn offset(centre: (f64, f64), east_m: f64, north_m: f64) -> (f64, f64) {
    let lat = (centre.0 + (north_m / EARTH_RADIUS_M).to_degrees()).clamp(-90.0, 90.0);
    let cos = centre.0.to_radians().cos().max(1e-6);
    let mut lon = centre.1 + (east_m / (EARTH_RADIUS_M * cos)).to_degrees();
    if lon > 180.0 {
        lon -= 360.0;
    } else if lon < -180.0 {
        lon += 360.0;
    }
    (lat, lon)
}

/// A walk as waypoints (seconds, metres east, metres north) around [`CITY`], straight and at
/// constant speed between them, standing still before the first and after the last.
struct Walk(Vec<(f64, f64, f64)>);

impl Walk {
    fn at(&self, t: f64) -> (f64, f64) {
        let w = &self.0;
        let i = w.partition_point(|p| p.0 <= t);
        if i == 0 {
            return (w[0].1, w[0].2);
        }
        if i == w.len() {
            return (w[i - 1].1, w[i - 1].2);
        }
        let (a, b) = (w[i - 1], w[i]);
        let f = (t - a.0) / (b.0 - a.0);
        (a.1 + (b.1 - a.1) * f, a.2 + (b.2 - a.2) * f)
    }
}

/// A phone: the pings of `person` on `walk` every `interval_s` from `phase_s`, up to `until_s`,
/// none while `silent` (seconds, half-open); ids from `first_id` on.
struct Phone {
    person: i64,
    interval_s: f64,
    phase_s: f64,
    silent: Option<(f64, f64)>,
}

impl Phone {
    fn pings(&self, walk: &Walk, until_s: f64, first_id: i64) -> Vec<Point> {
        // Whole microseconds from the start, so every gap is the interval exactly.
        let micros = |s: f64| (s * S as f64).round() as i64;
        let (phase, every) = (micros(self.phase_s), micros(self.interval_s));
        let mut out = Vec::new();
        for t in (0..)
            .map(|k| phase + k * every)
            .take_while(|&t| t <= micros(until_s))
        {
            let secs = t as f64 / S as f64;
            if self.silent.is_some_and(|(a, b)| a <= secs && secs < b) {
                continue;
            }
            let (east, north) = walk.at(secs);
            let (lat, lon) = offset(CITY, east, north);
            out.push(Point {
                id: first_id + out.len() as i64,
                person_id: self.person,
                lat,
                lon,
                t,
                acc: Default::default(),
            });
        }
        out
    }
}

fn everything() -> Window {
    Window {
        start: 0,
        end: i64::MAX / 2,
    }
}

/// Answers compared to the bit: `Debug` prints the shortest text that reads back as the same
/// number, so equal text means equal bits.
pub(crate) fn bits(contacts: &[Contact]) -> String {
    format!("{contacts:?}")
}

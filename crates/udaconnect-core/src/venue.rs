//! A venue plan in local metres, and the mapping between it and latitude/longitude.
//!
//! Plans are small (a few hundred metres), so an equirectangular projection around the origin
//! is exact to well under GPS precision there.

use serde::{Deserialize, Serialize};

use crate::geo::EARTH_RADIUS_M;

/// What an area of the venue is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AreaKind {
    /// A room where talks are held.
    Room,
    /// An exhibitor's booth in the expo hall.
    Booth,
    /// Where coffee and lunch are served.
    Catering,
    Entrance,
    /// The open floor between the others.
    Hall,
}

/// A rectangle of the plan: `x` east and `y` north of the venue's south-west corner, metres.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Area {
    pub kind: AreaKind,
    pub name: String,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub depth: f64,
}

impl Area {
    pub fn centre(&self) -> (f64, f64) {
        (self.x + self.width / 2.0, self.y + self.depth / 2.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LatLon {
    pub latitude: f64,
    pub longitude: f64,
}

/// A venue: its south-west corner on Earth, its size, and its areas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Venue {
    pub name: String,
    pub origin: LatLon,
    pub width_m: f64,
    pub depth_m: f64,
    pub areas: Vec<Area>,
}

impl Venue {
    /// The position of a point `x` metres east and `y` metres north of the origin.
    pub fn to_lat_lon(&self, x: f64, y: f64) -> (f64, f64) {
        let lat0 = self.origin.latitude.to_radians();
        let lat = self.origin.latitude + (y / EARTH_RADIUS_M).to_degrees();
        let lon = self.origin.longitude + (x / (EARTH_RADIUS_M * lat0.cos())).to_degrees();
        (lat, lon)
    }

    /// The local coordinates of a position.
    pub fn to_local(&self, lat: f64, lon: f64) -> (f64, f64) {
        let lat0 = self.origin.latitude.to_radians();
        let y = (lat - self.origin.latitude).to_radians() * EARTH_RADIUS_M;
        let x = (lon - self.origin.longitude).to_radians() * EARTH_RADIUS_M * lat0.cos();
        (x, y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::haversine_m;

    #[test]
    fn local_metres_round_trip_and_match_haversine() {
        let v = Venue {
            name: "hall".into(),
            origin: LatLon {
                latitude: 37.55,
                longitude: -122.29,
            },
            width_m: 300.0,
            depth_m: 300.0,
            areas: Vec::new(),
        };
        let (lat, lon) = v.to_lat_lon(120.0, 250.0);
        let (x, y) = v.to_local(lat, lon);
        assert!((x - 120.0).abs() < 1e-6 && (y - 250.0).abs() < 1e-6);
        let (lat2, lon2) = v.to_lat_lon(123.0, 254.0);
        assert!((haversine_m(lat, lon, lat2, lon2) - 5.0).abs() < 0.001);
    }
}

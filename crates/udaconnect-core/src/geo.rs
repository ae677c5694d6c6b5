//! Great-circle distance on the sphere the contract names, and the 3-D embedding the contact
//! engine uses to bucket points without special cases at the poles or the antimeridian.

/// Radius of the sphere distances are measured on: the IUGG mean Earth radius, as the contract
/// fixes it, so every storage mode computes the same distances.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Slack added to a distance threshold before comparing. A point placed "exactly" at the
/// threshold by a client lands a few ulps either side of it after degrees-to-radians and
/// trigonometry; one micrometre (far below GPS precision) makes such points count, as the
/// contract says they must, in every mode alike.
pub const DISTANCE_SLACK_M: f64 = 1e-6;

/// Haversine distance in metres between two (latitude, longitude) points in degrees.
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    haversine_cos_m(
        lat1,
        lon1,
        lat1.to_radians().cos(),
        lat2,
        lon2,
        lat2.to_radians().cos(),
    )
}

/// [`haversine_m`] with the cosines of both latitudes given: a point compared with many others
/// computes its cosine once. Same arithmetic in the same order, so the same result to the bit.
pub fn haversine_cos_m(lat1: f64, lon1: f64, cos1: f64, lat2: f64, lon2: f64, cos2: f64) -> f64 {
    let dphi = lat2.to_radians() - lat1.to_radians();
    let dlambda = (lon2 - lon1).to_radians();
    let s_phi = (dphi / 2.0).sin();
    let s_lambda = (dlambda / 2.0).sin();
    let h = s_phi * s_phi + cos1 * cos2 * s_lambda * s_lambda;
    // Rounding can push h a hair above 1 for antipodal points; asin would then return NaN.
    2.0 * EARTH_RADIUS_M * h.clamp(0.0, 1.0).sqrt().asin()
}

/// Whether two points are within `distance_m` of each other (inclusive, with
/// [`DISTANCE_SLACK_M`]). The one predicate every mode and the oracle use.
pub fn within(lat1: f64, lon1: f64, lat2: f64, lon2: f64, distance_m: f64) -> bool {
    haversine_m(lat1, lon1, lat2, lon2) <= distance_m + DISTANCE_SLACK_M
}

/// [`within`] with both latitudes' cosines given (see [`haversine_cos_m`]).
pub fn within_cos(a: (f64, f64, f64), b: (f64, f64, f64), distance_m: f64) -> bool {
    haversine_cos_m(a.0, a.1, a.2, b.0, b.1, b.2) <= distance_m + DISTANCE_SLACK_M
}

/// A point on the sphere as Cartesian coordinates in metres (Earth-centred). Straight-line
/// (chord) distance between two such points grows monotonically with great-circle distance,
/// so a uniform 3-D grid finds all neighbours with no seam at the antimeridian and no
/// degenerate cells at the poles.
pub fn to_cartesian(lat: f64, lon: f64) -> [f64; 3] {
    let (phi, lambda) = (lat.to_radians(), lon.to_radians());
    let c = phi.cos();
    [
        EARTH_RADIUS_M * c * lambda.cos(),
        EARTH_RADIUS_M * c * lambda.sin(),
        EARTH_RADIUS_M * phi.sin(),
    ]
}

/// The chord length, in metres, that corresponds to a great-circle distance.
pub fn chord_for_arc_m(arc_m: f64) -> f64 {
    let half_angle = (arc_m / (2.0 * EARTH_RADIUS_M)).min(std::f64::consts::FRAC_PI_2);
    2.0 * EARTH_RADIUS_M * half_angle.sin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_distances() {
        // One degree of latitude on this sphere.
        let one_degree = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
        assert!((haversine_m(0.0, 0.0, 1.0, 0.0) - one_degree).abs() < 1e-6);
        // Across the antimeridian: 0.0001 degrees of longitude at the equator.
        let d = haversine_m(0.0, 179.99995, 0.0, -179.99995);
        assert!((d - one_degree * 0.0001).abs() < 1e-6, "{d}");
        // Any two points at a pole coincide whatever their longitude.
        assert!(haversine_m(90.0, 10.0, 90.0, -170.0) < 1e-6);
        // Antipodes: half the circumference, never NaN.
        let half = haversine_m(0.0, 0.0, 0.0, 180.0);
        assert!((half - EARTH_RADIUS_M * std::f64::consts::PI).abs() < 1e-3);
    }

    #[test]
    fn cosines_given_change_nothing() {
        for (a, b) in [
            ((37.5, -122.2), (37.50003, -122.20001)),
            ((89.9, 10.0), (89.8999, -170.0)),
            ((0.0, 179.9999), (0.0, -179.9999)),
        ] {
            let with = haversine_cos_m(
                a.0,
                a.1,
                a.0.to_radians().cos(),
                b.0,
                b.1,
                b.0.to_radians().cos(),
            );
            assert_eq!(with.to_bits(), haversine_m(a.0, a.1, b.0, b.1).to_bits());
        }
    }

    #[test]
    fn exact_threshold_counts() {
        let five_m_in_degrees = (5.0 / EARTH_RADIUS_M).to_degrees();
        assert!(within(10.0, 20.0, 10.0 + five_m_in_degrees, 20.0, 5.0));
        assert!(!within(
            10.0,
            20.0,
            10.0 + five_m_in_degrees * 1.001,
            20.0,
            5.0
        ));
    }

    #[test]
    fn chord_never_exceeds_arc() {
        for arc in [0.001, 1.0, 5.0, 1000.0] {
            let c = chord_for_arc_m(arc);
            assert!(c <= arc && c > arc * 0.999_999, "{arc} {c}");
        }
    }
}

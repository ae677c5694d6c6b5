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

/// Whether a ping's latitude and longitude came swapped, as the original data and the original
/// gRPC sample client have them: a latitude beyond ±90 cannot be one, and the pair swapped is
/// a valid point. The one rule for every legacy source (the CSV import of original dumps, the
/// original gRPC `Create`, keyless records of the original producers). A pair that fits
/// neither order (or is not finite) is left as it came, so it is refused naming the values the
/// client sent.
pub fn axes_swapped(latitude: f64, longitude: f64) -> bool {
    latitude.abs() > 90.0 && latitude.abs() <= 180.0 && longitude.abs() <= 90.0
}

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

/// Whether two points are within `distance_m`, settled without trigonometry when the answer is
/// clear: `Some` exactly when [`within_cos`] would say the same, `None` near the threshold (or for
/// points far apart in angle), where the caller must ask [`within_cos`]. `a` is (latitude,
/// longitude, cosine of latitude); only `b`'s position is needed.
///
/// Why it is exact: with `dphi`, `dlambda` under 1e-3 radians, `sin x` is `x` to a relative 1e-7
/// and so is `asin`, so `R^2 (dphi^2 + cos1 cos2 dlambda^2)` is the squared haversine distance to
/// a relative 1e-6; `cos2` is bounded from `cos1` by `|cos2 - cos1| <= |dphi| (1 + |dphi|)`. A
/// margin of 1e-4 either side, and 0.1 um, leave room for all of that and for rounding.
#[inline]
pub fn within_quick(a: (f64, f64, f64), b_lat: f64, b_lon: f64, distance_m: f64) -> Option<bool> {
    const SMALL: f64 = 1e-3;
    const MARGIN: f64 = 1e-4;
    let dphi = b_lat.to_radians() - a.0.to_radians();
    let mut dlambda = (b_lon - a.1).to_radians();
    // sin^2(dlambda / 2) has period 2 pi: across the antimeridian, take the short way round.
    if dlambda > std::f64::consts::PI {
        dlambda -= std::f64::consts::TAU;
    } else if dlambda < -std::f64::consts::PI {
        dlambda += std::f64::consts::TAU;
    }
    if dphi.abs() > SMALL || dlambda.abs() > SMALL {
        return None;
    }
    let spread = dphi.abs() * (1.0 + dphi.abs());
    let (cos_low, cos_high) = (a.2 * (a.2 - spread).max(0.0), a.2 * (a.2 + spread));
    let r2 = EARTH_RADIUS_M * EARTH_RADIUS_M;
    let low = r2 * (dphi * dphi + cos_low * dlambda * dlambda) * (1.0 - MARGIN);
    // Rounding in the differences above is a few nanometres whatever the distance.
    const ROUNDING_M: f64 = 1e-7;
    let beyond = distance_m + DISTANCE_SLACK_M + ROUNDING_M;
    if low > beyond * beyond {
        return Some(false);
    }
    let high = r2 * (dphi * dphi + cos_high * dlambda * dlambda) * (1.0 + MARGIN);
    let inside = distance_m - ROUNDING_M;
    if inside > 0.0 && high < inside * inside {
        return Some(true);
    }
    None
}

/// [`within_cos`] through [`within_quick`]: the second cosine and the trigonometry only near
/// the threshold.
#[inline]
pub fn within_fast(a: (f64, f64, f64), b_lat: f64, b_lon: f64, distance_m: f64) -> bool {
    within_quick(a, b_lat, b_lon, distance_m)
        .unwrap_or_else(|| within_near_threshold(a, b_lat, b_lon, distance_m))
}

// Out of line and cold: inlined, the compiler computes the cosine ahead for every pair.
#[cold]
#[inline(never)]
fn within_near_threshold(a: (f64, f64, f64), b_lat: f64, b_lon: f64, distance_m: f64) -> bool {
    within_cos(a, (b_lat, b_lon, b_lat.to_radians().cos()), distance_m)
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

/// The latitude and longitude, in degrees, of the direction of an Earth-centred vector (of any
/// length): the inverse of [`to_cartesian`], and the spherical mean of vectors summed.
pub fn to_lat_lon(xyz: [f64; 3]) -> (f64, f64) {
    let [x, y, z] = xyz;
    let lat = z.atan2((x * x + y * y).sqrt()).to_degrees();
    let lon = y.atan2(x).to_degrees();
    (lat, lon)
}

/// The chord length, in metres, that corresponds to a great-circle distance.
pub fn chord_for_arc_m(arc_m: f64) -> f64 {
    let half_angle = (arc_m / (2.0 * EARTH_RADIUS_M)).min(std::f64::consts::FRAC_PI_2);
    2.0 * EARTH_RADIUS_M * half_angle.sin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::RngExt;

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

    /// The quick test never disagrees with the exact one: random pairs around the threshold, at
    /// every latitude, across the antimeridian and at the poles.
    #[test]
    fn quick_test_agrees_with_the_exact_one() {
        let mut rng = crate::seeded_rng(11);
        let mut settled = 0;
        for i in 0..400_000 {
            let lat = match i % 5 {
                0 => 89.99 + rng.random::<f64>() * 0.01,
                1 => -90.0 + rng.random::<f64>() * 0.01,
                _ => rng.random_range(-90.0..90.0),
            };
            let lon = if i % 11 == 0 {
                179.9999
            } else {
                rng.random_range(-180.0..180.0)
            };
            let distance = [5.0, 0.5, 30.0, 1000.0, 1e-3, 1e-6, 2e-7][i % 7];
            // Offsets up to twice the distance, many of them right at it.
            let scale = if i % 3 == 0 {
                1.0 + rng.random_range(-1e-6..1e-6)
            } else {
                rng.random_range(0.0..2.0)
            };
            let bearing = rng.random_range(0.0..std::f64::consts::TAU);
            let arc = distance * scale / EARTH_RADIUS_M;
            let blat = (lat + (arc * bearing.cos()).to_degrees()).clamp(-90.0, 90.0);
            let coslat = lat.to_radians().cos().max(1e-9);
            let mut blon = lon + (arc * bearing.sin() / coslat).to_degrees();
            if blon > 180.0 {
                blon -= 360.0;
            }
            let a = (lat, lon, lat.to_radians().cos());
            let exact = within(lat, lon, blat, blon, distance);
            if let Some(quick) = within_quick(a, blat, blon, distance) {
                settled += 1;
                assert_eq!(quick, exact, "{lat} {lon} {blat} {blon} {distance}");
            }
            assert_eq!(within_fast(a, blat, blon, distance), exact);
        }
        // Pairs away from the threshold (two in three here) are mostly settled without
        // trigonometry.
        assert!(settled > 140_000, "{settled}");
    }

    #[test]
    fn chord_never_exceeds_arc() {
        for arc in [0.001, 1.0, 5.0, 1000.0] {
            let c = chord_for_arc_m(arc);
            assert!(c <= arc && c > arc * 0.999_999, "{arc} {c}");
        }
    }
}

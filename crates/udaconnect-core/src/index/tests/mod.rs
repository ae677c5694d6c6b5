//! The index against the brute-force oracle of [`crate::contact`], and its parts against
//! plain scans.

mod build;
mod cancel;
mod grid;
mod layout;
mod oracle;
mod tracks;

use super::*;
use crate::contact::{ConnectionQuery, TEST_CENTRES};
use crate::geo::EARTH_RADIUS_M;
use proptest::prelude::*;

const S: i64 = 1_000_000;

fn deg(m: f64) -> f64 {
    (m / EARTH_RADIUS_M).to_degrees()
}

fn arb_points() -> impl Strategy<Value = Vec<Point>> {
    let centres = prop::sample::select(&TEST_CENTRES[..]);
    let spread = prop_oneof![Just(20.0), Just(300.0), Just(3000.0)];
    let point = (
        centres,
        spread,
        -1.0..1.0f64,
        -1.0..1.0f64,
        1..7i64,
        0..60i64,
    );
    prop::collection::vec(point, 0..200).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, ((clat, clon), spread, dn, de, person, t10))| {
                let lat = (clat + deg(dn * spread)).clamp(-90.0, 90.0);
                let mut lon = clon + deg(de * spread) / clat.to_radians().cos().max(1e-3);
                lon = ((lon + 540.0) % 360.0) - 180.0;
                Point {
                    id: i as i64 + 1,
                    person_id: person,
                    lat,
                    lon,
                    t: t10 * 20 * S,
                    acc: Default::default(),
                }
            })
            .collect()
    })
}

/// The index's answer as points.
fn answer(index: &ContactIndex, q: &ConnectionQuery) -> Vec<Point> {
    index
        .connections(q)
        .iter()
        .map(|&s| index.point(s))
        .collect()
}

/// Threads for the index under test: more than one whatever the machine, so every test takes
/// the split paths too.
fn workers() -> DynWorkers {
    Arc::new(Threads::new(4))
}

fn build(points: &[Point]) -> ContactIndex {
    let mut index = ContactIndex::new(workers());
    for p in points {
        index.insert(p);
    }
    index
}

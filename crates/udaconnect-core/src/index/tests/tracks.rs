//! Contacts over tracks from the index against the oracle of [`crate::track`], with the index
//! fed live in any order, loaded in bulk, and laid out again.

use super::*;
use crate::track::tests::oracle::{arb_accuracy, arb_points, arb_query};
use crate::track::tests::{bits, offset};
use crate::track::{contacts_oracle, TrackQuery};

/// Up to four persons walking around one centre (a city, the antimeridian, a pole): mostly
/// steps of a few metres (short hops), sometimes a jump to anywhere within 30 m or 400 m (long
/// hops, whose paths cross the others' far from either ping); time gaps of zero, within the
/// interpolation limit and beyond it; ids shuffled, so arrival order is not time order.
fn arb_walks() -> impl Strategy<Value = Vec<Point>> {
    let gap = prop_oneof![1 => Just(0i64), 5 => 1..300i64, 1 => 300..900i64];
    let step = prop_oneof![
        6 => (-6.0..6.0f64, -6.0..6.0f64).prop_map(|(e, n)| (e, n, false)),
        2 => (-30.0..30.0f64, -30.0..30.0f64).prop_map(|(e, n)| (e, n, true)),
        1 => (-400.0..400.0f64, -400.0..400.0f64).prop_map(|(e, n)| (e, n, true)),
    ];
    let centre = prop::sample::select(&TEST_CENTRES[..]);
    (
        centre,
        prop::collection::vec((1..=4i64, gap, step, arb_accuracy()), 0..80),
    )
        .prop_flat_map(|(centre, raw)| {
            let ids: Vec<i64> = (1..=raw.len() as i64).collect();
            (Just(centre), Just(raw), Just(ids).prop_shuffle())
        })
        .prop_map(|(centre, raw, ids)| {
            let mut clock = [0i64; 5];
            let mut at = [(0.0f64, 0.0f64); 5];
            raw.into_iter()
                .zip(ids)
                .map(|((person, gap, (e, n, jump), acc), id)| {
                    let k = person as usize;
                    clock[k] += gap;
                    at[k] = if jump {
                        (e, n)
                    } else {
                        (at[k].0 + e, at[k].1 + n)
                    };
                    let (lat, lon) = offset(centre, at[k].0, at[k].1);
                    Point {
                        id,
                        person_id: person,
                        lat,
                        lon,
                        t: clock[k] * S,
                        acc,
                    }
                })
                .collect()
        })
}

/// Points with every fifth one moved `jump` degrees north (kept on the sphere): hops of up to
/// kilometres, which the index keeps apart from the grid of pings.
fn jumped(points: Vec<Point>, jump: f64) -> Vec<Point> {
    points
        .into_iter()
        .map(|mut p| {
            if p.id % 5 == 0 {
                p.lat = (p.lat + jump).clamp(-90.0, 90.0);
            }
            p
        })
        .collect()
}

/// Whether every row holds its position in its person's track.
fn positions_hold(index: &ContactIndex) -> bool {
    index.tracks.iter().all(|track| {
        track
            .iter()
            .enumerate()
            .all(|(i, &s)| index.rows[s as usize].at == i as u32)
    })
}

/// The index's answer, by each way of building it, checked equal to the oracle's.
fn check_all_ways(points: &[Point], q: &TrackQuery, seed: u64) -> Result<(), TestCaseError> {
    let expected = bits(&contacts_oracle(points, q));
    // Live, in a shuffled order: late pings split pieces already there.
    let mut shuffled = points.to_vec();
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(
            i,
            (seed.wrapping_mul(i as u64 + 11) % (i as u64 + 1)) as usize,
        );
    }
    let mut live = build(&shuffled);
    prop_assert!(positions_hold(&live), "live");
    prop_assert_eq!(bits(&live.track_contacts(q)), expected.clone(), "live");
    live.compact();
    prop_assert!(positions_hold(&live), "compacted");
    prop_assert_eq!(bits(&live.track_contacts(q)), expected.clone(), "compacted");
    // In bulk with the first half, then the rest live.
    let half = shuffled.len() / 2;
    let mut bulk = ContactIndex::bulk(shuffled[..half].iter().copied(), half, workers());
    prop_assert!(positions_hold(&bulk), "bulk");
    for p in &shuffled[half..] {
        bulk.insert(p);
    }
    prop_assert!(positions_hold(&bulk), "bulk then live");
    prop_assert_eq!(bits(&bulk.track_contacts(q)), expected, "bulk then live");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn track_contacts_equal_the_oracle(
        pts in arb_points(),
        jump in prop_oneof![2 => Just(0.0), 1 => 0.0..0.05f64],
        q in arb_query(),
        seed in any::<u64>(),
    ) {
        check_all_ways(&jumped(pts, jump), &q, seed)?;
    }

    #[test]
    fn track_contacts_of_walks_equal_the_oracle(
        pts in arb_walks(),
        q in arb_query(),
        seed in any::<u64>(),
    ) {
        let q = TrackQuery { person_id: q.person_id.min(4), ..q };
        check_all_ways(&pts, &q, seed)?;
    }
}

#[test]
fn a_ping_between_two_far_apart_splits_their_long_hop() {
    let at = |id, lat: f64, t_s: i64| Point {
        id,
        person_id: id % 2,
        lat,
        lon: 10.0,
        t: t_s * S,
        acc: Default::default(),
    };
    // Person 1 jumps 1.1 km north in 200 s and passes person 0 standing half-way; a late
    // ping of person 1 far east in the middle then takes that pass away.
    let mut points = vec![
        at(1, 50.0, 0),
        at(3, 50.01, 200),
        at(0, 50.005, 0),
        at(2, 50.005, 200),
    ];
    let mut q = TrackQuery::new(
        0,
        crate::time::Window {
            start: 0,
            end: 300 * S,
        },
    );
    q.min_duration_us = 0;
    let index = build(&points);
    let met = index.track_contacts(&q);
    assert_eq!(met.len(), 1, "{met:?}");
    assert_eq!(bits(&met), bits(&contacts_oracle(&points, &q)));
    let late = Point {
        id: 5,
        person_id: 1,
        lat: 50.005,
        lon: 10.5,
        t: 100 * S,
        acc: Default::default(),
    };
    points.push(late);
    let mut index = index;
    index.insert(&late);
    assert!(index.track_contacts(&q).is_empty());
    assert_eq!(
        bits(&index.track_contacts(&q)),
        bits(&contacts_oracle(&points, &q))
    );
}

/// The index with its long hops stays within 72 bytes per ping on a conference where every
/// attendee walks between booths (hops up to 108 m between 90 s pings, most of them long).
#[test]
fn memory_per_ping_stays_within_72_bytes() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let (persons, pings) = (1000i64, 200i64);
    let mut points = Vec::with_capacity((persons * pings) as usize);
    for person in 0..persons {
        let (mut east, mut north) = (next() * 100.0, next() * 60.0);
        let phase = (next() * 90.0 * S as f64) as i64;
        for k in 0..pings {
            if next() < 0.8 {
                // A walk towards another booth, at most 1.2 m/s for the interval.
                east = (east + (next() - 0.5) * 150.0).clamp(0.0, 100.0);
                north = (north + (next() - 0.5) * 150.0).clamp(0.0, 60.0);
            }
            let (lat, lon) = offset((37.55, -122.29), east, north);
            points.push(Point {
                id: person * pings + k + 1,
                person_id: person,
                lat,
                lon,
                t: phase + k * 90 * S,
                // Every ping says its accuracy: it rides in the row's id, at no byte.
                acc: crate::contact::Acc::of(Some(next() * 100.0)),
            });
        }
    }
    let mut index = ContactIndex::bulk(points.iter().copied(), points.len(), workers());
    index.shrink_to_fit();
    let per_ping = index.heap_bytes() as f64 / points.len() as f64;
    assert!(per_ping <= 72.0, "{per_ping} bytes per ping");
    eprintln!("{per_ping:.1} bytes per ping");
}

proptest! {
    /// Contacts over tracks from an index without the pings before a cut equal the oracle's
    /// over the pings kept: a track's first piece starts at its first kept ping.
    #[test]
    fn track_contacts_without_old_pings_equal_the_oracle_on_the_rest(
        pts in arb_points(),
        cut in -100..8000i64,
        q in arb_query(),
    ) {
        let index = build(&pts);
        let cut = cut * S;
        let kept: Vec<Point> = pts.iter().filter(|p| p.t >= cut).copied().collect();
        let without = index.without_before(cut).unwrap_or(index);
        prop_assert_eq!(without.len(), kept.len());
        prop_assert_eq!(bits(&without.track_contacts(&q)), bits(&contacts_oracle(&kept, &q)));
    }
}

use proptest::prelude::*;

use super::*;
use crate::contact::{Acc, TEST_CENTRES};

/// Up to five persons' pings around one centre (a city, the antimeridian, a pole): gaps of zero
/// (equal times), within the interpolation limit and beyond it (holes, isolated pings), offsets
/// on a 2.5 m lattice (so distances fall exactly on thresholds) or anywhere; ids shuffled.
pub(crate) fn arb_points() -> impl Strategy<Value = Vec<Point>> {
    let gap = prop_oneof![1 => Just(0i64), 4 => 1..300i64, 2 => 300..1200i64];
    let place = prop_oneof![
        (-4..=4i32, -4..=4i32).prop_map(|(e, n)| (e as f64 * 2.5, n as f64 * 2.5)),
        (-12.0..12.0f64, -12.0..12.0f64),
    ];
    let ping = (1..=5i64, gap, place, arb_accuracy());
    let centre = prop::sample::select(&TEST_CENTRES[..]);
    (centre, prop::collection::vec(ping, 0..60))
        .prop_flat_map(|(centre, raw)| {
            let ids: Vec<i64> = (1..=raw.len() as i64).collect();
            (Just(centre), Just(raw), Just(ids).prop_shuffle())
        })
        .prop_map(|(centre, raw, ids)| {
            let mut clock = [0i64; 6];
            raw.into_iter()
                .zip(ids)
                .map(|((person, gap, (e, n), acc), id)| {
                    clock[person as usize] += gap;
                    let (lat, lon) = offset(centre, e, n);
                    Point {
                        id,
                        person_id: person,
                        lat,
                        lon,
                        t: clock[person as usize] * S,
                        acc,
                    }
                })
                .collect()
        })
}

/// Mostly none or good, sometimes poor, exactly at whole metres (the thresholds) or beyond
/// what a code holds.
pub(crate) fn arb_accuracy() -> impl Strategy<Value = Acc> {
    prop_oneof![
        3 => Just(None),
        3 => (0.0..60.0f64).prop_map(Some),
        1 => (0..120u32).prop_map(|m| Some(f64::from(m))),
        1 => (60.0..5000.0f64).prop_map(Some),
    ]
    .prop_map(Acc::of)
}

pub(crate) fn arb_query() -> impl Strategy<Value = TrackQuery> {
    (
        1..=5i64,
        -100..3000i64,
        0..6000i64,
        prop_oneof![Just(5.0), 0.5..30.0f64],
        prop_oneof![Just(0i64), Just(120), 0..600i64],
        prop_oneof![Just(300i64), 0..900i64],
        prop_oneof![Just(30i64), 0..120i64],
        prop_oneof![Just(120i64), 0..600i64],
        prop_oneof![Just(None), Just(Some(50u32)), (0..=1000u32).prop_map(Some)],
    )
        .prop_map(
            |(person, start, len, d, min, interp, tol, join, max_acc)| TrackQuery {
                person_id: person,
                window: Window {
                    start: start * S,
                    end: (start + len) * S,
                },
                distance_m: d,
                min_duration_us: min * S,
                max_interpolation_us: interp * S,
                ping_tolerance_us: tol * S,
                join_gap_us: join * S,
                max_accuracy_m: max_acc,
            },
        )
}

/// An engine in miniature: candidate pairs from overlapping time spans and overlapping boxes
/// around the fixes grown by the reach, a superset of the pairs that meet, handed over in
/// another order and some twice.
fn boxed_engine(points: &[Point], q: &TrackQuery) -> Vec<Contact> {
    let pieces = all_pieces(points, q);
    let grow = reach_chord_m(q.distance_m) + 1e-3;
    let bounds = |p: &Piece| -> ([f64; 3], [f64; 3]) {
        let lo = std::array::from_fn(|i| p.from.xyz[i].min(p.to.xyz[i]) - grow);
        let hi = std::array::from_fn(|i| p.from.xyz[i].max(p.to.xyz[i]) + grow);
        (lo, hi)
    };
    let mut pairs = Vec::new();
    for a in pieces.iter().rev().filter(|p| p.person_id == q.person_id) {
        let (alo, ahi) = bounds(a);
        for b in pieces.iter().rev() {
            let (blo, bhi) = bounds(b);
            let overlap = (0..3).all(|i| alo[i] <= bhi[i] && blo[i] <= ahi[i]);
            if overlap && a.start <= b.end && b.start <= a.end {
                pairs.push((a, b));
            }
        }
    }
    let twice: Vec<_> = pairs.iter().step_by(3).copied().collect();
    contacts_from_pairs(q, pairs.into_iter().chain(twice))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn the_oracle_ignores_arrival_order_and_an_engine_matches_it(
        pts in arb_points(),
        q in arb_query(),
        seed in any::<u64>(),
    ) {
        let expected = contacts_oracle(&pts, &q);
        let mut shuffled = pts.clone();
        let n = shuffled.len();
        for i in (1..n).rev() {
            shuffled.swap(i, (seed.wrapping_mul(i as u64 + 7) % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(bits(&contacts_oracle(&shuffled, &q)), bits(&expected));
        prop_assert_eq!(bits(&boxed_engine(&shuffled, &q)), bits(&expected));
        for c in &expected {
            prop_assert!(c.person_id != q.person_id && c.total_us >= q.min_duration_us);
            prop_assert_eq!(c.total_us, c.encounters.iter().map(|e| e.end - e.start).sum::<i64>());
            prop_assert_eq!((c.first, c.last), (c.encounters[0].start, c.encounters[c.encounters.len() - 1].end));
            for e in &c.encounters {
                prop_assert!(q.window.start <= e.start && e.start <= e.end && e.end <= q.window.end);
                prop_assert!(e.pings >= 1 && e.latitude.is_finite() && e.longitude.is_finite());
            }
            for w in c.encounters.windows(2) {
                prop_assert!(w[1].start - w[0].end >= q.join_gap_us.max(1));
            }
        }
        for w in expected.windows(2) {
            prop_assert!((std::cmp::Reverse(w[0].total_us), w[0].person_id) < (std::cmp::Reverse(w[1].total_us), w[1].person_id));
        }
    }

    /// Leaving out inaccurate pieces only takes time together away, and a filter no fix is
    /// worse than changes nothing.
    #[test]
    fn max_accuracy_only_takes_meetings_away(pts in arb_points(), q in arb_query()) {
        let all = contacts_oracle(&pts, &TrackQuery { max_accuracy_m: None, ..q });
        let kept = contacts_oracle(&pts, &q);
        for c in &kept {
            let whole = all.iter().find(|a| a.person_id == c.person_id);
            prop_assert!(whole.is_some_and(|a| a.total_us >= c.total_us));
        }
        let lax = TrackQuery { max_accuracy_m: Some(crate::track::defaults::MAX_ACCURACY_LIMIT_M), ..q };
        let none_worse = pts.iter().all(|p| !p.acc.worse_than(crate::track::defaults::MAX_ACCURACY_LIMIT_M));
        if none_worse {
            prop_assert_eq!(bits(&contacts_oracle(&pts, &lax)), bits(&all));
        }
    }
}

#[test]
fn holes_presences_and_window_edges() {
    let at = |id, person, east: f64, t_s: i64| {
        let (lat, lon) = offset(CITY, east, 0.0);
        Point {
            id,
            person_id: person,
            lat,
            lon,
            t: t_s * S,
            acc: Default::default(),
        }
    };
    let pts = [
        // Person 1 stands at 0 from 0 to 1000 s, pinging every 250 s.
        at(1, 1, 0.0, 0),
        at(2, 1, 0.0, 250),
        at(3, 1, 0.0, 500),
        at(4, 1, 0.0, 750),
        at(5, 1, 0.0, 1000),
        // Person 2: one isolated ping nearby at 100 s, then from 600 s walks from 40 m
        // away to 2 m away by 700 s, with a 400 s hole before its next ping.
        at(6, 2, 1.0, 100),
        at(7, 2, 40.0, 600),
        at(8, 2, 2.0, 700),
        at(9, 2, 2.0, 1100),
    ];
    let mut q = TrackQuery::new(
        1,
        Window {
            start: 0,
            end: 900 * S,
        },
    );
    q.min_duration_us = 0;
    let got = contacts_oracle(&pts, &q);
    assert_eq!(got.len(), 1);
    let e = &got[0].encounters;
    assert_eq!(e.len(), 2, "{e:?}");
    // The isolated ping: present 30 s either side.
    assert_eq!((e[0].start, e[0].end, e[0].pings), (70 * S, 130 * S, 1));
    // Within 5 m from 3 m short of the end of the walk: 100 s x 35 / 38.
    let entry = 600 * S + (100.0 * 35.0 / 38.0 * S as f64).round() as i64;
    assert!(
        (e[1].start - entry).abs() < 1000,
        "{} vs {entry}",
        e[1].start
    );
    assert_eq!((e[1].end, e[1].pings), (700 * S, 2));
    // A window ending inside the walk cuts the piece there.
    q.window.end = 695 * S;
    let cut = contacts_oracle(&pts, &q);
    assert_eq!(cut[0].encounters[1].start, e[1].start);
    assert_eq!(cut[0].encounters[1].end, 695 * S);
    // Joined across the gap when join_gap exceeds it.
    q.window.end = 900 * S;
    q.join_gap_us = 600 * S;
    let joined = contacts_oracle(&pts, &q);
    assert_eq!(joined[0].encounters.len(), 1);
    assert_eq!(joined[0].encounters[0].pings, 3);
}

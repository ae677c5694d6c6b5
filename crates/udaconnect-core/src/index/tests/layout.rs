use std::sync::RwLock;

use proptest::prelude::RngExt;

use super::*;
use crate::contact::connections_oracle;
use crate::index::layout::COMPACT_AFTER;

proptest! {
    #[test]
    fn compacting_changes_no_answer_and_pinned_slots_keep_their_points(
        pts in arb_points(),
        splits in prop::collection::vec(0..200usize, 1..4),
        person in 1..7i64,
        distance in prop_oneof![Just(5.0), 0.5..60.0f64],
        gap in prop_oneof![Just(None), (0..400i64).prop_map(Some)],
    ) {
        let mut index = ContactIndex::new(workers());
        let mut pinned = Vec::new();
        let mut cuts: Vec<usize> = splits.iter().map(|&c| c.min(pts.len())).collect();
        cuts.sort_unstable();
        let mut done = 0;
        for cut in cuts.into_iter().chain([pts.len()]) {
            for p in &pts[done..cut.max(done)] {
                index.insert(p);
            }
            done = done.max(cut);
            // An answer being streamed holds its slots across the compaction.
            let pin = index.pin();
            let slots: Vec<u32> = (0..index.len() as u32).collect();
            let points: Vec<Point> = slots.iter().map(|&s| index.point(s)).collect();
            pinned.push((pin, slots, points));
            index.compact();
        }
        for (pin, slots, points) in &pinned {
            let now: Vec<Point> = slots.iter().map(|&s| index.point_pinned(pin, s)).collect();
            prop_assert_eq!(&now, points);
        }
        let q = ConnectionQuery { person_id: person, window: Window::all(), distance_m: distance, max_time_gap_us: gap.map(|g| g * S) };
        let got: Vec<Point> = answer(&index, &q);
        prop_assert_eq!(got, connections_oracle(&pts, &q));
        // Duplicates are still refused after the slots moved.
        for p in &pts {
            prop_assert!(!index.insert(p));
        }
    }
}

/// The shared index lays itself out again as rows arrive, while answers hold their slots.
#[test]
fn feeding_compacts_when_due_and_answers_stay_exact() {
    let mut rng = crate::seeded_rng(7);
    // Person 3 stands near the middle; the others jump about a 60 m square.
    let pts: Vec<Point> = (0..(COMPACT_AFTER as i64 * 3))
        .map(|i| {
            let person_id = 1 + (i % 40);
            let spread = if person_id == 3 {
                29.0..31.0
            } else {
                0.0..60.0
            };
            Point {
                id: i + 1,
                person_id,
                lat: 37.55 + deg(rng.random_range(spread.clone())),
                lon: -122.29 + deg(rng.random_range(spread)),
                t: i * S / 4,
                acc: Default::default(),
            }
        })
        .collect();
    let shared = RwLock::new(ContactIndex::new(workers()));
    let mut pins = Vec::new();
    for chunk in pts.chunks(10_000) {
        feed(&shared, chunk.iter().copied());
        let index = shared.read().unwrap();
        for slot in [0, index.len() as u32 / 2, index.len() as u32 - 1] {
            pins.push((index.pin(), slot, index.point(slot)));
        }
    }
    let index = shared.read().unwrap();
    assert!(
        index.generation >= 2,
        "compacted {} times",
        index.generation
    );
    assert!(!index.compaction_due());
    for (pin, slot, point) in &pins {
        assert_eq!(index.point_pinned(pin, *slot), *point);
    }
    drop(pins);
    let q = ConnectionQuery {
        person_id: 3,
        window: Window {
            start: 1000 * S,
            end: 9000 * S,
        },
        distance_m: 5.0,
        max_time_gap_us: Some(30 * S),
    };
    let got: Vec<Point> = answer(&index, &q);
    let want = connections_oracle(&pts, &q);
    assert!(!want.is_empty());
    assert_eq!(got, want);
    // The others' pings are 10 s and up to 85 m apart: most of their pieces that pass person 3
    // are long hops with both ends far away, found through slots that compactions renumbered.
    let mut tq = crate::track::TrackQuery::new(
        3,
        Window {
            start: 1000 * S,
            end: 2500 * S,
        },
    );
    tq.min_duration_us = 0;
    let want = crate::track::contacts_oracle(&pts, &tq);
    assert!(!want.is_empty());
    let bits = crate::track::tests::bits;
    assert_eq!(bits(&index.track_contacts(&tq)), bits(&want));
}

proptest! {
    /// An index rebuilt without a person answers as one that never held them, and pins on
    /// the old one are no longer read.
    #[test]
    fn an_index_without_a_person_answers_as_if_they_never_came(
        pts in arb_points(),
        erased in 1..7i64,
        person in 1..7i64,
        distance in prop_oneof![Just(5.0), 0.5..60.0f64],
    ) {
        let mut index = ContactIndex::new(workers());
        for p in &pts {
            index.insert(p);
        }
        let pin = index.pin();
        let Some(without) = index.without_person(erased) else {
            prop_assert!(pts.iter().all(|p| p.person_id != erased));
            return Ok(());
        };
        let kept: Vec<Point> = pts.iter().filter(|p| p.person_id != erased).copied().collect();
        prop_assert_eq!(without.len(), kept.len());
        prop_assert!(!without.pin_current(&pin));
        prop_assert!(without.pin_current(&without.pin()));
        prop_assert!(without.track(erased, Window::all()).is_empty());
        let q = ConnectionQuery { person_id: person, window: Window::all(), distance_m: distance, max_time_gap_us: None };
        prop_assert_eq!(answer(&without, &q), connections_oracle(&kept, &q));
    }
}

proptest! {
    /// An index without the pings before a cut (retention) answers as the oracle does on the
    /// pings kept, for any person, distance and gap, and pins on the old one are no longer
    /// read. Live-fed and compacted indexes alike.
    #[test]
    fn an_index_without_old_pings_answers_as_the_oracle_on_the_rest(
        pts in arb_points(),
        cut10 in 0..62i64,
        compacted in any::<bool>(),
        person in 1..7i64,
        distance in prop_oneof![Just(5.0), 0.5..60.0f64],
        gap in prop_oneof![Just(None), (0..400i64).prop_map(Some)],
    ) {
        let cut = cut10 * 20 * S;
        let mut index = build(&pts);
        if compacted {
            index.compact();
        }
        let pin = index.pin();
        let kept: Vec<Point> = pts.iter().filter(|p| p.t >= cut).copied().collect();
        let Some(without) = index.without_before(cut) else {
            prop_assert_eq!(kept.len(), pts.len());
            return Ok(());
        };
        prop_assert_eq!(without.len(), kept.len());
        prop_assert!(!without.pin_current(&pin));
        prop_assert!(without.since(0).iter().all(|&s| without.point(s).t >= cut));
        prop_assert!(without.without_before(cut).is_none());
        let q = ConnectionQuery { person_id: person, window: Window::all(), distance_m: distance, max_time_gap_us: gap.map(|g| g * S) };
        prop_assert_eq!(answer(&without, &q), connections_oracle(&kept, &q));
    }
}

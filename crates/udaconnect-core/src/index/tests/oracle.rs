use proptest::prelude::RngExt;

use super::*;
use crate::contact::{connections_oracle, contacts_oracle, ContactQuery};
use crate::index::parallel::PARALLEL_FROM;
use crate::index::probe::CHECK_BATCH;

/// A track long enough to be split over cores: both halves look into the same cell around
/// the split, so the other person's pings there are found twice, and must count once.
#[test]
fn a_track_split_over_cores_counts_each_ping_once() {
    let pings = 2 * PARALLEL_FROM as i64 + 100;
    let pts: Vec<Point> = (0..pings)
        .flat_map(|i| {
            [(1, 0.0), (2, deg(1.0))].map(|(person, north)| Point {
                id: 2 * i + person,
                person_id: person,
                lat: 37.55 + north,
                lon: -122.29,
                t: (10 * i + 5 * (person - 1)) * S,
                acc: Default::default(),
            })
        })
        .collect();
    let index = build(&pts);
    let window = Window::all();
    let cq = ContactQuery {
        person_id: 1,
        window,
        distance_m: 5.0,
        max_time_gap_us: 60 * S,
        min_duration_us: 0,
    };
    let contacts = index.contacts(&cq);
    assert_eq!(contacts, contacts_oracle(&pts, &cq));
    assert_eq!(contacts[0].encounters[0].pings, pings as u32);
    let q = ConnectionQuery {
        person_id: 1,
        window,
        distance_m: 5.0,
        max_time_gap_us: Some(60 * S),
    };
    let got: Vec<Point> = index
        .connections(&q)
        .iter()
        .map(|&s| index.point(s))
        .collect();
    assert_eq!(got, connections_oracle(&pts, &q));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn index_equals_oracle(
        pts in arb_points(),
        person in 1..7i64,
        distance in prop_oneof![Just(5.0), 0.5..30.0f64, 30.0..1000.0f64],
        gap in prop_oneof![Just(None), (0..400i64).prop_map(Some), Just(Some(100_000))],
        start in 0..800i64,
        len in 0..1300i64,
        min_s in 0..200i64,
    ) {
        let index = build(&pts);
        let window = Window { start: start * S, end: (start + len) * S };
        let q = ConnectionQuery { person_id: person, window, distance_m: distance, max_time_gap_us: gap.map(|g| g * S) };
        let (slots, persons) = index.connections_with_persons(&q);
        let got: Vec<Point> = slots.iter().map(|&s| index.point(s)).collect();
        let mut want_persons: Vec<i64> = got.iter().map(|p| p.person_id).collect();
        want_persons.sort_unstable();
        want_persons.dedup();
        prop_assert_eq!(persons, want_persons);
        prop_assert_eq!(got, connections_oracle(&pts, &q));
        let cq = ContactQuery { person_id: person, window, distance_m: distance, max_time_gap_us: gap.unwrap_or(60) * S, min_duration_us: min_s * S };
        prop_assert_eq!(index.contacts(&cq), contacts_oracle(&pts, &cq));
    }

    #[test]
    fn grids_built_on_demand_follow_later_inserts(
        pts in arb_points(),
        person in 1..7i64,
        distance in prop_oneof![30.0..60.0f64, 100.0..1000.0f64],
    ) {
        let half = pts.len() / 2;
        let mut index = build(&pts[..half]);
        let q = ConnectionQuery { person_id: person, window: Window::all(), distance_m: distance, max_time_gap_us: None };
        // Builds the coarse grid from the first half ...
        let _ = index.connections(&q);
        // ... which must then take in the second half as it arrives.
        for p in &pts[half..] {
            index.insert(p);
        }
        let got: Vec<Point> = answer(&index, &q);
        prop_assert_eq!(got, connections_oracle(&pts, &q));
    }

    #[test]
    fn inserting_twice_or_out_of_order_changes_nothing(pts in arb_points(), person in 1..7i64) {
        let once = build(&pts);
        let mut shuffled = pts.clone();
        shuffled.reverse();
        let mut twice = build(&shuffled);
        for p in &pts {
            prop_assert!(!twice.insert(p));
        }
        prop_assert_eq!(once.len(), twice.len());
        let q = ConnectionQuery { person_id: person, window: Window::all(), distance_m: 50.0, max_time_gap_us: Some(60 * S) };
        let a: Vec<Point> = answer(&once, &q);
        let b: Vec<Point> = answer(&twice, &q);
        prop_assert_eq!(a, b);
    }
}

/// A crowd in a few cells: each cluster of the asked person's runs has more candidates than
/// one batch holds, and the person leaves and comes back, so batches are checked both
/// between clusters and at the end.
#[test]
fn crowded_cells_checked_in_batches_equal_the_oracle() {
    let mut rng = crate::seeded_rng(5);
    let mut pts = Vec::new();
    for i in 0..360i64 {
        for person in 1..=30i64 {
            // Person 1 is away (a kilometre off) five minutes in every fifteen.
            let away = person == 1 && (i * 10 / 60) % 15 >= 10;
            pts.push(Point {
                id: pts.len() as i64 + 1,
                person_id: person,
                lat: 37.55 + deg(rng.random_range(0.0..6.0)) + if away { 0.01 } else { 0.0 },
                lon: -122.29 + deg(rng.random_range(0.0..6.0)),
                t: i * 10 * S + person * 1000,
                acc: Default::default(),
            });
        }
    }
    let index = build(&pts);
    let q = ConnectionQuery {
        person_id: 1,
        window: Window::all(),
        distance_m: 4.0,
        max_time_gap_us: Some(20 * S),
    };
    let want = connections_oracle(&pts, &q);
    assert!(want.len() > 4 * CHECK_BATCH, "{} rows", want.len());
    assert_eq!(answer(&index, &q), want);
}

/// Long tracks take the multi-core path: it must answer as the oracle does.
#[test]
fn long_tracks_split_over_cores_equal_the_oracle() {
    let mut rng = crate::seeded_rng(42);
    let pts: Vec<Point> = (0..6000)
        .map(|i| Point {
            id: i + 1,
            person_id: 1 + (i % 5),
            lat: 37.55 + deg(rng.random_range(0.0..40.0)),
            lon: -122.29 + deg(rng.random_range(0.0..40.0)),
            t: (i / 5) * 7 * S,
            acc: Default::default(),
        })
        .collect();
    let index = build(&pts);
    assert!(index.track(1, Window::all()).len() > 2 * PARALLEL_FROM);
    for gap in [5, 30, 120] {
        let q = ConnectionQuery {
            person_id: 1,
            window: Window::all(),
            distance_m: 3.0,
            max_time_gap_us: Some(gap * S),
        };
        let got: Vec<Point> = answer(&index, &q);
        let want = connections_oracle(&pts, &q);
        assert!(!want.is_empty());
        assert_eq!(got, want, "gap {gap}");
    }
}

#[test]
fn track_is_a_window_of_one_person() {
    let pts: Vec<Point> = (0..10)
        .map(|i| Point {
            id: i,
            person_id: i % 2,
            lat: 1.0,
            lon: 1.0,
            t: i * S,
            acc: Default::default(),
        })
        .collect();
    let index = build(&pts);
    let ids: Vec<i64> = index
        .track(
            1,
            Window {
                start: 3 * S,
                end: 8 * S,
            },
        )
        .iter()
        .map(|&s| index.point(s).id)
        .collect();
    assert_eq!(ids, [3, 5, 7]);
    assert!(index.track(42, Window::all()).is_empty());
}

//! The scenarios: phones at their own intervals and phases on known walks.

use proptest::prelude::*;

use super::*;

/// Walking speed in the scenarios, metres per second.
const WALK: f64 = 1.2;

/// Two attendees who walk 1 km from opposite sides to a booth and stand there 1.5 m apart,
/// the first from 3000 s to 5400 s, the second from 3600 s to 4800 s: together for twenty
/// minutes.
fn booth_walks() -> (Walk, Walk) {
    let walking = 1000.0 / WALK;
    let walk = |east: f64, north: f64, arrive: f64, leave: f64| {
        Walk(vec![
            (arrive - walking, east, north),
            (arrive, 0.0, north),
            (leave, 0.0, north),
            (leave + walking, east, north),
        ])
    };
    (
        walk(-1000.0, 0.0, 3000.0, 5400.0),
        walk(1000.0, 1.5, 3600.0, 4800.0),
    )
}

/// Both phones' pings over 0..8000 s: the first attendee's every `intervals.0` s, the
/// second's every `intervals.1` s, each at a random phase.
fn booth_pings(
    rng: &mut proptest::test_runner::TestRng,
    intervals: (f64, f64),
    silent: [Option<(f64, f64)>; 2],
) -> Vec<Point> {
    use proptest::prelude::RngExt;
    let (one, two) = booth_walks();
    let phone = |person: i64, interval_s: f64, phase_s: f64, silent| Phone {
        person,
        interval_s,
        phase_s,
        silent,
    };
    let first = phone(
        1,
        intervals.0,
        rng.random_range(0.0..intervals.0),
        silent[0],
    );
    let second = phone(
        2,
        intervals.1,
        rng.random_range(0.0..intervals.1),
        silent[1],
    );
    let mut pts = first.pings(&one, 8000.0, 1);
    pts.extend(second.pings(&two, 8000.0, 100_000));
    pts
}

fn seconds(us: i64) -> f64 {
    us as f64 / S as f64
}

#[test]
fn twenty_minutes_together_is_one_encounter_of_twenty_minutes() {
    let mut rng = crate::seeded_rng(22);
    for intervals in [(90.0, 300.0), (300.0, 90.0)] {
        for _ in 0..25 {
            let pts = booth_pings(&mut rng, intervals, [None, None]);
            for (asked, other) in [(1, 2), (2, 1)] {
                let got = contacts_oracle(&pts, &TrackQuery::new(asked, everything()));
                assert_eq!(got.len(), 1, "{got:?}");
                assert_eq!(got[0].person_id, other);
                let e = &got[0].encounters;
                assert_eq!(e.len(), 1, "{e:?}");
                // Within one interval of the sparser phone at each end (and the few seconds
                // walking in and out within 5 m).
                let (start, end) = (seconds(e[0].start), seconds(e[0].end));
                assert!((3600.0 - 5.0..=3900.0).contains(&start), "{start}");
                assert!((4500.0..=4805.0).contains(&end), "{end}");
                // At the booth: within a metre of the midpoint between the two.
                let (lat, lon) = offset(CITY, 0.0, 0.75);
                assert!(crate::geo::haversine_m(lat, lon, e[0].latitude, e[0].longitude) < 1.0);
                assert!(e[0].pings >= 2);
            }
        }
    }
}

#[test]
fn a_phone_silent_ten_minutes_in_the_middle_splits_the_encounter() {
    // The sparser phone falls silent from 3900 s to 4500 s: a hole longer than
    // max_interpolation. Its last ping before and first after are at the booth, so each part
    // keeps at least an instant together, however short the 300 s interval leaves them.
    let mut rng = crate::seeded_rng(23);
    for _ in 0..40 {
        let pts = booth_pings(&mut rng, (90.0, 300.0), [None, Some((3900.0, 4500.0))]);
        let mut q = TrackQuery::new(1, everything());
        q.min_duration_us = 0;
        let got = contacts_oracle(&pts, &q);
        assert_eq!(got.len(), 1);
        let e = &got[0].encounters;
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(seconds(e[0].end) < 3900.0 && seconds(e[1].start) >= 4500.0);
        // And without the silence, one.
        let whole = booth_pings(&mut rng, (90.0, 300.0), [None, None]);
        assert_eq!(contacts_oracle(&whole, &q)[0].encounters.len(), 1);
    }
}

#[test]
fn walking_past_in_the_aisle_is_left_out_by_default() {
    use proptest::prelude::RngExt;
    let mut rng = crate::seeded_rng(24);
    // Opposite directions along an aisle at 1.2 m/s, 1 m apart sideways, crossing at 500 s.
    let one = Walk(vec![(0.0, 0.5, -600.0), (1000.0, 0.5, 600.0)]);
    let two = Walk(vec![(0.0, -0.5, 600.0), (1000.0, -0.5, -600.0)]);
    for _ in 0..25 {
        let phone = |person, interval_s: f64, phase_s| Phone {
            person,
            interval_s,
            phase_s,
            silent: None,
        };
        let mut pts = phone(1, 90.0, rng.random_range(0.0..90.0)).pings(&one, 1000.0, 1);
        pts.extend(phone(2, 300.0, rng.random_range(0.0..300.0)).pings(&two, 1000.0, 1000));
        let mut q = TrackQuery::new(1, everything());
        assert!(contacts_oracle(&pts, &q).is_empty());
        q.min_duration_us = 0;
        let got = contacts_oracle(&pts, &q);
        assert_eq!(got.len(), 1);
        let lasted = seconds(got[0].total_us);
        let expected = 2.0 * 24f64.sqrt() / (2.0 * WALK);
        assert!((lasted - expected).abs() < 0.01, "{lasted} vs {expected}");
    }
}

/// Person 2's visits to person 1, who stands at the origin: each from 1 km away along its own
/// bearing at its own speed, standing `offset` metres away for `stay` seconds, and back out;
/// walking 1 km away between visits. Returns the walk and, per visit, when person 2 is truly
/// within 5 m: from `(1000 - 5) / speed` into the approach to `(5 - offset) / speed` into
/// the way out.
fn visits(plan: &[(f64, f64, f64, f64)]) -> (Walk, Vec<(f64, f64)>) {
    let mut points = Vec::new();
    let mut truth = Vec::new();
    let mut t = 100.0;
    let far = |bearing: f64| (1000.0 * bearing.cos(), 1000.0 * bearing.sin());
    for (k, &(bearing, speed, offset, stay)) in plan.iter().enumerate() {
        let (fe, fn_) = far(bearing);
        if k > 0 {
            let (pe, pn): (f64, f64) = far(plan[k - 1].0);
            t += (fe - pe).hypot(fn_ - pn) / speed;
        }
        let (se, sn) = (offset * bearing.cos(), offset * bearing.sin());
        let inward = (1000.0 - offset) / speed;
        points.push((t, fe, fn_));
        points.push((t + inward, se, sn));
        points.push((t + inward + stay, se, sn));
        points.push((t + 2.0 * inward + stay, fe, fn_));
        truth.push((
            t + 995.0 / speed,
            t + inward + stay + (5.0 - offset) / speed,
        ));
        t += 2.0 * inward + stay;
    }
    (Walk(points), truth)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// The same walk seen by phones at other intervals (15 s to 5 min) and phases: each
    /// encounter's ends move by at most one interval of the sparser phone.
    #[test]
    fn other_intervals_and_phases_move_ends_by_at_most_one_interval(
        plan in prop::collection::vec((0.0..std::f64::consts::TAU, 0.8..1.4f64, 0.5..3.0f64, 600.0..1800.0f64), 1..4),
        turns in prop::collection::vec(-2.0..2.0f64, 3),
        phones in prop::collection::vec((15..=300i32, 0.0..1.0f64), 4),
    ) {
        let mut plan = plan;
        for k in 1..plan.len() {
            plan[k].0 = plan[k - 1].0 + turns[k - 1];
        }
        let (walk, truth) = visits(&plan);
        let until = walk.0.last().map_or(0.0, |w| w.0) + 200.0;
        let standing = Walk(vec![(0.0, 0.0, 0.0)]);
        let mut answers = Vec::new();
        for pair in phones.chunks(2) {
            let phone = |person, (interval, phase): (i32, f64)| Phone {
                person,
                interval_s: interval as f64,
                phase_s: phase * interval as f64,
                silent: None,
            };
            let mut pts = phone(1, pair[0]).pings(&standing, until, 1);
            let seen = phone(2, pair[1]);
            pts.extend(seen.pings(&walk, until, 1_000_000));
            let mut q = TrackQuery::new(1, everything());
            q.min_duration_us = 0;
            let got = contacts_oracle(&pts, &q);
            prop_assert_eq!(got.len(), 1);
            let e = &got[0].encounters;
            prop_assert_eq!(e.len(), truth.len());
            let every = seen.interval_s;
            for (e, &(from, to)) in e.iter().zip(&truth) {
                let (start, end) = (seconds(e.start), seconds(e.end));
                prop_assert!(from - 1.0 <= start && start <= from + every + 1.0, "{} vs {}", start, from);
                prop_assert!(to - every - 1.0 <= end && end <= to + 1.0, "{} vs {}", end, to);
            }
            answers.push((every, e.iter().map(|e| (seconds(e.start), seconds(e.end))).collect::<Vec<_>>()));
        }
        let sparser = answers[0].0.max(answers[1].0);
        for (a, b) in answers[0].1.iter().zip(&answers[1].1) {
            prop_assert!((a.0 - b.0).abs() <= sparser + 1.0 && (a.1 - b.1).abs() <= sparser + 1.0);
        }
    }
}

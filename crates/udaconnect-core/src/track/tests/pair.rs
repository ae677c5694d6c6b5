use proptest::prelude::*;

use super::*;
use crate::contact::TEST_CENTRES;
use crate::geo::to_cartesian;
use crate::track::pair::held_at;

fn fix(id: i64, centre: (f64, f64), east_m: f64, north_m: f64, t_us: i64) -> TrackFix {
    let (lat, lon) = offset(centre, east_m, north_m);
    TrackFix {
        id,
        t: t_us,
        xyz: to_cartesian(lat, lon),
        acc: Default::default(),
    }
}

fn piece(person_id: i64, from: TrackFix, to: TrackFix, start: i64, end: i64) -> Piece {
    Piece {
        person_id,
        from,
        to,
        start,
        end,
    }
}

fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    (0..3).map(|i| (a[i] - b[i]).powi(2)).sum::<f64>().sqrt()
}

fn speed(p: &Piece) -> f64 {
    if p.is_moving() {
        dist(p.from.xyz, p.to.xyz) / ((p.to.t - p.from.t) as f64 / S as f64)
    } else {
        0.0
    }
}

/// One random piece near `centre`: moving (sometimes barely, sometimes in step with a given
/// velocity), an isolated presence or a zero-length piece between two fixes, its span clipped
/// at random inside its fixes' times.
fn arb_piece(
    person: i64,
    id: i64,
    centre: (f64, f64),
    step: (f64, f64),
) -> impl Strategy<Value = Piece> {
    let kind = 0..5u8;
    (
        kind,
        -12.0..12.0f64,
        -12.0..12.0f64,
        -15.0..15.0f64,
        -15.0..15.0f64,
        0..600i64,
        1..900i64,
        0.0..1.0f64,
        0.0..1.0f64,
    )
        .prop_map(move |(kind, e, n, de, dn, t0, len, cut0, cut1)| {
            let (t0, len) = (t0 * S, len * S);
            let a = fix(id, centre, e, n, t0);
            let cut = |from: i64, to: i64| {
                let span = (to - from) as f64;
                let s = from + (span * cut0 * 0.3) as i64;
                (s, (to - (span * cut1 * 0.3) as i64).max(s))
            };
            match kind {
                // Moving, fast or slow.
                0 => {
                    let b = fix(id + 1, centre, e + de, n + dn, t0 + len);
                    let (s, x) = cut(a.t, b.t);
                    piece(person, a, b, s, x)
                }
                // Moving by a fraction of a nanometre: stationary to the arithmetic.
                1 => {
                    let b = fix(id + 1, centre, e + de * 1e-11, n, t0 + len);
                    let (s, x) = cut(a.t, b.t);
                    piece(person, a, b, s, x)
                }
                // In step with the given velocity: parallel, never nearer or further.
                2 => {
                    let secs = len as f64 / S as f64;
                    let b = fix(
                        id + 1,
                        centre,
                        e + step.0 * secs,
                        n + step.1 * secs,
                        t0 + len,
                    );
                    let (s, x) = cut(a.t, b.t);
                    piece(person, a, b, s, x)
                }
                3 => {
                    let (s, x) = cut(t0 - 30 * S, t0 + 30 * S);
                    piece(person, a, a, s, x)
                }
                _ => {
                    let b = fix(id + 1, centre, e + de, n + dn, t0);
                    piece(person, a, b, t0, t0)
                }
            }
        })
}

fn arb_pair() -> impl Strategy<Value = (Piece, Piece, f64)> {
    let centre = prop::sample::select(&TEST_CENTRES[..]);
    let step = (-2.0..2.0f64, -2.0..2.0f64);
    let distance = prop_oneof![Just(5.0), 0.5..30.0f64];
    (centre, step, distance).prop_flat_map(|(c, step, d)| {
        (arb_piece(1, 1, c, step), arb_piece(2, 10, c, step), Just(d))
    })
}

/// The distance of two pieces at `t`: the nearest of the positions each holds.
fn distance_at(p: &Piece, q: &Piece, t: i64) -> f64 {
    held_at(p, t)
        .flat_map(|a| held_at(q, t).map(move |b| dist(a, b)))
        .fold(f64::INFINITY, f64::min)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Sampled densely, the distance is within reach inside the interval and beyond it
    /// outside, up to what a microsecond of rounding moves.
    #[test]
    fn the_interval_is_where_sampled_distances_are_within_reach((p, q, d) in arb_pair()) {
        let chord = reach_chord_m(d);
        let got = together(&p, &q, chord);
        let (t0, t1) = (p.start.max(q.start), p.end.min(q.end));
        if t0 > t1 {
            prop_assert!(got.is_none());
            return Ok(());
        }
        // A microsecond moves either piece by its speed in metres per microsecond.
        let slack = (speed(&p) + speed(&q)) * 1e-6 + 1e-7;
        let mut instants: Vec<i64> = (0..=400).map(|k| t0 + ((t1 - t0) as f64 * k as f64 / 400.0) as i64).collect();
        if let Some(g) = got {
            prop_assert!(t0 <= g.start && g.start <= g.end && g.end <= t1);
            instants.extend([g.start, g.end, g.start + (g.end - g.start) / 2]);
        }
        for t in instants {
            let r = distance_at(&p, &q, t);
            match got {
                Some(g) if g.start <= t && t <= g.end => {
                    prop_assert!(r <= chord + slack, "inside at {t}: {r} > {chord}")
                }
                _ => prop_assert!(r > chord - slack, "outside at {t}: {r} <= {chord} ({got:?})"),
            }
        }
    }
}

#[test]
fn exactly_at_the_threshold_counts() {
    let d = 5.0;
    let north = (d / EARTH_RADIUS_M).to_degrees();
    for (lat, lon) in TEST_CENTRES {
        let a = TrackFix {
            id: 1,
            t: 0,
            xyz: to_cartesian(lat, lon),
            acc: Default::default(),
        };
        let b = |id: i64, scale: f64| TrackFix {
            id,
            t: 0,
            xyz: to_cartesian(lat - north * scale, lon),
            acc: Default::default(),
        };
        let own = piece(1, a, a, -30 * S, 30 * S);
        let at = piece(2, b(2, 1.0), b(2, 1.0), 0, 60 * S);
        let beyond = piece(2, b(3, 1.001), b(3, 1.001), 0, 60 * S);
        let got = together(&own, &at, reach_chord_m(d)).expect("at the threshold");
        assert_eq!((got.start, got.end), (0, 30 * S));
        assert!(together(&own, &beyond, reach_chord_m(d)).is_none());
    }
}

#[test]
fn passing_by_lasts_as_long_as_the_geometry_says() {
    // Opposite directions at 1.2 m/s each, 1 m apart sideways: within 5 m for
    // 2 sqrt(5^2 - 1^2) / 2.4 seconds around the crossing at 500 s.
    let own = piece(
        1,
        fix(1, CITY, 0.5, -600.0, 0),
        fix(2, CITY, 0.5, 600.0, 1000 * S),
        0,
        1000 * S,
    );
    let other = piece(
        2,
        fix(3, CITY, -0.5, 600.0, 0),
        fix(4, CITY, -0.5, -600.0, 1000 * S),
        0,
        1000 * S,
    );
    let got = together(&own, &other, reach_chord_m(5.0)).unwrap();
    let expected = 2.0 * 24f64.sqrt() / 2.4;
    let lasted = (got.end - got.start) as f64 / S as f64;
    assert!((lasted - expected).abs() < 1e-3, "{lasted} vs {expected}");
    assert!(((got.start + got.end) / 2 - 500 * S).abs() < 1000);
}

#[test]
fn a_zero_length_piece_holds_both_its_fixes() {
    let at = |id, east| fix(id, CITY, east, 0.0, 100 * S);
    let jump = piece(1, at(1, 0.0), at(2, 40.0), 100 * S, 100 * S);
    let near_second = piece(2, at(3, 42.0), at(3, 42.0), 70 * S, 130 * S);
    let got = together(&jump, &near_second, reach_chord_m(5.0)).unwrap();
    assert_eq!((got.start, got.end), (100 * S, 100 * S));
    let far = piece(2, at(4, 20.0), at(4, 20.0), 70 * S, 130 * S);
    assert!(together(&jump, &far, reach_chord_m(5.0)).is_none());
}

use std::collections::HashMap;

use udaconnect_core::contact::{Contact, Point};
use udaconnect_core::geo::to_cartesian;
use udaconnect_core::model::Location;
use udaconnect_core::ports::DynLocationStore;
use udaconnect_core::time::{to_micros, Window};
use udaconnect_core::track::{contacts_from_near, contacts_oracle, track_read_window, TrackQuery};
use udaconnect_sim::Rng;

use super::near::offset;
use super::{loc, open_with_persons, points, StoreEngine};

const S: i64 = 1_000_000;

/// Six persons wandering a 40 m square, now standing, now crossing it at up to 3 m/s (pieces
/// up to the square's diagonal long), phones on their own intervals with repeated times, holes of several minutes and lone
/// pings; half the pings say their accuracy, some of them poor; ids start at
/// `1 + seed * 10_000`.
fn random_tracks(seed: u64) -> Vec<Location> {
    let mut rng = Rng::new(seed ^ 0x7ac5);
    let centres = [
        (37.553, -122.2925),
        (0.0, 179.99995),
        (89.9998, 10.0),
        (-33.9, 18.4),
    ];
    let centre = centres[seed as usize % centres.len()];
    let t0: i64 = 1_594_116_000_000_000;
    let mut out = Vec::new();
    let mut id = 1 + (seed as i64) * 10_000;
    for person in 1..=6i64 {
        let interval_s = rng.range(5.0, 90.0);
        let (mut x, mut y) = (rng.range(-20.0, 20.0), rng.range(-20.0, 20.0));
        let mut t = t0 + (rng.range(0.0, 120.0) * S as f64) as i64;
        for _ in 0..60 {
            let (lat, lon) = offset(centre.0, centre.1, y, x);
            let accuracy_m = match rng.below(4) {
                0 => Some(rng.range(0.0, 300.0)),
                1 => Some(rng.range(0.0, 20.0)),
                _ => None,
            };
            out.push(Location {
                accuracy_m,
                ..loc(id, person, lat, lon, t)
            });
            id += 1;
            let dt_s = match rng.below(12) {
                0 => 0.0,
                1 => rng.range(400.0, 900.0),
                _ => interval_s * rng.range(0.8, 1.2),
            };
            t += (dt_s * S as f64) as i64;
            // Standing still half the time.
            if rng.below(2) == 0 {
                let step = dt_s.min(300.0) * rng.range(0.0, 3.0);
                let angle = rng.range(0.0, std::f64::consts::TAU);
                x = (x + step * angle.cos()).clamp(-20.0, 20.0);
                y = (y + step * angle.sin()).clamp(-20.0, 20.0);
            }
        }
    }
    out
}

/// The straight-line length of the longest piece of any track: consecutive pings of one
/// person at most `max_interpolation` apart.
pub fn longest_piece_m(pings: &[Location], q: &TrackQuery) -> f64 {
    let mut sorted: Vec<Point> = points(pings);
    sorted.sort_unstable_by_key(|p| (p.person_id, p.t, p.id));
    sorted
        .windows(2)
        .filter(|w| w[0].person_id == w[1].person_id && w[1].t - w[0].t <= q.max_interpolation_us)
        .map(|w| {
            let (a, b) = (
                to_cartesian(w[0].lat, w[0].lon),
                to_cartesian(w[1].lat, w[1].lon),
            );
            (0..3).map(|i| (a[i] - b[i]).powi(2)).sum::<f64>().sqrt()
        })
        .fold(0.0, f64::max)
}

/// The contacts a store's `near_tracks` leads to, after checking what it read of the person.
pub async fn contacts_via_store(
    store: &DynLocationStore,
    all: &[Location],
    q: &TrackQuery,
    reach_m: f64,
) -> Vec<Contact> {
    let near = store.near_tracks(q, reach_m).await.unwrap();
    let read = track_read_window(q);
    let mut own: Vec<Location> = all
        .iter()
        .filter(|l| l.person_id == q.person_id && read.contains(to_micros(l.creation_time)))
        .cloned()
        .collect();
    own.sort_by_key(|l| (l.creation_time, l.id));
    let mut got_own = near.own.clone();
    got_own.sort_by_key(|l| (l.creation_time, l.id));
    if !got_own.is_empty() {
        assert_eq!(got_own, own, "{q:?}");
    }
    let stored: HashMap<i64, &Location> = all.iter().map(|l| (l.id, l)).collect();
    for l in near.candidates.iter().chain(&near.neighbours) {
        assert_ne!(l.person_id, q.person_id, "{q:?}");
        assert_eq!(stored.get(&l.id), Some(&l), "{q:?}: never stored as read");
    }
    contacts_from_near(q, &near)
}

/// `near_tracks` may narrow the pings down, but the core's exact computation on what it reads
/// answers as the oracle over every stored ping: random tracks at the antimeridian, near a pole
/// and elsewhere, with holes, lone pings, repeated times, windows cutting pieces and other
/// parameters, inaccurate pings left out by `max_accuracy`, pings stored in any order.
pub async fn near_tracks_gives_the_oracles_contacts<E: StoreEngine>() {
    let stores = open_with_persons::<E>(1..=6).await;
    let store = stores.locations();
    let (mut checked, mut met, mut filtered) = (0, 0, 0);
    for seed in 0..6u64 {
        let mut pings = random_tracks(seed);
        store.clear().await.unwrap();
        // Out of order, in two batches.
        let mut rng = Rng::new(seed);
        for i in (1..pings.len()).rev() {
            pings.swap(i, rng.below(i + 1));
        }
        let (a, b) = pings.split_at(pings.len() / 2);
        store.upsert(b).await.unwrap();
        store.upsert(a).await.unwrap();
        let all = points(&pings);
        let mut times: Vec<i64> = all.iter().map(|p| p.t).collect();
        times.sort_unstable();
        let windows = [
            Window::all(),
            Window {
                start: times[times.len() / 4] + 1,
                end: times[times.len() * 3 / 4] - 1,
            },
            Window {
                start: times[times.len() / 2],
                end: times[times.len() / 2] + 90 * S,
            },
        ];
        for window in windows {
            for person_id in [1, 3, 6, 99] {
                let mut q = TrackQuery::new(person_id, window);
                q.min_duration_us = [0, 120 * S][(seed % 2) as usize];
                q.max_accuracy_m = [None, Some(50), Some(10), Some(0)][(seed % 4) as usize];
                if seed % 3 == 2 {
                    q.distance_m = 2.0;
                    q.max_interpolation_us = 60 * S;
                    q.ping_tolerance_us = 90 * S;
                    q.join_gap_us = 0;
                }
                let reach = longest_piece_m(&pings, &q);
                let got = contacts_via_store(&store, &pings, &q, reach).await;
                assert_eq!(got, contacts_oracle(&all, &q), "seed {seed}, {q:?}");
                checked += 1;
                met += usize::from(!got.is_empty());
                let unfiltered = TrackQuery {
                    max_accuracy_m: None,
                    ..q
                };
                filtered += usize::from(got != contacts_oracle(&all, &unfiltered));
            }
        }
    }
    assert!(met > checked / 3, "{met} of {checked} answers not empty");
    assert!(
        filtered > checked / 10,
        "max_accuracy changed {filtered} of {checked}"
    );
}

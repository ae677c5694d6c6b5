use std::collections::{BTreeMap, HashSet};

use udaconnect_core::contact::{connections_oracle, ConnectionQuery};
use udaconnect_core::geo::EARTH_RADIUS_M;
use udaconnect_core::model::Location;
use udaconnect_core::ports::NearQuery;
use udaconnect_core::time::{parse_timestamp, to_micros, Window};
use udaconnect_sim::Rng;

use super::{answer, loc, open_with_persons, points, StoreEngine};
use crate::seed;

/// A point `north_m` and `east_m` from (lat, lon), longitude wrapped into [-180, 180].
pub(super) fn offset(lat: f64, lon: f64, north_m: f64, east_m: f64) -> (f64, f64) {
    let m_per_degree = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
    let lat2 = lat + north_m / m_per_degree;
    let mut lon2 = lon + east_m / (m_per_degree * lat.to_radians().cos());
    if lon2 > 180.0 {
        lon2 -= 360.0;
    }
    if lon2 < -180.0 {
        lon2 += 360.0;
    }
    (lat2, lon2)
}

/// Random pings of six persons crowded within a few metres, and pings placed exactly on the
/// edges a query has: at the distance, at the window's ends, at the time gap. Ids start at
/// `1 + seed * 10_000`; the first 220 are the random ones.
fn random_pings(seed: u64, distance_m: f64, gap_us: i64) -> Vec<Location> {
    let mut rng = Rng::new(seed);
    let centres = [
        (37.553, -122.2925),
        (0.0, 179.9999),
        (89.9995, 10.0),
        (-33.9, 18.4),
    ];
    let (clat, clon) = centres[seed as usize % centres.len()];
    let t0: i64 = 1_594_116_000_000_000;
    let mut out = Vec::new();
    let mut id = 1 + (seed as i64) * 10_000;
    for _ in 0..220 {
        let (lat, lon) = offset(clat, clon, rng.range(-12.0, 12.0), rng.range(-12.0, 12.0));
        // Times on a coarse grid so that pings share times and the gap lands on some.
        let t = t0
            + (rng.below(400) as i64) * 1_500_000
            + if rng.below(4) == 0 {
                rng.below(1000) as i64
            } else {
                0
            };
        out.push(loc(id, 1 + rng.below(6) as i64, lat, lon, t));
        id += 1;
    }
    // Edges around some of person 1's pings.
    let own: Vec<Location> = out
        .iter()
        .filter(|l| l.person_id == 1)
        .take(6)
        .cloned()
        .collect();
    let d_degrees = (distance_m / EARTH_RADIUS_M).to_degrees();
    for o in own {
        let t = to_micros(o.creation_time);
        let at = |lat: f64, lon: f64, t: i64, id: i64| loc(id, 2 + (id % 5), lat, lon, t);
        let edges = [
            (o.latitude + d_degrees, o.longitude, t),
            (o.latitude - d_degrees, o.longitude, t),
            (o.latitude + d_degrees * 1.000_001, o.longitude, t),
            (o.latitude, o.longitude, t + gap_us),
            (o.latitude, o.longitude, t - gap_us),
            (o.latitude, o.longitude, t + gap_us + 1),
            (o.latitude, o.longitude, t - gap_us - 1),
            (o.latitude + d_degrees, o.longitude, t + gap_us),
        ];
        for (lat, lon, t) in edges {
            if lat.abs() <= 90.0 {
                out.push(at(lat, lon, t, id));
                id += 1;
            }
        }
    }
    out
}

fn sorted_by_time_and_id(ls: &[Location]) -> bool {
    ls.windows(2)
        .all(|w| (w[0].creation_time, w[0].id) < (w[1].creation_time, w[1].id))
}

/// `near` may narrow the candidates down, but the exact predicate on what it gives answers as
/// the brute-force oracle does over every stored ping: on random crowds at the antimeridian,
/// near a pole and elsewhere, with pings on every edge of distance, window and time gap.
pub async fn near_gives_the_answers_of_the_whole_window<E: StoreEngine>() {
    let stores = open_with_persons::<E>(1..=6).await;
    let store = stores.locations();
    let mut checked = 0;
    let mut nonempty = 0;
    for seed in 0..8u64 {
        let distance_m = [5.0, 1.0, 12.5, 3.0][seed as usize % 4];
        let gap_us = [30_000_000, 1_500_000, 0, 7_000_000][seed as usize % 4];
        let pings = random_pings(seed, distance_m, gap_us);
        store.clear().await.unwrap();
        store.upsert(&pings).await.unwrap();
        let all = points(&pings);
        let stored: BTreeMap<i64, &Location> = pings.iter().map(|l| (l.id, l)).collect();

        let mut times: Vec<i64> = pings.iter().map(|l| to_micros(l.creation_time)).collect();
        times.sort_unstable();
        let windows = [
            Window::all(),
            Window {
                start: times[times.len() / 4],
                end: times[times.len() * 3 / 4],
            },
            Window {
                start: times[10],
                end: times[10],
            },
            Window {
                start: times[times.len() / 2],
                end: times[times.len() / 2] + gap_us,
            },
        ];
        for window in windows {
            for person_id in [1, 2, 6, 99] {
                let mut own: Vec<Location> = pings
                    .iter()
                    .filter(|l| {
                        l.person_id == person_id && window.contains(to_micros(l.creation_time))
                    })
                    .cloned()
                    .collect();
                own.sort_by_key(|l| (l.creation_time, l.id));
                for max_gap_us in [None, Some(gap_us), Some(0), Some(1), Some(i64::MAX)] {
                    for d in [distance_m, distance_m * 2.0] {
                        let nq = NearQuery {
                            person_id,
                            window,
                            distance_m: d,
                            max_gap_us,
                        };
                        let q = ConnectionQuery {
                            person_id,
                            window,
                            distance_m: d,
                            max_time_gap_us: max_gap_us,
                        };
                        let near = store.near(nq).await.unwrap();
                        assert_eq!(near.own, own, "{nq:?}");
                        assert!(sorted_by_time_and_id(&near.candidates), "{nq:?}");
                        for c in &near.candidates {
                            assert_eq!(Some(&c), stored.get(&c.id), "{nq:?}");
                            assert!(
                                c.person_id != person_id
                                    && window.contains(to_micros(c.creation_time)),
                                "{nq:?}: {c:?}"
                            );
                        }
                        let got = answer(&near, &q);
                        assert_eq!(got, connections_oracle(&all, &q), "{nq:?}");
                        checked += 1;
                        nonempty += usize::from(!got.is_empty());
                    }
                }
            }
        }
        // The edge pings matter only if the answers contain them.
        let q = ConnectionQuery {
            person_id: 1,
            window: Window::all(),
            distance_m,
            max_time_gap_us: Some(gap_us),
        };
        let got = connections_oracle(&all, &q);
        assert!(
            got.iter().any(|p| p.id > 1 + (seed as i64) * 10_000 + 219),
            "seed {seed}"
        );
    }
    assert!(
        nonempty > checked / 4,
        "{nonempty} of {checked} answers not empty"
    );
}

/// On the demo data, `near` answers as the oracle, and person 1 met persons 5, 6, 8 and 9.
pub async fn near_on_the_seed_data<E: StoreEngine>() {
    let stores = open_with_persons::<E>([1, 5, 6, 8, 9]).await;
    let store = stores.locations();
    let seed = seed::locations();
    store.upsert(&seed).await.unwrap();
    let all = points(&seed);
    let window = Window::new(
        parse_timestamp("2020-01-01T00:00:00Z").unwrap(),
        parse_timestamp("2021-01-01T00:00:00Z").unwrap(),
    );
    let mut met = HashSet::new();
    for person_id in [1, 5, 6, 8, 9] {
        for (distance_m, max_gap_us) in [(5.0, None), (5.0, Some(60_000_000)), (1000.0, None)] {
            let nq = NearQuery {
                person_id,
                window,
                distance_m,
                max_gap_us,
            };
            let q = ConnectionQuery {
                person_id,
                window,
                distance_m,
                max_time_gap_us: max_gap_us,
            };
            let got = answer(&store.near(nq).await.unwrap(), &q);
            assert_eq!(got, connections_oracle(&all, &q), "{nq:?}");
            if person_id == 1 && distance_m == 5.0 && max_gap_us.is_none() {
                met.extend(got.iter().map(|p| p.person_id));
            }
        }
    }
    assert_eq!(met, HashSet::from([5, 6, 8, 9]));
}

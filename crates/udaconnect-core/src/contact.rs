//! The connection query: which locations of other people lie near the asked person's.
//!
//! The contract's semantics, with window `W` and distance `d`: every location `L'` of another
//! person with time in `W` such that some location `L` of the asked person, also in `W`, lies
//! within `d` metres of `L'` (and, with `max_time_gap`, within that many seconds). Each `L'` once,
//! ordered by `(creation_time, id)`.
//!
//! [`connections`] answers it with a 3-D grid over the asked person's points;
//! [`connections_oracle`] answers it by comparing every pair, and exists so property tests can
//! hold the fast path to the definition.

use std::collections::HashMap;

use crate::geo::{chord_for_arc_m, to_cartesian, to_lat_lon, within, DISTANCE_SLACK_M};
use crate::model::Location;
use crate::time::{from_micros, to_micros, Micros, Window};

/// A location reduced to what the contact engine reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub id: i64,
    pub person_id: i64,
    pub lat: f64,
    pub lon: f64,
    pub t: Micros,
    pub acc: Acc,
}

/// A ping's horizontal accuracy as the contact engine compares it: whole metres rounded up,
/// so that `accuracy > max` for a whole-metre `max_accuracy` reads the same on the code as on
/// the metres. Ten bits, so the index keeps it beside a row's id (ids are below 2^53).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Acc(u16);

impl Acc {
    /// Not said: such a ping counts whatever the `max_accuracy`.
    pub const UNKNOWN: Acc = Acc(0);
    /// Codes are `1 + min(ceil(metres), CAP)`: a larger accuracy is worse than any
    /// `max_accuracy` a query may ask (see [`crate::track::defaults::MAX_ACCURACY_LIMIT_M`]).
    const CAP: u16 = 1022;
    pub const BITS: u32 = 10;

    pub fn of(accuracy_m: Option<f64>) -> Acc {
        match accuracy_m {
            Some(m) if m.is_finite() && m >= 0.0 => {
                Acc(1 + m.ceil().min(f64::from(Self::CAP)) as u16)
            }
            _ => Acc::UNKNOWN,
        }
    }

    /// Whether a ping this accurate is worse than `max_m` metres.
    pub fn worse_than(self, max_m: u32) -> bool {
        self.0 != 0 && u32::from(self.0 - 1) > max_m
    }

    pub fn code(self) -> u16 {
        self.0
    }

    /// The accuracy of [`Self::code`] `code` (its low [`Self::BITS`] bits).
    pub fn from_code(code: u16) -> Acc {
        Acc(code & ((1 << Self::BITS) - 1))
    }
}

impl From<&Location> for Point {
    fn from(l: &Location) -> Self {
        Point {
            id: l.id,
            person_id: l.person_id,
            lat: l.latitude,
            lon: l.longitude,
            t: to_micros(l.creation_time),
            acc: Acc::of(l.accuracy_m),
        }
    }
}

impl From<&Point> for Location {
    fn from(p: &Point) -> Self {
        Location {
            id: p.id,
            person_id: p.person_id,
            latitude: p.lat,
            longitude: p.lon,
            creation_time: from_micros(p.t),
            accuracy_m: None,
            telemetry: Default::default(),
        }
    }
}

/// One connection query, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectionQuery {
    pub person_id: i64,
    pub window: Window,
    pub distance_m: f64,
    /// `None`: no time condition, the original semantics.
    pub max_time_gap_us: Option<i64>,
}

impl ConnectionQuery {
    fn near_in_time(&self, a: Micros, b: Micros) -> bool {
        self.max_time_gap_us
            .is_none_or(|gap| a.abs_diff(b) <= gap.unsigned_abs())
    }
}

/// Orders answer rows as the contract fixes: by time, then id.
pub fn sort_answer(points: &mut [Point]) {
    points.sort_unstable_by_key(|p| (p.t, p.id));
}

/// The definition, pair by pair: `O(own x others)`. For tests and benchmarks only.
pub fn connections_oracle(all: &[Point], q: &ConnectionQuery) -> Vec<Point> {
    let own: Vec<&Point> = all
        .iter()
        .filter(|p| p.person_id == q.person_id && q.window.contains(p.t))
        .collect();
    let mut out: Vec<Point> = all
        .iter()
        .filter(|o| o.person_id != q.person_id && q.window.contains(o.t))
        .filter(|o| {
            own.iter().any(|l| {
                q.near_in_time(l.t, o.t) && within(l.lat, l.lon, o.lat, o.lon, q.distance_m)
            })
        })
        .copied()
        .collect();
    sort_answer(&mut out);
    out.dedup_by_key(|p| p.id);
    out
}

/// A uniform grid over points in Earth-centred coordinates, cell edge at least the largest
/// chord a query asks about, so every neighbour of a point is in one of the 27 cells around it.
pub struct Grid<'a> {
    cell_m: f64,
    cells: HashMap<[i64; 3], Vec<&'a Point>>,
}

/// The cell edge for a distance: the chord of the distance plus slack, plus a centimetre so
/// that rounding in the Cartesian conversion can never move a true neighbour two cells away.
pub fn cell_edge_m(distance_m: f64) -> f64 {
    chord_for_arc_m(distance_m + DISTANCE_SLACK_M) + 0.01
}

pub fn cell_of(xyz: [f64; 3], cell_m: f64) -> [i64; 3] {
    xyz.map(|c| (c / cell_m).floor() as i64)
}

impl<'a> Grid<'a> {
    /// Buckets `points`; each cell's points are kept in time order so a time condition can
    /// skip to the right slice.
    pub fn build(points: impl IntoIterator<Item = &'a Point>, distance_m: f64) -> Self {
        let cell_m = cell_edge_m(distance_m);
        let mut cells: HashMap<[i64; 3], Vec<&'a Point>> = HashMap::new();
        for p in points {
            cells
                .entry(cell_of(to_cartesian(p.lat, p.lon), cell_m))
                .or_default()
                .push(p);
        }
        for v in cells.values_mut() {
            v.sort_unstable_by_key(|p| p.t);
        }
        Grid { cell_m, cells }
    }

    /// Whether some point of the grid lies within `distance_m` of `probe` and, when `max_gap`
    /// is set, within that many microseconds of it.
    pub fn any_near(&self, probe: &Point, distance_m: f64, max_gap: Option<i64>) -> bool {
        let [cx, cy, cz] = cell_of(to_cartesian(probe.lat, probe.lon), self.cell_m);
        for dx in -1..=1 {
            for dy in -1..=1 {
                for dz in -1..=1 {
                    let Some(bucket) = self.cells.get(&[cx + dx, cy + dy, cz + dz]) else {
                        continue;
                    };
                    let slice: &[&Point] = match max_gap {
                        None => bucket,
                        Some(gap) => {
                            // A gap is a distance in time: its sign means nothing, as in the
                            // oracle.
                            let gap = gap.saturating_abs();
                            let from =
                                bucket.partition_point(|p| p.t < probe.t.saturating_sub(gap));
                            let to = bucket.partition_point(|p| p.t <= probe.t.saturating_add(gap));
                            &bucket[from..to.max(from)]
                        }
                    };
                    if slice
                        .iter()
                        .any(|p| within(p.lat, p.lon, probe.lat, probe.lon, distance_m))
                    {
                        return true;
                    }
                }
            }
        }
        false
    }
}

/// Answers a connection query from the asked person's points (`own`) and candidate points of
/// everyone (`candidates`; the asked person's and those outside the window are skipped, so a
/// caller may pass a superset).
pub fn connections<'a>(
    own: impl IntoIterator<Item = &'a Point>,
    candidates: impl IntoIterator<Item = &'a Point>,
    q: &ConnectionQuery,
) -> Vec<Point> {
    let own: Vec<&Point> = own
        .into_iter()
        .filter(|p| p.person_id == q.person_id && q.window.contains(p.t))
        .collect();
    if own.is_empty() {
        return Vec::new();
    }
    let grid = Grid::build(own, q.distance_m);
    let mut out: Vec<Point> = candidates
        .into_iter()
        .filter(|o| o.person_id != q.person_id && q.window.contains(o.t))
        .filter(|o| grid.any_near(o, q.distance_m, q.max_time_gap_us))
        .copied()
        .collect();
    sort_answer(&mut out);
    out.dedup_by_key(|p| p.id);
    out
}

/// A contacts query: whom a person spent time with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContactQuery {
    pub person_id: i64,
    pub window: Window,
    pub distance_m: f64,
    /// Two pings count as together when at most this far apart in time; encounters separated
    /// by more than this are distinct.
    pub max_time_gap_us: i64,
    /// Persons with less time together in total are left out.
    pub min_duration_us: i64,
}

impl ContactQuery {
    /// The connection query whose answer [`summarise`] turns into contacts: the same window,
    /// distance, and the gap as the bound on a match.
    pub fn connection_query(&self) -> ConnectionQuery {
        ConnectionQuery {
            person_id: self.person_id,
            window: self.window,
            distance_m: self.distance_m,
            max_time_gap_us: Some(self.max_time_gap_us),
        }
    }
}

/// One co-presence episode with one other person.
#[derive(Debug, Clone, PartialEq)]
pub struct Encounter {
    pub start: Micros,
    pub end: Micros,
    /// Where it took place: the centre of the other person's pings in this encounter
    /// (spherical mean); from tracks, as [`crate::track`] defines it.
    pub latitude: f64,
    pub longitude: f64,
    /// The other person's pings that take part.
    pub pings: u32,
}

impl Encounter {
    pub fn duration_us(&self) -> i64 {
        self.end - self.start
    }
}

/// All the time one other person spent with the asked person.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub person_id: i64,
    pub first: Micros,
    pub last: Micros,
    /// The sum of the encounters' durations.
    pub total_us: i64,
    pub encounters: Vec<Encounter>,
}

/// A contacts query over the asked person's points and the candidates: the connection answer
/// with the same gap, summarised per person.
pub fn contacts(own: &[Point], candidates: &[Point], q: &ContactQuery) -> Vec<Contact> {
    summarise(connections(own, candidates, &q.connection_query()), q)
}

/// Turns the answer of a connection query into contacts, as the contacts semantics define:
///
/// - the pings counted are those the connection query with the same window, distance and
///   `max_time_gap` returns: every ping `L'` of another person within `distance` and
///   `max_time_gap` of some ping of the asked person;
/// - one person's pings, in time order, form one encounter while each follows the previous
///   one by at most `max_time_gap`; an encounter lasts from its first ping to its last, and its
///   place is the centre of its pings;
/// - time together is the sum of the encounters' durations; persons with less than
///   `min_duration` are left out; the rest are ordered by time together (longest first), then
///   person id.
///
/// Times are those of the other person's pings: what the asked person's phone saw of them.
pub fn summarise(mut matched: Vec<Point>, q: &ContactQuery) -> Vec<Contact> {
    matched.sort_unstable_by_key(|p| (p.person_id, p.t, p.id));
    summarise_by_person(matched.chunk_by(|a, b| a.person_id == b.person_id), q)
}

/// [`summarise`] of points already grouped: each item one person's matched points, each
/// once, in (time, id) order; every person in one item.
pub fn summarise_by_person<'a>(
    persons: impl Iterator<Item = &'a [Point]>,
    q: &ContactQuery,
) -> Vec<Contact> {
    let mut out = Vec::new();
    for mine in persons {
        let episodes = || mine.chunk_by(|a, b| b.t - a.t <= q.max_time_gap_us);
        // The time together decides first: centres (trigonometry) only for persons kept.
        let total_us: i64 = episodes()
            .map(|pings| pings[pings.len() - 1].t - pings[0].t)
            .sum();
        if total_us < q.min_duration_us {
            continue;
        }
        let encounters: Vec<Encounter> = episodes()
            .map(|pings| {
                let (latitude, longitude) = spherical_mean(pings);
                Encounter {
                    start: pings[0].t,
                    end: pings[pings.len() - 1].t,
                    latitude,
                    longitude,
                    pings: pings.len() as u32,
                }
            })
            .collect();
        out.push(Contact {
            person_id: mine[0].person_id,
            first: encounters[0].start,
            last: encounters[encounters.len() - 1].end,
            total_us,
            encounters,
        });
    }
    out.sort_by_key(|c| (std::cmp::Reverse(c.total_us), c.person_id));
    out
}

/// The centre of points on the sphere: the mean of their unit vectors, so a group straddling
/// the antimeridian is centred on it, not on the other side of the Earth.
pub fn spherical_mean(points: &[Point]) -> (f64, f64) {
    let mut sum = [0.0f64; 3];
    for p in points {
        let v = to_cartesian(p.lat, p.lon);
        for i in 0..3 {
            sum[i] += v[i];
        }
    }
    to_lat_lon(sum)
}

/// The contacts definition pair by pair, for tests and benchmarks.
pub fn contacts_oracle(all: &[Point], q: &ContactQuery) -> Vec<Contact> {
    let gap = q.max_time_gap_us.unsigned_abs();
    let matched: Vec<Point> = all
        .iter()
        .filter(|o| o.person_id != q.person_id && q.window.contains(o.t))
        .filter(|o| {
            all.iter().any(|l| {
                l.person_id == q.person_id
                    && q.window.contains(l.t)
                    && l.t.abs_diff(o.t) <= gap
                    && within(l.lat, l.lon, o.lat, o.lon, q.distance_m)
            })
        })
        .copied()
        .collect();
    summarise(matched, q)
}

/// Where test points cluster: a city, both sides of the antimeridian, near both poles.
#[cfg(test)]
pub(crate) const TEST_CENTRES: [(f64, f64); 5] = [
    (37.55, -122.29),
    (0.0, 179.99999),
    (0.0, -179.99999),
    (89.99999, 0.0),
    (-89.99999, 45.0),
];

#[cfg(test)]
mod tests {
    #[test]
    fn accuracy_codes_compare_as_the_metres_do_for_whole_metre_limits() {
        assert!(!Acc::of(None).worse_than(0));
        assert!(!Acc::of(Some(f64::NAN)).worse_than(0));
        assert!(!Acc::of(Some(50.0)).worse_than(50));
        assert!(Acc::of(Some(50.01)).worse_than(50));
        assert!(!Acc::of(Some(0.0)).worse_than(0));
        assert!(Acc::of(Some(0.5)).worse_than(0));
        assert!(Acc::of(Some(1.0e7)).worse_than(1000));
        assert!(!Acc::of(Some(1000.0)).worse_than(1000));
        for m in [0.0, 0.3, 7.0, 49.9, 200.0, 1021.5, 5000.0] {
            let a = Acc::of(Some(m));
            assert_eq!(Acc::from_code(a.code()), a);
            for max in [0, 1, 7, 49, 50, 200, 1000] {
                assert_eq!(a.worse_than(max), m > f64::from(max), "{m} against {max}");
            }
        }
    }

    use super::*;
    use crate::geo::EARTH_RADIUS_M;
    use proptest::prelude::*;

    const S: i64 = 1_000_000;

    fn metres_to_deg(m: f64) -> f64 {
        (m / EARTH_RADIUS_M).to_degrees()
    }

    fn q(person_id: i64, distance_m: f64, gap_s: Option<i64>) -> ConnectionQuery {
        ConnectionQuery {
            person_id,
            window: Window {
                start: 0,
                end: 1000 * S,
            },
            distance_m,
            max_time_gap_us: gap_s.map(|g| g * S),
        }
    }

    fn pt(id: i64, person_id: i64, lat: f64, lon: f64, t_s: i64) -> Point {
        Point {
            id,
            person_id,
            lat,
            lon,
            t: t_s * S,
            acc: Default::default(),
        }
    }

    #[test]
    fn threshold_window_edges_and_gap() {
        let d = metres_to_deg(5.0);
        let pts = [
            pt(1, 1, 10.0, 10.0, 100),
            pt(2, 2, 10.0 + d, 10.0, 100),        // exactly 5 m: counts
            pt(3, 2, 10.0 + d * 1.01, 10.0, 100), // just beyond
            pt(4, 3, 10.0, 10.0, 0),              // at window start: in
            pt(5, 3, 10.0, 10.0, 1000),           // at window end: out (half-open)
            pt(6, 4, 10.0, 10.0, 161),            // 61 s later
            pt(7, 4, 10.0, 10.0, 160),            // 60 s later: within gap
        ];
        let ids = |v: Vec<Point>| v.iter().map(|p| p.id).collect::<Vec<_>>();
        assert_eq!(ids(connections(&pts, &pts, &q(1, 5.0, None))), [4, 2, 7, 6]);
        assert_eq!(ids(connections(&pts, &pts, &q(1, 5.0, Some(60)))), [2, 7]);
        assert_eq!(ids(connections_oracle(&pts, &q(1, 5.0, Some(60)))), [2, 7]);
    }

    #[test]
    fn antimeridian_and_pole() {
        let d = metres_to_deg(3.0);
        let pts = [
            pt(1, 1, 0.0, 180.0 - d / 2.0, 1),
            pt(2, 2, 0.0, -180.0 + d / 2.0, 1),
            pt(3, 1, 90.0, 0.0, 1),
            pt(4, 2, 90.0 - d, 123.0, 1),
            pt(5, 2, 90.0 - d, -57.0, 1),
        ];
        let got: Vec<i64> = connections(&pts, &pts, &q(1, 5.0, None))
            .iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(got, [2, 4, 5]);
    }

    /// Points clustered around a few centres, some at the antimeridian and the poles, with
    /// times on a coarse grid so equal times and exact gaps occur.
    fn arb_points() -> impl Strategy<Value = Vec<Point>> {
        let centres = prop_oneof![
            5 => prop::sample::select(&TEST_CENTRES[..]),
            1 => Just((35.05, -106.57)),
        ];
        let point = (centres, -30.0..30.0f64, -30.0..30.0f64, 1..6i64, 0..40i64);
        prop::collection::vec(point, 0..120).prop_map(|raw| {
            raw.into_iter()
                .enumerate()
                .map(|(i, ((clat, clon), dn, de, person, t10))| {
                    let lat = (clat + metres_to_deg(dn)).clamp(-90.0, 90.0);
                    let mut lon = clon + metres_to_deg(de) / clat.to_radians().cos().max(1e-3);
                    if lon > 180.0 {
                        lon -= 360.0;
                    } else if lon < -180.0 {
                        lon += 360.0;
                    }
                    pt(i as i64 + 1, person, lat, lon, t10 * 30)
                })
                .collect()
        })
    }

    fn cq(person_id: i64, gap_s: i64, min_s: i64) -> ContactQuery {
        ContactQuery {
            person_id,
            window: Window {
                start: 0,
                end: 100_000 * S,
            },
            distance_m: 5.0,
            max_time_gap_us: gap_s * S,
            min_duration_us: min_s * S,
        }
    }

    #[test]
    fn encounters_split_on_gaps_and_sum() {
        // Person 2 stands next to person 1 from 0 to 100 s (pings every 10 s), leaves, and
        // comes back from 500 to 530 s. Person 3 passes by once.
        let mut pts = Vec::new();
        let mut id = 0;
        let mut push = |person, lat: f64, t| {
            id += 1;
            pts.push(pt(id, person, lat, 20.0, t));
        };
        for t in (0..=600).step_by(10) {
            push(1, 10.0, t);
        }
        for t in (0..=100).step_by(10) {
            push(2, 10.00001, t);
        }
        for t in (500..=530).step_by(10) {
            push(2, 10.00002, t);
        }
        push(3, 10.0, 300);
        let got = contacts_oracle(&pts, &cq(1, 60, 0));
        assert_eq!(got.len(), 2);
        let two = &got[0];
        assert_eq!(two.person_id, 2);
        assert_eq!(two.encounters.len(), 2);
        assert_eq!(
            (two.encounters[0].start, two.encounters[0].end),
            (0, 100 * S)
        );
        assert_eq!(
            (two.encounters[1].start, two.encounters[1].end),
            (500 * S, 530 * S)
        );
        assert_eq!(two.total_us, 130 * S);
        assert_eq!((two.first, two.last), (0, 530 * S));
        assert_eq!(two.encounters[0].pings, 11);
        assert!((two.encounters[0].latitude - 10.00001).abs() < 1e-9);
        // A single ping at the same instant: together for no time at all.
        assert_eq!((got[1].person_id, got[1].total_us), (3, 0));
        // Minimum duration drops the passer-by and keeps 130 s.
        let got = contacts_oracle(&pts, &cq(1, 60, 120));
        assert_eq!(got.iter().map(|c| c.person_id).collect::<Vec<_>>(), [2]);
        let got = contacts_oracle(&pts, &cq(1, 60, 131));
        assert!(got.is_empty());
        // With a gap wider than the absence, one encounter spanning both.
        let got = contacts_oracle(&pts, &cq(1, 400, 0));
        assert_eq!(got[0].encounters.len(), 1);
        assert_eq!(got[0].total_us, 530 * S);
        assert_eq!(got[0].encounters[0].pings, 15);
    }

    #[test]
    fn spherical_mean_across_the_antimeridian() {
        let (lat, lon) = spherical_mean(&[pt(1, 1, 0.0, 179.9, 0), pt(2, 1, 0.0, -179.9, 0)]);
        assert!(
            lat.abs() < 1e-9 && (lon.abs() - 180.0).abs() < 1e-9,
            "{lat} {lon}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn grid_equals_oracle(
            pts in arb_points(),
            person in 1..6i64,
            distance in prop_oneof![Just(5.0), 0.5..50.0f64],
            gap in prop_oneof![Just(None), (0..300i64).prop_map(Some)],
            start in 0..600i64,
            len in 0..1200i64,
        ) {
            let mut query = q(person, distance, gap);
            query.window = Window { start: start * S, end: (start + len) * S };
            let fast = connections(&pts, &pts, &query);
            let slow = connections_oracle(&pts, &query);
            prop_assert_eq!(fast, slow);
        }
    }
}

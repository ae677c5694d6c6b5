//! The in-memory spatio-temporal index the embedded mode answers contact queries from.
//!
//! Locations are kept column-wise (id, person, latitude, longitude, time: 36 bytes each) in
//! arrival order; a location's position in the columns is its *slot*. Three structures point at
//! slots, each list ordered by (time, id):
//! - per person, their track, so a person's pings in a window are one binary search away;
//! - per grid cell (8 m edges in Earth-centred coordinates), the pings in that cell, so the
//!   neighbours of a ping within a time range are a few binary searches away. A query looks at
//!   the 27 cells around each ping (125 up to 16 m). Coarser grids (64 m, 512 m) for larger
//!   distances are built the first time a query needs one, so the memory they take is spent
//!   only where such queries are asked.
//!
//! Before the exact distance, candidates are cut by latitude alone: two points `d` apart on the
//! sphere are never more than `d` apart in latitude, and that test costs a subtraction.
//!
//! Every answer equals the brute-force oracle of [`crate::contact`]: the index only chooses
//! which pairs to compare, and the comparison is the same [`within`] predicate.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use crate::contact::{summarise, ConnectionQuery, Contact, ContactQuery, Point};
use crate::geo::{chord_for_arc_m, to_cartesian, within, DISTANCE_SLACK_M};
use crate::time::{Micros, Window};

/// Cell edge of the grid always kept, in metres of chord.
const FINE_EDGE_M: f64 = 8.0;
/// Cell edges of the grids built on demand for larger distances.
const COARSE_EDGES_M: [f64; 2] = [64.0, 512.0];

/// A fast hash for small integer keys (cells, slots): the keys are not attacker-chosen
/// strings, and the default SipHash costs more than the lookups it serves.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(*b as u64);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(n as u64);
    }
    fn write_i32(&mut self, n: i32) {
        self.write_u64(n as u32 as u64);
    }
    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub type FxBuild = BuildHasherDefault<FxHasher>;

type Cell = [i32; 3];

fn cell_at(xyz: [f64; 3], edge: f64) -> Cell {
    xyz.map(|c| (c / edge).floor() as i32)
}

#[derive(Default)]
struct Level {
    edge: f64,
    cells: HashMap<Cell, Vec<u32>, FxBuild>,
}

/// The index. Not synchronised: the owner wraps it in a lock.
#[derive(Default)]
pub struct ContactIndex {
    ids: Vec<i64>,
    persons: Vec<u32>,
    lats: Vec<f64>,
    lons: Vec<f64>,
    times: Vec<Micros>,
    /// Dense person number -> person id, and back.
    person_ids: Vec<i64>,
    person_numbers: HashMap<i64, u32, FxBuild>,
    tracks: Vec<Vec<u32>>,
    fine: Level,
    coarse: [std::sync::OnceLock<Level>; 2],
}

/// Grows a column by an eighth rather than doubling: at tens of millions of rows, doubling
/// would leave up to half the memory unused.
fn reserve_gently<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        v.reserve_exact(v.len() / 8 + 1024);
    }
}

/// Degrees of latitude within which every point closer than `distance_m` lies: the
/// great-circle distance is never less than the latitude difference times the radius.
fn latitude_band(distance_m: f64) -> f64 {
    ((distance_m + DISTANCE_SLACK_M) / crate::geo::EARTH_RADIUS_M).to_degrees() * (1.0 + 1e-9)
        + 1e-12
}

impl ContactIndex {
    pub fn new() -> Self {
        let mut index = ContactIndex::default();
        index.fine.edge = FINE_EDGE_M;
        index
    }

    /// An empty index with room for `n` locations.
    pub fn with_capacity(n: usize) -> Self {
        let mut index = Self::new();
        index.ids.reserve_exact(n);
        index.persons.reserve_exact(n);
        index.lats.reserve_exact(n);
        index.lons.reserve_exact(n);
        index.times.reserve_exact(n);
        index
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The location in `slot`.
    pub fn point(&self, slot: u32) -> Point {
        let s = slot as usize;
        Point {
            id: self.ids[s],
            person_id: self.person_ids[self.persons[s] as usize],
            lat: self.lats[s],
            lon: self.lons[s],
            t: self.times[s],
        }
    }

    fn key(&self, slot: u32) -> (Micros, i64) {
        (self.times[slot as usize], self.ids[slot as usize])
    }

    /// Inserts `slot` into a (time, id)-ordered list. Pings mostly arrive in time order, so
    /// this is usually a push.
    fn insert_sorted(
        list: &mut Vec<u32>,
        slot: u32,
        key: (Micros, i64),
        keys: impl Fn(u32) -> (Micros, i64),
    ) {
        match list.last() {
            Some(&last) if keys(last) > key => {
                let at = list.partition_point(|&s| keys(s) < key);
                list.insert(at, slot);
            }
            _ => list.push(slot),
        }
    }

    /// Adds a location. Returns false, changing nothing, when the location is already in:
    /// the consumer may deliver a batch twice.
    pub fn insert(&mut self, p: &Point) -> bool {
        let number = match self.person_numbers.get(&p.person_id) {
            Some(&n) => n,
            None => {
                let n = self.person_ids.len() as u32;
                self.person_ids.push(p.person_id);
                self.person_numbers.insert(p.person_id, n);
                self.tracks.push(Vec::new());
                n
            }
        };
        let key = (p.t, p.id);
        {
            let track = &self.tracks[number as usize];
            let at = track.partition_point(|&s| self.key(s) < key);
            if track.get(at).is_some_and(|&s| self.key(s) == key) {
                return false;
            }
        }
        let slot = self.ids.len() as u32;
        reserve_gently(&mut self.ids);
        reserve_gently(&mut self.persons);
        reserve_gently(&mut self.lats);
        reserve_gently(&mut self.lons);
        reserve_gently(&mut self.times);
        self.ids.push(p.id);
        self.persons.push(number);
        self.lats.push(p.lat);
        self.lons.push(p.lon);
        self.times.push(p.t);
        let (ids, times) = (&self.ids, &self.times);
        let keys = |s: u32| (times[s as usize], ids[s as usize]);
        Self::insert_sorted(&mut self.tracks[number as usize], slot, key, keys);
        let xyz = to_cartesian(p.lat, p.lon);
        let fine = self
            .fine
            .cells
            .entry(cell_at(xyz, self.fine.edge))
            .or_default();
        Self::insert_sorted(fine, slot, key, keys);
        for level in self.coarse.iter_mut().filter_map(|l| l.get_mut()) {
            let list = level.cells.entry(cell_at(xyz, level.edge)).or_default();
            Self::insert_sorted(list, slot, key, keys);
        }
        true
    }

    /// A grid of every location at a cell edge, lists in (time, id) order.
    fn build_level(&self, edge: f64) -> Level {
        let mut cells: HashMap<Cell, Vec<u32>, FxBuild> = HashMap::default();
        for s in 0..self.ids.len() {
            let xyz = to_cartesian(self.lats[s], self.lons[s]);
            cells.entry(cell_at(xyz, edge)).or_default().push(s as u32);
        }
        for list in cells.values_mut() {
            list.sort_unstable_by_key(|&s| self.key(s));
            list.shrink_to_fit();
        }
        Level { edge, cells }
    }

    /// Releases spare capacity after a bulk load.
    pub fn shrink_to_fit(&mut self) {
        self.ids.shrink_to_fit();
        self.persons.shrink_to_fit();
        self.lats.shrink_to_fit();
        self.lons.shrink_to_fit();
        self.times.shrink_to_fit();
        for t in &mut self.tracks {
            t.shrink_to_fit();
        }
        for list in self.fine.cells.values_mut() {
            list.shrink_to_fit();
        }
    }

    /// Bytes held by the index, for the metrics and the memory benchmark.
    pub fn heap_bytes(&self) -> usize {
        let cols = self.ids.capacity() * 8
            + self.persons.capacity() * 4
            + self.lats.capacity() * 8
            + self.lons.capacity() * 8
            + self.times.capacity() * 8;
        let tracks: usize = self.tracks.iter().map(|t| t.capacity() * 4 + 24).sum();
        let cells: usize = std::iter::once(&self.fine)
            .chain(self.coarse.iter().filter_map(|l| l.get()))
            .map(|l| {
                l.cells.capacity() * (12 + 24 + 8)
                    + l.cells.values().map(|v| v.capacity() * 4).sum::<usize>()
            })
            .sum();
        cols + tracks + cells + self.person_ids.capacity() * 8 + self.person_numbers.capacity() * 16
    }

    /// Number of distinct persons seen.
    pub fn persons(&self) -> usize {
        self.person_ids.len()
    }

    /// Slot range of a (time, id)-ordered list that falls in `[from, to)`.
    fn time_range(&self, list: &[u32], from: Micros, to: Micros) -> std::ops::Range<usize> {
        let lo = list.partition_point(|&s| self.times[s as usize] < from);
        let hi = list.partition_point(|&s| self.times[s as usize] < to);
        lo..hi.max(lo)
    }

    /// The asked person's pings in a window, in (time, id) order.
    pub fn track(&self, person_id: i64, window: Window) -> &[u32] {
        let Some(&n) = self.person_numbers.get(&person_id) else {
            return &[];
        };
        let track = &self.tracks[n as usize];
        &track[self.time_range(track, window.start, window.end)]
    }

    /// The latest ping (by time) of every person.
    pub fn latest(&self) -> Vec<u32> {
        self.tracks
            .iter()
            .filter_map(|t| t.last().copied())
            .collect()
    }

    /// Every ping with time at or after `since`, newest tracks read from their end.
    pub fn since(&self, since: Micros) -> Vec<u32> {
        let mut out = Vec::new();
        for t in &self.tracks {
            let from = t.partition_point(|&s| self.times[s as usize] < since);
            out.extend_from_slice(&t[from..]);
        }
        out
    }

    /// The grid to search for a distance, and how many cells around a ping to look at.
    fn level_for(&self, distance_m: f64) -> (&Level, i32) {
        let reach = chord_for_arc_m(distance_m + DISTANCE_SLACK_M) + 0.01;
        if reach <= 2.0 * self.fine.edge {
            return (&self.fine, (reach / self.fine.edge).ceil() as i32);
        }
        let i = COARSE_EDGES_M
            .iter()
            .position(|e| *e >= reach)
            .unwrap_or(COARSE_EDGES_M.len() - 1);
        let level = self.coarse[i].get_or_init(|| self.build_level(COARSE_EDGES_M[i]));
        (level, (reach / level.edge).ceil() as i32)
    }

    /// Every cell within `k` cells of `c`.
    fn around(c: Cell, k: i32) -> impl Iterator<Item = Cell> {
        (-k..=k).flat_map(move |dx| {
            (-k..=k).flat_map(move |dy| (-k..=k).map(move |dz| [c[0] + dx, c[1] + dy, c[2] + dz]))
        })
    }

    /// Slots of other persons' pings near the asked person's, by time then id: the
    /// connection query.
    pub fn connections(&self, q: &ConnectionQuery) -> Vec<u32> {
        let own = self.track(q.person_id, q.window);
        if own.is_empty() {
            return Vec::new();
        }
        let me = self.person_numbers.get(&q.person_id).copied();
        let (level, k) = self.level_for(q.distance_m);
        let span = q.window.end.saturating_sub(q.window.start);
        let mut out = match q.max_time_gap_us {
            // Narrow in time: look around each own ping, within its time range only.
            Some(gap) if gap.saturating_mul(8) < span => self.probe_each(own, me, q, level, k, gap),
            // Wide or no time condition: visit each candidate cell once, and test its pings
            // against a grid of the asked person's pings.
            _ => self.sweep_cells(own, me, q, level, k),
        };
        out.sort_unstable_by_key(|&s| self.key(s));
        out.dedup();
        out
    }

    fn probe_each(
        &self,
        own: &[u32],
        me: Option<u32>,
        q: &ConnectionQuery,
        level: &Level,
        k: i32,
        gap: i64,
    ) -> Vec<u32> {
        let mut out = Vec::new();
        for &o in own {
            let (olat, olon, ot) = (
                self.lats[o as usize],
                self.lons[o as usize],
                self.times[o as usize],
            );
            let from = ot.saturating_sub(gap).max(q.window.start);
            let to = ot.saturating_add(gap).saturating_add(1).min(q.window.end);
            let home = cell_at(to_cartesian(olat, olon), level.edge);
            for c in Self::around(home, k) {
                let Some(list) = level.cells.get(&c) else {
                    continue;
                };
                for &s in &list[self.time_range(list, from, to)] {
                    let su = s as usize;
                    if Some(self.persons[su]) != me
                        && within(olat, olon, self.lats[su], self.lons[su], q.distance_m)
                    {
                        out.push(s);
                    }
                }
            }
        }
        out
    }

    fn sweep_cells(
        &self,
        own: &[u32],
        me: Option<u32>,
        q: &ConnectionQuery,
        level: &Level,
        k: i32,
    ) -> Vec<u32> {
        let band = latitude_band(q.distance_m);
        let gap = q.max_time_gap_us.map(i64::unsigned_abs);
        let mut own_by_cell: HashMap<Cell, Vec<u32>, FxBuild> = HashMap::default();
        for &o in own {
            let xyz = to_cartesian(self.lats[o as usize], self.lons[o as usize]);
            own_by_cell
                .entry(cell_at(xyz, level.edge))
                .or_default()
                .push(o);
        }
        let mut candidates: HashSet<Cell, FxBuild> = HashSet::default();
        for home in own_by_cell.keys() {
            candidates.extend(Self::around(*home, k));
        }
        let mut out = Vec::new();
        let mut near: Vec<u32> = Vec::new();
        for c in candidates {
            let Some(list) = level.cells.get(&c) else {
                continue;
            };
            let entries = &list[self.time_range(list, q.window.start, q.window.end)];
            if entries.is_empty() {
                continue;
            }
            // The asked person's pings that can be near this cell, by latitude, so each entry
            // compares only with those in its latitude band.
            near.clear();
            for n in Self::around(c, k) {
                if let Some(v) = own_by_cell.get(&n) {
                    near.extend_from_slice(v);
                }
            }
            near.sort_unstable_by(|a, b| self.lats[*a as usize].total_cmp(&self.lats[*b as usize]));
            for &s in entries {
                let su = s as usize;
                if Some(self.persons[su]) == me {
                    continue;
                }
                let (lat, lon, t) = (self.lats[su], self.lons[su], self.times[su]);
                let from = near.partition_point(|&o| self.lats[o as usize] < lat - band);
                let hit = near[from..]
                    .iter()
                    .take_while(|&&o| self.lats[o as usize] <= lat + band)
                    .any(|&o| {
                        let ou = o as usize;
                        gap.is_none_or(|g| self.times[ou].abs_diff(t) <= g)
                            && within(self.lats[ou], self.lons[ou], lat, lon, q.distance_m)
                    });
                if hit {
                    out.push(s);
                }
            }
        }
        out
    }

    /// The contacts query: the connection answer with the same gap, summarised per person.
    pub fn contacts(&self, q: &ContactQuery) -> Vec<Contact> {
        let slots = self.connections(&ConnectionQuery {
            person_id: q.person_id,
            window: q.window,
            distance_m: q.distance_m,
            max_time_gap_us: Some(q.max_time_gap_us),
        });
        summarise(slots.iter().map(|&s| self.point(s)).collect(), q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::{connections_oracle, contacts_oracle};
    use crate::geo::EARTH_RADIUS_M;
    use proptest::prelude::*;

    const S: i64 = 1_000_000;

    fn deg(m: f64) -> f64 {
        (m / EARTH_RADIUS_M).to_degrees()
    }

    fn arb_points() -> impl Strategy<Value = Vec<Point>> {
        let centres = prop_oneof![
            Just((37.55, -122.29)),
            Just((0.0, 179.99999)),
            Just((0.0, -179.99999)),
            Just((89.99999, 0.0)),
            Just((-89.99999, 45.0)),
        ];
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
                    }
                })
                .collect()
        })
    }

    fn build(points: &[Point]) -> ContactIndex {
        let mut index = ContactIndex::new();
        for p in points {
            index.insert(p);
        }
        index
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
            let got: Vec<Point> = index.connections(&q).iter().map(|&s| index.point(s)).collect();
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
            let got: Vec<Point> = index.connections(&q).iter().map(|&s| index.point(s)).collect();
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
            let a: Vec<Point> = once.connections(&q).iter().map(|&s| once.point(s)).collect();
            let b: Vec<Point> = twice.connections(&q).iter().map(|&s| twice.point(s)).collect();
            prop_assert_eq!(a, b);
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
}

//! The in-memory spatio-temporal index the embedded mode answers contact queries from.
//!
//! Locations are kept as rows (time, latitude, longitude, id, person, position in the person's
//! track: 40 bytes each, one cache line or less); a location's position in the rows is its
//! *slot*. Two structures point at
//! slots, each list ordered by (time, id):
//! - per person, their track, so a person's pings in a window are one binary search away;
//! - per grid cell (5.5 m edges in Earth-centred coordinates: just over the default distance),
//!   the pings in that cell, so the neighbours of a ping within a time range are a search
//!   away. A query looks at those of the 27 cells around each ping that it can reach (more
//!   cells for distances up to 16 m). Coarser grids
//!   (64 m, 512 m) for larger distances are built the first time a query needs one, so the
//!   memory they take is spent only where such queries are asked.
//!
//! Rows are laid out cell by cell (a bulk load does so; later rows are appended in arrival
//! order and laid out again by [`ContactIndex::compact`] once they are a quarter of the rest), so
//! a cell's candidates are read front to back rather than one cache miss each: at tens of
//! millions of rows, arrival order spreads one cell's rows over hundreds of megabytes.
//!
//! A query walks the asked person's track in *runs*: consecutive pings in the same cell (a
//! person standing at a booth or sitting in a talk). Each neighbouring cell is then visited
//! once, with one time range per cluster of runs near it. Before the exact distance,
//! candidates are cut by latitude alone (two points `d` apart on the sphere are never more
//! than `d` apart in latitude), then by [`crate::geo::within_quick`], which settles all but
//! the pairs at the threshold without trigonometry.
//!
//! Every answer equals the brute-force oracle of [`crate::contact`]: the index only chooses
//! which pairs to compare, and the comparison decides as the same [`crate::geo::within`]
//! predicate does.
//!
//! # Layout
//! - `mod.rs`: the index, its rows and its public reads.
//! - `grid.rs`: cells, their lists of pings by time, the grid levels, and the faces of a cell a
//!   run of pings can reach.
//! - `build.rs`: loading in bulk ([`BulkBuilder`], [`PreparedPage`]) by counting sort.
//! - `layout.rs`: appending rows, laying them out again cell by cell, and the pins
//!   ([`SlotPin`]) that keep slots readable across layouts.
//! - `probe.rs`: the connection and contacts queries over the cells.
//! - `parallel.rs`: the threads work is split over ([`Workers`], handed in by the index's
//!   owner) and splitting a long query into pieces.
//! - `tests/`: the index against the brute-force oracle, its parts against plain scans.

mod build;
mod grid;
mod layout;
mod long;
mod parallel;
mod probe;
#[cfg(test)]
mod tests;
mod tracks;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

// The maps' hasher: keys are small integers (cells, ids), not attacker-chosen strings, and
// the default SipHash costs more than the look-ups it serves.
use rustc_hash::FxBuildHasher;

pub use build::{BulkBuilder, PreparedPage};
pub use layout::{feed, SlotPin};
pub use parallel::{DynWorkers, Threads, Workers};

use crate::contact::{Acc, Point};
use crate::time::{Micros, Window};
use grid::{CellList, Level, FINE_EDGE_M};
use layout::Move;
use long::LongHops;

/// One location as the index keeps it.
#[derive(Debug, Clone, Copy)]
struct Row {
    t: Micros,
    lat: f64,
    lon: f64,
    /// The location id, and its accuracy's code ([`Acc`]) above bit 53, where ids never
    /// reach: the accuracy costs the row no byte. Read through [`Row::id`], [`Row::acc`].
    id_acc: i64,
    /// Dense person number (see [`ContactIndex::person_ids`]).
    person: u32,
    /// Position in the person's track: a ping found in a cell names its pieces without a
    /// search of the track. Held in what would be the row's padding.
    at: u32,
}

// The track position fills what was padding: rows stay 40 bytes.
const _: () = assert!(std::mem::size_of::<Row>() == 40);

const ACC_SHIFT: u32 = 53;
const _: () = assert!(crate::model::MAX_ID < 1 << ACC_SHIFT && ACC_SHIFT + Acc::BITS <= 63);

impl Row {
    /// `p` as a row of the person numbered `person`.
    fn of(p: &Point, person: u32) -> Row {
        Row {
            t: p.t,
            lat: p.lat,
            lon: p.lon,
            id_acc: (p.id & ((1 << ACC_SHIFT) - 1)) | (i64::from(p.acc.code()) << ACC_SHIFT),
            person,
            at: 0,
        }
    }

    fn id(&self) -> i64 {
        self.id_acc & ((1 << ACC_SHIFT) - 1)
    }

    fn acc(&self) -> Acc {
        Acc::from_code((self.id_acc >> ACC_SHIFT) as u16)
    }

    /// A placeholder, for arrays filled afterwards.
    const EMPTY: Row = Row {
        t: 0,
        lat: 0.0,
        lon: 0.0,
        id_acc: 0,
        person: 0,
        at: 0,
    };
}

/// The index. Not synchronised: the owner wraps it in a lock.
pub struct ContactIndex {
    rows: Vec<Row>,
    /// Dense person number -> person id, and back.
    person_ids: Vec<i64>,
    person_numbers: HashMap<i64, u32, FxBuildHasher>,
    tracks: Vec<Vec<u32>>,
    /// The key of each track's last ping, so an in-order insert reads no row.
    track_ends: Vec<(Micros, i64)>,
    fine: Level,
    coarse: [OnceLock<Level>; 2],
    /// Consecutive pings far apart, for the contacts over tracks.
    hops: LongHops,
    /// Rows `..compacted` are laid out cell by cell (see [`ContactIndex::compact`]); later ones
    /// in arrival order.
    compacted: usize,
    /// Layout generation: [`ContactIndex::compact`] renumbers slots and starts a new one.
    generation: u64,
    /// Held by every [`SlotPin`] of the current generation.
    pins: Arc<()>,
    /// Pins of generations before this one are of the index this one was rebuilt from
    /// without a person ([`ContactIndex::without_person`]): their slots name nothing here.
    fresh_from: u64,
    /// How slots moved in each compaction some [`SlotPin`] still needs, oldest first.
    moves: VecDeque<Move>,
    /// The threads long queries are split over, handed in by the owner.
    workers: DynWorkers,
}

/// Grows the rows by an eighth rather than doubling: at tens of millions of rows, doubling
/// would leave up to half the memory unused.
fn reserve_gently<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        v.reserve_exact(v.len() / 8 + 1024);
    }
}

impl ContactIndex {
    /// An empty index that splits long queries over `workers`.
    pub fn new(workers: DynWorkers) -> Self {
        ContactIndex {
            rows: Vec::new(),
            person_ids: Vec::new(),
            person_numbers: HashMap::default(),
            tracks: Vec::new(),
            track_ends: Vec::new(),
            fine: Level {
                edge: FINE_EDGE_M,
                cells: HashMap::default(),
            },
            coarse: Default::default(),
            hops: LongHops::default(),
            compacted: 0,
            generation: 0,
            pins: Arc::default(),
            fresh_from: 0,
            moves: VecDeque::new(),
            workers,
        }
    }

    /// An empty index with room for `n` locations.
    pub fn with_capacity(n: usize, workers: DynWorkers) -> Self {
        let mut index = Self::new(workers);
        index.rows.reserve_exact(n);
        index
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The location in `slot`.
    pub fn point(&self, slot: u32) -> Point {
        let r = &self.rows[slot as usize];
        Point {
            id: r.id(),
            person_id: self.person_ids[r.person as usize],
            lat: r.lat,
            lon: r.lon,
            t: r.t,
            acc: r.acc(),
        }
    }

    /// The dense number of `person_id`, and whether it was given now (the person is new).
    fn person_number(&mut self, person_id: i64) -> (u32, bool) {
        match self.person_numbers.get(&person_id) {
            Some(&n) => (n, false),
            None => {
                let n = self.person_ids.len() as u32;
                self.person_ids.push(person_id);
                self.person_numbers.insert(person_id, n);
                (n, true)
            }
        }
    }

    fn key(&self, slot: u32) -> (Micros, i64) {
        let r = &self.rows[slot as usize];
        (r.t, r.id())
    }

    /// Writes each row's position in its track, from `from` on, after the track of `person`
    /// was built or a ping was put in its middle.
    fn number_track(&mut self, person: u32, from: usize) {
        let track = &self.tracks[person as usize];
        for (i, &s) in track.iter().enumerate().skip(from) {
            self.rows[s as usize].at = i as u32;
        }
    }

    /// Releases spare capacity after a bulk load.
    pub fn shrink_to_fit(&mut self) {
        self.rows.shrink_to_fit();
        for t in &mut self.tracks {
            t.shrink_to_fit();
        }
        for list in self.fine.cells.values_mut() {
            list.shrink_to_fit();
        }
        self.hops.shrink_to_fit();
    }

    /// Bytes held by the index, for the metrics and the memory benchmark.
    pub fn heap_bytes(&self) -> usize {
        let rows = self.rows.capacity() * std::mem::size_of::<Row>();
        let tracks: usize = self.tracks.iter().map(|t| t.capacity() * 4 + 24).sum();
        let cells: usize = std::iter::once(&self.fine)
            .chain(self.coarse.iter().filter_map(|l| l.get()))
            .map(|l| {
                l.cells.capacity() * (12 + 48 + 8)
                    + l.cells
                        .values()
                        .map(CellList::capacity_bytes)
                        .sum::<usize>()
            })
            .sum();
        let moves: usize = self.moves.iter().map(|m| m.to_next.capacity() * 4).sum();
        rows + tracks
            + cells
            + self.hops.heap_bytes()
            + moves
            + self.person_ids.capacity() * 8
            + self.person_numbers.capacity() * 16
    }

    /// Number of distinct persons seen.
    pub fn persons(&self) -> usize {
        self.person_ids.len()
    }

    /// Index range of a (time, id)-ordered list that falls in `[from, to)`.
    fn time_range(&self, list: &[u32], from: Micros, to: Micros) -> std::ops::Range<usize> {
        let lo = list.partition_point(|&s| self.rows[s as usize].t < from);
        let hi = lo + list[lo..].partition_point(|&s| self.rows[s as usize].t < to);
        lo..hi
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

    /// Every ping with time at or after `since`.
    pub fn since(&self, since: Micros) -> Vec<u32> {
        let mut out = Vec::new();
        for t in &self.tracks {
            let from = t.partition_point(|&s| self.rows[s as usize].t < since);
            out.extend_from_slice(&t[from..]);
        }
        out
    }
}

//! The grid: cells of Earth-centred coordinates, each with the list of its pings by time, at
//! one fine level always kept and coarser ones built when a query first needs them.

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;

use super::{ContactIndex, Row};
use crate::geo::{chord_for_arc_m, to_cartesian, DISTANCE_SLACK_M};
use crate::time::Micros;

/// Cell edge of the grid always kept, in metres of chord.
pub(super) const FINE_EDGE_M: f64 = 5.5;

/// Cell edges of the grids built on demand for larger distances.
const COARSE_EDGES_M: [f64; 2] = [64.0, 512.0];

pub(super) type Cell = [i32; 3];

pub(super) fn cell_at(xyz: [f64; 3], edge: f64) -> Cell {
    xyz.map(|c| (c / edge).floor() as i32)
}

pub(super) fn cell_of(lat: f64, lon: f64, edge: f64) -> Cell {
    cell_at(to_cartesian(lat, lon), edge)
}

/// The pings of one cell in (time, id) order, with each one's time in whole seconds beside
/// it: searches by time read a compact array instead of jumping through the rows, and the
/// exact bound is settled within one second's entries. Every [`SPARSE`]th second is kept again
/// in a small array that stays in cache, so a search costs a cache miss or two, not one per
/// step (at tens of millions of rows, a step is a miss).
#[derive(Default)]
pub(super) struct CellList {
    pub(super) slots: Vec<u32>,
    pub(super) seconds: Vec<u32>,
    /// `seconds[b * SPARSE]` for every block `b`.
    pub(super) sparse: Vec<u32>,
}

const SPARSE: usize = 32;

/// Seconds since the Unix epoch as `u32` (until 2106; later times share the last value,
/// which costs speed, never correctness).
pub(super) fn seconds(t: Micros) -> u32 {
    (t.div_euclid(1_000_000)).clamp(0, u32::MAX as i64) as u32
}

/// Calls `f` with every cell of `cells` from `first` to `last` (inclusive, per axis): by
/// look-ups, or by a pass over all cells when the box holds more cells than the map does (a
/// long piece or a large distance spans a box of millions of cells, mostly empty).
pub(super) fn for_cells_in<'a, T>(
    cells: &'a HashMap<Cell, T, FxBuildHasher>,
    (first, last): (Cell, Cell),
    mut f: impl FnMut(&'a T),
) {
    let boxed = (0..3)
        .map(|i| (last[i] as i64 - first[i] as i64 + 1).max(0) as u64)
        .fold(1u64, u64::saturating_mul);
    if boxed > cells.len() as u64 {
        let inside = |c: &Cell| (0..3).all(|i| first[i] <= c[i] && c[i] <= last[i]);
        cells
            .iter()
            .filter(|(c, _)| inside(c))
            .for_each(|(_, v)| f(v));
        return;
    }
    for x in first[0]..=last[0] {
        for y in first[1]..=last[1] {
            for z in first[2]..=last[2] {
                if let Some(v) = cells.get(&[x, y, z]) {
                    f(v);
                }
            }
        }
    }
}

/// The cells, at edge `edge`, of every point within `grow` of the box `lo..=hi`.
pub(super) fn cells_around((lo, hi): ([f64; 3], [f64; 3]), grow: f64, edge: f64) -> (Cell, Cell) {
    (
        std::array::from_fn(|i| ((lo[i] - grow) / edge).floor() as i32),
        std::array::from_fn(|i| ((hi[i] + grow) / edge).floor() as i32),
    )
}

/// Searches at a time in [`lockstep_partition_points`].
const LOCKSTEP: usize = 16;

/// `slice.partition_point(|&x| x < key)` of each `(slice, key)`, into `out`, in order. The
/// searches of a group take their steps in turn, without branching on the data, so the
/// processor has the loads of all of them in flight at once.
pub(super) fn lockstep_partition_points(asks: &[(&[u32], u32)], out: &mut Vec<usize>) {
    out.clear();
    for group in asks.chunks(LOCKSTEP) {
        let mut base = [0usize; LOCKSTEP];
        let mut size = [0usize; LOCKSTEP];
        for (i, (slice, _)) in group.iter().enumerate() {
            size[i] = slice.len();
        }
        loop {
            let mut more = false;
            for (i, (slice, key)) in group.iter().enumerate() {
                if size[i] > 1 {
                    let half = size[i] / 2;
                    base[i] += half * usize::from(slice[base[i] + half] < *key);
                    size[i] -= half;
                    more |= size[i] > 1;
                }
            }
            if !more {
                break;
            }
        }
        for (i, (slice, key)) in group.iter().enumerate() {
            out.push(match slice.get(base[i]) {
                Some(x) => base[i] + usize::from(x < key),
                None => 0,
            });
        }
    }
}

impl CellList {
    pub(super) fn new(slots: Vec<u32>, seconds: Vec<u32>) -> Self {
        let sparse = seconds.iter().step_by(SPARSE).copied().collect();
        CellList {
            slots,
            seconds,
            sparse,
        }
    }

    /// The same list with its slots renumbered (same times, same order).
    pub(super) fn with_slots(&self, slots: Vec<u32>) -> Self {
        CellList {
            slots,
            seconds: self.seconds.clone(),
            sparse: self.sparse.clone(),
        }
    }

    pub(super) fn insert(&mut self, slot: u32, key: (Micros, i64), rows: &[Row]) {
        let k = |s: u32| (rows[s as usize].t, rows[s as usize].id());
        let second = seconds(key.0);
        // A later second than the last entry's is the common case and needs no row read.
        let in_order = match (self.slots.last(), self.seconds.last()) {
            (Some(&last), Some(&last_second)) => {
                second > last_second || (second == last_second && k(last) <= key)
            }
            _ => true,
        };
        if in_order {
            if self.seconds.len().is_multiple_of(SPARSE) {
                self.sparse.push(second);
            }
            self.slots.push(slot);
            self.seconds.push(second);
            return;
        }
        let at = self.slots.partition_point(|&s| k(s) < key);
        self.slots.insert(at, slot);
        self.seconds.insert(at, second);
        // Blocks from the one holding `at` on have shifted.
        let kept = at.div_ceil(SPARSE);
        self.sparse.truncate(kept);
        self.sparse.extend(
            self.seconds
                .iter()
                .skip(kept * SPARSE)
                .step_by(SPARSE)
                .copied(),
        );
    }

    /// [`Self::first_second_at`] of many lists at once, in `out`. The searches go in lockstep,
    /// a step of each in turn, so their cache misses overlap instead of queueing: a wide query
    /// looks into thousands of cells it has not touched before, and each first look-up in a
    /// cell is a chain of misses.
    pub(super) fn first_seconds_at(asks: &[(&CellList, u32)], out: &mut Vec<usize>) {
        let mut blocks = Vec::with_capacity(asks.len());
        let sparse: Vec<(&[u32], u32)> = asks.iter().map(|(l, s)| (&l.sparse[..], *s)).collect();
        lockstep_partition_points(&sparse, &mut blocks);
        let within: Vec<(&[u32], u32)> = asks
            .iter()
            .zip(&blocks)
            .map(|((l, s), &block)| (&l.seconds[l.entries_before(block)], *s))
            .collect();
        lockstep_partition_points(&within, out);
        for ((l, _), (o, &block)) in asks.iter().zip(out.iter_mut().zip(&blocks)) {
            *o += l.entries_before(block).start;
        }
    }

    /// Index of the first entry whose second is at or after `s`.
    pub(super) fn first_second_at(&self, s: u32) -> usize {
        let range = self.entries_before(self.sparse.partition_point(|&x| x < s));
        range.start + self.seconds[range.clone()].partition_point(|&x| x < s)
    }

    /// The entries holding the answer when `sparse[block]` is the first sparse second at or
    /// after the one sought: those from the previous sparse second up to this one.
    pub(super) fn entries_before(&self, block: usize) -> std::ops::Range<usize> {
        block.saturating_sub(1) * SPARSE..(block * SPARSE).min(self.seconds.len())
    }

    /// From index `i`, past entries of second `seconds(t)` that are before `t`: only entries of
    /// the same second need their exact time read.
    pub(super) fn settle(&self, mut i: usize, t: Micros, rows: &[Row]) -> usize {
        let s = seconds(t);
        while i < self.slots.len() && self.seconds[i] == s && rows[self.slots[i] as usize].t < t {
            i += 1;
        }
        i
    }

    /// Index of the first entry with time at or after `t`.
    pub(super) fn first_at(&self, t: Micros, rows: &[Row]) -> usize {
        self.settle(self.first_second_at(seconds(t)), t, rows)
    }

    /// The slots with time in `[from, to)`.
    pub(super) fn range(&self, from: Micros, to: Micros, rows: &[Row]) -> &[u32] {
        let lo = self.first_at(from, rows);
        let hi = self.first_at_after(lo, to, rows);
        &self.slots[lo..hi]
    }

    /// [`Self::first_at`] for an answer known to be at or after `lo`. Ranges asked are often
    /// short: the entries just after `lo` (in cache lines just read) are tried first.
    pub(super) fn first_at_after(&self, lo: usize, t: Micros, rows: &[Row]) -> usize {
        let s = seconds(t);
        let near = (lo + 16).min(self.seconds.len());
        let i = if near == lo || self.seconds[near - 1] >= s {
            lo + self.seconds[lo..near].partition_point(|&x| x < s)
        } else {
            self.first_second_at(s).max(near)
        };
        self.settle(i, t, rows)
    }

    pub(super) fn shrink_to_fit(&mut self) {
        self.slots.shrink_to_fit();
        self.seconds.shrink_to_fit();
        self.sparse.shrink_to_fit();
    }

    pub(super) fn capacity_bytes(&self) -> usize {
        (self.slots.capacity() + self.seconds.capacity() + self.sparse.capacity()) * 4
    }
}

#[derive(Default)]
pub(super) struct Level {
    pub(super) edge: f64,
    pub(super) cells: HashMap<Cell, CellList, FxBuildHasher>,
}

/// The straight-line (chord) distance in the 3-D grid within which every point closer than
/// `distance_m` on the sphere lies, with a centimetre to spare for rounding.
pub(super) fn reach_m(distance_m: f64) -> f64 {
    chord_for_arc_m(distance_m + DISTANCE_SLACK_M) + 0.01
}

/// The least distance from some points of one cell to each face of that cell, per axis: low
/// faces, then high ones.
pub(super) struct Faces {
    low: [f64; 3],
    high: [f64; 3],
}

impl Faces {
    pub(super) fn new() -> Self {
        Faces {
            low: [f64::MAX; 3],
            high: [f64::MAX; 3],
        }
    }

    pub(super) fn take(&mut self, xyz: [f64; 3], cell: Cell, edge: f64) {
        for a in 0..3 {
            let base = cell[a] as f64 * edge;
            self.low[a] = self.low[a].min((xyz[a] - base).max(0.0));
            self.high[a] = self.high[a].min((base + edge - xyz[a]).max(0.0));
        }
    }

    /// A lower bound of the distance from the points taken to cell `n`'s box (`n` near `cell`).
    pub(super) fn reach(&self, cell: Cell, n: Cell, edge: f64) -> f64 {
        let mut sum = 0.0;
        for a in 0..3 {
            let d = n[a] - cell[a];
            let gap = match d.cmp(&0) {
                std::cmp::Ordering::Less => self.low[a] + (-d - 1) as f64 * edge,
                std::cmp::Ordering::Equal => 0.0,
                std::cmp::Ordering::Greater => self.high[a] + (d - 1) as f64 * edge,
            };
            sum += gap * gap;
        }
        sum.sqrt()
    }
}

impl ContactIndex {
    /// A grid of every location at a cell edge, lists in (time, id) order.
    pub(super) fn build_level(&self, edge: f64) -> Level {
        let mut lists: HashMap<Cell, Vec<u32>, FxBuildHasher> = HashMap::default();
        for (s, r) in self.rows.iter().enumerate() {
            lists
                .entry(cell_of(r.lat, r.lon, edge))
                .or_default()
                .push(s as u32);
        }
        let cells = lists
            .into_iter()
            .map(|(cell, mut slots)| {
                slots.sort_unstable_by_key(|&s| self.key(s));
                slots.shrink_to_fit();
                let seconds = slots
                    .iter()
                    .map(|&s| seconds(self.rows[s as usize].t))
                    .collect();
                (cell, CellList::new(slots, seconds))
            })
            .collect();
        Level { edge, cells }
    }

    /// The grid to search for a distance, and how many cells around a ping to look at.
    pub(super) fn level_for(&self, distance_m: f64) -> (&Level, i32) {
        self.level_for_reach(reach_m(distance_m))
    }

    /// The grid to search for a straight-line reach in metres, and how many cells around a
    /// ping to look at.
    pub(super) fn level_for_reach(&self, reach: f64) -> (&Level, i32) {
        if reach <= 3.0 * self.fine.edge {
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
    pub(super) fn around(c: Cell, k: i32) -> impl Iterator<Item = Cell> {
        (-k..=k).flat_map(move |dx| {
            (-k..=k).flat_map(move |dy| (-k..=k).map(move |dz| [c[0] + dx, c[1] + dy, c[2] + dz]))
        })
    }
}

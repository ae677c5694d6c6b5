//! Long hops: pairs of consecutive pings of one person further apart than [`SHORT_HOP_M`].
//!
//! A contacts query over tracks finds the other persons' pieces near the asked person's through
//! the grid of pings: a piece between two pings at most [`SHORT_HOP_M`] apart passes within
//! half that of one of its pings, so looking that much further around finds it. A longer piece
//! (someone walking between sparse pings, or a jump) may pass far from both of its pings, so
//! each such hop is kept apart, at the cell of its midpoint in a grid at least as coarse as the
//! hop is long: every point of the hop lies within half a cell edge of that midpoint. Edges grow
//! by doubling, so the cells a query looks at around a hop are never more than twice as wide as
//! the hop needs.
//!
//! An entry is 8 bytes (the second of the hop's first ping and that ping's slot), so the memory
//! stays small even when most hops are long. The slot names the piece without a search: its
//! row holds the person and the position in their track. A compaction renumbers slots, and
//! [`LongHops::renumber`] follows it.

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;

use super::grid::{cell_at, cells_around, for_cells_in, seconds, Cell};
use super::parallel::Workers;
use super::Row;
use crate::geo::to_cartesian;
use crate::time::Micros;
use crate::track::defaults::MAX_INTERPOLATION_LIMIT_S;

/// Hops up to this chord length are found through their pings in the grid.
pub(super) const SHORT_HOP_M: f64 = 11.0;

/// Number of grids long hops are kept in.
const HOP_LEVELS: usize = 22;

/// Cell edges of the grids long hops are kept in, each hop in the first that is at least as
/// long: 16 m, doubling up to 2^25 m, longer than the Earth's diameter. With 8-fold steps
/// (measured before), walkers' hops of 20-60 m sat in 128 m cells, and a query looked at most
/// of a venue's hops around each of its runs.
const HOP_EDGES_M: [f64; HOP_LEVELS] = {
    let mut edges = [16.0; HOP_LEVELS];
    let mut i = 1;
    while i < HOP_LEVELS {
        edges[i] = edges[i - 1] * 2.0;
        i += 1;
    }
    edges
};

/// Consecutive pings further apart in time never make a piece, whatever the query.
const HOP_SPAN_LIMIT: Micros = MAX_INTERPOLATION_LIMIT_S * 1_000_000;

/// A long hop as kept: the second of its first ping (for the query's time bounds) and that
/// ping's slot (the piece: see the module's description).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Hop {
    second: u32,
    slot: u32,
}

/// The long hops, by grid.
#[derive(Default)]
pub(super) struct LongHops {
    levels: [HashMap<Cell, Vec<Hop>, FxBuildHasher>; HOP_EDGES_M.len()],
}

/// A ping's time and position, as the hops need them.
pub(super) fn fix_of(row: &Row) -> (Micros, [f64; 3]) {
    (row.t, to_cartesian(row.lat, row.lon))
}

/// Where the hop from `a` to `b` (consecutive pings, `a` first) is kept, or `None` when it is
/// found through the grid of pings or can make no piece.
fn place(a: (Micros, [f64; 3]), b: (Micros, [f64; 3])) -> Option<(usize, Cell)> {
    if b.0.saturating_sub(a.0) > HOP_SPAN_LIMIT {
        return None;
    }
    let length = (0..3)
        .map(|i| (b.1[i] - a.1[i]).powi(2))
        .sum::<f64>()
        .sqrt();
    if length <= SHORT_HOP_M {
        return None;
    }
    let level = HOP_EDGES_M.iter().position(|&e| e >= length)?;
    let middle = std::array::from_fn(|i| a.1[i] + (b.1[i] - a.1[i]) * 0.5);
    Some((level, cell_at(middle, HOP_EDGES_M[level])))
}

/// Where the hop from `a` (in `slot`) to `b` is kept, and its entry there.
fn placed(a: (Micros, [f64; 3]), b: (Micros, [f64; 3]), slot: u32) -> Option<(usize, Cell, Hop)> {
    let (level, cell) = place(a, b)?;
    let hop = Hop {
        second: seconds(a.0),
        slot,
    };
    Some((level, cell, hop))
}

impl LongHops {
    /// Notes the hop from `a` (in `slot`) to `b`, when it is long.
    pub(super) fn add(&mut self, a: (Micros, [f64; 3]), b: (Micros, [f64; 3]), slot: u32) {
        if let Some((level, cell, hop)) = placed(a, b, slot) {
            let list = self.levels[level].entry(cell).or_default();
            let at = list.partition_point(|h| *h < hop);
            list.insert(at, hop);
        }
    }

    /// Forgets the hop from `a` (in `slot`) to `b` (a ping arrived between them).
    pub(super) fn remove(&mut self, a: (Micros, [f64; 3]), b: (Micros, [f64; 3]), slot: u32) {
        if let Some((level, cell, hop)) = placed(a, b, slot) {
            if let Some(list) = self.levels[level].get_mut(&cell) {
                let at = list.partition_point(|h| *h < hop);
                if list.get(at) == Some(&hop) {
                    list.remove(at);
                }
                if list.is_empty() {
                    self.levels[level].remove(&cell);
                }
            }
        }
    }

    /// Every hop of every track, after a bulk load: the tracks shared between the workers'
    /// threads, each laying out its own share, then joined.
    pub(super) fn of_tracks(rows: &[Row], tracks: &[Vec<u32>], workers: &dyn Workers) -> Self {
        let part = tracks.len().div_ceil(workers.threads()).max(1);
        let mut shares: Vec<LongHops> = tracks.chunks(part).map(|_| Self::default()).collect();
        workers.run_all(
            tracks
                .chunks(part)
                .zip(shares.iter_mut())
                .map(|(some, share)| {
                    Box::new(move || share.push_tracks(rows, some)) as Box<dyn FnOnce() + Send + '_>
                })
                .collect(),
        );
        let mut hops = shares.pop().unwrap_or_default();
        for share in shares {
            for (level, cells) in hops.levels.iter_mut().zip(share.levels) {
                for (cell, list) in cells {
                    level.entry(cell).or_default().extend(list);
                }
            }
        }
        // Tracks come person by person, so a cell's hops arrive out of order: sorted once at
        // the end, where inserting each in place moved half a crowded cell's list every time
        // (most of a 10M-ping start).
        for level in &mut hops.levels {
            for list in level.values_mut() {
                list.sort_unstable();
            }
        }
        hops.shrink_to_fit();
        hops
    }

    /// Appends the long hops of `tracks`, unsorted.
    fn push_tracks(&mut self, rows: &[Row], tracks: &[Vec<u32>]) {
        for track in tracks {
            let mut fixes = track.iter().map(|&s| (fix_of(&rows[s as usize]), s));
            let Some(mut last) = fixes.next() else {
                continue;
            };
            for next in fixes {
                if let Some((level, cell, hop)) = placed(last.0, next.0, last.1) {
                    self.levels[level].entry(cell).or_default().push(hop);
                }
                last = next;
            }
        }
    }

    pub(super) fn shrink_to_fit(&mut self) {
        for level in &mut self.levels {
            level.shrink_to_fit();
            for list in level.values_mut() {
                list.shrink_to_fit();
            }
        }
    }

    /// Slots move in a compaction: slot `s` becomes `to_next[s]`.
    pub(super) fn renumber(&mut self, to_next: &[u32]) {
        for level in &mut self.levels {
            for list in level.values_mut() {
                for hop in list.iter_mut() {
                    hop.slot = to_next[hop.slot as usize];
                }
                list.sort_unstable();
            }
        }
    }

    /// Appends to `out` the first ping's slot of every hop whose first ping falls in seconds
    /// `from..=to` and that may pass within `reach` of the box `lo..=hi` (Earth-centred metres).
    pub(super) fn near(
        &self,
        bounds: ([f64; 3], [f64; 3]),
        reach: f64,
        (from, to): (u32, u32),
        out: &mut Vec<u32>,
    ) {
        for (cells, &edge) in self.levels.iter().zip(&HOP_EDGES_M) {
            if cells.is_empty() {
                continue;
            }
            let boxed = cells_around(bounds, reach + edge * 0.5 + 0.01, edge);
            for_cells_in(cells, boxed, |list: &Vec<Hop>| {
                let a = list.partition_point(|h| h.second < from);
                out.extend(
                    list[a..]
                        .iter()
                        .take_while(|h| h.second <= to)
                        .map(|h| h.slot),
                );
            });
        }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.levels
            .iter()
            .map(|l| {
                l.capacity() * (12 + 24 + 8) + l.values().map(|v| v.capacity() * 8).sum::<usize>()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::{Acc, Point};
    use crate::index::parallel::Threads;

    /// Three walkers criss-crossing one small square, pings 5 to 60 s apart: their long hops
    /// share cells and arrive there out of time order, person by person.
    fn crowded_tracks() -> (Vec<Row>, Vec<Vec<u32>>) {
        let (mut rows, mut tracks) = (Vec::new(), Vec::new());
        for person in 0..3u32 {
            let mut track = Vec::new();
            for i in 0..200i64 {
                let step = (i * 7 + person as i64 * 13) % 11;
                let p = Point {
                    id: rows.len() as i64 + 1,
                    person_id: person as i64 + 1,
                    lat: 40.0 + (step as f64) * 0.0002,
                    lon: -3.0 + ((i % 3) as f64) * 0.0003,
                    t: i * 5_000_000 * (1 + (step % 12)) + person as i64 * 1_000_000,
                    acc: Acc::UNKNOWN,
                };
                track.push(rows.len() as u32);
                rows.push(Row::of(&p, person));
            }
            track.sort_by_key(|&s| rows[s as usize].t);
            tracks.push(track);
        }
        (rows, tracks)
    }

    #[test]
    fn hops_laid_out_in_bulk_are_those_added_one_by_one() {
        let (rows, tracks) = crowded_tracks();
        let bulk = LongHops::of_tracks(&rows, &tracks, &Threads::new(4));
        let mut one_by_one = LongHops::default();
        for track in &tracks {
            for pair in track.windows(2) {
                let (a, b) = (
                    fix_of(&rows[pair[0] as usize]),
                    fix_of(&rows[pair[1] as usize]),
                );
                one_by_one.add(a, b, pair[0]);
            }
        }
        let kept: usize = bulk
            .levels
            .iter()
            .flat_map(|l| l.values())
            .map(Vec::len)
            .sum();
        assert!(kept > 100, "the tracks have long hops to keep ({kept})");
        assert_eq!(bulk.levels, one_by_one.levels);
    }
}

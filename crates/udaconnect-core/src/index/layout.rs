//! Rows as they arrive, and laying them out again cell by cell: appends, compaction, and the
//! pins that keep an answer's slots readable across layouts.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rustc_hash::FxBuildHasher;

use super::grid::{cell_at, Cell, CellList};
use super::long::fix_of;
use super::{reserve_gently, ContactIndex, Row};
use crate::contact::Point;
use crate::geo::to_cartesian;
use crate::time::Micros;

/// Inserts points into a shared index, then lays it out again when a compaction is due. The
/// new layout is computed under the read lock, so queries go on meanwhile; only the swap takes
/// the write lock. Writers wait for the layout (one writer, the consumer, is the rule).
pub fn feed(index: &RwLock<ContactIndex>, points: impl IntoIterator<Item = Point>) {
    let due = {
        let mut index = index.write().unwrap_or_else(|e| e.into_inner());
        for p in points {
            index.insert(&p);
        }
        index.compaction_due()
    };
    if due {
        let layout = index.read().unwrap_or_else(|e| e.into_inner()).layout();
        index
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .apply(layout);
    }
}

/// The renumbering of one compaction: slot `s` of generation `from` is `to_next[s]` in the
/// next one.
pub(super) struct Move {
    pub(super) from: u64,
    pub(super) pins: Arc<()>,
    pub(super) to_next: Vec<u32>,
}

/// Keeps slots of one layout generation readable after later compactions (an answer being
/// streamed holds one: see [`ContactIndex::point_pinned`]).
#[derive(Clone)]
pub struct SlotPin {
    generation: u64,
    _held: Arc<()>,
}

/// A new layout computed apart from the index (see [`ContactIndex::compact`]).
struct Layout {
    generation: u64,
    len: usize,
    rows: Vec<Row>,
    tracks: Vec<Vec<u32>>,
    fine: HashMap<Cell, CellList, FxBuildHasher>,
    coarse: [Option<HashMap<Cell, CellList, FxBuildHasher>>; 2],
    to_next: Vec<u32>,
}

/// Rows that arrived since the last compaction before the next one is due: at least this
/// many, and at least a quarter of the compacted ones, so the work stays in proportion to
/// the arrivals (each row is moved a handful of times in all).
pub(super) const COMPACT_AFTER: usize = 1 << 18;

impl ContactIndex {
    /// Adds a location. Returns false, changing nothing, when the location is already in:
    /// the consumer may deliver a batch twice.
    pub fn insert(&mut self, p: &Point) -> bool {
        self.insert_row(p, true)
    }

    /// [`Self::insert`], noting the hops it makes and splits when `hops` (not when a layout
    /// adds again rows whose hops are already noted).
    fn insert_row(&mut self, p: &Point, hops: bool) -> bool {
        let (number, new) = self.person_number(p.person_id);
        if new {
            self.tracks.push(Vec::new());
            self.track_ends.push((Micros::MIN, i64::MIN));
        }
        let key = (p.t, p.id);
        {
            // Pings mostly arrive in time order: a key above the track's last cannot be a
            // duplicate, and only the rest need a search.
            let track = &self.tracks[number as usize];
            if !track.is_empty() && self.track_ends[number as usize] >= key {
                let at = track.partition_point(|&s| self.key(s) < key);
                if track.get(at).is_some_and(|&s| self.key(s) == key) {
                    return false;
                }
            }
        }
        let slot = self.rows.len() as u32;
        reserve_gently(&mut self.rows);
        self.rows.push(Row::of(p, number));
        let rows = &self.rows;
        let (track, end) = (
            &mut self.tracks[number as usize],
            &mut self.track_ends[number as usize],
        );
        let at = if key > *end {
            track.push(slot);
            *end = key;
            track.len() - 1
        } else {
            let at = track.partition_point(|&s| (rows[s as usize].t, rows[s as usize].id()) < key);
            track.insert(at, slot);
            at
        };
        // The pings after a late one each move one place down their track.
        self.number_track(number, at);
        let rows = &self.rows;
        let xyz = to_cartesian(p.lat, p.lon);
        let fine = self
            .fine
            .cells
            .entry(cell_at(xyz, self.fine.edge))
            .or_default();
        fine.insert(slot, key, rows);
        for level in self.coarse.iter_mut().filter_map(|l| l.get_mut()) {
            let list = level.cells.entry(cell_at(xyz, level.edge)).or_default();
            list.insert(slot, key, rows);
        }
        if hops {
            self.note_hops(number, at);
        }
        true
    }

    /// The hops around the ping just put at `at` in the track of `person`: it splits the hop
    /// between its neighbours into two.
    fn note_hops(&mut self, person: u32, at: usize) {
        let track = &self.tracks[person as usize];
        let fix = |i: usize| fix_of(&self.rows[track[i] as usize]);
        let new = fix(at);
        let before = at.checked_sub(1).map(|i| (fix(i), track[i]));
        let after = (at + 1 < track.len()).then(|| fix(at + 1));
        if let (Some((b, slot)), Some(a)) = (before, after) {
            self.hops.remove(b, a, slot);
        }
        if let Some((b, slot)) = before {
            self.hops.add(b, new, slot);
        }
        if let Some(a) = after {
            self.hops.add(new, a, track[at]);
        }
    }

    /// The key of each track's last ping (see `track_ends`).
    pub(super) fn track_end_keys(&self) -> Vec<(Micros, i64)> {
        self.tracks
            .iter()
            .map(|t| t.last().map_or((Micros::MIN, i64::MIN), |&s| self.key(s)))
            .collect()
    }

    /// Whether enough rows arrived in arrival order since the last compaction to lay them out
    /// again (at least `COMPACT_AFTER` rows, and a quarter of those laid out).
    pub fn compaction_due(&self) -> bool {
        let arrived = self.rows.len() - self.compacted;
        arrived >= COMPACT_AFTER && arrived * 4 >= self.compacted
    }

    /// Lays the rows out cell by cell, each cell's in (time, id) order, so that the candidates
    /// of a query are read front to back from memory instead of one cache miss each (at tens
    /// of millions of rows, arrival order spreads a cell's rows over hundreds of megabytes).
    /// Renumbers slots: answers that hold slots keep a [`SlotPin`].
    pub fn compact(&mut self) {
        let layout = self.layout();
        self.apply(layout);
    }

    /// The new layout, computed from a shared borrow so that readers go on meanwhile.
    fn layout(&self) -> Layout {
        let len = self.rows.len();
        let mut cells: Vec<(&Cell, &CellList)> = self.fine.cells.iter().collect();
        // Neighbouring cells (same x, then y) end up near each other.
        cells.sort_unstable_by_key(|(c, _)| **c);
        let mut to_next = vec![0u32; len];
        let mut rows = Vec::with_capacity(len);
        let mut fine = HashMap::with_capacity_and_hasher(cells.len(), FxBuildHasher);
        for (cell, list) in cells {
            let start = rows.len() as u32;
            for &s in &list.slots {
                to_next[s as usize] = rows.len() as u32;
                rows.push(self.rows[s as usize]);
            }
            let slots = (start..rows.len() as u32).collect();
            fine.insert(*cell, list.with_slots(slots));
        }
        let remap =
            |list: &[u32]| -> Vec<u32> { list.iter().map(|&s| to_next[s as usize]).collect() };
        let tracks = self.tracks.iter().map(|t| remap(t)).collect();
        let coarse = [0, 1].map(|i| {
            self.coarse[i].get().map(|level| {
                level
                    .cells
                    .iter()
                    .map(|(c, l)| (*c, l.with_slots(remap(&l.slots))))
                    .collect()
            })
        });
        Layout {
            generation: self.generation,
            len,
            rows,
            tracks,
            fine,
            coarse,
            to_next,
        }
    }

    /// Puts a layout in place. Rows added since it was computed are added to it again, in the
    /// same order, so their slots stay as they were.
    fn apply(&mut self, layout: Layout) {
        if layout.generation != self.generation {
            // Another writer compacted first: this layout's slots are stale.
            return;
        }
        let later: Vec<Point> = (layout.len..self.rows.len())
            .map(|s| self.point(s as u32))
            .collect();
        self.rows = layout.rows;
        self.tracks = layout.tracks;
        self.track_ends = self.track_end_keys();
        self.fine.cells = layout.fine;
        for (level, cells) in self.coarse.iter_mut().zip(layout.coarse) {
            if let (Some(level), Some(cells)) = (level.get_mut(), cells) {
                level.cells = cells;
            }
        }
        self.compacted = layout.len;
        let mut to_next = layout.to_next;
        to_next.extend(layout.len as u32..(layout.len + later.len()) as u32);
        // Hops noted since the layout was computed name old slots too: all move at once.
        self.hops.renumber(&to_next);
        self.moves.push_back(Move {
            from: self.generation,
            pins: std::mem::take(&mut self.pins),
            to_next,
        });
        self.generation += 1;
        // A renumbering no answer holds a pin from, or from before, is no longer needed.
        while self
            .moves
            .front()
            .is_some_and(|m| Arc::strong_count(&m.pins) == 1)
        {
            self.moves.pop_front();
        }
        for p in &later {
            self.insert_row(p, false);
        }
    }

    /// A pin on the current layout: slots taken from this index now stay readable through
    /// [`Self::point_pinned`] whatever compactions come later.
    pub fn pin(&self) -> SlotPin {
        SlotPin {
            generation: self.generation,
            _held: self.pins.clone(),
        }
    }

    /// Whether slots taken under `pin` can be read here: not once the index was rebuilt
    /// without a person since (an erasure), which renumbers every slot.
    pub fn pin_current(&self, pin: &SlotPin) -> bool {
        pin.generation >= self.fresh_from
    }

    /// The location in `slot` of the layout `pin` was taken on (a pin that is
    /// [`Self::pin_current`]).
    pub fn point_pinned(&self, pin: &SlotPin, slot: u32) -> Point {
        let mut slot = slot;
        for m in self.moves.iter().filter(|m| m.from >= pin.generation) {
            slot = m.to_next[slot as usize];
        }
        self.point(slot)
    }
}

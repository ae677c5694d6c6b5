//! Loading in bulk: rows appended as a store's pages come, then tracks and cells laid out by
//! counting sort, the slowest passes shared between the workers' threads.

use std::collections::HashMap;
use std::sync::mpsc::Receiver;

use rustc_hash::FxBuildHasher;

use super::grid::{cell_of, seconds, Cell, CellList, FINE_EDGE_M};
use super::long::LongHops;
use super::parallel::{DynWorkers, Workers};
use super::{reserve_gently, ContactIndex, Row};
use crate::cancel::{Cancel, Cancelled, Ticker};
use crate::contact::Point;
use crate::time::Micros;

/// Items grouped by `bucket_of` (a stable counting sort): the grouped items, and where each
/// bucket starts (bucket `b` is `starts[b]..starts[b + 1]`). Two passes, front to back.
pub(super) fn group_by_bucket<T: Copy + Default>(
    items: impl Iterator<Item = T> + Clone,
    buckets: usize,
    bucket_of: impl Fn(&T) -> usize,
) -> (Vec<T>, Vec<usize>) {
    let grouped = group_by_bucket_until(items, buckets, bucket_of, &Cancel::new());
    grouped.unwrap_or_default()
}

/// [`group_by_bucket`], stopped within [`CHECK_EVERY`](crate::cancel::CHECK_EVERY) items of
/// `cancel` being raised.
fn group_by_bucket_until<T: Copy + Default>(
    items: impl Iterator<Item = T> + Clone,
    buckets: usize,
    bucket_of: impl Fn(&T) -> usize,
    cancel: &Cancel,
) -> Result<(Vec<T>, Vec<usize>), Cancelled> {
    let mut ticker = Ticker::new(cancel);
    let mut starts = vec![0usize; buckets + 1];
    let mut n = 0;
    for item in items.clone() {
        ticker.tick(1)?;
        starts[bucket_of(&item) + 1] += 1;
        n += 1;
    }
    for b in 0..buckets {
        starts[b + 1] += starts[b];
    }
    let mut next = starts.clone();
    let mut out = vec![T::default(); n];
    for item in items {
        ticker.tick(1)?;
        let at = &mut next[bucket_of(&item)];
        out[*at] = item;
        *at += 1;
    }
    Ok((out, starts))
}

/// Sorts items that `bucket_of` orders coarsely (a bucket's items all come before the next
/// bucket's): grouped by bucket in one counting sort, then each bucket sorted on its own, in
/// cache. The same order as a full sort, at a fraction of its cost.
pub(super) fn sort_in_buckets<T: Copy + Default + Ord>(
    items: &mut Vec<T>,
    buckets: usize,
    bucket_of: impl Fn(&T) -> usize,
) {
    let sorted = sort_in_buckets_until(items, buckets, bucket_of, &Cancel::new());
    debug_assert!(sorted.is_ok());
}

/// [`sort_in_buckets`], stopped between buckets once `cancel` is raised (`items` then in no
/// particular order): a query's sort of a hundred thousand candidates is milliseconds of work
/// that an abandoned query must not finish.
pub(super) fn sort_in_buckets_until<T: Copy + Default + Ord>(
    items: &mut Vec<T>,
    buckets: usize,
    bucket_of: impl Fn(&T) -> usize,
    cancel: &Cancel,
) -> Result<(), Cancelled> {
    let (mut out, starts) =
        group_by_bucket_until(items.iter().copied(), buckets, bucket_of, cancel)?;
    let mut ticker = Ticker::new(cancel);
    for w in starts.windows(2) {
        ticker.tick(w[1] - w[0])?;
        out[w[0]..w[1]].sort_unstable();
    }
    *items = out;
    Ok(())
}

/// Locations with their cells worked out, for [`BulkBuilder::push_page`]: the trigonometry of
/// a page done on whichever thread read it, while the builder takes the page before.
pub struct PreparedPage {
    /// Points and cells in one array: a page's single large allocation is mapped and unmapped
    /// whole by the allocator, so pages freed on another thread leave nothing behind.
    points: Vec<(Point, Cell)>,
}

impl PreparedPage {
    pub fn new(points: impl ExactSizeIterator<Item = Point>) -> Self {
        let points = points
            .map(|p| (p, cell_of(p.lat, p.lon, FINE_EDGE_M)))
            .collect();
        PreparedPage { points }
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// Where to cut `0..cells` (whose rows start at `starts`, strictly increasing, with the end
/// last) into at most `parts` runs of whole cells with about equal numbers of rows: the cell
/// numbers of the cuts, first 0 and last the number of cells.
pub(super) fn cuts_at_cells(starts: &[usize], parts: usize) -> Vec<usize> {
    let cells = starts.len() - 1;
    let n = starts[cells];
    let mut cuts = vec![0];
    for k in 1..parts.max(1) {
        let cut = starts.partition_point(|&s| s < n * k / parts).min(cells);
        if cut > *cuts.last().unwrap_or(&0) {
            cuts.push(cut);
        }
    }
    if *cuts.last().unwrap_or(&0) < cells || cells == 0 {
        cuts.push(cells);
    }
    cuts
}

/// Fills `rows` with `old_rows[order[i]]`, then puts each cell's part (its bounds in
/// `cell_starts`, relative to the first) in (time, id) order, with `order` kept beside. Parts
/// are checked front to back and sorted only where they are out of order.
fn gather_cells(old_rows: &[Row], rows: &mut [Row], order: &mut [u32], cell_starts: &[usize]) {
    for (row, &s) in rows.iter_mut().zip(order.iter()) {
        *row = old_rows[s as usize];
    }
    let base = cell_starts[0];
    for w in cell_starts.windows(2) {
        let (from, to) = (w[0] - base, w[1] - base);
        let part = &rows[from..to];
        if !part.is_sorted_by_key(|r| (r.t, r.id())) {
            let mut pairs: Vec<(Row, u32)> = part
                .iter()
                .copied()
                .zip(order[from..to].iter().copied())
                .collect();
            pairs.sort_unstable_by_key(|(r, _)| (r.t, r.id()));
            for (i, (r, s)) in pairs.into_iter().enumerate() {
                rows[from + i] = r;
                order[from + i] = s;
            }
        }
    }
}

/// Puts in (time, id) order each track not known to be in it, the persons shared between
/// the workers' threads. Keys are read once into a sorted copy: a track that came in a few interleaved runs
/// (batches acknowledged out of order) is merged from its runs by the stable sort.
fn sort_tracks(workers: &dyn Workers, tracks: &mut [Vec<u32>], in_order: &[bool], rows: &[Row]) {
    let sort = |tracks: &mut [Vec<u32>], in_order: &[bool]| {
        let mut keyed: Vec<(Micros, i64, u32)> = Vec::new();
        for (track, &sorted) in tracks.iter_mut().zip(in_order) {
            if sorted {
                continue;
            }
            keyed.clear();
            keyed.extend(track.iter().map(|&s| {
                let r = &rows[s as usize];
                (r.t, r.id(), s)
            }));
            keyed.sort_by_key(|&(t, id, _)| (t, id));
            for (slot, &(_, _, s)) in track.iter_mut().zip(&keyed) {
                *slot = s;
            }
        }
    };
    let part = tracks.len().div_ceil(workers.threads()).max(1);
    let sort = &sort;
    workers.run_all(
        tracks
            .chunks_mut(part)
            .zip(in_order.chunks(part))
            .map(|(t, o)| Box::new(move || sort(t, o)) as Box<dyn FnOnce() + Send + '_>)
            .collect(),
    );
}

impl ContactIndex {
    /// This index without `person_id`'s pings, for erasing the person; `None` when it holds
    /// none. Built anew in bulk from the other rows, which costs what loading them at start
    /// does: erasures are rare, and removing rows in place would renumber slots all the same.
    /// Answers pinned to this index read nothing from the new one (see
    /// [`ContactIndex::pin_current`]).
    pub fn without_person(&self, person_id: i64) -> Option<ContactIndex> {
        let &number = self.person_numbers.get(&person_id)?;
        let keep = self.rows.len() - self.tracks[number as usize].len();
        let mut builder = BulkBuilder::with_capacity(keep, self.workers.clone());
        for (slot, row) in self.rows.iter().enumerate() {
            if row.person != number {
                builder.push(&self.point(slot as u32));
            }
        }
        Some(self.renewed(builder))
    }

    /// This index without the pings with time before `cut` (retention); `None` when it
    /// holds none. Built anew in bulk from the rows kept, as [`Self::without_person`] is,
    /// and for the same reasons: a retention pass runs a few times a day at most.
    pub fn without_before(&self, cut: Micros) -> Option<ContactIndex> {
        let keep = self.rows.iter().filter(|r| r.t >= cut).count();
        if keep == self.rows.len() {
            return None;
        }
        let mut builder = BulkBuilder::with_capacity(keep, self.workers.clone());
        for (slot, row) in self.rows.iter().enumerate() {
            if row.t >= cut {
                builder.push(&self.point(slot as u32));
            }
        }
        Some(self.renewed(builder))
    }

    /// The index `builder` built in place of this one: pins on this one read nothing from it.
    fn renewed(&self, builder: BulkBuilder) -> ContactIndex {
        let mut index = builder.finish();
        index.generation = self.generation + 1;
        index.fresh_from = index.generation;
        index
    }
}

/// Loads an index in bulk: rows are appended as they come, then tracks and cells are laid out
/// by counting sort, each list written front to back instead of appending to tens of thousands
/// of lists in turn (a cache miss each).
pub struct BulkBuilder {
    index: ContactIndex,
    /// Each row's fine cell, numbered in order of first appearance: worked out as rows come,
    /// while the store reads the next page.
    cell_numbers: HashMap<Cell, u32, FxBuildHasher>,
    cells_in_order: Vec<Cell>,
    numbers: Vec<u32>,
    /// The last key pushed per person, and whether each person's rows came in key order.
    last_keys: Vec<(Micros, i64)>,
    in_order: Vec<bool>,
    /// The array [`Self::finish`] lays rows out in, allocated and written once on a thread of
    /// its own while rows are pushed: at tens of millions of rows, the kernel's first touch of
    /// its pages takes as long as the layout itself. Nothing comes when no thread could be had.
    layout: Receiver<Vec<Row>>,
}

impl BulkBuilder {
    /// A builder for about `capacity` locations, whose index splits its work over `workers`.
    pub fn with_capacity(capacity: usize, workers: DynWorkers) -> Self {
        let (laid, layout) = std::sync::mpsc::sync_channel(1);
        workers.spawn(
            "index-layout",
            Box::new(move || {
                let _ = laid.send(vec![Row::EMPTY; capacity]);
            }),
        );
        BulkBuilder {
            index: ContactIndex::with_capacity(capacity, workers),
            cell_numbers: HashMap::default(),
            cells_in_order: Vec::new(),
            numbers: Vec::with_capacity(capacity),
            last_keys: Vec::new(),
            in_order: Vec::new(),
            layout,
        }
    }

    /// Adds a location; each must come at most once.
    pub fn push(&mut self, p: &Point) {
        let cell = cell_of(p.lat, p.lon, self.index.fine.edge);
        self.push_in_cell(p, cell);
    }

    /// Adds a page of locations, in its order; each must come at most once.
    pub fn push_page(&mut self, page: &PreparedPage) {
        // Pages are prepared on the fine grid, the one a builder's index starts with.
        debug_assert_eq!(self.index.fine.edge, FINE_EDGE_M);
        for (p, cell) in &page.points {
            self.push_in_cell(p, *cell);
        }
    }

    fn push_in_cell(&mut self, p: &Point, cell: Cell) {
        let index = &mut self.index;
        let (number, new) = index.person_number(p.person_id);
        if new {
            self.last_keys.push((Micros::MIN, i64::MIN));
            self.in_order.push(true);
        }
        let key = (p.t, p.id);
        let last = &mut self.last_keys[number as usize];
        if key < *last {
            self.in_order[number as usize] = false;
        }
        *last = key;
        reserve_gently(&mut index.rows);
        index.rows.push(Row::of(p, number));
        let cells_in_order = &mut self.cells_in_order;
        let n = *self.cell_numbers.entry(cell).or_insert_with(|| {
            cells_in_order.push(cell);
            (cells_in_order.len() - 1) as u32
        });
        reserve_gently(&mut self.numbers);
        self.numbers.push(n);
    }

    pub fn len(&self) -> usize {
        self.index.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.rows.is_empty()
    }

    /// Lays out rows cell by cell (as [`ContactIndex::compact`] does), tracks and cells, and
    /// returns the index. Rows are read at random once (to gather them by cell); every other
    /// pass is front to back. Working arrays are a few large allocations, freed whole, so that
    /// the memory they took goes back to the system.
    pub fn finish(self) -> ContactIndex {
        let BulkBuilder {
            mut index,
            cell_numbers,
            cells_in_order,
            numbers,
            in_order,
            layout,
            ..
        } = self;
        drop(cell_numbers);
        let n = index.rows.len();
        // Cells in key order (neighbours near each other), then each cell's rows by counting
        // sort into one array.
        let mut rank: Vec<u32> = (0..cells_in_order.len() as u32).collect();
        rank.sort_unstable_by_key(|&c| cells_in_order[c as usize]);
        let mut position = vec![0u32; cells_in_order.len()];
        for (r, &c) in rank.iter().enumerate() {
            position[c as usize] = r as u32;
        }
        let (mut order, starts) = group_by_bucket(0..n as u32, cells_in_order.len(), |&s| {
            position[numbers[s as usize] as usize] as usize
        });
        drop((numbers, position));
        // The rows gathered cell by cell: reads at random, the start's slowest pass, so it is
        // shared between the workers' threads, each taking whole cells.
        let mut rows = layout.recv().unwrap_or_default();
        rows.resize(n, Row::EMPTY);
        let old_rows = &index.rows;
        let workers = index.workers.clone();
        let cuts = cuts_at_cells(&starts, workers.threads());
        {
            let (mut rows_left, mut order_left) = (&mut rows[..], &mut order[..]);
            let mut parts: Vec<Box<dyn FnOnce() + Send + '_>> = Vec::new();
            for w in cuts.windows(2) {
                let (from, to) = (starts[w[0]], starts[w[1]]);
                let (part_rows, rest) = std::mem::take(&mut rows_left).split_at_mut(to - from);
                rows_left = rest;
                let (part_order, rest) = std::mem::take(&mut order_left).split_at_mut(to - from);
                order_left = rest;
                let cell_starts = &starts[w[0]..=w[1]];
                parts.push(Box::new(move || {
                    gather_cells(old_rows, part_rows, part_order, cell_starts)
                }));
            }
            workers.run_all(parts);
        }
        let mut to_next = vec![0u32; n];
        for (new, &old) in order.iter().enumerate() {
            to_next[old as usize] = new as u32;
        }
        drop(order);
        // Tracks in one pass over the old slots (arrival order); only a person whose rows did
        // not come in key order has their track sorted.
        let mut counts = vec![0usize; index.person_ids.len()];
        for r in &index.rows {
            counts[r.person as usize] += 1;
        }
        let mut tracks: Vec<Vec<u32>> = counts.iter().map(|&c| Vec::with_capacity(c)).collect();
        for (old, r) in index.rows.iter().enumerate() {
            tracks[r.person as usize].push(to_next[old]);
        }
        drop(to_next);
        sort_tracks(&*workers, &mut tracks, &in_order, &rows);
        index.rows = rows;
        index.tracks = tracks;
        index.track_ends = index.track_end_keys();
        for person in 0..index.tracks.len() as u32 {
            index.number_track(person, 0);
        }
        index.hops = LongHops::of_tracks(&index.rows, &index.tracks, &*workers);
        index.fine.cells = HashMap::with_capacity_and_hasher(rank.len(), FxBuildHasher);
        for (r, &c) in rank.iter().enumerate() {
            let (a, b) = (starts[r] as u32, starts[r + 1] as u32);
            let seconds = index.rows[a as usize..b as usize]
                .iter()
                .map(|row| seconds(row.t))
                .collect();
            index.fine.cells.insert(
                cells_in_order[c as usize],
                CellList::new((a..b).collect(), seconds),
            );
        }
        index.compacted = n;
        index
    }
}

impl ContactIndex {
    /// Builds an index from many locations at once, each at most once (a store's content).
    /// Equal to inserting the points one by one, and several times faster.
    pub fn bulk(
        points: impl IntoIterator<Item = Point>,
        capacity: usize,
        workers: DynWorkers,
    ) -> Self {
        let mut builder = BulkBuilder::with_capacity(capacity, workers);
        for p in points {
            builder.push(&p);
        }
        builder.finish()
    }
}

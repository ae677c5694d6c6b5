//! The in-memory spatio-temporal index the embedded mode answers contact queries from.
//!
//! Locations are kept as rows (time, latitude, longitude, id, person: 40 bytes each, one cache
//! line or less); a location's position in the rows is its *slot*. Two structures point at
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

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock, RwLock};

// The maps' hasher: keys are small integers (cells, ids), not attacker-chosen strings, and
// the default SipHash costs more than the look-ups it serves.
use rustc_hash::FxBuildHasher;

use crate::contact::{summarise_by_person, ConnectionQuery, Contact, ContactQuery, Point};
use crate::geo::{chord_for_arc_m, to_cartesian, within_fast, DISTANCE_SLACK_M, EARTH_RADIUS_M};
use crate::time::{Micros, Window};

/// Cell edge of the grid always kept, in metres of chord.
const FINE_EDGE_M: f64 = 5.5;
/// Own pings from which a query is split over cores.
const PARALLEL_FROM: usize = 256;
static CORES: OnceLock<usize> = OnceLock::new();

fn cores() -> usize {
    *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8)
    })
}

/// The result of a scoped worker. A worker's panic goes on in the caller: an index or an
/// answer without that worker's part would look complete.
fn joined<T>(worker: std::thread::ScopedJoinHandle<'_, T>) -> T {
    worker
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Pieces per core that [`split_over_cores`] cuts its items into.
const PIECES_PER_CORE: usize = 4;

/// Runs `work` over pieces of `items` on every core and concatenates the results, in no
/// particular order, on rayon's pool of one thread per core (a worker's panic goes on in the
/// caller). A thread started per query ran late: Linux queues a new thread on its parent's
/// core and moves it to an idle one only at a later balancing, so on two cores the second half
/// of a 3-day query began about 1.2 ms after the first (the median, on a virtual machine) and
/// the halves mostly ran one after the other. Waking a sleeping thread puts it on an idle core
/// at once. Pieces smaller than halves let whichever thread runs take the rest.
fn split_over_cores<T: Sync>(items: &[T], work: impl Fn(&[T]) -> Vec<u32> + Sync) -> Vec<u32> {
    use rayon::prelude::*;
    let cores = cores();
    if cores < 2 {
        return work(items);
    }
    let piece = items.len().div_ceil(cores * PIECES_PER_CORE).max(1);
    items
        .par_chunks(piece)
        .map(&work)
        .reduce(Vec::new, |mut a, b| {
            a.extend(b);
            a
        })
}

/// Slots per block in [`by_slot_block`]: 4,096 rows are 160 KiB, within a core's L2 cache.
const SLOT_BLOCK_BITS: u32 = 12;

/// Items grouped by `bucket_of` (a stable counting sort): the grouped items, and where each
/// bucket starts (bucket `b` is `starts[b]..starts[b + 1]`). Two passes, front to back.
fn group_by_bucket<T: Copy + Default>(
    items: impl Iterator<Item = T> + Clone,
    buckets: usize,
    bucket_of: impl Fn(&T) -> usize,
) -> (Vec<T>, Vec<usize>) {
    let mut starts = vec![0usize; buckets + 1];
    let mut n = 0;
    for item in items.clone() {
        starts[bucket_of(&item) + 1] += 1;
        n += 1;
    }
    for b in 0..buckets {
        starts[b + 1] += starts[b];
    }
    let mut next = starts.clone();
    let mut out = vec![T::default(); n];
    for item in items {
        let at = &mut next[bucket_of(&item)];
        out[*at] = item;
        *at += 1;
    }
    (out, starts)
}

/// Sorts items that `bucket_of` orders coarsely (a bucket's items all come before the next
/// bucket's): grouped by bucket in one counting sort, then each bucket sorted on its own, in
/// cache. The same order as a full sort, at a fraction of its cost.
fn sort_in_buckets<T: Copy + Default + Ord>(
    items: &mut Vec<T>,
    buckets: usize,
    bucket_of: impl Fn(&T) -> usize,
) {
    let (mut out, starts) = group_by_bucket(items.iter().copied(), buckets, bucket_of);
    for w in starts.windows(2) {
        out[w[0]..w[1]].sort_unstable();
    }
    *items = out;
}

/// Tagged slots in slot order, by block of neighbouring slots first.
fn by_slot_block(mut tagged: Vec<(u32, u32)>, rows: usize) -> Vec<(u32, u32)> {
    let blocks = (rows >> SLOT_BLOCK_BITS) + 1;
    sort_in_buckets(&mut tagged, blocks, |t| (t.0 >> SLOT_BLOCK_BITS) as usize);
    tagged
}

/// Sorts (time, id, slot) keys, by buckets of equal time span first. Answers of compacted rows
/// come cell by cell, in no time order, and a plain sort of a hundred thousand keys costs more
/// than the query.
fn sort_by_time(keys: &mut Vec<(Micros, i64, u32)>) {
    const PER_BUCKET: usize = 32;
    if keys.len() < 4 * PER_BUCKET {
        keys.sort_unstable();
        return;
    }
    let (lo, hi) = keys.iter().fold((Micros::MAX, Micros::MIN), |(lo, hi), k| {
        (lo.min(k.0), hi.max(k.0))
    });
    let buckets = keys.len() / PER_BUCKET;
    let width = hi.abs_diff(lo) / buckets as u64 + 1;
    sort_in_buckets(keys, buckets, |k| (k.0.abs_diff(lo) / width) as usize);
}

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

/// Cell edges of the grids built on demand for larger distances.
const COARSE_EDGES_M: [f64; 2] = [64.0, 512.0];

type Cell = [i32; 3];

fn cell_at(xyz: [f64; 3], edge: f64) -> Cell {
    xyz.map(|c| (c / edge).floor() as i32)
}

fn cell_of(lat: f64, lon: f64, edge: f64) -> Cell {
    cell_at(to_cartesian(lat, lon), edge)
}

/// The pings of one cell in (time, id) order, with each one's time in whole seconds beside
/// it: searches by time read a compact array instead of jumping through the rows, and the
/// exact bound is settled within one second's entries. Every [`SPARSE`]th second is kept again
/// in a small array that stays in cache, so a search costs a cache miss or two, not one per
/// step (at tens of millions of rows, a step is a miss).
#[derive(Default)]
struct CellList {
    slots: Vec<u32>,
    seconds: Vec<u32>,
    /// `seconds[b * SPARSE]` for every block `b`.
    sparse: Vec<u32>,
}

const SPARSE: usize = 32;

/// Seconds since the Unix epoch as `u32` (until 2106; later times share the last value,
/// which costs speed, never correctness).
fn seconds(t: Micros) -> u32 {
    (t.div_euclid(1_000_000)).clamp(0, u32::MAX as i64) as u32
}

/// Searches at a time in [`lockstep_partition_points`].
const LOCKSTEP: usize = 16;

/// `slice.partition_point(|&x| x < key)` of each `(slice, key)`, into `out`, in order. The
/// searches of a group take their steps in turn, without branching on the data, so the
/// processor has the loads of all of them in flight at once.
fn lockstep_partition_points(asks: &[(&[u32], u32)], out: &mut Vec<usize>) {
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
    fn new(slots: Vec<u32>, seconds: Vec<u32>) -> Self {
        let sparse = seconds.iter().step_by(SPARSE).copied().collect();
        CellList {
            slots,
            seconds,
            sparse,
        }
    }

    /// The same list with its slots renumbered (same times, same order).
    fn with_slots(&self, slots: Vec<u32>) -> Self {
        CellList {
            slots,
            seconds: self.seconds.clone(),
            sparse: self.sparse.clone(),
        }
    }

    fn insert(&mut self, slot: u32, key: (Micros, i64), rows: &[Row]) {
        let k = |s: u32| (rows[s as usize].t, rows[s as usize].id);
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
    fn first_seconds_at(asks: &[(&CellList, u32)], out: &mut Vec<usize>) {
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
    fn first_second_at(&self, s: u32) -> usize {
        let range = self.entries_before(self.sparse.partition_point(|&x| x < s));
        range.start + self.seconds[range.clone()].partition_point(|&x| x < s)
    }

    /// The entries holding the answer when `sparse[block]` is the first sparse second at or
    /// after the one sought: those from the previous sparse second up to this one.
    fn entries_before(&self, block: usize) -> std::ops::Range<usize> {
        block.saturating_sub(1) * SPARSE..(block * SPARSE).min(self.seconds.len())
    }

    /// From index `i`, past entries of second `seconds(t)` that are before `t`: only entries of
    /// the same second need their exact time read.
    fn settle(&self, mut i: usize, t: Micros, rows: &[Row]) -> usize {
        let s = seconds(t);
        while i < self.slots.len() && self.seconds[i] == s && rows[self.slots[i] as usize].t < t {
            i += 1;
        }
        i
    }

    /// Index of the first entry with time at or after `t`.
    fn first_at(&self, t: Micros, rows: &[Row]) -> usize {
        self.settle(self.first_second_at(seconds(t)), t, rows)
    }

    /// The slots with time in `[from, to)`.
    fn range(&self, from: Micros, to: Micros, rows: &[Row]) -> &[u32] {
        let lo = self.first_at(from, rows);
        let hi = self.first_at_after(lo, to, rows);
        &self.slots[lo..hi]
    }

    /// [`Self::first_at`] for an answer known to be at or after `lo`. Ranges asked are often
    /// short: the entries just after `lo` (in cache lines just read) are tried first.
    fn first_at_after(&self, lo: usize, t: Micros, rows: &[Row]) -> usize {
        let s = seconds(t);
        let near = (lo + 16).min(self.seconds.len());
        let i = if near == lo || self.seconds[near - 1] >= s {
            lo + self.seconds[lo..near].partition_point(|&x| x < s)
        } else {
            self.first_second_at(s).max(near)
        };
        self.settle(i, t, rows)
    }

    fn shrink_to_fit(&mut self) {
        self.slots.shrink_to_fit();
        self.seconds.shrink_to_fit();
        self.sparse.shrink_to_fit();
    }

    fn capacity_bytes(&self) -> usize {
        (self.slots.capacity() + self.seconds.capacity() + self.sparse.capacity()) * 4
    }
}

/// A cell that a connection query looks into: its list, the runs of own pings near it, and
/// where the first of them wants the cell's entries from.
struct Visit<'a> {
    list: &'a CellList,
    runs: &'a [(u32, u32)],
    first_from: Micros,
}

/// Candidates gathered before they are checked: [`Gathered::check`] once this many are held.
const CHECK_BATCH: usize = 256;

/// Home cells whose neighbours' numbers a track's probe keeps (see `probe_runs`).
const RECENT_HOMES: usize = 4;
/// A neighbour not looked up yet for its home cell.
const UNSEEN: u32 = u32::MAX - 1;
/// A cell that holds no pings.
const NO_PINGS: u32 = u32::MAX;

/// A batch of a connection query's candidates, each with the stretch of the asked person's
/// track it is to be near. Gathering first and checking after keeps the rows' reads apart from
/// the checks' branches: the reads do not depend on one another, so their cache misses
/// overlap, where checking each row as it was read left the next read waiting behind the last
/// check.
#[derive(Default)]
struct Gathered {
    /// Each candidate's slot, row, and its stretch of the track, `own[a..b]`.
    candidates: Vec<(u32, Row, u32, u32)>,
}

impl Gathered {
    /// Takes `slots` as candidates near the stretch `own[a..b]`.
    fn gather(&mut self, (a, b): (u32, u32), slots: &[u32], rows: &[Row]) {
        self.candidates
            .extend(slots.iter().map(|&s| (s, rows[s as usize], a, b)));
    }

    /// Appends to `out` the candidates of another person near one of their stretch's pings,
    /// and empties the batch.
    fn check(
        &mut self,
        own: &[Own],
        out: &mut Vec<u32>,
        me: Option<u32>,
        gap: u64,
        band: f64,
        distance_m: f64,
    ) {
        for (s, row, a, b) in &self.candidates {
            let near = &own[*a as usize..*b as usize];
            if Some(row.person) != me && ContactIndex::near_any(row, near, gap, band, distance_m) {
                out.push(*s);
            }
        }
        self.candidates.clear();
    }
}

#[derive(Default)]
struct Level {
    edge: f64,
    cells: HashMap<Cell, CellList, FxBuildHasher>,
}

/// One location as the index keeps it.
#[derive(Debug, Clone, Copy)]
struct Row {
    t: Micros,
    lat: f64,
    lon: f64,
    id: i64,
    /// Dense person number (see [`ContactIndex::person_ids`]).
    person: u32,
}

impl Row {
    /// A placeholder, for arrays filled afterwards.
    const EMPTY: Row = Row {
        t: 0,
        lat: 0.0,
        lon: 0.0,
        id: 0,
        person: 0,
    };
}

/// The straight-line (chord) distance in the 3-D grid within which every point closer than
/// `distance_m` on the sphere lies, with a centimetre to spare for rounding.
fn reach_m(distance_m: f64) -> f64 {
    chord_for_arc_m(distance_m + DISTANCE_SLACK_M) + 0.01
}

/// The least distance from some points of one cell to each face of that cell, per axis: low
/// faces, then high ones.
struct Faces {
    low: [f64; 3],
    high: [f64; 3],
}

impl Faces {
    fn new() -> Self {
        Faces {
            low: [f64::MAX; 3],
            high: [f64::MAX; 3],
        }
    }

    fn take(&mut self, xyz: [f64; 3], cell: Cell, edge: f64) {
        for a in 0..3 {
            let base = cell[a] as f64 * edge;
            self.low[a] = self.low[a].min((xyz[a] - base).max(0.0));
            self.high[a] = self.high[a].min((base + edge - xyz[a]).max(0.0));
        }
    }

    /// A lower bound of the distance from the points taken to cell `n`'s box (`n` near `cell`).
    fn reach(&self, cell: Cell, n: Cell, edge: f64) -> f64 {
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

/// One of the asked person's pings, copied out of the rows for comparing with candidates.
#[derive(Debug, Clone, Copy)]
struct Own {
    lat: f64,
    lon: f64,
    t: Micros,
    /// Cosine of the latitude.
    cos: f64,
}

impl Own {
    fn of(r: &Row) -> Self {
        Own {
            lat: r.lat,
            lon: r.lon,
            t: r.t,
            cos: r.lat.to_radians().cos(),
        }
    }
}

/// The index. Not synchronised: the owner wraps it in a lock.
#[derive(Default)]
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
    /// Rows `..compacted` are laid out cell by cell (see [`ContactIndex::compact`]); later ones
    /// in arrival order.
    compacted: usize,
    /// Layout generation: [`ContactIndex::compact`] renumbers slots and starts a new one.
    generation: u64,
    /// Held by every [`SlotPin`] of the current generation.
    pins: Arc<()>,
    /// How slots moved in each compaction some [`SlotPin`] still needs, oldest first.
    moves: VecDeque<Move>,
}

/// The renumbering of one compaction: slot `s` of generation `from` is `to_next[s]` in the
/// next one.
struct Move {
    from: u64,
    pins: Arc<()>,
    to_next: Vec<u32>,
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
const COMPACT_AFTER: usize = 1 << 18;

/// Grows the rows by an eighth rather than doubling: at tens of millions of rows, doubling
/// would leave up to half the memory unused.
fn reserve_gently<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        v.reserve_exact(v.len() / 8 + 1024);
    }
}

/// Degrees of latitude within which every point closer than `distance_m` lies: the
/// great-circle distance is never less than the latitude difference times the radius.
fn latitude_band(distance_m: f64) -> f64 {
    ((distance_m + DISTANCE_SLACK_M) / EARTH_RADIUS_M).to_degrees() * (1.0 + 1e-9) + 1e-12
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
fn cuts_at_cells(starts: &[usize], parts: usize) -> Vec<usize> {
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
        if !part.is_sorted_by_key(|r| (r.t, r.id)) {
            let mut pairs: Vec<(Row, u32)> = part
                .iter()
                .copied()
                .zip(order[from..to].iter().copied())
                .collect();
            pairs.sort_unstable_by_key(|(r, _)| (r.t, r.id));
            for (i, (r, s)) in pairs.into_iter().enumerate() {
                rows[from + i] = r;
                order[from + i] = s;
            }
        }
    }
}

/// Puts in (time, id) order each track not known to be in it, the persons shared between
/// cores. Keys are read once into a sorted copy: a track that came in a few interleaved runs
/// (batches acknowledged out of order) is merged from its runs by the stable sort.
fn sort_tracks(tracks: &mut [Vec<u32>], in_order: &[bool], rows: &[Row]) {
    let sort = |tracks: &mut [Vec<u32>], in_order: &[bool]| {
        let mut keyed: Vec<(Micros, i64, u32)> = Vec::new();
        for (track, &sorted) in tracks.iter_mut().zip(in_order) {
            if sorted {
                continue;
            }
            keyed.clear();
            keyed.extend(track.iter().map(|&s| {
                let r = &rows[s as usize];
                (r.t, r.id, s)
            }));
            keyed.sort_by_key(|&(t, id, _)| (t, id));
            for (slot, &(_, _, s)) in track.iter_mut().zip(&keyed) {
                *slot = s;
            }
        }
    };
    let part = tracks.len().div_ceil(cores()).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = tracks
            .chunks_mut(part)
            .zip(in_order.chunks(part))
            .map(|(t, o)| scope.spawn(move || sort(t, o)))
            .collect();
        workers.into_iter().for_each(joined);
    });
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
    /// The array [`Self::finish`] lays rows out in, allocated and written once on its own
    /// thread while rows are pushed: at tens of millions of rows, the kernel's first touch of
    /// its pages takes as long as the layout itself.
    layout: Option<std::thread::JoinHandle<Vec<Row>>>,
}

impl BulkBuilder {
    pub fn with_capacity(capacity: usize) -> Self {
        BulkBuilder {
            index: ContactIndex::with_capacity(capacity),
            cell_numbers: HashMap::default(),
            cells_in_order: Vec::new(),
            numbers: Vec::with_capacity(capacity),
            last_keys: Vec::new(),
            in_order: Vec::new(),
            layout: std::thread::Builder::new()
                .name("index-layout".into())
                .spawn(move || vec![Row::EMPTY; capacity])
                .ok(),
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
        let number = match index.person_numbers.get(&p.person_id) {
            Some(&n) => n,
            None => {
                let n = index.person_ids.len() as u32;
                index.person_ids.push(p.person_id);
                index.person_numbers.insert(p.person_id, n);
                self.last_keys.push((Micros::MIN, i64::MIN));
                self.in_order.push(true);
                n
            }
        };
        let key = (p.t, p.id);
        let last = &mut self.last_keys[number as usize];
        if key < *last {
            self.in_order[number as usize] = false;
        }
        *last = key;
        reserve_gently(&mut index.rows);
        index.rows.push(Row {
            t: p.t,
            lat: p.lat,
            lon: p.lon,
            id: p.id,
            person: number,
        });
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
        // shared between cores, each taking whole cells.
        let mut rows = layout.and_then(|l| l.join().ok()).unwrap_or_default();
        rows.resize(n, Row::EMPTY);
        let old_rows = &index.rows;
        let cuts = cuts_at_cells(&starts, cores());
        std::thread::scope(|scope| {
            let (mut rows_left, mut order_left) = (&mut rows[..], &mut order[..]);
            let mut workers = Vec::new();
            for w in cuts.windows(2) {
                let (from, to) = (starts[w[0]], starts[w[1]]);
                let (part_rows, rest) = std::mem::take(&mut rows_left).split_at_mut(to - from);
                rows_left = rest;
                let (part_order, rest) = std::mem::take(&mut order_left).split_at_mut(to - from);
                order_left = rest;
                let cell_starts = &starts[w[0]..=w[1]];
                workers.push(
                    scope.spawn(move || gather_cells(old_rows, part_rows, part_order, cell_starts)),
                );
            }
            workers.into_iter().for_each(joined);
        });
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
        sort_tracks(&mut tracks, &in_order, &rows);
        index.rows = rows;
        index.tracks = tracks;
        index.track_ends = index.track_end_keys();
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
    pub fn new() -> Self {
        let mut index = ContactIndex::default();
        index.fine.edge = FINE_EDGE_M;
        index
    }

    /// An empty index with room for `n` locations.
    pub fn with_capacity(n: usize) -> Self {
        let mut index = Self::new();
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
            id: r.id,
            person_id: self.person_ids[r.person as usize],
            lat: r.lat,
            lon: r.lon,
            t: r.t,
        }
    }

    fn key(&self, slot: u32) -> (Micros, i64) {
        let r = &self.rows[slot as usize];
        (r.t, r.id)
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
                self.track_ends.push((Micros::MIN, i64::MIN));
                n
            }
        };
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
        self.rows.push(Row {
            t: p.t,
            lat: p.lat,
            lon: p.lon,
            id: p.id,
            person: number,
        });
        let rows = &self.rows;
        let (track, end) = (
            &mut self.tracks[number as usize],
            &mut self.track_ends[number as usize],
        );
        if key > *end {
            track.push(slot);
            *end = key;
        } else {
            let at = track.partition_point(|&s| (rows[s as usize].t, rows[s as usize].id) < key);
            track.insert(at, slot);
        }
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
        true
    }

    /// The key of each track's last ping (see `track_ends`).
    fn track_end_keys(&self) -> Vec<(Micros, i64)> {
        self.tracks
            .iter()
            .map(|t| t.last().map_or((Micros::MIN, i64::MIN), |&s| self.key(s)))
            .collect()
    }

    /// Whether enough rows arrived in arrival order since the last compaction to lay them out
    /// again (see [`COMPACT_AFTER`]).
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
            self.insert(p);
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

    /// The location in `slot` of the layout `pin` was taken on.
    pub fn point_pinned(&self, pin: &SlotPin, slot: u32) -> Point {
        let mut slot = slot;
        for m in self.moves.iter().filter(|m| m.from >= pin.generation) {
            slot = m.to_next[slot as usize];
        }
        self.point(slot)
    }

    /// A grid of every location at a cell edge, lists in (time, id) order.
    fn build_level(&self, edge: f64) -> Level {
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

    /// Builds an index from many locations at once, each at most once (a store's content).
    /// Equal to inserting the points one by one, and several times faster.
    pub fn bulk(points: impl IntoIterator<Item = Point>, capacity: usize) -> Self {
        let mut builder = BulkBuilder::with_capacity(capacity);
        for p in points {
            builder.push(&p);
        }
        builder.finish()
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

    /// The grid to search for a distance, and how many cells around a ping to look at.
    fn level_for(&self, distance_m: f64) -> (&Level, i32) {
        let reach = reach_m(distance_m);
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
    fn around(c: Cell, k: i32) -> impl Iterator<Item = Cell> {
        (-k..=k).flat_map(move |dx| {
            (-k..=k).flat_map(move |dy| (-k..=k).map(move |dz| [c[0] + dx, c[1] + dy, c[2] + dz]))
        })
    }

    /// Slots of other persons' pings near the asked person's, by time then id: the
    /// connection query.
    pub fn connections(&self, q: &ConnectionQuery) -> Vec<u32> {
        self.connections_with_persons(q).0
    }

    /// [`Self::connections`], and the ids of the persons its rows belong to, in id order: taken
    /// while the rows are read for their keys, so a caller need not read them a second time.
    pub fn connections_with_persons(&self, q: &ConnectionQuery) -> (Vec<u32>, Vec<i64>) {
        self.in_key_order(self.matching_slots(q))
    }

    /// The slots of the connection answer, in no order, some perhaps more than once.
    fn matching_slots(&self, q: &ConnectionQuery) -> Vec<u32> {
        let own = self.track(q.person_id, q.window);
        if own.is_empty() {
            return Vec::new();
        }
        let me = self.person_numbers.get(&q.person_id).copied();
        let (level, k) = self.level_for(q.distance_m);
        let span = q.window.end.saturating_sub(q.window.start);
        match q.max_time_gap_us {
            // Narrow in time: look around each run of own pings, within its time span only.
            Some(gap) if gap.saturating_mul(8) < span => {
                self.probe_parallel(own, me, q, level, k, gap)
            }
            // Wide or no time condition: visit each candidate cell once.
            _ => self.sweep_cells(own, me, q, level, k),
        }
    }

    /// Slots, each once, in (time, id) order, and the ids of the rows' persons, in id order.
    /// Slots are sorted first, without reading rows, so the rows are then read front to back.
    fn in_key_order(&self, mut slots: Vec<u32>) -> (Vec<u32>, Vec<i64>) {
        slots.sort_unstable();
        slots.dedup();
        let mut seen = vec![false; self.person_ids.len()];
        let mut keyed: Vec<(Micros, i64, u32)> = slots
            .iter()
            .map(|&s| {
                let r = &self.rows[s as usize];
                seen[r.person as usize] = true;
                (r.t, r.id, s)
            })
            .collect();
        if !keyed.is_sorted() {
            sort_by_time(&mut keyed);
        }
        slots.clear();
        slots.extend(keyed.iter().map(|k| k.2));
        let mut persons: Vec<i64> = seen
            .iter()
            .zip(&self.person_ids)
            .filter(|(seen, _)| **seen)
            .map(|(_, &id)| id)
            .collect();
        persons.sort_unstable();
        (slots, persons)
    }

    /// Whether row `r` is within reach of one of `near` (the asked person's pings of a run, in
    /// time order), by time and distance.
    fn near_any(r: &Row, near: &[Own], gap: u64, band: f64, distance_m: f64) -> bool {
        let from = near.partition_point(|o| o.t < r.t.saturating_sub(gap as i64));
        near[from..]
            .iter()
            .take_while(|o| o.t <= r.t.saturating_add(gap as i64))
            .any(|o| {
                (o.lat - r.lat).abs() <= band
                    && within_fast((o.lat, o.lon, o.cos), r.lat, r.lon, distance_m)
            })
    }

    /// [`Self::probe_runs`] over parts of the track on several cores: a long track (days of
    /// pings) is answered in a fraction of the time one core takes. Short tracks stay on one
    /// core, where starting threads would cost more than it saves.
    fn probe_parallel(
        &self,
        own: &[u32],
        me: Option<u32>,
        q: &ConnectionQuery,
        level: &Level,
        k: i32,
        gap: i64,
    ) -> Vec<u32> {
        if own.len() < PARALLEL_FROM {
            return self.probe_runs(own, me, q, level, k, gap);
        }
        split_over_cores(own, |part| self.probe_runs(part, me, q, level, k, gap))
    }

    fn probe_runs(
        &self,
        own: &[u32],
        me: Option<u32>,
        q: &ConnectionQuery,
        level: &Level,
        k: i32,
        gap: i64,
    ) -> Vec<u32> {
        let band = latitude_band(q.distance_m);
        let g = gap.unsigned_abs();
        // The asked person's pings copied out once: each is compared with many candidates.
        let own: Vec<Own> = own
            .iter()
            .map(|&o| Own::of(&self.rows[o as usize]))
            .collect();
        // Runs of own pings in one cell (a person standing at a booth or sitting in a talk),
        // and for each cell around a run, the runs it is near, in time order.
        // Only the cells around a run that some ping of it can reach: of the 27, those whose
        // box is within reach of the run's pings (by the run's least distance to each face).
        // Each cell around a run is numbered when first seen (or marked as holding no pings),
        // and (cell number, run) pairs are grouped by cell once all are known: one allocation
        // for all, where a list per cell cost an allocation and its growth per cell (a tenth
        // of a 3-day query's time). The map is sized for a few new cells per run.
        let mut number: HashMap<Cell, u32, FxBuildHasher> =
            HashMap::with_capacity_and_hasher(own.len() * 2, FxBuildHasher);
        let mut lists: Vec<&CellList> = Vec::new();
        let mut near: Vec<(u32, (u32, u32))> = Vec::new();
        let xyz: Vec<[f64; 3]> = own.iter().map(|o| to_cartesian(o.lat, o.lon)).collect();
        let (edge, reach) = (level.edge, reach_m(q.distance_m));
        // The numbers of the cells around the last few home cells, by position around the
        // home: a person stays among a few cells (a booth, a seat, GPS noise across a cell's
        // edge), so run after run asks for the same neighbours, and an array look-up replaces
        // the map's hashing and probing.
        let around_len = (2 * k as usize + 1).pow(3);
        let mut recent: Vec<(Cell, Vec<u32>)> = Vec::with_capacity(RECENT_HOMES);
        let mut replace_next = 0;
        let mut i = 0;
        while i < own.len() {
            let cell = cell_at(xyz[i], edge);
            let mut faces = Faces::new();
            faces.take(xyz[i], cell, edge);
            let mut j = i + 1;
            while j < own.len() && cell_at(xyz[j], edge) == cell {
                faces.take(xyz[j], cell, edge);
                j += 1;
            }
            let home = match recent.iter().position(|(h, _)| *h == cell) {
                Some(h) => h,
                None if recent.len() < RECENT_HOMES => {
                    recent.push((cell, vec![UNSEEN; around_len]));
                    recent.len() - 1
                }
                None => {
                    let h = replace_next;
                    replace_next = (replace_next + 1) % RECENT_HOMES;
                    recent[h].0 = cell;
                    recent[h].1.fill(UNSEEN);
                    h
                }
            };
            let numbers = &mut recent[home].1;
            for (at, c) in Self::around(cell, k).enumerate() {
                if faces.reach(cell, c, edge) > reach {
                    continue;
                }
                if numbers[at] == UNSEEN {
                    numbers[at] = *number
                        .entry(c)
                        .or_insert_with(|| match level.cells.get(&c) {
                            Some(list) => {
                                lists.push(list);
                                lists.len() as u32 - 1
                            }
                            None => NO_PINGS,
                        });
                }
                if numbers[at] != NO_PINGS {
                    near.push((numbers[at], (i as u32, j as u32)));
                }
            }
            i = j;
        }
        // Grouping keeps each cell's runs in track order.
        let (near, starts) = group_by_bucket(near.into_iter(), lists.len(), |&(n, _)| n as usize);
        let runs: Vec<(u32, u32)> = near.iter().map(|&(_, run)| run).collect();
        // Each cell once: its runs are joined into clusters while one starts within two gaps of
        // the last's end, and each cluster costs one range of the cell. Ranges of two clusters
        // do not overlap, so no candidate is looked at twice.
        // The cells' lists, and where each one's first cluster starts, looked up for all cells
        // together (see `first_seconds_at`).
        let visits: Vec<Visit<'_>> = lists
            .iter()
            .zip(starts.windows(2))
            .map(|(&list, w)| {
                let runs = &runs[w[0]..w[1]];
                Visit {
                    list,
                    runs,
                    first_from: own[runs[0].0 as usize]
                        .t
                        .saturating_sub(gap)
                        .max(q.window.start),
                }
            })
            .collect();
        let mut firsts = Vec::with_capacity(visits.len());
        let asks: Vec<(&CellList, u32)> = visits
            .iter()
            .map(|v| (v.list, seconds(v.first_from)))
            .collect();
        CellList::first_seconds_at(&asks, &mut firsts);
        let mut out = Vec::new();
        let mut batch = Gathered::default();
        for (v, &first_second) in visits.iter().zip(&firsts) {
            let (list, runs) = (v.list, v.runs);
            // The first cluster starts at `first_from`, found above; the cursor is a lower bound
            // for every later cluster's start.
            let mut cursor = list.settle(first_second, v.first_from, &self.rows);
            let mut r = 0;
            while r < runs.len() {
                // A cluster is the stretch of the track from its first run's start to its last
                // run's end: the pings between (in other cells, less than two gaps of time) are
                // the asked person's too, so a candidate near one of them is a match all the
                // same, and `near_any` looks only at those within the gap in time. The stretch
                // is named by its bounds, where copying each cluster's pings cost a copy per
                // cell and cluster.
                let (start, mut end) = runs[r];
                r += 1;
                while let Some(&(a, b)) = runs.get(r) {
                    let last = own[end as usize - 1].t;
                    if own[a as usize].t.saturating_sub(last) > gap.saturating_mul(2) {
                        break;
                    }
                    end = b;
                    r += 1;
                }
                let from = own[start as usize]
                    .t
                    .saturating_sub(gap)
                    .max(q.window.start);
                let to = own[end as usize - 1]
                    .t
                    .saturating_add(gap)
                    .saturating_add(1)
                    .min(q.window.end);
                // Clusters come in time order: each range starts after the last one's start.
                let lo = list.first_at_after(cursor, from, &self.rows);
                cursor = lo;
                let hi = list.first_at_after(lo, to, &self.rows);
                batch.gather((start, end), &list.slots[lo..hi], &self.rows);
                if batch.candidates.len() >= CHECK_BATCH {
                    batch.check(&own, &mut out, me, g, band, q.distance_m);
                }
            }
        }
        batch.check(&own, &mut out, me, g, band, q.distance_m);
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
        // The asked person's pings by cell: each is copied into the groups of up to 27 cells,
        // its cosine computed once.
        let mut own_by_cell: HashMap<Cell, Vec<Own>, FxBuildHasher> = HashMap::default();
        for &o in own {
            let r = &self.rows[o as usize];
            own_by_cell
                .entry(cell_of(r.lat, r.lon, level.edge))
                .or_default()
                .push(Own::of(r));
        }
        let (home_cells, homes): (Vec<Cell>, Vec<Vec<Own>>) = own_by_cell.into_iter().unzip();
        // Each candidate cell with the home cells around it, grouped by candidate: the homes
        // are known while the candidates are listed, where asking each candidate's 27
        // neighbours whether they are homes cost a quarter of a day's query without a gap.
        let mut candidates: Vec<(Cell, u32)> = home_cells
            .iter()
            .enumerate()
            .flat_map(|(h, home)| Self::around(*home, k).map(move |c| (c, h as u32)))
            .collect();
        candidates.sort_unstable();
        // For each candidate cell, the asked person's pings that can be near it, copied out
        // and ordered by latitude (`groups[bounds[g]..bounds[g + 1]]`), and the cell's entries
        // tagged with their group. The entries are then read in slot order, which reads the rows
        // front to back instead of jumping between cells (and the tail of rows appended since
        // the last compaction follows arrival, not cells).
        let mut groups: Vec<Own> = Vec::new();
        let mut bounds: Vec<usize> = vec![0];
        let mut tagged: Vec<(u32, u32)> = Vec::new();
        for around in candidates.chunk_by(|a, b| a.0 == b.0) {
            let Some(list) = level.cells.get(&around[0].0) else {
                continue;
            };
            let entries = list.range(q.window.start, q.window.end, &self.rows);
            if entries.is_empty() {
                continue;
            }
            let group = (bounds.len() - 1) as u32;
            let from = groups.len();
            for &(_, h) in around {
                groups.extend_from_slice(&homes[h as usize]);
            }
            groups[from..].sort_unstable_by(|a, b| a.lat.total_cmp(&b.lat));
            bounds.push(groups.len());
            tagged.extend(entries.iter().map(|&s| (s, group)));
        }
        let tagged = by_slot_block(tagged, self.rows.len());
        let check = |part: &[(u32, u32)]| {
            let mut out = Vec::new();
            for &(s, g) in part {
                let r = &self.rows[s as usize];
                if Some(r.person) == me {
                    continue;
                }
                let near = &groups[bounds[g as usize]..bounds[g as usize + 1]];
                let from = near.partition_point(|o| o.lat < r.lat - band);
                let hit = near[from..]
                    .iter()
                    .take_while(|o| o.lat <= r.lat + band)
                    .any(|o| {
                        gap.is_none_or(|g| o.t.abs_diff(r.t) <= g)
                            && within_fast((o.lat, o.lon, o.cos), r.lat, r.lon, q.distance_m)
                    });
                if hit {
                    out.push(s);
                }
            }
            out
        };
        if tagged.len() < PARALLEL_FROM * 64 {
            return check(&tagged);
        }
        split_over_cores(&tagged, check)
    }

    /// The contacts query: the connection answer with the same gap, summarised per person.
    pub fn contacts(&self, q: &ContactQuery) -> Vec<Contact> {
        let slots = self.matching_slots(&ConnectionQuery {
            person_id: q.person_id,
            window: q.window,
            distance_m: q.distance_m,
            max_time_gap_us: Some(q.max_time_gap_us),
        });
        // Grouped by person in one counting pass, then each person's few points sorted by
        // time in cache: the order summarising needs, where sorting the slots (to drop the
        // repeated ones) and then the whole answer by person took a tenth of the query.
        let by_person: Vec<(u32, u32)> = slots
            .iter()
            .map(|&s| (self.rows[s as usize].person, s))
            .collect();
        drop(slots);
        let (grouped, starts) = group_by_bucket(
            by_person.iter().copied(),
            self.person_ids.len(),
            |&(p, _)| p as usize,
        );
        drop(by_person);
        let mut points: Vec<Point> = grouped.iter().map(|&(_, s)| self.point(s)).collect();
        for w in starts.windows(2) {
            points[w[0]..w[1]].sort_unstable_by_key(|p| (p.t, p.id));
        }
        // The halves of a track split over cores may both find a row near the split.
        points.dedup_by_key(|p| (p.person_id, p.t, p.id));
        summarise_by_person(points.chunk_by(|a, b| a.person_id == b.person_id), q)
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

    /// The index's answer as points.
    fn answer(index: &ContactIndex, q: &ConnectionQuery) -> Vec<Point> {
        index
            .connections(q)
            .iter()
            .map(|&s| index.point(s))
            .collect()
    }

    fn build(points: &[Point]) -> ContactIndex {
        let mut index = ContactIndex::new();
        for p in points {
            index.insert(p);
        }
        index
    }

    /// A track long enough to be split over cores: both halves look into the same cell around
    /// the split, so the other person's pings there are found twice, and must count once.
    #[test]
    fn a_track_split_over_cores_counts_each_ping_once() {
        let pings = 2 * PARALLEL_FROM as i64 + 100;
        let pts: Vec<Point> = (0..pings)
            .flat_map(|i| {
                [(1, 0.0), (2, deg(1.0))].map(|(person, north)| Point {
                    id: 2 * i + person,
                    person_id: person,
                    lat: 37.55 + north,
                    lon: -122.29,
                    t: (10 * i + 5 * (person - 1)) * S,
                })
            })
            .collect();
        let index = build(&pts);
        let window = Window::all();
        let cq = ContactQuery {
            person_id: 1,
            window,
            distance_m: 5.0,
            max_time_gap_us: 60 * S,
            min_duration_us: 0,
        };
        let contacts = index.contacts(&cq);
        assert_eq!(contacts, contacts_oracle(&pts, &cq));
        assert_eq!(contacts[0].encounters[0].pings, pings as u32);
        let q = ConnectionQuery {
            person_id: 1,
            window,
            distance_m: 5.0,
            max_time_gap_us: Some(60 * S),
        };
        let got: Vec<Point> = index
            .connections(&q)
            .iter()
            .map(|&s| index.point(s))
            .collect();
        assert_eq!(got, connections_oracle(&pts, &q));
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
            let (slots, persons) = index.connections_with_persons(&q);
            let got: Vec<Point> = slots.iter().map(|&s| index.point(s)).collect();
            let mut want_persons: Vec<i64> = got.iter().map(|p| p.person_id).collect();
            want_persons.sort_unstable();
            want_persons.dedup();
            prop_assert_eq!(persons, want_persons);
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
            let got: Vec<Point> = answer(&index, &q);
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
            let a: Vec<Point> = answer(&once, &q);
            let b: Vec<Point> = answer(&twice, &q);
            prop_assert_eq!(a, b);
        }
    }

    proptest! {
        #[test]
        fn compacting_changes_no_answer_and_pinned_slots_keep_their_points(
            pts in arb_points(),
            splits in prop::collection::vec(0..200usize, 1..4),
            person in 1..7i64,
            distance in prop_oneof![Just(5.0), 0.5..60.0f64],
            gap in prop_oneof![Just(None), (0..400i64).prop_map(Some)],
        ) {
            let mut index = ContactIndex::new();
            let mut pinned = Vec::new();
            let mut cuts: Vec<usize> = splits.iter().map(|&c| c.min(pts.len())).collect();
            cuts.sort_unstable();
            let mut done = 0;
            for cut in cuts.into_iter().chain([pts.len()]) {
                for p in &pts[done..cut.max(done)] {
                    index.insert(p);
                }
                done = done.max(cut);
                // An answer being streamed holds its slots across the compaction.
                let pin = index.pin();
                let slots: Vec<u32> = (0..index.len() as u32).collect();
                let points: Vec<Point> = slots.iter().map(|&s| index.point(s)).collect();
                pinned.push((pin, slots, points));
                index.compact();
            }
            for (pin, slots, points) in &pinned {
                let now: Vec<Point> = slots.iter().map(|&s| index.point_pinned(pin, s)).collect();
                prop_assert_eq!(&now, points);
            }
            let q = ConnectionQuery { person_id: person, window: Window::all(), distance_m: distance, max_time_gap_us: gap.map(|g| g * S) };
            let got: Vec<Point> = answer(&index, &q);
            prop_assert_eq!(got, connections_oracle(&pts, &q));
            // Duplicates are still refused after the slots moved.
            for p in &pts {
                prop_assert!(!index.insert(p));
            }
        }
    }

    /// The shared index lays itself out again as rows arrive, while answers hold their slots.
    #[test]
    fn feeding_compacts_when_due_and_answers_stay_exact() {
        let mut rng = crate::simulate::Rng::new(7);
        let pts: Vec<Point> = (0..(COMPACT_AFTER as i64 * 3))
            .map(|i| Point {
                id: i + 1,
                person_id: 1 + (i % 40),
                lat: 37.55 + deg(rng.range(0.0, 60.0)),
                lon: -122.29 + deg(rng.range(0.0, 60.0)),
                t: i * S / 4,
            })
            .collect();
        let shared = RwLock::new(ContactIndex::new());
        let mut pins = Vec::new();
        for chunk in pts.chunks(10_000) {
            feed(&shared, chunk.iter().copied());
            let index = shared.read().unwrap();
            for slot in [0, index.len() as u32 / 2, index.len() as u32 - 1] {
                pins.push((index.pin(), slot, index.point(slot)));
            }
        }
        let index = shared.read().unwrap();
        assert!(
            index.generation >= 2,
            "compacted {} times",
            index.generation
        );
        assert!(!index.compaction_due());
        for (pin, slot, point) in &pins {
            assert_eq!(index.point_pinned(pin, *slot), *point);
        }
        drop(pins);
        let q = ConnectionQuery {
            person_id: 3,
            window: Window {
                start: 1000 * S,
                end: 9000 * S,
            },
            distance_m: 5.0,
            max_time_gap_us: Some(30 * S),
        };
        let got: Vec<Point> = answer(&index, &q);
        let want = connections_oracle(&pts, &q);
        assert!(!want.is_empty());
        assert_eq!(got, want);
    }

    proptest! {
        /// The searches of a cell list, through its sparse copy, after inserts in any order.
        #[test]
        fn cell_list_searches_equal_a_scan(
            times in prop::collection::vec(0..400i64, 0..300),
            probes in prop::collection::vec((0..420i64, 0..300usize), 1..40),
        ) {
            let rows: Vec<Row> = times
                .iter()
                .enumerate()
                .map(|(i, &t)| Row { t: t * S / 3, lat: 0.0, lon: 0.0, id: i as i64, person: 0 })
                .collect();
            let mut list = CellList::default();
            for (slot, r) in rows.iter().enumerate() {
                list.insert(slot as u32, (r.t, r.id), &rows);
            }
            let rebuilt = CellList::new(list.slots.clone(), list.seconds.clone());
            prop_assert_eq!(&list.sparse, &rebuilt.sparse);
            let empty = CellList::default();
            let mut asks = Vec::new();
            for (t, lo) in probes {
                let t = t * S / 3;
                let want = list.slots.iter().position(|&s| rows[s as usize].t >= t).unwrap_or(list.slots.len());
                prop_assert_eq!(list.first_at(t, &rows), want);
                let lo = lo.min(want);
                prop_assert_eq!(list.first_at_after(lo, t, &rows), want);
                asks.push((&list, seconds(t)));
                asks.push((&empty, seconds(t)));
            }
            // In lockstep, more searches than one group holds, lists of every length mixed.
            let mut got = Vec::new();
            CellList::first_seconds_at(&asks, &mut got);
            let want: Vec<usize> = asks.iter().map(|(l, s)| l.first_second_at(*s)).collect();
            prop_assert_eq!(got, want);
        }

        /// Lockstep searches against `partition_point`, on slices with repeated values.
        #[test]
        fn lockstep_searches_equal_partition_point(
            slices in prop::collection::vec(prop::collection::vec(0..50u32, 0..70), 0..40),
            keys in prop::collection::vec(0..52u32, 40),
        ) {
            let sorted: Vec<Vec<u32>> = slices
                .into_iter()
                .map(|mut v| {
                    v.sort_unstable();
                    v
                })
                .collect();
            let asks: Vec<(&[u32], u32)> = sorted.iter().zip(&keys).map(|(v, &k)| (&v[..], k)).collect();
            let mut got = Vec::new();
            lockstep_partition_points(&asks, &mut got);
            let want: Vec<usize> = asks.iter().map(|(v, k)| v.partition_point(|x| x < k)).collect();
            prop_assert_eq!(got, want);
        }
    }

    /// A crowd in a few cells: each cluster of the asked person's runs has more candidates than
    /// one batch holds, and the person leaves and comes back, so batches are checked both
    /// between clusters and at the end.
    #[test]
    fn crowded_cells_checked_in_batches_equal_the_oracle() {
        let mut rng = crate::simulate::Rng::new(5);
        let mut pts = Vec::new();
        for i in 0..360i64 {
            for person in 1..=30i64 {
                // Person 1 is away (a kilometre off) five minutes in every fifteen.
                let away = person == 1 && (i * 10 / 60) % 15 >= 10;
                pts.push(Point {
                    id: pts.len() as i64 + 1,
                    person_id: person,
                    lat: 37.55 + deg(rng.range(0.0, 6.0)) + if away { 0.01 } else { 0.0 },
                    lon: -122.29 + deg(rng.range(0.0, 6.0)),
                    t: i * 10 * S + person * 1000,
                });
            }
        }
        let index = build(&pts);
        let q = ConnectionQuery {
            person_id: 1,
            window: Window::all(),
            distance_m: 4.0,
            max_time_gap_us: Some(20 * S),
        };
        let want = connections_oracle(&pts, &q);
        assert!(want.len() > 4 * CHECK_BATCH, "{} rows", want.len());
        assert_eq!(answer(&index, &q), want);
    }

    /// Long tracks take the multi-core path: it must answer as the oracle does.
    #[test]
    fn long_tracks_split_over_cores_equal_the_oracle() {
        let mut rng = crate::simulate::Rng::new(42);
        let pts: Vec<Point> = (0..6000)
            .map(|i| Point {
                id: i + 1,
                person_id: 1 + (i % 5),
                lat: 37.55 + deg(rng.range(0.0, 40.0)),
                lon: -122.29 + deg(rng.range(0.0, 40.0)),
                t: (i / 5) * 7 * S,
            })
            .collect();
        let index = build(&pts);
        assert!(index.track(1, Window::all()).len() > 2 * PARALLEL_FROM);
        for gap in [5, 30, 120] {
            let q = ConnectionQuery {
                person_id: 1,
                window: Window::all(),
                distance_m: 3.0,
                max_time_gap_us: Some(gap * S),
            };
            let got: Vec<Point> = answer(&index, &q);
            let want = connections_oracle(&pts, &q);
            assert!(!want.is_empty());
            assert_eq!(got, want, "gap {gap}");
        }
    }

    proptest! {
        #[test]
        fn bulk_load_equals_inserting_one_by_one(pts in arb_points(), person in 1..7i64, distance in 0.5..50.0f64, gap in 0..400i64) {
            let mut shuffled = pts.clone();
            shuffled.reverse();
            let bulk = ContactIndex::bulk(shuffled, 0);
            let one = build(&pts);
            prop_assert_eq!(bulk.len(), one.len());
            for g in [None, Some(gap * S)] {
                let q = ConnectionQuery { person_id: person, window: Window::all(), distance_m: distance, max_time_gap_us: g };
                let a: Vec<Point> = answer(&bulk, &q);
                prop_assert_eq!(a, connections_oracle(&pts, &q));
            }
            let mut grown = bulk;
            for p in &pts {
                prop_assert!(!grown.insert(p), "already in");
            }
        }

        #[test]
        fn bulk_load_by_prepared_pages_equals_the_oracle(pts in arb_points(), cuts in proptest::collection::vec(0..200usize, 0..4), person in 1..7i64, distance in 0.5..50.0f64, gap in 0..400i64) {
            let mut builder = BulkBuilder::with_capacity(pts.len());
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(pts.len())).collect();
            cuts.push(pts.len());
            cuts.sort_unstable();
            let mut from = 0;
            for to in cuts {
                let page = PreparedPage::new(pts[from..to].iter().copied());
                prop_assert_eq!(page.len(), to - from);
                builder.push_page(&page);
                from = to;
            }
            let paged = builder.finish();
            prop_assert_eq!(paged.len(), pts.len());
            for g in [None, Some(gap * S)] {
                let q = ConnectionQuery { person_id: person, window: Window::all(), distance_m: distance, max_time_gap_us: g };
                let a: Vec<Point> = answer(&paged, &q);
                prop_assert_eq!(a, connections_oracle(&pts, &q));
            }
        }
    }

    #[test]
    fn cuts_at_cells_split_rows_evenly_at_cell_bounds() {
        assert_eq!(cuts_at_cells(&[0], 2), vec![0, 0]);
        assert_eq!(cuts_at_cells(&[0, 10], 2), vec![0, 1]);
        assert_eq!(cuts_at_cells(&[0, 4, 6, 10], 2), vec![0, 2, 3]);
        assert_eq!(cuts_at_cells(&[0, 4, 6, 10], 1), vec![0, 3]);
        assert_eq!(cuts_at_cells(&[0, 1, 2, 3, 4], 4), vec![0, 1, 2, 3, 4]);
        assert_eq!(cuts_at_cells(&[0, 1, 2], 8), vec![0, 1, 2]);
        assert_eq!(cuts_at_cells(&[0, 9, 10], 3), vec![0, 1, 2]);
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

//! The queries: the asked person's track walked in runs, the cells around each visited once,
//! candidates gathered and then checked by time and distance.

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;

use super::build::{group_by_bucket, sort_in_buckets, sort_in_buckets_until};
use super::grid::{cell_at, cell_of, reach_m, seconds, Cell, CellList, Faces, Level};
use super::parallel::{split_over, PARALLEL_FROM};
use super::{ContactIndex, Row};
use crate::cancel::{Cancel, Cancelled, Ticker};
use crate::contact::{summarise_by_person, ConnectionQuery, Contact, ContactQuery, Point};
use crate::geo::{to_cartesian, within_fast, DISTANCE_SLACK_M, EARTH_RADIUS_M};
use crate::time::Micros;

/// Slots per block in [`by_slot_block`]: 4,096 rows are 160 KiB, within a core's L2 cache.
const SLOT_BLOCK_BITS: u32 = 12;

/// Tagged slots in slot order, by block of neighbouring slots first; stopped once `cancel` is
/// raised.
fn by_slot_block(
    mut tagged: Vec<(u32, u32)>,
    rows: usize,
    cancel: &Cancel,
) -> Result<Vec<(u32, u32)>, Cancelled> {
    let blocks = (rows >> SLOT_BLOCK_BITS) + 1;
    sort_in_buckets_until(
        &mut tagged,
        blocks,
        |t| (t.0 >> SLOT_BLOCK_BITS) as usize,
        cancel,
    )?;
    Ok(tagged)
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

/// A cell that a connection query looks into: its list, the runs of own pings near it, and
/// where the first of them wants the cell's entries from.
struct Visit<'a> {
    list: &'a CellList,
    runs: &'a [(u32, u32)],
    first_from: Micros,
}

/// Candidates gathered before they are checked: [`Gathered::check`] once this many are held.
pub(super) const CHECK_BATCH: usize = 256;

/// Home cells whose neighbours' numbers a track's probe keeps (see `probe_runs`).
const RECENT_HOMES: usize = 4;
/// A neighbour not looked up yet for its home cell.
const UNSEEN: u32 = u32::MAX - 1;
/// A cell that holds no pings.
const NO_PINGS: u32 = u32::MAX;

/// What a connection query asks, as its searches use it.
#[derive(Clone, Copy)]
pub(super) struct Asked<'a> {
    /// The asked person's number, whose own pings are no answer.
    pub(super) me: Option<u32>,
    pub(super) q: &'a ConnectionQuery,
    /// The grid searched, and how many cells around a ping it looks at.
    pub(super) level: &'a Level,
    pub(super) k: i32,
    /// Looked at every few candidates: once raised, the search stops with what it has.
    pub(super) cancel: &'a Cancel,
}

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

/// Degrees of latitude within which every point closer than `distance_m` lies: the
/// great-circle distance is never less than the latitude difference times the radius.
fn latitude_band(distance_m: f64) -> f64 {
    ((distance_m + DISTANCE_SLACK_M) / EARTH_RADIUS_M).to_degrees() * (1.0 + 1e-9) + 1e-12
}

impl ContactIndex {
    /// Slots of other persons' pings near the asked person's, by time then id: the
    /// connection query.
    pub fn connections(&self, q: &ConnectionQuery) -> Vec<u32> {
        self.connections_with_persons(q).0
    }

    /// [`Self::connections`], and the ids of the persons its rows belong to, in id order: taken
    /// while the rows are read for their keys, so a caller need not read them a second time.
    pub fn connections_with_persons(&self, q: &ConnectionQuery) -> (Vec<u32>, Vec<i64>) {
        self.connections_until(q, &Cancel::new())
            .unwrap_or_default()
    }

    /// [`Self::connections_with_persons`], stopped within a few thousand candidates of
    /// `cancel` being raised.
    pub fn connections_until(
        &self,
        q: &ConnectionQuery,
        cancel: &Cancel,
    ) -> Result<(Vec<u32>, Vec<i64>), Cancelled> {
        let slots = self.matching_slots(q, cancel)?;
        Ok(self.in_key_order(slots))
    }

    /// The slots of the connection answer, in no order, some perhaps more than once.
    fn matching_slots(&self, q: &ConnectionQuery, cancel: &Cancel) -> Result<Vec<u32>, Cancelled> {
        let own = self.track(q.person_id, q.window);
        if own.is_empty() {
            return Ok(Vec::new());
        }
        let me = self.person_numbers.get(&q.person_id).copied();
        let (level, k) = self.level_for(q.distance_m);
        let asked = Asked {
            me,
            q,
            level,
            k,
            cancel,
        };
        let span = q.window.end.saturating_sub(q.window.start);
        let slots = match q.max_time_gap_us {
            // Narrow in time: look around each run of own pings, within its time span only.
            Some(gap) if gap.saturating_mul(8) < span => self.probe_parallel(own, asked, gap),
            // Wide or no time condition: visit each candidate cell once.
            _ => self.sweep_cells(own, asked),
        };
        // A search that saw the flag stopped early: what it found is not the answer.
        cancel.check()?;
        Ok(slots)
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
                (r.t, r.id(), s)
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

    pub(super) fn probe_runs(&self, own: &[u32], asked: Asked<'_>, gap: i64) -> Vec<u32> {
        let (me, q, level) = (asked.me, asked.q, asked.level);
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
        let around_len = (2 * asked.k as usize + 1).pow(3);
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
            for (at, c) in Self::around(cell, asked.k).enumerate() {
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
        let mut ticker = Ticker::new(asked.cancel);
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
                if ticker.tick(1 + hi - lo).is_err() {
                    return out;
                }
            }
        }
        batch.check(&own, &mut out, me, g, band, q.distance_m);
        out
    }

    fn sweep_cells(&self, own: &[u32], asked: Asked<'_>) -> Vec<u32> {
        let (me, q, level) = (asked.me, asked.q, asked.level);
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
            .flat_map(|(h, home)| Self::around(*home, asked.k).map(move |c| (c, h as u32)))
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
        let mut ticker = Ticker::new(asked.cancel);
        for around in candidates.chunk_by(|a, b| a.0 == b.0) {
            if ticker.tick(1).is_err() {
                return Vec::new();
            }
            let Some(list) = level.cells.get(&around[0].0) else {
                continue;
            };
            let entries = list.range(q.window.start, q.window.end, &self.rows);
            if entries.is_empty() {
                continue;
            }
            if ticker.tick(entries.len()).is_err() {
                return Vec::new();
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
        let Ok(tagged) = by_slot_block(tagged, self.rows.len(), asked.cancel) else {
            return Vec::new();
        };
        let check = |part: &[(u32, u32)]| {
            let mut out = Vec::new();
            let mut ticker = Ticker::new(asked.cancel);
            for &(s, g) in part {
                let r = &self.rows[s as usize];
                if Some(r.person) == me {
                    continue;
                }
                let near = &groups[bounds[g as usize]..bounds[g as usize + 1]];
                let from = near.partition_point(|o| o.lat < r.lat - band);
                let to = from + near[from..].partition_point(|o| o.lat <= r.lat + band);
                // Counted by the pings it may be compared with: a candidate in a crowd's
                // latitude band costs as many comparisons as the crowd has pings.
                if ticker.tick(1 + to - from).is_err() {
                    break;
                }
                let hit = near[from..to].iter().any(|o| {
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
        split_over(&*self.workers, &tagged, check)
    }

    /// The contacts query: the connection answer with the same gap, summarised per person.
    pub fn contacts(&self, q: &ContactQuery) -> Vec<Contact> {
        self.contacts_until(q, &Cancel::new()).unwrap_or_default()
    }

    /// [`Self::contacts`], stopped within a few thousand candidates of `cancel` being raised.
    pub fn contacts_until(
        &self,
        q: &ContactQuery,
        cancel: &Cancel,
    ) -> Result<Vec<Contact>, Cancelled> {
        let slots = self.matching_slots(&q.connection_query(), cancel)?;
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
        Ok(summarise_by_person(
            points.chunk_by(|a, b| a.person_id == b.person_id),
            q,
        ))
    }
}

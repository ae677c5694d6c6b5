//! Contacts over tracks (see [`crate::track`]) from the index: the asked person's pieces from
//! their track, the other persons' pieces that may come near each one from the grid of pings
//! (short hops) and the long hops, then the core's exact computation on those pairs only.
//!
//! The answer is the oracle's to the bit: every pair of pieces that is together at some
//! instant is among the candidates, and [`contacts_from_pairs`] decides from the pairs alone.
//! - A piece of another person between pings at most [`SHORT_HOP_M`] apart passes within half
//!   that of one of its pings, so the pings in the cells around the asked piece's box grown by
//!   the reach and half a short hop are the ends of every such piece that can be near it.
//! - A longer piece is a long hop, kept at the cell of its midpoint (see [`super::long`]).
//! - An isolated presence stands at its ping; a zero-length piece is together when either of
//!   its pings is, and both are pings of the grid.
//!
//! Times bound the search too: a piece is never longer than `max_interpolation`, a presence
//! reaches `ping_tolerance` either side of its ping.
//!
//! A ping found in a cell names its pieces by its position in its track, kept in its row, so
//! no track is searched. The candidate pieces are sorted once for the whole query: each is cut
//! once however many asked pieces found it, and consecutive ones share the work of their common
//! pings. Each is then paired with the asked pieces that share some time with it and whose box
//! grown by the reach meets its own: a cheap test that keeps most pairs from the exact one.

use super::build::sort_in_buckets_until;
use super::grid::{cells_around, for_cells_in, seconds};
use super::long::SHORT_HOP_M;
use super::ContactIndex;
use crate::cancel::{Cancel, Cancelled, Ticker};
use crate::contact::Contact;
use crate::time::Micros;
use crate::track::{contacts_from_pairs, piece_at, pieces_of, reach_chord_m, Piece};
use crate::track::{TrackFix, TrackQuery};

/// Margin on every grown box, far above the rounding of the positions.
const MARGIN_M: f64 = 0.01;

/// The largest box (per axis, metres) and number of asked pieces searched as one run.
const RUN_EXTENT_M: f64 = 5.5;
const RUN_PIECES: usize = 16;

impl ContactIndex {
    /// The contacts of `q.person_id` over tracks: equal to [`crate::track::contacts_oracle`]
    /// over every location in the index.
    pub fn track_contacts(&self, q: &TrackQuery) -> Vec<Contact> {
        self.track_contacts_until(q, &Cancel::new())
            .unwrap_or_default()
    }

    /// [`Self::track_contacts`], stopped within a few thousand candidates or pairs of `cancel`
    /// being raised.
    pub fn track_contacts_until(
        &self,
        q: &TrackQuery,
        cancel: &Cancel,
    ) -> Result<Vec<Contact>, Cancelled> {
        let Some(&me) = self.person_numbers.get(&q.person_id) else {
            return Ok(Vec::new());
        };
        cancel.check()?;
        let mut ticker = Ticker::new(cancel);
        let own = self.own_pieces(me, q);
        let chord = reach_chord_m(q.distance_m) + MARGIN_M;
        let around = q.max_interpolation_us.max(q.ping_tolerance_us);
        let mut hops = Vec::new();
        // The other persons' pieces that may meet one of the asked person's, each named by its
        // person and the position in their track of its first ping (see `wanted`).
        let mut wanted: Vec<u64> = Vec::new();
        for run in runs(&own) {
            let pieces = &own[run];
            let bounds = pieces.iter().map(bounds).reduce(union).unwrap_or_default();
            let span = (
                pieces.iter().map(|p| p.start).min().unwrap_or_default(),
                pieces.iter().map(|p| p.end).max().unwrap_or_default(),
            );
            let before = wanted.len();
            let times = (
                span.0.saturating_sub(around),
                span.1.saturating_add(around).saturating_add(1),
            );
            self.short_candidates(me, bounds, chord, times, &mut wanted, &mut ticker)?;
            let hops_before = hops.len();
            let hop_seconds = (
                seconds(span.0.saturating_sub(q.max_interpolation_us)),
                seconds(span.1),
            );
            self.hops.near(bounds, chord, hop_seconds, &mut hops);
            ticker.tick(1 + wanted.len() - before + hops.len() - hops_before)?;
        }
        // Neighbouring runs find mostly the same hops: each is read once.
        hops.sort_unstable();
        hops.dedup();
        ticker.tick(hops.len())?;
        self.hop_candidates(me, &hops, &mut wanted);
        // Each candidate piece is cut once, however many runs found it: sorted, they come
        // person by person in track order, so a stretch of consecutive pieces is read and
        // turned into Earth-centred fixes once.
        // By person first, in one counting pass, then each person's few in cache.
        sort_in_buckets_until(
            &mut wanted,
            self.person_ids.len(),
            |w| (w >> 32) as usize,
            cancel,
        )?;
        wanted.dedup();
        let near = OwnByTime::new(&own, chord);
        let mut pairs: Vec<(&Piece, Piece)> = Vec::new();
        let mut fixes: Vec<TrackFix> = Vec::new();
        for stretch in wanted.chunk_by(|a, b| b - a == 1 && a >> 32 == b >> 32) {
            ticker.tick(stretch.len())?;
            let person = (stretch[0] >> 32) as u32;
            let track = &self.tracks[person as usize];
            let (first, last) = (
                (stretch[0] as u32) as usize,
                (stretch[stretch.len() - 1] as u32) as usize,
            );
            // The pings a piece's cut depends on: one before the first and one after the last.
            let from = first.saturating_sub(1);
            fixes.clear();
            fixes.extend(
                track[from..(last + 2).min(track.len())]
                    .iter()
                    .map(|&s| self.fix(s)),
            );
            let person_id = self.person_ids[person as usize];
            for i in first..=last {
                if let Some(theirs) = piece_at(person_id, &fixes, i - from, q) {
                    near.pair(theirs, &mut pairs);
                }
            }
        }
        // The exact computation is the longest step of a crowded query: it stops too, and a
        // stopped one is no answer.
        let pairs = pairs
            .iter()
            .take_while(|_| ticker.tick(1).is_ok())
            .map(|(a, b)| (*a, b));
        let answer = contacts_from_pairs(q, pairs);
        cancel.check()?;
        Ok(answer)
    }

    /// The asked person's pieces in the window: their pings within the reach of a piece or a
    /// presence around it, and one more on each side so that each piece is cut as over the
    /// whole track.
    fn own_pieces(&self, me: u32, q: &TrackQuery) -> Vec<Piece> {
        let track = &self.tracks[me as usize];
        let around = q.max_interpolation_us.max(q.ping_tolerance_us);
        let range = self.time_range(
            track,
            q.window.start.saturating_sub(around),
            q.window.end.saturating_add(around),
        );
        let stretch = range.start.saturating_sub(1)..(range.end + 1).min(track.len());
        let fixes: Vec<TrackFix> = track[stretch].iter().map(|&s| self.fix(s)).collect();
        pieces_of(q.person_id, &fixes, q).collect()
    }

    fn fix(&self, slot: u32) -> TrackFix {
        let r = &self.rows[slot as usize];
        TrackFix::of(&crate::contact::Point {
            id: r.id(),
            person_id: 0,
            lat: r.lat,
            lon: r.lon,
            t: r.t,
            acc: r.acc(),
        })
    }

    /// Other persons' pings near a piece's box (grown by `chord` and half a short hop) with
    /// times in `from..to` (its span and the reach of a piece around it), as the pieces that
    /// end at them: `wanted` (person and position in their track) of the piece before each and
    /// the piece from it.
    fn short_candidates(
        &self,
        me: u32,
        bounds: ([f64; 3], [f64; 3]),
        chord: f64,
        (from, to): (Micros, Micros),
        out: &mut Vec<u64>,
        ticker: &mut Ticker<'_>,
    ) -> Result<(), Cancelled> {
        let grow = chord + SHORT_HOP_M * 0.5;
        let (level, _) = self.level_for_reach(grow);
        let boxed = cells_around(bounds, grow, level.edge);
        let mut stopped = false;
        for_cells_in(&level.cells, boxed, |list| {
            if stopped {
                return;
            }
            let range = list.range(from, to, &self.rows);
            if ticker.tick(1 + range.len()).is_err() {
                stopped = true;
                return;
            }
            for &s in range {
                let row = &self.rows[s as usize];
                if row.person == me {
                    continue;
                }
                if row.at > 0 {
                    out.push(wanted(row.person, row.at as usize - 1));
                }
                out.push(wanted(row.person, row.at as usize));
            }
        });
        if stopped {
            return Err(Cancelled);
        }
        Ok(())
    }

    /// The pieces that run along long hops, from the slots of their first pings (in slot
    /// order, so the rows are read front to back).
    fn hop_candidates(&self, me: u32, hops: &[u32], out: &mut Vec<u64>) {
        for &s in hops {
            let row = &self.rows[s as usize];
            if row.person != me {
                out.push(wanted(row.person, row.at as usize));
            }
        }
    }
}

/// A candidate piece as the query collects them: its person's number and the position in
/// their track of its first ping, in one integer that sorts by both.
fn wanted(person: u32, at: usize) -> u64 {
    (person as u64) << 32 | at as u64
}

/// The asked person's pieces by start time, each with its path's box grown by the reach: a
/// candidate piece is paired only with those that share some time with it and whose grown box
/// meets its own (a piece never leaves the box of its fixes, so a piece outside the grown box
/// is never within reach).
struct OwnByTime<'a> {
    own: &'a [Piece],
    /// (start, position in `own`), by start.
    starts: Vec<(Micros, u32)>,
    grown: Vec<([f64; 3], [f64; 3])>,
    /// The longest own piece, so only pieces starting that much before a time can cover it.
    longest: Micros,
}

impl<'a> OwnByTime<'a> {
    fn new(own: &'a [Piece], chord: f64) -> Self {
        let mut starts: Vec<(Micros, u32)> = own
            .iter()
            .enumerate()
            .map(|(i, p)| (p.start, i as u32))
            .collect();
        starts.sort_unstable();
        let grown = own
            .iter()
            .map(|p| {
                let (lo, hi) = bounds(p);
                (lo.map(|c| c - chord), hi.map(|c| c + chord))
            })
            .collect();
        let longest = own.iter().map(|p| p.end - p.start).max().unwrap_or(0);
        OwnByTime {
            own,
            starts,
            grown,
            longest,
        }
    }

    /// Appends to `out` `theirs` with each own piece it may meet.
    fn pair(&self, theirs: Piece, out: &mut Vec<(&'a Piece, Piece)>) {
        let (lo, hi) = bounds(&theirs);
        let from = self
            .starts
            .partition_point(|s| s.0 < theirs.start.saturating_sub(self.longest));
        for &(start, i) in &self.starts[from..] {
            if start > theirs.end {
                break;
            }
            let p = &self.own[i as usize];
            let (glo, ghi) = &self.grown[i as usize];
            let apart = (0..3).any(|a| lo[a] > ghi[a] || hi[a] < glo[a]);
            if p.end >= theirs.start && !apart {
                out.push((p, theirs));
            }
        }
    }
}

/// Consecutive asked pieces searched together: those whose paths fit in a box of
/// [`RUN_EXTENT_M`] (a person standing, or walking slowly), at most [`RUN_PIECES`] of them, so
/// that the cells around them are looked up once for all.
fn runs(own: &[Piece]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut from = 0;
    while from < own.len() {
        let mut to = from + 1;
        let mut b = bounds(&own[from]);
        while to < own.len() && to - from < RUN_PIECES {
            let grown = union(b, bounds(&own[to]));
            if (0..3).any(|i| grown.1[i] - grown.0[i] > RUN_EXTENT_M) {
                break;
            }
            b = grown;
            to += 1;
        }
        out.push(from..to);
        from = to;
    }
    out
}

/// The box around two boxes.
fn union(a: ([f64; 3], [f64; 3]), b: ([f64; 3], [f64; 3])) -> ([f64; 3], [f64; 3]) {
    (
        std::array::from_fn(|i| a.0[i].min(b.0[i])),
        std::array::from_fn(|i| a.1[i].max(b.1[i])),
    )
}

/// The box around a piece's whole path (the fixes it runs between).
fn bounds(p: &Piece) -> ([f64; 3], [f64; 3]) {
    (
        std::array::from_fn(|i| p.from.xyz[i].min(p.to.xyz[i])),
        std::array::from_fn(|i| p.from.xyz[i].max(p.to.xyz[i])),
    )
}

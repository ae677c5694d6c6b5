//! A person's track cut into pieces: what the pair function and every engine read.

use crate::contact::{Acc, Point};
use crate::geo::to_cartesian;
use crate::time::Micros;

use super::TrackQuery;

/// A ping as a track holds it: its id, its time and its position in Earth-centred metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackFix {
    pub id: i64,
    pub t: Micros,
    pub xyz: [f64; 3],
    pub acc: Acc,
}

impl TrackFix {
    pub fn of(p: &Point) -> Self {
        TrackFix {
            id: p.id,
            t: p.t,
            xyz: to_cartesian(p.lat, p.lon),
            acc: p.acc,
        }
    }
}

/// One piece of a person's track: the fixes it runs between and the instants it covers.
///
/// Three kinds, told apart by the fixes:
/// - `from.t < to.t`: a linear piece, the position moving along the chord from `from` to `to`
///   at constant speed;
/// - `from.t == to.t`, two fixes: a zero-length piece, the person holding both fixes at that
///   instant;
/// - `from.id == to.id`: an isolated presence, standing at the fix for the ping tolerance on
///   each side of its time.
///
/// `start..=end` is the covered span already clipped to the query window; the fixes are kept
/// as they are, so a piece cut by a window edge moves exactly as the uncut one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Piece {
    pub person_id: i64,
    pub from: TrackFix,
    pub to: TrackFix,
    pub start: Micros,
    pub end: Micros,
}

/// Names a piece among all pieces of all persons: its person and fixes' ids (a presence has
/// its one id twice). Sorting and deduplicating by it makes answers independent of the order
/// in which an engine finds pieces.
pub type PieceKey = (i64, i64, i64);

impl Piece {
    pub fn key(&self) -> PieceKey {
        (self.person_id, self.from.id, self.to.id)
    }

    /// Whether the piece may count toward a meeting under `max_accuracy_m`: a piece with a
    /// fix worse than it says nothing reliable of where the person was in between (the track
    /// keeps its shape: its neighbours are not joined across the bad fix).
    pub fn counts(&self, max_accuracy_m: Option<u32>) -> bool {
        max_accuracy_m.is_none_or(|m| !self.from.acc.worse_than(m) && !self.to.acc.worse_than(m))
    }

    /// Whether the position moves with time (a linear piece of non-zero length).
    pub fn is_moving(&self) -> bool {
        self.from.t < self.to.t
    }

    /// The position at `t` (within the piece's span) of a moving piece, computed from the
    /// nearer fix so the fixes themselves come out exactly.
    pub fn position_at(&self, t: Micros) -> [f64; 3] {
        if !self.is_moving() {
            return self.from.xyz;
        }
        let length = (self.to.t - self.from.t) as f64;
        let (base, other, along) = if t - self.from.t <= self.to.t - t {
            (
                self.from.xyz,
                self.to.xyz,
                (t - self.from.t) as f64 / length,
            )
        } else {
            (self.to.xyz, self.from.xyz, (self.to.t - t) as f64 / length)
        };
        std::array::from_fn(|i| base[i] + (other[i] - base[i]) * along)
    }
}

/// The pieces of one person's track within the query's window. `fixes` are all of that
/// person's pings (not only those in the window: pings just outside still shape the track
/// inside it) in (time, id) order.
///
/// Consecutive fixes at most `max_interpolation` apart make a linear piece (zero-length at
/// equal times); a fix with no neighbour that close on either side is an isolated presence of
/// `ping_tolerance` on each side. Spans are clipped to `[start, end]` of the window; a piece
/// with no instant in the half-open window `[start, end)` is left out.
pub fn pieces_of<'a>(
    person_id: i64,
    fixes: &'a [TrackFix],
    q: &TrackQuery,
) -> impl Iterator<Item = Piece> + 'a {
    let q = *q;
    (0..fixes.len()).filter_map(move |i| piece_at(person_id, fixes, i, &q))
}

/// The piece that starts at `fixes[i]`, as [`pieces_of`] cuts it. It depends on `fixes[i - 1]`,
/// `fixes[i]` and `fixes[i + 1]` only, so an engine may pass a short stretch of a track around
/// `i`, as long as it holds those neighbours (or starts or ends where the track does).
pub fn piece_at(person_id: i64, fixes: &[TrackFix], i: usize, q: &TrackQuery) -> Option<Piece> {
    let (w, limit, tolerance) = (q.window, q.max_interpolation_us, q.ping_tolerance_us);
    let linked = |i: usize| i + 1 < fixes.len() && fixes[i + 1].t - fixes[i].t <= limit;
    let f = fixes[i];
    let (to, lo, hi) = if linked(i) {
        (fixes[i + 1], f.t, fixes[i + 1].t)
    } else if i == 0 || !linked(i - 1) {
        (
            f,
            f.t.saturating_sub(tolerance),
            f.t.saturating_add(tolerance),
        )
    } else {
        return None;
    };
    let (start, end) = (lo.max(w.start), hi.min(w.end));
    (start <= end && start < w.end).then_some(Piece {
        person_id,
        from: f,
        to,
        start,
        end,
    })
}

/// Every person's pieces within the query's window, from pings in any order: each person's
/// pings sorted by (time, id), then cut as [`pieces_of`] says. Pieces come grouped by person
/// in ascending id, each person's in time order.
pub fn all_pieces(points: &[Point], q: &TrackQuery) -> Vec<Piece> {
    let mut sorted: Vec<&Point> = points.iter().collect();
    sorted.sort_unstable_by_key(|p| (p.person_id, p.t, p.id));
    let mut out = Vec::new();
    for person in sorted.chunk_by(|a, b| a.person_id == b.person_id) {
        let fixes: Vec<TrackFix> = person.iter().map(|p| TrackFix::of(p)).collect();
        out.extend(pieces_of(person[0].person_id, &fixes, q));
    }
    out
}

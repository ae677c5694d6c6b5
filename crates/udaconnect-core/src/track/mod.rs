//! Meetings from tracks: during which periods two persons were near each other, with each
//! person's position interpolated between their pings.
//!
//! # Semantics
//! - **Track.** A person's pings in (time, id) order, over every stored ping (pings just outside
//!   the window still shape the track inside it). Two consecutive pings at most
//!   `max_interpolation` apart (default 300 s) make a linear piece: the position moves at constant
//!   speed along the straight Earth-centred chord between the two fixes. A longer gap is a hole:
//!   no position is assumed there. A ping with no neighbour that close on either side is an
//!   isolated presence at its position for `ping_tolerance` (default 30 s) on each side of its
//!   time. Pings at equal times make a zero-length piece: at that instant the person holds both
//!   fixes. Every piece is clipped to the window `[start, end)`.
//! - **Together.** Two persons are together at instant `t` when both have a piece covering `t`
//!   and their positions at `t` are at most the chord of an arc of `distance` metres apart
//!   (default 5; the chord on the contract's sphere, so at the fixes themselves this is the
//!   haversine rule the connection query uses). No special case at the antimeridian or the
//!   poles. For two pieces the together instants form one closed interval, found in closed form
//!   ([`together`]).
//! - **Accuracy.** With `max_accuracy`, a piece with a fix whose accuracy is worse (larger
//!   than that many metres) is never together with anyone; the track keeps its shape around it.
//!   A fix without an accuracy counts.
//! - **Encounter.** The together periods with one other person (the union over pairs of
//!   pieces), where periods less than `join_gap` apart (default 120 s) merge. It lasts from its
//!   start to its end; its place is the time-weighted spherical mean of the midpoint between the
//!   two persons' positions at the middle instant of each contributing pair's interval (weighted
//!   by the interval's length; unweighted when all are single instants); its `pings` are the
//!   other person's distinct pings that end their contributing pieces.
//! - **Contact.** Every other person with encounters: time together is the sum of the
//!   encounters' durations, first and last met the first encounter's start and the last one's
//!   end. Persons with less than `min_duration` together (default 120 s) are left out; the rest
//!   are ordered by time together (longest first), then person id.
//!
//! Because the position is interpolated, the answer does not hang on when each phone happened
//! to ping: another interval or phase for the same walk moves each encounter's ends by at most
//! one interval of the sparser phone.
//!
//! # How answers are computed
//! [`pieces_of`] cuts a track, [`together`] is the one computation per pair of pieces, and
//! [`contacts_from_pairs`] turns pairs found together into contacts, summing in a fixed order:
//! the oracle [`contacts_oracle`] feeds it every pair, an engine the pairs its index finds,
//! and both get the same answer to the bit.

mod encounter;
mod near;
mod pair;
mod piece;

pub use encounter::contacts_from_pairs;
pub use near::{contacts_from_near, reach_for_speed, track_read_window};
pub use pair::{reach_chord_m, together, Together};
pub use piece::{all_pieces, piece_at, pieces_of, Piece, PieceKey, TrackFix};

use crate::contact::{Contact, Point};
use crate::time::Window;

const S: i64 = 1_000_000;

/// The defaults and limits of a contacts query over tracks, in metres and seconds.
pub mod defaults {
    pub const DISTANCE_M: f64 = 5.0;
    pub const MAX_DISTANCE_M: f64 = 1000.0;
    pub const MIN_DURATION_S: i64 = 120;
    pub const MAX_INTERPOLATION_S: i64 = 300;
    pub const MAX_INTERPOLATION_LIMIT_S: i64 = 3600;
    pub const PING_TOLERANCE_S: i64 = 30;
    pub const PING_TOLERANCE_LIMIT_S: i64 = 300;
    pub const JOIN_GAP_S: i64 = 120;
    pub const JOIN_GAP_LIMIT_S: i64 = 3600;
    /// The server's `--max-accuracy` default, in metres.
    pub const MAX_ACCURACY_M: u32 = 50;
    /// The largest `max_accuracy` a query may ask (see [`crate::contact::Acc`]).
    pub const MAX_ACCURACY_LIMIT_M: u32 = 1000;
}

/// A contacts query over tracks, validated; durations in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackQuery {
    pub person_id: i64,
    pub window: Window,
    pub distance_m: f64,
    /// Persons with less time together in total are left out.
    pub min_duration_us: i64,
    /// Consecutive pings further apart than this leave a hole in the track.
    pub max_interpolation_us: i64,
    /// How long before and after its time an isolated ping counts as present.
    pub ping_tolerance_us: i64,
    /// Together periods closer than this in time form one encounter.
    pub join_gap_us: i64,
    /// Pieces with a fix less accurate than this many metres do not count; `None`: all count.
    pub max_accuracy_m: Option<u32>,
}

impl TrackQuery {
    /// A query for `person_id` over `window` with every other parameter at its default.
    pub fn new(person_id: i64, window: Window) -> Self {
        TrackQuery {
            person_id,
            window,
            distance_m: defaults::DISTANCE_M,
            min_duration_us: defaults::MIN_DURATION_S * S,
            max_interpolation_us: defaults::MAX_INTERPOLATION_S * S,
            ping_tolerance_us: defaults::PING_TOLERANCE_S * S,
            join_gap_us: defaults::JOIN_GAP_S * S,
            max_accuracy_m: None,
        }
    }
}

/// The definition pair by pair: every piece of the asked person against every piece of
/// everyone else. For tests and benchmarks.
pub fn contacts_oracle(points: &[Point], q: &TrackQuery) -> Vec<Contact> {
    let pieces = all_pieces(points, q);
    let (own, others): (Vec<&Piece>, Vec<&Piece>) =
        pieces.iter().partition(|p| p.person_id == q.person_id);
    let pairs = own
        .iter()
        .flat_map(|a| others.iter().map(move |b| (*a, *b)));
    contacts_from_pairs(q, pairs)
}

#[cfg(test)]
pub(crate) mod tests;

//! From pairs of pieces found together to encounters and contacts.

use std::cmp::Reverse;

use crate::contact::{Contact, Encounter};
use crate::geo::to_lat_lon;
use crate::time::Micros;

use super::pair::{reach_chord_m, together, Together};
use super::piece::{Piece, PieceKey};
use super::TrackQuery;

/// One piece pair found together: the asked person's piece, another person's, and when.
#[derive(Debug, Clone, Copy)]
struct Contribution {
    other: i64,
    when: Together,
    own: PieceKey,
    theirs: PieceKey,
}

impl Contribution {
    /// A total order: the answer's sums run in it whatever order the pairs came in.
    fn order_key(&self) -> (i64, Micros, Micros, PieceKey, PieceKey) {
        (
            self.other,
            self.when.start,
            self.when.end,
            self.own,
            self.theirs,
        )
    }
}

/// The contacts answer from candidate piece pairs `(asked person's piece, another person's
/// piece)`, as the module's semantics define it. Pairs need not all meet, may come in any order
/// and more than once, and pairs whose first piece is not the asked person's or whose second
/// is are skipped: an engine passes any superset of the pairs that meet and gets the oracle's
/// answer to the bit. Pieces must be those [`super::pieces_of`] cuts for the same query.
pub fn contacts_from_pairs<'a>(
    q: &TrackQuery,
    pairs: impl IntoIterator<Item = (&'a Piece, &'a Piece)>,
) -> Vec<Contact> {
    let chord = reach_chord_m(q.distance_m);
    let mut found: Vec<Contribution> = pairs
        .into_iter()
        .filter(|(own, other)| own.person_id == q.person_id && other.person_id != q.person_id)
        .filter(|(own, other)| own.counts(q.max_accuracy_m) && other.counts(q.max_accuracy_m))
        .filter_map(|(own, other)| {
            together(own, other, chord).map(|when| Contribution {
                other: other.person_id,
                when,
                own: own.key(),
                theirs: other.key(),
            })
        })
        .collect();
    found.sort_unstable_by_key(Contribution::order_key);
    // The same pair twice computes the same interval, so duplicates are neighbours.
    found.dedup_by_key(|c| (c.own, c.theirs));
    let mut out: Vec<Contact> = found
        .chunk_by(|a, b| a.other == b.other)
        .filter_map(|mine| contact_of(mine, q))
        .collect();
    out.sort_by_key(|c| (Reverse(c.total_us), c.person_id));
    out
}

/// One person's contact from their contributions in order, or `None` under `min_duration`.
fn contact_of(mine: &[Contribution], q: &TrackQuery) -> Option<Contact> {
    let mut groups: Vec<&[Contribution]> = Vec::new();
    let (mut from, mut reach) = (0, mine[0].when.end);
    for (i, c) in mine.iter().enumerate().skip(1) {
        let gap = c.when.start - reach;
        if gap > 0 && gap >= q.join_gap_us {
            groups.push(&mine[from..i]);
            from = i;
        }
        reach = reach.max(c.when.end);
    }
    groups.push(&mine[from..]);
    let spans: Vec<(Micros, Micros)> = groups
        .iter()
        .map(|g| {
            (
                g[0].when.start,
                g.iter().map(|c| c.when.end).max().unwrap_or_default(),
            )
        })
        .collect();
    let total_us: i64 = spans.iter().map(|(s, e)| e - s).sum();
    if total_us < q.min_duration_us {
        return None;
    }
    let encounters: Vec<Encounter> = groups
        .iter()
        .zip(&spans)
        .map(|(g, &(start, end))| {
            let (latitude, longitude) = centroid(g);
            Encounter {
                start,
                end,
                latitude,
                longitude,
                pings: their_pings(g),
            }
        })
        .collect();
    Some(Contact {
        person_id: mine[0].other,
        first: spans[0].0,
        last: spans[spans.len() - 1].1,
        total_us,
        encounters,
    })
}

/// The time-weighted spherical mean of the contributions' midpoints (weight: the length of
/// each interval; unweighted when every interval is a single instant).
fn centroid(group: &[Contribution]) -> (f64, f64) {
    let timed = group.iter().any(|c| c.when.end > c.when.start);
    let mut sum = [0.0f64; 3];
    for c in group {
        let weight = if timed {
            (c.when.end - c.when.start) as f64
        } else {
            1.0
        };
        for (s, m) in sum.iter_mut().zip(c.when.midpoint) {
            *s += m * weight;
        }
    }
    to_lat_lon(sum)
}

/// The other person's distinct pings that are ends of their pieces in the group.
fn their_pings(group: &[Contribution]) -> u32 {
    let mut ids: Vec<i64> = group
        .iter()
        .flat_map(|c| [c.theirs.1, c.theirs.2])
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len() as u32
}

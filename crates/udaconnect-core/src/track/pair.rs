//! The one computation of when two pieces are together; the oracle and every engine call it.

use crate::geo::{chord_for_arc_m, DISTANCE_SLACK_M};
use crate::time::Micros;

use super::piece::Piece;

/// When two pieces are within reach of each other: a closed interval of instants (a single
/// instant when `start == end`), and the midpoint between the two positions at its middle
/// instant, in Earth-centred metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Together {
    pub start: Micros,
    pub end: Micros,
    pub midpoint: [f64; 3],
}

/// The straight-line reach for a distance on the sphere: the chord of an arc of `distance_m`
/// (with [`DISTANCE_SLACK_M`]), so two fixes are within it exactly when
/// [`crate::geo::within`] says they are within `distance_m`.
pub fn reach_chord_m(distance_m: f64) -> f64 {
    chord_for_arc_m(distance_m + DISTANCE_SLACK_M)
}

/// Relative displacements below this (metres over the whole common span) count as none: the
/// pieces then keep their distance, to far below the slack, and the closest-approach formula
/// would divide by almost nothing.
const STILL_M: f64 = 1e-9;

/// The instants at which both pieces exist and their positions lie within `chord_m` of each
/// other (Earth-centred straight-line distance), or `None`.
///
/// Over the common span both positions move linearly, so their difference `r(s) = r0 + w s`
/// (`s` from 0 to 1 over the span) does too, and `|r(s)|^2 <= chord^2` holds on one closed
/// interval around the closest approach `s* = -(r0 . w) / (w . w)`: `s* +- h` with
/// `h^2 = (chord^2 - |r(s*)|^2) / (w . w)`. Positions are subtracted before anything is squared,
/// and the closest-approach distance is computed as a vector rather than from a discriminant,
/// so neither the Earth-sized coordinates nor a nearly tangent pass lose precision. The bounds
/// are rounded to the nearest microsecond.
///
/// A zero-length piece between two fixes at one instant is together with the other piece when
/// either of its fixes is; the midpoint is taken with the first fix (in piece order) that is.
pub fn together(p: &Piece, q: &Piece, chord_m: f64) -> Option<Together> {
    let (t0, t1) = (p.start.max(q.start), p.end.min(q.end));
    if t0 > t1 {
        return None;
    }
    let reach2 = chord_m * chord_m;
    if t0 == t1 {
        return held_at(p, t0).find_map(|a| {
            held_at(q, t0).find_map(|b| {
                (norm2(sub(a, b)) <= reach2).then_some(Together {
                    start: t0,
                    end: t0,
                    midpoint: midpoint(a, b),
                })
            })
        });
    }
    // A positive common span: neither piece is a zero-length one.
    let r0 = sub(p.position_at(t0), q.position_at(t0));
    let w = sub(sub(p.position_at(t1), q.position_at(t1)), r0);
    let ww = norm2(w);
    let (lo, hi) = if ww <= STILL_M * STILL_M {
        let middle = add_scaled(r0, w, 0.5);
        if norm2(middle) > reach2 {
            return None;
        }
        (0.0, 1.0)
    } else {
        let closest = -dot(r0, w) / ww;
        let miss2 = norm2(add_scaled(r0, w, closest));
        if miss2 > reach2 {
            return None;
        }
        let half = ((reach2 - miss2) / ww).sqrt();
        ((closest - half).max(0.0), (closest + half).min(1.0))
    };
    if lo > hi {
        return None;
    }
    let span = (t1 - t0) as f64;
    let start = t0 + (lo * span).round() as i64;
    let end = (t0 + (hi * span).round() as i64).clamp(start, t1);
    let mid = start + (end - start) / 2;
    Some(Together {
        start,
        end,
        midpoint: midpoint(p.position_at(mid), q.position_at(mid)),
    })
}

/// The positions a piece holds at an instant it covers: both fixes of a zero-length piece,
/// else the one position.
pub(crate) fn held_at(p: &Piece, t: Micros) -> impl Iterator<Item = [f64; 3]> + '_ {
    let both = !p.is_moving() && p.from.id != p.to.id;
    std::iter::once(p.position_at(t)).chain(both.then_some(p.to.xyz))
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    std::array::from_fn(|i| a[i] - b[i])
}

fn add_scaled(a: [f64; 3], b: [f64; 3], k: f64) -> [f64; 3] {
    std::array::from_fn(|i| a[i] + b[i] * k)
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn norm2(a: [f64; 3]) -> f64 {
    dot(a, a)
}

fn midpoint(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    std::array::from_fn(|i| a[i] + (b[i] - a[i]) * 0.5)
}

//! Contacts over tracks from a store's candidate read ([`crate::ports::LocationStore::near_tracks`]):
//! the pieces cut from the pings it returned, then the module's exact computation.

use std::collections::HashSet;

use crate::contact::{Contact, Point};
use crate::model::Location;
use crate::ports::NearTracks;
use crate::time::Window;

use super::piece::{all_pieces, Piece};
use super::{contacts_from_pairs, TrackQuery};

/// How far beyond the query window a store reads the asked person's pings (and, in the
/// generic read, everyone's), so every piece with an instant in the window is cut as the whole
/// track cuts it: a ping shapes the window through a piece at most `max_interpolation` long or a
/// presence `ping_tolerance` wide, and whether it is linked or isolated hangs on its neighbour
/// up to `max_interpolation` further out.
pub fn track_read_window(q: &TrackQuery) -> Window {
    let margin = q
        .max_interpolation_us
        .max(0)
        .saturating_add(q.ping_tolerance_us.max(0));
    Window {
        start: q.window.start.saturating_sub(margin),
        end: q.window.end.saturating_add(margin),
    }
}

/// The longest piece (metres between its two fixes) a read with reach `reach_m` is complete
/// for; see [`crate::ports::LocationStore::near_tracks`].
///
/// A piece of another person that comes within `distance` of one of the asked person's pieces
/// has one of its two fixes within `distance + length / 2` of that piece, so a store that
/// finds every other ping within `distance + reach_m / 2` of the asked person's track finds a
/// fix of every such piece no longer than `reach_m`; its neighbours complete it.
pub fn reach_for_speed(max_speed_mps: f64, q: &TrackQuery) -> f64 {
    max_speed_mps.max(0.0) * q.max_interpolation_us.max(0) as f64 / 1e6
}

/// The contacts answer from a store's candidate read, equal to [`super::contacts_oracle`] over
/// every stored ping whenever the read holds what [`crate::ports::LocationStore::near_tracks`]
/// promises.
///
/// The asked person's pieces are cut from their pings. Another person's pings (candidates and
/// neighbours, possibly repeated) are cut per person, and only the pieces with a candidate
/// among their fixes are kept: a candidate comes with both neighbours that can link to it, so
/// its pieces are the whole track's; two neighbours side by side may not be neighbours in the
/// track.
pub fn contacts_from_near(q: &TrackQuery, near: &NearTracks) -> Vec<Contact> {
    let own = all_pieces(&points(&near.own), q);
    let own: Vec<&Piece> = own.iter().filter(|p| p.person_id == q.person_id).collect();
    if own.is_empty() {
        return Vec::new();
    }
    let candidate_ids: HashSet<i64> = near.candidates.iter().map(|l| l.id).collect();
    let mut others: Vec<Location> = near
        .candidates
        .iter()
        .chain(&near.neighbours)
        .filter(|l| l.person_id != q.person_id)
        .cloned()
        .collect();
    others.sort_unstable_by_key(|l| l.id);
    others.dedup_by_key(|l| l.id);
    let mut theirs = all_pieces(&points(&others), q);
    theirs.retain(|p| candidate_ids.contains(&p.from.id) || candidate_ids.contains(&p.to.id));
    // Pieces are at most this long in time, so only those starting this early can overlap.
    let longest = theirs.iter().map(|p| p.end - p.start).max().unwrap_or(0);
    theirs.sort_unstable_by_key(|p| (p.start, p.key()));
    let theirs: &[Piece] = &theirs;
    let pairs = own.iter().flat_map(move |a| {
        let from = theirs.partition_point(|b| b.start < a.start.saturating_sub(longest));
        let to = theirs.partition_point(|b| b.start <= a.end);
        theirs[from..to].iter().map(move |b| (*a, b))
    });
    contacts_from_pairs(q, pairs)
}

fn points(locations: &[Location]) -> Vec<Point> {
    locations.iter().map(Point::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_micros;
    use crate::track::contacts_oracle;

    const S: i64 = 1_000_000;

    /// A ping `east_m` and `north_m` from a point at 10 N, 20 E.
    fn at(id: i64, person_id: i64, east_m: f64, north_m: f64, t_s: i64) -> Location {
        let m_per_degree = crate::geo::EARTH_RADIUS_M.to_radians();
        Location {
            id,
            person_id,
            latitude: 10.0 + north_m / m_per_degree,
            longitude: 20.0 + east_m / (m_per_degree * 10f64.to_radians().cos()),
            creation_time: from_micros(t_s * S),
            accuracy_m: None,
            telemetry: Default::default(),
        }
    }

    /// Person 2 passes person 1 at 100 s, goes 200 m north and comes back at 200 s, leaving
    /// from 20 m west and returning from 20 m east. A read of the two candidates and their
    /// neighbours holds both meetings; the two neighbours side by side are not a piece of the
    /// track (its chord would cross person 1 at 150 s), and the answer is the oracle's.
    #[test]
    fn neighbours_side_by_side_make_no_piece() {
        let own: Vec<Location> = (0..15).map(|i| at(i, 1, 0.0, 0.0, i * 20)).collect();
        let mut theirs = vec![
            at(100, 2, 0.0, 0.0, 100),
            at(110, 2, -20.0, 0.0, 110),
            at(190, 2, 20.0, 0.0, 190),
            at(200, 2, 0.0, 0.0, 200),
        ];
        theirs.extend((120..=180).step_by(10).map(|t| at(t, 2, 0.0, 200.0, t)));
        let mut q = TrackQuery::new(
            1,
            Window {
                start: 0,
                end: 300 * S,
            },
        );
        q.min_duration_us = 0;
        q.join_gap_us = 0;
        let near = NearTracks {
            own: own.clone(),
            candidates: vec![theirs[0].clone(), theirs[3].clone()],
            neighbours: vec![theirs[1].clone(), theirs[2].clone()],
        };
        let all: Vec<Point> = own.iter().chain(&theirs).map(Point::from).collect();
        let want = contacts_oracle(&all, &q);
        assert_eq!(want.len(), 1);
        assert_eq!(want[0].encounters.len(), 2, "{want:?}");
        assert_eq!(contacts_from_near(&q, &near), want);
    }

    #[test]
    fn the_read_window_covers_every_piece_that_reaches_the_window() {
        let q = TrackQuery::new(
            1,
            Window {
                start: 1000 * S,
                end: 2000 * S,
            },
        );
        let read = track_read_window(&q);
        assert_eq!(read.start, (1000 - 330) * S);
        assert_eq!(read.end, (2000 + 330) * S);
        let all = TrackQuery::new(1, Window::all());
        assert_eq!(track_read_window(&all), Window::all());
        assert_eq!(reach_for_speed(1.5, &q), 450.0);
    }
}

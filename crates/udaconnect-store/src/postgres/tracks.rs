//! The PostGIS read behind a contacts query over tracks
//! ([`LocationStore::near_tracks`](udaconnect_core::ports::LocationStore::near_tracks)).

use udaconnect_core::ports::NearTracks;
use udaconnect_core::track::{track_read_window, TrackQuery};

use super::locations::{
    search_radius_m, tagged_locations, PostgresLocationStore, COLUMNS, MAX_GAP_US, OWN,
};
use super::{window_bound, DbError};

/// The statement behind `near_tracks`: public so benchmarks can explain the very statement the
/// store runs. Parameters: `$1` the person, `$2`/`$3` the widened window, `$4` the search
/// radius in metres, `$5` `max_interpolation` and `$6` the time margin of a candidate, both in
/// microseconds. Rows come tagged 0 (the person's), 1 (a candidate), 2 (a neighbour).
///
/// - `own`: the person's pings in the widened window, by `location_person_time_idx`.
/// - `piece`: each of them as the path of its piece (the segment to the next ping when at most
///   `max_interpolation` later, else the point) and the times a meeting piece's fixes can have:
///   its span widened by the margin.
/// - `candidate`: one probe of the GiST on `(coordinate::geography, creation_time)` per piece,
///   radius and times together. The radius grows by a bound on how far the straight chord
///   between two fixes (the track's interpolation) sinks below the great-circle arc PostGIS
///   measures against: `length^2 / (8 R)`.
/// - `neighbour`: each candidate's previous and next ping of the same person within
///   `max_interpolation`, by `location_person_time_idx`, so their pieces can be cut.
pub fn near_tracks_sql() -> String {
    format!(
        "WITH {OWN},
         linked AS (
             SELECT coordinate, creation_time,
                    lead(coordinate) OVER w AS next_coordinate,
                    lead(creation_time) OVER w AS next_time
             FROM own
             WINDOW w AS (ORDER BY creation_time, id)
         ),
         piece AS MATERIALIZED (
             SELECT path,
                    creation_time - $6::bigint * interval '1 microsecond' AS t0,
                    span_end + $6::bigint * interval '1 microsecond' AS t1,
                    $4::float8 + ST_Length(path, false) ^ 2 / (8 * 6371000.0) AS radius
             FROM (
                 SELECT creation_time,
                        CASE WHEN next_time - creation_time
                                      <= $5::bigint * interval '1 microsecond'
                                  AND NOT ST_Equals(coordinate, next_coordinate)
                             THEN ST_MakeLine(coordinate, next_coordinate)::geography
                             ELSE coordinate::geography END AS path,
                        CASE WHEN next_time - creation_time
                                      <= $5::bigint * interval '1 microsecond'
                             THEN next_time ELSE creation_time END AS span_end
                 FROM linked
             ) s
         ),
         candidate AS MATERIALIZED (
             SELECT l.id, l.person_id, l.coordinate, l.creation_time, l.accuracy_m,
                    l.altitude_m, l.speed_mps, l.heading_deg, l.battery_pct, l.app
             FROM piece p
             JOIN location l
               ON ST_DWithin(l.coordinate::geography, p.path, p.radius, false)
             WHERE l.person_id <> $1
               AND l.creation_time BETWEEN p.t0 AND p.t1
             GROUP BY l.id
         ),
         neighbour AS (
             SELECT n.id, n.person_id, n.coordinate, n.creation_time, n.accuracy_m,
                    n.altitude_m, n.speed_mps, n.heading_deg, n.battery_pct, n.app
             FROM candidate c
             CROSS JOIN LATERAL (
                 (SELECT id, person_id, coordinate, creation_time, accuracy_m,
                         altitude_m, speed_mps, heading_deg, battery_pct, app
                  FROM location b
                  WHERE b.person_id = c.person_id
                    AND b.creation_time <= c.creation_time
                    AND b.creation_time >= c.creation_time - $5::bigint * interval '1 microsecond'
                    AND (b.creation_time, b.id) < (c.creation_time, c.id)
                  ORDER BY b.creation_time DESC, b.id DESC
                  LIMIT 1)
                 UNION ALL
                 (SELECT id, person_id, coordinate, creation_time, accuracy_m,
                         altitude_m, speed_mps, heading_deg, battery_pct, app
                  FROM location a
                  WHERE a.person_id = c.person_id
                    AND a.creation_time >= c.creation_time
                    AND a.creation_time <= c.creation_time + $5::bigint * interval '1 microsecond'
                    AND (a.creation_time, a.id) > (c.creation_time, c.id)
                  ORDER BY a.creation_time, a.id
                  LIMIT 1)
             ) n
         )
         SELECT 0 AS kind, {COLUMNS} FROM own
         UNION ALL
         SELECT 1 AS kind, {COLUMNS} FROM candidate
         UNION ALL
         SELECT 2 AS kind, {COLUMNS} FROM neighbour"
    )
}

/// A duration in microseconds as the statement takes it: clamped to what an interval holds
/// exactly.
fn micros_param(us: i64) -> i64 {
    us.clamp(0, MAX_GAP_US as i64)
}

impl PostgresLocationStore {
    pub(super) async fn try_near_tracks(
        &self,
        q: &TrackQuery,
        reach_m: f64,
    ) -> Result<NearTracks, DbError> {
        let read = track_read_window(q);
        let (start, end) = (window_bound(read.start), window_bound(read.end));
        let reach = if reach_m.is_nan() {
            0.0
        } else {
            reach_m.max(0.0)
        };
        let radius = search_radius_m(q.distance_m.max(0.0) + reach / 2.0);
        let max_interpolation = micros_param(q.max_interpolation_us);
        let margin = micros_param(
            q.ping_tolerance_us
                .max(0)
                .saturating_add(q.max_interpolation_us.max(q.ping_tolerance_us).max(0)),
        );
        let client = self.pg.abandonable().await?;
        let statement = client.prepare_cached(&near_tracks_sql()).await?;
        let rows = client
            .query(
                &statement,
                &[
                    &q.person_id,
                    &start,
                    &end,
                    &radius,
                    &max_interpolation,
                    &margin,
                ],
            )
            .await?;
        client.finished();
        let mut near = NearTracks::default();
        for tagged in tagged_locations(&rows) {
            let (kind, l): (i32, _) = tagged?;
            match kind {
                0 => near.own.push(l),
                1 => near.candidates.push(l),
                _ => near.neighbours.push(l),
            }
        }
        if near.own.is_empty() {
            return Ok(NearTracks::default());
        }
        Ok(near)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_stay_in_an_intervals_range() {
        assert_eq!(micros_param(-5), 0);
        assert_eq!(micros_param(300_000_000), 300_000_000);
        assert_eq!(micros_param(i64::MAX), MAX_GAP_US as i64);
    }
}

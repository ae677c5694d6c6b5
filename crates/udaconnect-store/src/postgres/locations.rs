use async_trait::async_trait;
use chrono::NaiveDateTime;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::Row;
use udaconnect_core::model::{Location, LocationId, PersonId, Telemetry};
use udaconnect_core::ports::{LocationScan, LocationStore, Near, NearQuery, NearTracks};
use udaconnect_core::record::FIX_ID_BASE;
use udaconnect_core::time::{to_micros, Micros, Window};
use udaconnect_core::track::TrackQuery;
use udaconnect_core::tracker::App;
use udaconnect_core::Result;

use super::{from_timestamp, pg_error, to_timestamp, window_bound, DbError, Postgres};
use crate::stored_coordinate;

/// The columns every read returns, in the order [`location_at`] reads them.
pub(super) const COLUMNS: &str =
    "id, person_id, ST_Y(coordinate) AS latitude, ST_X(coordinate) AS longitude, creation_time, \
     accuracy_m, altitude_m, speed_mps, heading_deg, battery_pct, app";

/// Rows per INSERT: bounds the size of one message; a larger batch is several statements in
/// one transaction.
const UPSERT_CHUNK: usize = 20_000;

/// Locations in table `location`, coordinates as PostGIS points.
#[derive(Debug, Clone)]
pub struct PostgresLocationStore {
    pub(super) pg: Postgres,
}

impl PostgresLocationStore {
    pub fn new(pg: &Postgres) -> Self {
        PostgresLocationStore { pg: pg.clone() }
    }

    /// `SELECT` the locations of `filter` (the query after `FROM location`) with `params`.
    async fn select(&self, filter: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Location>> {
        let sql = format!("SELECT {COLUMNS} FROM location {filter}");
        locations(&self.pg.query(&sql, params).await?)
    }
}

pub(super) fn location_at(row: &Row, first: usize) -> Result<Location, tokio_postgres::Error> {
    Ok(Location {
        id: row.try_get(first)?,
        person_id: row.try_get(first + 1)?,
        // Also on reads: rows the original consumer or an earlier version wrote may hold `-0.0`.
        latitude: stored_coordinate(row.try_get(first + 2)?),
        longitude: stored_coordinate(row.try_get(first + 3)?),
        creation_time: from_timestamp(row.try_get::<_, NaiveDateTime>(first + 4)?),
        accuracy_m: row.try_get(first + 5)?,
        telemetry: Telemetry {
            altitude_m: row.try_get(first + 6)?,
            speed_mps: row.try_get(first + 7)?,
            heading_deg: row.try_get(first + 8)?,
            battery_pct: row.try_get(first + 9)?,
            app: row
                .try_get::<_, Option<&str>>(first + 10)?
                .and_then(App::parse),
        },
    })
}

/// The locations of rows that start with a tag (which part of a statement each came from),
/// the location's columns following.
pub(super) fn tagged_locations<'a, T: FromSql<'a>>(
    rows: &'a [Row],
) -> impl Iterator<Item = Result<(T, Location), tokio_postgres::Error>> + 'a {
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, location_at(row, 1)?)))
}

/// The count a `SELECT count(*)` (or a sum of them) answered: its one row's first column
/// (none: 0).
fn count_of(rows: &[Row]) -> Result<u64> {
    let n: i64 = rows
        .first()
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(|e| pg_error(&e))?
        .unwrap_or(0);
    Ok(n.max(0) as u64)
}

fn locations(rows: &[Row]) -> Result<Vec<Location>> {
    rows.iter()
        .map(|r| location_at(r, 0))
        .collect::<Result<_, _>>()
        .map_err(|e| pg_error(&e))
}

/// Slack on the distance handed to PostGIS, so its candidates are a superset of what the
/// contact engine's haversine keeps: PostGIS measures on a sphere of radius 6,371,008.77 m (ours
/// is 6,371,008.8 m) with other floating-point steps; 0.1% and half a metre dwarf both.
pub(super) fn search_radius_m(distance_m: f64) -> f64 {
    // NaN matches nothing; the radius only has to be a valid one.
    let d = if distance_m.is_nan() {
        0.0
    } else {
        distance_m.clamp(0.0, MAX_SEARCH_M)
    };
    d * 1.001 + 0.5
}

/// Beyond this the search covers the whole sphere anyway (half its circumference is about
/// 20,015 km); capping it keeps PostGIS's arithmetic finite.
const MAX_SEARCH_M: f64 = 21_000_000.0;

/// Time gaps from this one up are treated as no time condition (a superset, as `near`
/// allows). Below it, the gap in microseconds converts to an interval exactly (under 2^53) and
/// `creation_time ± gap` stays in PostgreSQL's range for every time since 1970.
pub(super) const MAX_GAP_US: u64 = 200 * 365 * 24 * 3600 * 1_000_000;

/// The asked person's pings in the window (`$1`, `$2`, `$3`), read once by
/// `location_person_time_idx`: the `own` part of the statements that search around them.
pub(super) const OWN: &str = "own AS MATERIALIZED (
             SELECT id, person_id, coordinate, creation_time, accuracy_m,
                    altitude_m, speed_mps, heading_deg, battery_pct, app
             FROM location
             WHERE person_id = $1 AND creation_time >= $2 AND creation_time < $3
         )";

/// The asked person's locations in the window and, in the same statement, the other persons'
/// locations in the window within the search radius (and the gap) of one of them.
///
/// `own` is materialised once; each own location probes the GiST index on
/// `(coordinate::geography, creation_time)`, which searches the radius, the window and the gap
/// together, and the matches are grouped by id so each candidate comes once. The measurements
/// behind the index are in `migrations/postgres/0004_location_indexes.sql`.
/// The statement behind [`LocationStore::near`](udaconnect_core::ports::LocationStore::near),
/// with or without the time-gap clause (`$5`, microseconds): public so benchmarks can explain
/// the very statement the store runs.
pub fn near_sql(with_gap: bool) -> String {
    let gap = if with_gap {
        "AND l.creation_time BETWEEN o.creation_time - $5::bigint * interval '1 microsecond'
                               AND o.creation_time + $5::bigint * interval '1 microsecond'"
    } else {
        ""
    };
    format!(
        "WITH {OWN},
         candidate AS (
             SELECT l.id, l.person_id, l.coordinate, l.creation_time, l.accuracy_m,
                    l.altitude_m, l.speed_mps, l.heading_deg, l.battery_pct, l.app
             FROM own o
             JOIN location l
               ON ST_DWithin(l.coordinate::geography, o.coordinate::geography, $4, false)
             WHERE l.person_id <> $1
               AND l.creation_time >= $2 AND l.creation_time < $3
               {gap}
             GROUP BY l.id
         )
         SELECT true AS is_own, {COLUMNS} FROM own
         UNION ALL
         SELECT false AS is_own, {COLUMNS} FROM candidate
         ORDER BY is_own DESC, creation_time, id"
    )
}

impl PostgresLocationStore {
    /// Pings of a person erased meanwhile (a consumer whose person cache is behind) are left
    /// out rather than failing the batch on the reference to the person: the reference
    /// check reads the same row.
    async fn try_upsert(&self, rows: &UpsertRows) -> Result<(), DbError> {
        let mut client = self.pg.client().await?;
        let tx = client.transaction().await?;
        let statement = tx
            .prepare_cached(
                "INSERT INTO location (id, person_id, coordinate, creation_time, accuracy_m,
                                       altitude_m, speed_mps, heading_deg, battery_pct, app)
                 SELECT id, person_id, ST_SetSRID(ST_MakePoint(longitude, latitude), 4326), t, acc,
                        alt, speed, heading, battery, app
                 FROM UNNEST($1::bigint[], $2::bigint[], $3::float8[], $4::float8[],
                             $5::timestamp[], $6::float8[], $7::float8[], $8::float8[],
                             $9::float8[], $10::float8[], $11::text[])
                      AS r (id, person_id, latitude, longitude, t, acc, alt, speed, heading,
                            battery, app)
                 WHERE EXISTS (SELECT 1 FROM person p WHERE p.id = r.person_id)
                 ON CONFLICT (id) DO NOTHING",
            )
            .await?;
        let n = rows.ids.len();
        for start in (0..n).step_by(UPSERT_CHUNK) {
            let end = (start + UPSERT_CHUNK).min(n);
            tx.execute(
                &statement,
                &[
                    &&rows.ids[start..end],
                    &&rows.person_ids[start..end],
                    &&rows.latitudes[start..end],
                    &&rows.longitudes[start..end],
                    &&rows.times[start..end],
                    &&rows.accuracies[start..end],
                    &&rows.altitudes[start..end],
                    &&rows.speeds[start..end],
                    &&rows.headings[start..end],
                    &&rows.batteries[start..end],
                    &&rows.apps[start..end],
                ],
            )
            .await?;
        }
        // Durable on return: the commit waits for the WAL flush (synchronous_commit on).
        tx.commit().await?;
        Ok(())
    }

    async fn try_near(&self, q: &NearQuery) -> Result<Near, DbError> {
        let (start, end) = (window_bound(q.window.start), window_bound(q.window.end));
        let radius = search_radius_m(q.distance_m);
        // Both sides lie in the window, so a gap at least as long as the window cannot
        // exclude anything.
        let span = q.window.end.abs_diff(q.window.start);
        let gap = q
            .max_gap_us
            .map(i64::unsigned_abs)
            .filter(|&g| g < span && g < MAX_GAP_US)
            .map(|g| g as i64);
        let client = self.pg.abandonable().await?;
        let rows = match gap {
            Some(gap) => {
                let statement = client.prepare_cached(&near_sql(true)).await?;
                client
                    .query(&statement, &[&q.person_id, &start, &end, &radius, &gap])
                    .await?
            }
            None => {
                let statement = client.prepare_cached(&near_sql(false)).await?;
                client
                    .query(&statement, &[&q.person_id, &start, &end, &radius])
                    .await?
            }
        };
        client.finished();
        let mut near = Near::default();
        for tagged in tagged_locations(&rows) {
            let (is_own, l): (bool, _) = tagged?;
            if is_own {
                near.own.push(l);
            } else {
                near.candidates.push(l);
            }
        }
        Ok(near)
    }
}

/// A batch as the columns `UNNEST` reads.
struct UpsertRows {
    ids: Vec<i64>,
    person_ids: Vec<i64>,
    latitudes: Vec<f64>,
    longitudes: Vec<f64>,
    times: Vec<NaiveDateTime>,
    accuracies: Vec<Option<f64>>,
    altitudes: Vec<Option<f64>>,
    speeds: Vec<Option<f64>>,
    headings: Vec<Option<f64>>,
    batteries: Vec<Option<f64>>,
    apps: Vec<Option<&'static str>>,
}

impl UpsertRows {
    fn new(locations: &[Location]) -> Result<Self, DbError> {
        let mut rows = UpsertRows {
            ids: Vec::with_capacity(locations.len()),
            person_ids: Vec::with_capacity(locations.len()),
            latitudes: Vec::with_capacity(locations.len()),
            longitudes: Vec::with_capacity(locations.len()),
            times: Vec::with_capacity(locations.len()),
            accuracies: Vec::with_capacity(locations.len()),
            altitudes: Vec::with_capacity(locations.len()),
            speeds: Vec::with_capacity(locations.len()),
            headings: Vec::with_capacity(locations.len()),
            batteries: Vec::with_capacity(locations.len()),
            apps: Vec::with_capacity(locations.len()),
        };
        for l in locations {
            rows.ids.push(l.id);
            rows.person_ids.push(l.person_id);
            rows.latitudes.push(stored_coordinate(l.latitude));
            rows.longitudes.push(stored_coordinate(l.longitude));
            rows.times.push(to_timestamp(to_micros(l.creation_time))?);
            rows.accuracies.push(l.accuracy_m);
            let t = &l.telemetry;
            rows.altitudes.push(t.altitude_m);
            rows.speeds.push(t.speed_mps);
            rows.headings.push(t.heading_deg);
            rows.batteries.push(t.battery_pct);
            rows.apps.push(t.app.map(App::as_str));
        }
        Ok(rows)
    }
}

#[async_trait]
impl LocationStore for PostgresLocationStore {
    async fn upsert(&self, locations: &[Location]) -> Result<()> {
        if locations.is_empty() {
            return Ok(());
        }
        let rows = UpsertRows::new(locations).map_err(DbError::into_error)?;
        // Idempotent: rows already stored are left as they are.
        self.pg.retrying(|| self.try_upsert(&rows)).await
    }

    async fn get(&self, id: LocationId) -> Result<Option<Location>> {
        Ok(self.select("WHERE id = $1", &[&id]).await?.pop())
    }

    async fn in_window(&self, window: Window, person: Option<PersonId>) -> Result<Vec<Location>> {
        let (start, end) = (window_bound(window.start), window_bound(window.end));
        match person {
            Some(p) => {
                self.select(
                    "WHERE person_id = $1 AND creation_time >= $2 AND creation_time < $3
                     ORDER BY creation_time, id",
                    &[&p, &start, &end],
                )
                .await
            }
            None => {
                self.select(
                    "WHERE creation_time >= $1 AND creation_time < $2 ORDER BY creation_time, id",
                    &[&start, &end],
                )
                .await
            }
        }
    }

    async fn scan(&self, range: LocationScan) -> Result<Vec<Location>> {
        let limit = crate::sql_limit(range.limit);
        self.select(
            "WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3",
            &[&range.after, &range.until, &limit],
        )
        .await
    }

    async fn id_range(&self) -> Result<Option<(LocationId, LocationId)>> {
        let rows = self.pg.query(crate::LOCATION_ID_RANGE, &[]).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let low: Option<i64> = row.try_get(0).map_err(|e| pg_error(&e))?;
        let high: Option<i64> = row.try_get(1).map_err(|e| pg_error(&e))?;
        Ok(low.zip(high))
    }

    async fn max_leased_id(&self) -> Result<Option<LocationId>> {
        let rows = self.pg.query(crate::MAX_LEASED_ID, &[&FIX_ID_BASE]).await?;
        match rows.first() {
            Some(row) => row.try_get(0).map_err(|e| pg_error(&e)),
            None => Ok(None),
        }
    }

    async fn near(&self, q: NearQuery) -> Result<Near> {
        self.pg.retrying(|| self.try_near(&q)).await
    }

    async fn near_tracks(&self, q: &TrackQuery, reach_m: f64) -> Result<NearTracks> {
        self.pg.retrying(|| self.try_near_tracks(q, reach_m)).await
    }

    async fn clear(&self) -> Result<()> {
        self.pg.query("TRUNCATE location", &[]).await.map(|_| ())
    }

    async fn delete_person(&self, person: PersonId) -> Result<u64> {
        let rows = self
            .pg
            .query(
                "WITH gone AS (DELETE FROM location WHERE person_id = $1 RETURNING 1),
                      rejected AS (DELETE FROM location_rejected WHERE person_id = $1)
                 SELECT count(*) FROM gone",
                &[&person],
            )
            .await?;
        count_of(&rows)
    }

    async fn person_page(
        &self,
        person: PersonId,
        after: Option<(Micros, LocationId)>,
        limit: usize,
    ) -> Result<Vec<Location>> {
        let (time, id) = after.unwrap_or((Micros::MIN, LocationId::MIN));
        // Through the (person, time) index, each page from where the last stopped.
        self.select(
            "WHERE person_id = $1 AND (creation_time, id) > ($2, $3)
             ORDER BY creation_time, id LIMIT $4",
            &[&person, &window_bound(time), &id, &crate::sql_limit(limit)],
        )
        .await
    }

    async fn delete_before(&self, cut: Micros, limit: usize) -> Result<u64> {
        // Ids first, oldest first, through the time index: each statement locks at most
        // `limit` rows, and ingest's inserts never wait on it.
        let (cut, limit) = (window_bound(cut), crate::sql_limit(limit));
        let rows = self
            .pg
            .query(
                "WITH gone AS (
                     DELETE FROM location WHERE id IN (SELECT id FROM location
                         WHERE creation_time < $1 ORDER BY creation_time LIMIT $2)
                     RETURNING 1),
                 rejected AS (
                     DELETE FROM location_rejected WHERE id IN (SELECT id FROM location_rejected
                         WHERE creation_time < $1 LIMIT $2)
                     RETURNING 1)
                 SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM rejected)",
                &[&cut, &limit],
            )
            .await?;
        count_of(&rows)
    }

    async fn count(&self) -> Result<u64> {
        let rows = self.pg.query("SELECT count(*) FROM location", &[]).await?;
        count_of(&rows)
    }

    async fn ping(&self) -> Result<()> {
        self.pg.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_radius_covers_the_distance_and_stays_finite() {
        for d in [0.001, 1.0, 5.0, 1000.0] {
            assert!(search_radius_m(d) > d + 0.4);
        }
        assert!(search_radius_m(f64::NAN) > 0.0);
        assert!(search_radius_m(-3.0) > 0.0);
        assert!(search_radius_m(f64::INFINITY).is_finite());
    }

    #[test]
    fn the_gap_clause_is_only_in_the_gap_statement() {
        assert!(near_sql(true).contains("$5"));
        assert!(!near_sql(false).contains("$5"));
    }
}

use std::path::Path;

use async_trait::async_trait;
use rusqlite::{params, Row};
use udaconnect_core::model::{Location, LocationId, PersonId, Telemetry};
use udaconnect_core::ports::{LocationScan, LocationStore};
use udaconnect_core::record::FIX_ID_BASE;
use udaconnect_core::time::{from_micros, to_micros, Micros, Window};
use udaconnect_core::tracker::App;
use udaconnect_core::Result;

use crate::stored_coordinate;

const SCHEMA: &str = include_str!("../../migrations/sqlite/locations.sql");
/// What came after `SCHEMA`, applied once each (numbered as PostgreSQL's migrations).
const STEPS: &[(i64, &str)] = &[
    (
        14,
        include_str!("../../migrations/sqlite/0014_location_accuracy.sql"),
    ),
    (
        17,
        include_str!("../../migrations/sqlite/0017_location_telemetry.sql"),
    ),
];
const COLUMNS: &str = "id, person_id, latitude, longitude, creation_time, accuracy_m, \
                       altitude_m, speed_mps, heading_deg, battery_pct, app";

/// Locations in their own SQLite file.
#[derive(Clone)]
pub struct SqliteLocationStore {
    db: super::Db,
}

impl SqliteLocationStore {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let db = super::Db::open(path, SCHEMA)?;
        db.migrate(STEPS)?;
        Ok(SqliteLocationStore { db })
    }
}

/// Asks the kernel to read the whole file into its cache, in the background. Read page by page
/// from a cold disk, a full scan's B-tree pages arrive one small read at a time (the table's
/// pages lie between its indexes'), where the file read in large sequential requests takes a
/// fraction of that. Only a hint: errors are ignored.
#[cfg(target_os = "linux")]
fn read_ahead(path: &Path) {
    let Ok(file) = std::fs::File::open(path) else {
        return;
    };
    // Off the caller's thread: the kernel may block while it queues a large file's reads.
    let _ = std::thread::Builder::new()
        .name("sqlite-read-ahead".into())
        .spawn(move || rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::WillNeed));
}

#[cfg(not(target_os = "linux"))]
fn read_ahead(_: &Path) {}

fn location(row: &Row<'_>) -> rusqlite::Result<Location> {
    Ok(Location {
        id: row.get(0)?,
        person_id: row.get(1)?,
        latitude: row.get(2)?,
        longitude: row.get(3)?,
        creation_time: from_micros(row.get(4)?),
        accuracy_m: row.get(5)?,
        telemetry: Telemetry {
            altitude_m: row.get(6)?,
            speed_mps: row.get(7)?,
            heading_deg: row.get(8)?,
            battery_pct: row.get(9)?,
            // Read in place (no string per row); anything but a known name is no app.
            app: row
                .get_ref(10)?
                .as_str_or_null()
                .ok()
                .flatten()
                .and_then(App::parse),
        },
    })
}

#[async_trait]
impl LocationStore for SqliteLocationStore {
    async fn upsert(&self, locations: &[Location]) -> Result<()> {
        if locations.is_empty() {
            return Ok(());
        }
        let rows: Vec<(i64, i64, f64, f64, i64, Option<f64>, Telemetry)> = locations
            .iter()
            .map(|l| {
                (
                    l.id,
                    l.person_id,
                    stored_coordinate(l.latitude),
                    stored_coordinate(l.longitude),
                    to_micros(l.creation_time),
                    l.accuracy_m,
                    l.telemetry,
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO location ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (id) DO NOTHING"
        );
        self.db
            .execute_each(sql, rows, |stmt, r| {
                let t = &r.6;
                stmt.execute(params![
                    r.0,
                    r.1,
                    r.2,
                    r.3,
                    r.4,
                    r.5,
                    t.altitude_m,
                    t.speed_mps,
                    t.heading_deg,
                    t.battery_pct,
                    t.app.map(App::as_str),
                ])
            })
            .await
    }

    async fn get(&self, id: LocationId) -> Result<Option<Location>> {
        let sql = format!("SELECT {COLUMNS} FROM location WHERE id = ?1");
        self.db.row_by_id(sql, id, location).await
    }

    async fn in_window(&self, window: Window, person: Option<PersonId>) -> Result<Vec<Location>> {
        self.db
            .read(move |c| match person {
                Some(p) => c
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM location
                         WHERE person_id = ?1 AND creation_time >= ?2 AND creation_time < ?3
                         ORDER BY creation_time, id"
                    ))?
                    .query_map(params![p, window.start, window.end], location)?
                    .collect(),
                None => c
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM location
                         WHERE creation_time >= ?1 AND creation_time < ?2
                         ORDER BY creation_time, id"
                    ))?
                    .query_map(params![window.start, window.end], location)?
                    .collect(),
            })
            .await
    }

    fn will_scan_all(&self) {
        read_ahead(self.db.path());
    }

    async fn scan(&self, range: LocationScan) -> Result<Vec<Location>> {
        // Sized up front: a large page grown by doubling leaves its smaller copies free in the
        // reading thread's heap.
        let capacity = range.limit.min(1 << 20);
        let limit = crate::sql_limit(range.limit);
        self.db
            .read_through(move |c| {
                c.prepare(&format!(
                    "SELECT {COLUMNS} FROM location WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3"
                ))?
                .query_map(params![range.after, range.until, limit], location)?
                .try_fold(Vec::with_capacity(capacity), |mut page, l| {
                    page.push(l?);
                    Ok(page)
                })
            })
            .await
    }

    async fn id_range(&self) -> Result<Option<(LocationId, LocationId)>> {
        self.db
            .read(|c| {
                c.query_row(crate::LOCATION_ID_RANGE, [], |r| {
                    Ok(r.get::<_, Option<i64>>(0)?.zip(r.get::<_, Option<i64>>(1)?))
                })
            })
            .await
    }

    async fn max_leased_id(&self) -> Result<Option<LocationId>> {
        self.db
            .read(|c| {
                c.query_row(crate::MAX_LEASED_ID, [FIX_ID_BASE], |r| {
                    r.get::<_, Option<i64>>(0)
                })
            })
            .await
    }

    async fn clear(&self) -> Result<()> {
        self.db
            .write(|c| c.execute("DELETE FROM location", []).map(|_| ()))
            .await
    }

    async fn delete_person(&self, person: PersonId) -> Result<u64> {
        self.db
            .erase("DELETE FROM location WHERE person_id = ?1", person)
            .await
    }

    async fn delete_before(&self, cut: Micros, limit: usize) -> Result<u64> {
        let limit = crate::sql_limit(limit);
        self.db
            .write(move |c| {
                // Removed pings leave no readable bytes in the file's free pages.
                c.pragma_update(None, "secure_delete", true)?;
                let deleted = c.execute(
                    "DELETE FROM location WHERE id IN (SELECT id FROM location
                     WHERE creation_time < ?1 ORDER BY creation_time LIMIT ?2)",
                    params![cut, limit],
                );
                c.pragma_update(None, "secure_delete", false)?;
                Ok(deleted? as u64)
            })
            .await
    }

    async fn person_page(
        &self,
        person: PersonId,
        after: Option<(Micros, LocationId)>,
        limit: usize,
    ) -> Result<Vec<Location>> {
        let (time, id) = after.unwrap_or((Micros::MIN, LocationId::MIN));
        let limit = crate::sql_limit(limit);
        // No index leads by the person here (see the schema): each page reads on through the
        // time index from where the last stopped, so a whole export reads the table once.
        self.db
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM location
                     WHERE person_id = ?1 AND (creation_time, id) > (?2, ?3)
                     ORDER BY creation_time, id LIMIT ?4"
                ))?
                .query_map(params![person, time, id, limit], location)?
                .collect()
            })
            .await
    }

    async fn count(&self) -> Result<u64> {
        self.db
            .read(|c| c.query_row("SELECT count(*) FROM location", [], |r| r.get::<_, i64>(0)))
            .await
            .map(|n| n as u64)
    }

    async fn ping(&self) -> Result<()> {
        self.db.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bundled SQLite, as an opened store runs it, has the fixes of 3.50.2.
    #[tokio::test]
    async fn an_opened_store_runs_sqlite_3_50_2_or_later() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteLocationStore::open(dir.path().join("locations.db")).unwrap();
        let version: String = store
            .db
            .read(|c| c.query_row("SELECT sqlite_version()", [], |r| r.get(0)))
            .await
            .unwrap();
        let parts: Vec<u32> = version.split('.').map(|p| p.parse().unwrap()).collect();
        assert!(parts >= vec![3, 50, 2], "sqlite {version}");
    }

    /// A file of the schema before accuracies and telemetry gets the columns once; its pings
    /// read back without them, and new pings keep theirs.
    #[tokio::test]
    async fn a_file_made_before_accuracies_is_brought_up_to_date_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locations.sqlite3");
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(SCHEMA).unwrap();
            c.execute(
                "INSERT INTO location (id, person_id, latitude, longitude, creation_time)
                 VALUES (1, 5, 10.0, 20.0, 7)",
                [],
            )
            .unwrap();
        }
        for _ in 0..2 {
            let store = SqliteLocationStore::open(&path).unwrap();
            let old = store.get(1).await.unwrap().unwrap();
            assert_eq!(
                (old.accuracy_m, old.telemetry),
                (None, Telemetry::default())
            );
        }
        let store = SqliteLocationStore::open(&path).unwrap();
        let new = Location {
            id: 2,
            person_id: 5,
            latitude: 10.0,
            longitude: 20.0,
            creation_time: from_micros(8),
            accuracy_m: Some(64.0),
            telemetry: Telemetry {
                altitude_m: Some(-3.5),
                speed_mps: Some(1.25),
                heading_deg: Some(359.5),
                battery_pct: Some(7.0),
                app: Some(App::TraccarClient),
            },
        };
        store.upsert(std::slice::from_ref(&new)).await.unwrap();
        assert_eq!(store.get(2).await.unwrap(), Some(new));
    }
}

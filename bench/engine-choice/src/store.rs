//! Workload 1: the location store. Batches of upserts keyed by id, each batch one durable
//! transaction (the consumer's shape), then reads of a one-hour window (the connection query's).

use std::path::Path;
use std::time::Instant;

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};
use rusqlite::{params, Connection};
use tokio::runtime::Runtime;
use udaconnect_core::model::Location;
use udaconnect_core::ports::LocationStore;
use udaconnect_core::time::{from_micros, to_micros, Window};
use udaconnect_store::SqliteLocationStore;

use crate::{disk_bytes, locations, mib, report, Figure, DAY_START_US, HOUR_US};

const ROWS: usize = 1_000_000;
const BATCH: usize = 8192;
/// SQLite's page cache in the store is 64 MiB (`cache_size = -65536`); redb gets the same.
const CACHE_BYTES: usize = 64 << 20;
/// The store's own schema, so the raw variant differs from it only in `synchronous`.
const SCHEMA: &str =
    include_str!("../../../crates/udaconnect-store/migrations/sqlite/locations.sql");

const ROWS_BY_ID: TableDefinition<'_, i64, [u8; 40]> = TableDefinition::new("location");
/// The time index: (time, id) -> (), as SQLite's `location_time` index points back to the row.
const BY_TIME: TableDefinition<'_, (i64, i64), ()> = TableDefinition::new("location_by_time");
/// The store's second index, `location_person_time`: (person, time, id) -> (), for one person's
/// locations in a window. Without it redb would do less work per row than SQLite does.
const BY_PERSON: TableDefinition<'_, (i64, i64, i64), ()> =
    TableDefinition::new("location_by_person_time");

pub fn run(rt: &Runtime, dir: &Path) -> anyhow::Result<()> {
    let data = locations(ROWS, 42);
    let windows: Vec<Window> = (0..24)
        .map(|h| Window {
            start: DAY_START_US + h * HOUR_US,
            end: DAY_START_US + (h + 1) * HOUR_US,
        })
        .collect();
    println!("\nlocation store: {ROWS} rows in batches of {BATCH}, each batch one transaction");

    let store_path = dir.join("store.sqlite3");
    let store = SqliteLocationStore::open(&store_path)?;
    let store_rate = timed_rows(|| {
        for batch in data.chunks(BATCH) {
            rt.block_on(store.upsert(batch))?;
        }
        anyhow::ensure!(rt.block_on(store.count())? == ROWS as u64, "row count");
        Ok(())
    })?;
    let store_bytes = sqlite_bytes(&store_path);

    let raw_path = dir.join("raw-normal.sqlite3");
    let raw_rate = timed_rows(|| raw_sqlite_normal(&raw_path, &data))?;
    let raw_bytes = sqlite_bytes(&raw_path);
    std::fs::remove_file(&raw_path)?;

    let redb_path = dir.join("store.redb");
    let db = redb_open(&redb_path)?;
    let redb_rate = timed_rows(|| redb_upsert(&db, &data, false))?;
    let redb_bytes = disk_bytes(&redb_path);

    let both_path = dir.join("store-both-indexes.redb");
    let both = redb_open(&both_path)?;
    let both_rate = timed_rows(|| redb_upsert(&both, &data, true))?;
    let both_bytes = disk_bytes(&both_path);
    drop(both);
    std::fs::remove_file(&both_path)?;

    report(
        "1. location store: durable upserts of 1,000,000 rows, batches of 8192",
        &[
            Figure {
                name: "SqliteLocationStore (WAL, synchronous=FULL)".into(),
                rate: store_rate,
                unit: "rows/s",
                note: format!("{:.0} MiB of files", mib(store_bytes)),
            },
            Figure {
                name: "raw rusqlite (WAL, synchronous=NORMAL)".into(),
                rate: raw_rate,
                unit: "rows/s",
                note: format!(
                    "{:.0} MiB of files; NOT durable per commit (reference)",
                    mib(raw_bytes)
                ),
            },
            Figure {
                name: "redb 4.6 (Immediate), id + time tables".into(),
                rate: redb_rate,
                unit: "rows/s",
                note: format!("{:.0} MiB of files", mib(redb_bytes)),
            },
            Figure {
                name: "redb 4.6 (Immediate), + person index".into(),
                rate: both_rate,
                unit: "rows/s",
                note: format!(
                    "{:.0} MiB of files; the same indexes as the SQLite schema",
                    mib(both_bytes)
                ),
            },
        ],
    );

    // Warm both once so neither pays for opening its readers or a first cold page.
    let probe = windows[12];
    let sqlite_rows = rt.block_on(store.in_window(probe, None))?;
    let redb_rows = redb_window(&db, probe)?;
    anyhow::ensure!(sqlite_rows == redb_rows, "engines disagree on a window");

    let mut returned = 0usize;
    let started = Instant::now();
    for w in &windows {
        returned += rt.block_on(store.in_window(*w, None))?.len();
    }
    let sqlite_ms = started.elapsed().as_secs_f64() * 1e3 / windows.len() as f64;
    anyhow::ensure!(returned == ROWS, "windows cover every row once");

    let mut returned = 0usize;
    let started = Instant::now();
    for w in &windows {
        returned += redb_window(&db, *w)?.len();
    }
    let redb_ms = started.elapsed().as_secs_f64() * 1e3 / windows.len() as f64;
    anyhow::ensure!(returned == ROWS, "windows cover every row once");

    let per_read = ROWS / windows.len();
    report(
        "1b. location store: read all rows of a 1-hour window (of 24 h), mean of 24 windows",
        &[
            Figure {
                name: "SqliteLocationStore::in_window".into(),
                rate: 1e3 / sqlite_ms,
                unit: "reads/s",
                note: format!("{sqlite_ms:.1} ms per read of ~{per_read} rows"),
            },
            Figure {
                name: "redb (time index + row lookup)".into(),
                rate: 1e3 / redb_ms,
                unit: "reads/s",
                note: format!("{redb_ms:.1} ms per read of ~{per_read} rows"),
            },
        ],
    );
    drop(store);
    drop(db);
    std::fs::remove_file(&redb_path)?;
    Ok(())
}

/// Runs `f` and returns rows per second.
fn timed_rows(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let started = Instant::now();
    f()?;
    Ok(ROWS as f64 / started.elapsed().as_secs_f64())
}

/// The database file with its WAL: what the store occupies after the load.
fn sqlite_bytes(path: &Path) -> u64 {
    let wal = path.with_extension("sqlite3-wal");
    disk_bytes(path) + disk_bytes(&wal)
}

/// The store's statement and pragmas, but `synchronous = NORMAL`: in WAL mode a commit then
/// reaches the disk only at the next checkpoint, so a power cut can lose acknowledged batches.
fn raw_sqlite_normal(path: &Path, data: &[Location]) -> anyhow::Result<()> {
    let mut c = Connection::open(path)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    c.pragma_update(None, "cache_size", -65_536)?;
    c.pragma_update(None, "temp_store", "MEMORY")?;
    c.execute_batch(SCHEMA)?;
    for batch in data.chunks(BATCH) {
        let tx = c.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO location (id, person_id, latitude, longitude, creation_time)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING",
            )?;
            for l in batch {
                stmt.execute(params![
                    l.id,
                    l.person_id,
                    l.latitude,
                    l.longitude,
                    to_micros(l.creation_time)
                ])?;
            }
        }
        tx.commit()?;
    }
    let n: i64 = c.query_row("SELECT count(*) FROM location", [], |r| r.get(0))?;
    anyhow::ensure!(n == ROWS as i64, "row count");
    Ok(())
}

fn redb_open(path: &Path) -> anyhow::Result<Database> {
    Ok(Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(path)?)
}

fn encode(l: &Location) -> [u8; 40] {
    let mut b = [0u8; 40];
    b[0..8].copy_from_slice(&l.id.to_le_bytes());
    b[8..16].copy_from_slice(&l.person_id.to_le_bytes());
    b[16..24].copy_from_slice(&l.latitude.to_le_bytes());
    b[24..32].copy_from_slice(&l.longitude.to_le_bytes());
    b[32..40].copy_from_slice(&to_micros(l.creation_time).to_le_bytes());
    b
}

fn decode(b: &[u8; 40]) -> Location {
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i * 8..i * 8 + 8]);
        w
    };
    Location {
        id: i64::from_le_bytes(word(0)),
        person_id: i64::from_le_bytes(word(1)),
        latitude: f64::from_le_bytes(word(2)),
        longitude: f64::from_le_bytes(word(3)),
        creation_time: from_micros(i64::from_le_bytes(word(4))),
    }
}

/// Upserts in batches; `person_index` also maintains the (person, time, id) table.
fn redb_upsert(db: &Database, data: &[Location], person_index: bool) -> anyhow::Result<()> {
    for batch in data.chunks(BATCH) {
        let mut tx = db.begin_write()?;
        // The default, stated so the comparison's terms are visible: fsynced on commit.
        tx.set_durability(Durability::Immediate)?;
        {
            let mut rows = tx.open_table(ROWS_BY_ID)?;
            let mut by_time = tx.open_table(BY_TIME)?;
            let mut by_person = if person_index {
                Some(tx.open_table(BY_PERSON)?)
            } else {
                None
            };
            for l in batch {
                // Keep a stored row, as the store's ON CONFLICT DO NOTHING does.
                if rows.get(l.id)?.is_none() {
                    let t = to_micros(l.creation_time);
                    rows.insert(l.id, encode(l))?;
                    by_time.insert((t, l.id), ())?;
                    if let Some(p) = by_person.as_mut() {
                        p.insert((l.person_id, t, l.id), ())?;
                    }
                }
            }
        }
        tx.commit()?;
    }
    let tx = db.begin_read()?;
    anyhow::ensure!(
        tx.open_table(ROWS_BY_ID)?.len()? == ROWS as u64
            && tx.open_table(BY_TIME)?.len()? == ROWS as u64,
        "row count"
    );
    Ok(())
}

/// Locations in `w` in (time, id) order, as `in_window` returns them.
fn redb_window(db: &Database, w: Window) -> anyhow::Result<Vec<Location>> {
    let tx = db.begin_read()?;
    let rows = tx.open_table(ROWS_BY_ID)?;
    let by_time = tx.open_table(BY_TIME)?;
    let mut out = Vec::new();
    for entry in by_time.range((w.start, i64::MIN)..(w.end, i64::MIN))? {
        let (_, id) = entry?.0.value();
        let row = rows
            .get(id)?
            .ok_or_else(|| anyhow::anyhow!("index points at a missing row {id}"))?;
        out.push(decode(&row.value()));
    }
    Ok(out)
}

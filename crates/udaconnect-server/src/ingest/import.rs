//! `udaconnect import`: persons and locations from CSV files, through the same pipeline as
//! pings (validation, person check, ids, the log, the consumer).
//!
//! Locations CSV takes the seed data's columns, `id,person_id,latitude,longitude,creation_time`,
//! or the original database's raw `x,y` in place of latitude and longitude; there the axis order
//! is repaired per row (`|y| > 90` means y is the longitude), and a row whose point still cannot
//! be a position is rejected. An empty `id` gets a new id; a given id is kept (importing the same
//! rows twice stores them once). Every rejected row is reported with its line number and reason.
//!
//! Resumable: after each batch is durable in the log, the last line handled is recorded under
//! the data directory; running the same import again continues after it.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use udaconnect_core::clock::{Clock, SystemClock};
use udaconnect_core::model::{Location, NewLocation, Person, MAX_ID};
use udaconnect_core::ports::{DynIdLeaser, DynLog, DynPersonStore};
use udaconnect_core::record::{self, DERIVED_ID_BASE, LOCATION_TOPIC};
use udaconnect_core::{validate, Error, Result};

use crate::ingest::IdAllocator;
use crate::persons::DynPersonDirectory;

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub rows: u64,
    pub accepted: u64,
    pub rejected: Vec<Rejected>,
    /// Rows whose swapped axes were put right.
    pub repaired_axes: u64,
    /// Lines skipped because an earlier run of the same import handled them.
    pub resumed_after_line: u64,
}

fn csv_err(path: &Path, e: csv::Error) -> Error {
    Error::bad_request("file", format!("{}: {e}", path.display()))
}

fn open_csv(path: &Path) -> Result<(csv::Reader<BufReader<File>>, Vec<String>)> {
    let file = File::open(path)
        .map_err(|e| Error::bad_request("file", format!("{}: {e}", path.display())))?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(BufReader::new(file));
    let headers = reader
        .headers()
        .map_err(|e| csv_err(path, e))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    Ok((reader, headers))
}

fn column(headers: &[String], name: &str) -> Option<usize> {
    headers.iter().position(|h| h == name)
}

/// Imports persons (`id,first_name,last_name,company_name`), keeping their ids.
pub async fn import_persons(path: &Path, store: &DynPersonStore) -> Result<ImportReport> {
    let (mut reader, headers) = open_csv(path)?;
    let cols: Vec<Option<usize>> = ["id", "first_name", "last_name", "company_name"]
        .iter()
        .map(|c| column(&headers, c))
        .collect();
    if let Some(missing) = ["id", "first_name", "last_name", "company_name"]
        .iter()
        .zip(&cols)
        .find(|(_, c)| c.is_none())
    {
        return Err(Error::bad_request(
            "file",
            format!("{}: no column {}", path.display(), missing.0),
        ));
    }
    let mut report = ImportReport::default();
    let mut persons = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| csv_err(path, e))?;
        let line = row.position().map_or(0, |p| p.line());
        report.rows += 1;
        let get = |i: usize| cols[i].and_then(|c| row.get(c)).unwrap_or("");
        let id = validate::path_id(get(0), "id")
            .ok()
            .filter(|id| (1..=MAX_ID).contains(id));
        match (id, validate::text_person(get(1), get(2), get(3))) {
            (Some(id), Ok(p)) => persons.push(Person {
                id,
                first_name: p.first_name,
                last_name: p.last_name,
                company_name: p.company_name,
            }),
            (None, _) => report.rejected.push(Rejected {
                line,
                reason: format!("id: '{}' is not an id", get(0)),
            }),
            (_, Err(e)) => report.rejected.push(Rejected {
                line,
                reason: e.to_string(),
            }),
        }
    }
    report.accepted = persons.len() as u64;
    store.import(persons).await?;
    Ok(report)
}

/// Where the locations import keeps its place.
pub struct LocationImport<'a> {
    pub log: &'a DynLog,
    pub ids: &'a DynIdLeaser,
    pub persons: &'a DynPersonDirectory,
    /// Directory of the resume checkpoints.
    pub state_dir: PathBuf,
    pub batch: usize,
    /// Rows timed more than this ahead of the clock are rejected, as ingest refuses them.
    pub future_skew: chrono::TimeDelta,
}

/// One location row made ready, or why not.
fn read_row(
    row: &csv::StringRecord,
    cols: &LocationColumns,
    repaired: &mut u64,
) -> std::result::Result<(Option<i64>, NewLocation), String> {
    let get = |c: Option<usize>| c.and_then(|c| row.get(c)).unwrap_or("").trim();
    let id = match get(cols.id) {
        "" => None,
        raw => match raw.parse::<i64>() {
            Ok(id) if (1..DERIVED_ID_BASE).contains(&id) => Some(id),
            _ => return Err(format!("id: '{raw}' is not an id")),
        },
    };
    let (lat, lon) = if cols.raw_axes {
        let (x, y) = (get(cols.lat), get(cols.lon));
        match (y.parse::<f64>(), x.parse::<f64>()) {
            // The original stored some rows as (lat, lon) in (x, y): a y beyond ±90 cannot be a
            // latitude, so the row is swapped.
            (Ok(yv), Ok(xv)) if udaconnect_core::geo::axes_swapped(yv, xv) => {
                *repaired += 1;
                (x, y)
            }
            _ => (y, x),
        }
    } else {
        (get(cols.lat), get(cols.lon))
    };
    let time = Some(get(cols.time)).filter(|t| !t.is_empty());
    let location =
        validate::text_location(get(cols.person), lat, lon, time).map_err(|e| e.to_string())?;
    Ok((id, location))
}

struct LocationColumns {
    id: Option<usize>,
    person: Option<usize>,
    lat: Option<usize>,
    lon: Option<usize>,
    time: Option<usize>,
    raw_axes: bool,
}

impl LocationImport<'_> {
    fn checkpoint_path(&self, path: &Path) -> PathBuf {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        self.state_dir.join(format!("{name}.{size}.line"))
    }

    fn save_checkpoint(&self, path: &Path, line: u64) -> Result<()> {
        let io = |e: std::io::Error| Error::Internal(format!("import checkpoint: {e}"));
        std::fs::create_dir_all(&self.state_dir).map_err(io)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, line.to_string()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Imports a locations CSV. `progress(bytes_read, accepted)` after each batch.
    pub async fn run(
        &self,
        path: &Path,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<ImportReport> {
        let (mut reader, headers) = open_csv(path)?;
        let raw_axes = column(&headers, "latitude").is_none() && column(&headers, "x").is_some();
        let cols = LocationColumns {
            id: column(&headers, "id"),
            person: column(&headers, "person_id"),
            lat: column(&headers, if raw_axes { "x" } else { "latitude" }),
            lon: column(&headers, if raw_axes { "y" } else { "longitude" }),
            time: column(&headers, "creation_time"),
            raw_axes,
        };
        if cols.person.is_none() || cols.lat.is_none() || cols.lon.is_none() {
            return Err(Error::bad_request(
                "file",
                format!(
                    "{}: needs columns person_id and latitude,longitude (or x,y)",
                    path.display()
                ),
            ));
        }
        let checkpoint = self.checkpoint_path(path);
        let done_through: u64 = std::fs::read_to_string(&checkpoint)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let mut report = ImportReport {
            resumed_after_line: done_through,
            ..Default::default()
        };
        let allocator = IdAllocator::new(self.ids.clone());
        let mut pending: Vec<(u64, Option<i64>, NewLocation)> = Vec::with_capacity(self.batch);
        let mut last_line = done_through;
        let mut row = csv::StringRecord::new();
        loop {
            let more = reader.read_record(&mut row).map_err(|e| csv_err(path, e))?;
            if more {
                let line = row.position().map_or(0, |p| p.line());
                if line <= done_through {
                    continue;
                }
                last_line = line;
                report.rows += 1;
                match read_row(&row, &cols, &mut report.repaired_axes) {
                    Ok((id, location)) => pending.push((line, id, location)),
                    Err(reason) => report.rejected.push(Rejected { line, reason }),
                }
            }
            if pending.len() >= self.batch
                || (!more && (!pending.is_empty() || last_line > done_through))
            {
                report.accepted += self
                    .append(&mut pending, &allocator, &mut report.rejected)
                    .await?;
                self.save_checkpoint(&checkpoint, last_line)?;
                progress(reader.position().byte(), report.accepted);
            }
            if !more {
                break;
            }
        }
        report.rejected.sort_by_key(|r| r.line);
        Ok(report)
    }

    /// Checks persons, assigns ids and appends one batch durably; returns rows appended.
    async fn append(
        &self,
        pending: &mut Vec<(u64, Option<i64>, NewLocation)>,
        allocator: &IdAllocator,
        rejected: &mut Vec<Rejected>,
    ) -> Result<u64> {
        let parsed = std::mem::take(pending);
        let person_ids: Vec<i64> = parsed.iter().map(|(_, _, l)| l.person_id()).collect();
        let missing = self.persons.missing(&person_ids).await?;
        let now = SystemClock.now();
        let (known, unknown): (Vec<_>, Vec<_>) = parsed
            .into_iter()
            .partition(|(_, _, l)| !missing.contains(&l.person_id()));
        rejected.extend(unknown.iter().map(|(line, _, l)| Rejected {
            line: *line,
            reason: format!("person_id: no person with id {}", l.person_id()),
        }));
        let (known, ahead): (Vec<_>, Vec<_>) = known
            .into_iter()
            .partition(|(_, _, l)| validate::too_far_ahead(l, now, self.future_skew).is_none());
        rejected.extend(ahead.iter().map(|(line, _, l)| Rejected {
            line: *line,
            reason: format!(
                "creation_time: {}",
                validate::too_far_ahead(l, now, self.future_skew).unwrap_or_default()
            ),
        }));
        if known.is_empty() {
            return Ok(0);
        }
        if let Some(max) = known.iter().filter_map(|(_, id, _)| *id).max() {
            self.ids.reserve_through(max).await?;
        }
        let fresh = known.iter().filter(|(_, id, _)| id.is_none()).count() as u64;
        let mut next = if fresh > 0 {
            allocator.allocate(fresh).await?
        } else {
            0
        };
        let records = known
            .iter()
            .map(|(_, id, l)| {
                let id = id.unwrap_or_else(|| {
                    next += 1;
                    next - 1
                });
                record::encode(
                    &Location {
                        id,
                        person_id: l.person_id(),
                        latitude: l.latitude(),
                        longitude: l.longitude(),
                        creation_time: l.creation_time().unwrap_or(now),
                    },
                    None,
                    now,
                )
            })
            .collect();
        self.log.append(LOCATION_TOPIC, records).await?;
        Ok(known.len() as u64)
    }
}

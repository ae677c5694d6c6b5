//! The rows of the CSV import, read from any reader: persons (`id,first_name,last_name,
//! company_name`) and locations (`id,person_id,latitude,longitude,creation_time`, or the
//! original database's raw `x,y` in place of latitude and longitude). Columns are found by
//! their header, in any case and order; rows may be short (a missing field reads as empty);
//! fields are trimmed. Lines end with LF, CRLF or a lone CR (old spreadsheet exports), and
//! rows are told by the line they start on.
//!
//! A row is read into its domain value by the rules the JSON bodies follow, or refused with a
//! reason; a file that is not CSV (or lacks a needed column) stops the import.

use std::collections::VecDeque;
use std::io::Read;

use csv::{Reader, ReaderBuilder, StringRecord};

use super::{path_id, text_location, text_person};
use crate::geo::axes_swapped;
use crate::model::{NewLocation, Person, MAX_ID};
use crate::record::FIX_ID_BASE;

/// A row read, or why not, with the line it started on (1 is the header).
#[derive(Debug, Clone, PartialEq)]
pub struct Row<T> {
    pub line: u64,
    pub read: Result<T, String>,
}

/// A location row made ready for ingest.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationRow {
    /// The id the row gives, kept on import; `None`: a new one.
    pub id: Option<i64>,
    pub location: NewLocation,
    /// The row's `x,y` were (latitude, longitude) and were put right.
    pub axes_repaired: bool,
}

/// The input as the CSV reader reads it, noting where lines end. The reader's own line count
/// knows LF only: it has a file of CR-ended lines all on line 1 (every row reported there, and
/// an import resumed after it skipping the whole file); and it places a row at the blank
/// lines before it, or on the LF of the CRLF before it.
struct LineEnds<R> {
    inner: R,
    /// Bytes passed on so far.
    read: u64,
    /// Line ends passed on and not yet counted: offset and length (LF or CR 1, CRLF 2).
    ends: VecDeque<(u64, u64)>,
    /// Line ends before the last row asked about.
    counted: u64,
    /// The last byte passed on was a CR.
    cr_last: bool,
}

impl<R: Read> Read for LineEnds<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, b) in buf[..n].iter().enumerate() {
            let at = self.read + i as u64;
            match (b, self.ends.back_mut()) {
                // An LF right after a CR ends the same line.
                (b'\n', Some(cr)) if cr.0 + 1 == at && cr.1 == 1 && self.cr_last => cr.1 = 2,
                (b'\n' | b'\r', _) => self.ends.push_back((at, 1)),
                _ => {}
            }
            self.cr_last = *b == b'\r';
        }
        self.read += n as u64;
        Ok(n)
    }
}

impl<R> LineEnds<R> {
    /// The line of the row the reader places at `byte`, asked of increasing offsets. A row
    /// never starts with a line end: one there is a blank line the reader skipped.
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut start = byte;
        while let Some(&(at, len)) = self.ends.front() {
            if at > start {
                break;
            }
            self.ends.pop_front();
            self.counted += 1;
            start = start.max(at + len);
        }
        self.counted + 1
    }
}

/// A CSV reader and its headers, case-folded.
struct Table<R> {
    reader: Reader<LineEnds<R>>,
    headers: Vec<String>,
    row: StringRecord,
}

impl<R: Read> Table<R> {
    fn new(input: R) -> Result<Self, String> {
        let mut reader = ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(LineEnds {
                inner: input,
                read: 0,
                ends: VecDeque::new(),
                counted: 0,
                cr_last: false,
            });
        let headers = reader
            .headers()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        Ok(Table {
            reader,
            headers,
            row: StringRecord::new(),
        })
    }

    fn column(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == name)
    }

    /// The next row's line, or `None` at the end.
    fn advance(&mut self) -> Result<Option<u64>, String> {
        match self.reader.read_record(&mut self.row) {
            Ok(true) => {
                let byte = self.row.position().map_or(0, |p| p.byte());
                Ok(Some(self.reader.get_mut().line_at(byte)))
            }
            Ok(false) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn get(&self, column: Option<usize>) -> &str {
        column.and_then(|c| self.row.get(c)).unwrap_or("").trim()
    }
}

/// The persons of a persons CSV, row by row.
pub struct PersonRows<R> {
    table: Table<R>,
    /// id, first_name, last_name, company_name.
    cols: [Option<usize>; 4],
    /// The optional `email` column: the person's attendee account.
    email: Option<usize>,
}

const PERSON_COLUMNS: [&str; 4] = ["id", "first_name", "last_name", "company_name"];

impl<R: Read> PersonRows<R> {
    /// Reads the header; every column of a person is needed.
    pub fn new(input: R) -> Result<Self, String> {
        let table = Table::new(input)?;
        let cols = PERSON_COLUMNS.map(|c| table.column(c));
        if let Some((name, _)) = PERSON_COLUMNS.iter().zip(&cols).find(|(_, c)| c.is_none()) {
            return Err(format!("no column {name}"));
        }
        let email = table.column("email");
        Ok(PersonRows { table, cols, email })
    }

    /// The address in the current row's `email` column, checked: `None` when the file has no
    /// such column or the cell is blank.
    pub fn email(&self) -> Option<crate::Result<crate::auth::Email>> {
        let cell = self.table.get(self.email).trim();
        (self.email.is_some() && !cell.is_empty()).then(|| crate::auth::Email::parse(cell))
    }

    /// The next row, `None` at the end; an error when the rest is not CSV.
    pub fn next_row(&mut self) -> Result<Option<Row<Person>>, String> {
        let Some(line) = self.table.advance()? else {
            return Ok(None);
        };
        let [id, first, last, company] = self.cols.map(|c| self.table.get(c));
        let read = match path_id(id, "id")
            .ok()
            .filter(|id| (1..=MAX_ID).contains(id))
        {
            None => Err(format!("id: '{id}' is not an id")),
            Some(id) => text_person(first, last, company)
                .map(|p| Person {
                    id,
                    first_name: p.first_name,
                    last_name: p.last_name,
                    company_name: p.company_name,
                })
                .map_err(|e| e.to_string()),
        };
        Ok(Some(Row { line, read }))
    }
}

/// The locations of a locations CSV, row by row.
pub struct LocationRows<R> {
    table: Table<R>,
    id: Option<usize>,
    person: Option<usize>,
    lat: Option<usize>,
    lon: Option<usize>,
    time: Option<usize>,
    raw_axes: bool,
}

impl<R: Read> LocationRows<R> {
    /// Reads the header; person_id and latitude,longitude (or x,y) are needed.
    pub fn new(input: R) -> Result<Self, String> {
        let table = Table::new(input)?;
        let raw_axes = table.column("latitude").is_none() && table.column("x").is_some();
        let (lat, lon) = if raw_axes {
            ("x", "y")
        } else {
            ("latitude", "longitude")
        };
        let rows = LocationRows {
            id: table.column("id"),
            person: table.column("person_id"),
            lat: table.column(lat),
            lon: table.column(lon),
            time: table.column("creation_time"),
            raw_axes,
            table,
        };
        if rows.person.is_none() || rows.lat.is_none() || rows.lon.is_none() {
            return Err("needs columns person_id and latitude,longitude (or x,y)".into());
        }
        Ok(rows)
    }

    /// Whether the file has the original's raw `x,y` columns.
    pub fn raw_axes(&self) -> bool {
        self.raw_axes
    }

    /// Bytes read so far.
    pub fn byte(&self) -> u64 {
        self.table.reader.position().byte()
    }

    /// The next row, `None` at the end; an error when the rest is not CSV.
    pub fn next_row(&mut self) -> Result<Option<Row<LocationRow>>, String> {
        let Some(line) = self.table.advance()? else {
            return Ok(None);
        };
        Ok(Some(Row {
            line,
            read: self.read(),
        }))
    }

    fn read(&self) -> Result<LocationRow, String> {
        let get = |c| self.table.get(c);
        let id = match get(self.id) {
            "" => None,
            raw => match raw.parse::<i64>() {
                Ok(id) if (1..FIX_ID_BASE).contains(&id) => Some(id),
                _ => return Err(format!("id: '{raw}' is not an id")),
            },
        };
        let (mut lat, mut lon) = (get(self.lat), get(self.lon));
        let mut axes_repaired = false;
        if self.raw_axes {
            // The original stored points as (longitude, latitude) in (x, y), and some rows as
            // (latitude, longitude): a y beyond ±90 cannot be a latitude, so the row is swapped.
            axes_repaired = matches!(
                (lon.parse::<f64>(), lat.parse::<f64>()),
                (Ok(y), Ok(x)) if axes_swapped(y, x)
            );
            if !axes_repaired {
                std::mem::swap(&mut lat, &mut lon);
            }
        }
        let time = Some(get(self.time)).filter(|t| !t.is_empty());
        let location =
            text_location(get(self.person), lat, lon, time).map_err(|e| e.to_string())?;
        Ok(LocationRow {
            id,
            location,
            axes_repaired,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(csv: &str) -> Vec<u64> {
        let mut rows = LocationRows::new(csv.as_bytes()).unwrap();
        std::iter::from_fn(|| rows.next_row().unwrap())
            .map(|r| r.line)
            .collect()
    }

    /// Rows are told by the line they start on, whichever way lines end; a quoted line break
    /// is a line too.
    #[test]
    fn rows_are_told_by_their_line_under_any_line_end() {
        let header = "person_id,latitude,longitude";
        for end in ["\n", "\r\n", "\r"] {
            let csv = [header, "1,2,3", "", "4,5,6", "7,\"8", "\",9", "1,1,1"].join(end);
            assert_eq!(lines(&csv), [2, 4, 5, 7], "lines ending {end:?}");
        }
        assert_eq!(lines("person_id,latitude,longitude\r\r\n1,2,3\r\n"), [3]);
    }

    /// The original's raw x,y are read as (longitude, latitude), a swapped row put right.
    #[test]
    fn raw_axes_are_put_in_order() {
        let csv = "person_id,x,y\n1,-122.5,37.5\n1,37.5,-122.5\n1,200,200\n";
        let mut rows = LocationRows::new(csv.as_bytes()).unwrap();
        assert!(rows.raw_axes());
        let read: Vec<_> = std::iter::from_fn(|| rows.next_row().unwrap())
            .map(|r| {
                r.read.map(|l| {
                    (
                        l.location.latitude(),
                        l.location.longitude(),
                        l.axes_repaired,
                    )
                })
            })
            .collect();
        assert_eq!(read[0], Ok((37.5, -122.5, false)));
        assert_eq!(read[1], Ok((37.5, -122.5, true)));
        assert!(
            read[2].as_ref().is_err_and(|e| e.contains("latitude")),
            "{read:?}"
        );
    }
}

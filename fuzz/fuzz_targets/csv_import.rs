//! The CSV import's rows, persons and locations, from any file. Checked against a reading of
//! the same CSV made here: the import stops exactly where the file stops being CSV, and each
//! row is the ping (or person) HTTP makes of its fields sent as JSON strings, with the
//! original's raw `x,y` put in order; what the import acknowledges is stored.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use udaconnect_core::geo::axes_swapped;
use udaconnect_core::model::MAX_ID;
use udaconnect_core::record::FIX_ID_BASE;
use udaconnect_core::validate::{self, LocationRows, PersonRows, Row};
use udaconnect_fuzz::{acknowledge, MESSAGE_SLACK};

fuzz_target!(|data: &[u8]| {
    let table = Table::read(data);
    check_locations(data, &table);
    check_persons(data, &table);
});

/// The file as a CSV reader with the import's settings reads it: case-folded headers, then
/// each record's fields by header, until the end or the first error.
struct Table {
    headers: Option<Vec<String>>,
    records: Vec<HashMap<String, String>>,
    /// Whether reading stopped at an error before the end.
    broken: bool,
}

impl Table {
    fn read(data: &[u8]) -> Table {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(data);
        let Ok(headers) = reader.headers() else {
            return Table {
                headers: None,
                records: Vec::new(),
                broken: true,
            };
        };
        let headers: Vec<String> = headers.iter().map(|h| h.to_ascii_lowercase()).collect();
        let mut records = Vec::new();
        let mut broken = false;
        for record in reader.records() {
            let Ok(record) = record else {
                broken = true;
                break;
            };
            let mut fields = HashMap::new();
            // The first column of a name wins, as the import finds columns.
            for (h, v) in headers.iter().zip(record.iter()) {
                fields
                    .entry(h.clone())
                    .or_insert_with(|| v.trim().to_string());
            }
            records.push(fields);
        }
        Table {
            headers: Some(headers),
            records,
            broken,
        }
    }

    fn has(&self, column: &str) -> bool {
        self.headers
            .as_ref()
            .is_some_and(|h| h.iter().any(|c| c == column))
    }
}

fn field<'a>(record: &'a HashMap<String, String>, name: &str) -> &'a str {
    record.get(name).map_or("", String::as_str)
}

/// The rows of one kind read to the end, as the import reads them: each row, and whether it
/// stopped at an error.
fn drain<T>(mut next: impl FnMut() -> Result<Option<Row<T>>, String>) -> (Vec<Row<T>>, bool) {
    let mut rows = Vec::new();
    loop {
        match next() {
            Ok(Some(row)) => rows.push(row),
            Ok(None) => return (rows, false),
            Err(e) => {
                assert!(!e.is_empty());
                return (rows, true);
            }
        }
    }
}

/// Rows start on increasing lines after the header, one row per record, and stop where the
/// file stops being CSV; reasons are bounded.
fn check_rows<T>(data: &[u8], table: &Table, rows: &[Row<T>], broken: bool) {
    assert_eq!(rows.len(), table.records.len());
    assert_eq!(broken, table.broken);
    // A line ends with LF, CRLF or a lone CR.
    let line_ends = data
        .iter()
        .zip(data.iter().skip(1).chain([&b'\0']))
        .filter(|(b, next)| **b == b'\n' || (**b == b'\r' && **next != b'\n'))
        .count() as u64;
    let mut last = 1;
    for row in rows {
        assert!(
            row.line > last && row.line <= line_ends + 1,
            "line {}",
            row.line
        );
        last = row.line;
        if let Err(reason) = &row.read {
            assert!(!reason.is_empty());
            assert!(reason.len() <= data.len() + MESSAGE_SLACK, "{reason}");
        }
    }
}

fn check_locations(data: &[u8], table: &Table) {
    let raw_axes = !table.has("latitude") && table.has("x");
    let (lat, lon) = if raw_axes {
        ("x", "y")
    } else {
        ("latitude", "longitude")
    };
    let mut rows = match LocationRows::new(data) {
        Ok(rows) => rows,
        Err(e) => {
            assert!(!e.is_empty());
            assert!(
                table.headers.is_none()
                    || !(table.has("person_id") && table.has(lat) && table.has(lon))
            );
            return;
        }
    };
    assert_eq!(rows.raw_axes(), raw_axes);
    let (read, broken) = drain(|| rows.next_row());
    check_rows(data, table, &read, broken);
    for (row, record) in read.iter().zip(&table.records) {
        let id = field(record, "id");
        let want_id = match id {
            "" => None,
            raw => match raw.parse::<i64>() {
                Ok(id) if (1..FIX_ID_BASE).contains(&id) => Some(id),
                _ => {
                    assert_eq!(row.read, Err(format!("id: '{raw}' is not an id")));
                    continue;
                }
            },
        };
        // The original's x is the longitude, y the latitude, unless the row is swapped.
        let (mut x, mut y) = (field(record, lat), field(record, lon));
        let repaired = raw_axes
            && matches!((y.parse::<f64>(), x.parse::<f64>()), (Ok(yv), Ok(xv)) if axes_swapped(yv, xv));
        if raw_axes && !repaired {
            std::mem::swap(&mut x, &mut y);
        }
        let mut body = Map::new();
        body.insert("person_id".into(), field(record, "person_id").into());
        body.insert("latitude".into(), x.into());
        body.insert("longitude".into(), y.into());
        let time = field(record, "creation_time");
        if !time.is_empty() {
            body.insert("creation_time".into(), time.into());
        }
        let http = validate::new_location(&Value::Object(body));
        match (&row.read, &http) {
            (Ok(r), Ok(ping)) => {
                assert_eq!(&r.location, ping);
                assert_eq!(r.id, want_id);
                assert_eq!(r.axes_repaired, repaired);
                acknowledge(ping, want_id.unwrap_or(1));
            }
            (Err(reason), Err(e)) => assert_eq!(reason, &e.to_string()),
            _ => panic!("the import reads {:?}, HTTP {http:?}", row.read),
        }
    }
}

fn check_persons(data: &[u8], table: &Table) {
    let mut rows = match PersonRows::new(data) {
        Ok(rows) => rows,
        Err(e) => {
            assert!(!e.is_empty());
            let named = ["id", "first_name", "last_name", "company_name"]
                .iter()
                .all(|c| table.has(c));
            assert!(table.headers.is_none() || !named, "{e}");
            return;
        }
    };
    let (read, broken) = drain(|| rows.next_row());
    check_rows(data, table, &read, broken);
    for (row, record) in read.iter().zip(&table.records) {
        let id = field(record, "id");
        let (first, last, company) = (
            field(record, "first_name"),
            field(record, "last_name"),
            field(record, "company_name"),
        );
        let valid_id = validate::path_id(id, "id")
            .ok()
            .filter(|id| (1..=MAX_ID).contains(id));
        match (&row.read, valid_id) {
            (Ok(p), Some(id)) => {
                assert_eq!(p.id, id);
                assert_eq!(
                    [&p.first_name, &p.last_name, &p.company_name],
                    [first, last, company]
                );
                assert!(validate::text_person(first, last, company).is_ok());
            }
            (Err(reason), None) => assert_eq!(reason, &format!("id: '{id}' is not an id")),
            (Err(reason), Some(_)) => {
                let e = validate::text_person(first, last, company).expect_err(reason);
                assert_eq!(reason, &e.to_string());
            }
            (Ok(p), None) => panic!("a person with id '{id}' imported: {p:?}"),
        }
    }
}

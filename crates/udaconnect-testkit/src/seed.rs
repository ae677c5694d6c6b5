//! The demo data in `data/seed` (the original UdaConnect's seed, normalised), as domain
//! types: five persons (ids 1, 5, 6, 8, 9) and their 39 locations in 2020.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use udaconnect_core::model::{Location, Person};
use udaconnect_core::time::parse_timestamp;

use crate::local::repo_root;

pub fn dir() -> PathBuf {
    repo_root().join("data/seed")
}

fn records(file: &str) -> Vec<csv::StringRecord> {
    let path = dir().join(file);
    csv::Reader::from_path(&path)
        .and_then(|mut r| r.records().collect())
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `persons.csv`.
pub fn persons() -> Vec<Person> {
    records("persons.csv")
        .iter()
        .map(|r| Person {
            id: r[0].parse().expect("person id"),
            first_name: r[1].to_string(),
            last_name: r[2].to_string(),
            company_name: r[3].to_string(),
        })
        .collect()
}

/// `(id, person_id, a, b, time)` rows of a seed file: latitude, longitude in `locations.csv`,
/// the original's x, y in `locations_raw_axes.csv`.
pub fn rows(file: &str) -> Vec<(i64, i64, f64, f64, DateTime<Utc>)> {
    records(file)
        .iter()
        .map(|r| {
            (
                r[0].parse().expect("id"),
                r[1].parse().expect("person id"),
                r[2].parse().expect("coordinate"),
                r[3].parse().expect("coordinate"),
                parse_timestamp(&r[4]).expect("creation time"),
            )
        })
        .collect()
}

/// `locations.csv`.
pub fn locations() -> Vec<Location> {
    rows("locations.csv")
        .into_iter()
        .map(
            |(id, person_id, latitude, longitude, creation_time)| Location {
                id,
                person_id,
                latitude,
                longitude,
                creation_time,
                accuracy_m: None,
                telemetry: Default::default(),
            },
        )
        .collect()
}

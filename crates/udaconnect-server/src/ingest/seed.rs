//! The original demo data (5 persons, 39 locations), loaded with its original ids.
//!
//! Persons go to person-api's store; locations go through the log like any ping, so the
//! consumer stores them and a replay finds them.

use std::path::Path;

use serde::Deserialize;
use udaconnect_core::clock::{Clock, SystemClock};
use udaconnect_core::model::{Location, Person};
use udaconnect_core::ports::{DynIdLeaser, DynLog, DynPersonStore};
use udaconnect_core::record::LOCATION_TOPIC;
use udaconnect_core::time::parse_timestamp;
use udaconnect_core::{Error, Result};

use crate::keys::Keyring;

const PERSONS_CSV: &str = include_str!("../../../../data/seed/persons.csv");
const LOCATIONS_CSV: &str = include_str!("../../../../data/seed/locations.csv");
/// Marks a data directory whose demo data is loaded, so a restart does not load it again.
const MARKER: &str = "demo-seed.loaded";

#[derive(Deserialize)]
struct LocationRow {
    id: i64,
    person_id: i64,
    latitude: f64,
    longitude: f64,
    creation_time: String,
}

pub fn persons() -> Result<Vec<Person>> {
    csv::Reader::from_reader(PERSONS_CSV.as_bytes())
        .deserialize()
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Internal(format!("seed persons: {e}")))
}

pub fn locations() -> Result<Vec<Location>> {
    let mut out = Vec::new();
    for row in csv::Reader::from_reader(LOCATIONS_CSV.as_bytes()).deserialize::<LocationRow>() {
        let row = row.map_err(|e| Error::Internal(format!("seed locations: {e}")))?;
        out.push(Location {
            id: row.id,
            person_id: row.person_id,
            latitude: row.latitude,
            longitude: row.longitude,
            creation_time: parse_timestamp(&row.creation_time).map_err(Error::Internal)?,
            accuracy_m: None,
            telemetry: Default::default(),
        });
    }
    Ok(out)
}

/// Loads the demo data once per data directory. Every step is idempotent (persons are upserted
/// by id, locations carry their ids through the log), so a crash half-way is repaired by the
/// next start.
pub async fn load_once(
    data_dir: &Path,
    persons_store: &DynPersonStore,
    log: &DynLog,
    ids: &DynIdLeaser,
    keys: &Keyring,
) -> Result<bool> {
    let marker = data_dir.join(MARKER);
    if marker.exists() {
        return Ok(false);
    }
    let persons = persons()?;
    let locations = locations()?;
    persons_store.import(persons).await?;
    if let Some(max) = locations.iter().map(|l| l.id).max() {
        ids.reserve_through(max).await?;
    }
    let now = SystemClock.now();
    let persons: Vec<i64> = locations.iter().map(|l| l.person_id).collect();
    let keys = keys.for_sealing(LOCATION_TOPIC, &persons).await?;
    // A person of the demo data erased before a crash half-way keeps no ping.
    let records = locations
        .iter()
        .filter(|l| !keys.erased(l.person_id))
        .map(|l| keys.seal(l, None, now))
        .collect::<Result<_>>()?;
    log.append(LOCATION_TOPIC, records).await?;
    std::fs::write(&marker, b"the original UdaConnect demo data is loaded\n")
        .map_err(|e| Error::Internal(format!("write {}: {e}", marker.display())))?;
    tracing::info!(locations = locations.len(), "demo data loaded");
    Ok(true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn seed_data_parses_with_sane_axes() {
        let p = super::persons().unwrap();
        assert_eq!(p.iter().map(|p| p.id).collect::<Vec<_>>(), [1, 5, 6, 8, 9]);
        assert_eq!(p[0].company_name, "Hampton, Hampton and McQuill");
        let l = super::locations().unwrap();
        assert_eq!(l.len(), 39);
        assert!(l
            .iter()
            .all(|l| l.latitude.abs() <= 90.0 && l.longitude.abs() <= 180.0));
    }
}

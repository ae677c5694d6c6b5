//! The demo's live conference: simulated attendees moving through a venue next to the
//! original demo data, their pings going through location-api like any phone's, in real time,
//! so the product always shows something happening.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use udaconnect_core::auth::Action;
use udaconnect_core::clock::{Clock, SystemClock};
use udaconnect_core::domain::FixTime;
use udaconnect_core::model::{NewLocation, NewPerson};
use udaconnect_core::ports::DynPersonStore;
use udaconnect_core::time::to_micros;
use udaconnect_core::venue::{LatLon, Venue};
use udaconnect_core::{Error, Result};
use udaconnect_sim::{Conference, SimConfig};

use crate::access::Caller;
use crate::ingest::Ingest;

const MARKER: &str = "demo-conference.json";

/// Which persons play the simulated attendees, kept so a restart reuses them.
#[derive(Debug, Serialize, Deserialize)]
struct Cast {
    seed: u64,
    person_ids: Vec<i64>,
}

/// A live simulated conference.
pub struct LiveConference {
    conference: Conference,
    person_ids: Vec<i64>,
}

impl LiveConference {
    /// Creates the attendees on first start (recorded in the data directory) and plans a
    /// conference whose day is under way now.
    pub async fn prepare(
        data_dir: &Path,
        persons: &DynPersonStore,
        attendees: u32,
    ) -> Result<Self> {
        let marker = data_dir.join(MARKER);
        let cast = match std::fs::read(&marker) {
            Ok(bytes) => serde_json::from_slice::<Cast>(&bytes)
                .map_err(|e| Error::Internal(format!("{}: {e}", marker.display())))?,
            Err(_) => {
                let plan = Conference::plan(&Self::config(1, attendees, 0));
                let mut person_ids = Vec::new();
                for p in plan.persons() {
                    let created = persons
                        .create(NewPerson {
                            first_name: p.first_name,
                            last_name: p.last_name,
                            company_name: p.company_name,
                        })
                        .await?;
                    person_ids.push(created.id);
                }
                let cast = Cast {
                    seed: 1,
                    person_ids,
                };
                let bytes =
                    serde_json::to_vec(&cast).map_err(|e| Error::Internal(e.to_string()))?;
                std::fs::write(&marker, bytes)
                    .map_err(|e| Error::Internal(format!("write {}: {e}", marker.display())))?;
                cast
            }
        };
        // The simulated day began ten hours ago, so now is mid-morning at the venue.
        let midnight = to_micros(SystemClock.now()) - 10 * 3_600_000_000;
        let config = Self::config(cast.seed, cast.person_ids.len() as u32, midnight);
        Ok(LiveConference {
            conference: Conference::plan(&config),
            person_ids: cast.person_ids,
        })
    }

    fn config(seed: u64, attendees: u32, start: i64) -> SimConfig {
        SimConfig {
            seed,
            attendees,
            days: 3650,
            start,
            ping_interval_s: 5.0,
            gps_noise_m: 1.5,
            // Next to the original demo data in San Mateo.
            origin: LatLon {
                latitude: 37.5525,
                longitude: -122.2930,
            },
            first_person_id: 0,
            ..Default::default()
        }
    }

    pub fn venue(&self) -> Venue {
        self.conference.venue.clone()
    }

    /// Sends each ping when its time comes, until `shutdown`.
    pub async fn run(self, ingest: Arc<Ingest>, mut shutdown: watch::Receiver<bool>) {
        let mut pings = self.conference.pings();
        let start = to_micros(SystemClock.now());
        let mut pending = Vec::new();
        tracing::info!(attendees = self.person_ids.len(), "demo conference running");
        while !*shutdown.borrow() {
            let Some(p) = pings.next() else { break };
            if p.t < start {
                continue;
            }
            let wait = p.t - to_micros(SystemClock.now());
            if wait > 0 {
                if !pending.is_empty() {
                    if let Err(e) = ingest
                        .accept(
                            &Caller::Open,
                            Action::PostLocationBatch,
                            std::mem::take(&mut pending),
                            true,
                        )
                        .await
                    {
                        tracing::warn!(error = %e, "demo pings not accepted");
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_micros(wait as u64)) => {}
                    _ = shutdown.changed() => break,
                }
            }
            let person_id = self.person_ids[p.person_id as usize];
            let time = FixTime::from_micros(p.t).ok();
            match NewLocation::parse(person_id, p.latitude, p.longitude, time) {
                Ok(ping) => pending.push(ping),
                Err(e) => tracing::warn!(error = %e, "demo ping not valid"),
            }
        }
    }
}

//! The ingest use case, the same for every transport (HTTP, gRPC, CSV import, the demo): check
//! that the persons exist, give each ping an id from a leased block, seal it with its person's
//! key ([`crate::keys`]), append to the log, and return once the log has it durably.
//!
//! - [`http`]: `POST /api/locations`, `POST /api/locations/batch`, `GET /api/locations/{id}`.
//! - [`grpc`]: the original `/LocationService/Create` and the v1 `LocationIngest`.
//! - [`import`]: persons and locations from CSV files.
//! - [`seed`], [`demo`]: the original demo data, and the demo's live simulated conference.
//! - [`floor`]: ids above every id in the log, where the store and the log are apart.
//! - [`trackers`]: tracker apps (OwnTracks, Traccar Client, OsmAnd) and their devices.

pub mod demo;
pub mod floor;
pub mod grpc;
pub mod http;
pub mod import;
pub mod seed;
pub mod trackers;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use tokio::sync::Mutex;
use udaconnect_core::auth::{Action, Resource};
use udaconnect_core::clock::DynClock;
use udaconnect_core::model::{Location, NewLocation};
use udaconnect_core::ports::{DynIdLeaser, DynLog};
use udaconnect_core::record::{self, LOCATION_TOPIC};
use udaconnect_core::tracker::DeviceId;
use udaconnect_core::{validate, Error, Result};

use crate::access::Caller;
use crate::http::correlation_id;
use crate::keys::{Keyring, SealingKeys};
use crate::metrics::Metrics;
use crate::persons::DynPersonDirectory;
use crate::wiring::disk::DiskGuard;

/// Ids leased per round trip to the leaser: one durable write per this many pings.
const ID_BLOCK: u64 = 4096;

/// Hands out ids from leased blocks (hi/lo).
pub struct IdAllocator {
    leaser: DynIdLeaser,
    /// The unused rest of the current block: `next..end`.
    block: Mutex<(i64, i64)>,
}

impl IdAllocator {
    pub fn new(leaser: DynIdLeaser) -> Self {
        IdAllocator {
            leaser,
            block: Mutex::new((0, 0)),
        }
    }

    /// `n` consecutive unused ids; returns the first.
    pub async fn allocate(&self, n: u64) -> Result<i64> {
        let mut block = self.block.lock().await;
        if ((block.1 - block.0) as u64) < n {
            // The rest of the old block is abandoned: gaps are harmless, reuse is not.
            let size = ID_BLOCK.max(n);
            let first = self.leaser.lease(size).await?;
            *block = (first, first + size as i64);
        }
        let first = block.0;
        block.0 += n as i64;
        Ok(first)
    }
}

/// The persons among `person_ids` no ping may name (no person has the id, or one erased
/// whose row a cache still shows: as unknown as one never created), and the keys that seal
/// the pings of the rest.
pub(crate) async fn unknown_persons(
    persons: &DynPersonDirectory,
    keyring: &Keyring,
    person_ids: &[i64],
) -> Result<(Vec<i64>, SealingKeys)> {
    let mut missing = persons.missing(person_ids).await?;
    let known: Vec<i64> = person_ids
        .iter()
        .filter(|p| !missing.contains(p))
        .copied()
        .collect();
    let keys = keyring.for_sealing(LOCATION_TOPIC, &known).await?;
    // An erased person whose row a cache still shows: as unknown as one never created.
    missing.extend(person_ids.iter().filter(|p| keys.erased(**p)));
    Ok((missing, keys))
}

/// The ingest path shared by every transport (HTTP now; gRPC and bulk calls use it too).
pub struct Ingest {
    pub persons: DynPersonDirectory,
    pub ids: IdAllocator,
    pub log: DynLog,
    /// Seals each record with its person's key.
    pub keys: Arc<Keyring>,
    pub metrics: Arc<Metrics>,
    /// Tells the time of ingest, and how far ahead of it a fix may be.
    pub clock: DynClock,
    /// Pings timed more than this after the clock are refused (a wrong phone clock).
    pub future_skew: TimeDelta,
    /// Refuses ingest while the local disk is nearly full (`None`: nothing written locally).
    pub disk: Option<Arc<DiskGuard>>,
}

impl Ingest {
    /// Checks that `caller` may post each ping (`action` names the transport's operation),
    /// validates references, assigns ids and appends to the log; returns once durable. With
    /// `indexed`, violations name items by index (`[3].person_id`), as batches do.
    pub async fn accept(
        &self,
        caller: &Caller,
        action: Action,
        pings: Vec<NewLocation>,
        indexed: bool,
    ) -> Result<Vec<Location>> {
        self.accept_from_device(caller, action, pings, indexed, None)
            .await
    }

    /// [`Self::accept`] for pings of tracker device `device` (if the credential is one): a ping
    /// with a fix time gets the id of that device and second ([`record::fix_id`]), its time
    /// cut to the second, so a copy sent again is stored once; copies within one call are
    /// appended once. Without a device, as [`Self::accept`].
    pub async fn accept_from_device(
        &self,
        caller: &Caller,
        action: Action,
        pings: Vec<NewLocation>,
        indexed: bool,
        device: Option<DeviceId>,
    ) -> Result<Vec<Location>> {
        let now = self.clock.now();
        let field = |i: usize| {
            if indexed {
                format!("[{i}].person_id")
            } else {
                "person_id".to_string()
            }
        };
        may_post(
            caller,
            action,
            pings.iter().map(|p| p.person_id()).enumerate(),
            field,
        )?;
        let person_ids: Vec<i64> = pings.iter().map(|p| p.person_id()).collect();
        let (missing, keys) = unknown_persons(&self.persons, &self.keys, &person_ids).await?;
        let mut violations: Vec<udaconnect_core::FieldViolation> = pings
            .iter()
            .enumerate()
            .filter(|(_, p)| missing.contains(&p.person_id()))
            .map(|(i, p)| {
                udaconnect_core::FieldViolation::new(
                    field(i),
                    format!("no person with id {}", p.person_id()),
                )
            })
            .collect();
        violations.extend(validate::future_violations(
            &pings,
            now,
            self.future_skew,
            indexed,
        ));
        if !violations.is_empty() {
            return Err(Error::Invalid(violations));
        }
        let devices = vec![device; pings.len()];
        self.append(pings, &devices, &keys, now).await
    }

    /// Pings of tracker devices (MQTT messages taken together), each checked on its own (its
    /// caller, its person, its time) and all appended to the log at once: a ping refused is
    /// its own answer, the others still go. `Err`: nothing was appended (the log or a store,
    /// for now).
    pub async fn accept_devices(
        &self,
        action: Action,
        items: Vec<DevicePing>,
    ) -> Result<Vec<Result<()>>> {
        let now = self.clock.now();
        let mut person_ids: Vec<i64> = items.iter().map(|i| i.ping.person_id()).collect();
        person_ids.sort_unstable();
        person_ids.dedup();
        let mut missing = self.persons.missing(&person_ids).await?;
        let known: Vec<i64> = person_ids
            .iter()
            .filter(|p| !missing.contains(p))
            .copied()
            .collect();
        let keys = self.keys.for_sealing(LOCATION_TOPIC, &known).await?;
        missing.extend(person_ids.iter().filter(|p| keys.erased(**p)));
        let mut answers = Vec::with_capacity(items.len());
        let (mut pings, mut devices) = (Vec::new(), Vec::new());
        for item in items {
            let person = item.ping.person_id();
            let checked = may_post(&item.caller, action, [(0, person)].into_iter(), |_| {
                "person_id".to_string()
            })
            .and_then(|()| match missing.contains(&person) {
                true => Err(Error::invalid(
                    "person_id",
                    format!("no person with id {person}"),
                )),
                false => Ok(()),
            })
            .and_then(|()| {
                let ahead = validate::future_violations(
                    std::slice::from_ref(&item.ping),
                    now,
                    self.future_skew,
                    false,
                );
                match ahead.is_empty() {
                    true => Ok(()),
                    false => Err(Error::Invalid(ahead)),
                }
            });
            if checked.is_ok() {
                pings.push(item.ping);
                devices.push(Some(item.device));
            }
            answers.push(checked);
        }
        if !pings.is_empty() {
            self.append(pings, &devices, &keys, now).await?;
        }
        Ok(answers)
    }

    /// Gives `pings` their ids (of their device and second where `devices` names one, else
    /// leased), seals them and appends them in one call; returns once durable. A fix a device
    /// sent twice among them is appended once, the first copy, as across calls.
    async fn append(
        &self,
        pings: Vec<NewLocation>,
        devices: &[Option<DeviceId>],
        keys: &SealingKeys,
        now: DateTime<Utc>,
    ) -> Result<Vec<Location>> {
        if let Some(disk) = &self.disk {
            disk.check()?;
        }
        let fixed: Vec<Option<(i64, DateTime<Utc>)>> = pings
            .iter()
            .zip(devices)
            .map(|(p, device)| {
                let (device, time) = ((*device)?, p.creation_time()?);
                let second = time.with_nanosecond(0).unwrap_or(time);
                Some((record::fix_id(device, second)?, second))
            })
            .collect();
        let leased = fixed.iter().filter(|f| f.is_none()).count() as u64;
        let mut next = match leased {
            0 => 0,
            n => self.ids.allocate(n).await?,
        };
        let correlation = correlation_id();
        let mut locations: Vec<Location> = pings
            .into_iter()
            .zip(fixed)
            .map(|(p, fixed)| {
                let (id, time) = fixed.unwrap_or_else(|| {
                    next += 1;
                    (next - 1, p.creation_time().unwrap_or(now))
                });
                Location {
                    id,
                    person_id: p.person_id(),
                    latitude: p.latitude(),
                    longitude: p.longitude(),
                    creation_time: time,
                    accuracy_m: p.accuracy_m(),
                    telemetry: p.telemetry(),
                }
            })
            .collect();
        if leased < locations.len() as u64 {
            let mut ids = std::collections::HashSet::with_capacity(locations.len());
            locations.retain(|l| ids.insert(l.id));
        }
        let records = locations
            .iter()
            .map(|l| keys.seal(l, correlation.as_deref(), now))
            .collect::<Result<_>>()?;
        let started = Instant::now();
        self.log.append(LOCATION_TOPIC, records).await?;
        self.metrics
            .log_append_duration
            .observe(started.elapsed().as_secs_f64());
        self.metrics
            .locations_accepted
            .inc_by(locations.len() as u64);
        Ok(locations)
    }
}

/// One tracker device's ping, as [`Ingest::accept_devices`] takes it.
pub struct DevicePing {
    pub caller: Caller,
    pub ping: NewLocation,
    pub device: DeviceId,
}

impl Ingest {
    /// Accepts a validated batch all or nothing: unknown persons are reported with the other
    /// violations, so one answer lists them all.
    pub async fn accept_batch(
        &self,
        caller: &Caller,
        action: Action,
        mut check: validate::BatchCheck,
    ) -> Result<Vec<Location>> {
        // Before anything is said of the persons: whether they exist is not for a caller who
        // may not post for them.
        may_post(
            caller,
            action,
            check.valid.iter().map(|(i, l)| (*i, l.person_id())),
            |i| format!("[{i}].person_id"),
        )?;
        let ids: Vec<i64> = check.valid.iter().map(|(_, l)| l.person_id()).collect();
        let missing = self.persons.missing(&ids).await?;
        if !missing.is_empty() {
            let unknown: Vec<(usize, i64)> = check
                .valid
                .iter()
                .filter(|(_, l)| missing.contains(&l.person_id()))
                .map(|(i, l)| (*i, l.person_id()))
                .collect();
            for (i, id) in unknown {
                check.invalid_item(i, "person_id", format!("no person with id {id}"));
            }
        }
        let now = self.clock.now();
        let ahead: Vec<(usize, String)> = check
            .valid
            .iter()
            .filter_map(|(i, l)| Some((*i, validate::too_far_ahead(l, now, self.future_skew)?)))
            .collect();
        for (i, message) in ahead {
            check.invalid_item(i, "creation_time", message);
        }
        self.accept(caller, action, check.finish()?, true).await
    }
}

/// Whether `caller` may post a ping for each person (a device only for its own): the first
/// refused item, by its field, when not.
fn may_post(
    caller: &Caller,
    action: Action,
    persons: impl Iterator<Item = (usize, i64)>,
    field: impl Fn(usize) -> String,
) -> Result<()> {
    if *caller == Caller::Open {
        return Ok(());
    }
    for (i, person) in persons {
        caller
            .may(action, Resource::Person(person))
            .map_err(|e| match e {
                Error::Forbidden(_) => Error::Forbidden(format!(
                    "{}: this credential may not post pings for person {person}",
                    field(i)
                )),
                e => e,
            })?;
    }
    Ok(())
}

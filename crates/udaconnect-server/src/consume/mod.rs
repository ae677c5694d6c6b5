//! Reading the `location` log: what a batch of records comes to (pings of known persons, and
//! records for the dead-letter topic with the reason), and the roles that read it.
//!
//! - [`poll`]: the one loop every reader of the log runs.
//! - [`consumer`]: location-consumer, which stores the pings and commits after they are durable.
//! - [`dlq`]: the dead letters read back, re-driven, and counted.
//! - [`health`]: whether location-consumer gets anywhere (partitions held, progress), for
//!   `/ready`.
//! - [`replay`]: rebuilding the location store from the log.
//! - [`follow`]: following the log without storing (a connection-api apart from the consumer).

pub mod consumer;
pub mod dlq;
pub mod follow;
pub mod health;
pub mod poll;
pub mod replay;

use udaconnect_core::envelope::Read;
use udaconnect_core::model::{Location, PersonId};
use udaconnect_core::ports::Consumed;
use udaconnect_core::record::{LogRecord, LOCATION_TOPIC};
use udaconnect_core::Result;

use crate::keys::Keyring;
use crate::persons::DynPersonDirectory;

/// What one batch of records comes to.
pub struct Sorted {
    pub locations: Vec<Location>,
    /// Keyless records of the original producers whose swapped axes were put right.
    pub axes_repaired: u64,
    /// Records that cannot be stored, with the reason header added.
    pub rejected: Vec<LogRecord>,
    /// Sealed records whose key is destroyed: their persons were erased. Skipped, counted.
    pub shredded: u64,
    /// Persons whose erasure the batch tells of: what a reader keeps of them goes. None of
    /// their pings are among `locations`.
    pub erased: Vec<PersonId>,
}

/// Decodes a batch (opening sealed records with their persons' keys) and checks its persons
/// exist.
pub async fn sort_batch(
    batch: &[Consumed],
    persons: &DynPersonDirectory,
    keys: &Keyring,
) -> Result<Sorted> {
    let known = keys.for_reading(LOCATION_TOPIC, batch).await?;
    let mut decoded = Vec::with_capacity(batch.len());
    let mut rejected = Vec::new();
    let mut axes_repaired = 0;
    let mut shredded = 0;
    let mut erased = Vec::new();
    for c in batch {
        match known.read(&c.record, c.position, LOCATION_TOPIC) {
            Ok(Read::Location(d)) => {
                axes_repaired += u64::from(d.axes_repaired);
                decoded.push((d.location, c));
            }
            Ok(Read::Shredded) => shredded += 1,
            Ok(Read::Erased(person)) => erased.push(person),
            Err(reason) => rejected.push(dead_letter(c, &reason)),
        }
    }
    // Pings before the erasure in the batch: a plaintext one (an original producer's) would
    // otherwise be stored after the person's pings were deleted.
    decoded.retain(|(l, _)| !erased.contains(&l.person_id));
    for &person in &erased {
        // This process's directory may still hold the person from before.
        persons.forget(person);
    }
    let ids: Vec<i64> = decoded.iter().map(|(l, _)| l.person_id).collect();
    let missing = persons.missing(&ids).await?;
    let mut locations = Vec::with_capacity(decoded.len());
    for (l, c) in decoded {
        if missing.contains(&l.person_id) {
            rejected.push(dead_letter(
                c,
                &format!("person_id: no person with id {}", l.person_id),
            ));
        } else {
            locations.push(l);
        }
    }
    Ok(Sorted {
        locations,
        axes_repaired,
        rejected,
        shredded,
        erased,
    })
}

fn dead_letter(c: &Consumed, reason: &str) -> LogRecord {
    let mut r = c.record.clone();
    r.headers.extend(dlq::dead_letter_headers(
        reason,
        c.position,
        chrono::Utc::now(),
    ));
    r
}

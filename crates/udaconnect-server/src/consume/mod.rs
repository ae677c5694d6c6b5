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

use udaconnect_core::model::Location;
use udaconnect_core::ports::Consumed;
use udaconnect_core::record::{self, LogRecord};
use udaconnect_core::Result;

use crate::persons::DynPersonDirectory;

/// What one batch of records comes to.
pub struct Sorted {
    pub locations: Vec<Location>,
    /// Keyless records of the original producers whose swapped axes were put right.
    pub axes_repaired: u64,
    /// Records that cannot be stored, with the reason header added.
    pub rejected: Vec<LogRecord>,
}

/// Decodes a batch and checks its persons exist.
pub async fn sort_batch(batch: &[Consumed], persons: &DynPersonDirectory) -> Result<Sorted> {
    let mut decoded = Vec::with_capacity(batch.len());
    let mut rejected = Vec::new();
    let mut axes_repaired = 0;
    for c in batch {
        match record::decode_legacy(&c.record, c.position) {
            Ok(d) => {
                axes_repaired += u64::from(d.axes_repaired);
                decoded.push((d.location, c));
            }
            Err(reason) => rejected.push(dead_letter(c, &reason)),
        }
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

//! The hand-over between the write side and the read side in one process: every batch of
//! pings stored durably (or, for a connection-api following the log, every batch read from it)
//! goes to the contact index and the venue live. Neither side knows the other; both know this.

use std::sync::Arc;

use udaconnect_core::model::{Location, PersonId};
use udaconnect_core::{Error, Result};

/// Called with every stored batch, after it is durable (the contact index follows the store).
pub type OnStored = Arc<dyn Fn(&[Location]) + Send + Sync>;

/// Called with each person whose erasure the log tells of: the read side drops what it keeps
/// of them (their pings in the contact index).
pub type OnErased = Arc<dyn Fn(PersonId) + Send + Sync>;

/// Hands each of `persons` to `on_erased`, off the runtime's threads: dropping a person
/// rebuilds the contact index.
pub async fn hand_over_erased(on_erased: &Option<OnErased>, persons: Vec<PersonId>) -> Result<()> {
    let Some(f) = on_erased.clone().filter(|_| !persons.is_empty()) else {
        return Ok(());
    };
    tokio::task::spawn_blocking(move || persons.into_iter().for_each(|p| f(p)))
        .await
        .map_err(|e| Error::Internal(format!("the erasure hook failed: {e}")))
}

/// Several receivers as one.
pub fn all(receivers: Vec<OnStored>) -> Option<OnStored> {
    match receivers.len() {
        0 => None,
        1 => receivers.into_iter().next(),
        _ => Some(Arc::new(move |batch: &[Location]| {
            for r in &receivers {
                r(batch);
            }
        })),
    }
}

/// Hands `batch` to `on_stored` off the runtime's threads, which serve requests: a receiver
/// may wait for a lock that a query holds, and the index now and then lays itself out again
/// (a second or more at millions of rows).
pub async fn hand_over(on_stored: &OnStored, batch: Vec<Location>) -> Result<()> {
    let f = on_stored.clone();
    tokio::task::spawn_blocking(move || f(&batch))
        .await
        .map_err(|e| Error::Internal(format!("the stored-batch hook failed: {e}")))
}

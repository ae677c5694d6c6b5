//! The hand-over between the write side and the read side in one process: every batch of
//! pings stored durably (or, for a connection-api following the log, every batch read from it)
//! goes to the contact index and the venue live. Neither side knows the other; both know this.

use std::sync::Arc;

use udaconnect_core::model::Location;
use udaconnect_core::{Error, Result};

/// Called with every stored batch, after it is durable (the contact index follows the store).
pub type OnStored = Arc<dyn Fn(&[Location]) + Send + Sync>;

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

//! The hand-over between the write side and the read side in one process: every batch the
//! consumer has stored durably goes to the contact index and the venue live. Neither side
//! knows the other; both know this.

use std::sync::Arc;

use udaconnect_core::model::Location;

/// Called with every stored batch, after it is durable (the contact index follows the store).
pub type OnStored = Arc<dyn Fn(&[Location]) + Send + Sync>;

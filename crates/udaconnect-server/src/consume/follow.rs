//! Following the `location` topic without storing: a connection-api running apart from the
//! consumer keeps its contact index and the venue live current this way. Its consumer group is
//! its own and never commits: it only watches.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use udaconnect_core::ports::{Consumed, DynLog, StartFrom};
use udaconnect_core::Result;

use crate::consume::poll::{self, Batches, Commit, Reader, Until};
use crate::consume::sort_batch;
use crate::feed::{hand_over, hand_over_erased, OnErased, OnStored};
use crate::keys::Keyring;
use crate::persons::DynPersonDirectory;

/// What [`follow`] reads with and hands on.
pub struct Following {
    pub persons: DynPersonDirectory,
    /// Opens sealed records.
    pub keys: std::sync::Arc<Keyring>,
    /// Every batch the consumer would store (decodable pings of known persons).
    pub on_read: OnStored,
    /// Every person whose erasure the log tells of.
    pub on_erased: OnErased,
}

/// Hands what `following` asks for, from `start`, until `shutdown`. `caught_up` is called
/// once, when the end of the log is first reached.
pub async fn follow(
    log: DynLog,
    start: StartFrom,
    following: Following,
    caught_up: impl FnOnce() + Send,
    shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let reader = Reader {
        topic: udaconnect_core::record::LOCATION_TOPIC,
        group: format!("connection-api-{}", uuid::Uuid::new_v4()),
        start,
        batch: 8192,
        wait: Duration::from_millis(200),
        linger: false,
        commit: Commit::Never,
        until: Until::Stopped,
    };
    let mut follower = Follower {
        following,
        caught_up: Some(caught_up),
    };
    poll::read(&log, &reader, &mut follower, shutdown).await
}

struct Follower<F> {
    following: Following,
    caught_up: Option<F>,
}

#[async_trait]
impl<F: FnOnce() + Send> Batches for Follower<F> {
    async fn handle(&mut self, batch: &[Consumed]) -> Result<()> {
        let f = &self.following;
        let sorted = sort_batch(batch, &f.persons, &f.keys).await?;
        hand_over(&f.on_read, sorted.locations).await?;
        hand_over_erased(&Some(f.on_erased.clone()), sorted.erased).await
    }

    fn caught_up(&mut self) {
        if let Some(f) = self.caught_up.take() {
            f();
        }
    }
}

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
use crate::feed::{hand_over, OnStored};
use crate::persons::DynPersonDirectory;

/// Hands every batch of the topic that the consumer would store (decodable pings of known
/// persons) to `on_read`, from `start`, until `shutdown`. `caught_up` is called once, when the
/// end of the log is first reached.
pub async fn follow(
    log: DynLog,
    start: StartFrom,
    persons: DynPersonDirectory,
    on_read: OnStored,
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
        persons,
        on_read,
        caught_up: Some(caught_up),
    };
    poll::read(&log, &reader, &mut follower, shutdown).await
}

struct Follower<F> {
    persons: DynPersonDirectory,
    on_read: OnStored,
    caught_up: Option<F>,
}

#[async_trait]
impl<F: FnOnce() + Send> Batches for Follower<F> {
    async fn handle(&mut self, batch: &[Consumed]) -> Result<()> {
        let sorted = sort_batch(batch, &self.persons).await?;
        hand_over(&self.on_read, sorted.locations).await
    }

    fn caught_up(&mut self) {
        if let Some(f) = self.caught_up.take() {
            f();
        }
    }
}

//! The one loop that reads a topic of the log, whoever reads it: location-consumer (store,
//! dead-letter, commit), `import`'s catch-up, replay, connection-api following the topic, and
//! the mailer on `notification`.
//! What differs between them is what a batch is for ([`Batches`]) and a few settings
//! ([`Reader`]); joining the group, polling, lingering, retrying, committing and stopping are
//! written once, here.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::watch;
use udaconnect_core::ports::{
    read_to_end, retry_delay, Consumed, DynLog, DynLogConsumer, StartFrom,
};
use udaconnect_core::Result;

/// Under load, a poll that returns fewer records than this waits for more before handling
/// them (with [`Reader::linger`]): a few milliseconds more before a ping is stored, for far
/// fewer store commits. Load shows as records already waiting when the poll is made (it
/// answers within [`WAITING_WITHIN`]); the wait lasts twice as long as handling the last
/// batch took, so handling keeps at most a third of the reader's time, up to `LINGER_MAX`.
/// Under light load every poll waits for its records, and a ping is handled as it comes.
const LINGER_BELOW: usize = 2048;
const WAITING_WITHIN: Duration = Duration::from_millis(1);
const LINGER_MAX: Duration = Duration::from_millis(20);
/// Pause after a failed poll: the log is away, and asking at once would only spin.
const POLL_RETRY: Duration = Duration::from_millis(500);

/// How a reader reads.
#[derive(Debug, Clone)]
pub struct Reader {
    /// The topic it reads (`location`, or the mailer's `notification`).
    pub topic: &'static str,
    /// Its consumer group: where a commit is kept, and which partitions it is given.
    pub group: String,
    pub start: StartFrom,
    /// Records taken per poll.
    pub batch: usize,
    /// How long a poll waits for records.
    pub wait: Duration,
    /// Wait a moment for more when a poll brings few records under load (see `LINGER_MAX`).
    pub linger: bool,
    pub commit: Commit,
    pub until: Until,
}

/// When the reader commits its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Never: the reader only watches (replay, a follower), and another group's position is
    /// untouched.
    Never,
    /// After the batches it covers are handled: at most this often while records keep
    /// coming, at once when the log goes quiet, and when the reader stops. Each commit costs
    /// the log a durable write; a batch handled twice after a crash is harmless, as handling
    /// is idempotent.
    Every(Duration),
}

/// When the reader stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// When the process stops. Every failure is retried: a role waits for its dependencies.
    Stopped,
    /// Once it has read to the end of the log (a command: import, replay). A failure ends the
    /// read with its error.
    CaughtUp,
}

/// What a reader does with what it reads.
#[async_trait]
pub trait Batches: Send {
    /// Handles one batch. An error is retried with the same batch (a batch is never skipped)
    /// or, for a read [`Until::CaughtUp`], ends it.
    async fn handle(&mut self, batch: &[Consumed]) -> Result<()>;
    /// After every poll, with the records still to read when the log knows, and the
    /// partitions this reader holds on a log whose group shares them.
    fn polled(&mut self, _lag: Option<u64>, _assigned: Option<usize>) {}
    /// Once, the first time the reader has read to the end of the log.
    fn caught_up(&mut self) {}
}

/// Reads `reader.topic` as `reader` says, handing every batch to `batches`, until
/// `shutdown` turns true or (with [`Until::CaughtUp`]) the end of the log.
pub async fn read(
    log: &DynLog,
    reader: &Reader,
    batches: &mut dyn Batches,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let one_shot = reader.until == Until::CaughtUp;
    let group = reader.group.as_str();
    let mut attempt = 0;
    let mut consumer = loop {
        match log.consumer(reader.topic, group, reader.start).await {
            Ok(c) => break c,
            Err(e) if one_shot => return Err(e),
            Err(e) => {
                tracing::warn!(group, error = %e, "cannot join the consumer group yet; retrying");
                attempt += 1;
                tokio::select! {
                    _ = tokio::time::sleep(retry_delay(attempt)) => {}
                    _ = shutdown.wait_for(|s| *s) => return Ok(()),
                }
            }
        }
    };
    tracing::info!(group, "reading the log");
    let mut committed_at = Instant::now();
    let mut uncommitted = false;
    let mut idle_since = Instant::now();
    let mut caught_up = false;
    let mut handling = Duration::ZERO;
    loop {
        let asked = Instant::now();
        let polled = tokio::select! {
            b = consumer.poll(reader.batch, reader.wait) => b,
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let were_waiting = asked.elapsed() < WAITING_WITHIN;
        // Whether to commit now: once in a while under load, at once when the log is quiet.
        let due = match polled {
            Ok(batch) if batch.is_empty() => {
                if read_to_end(consumer.lag(), idle_since.elapsed()) {
                    if !caught_up {
                        caught_up = true;
                        batches.caught_up();
                    }
                    if one_shot {
                        break;
                    }
                }
                uncommitted
            }
            Ok(mut batch) => {
                idle_since = Instant::now();
                let linger = (handling * 2).min(LINGER_MAX);
                if reader.linger && were_waiting && batch.len() < LINGER_BELOW && !linger.is_zero()
                {
                    // A stream of single pings comes a few records per poll, and every store
                    // commit costs an fsync: wait a moment for more.
                    tokio::time::sleep(linger).await;
                    if let Ok(more) = consumer
                        .poll(reader.batch - batch.len(), Duration::ZERO)
                        .await
                    {
                        batch.extend(more);
                    }
                }
                let started = Instant::now();
                let handled = handle(batches, &batch, one_shot, &shutdown).await?;
                handling = started.elapsed();
                if !handled {
                    // Not handled, so the position must not be committed past it: what was
                    // handled since the last commit is read again at start, harmlessly.
                    tracing::info!(group, "stopped reading the log");
                    return Ok(());
                }
                uncommitted = true;
                matches!(reader.commit, Commit::Every(every) if committed_at.elapsed() >= every)
            }
            Err(e) if one_shot => return Err(e),
            Err(e) => {
                tracing::warn!(group, error = %e, "polling the log failed; retrying");
                tokio::time::sleep(POLL_RETRY).await;
                false
            }
        };
        let due = due && reader.commit != Commit::Never;
        if due && commit(&mut consumer, one_shot, &shutdown).await? {
            uncommitted = false;
            committed_at = Instant::now();
        }
        batches.polled(consumer.lag(), consumer.assigned());
    }
    // Everything polled so far is handled; as the process is stopping, one attempt.
    if uncommitted && reader.commit != Commit::Never {
        commit(&mut consumer, one_shot, &shutdown).await?;
    }
    tracing::info!(group, "stopped reading the log");
    Ok(())
}

/// Handles a batch, retrying until it is handled. False when the shutdown came first and it
/// is not.
async fn handle(
    batches: &mut dyn Batches,
    batch: &[Consumed],
    one_shot: bool,
    shutdown: &watch::Receiver<bool>,
) -> Result<bool> {
    let mut attempt = 0;
    loop {
        match batches.handle(batch).await {
            Ok(()) => return Ok(true),
            Err(e) if one_shot => return Err(e),
            Err(e) if *shutdown.borrow() => {
                tracing::warn!(error = %e, "stopping with a batch not handled; it is read again at start");
                return Ok(false);
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, "handling a batch failed; retrying");
                tokio::time::sleep(retry_delay(attempt)).await;
                attempt += 1;
            }
        }
    }
}

/// Commits the position after everything polled so far, retrying; false when the shutdown
/// came first.
async fn commit(
    consumer: &mut DynLogConsumer,
    one_shot: bool,
    shutdown: &watch::Receiver<bool>,
) -> Result<bool> {
    let mut attempt = 0;
    loop {
        match consumer.commit().await {
            Ok(()) => return Ok(true),
            Err(e) if one_shot => return Err(e),
            Err(_) if *shutdown.borrow() => return Ok(false),
            Err(e) => {
                tracing::warn!(error = %e, attempt, "committing the consumer position failed; retrying");
                tokio::time::sleep(retry_delay(attempt)).await;
                attempt += 1;
            }
        }
    }
}

//! The bounds on connection-api's heavy queries (connection, contacts): how many run at once,
//! how many wait, how long one may take, and how large a connection answer may be.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::http::problem::Problem;
use crate::metrics::Metrics;

/// The limits; [`Default`] is what the command line defaults to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryLimits {
    /// A query not answered within this (waiting included) is cancelled and answered 503.
    pub deadline: Duration,
    /// Heavy queries computed at once.
    pub concurrency: usize,
    /// Heavy queries waiting for one of those places, at most; beyond, 503 at once.
    pub queue: usize,
    /// Most locations in one connection answer; a larger one is refused (422).
    pub max_connection_rows: usize,
    /// The contacts query's `max_accuracy` (metres) where the request gives none.
    pub max_accuracy_m: u32,
}

pub const DEFAULT_QUERY_DEADLINE: Duration = Duration::from_secs(15);
pub const DEFAULT_QUERY_QUEUE: usize = 64;
/// A whole day of a 1,000-attendee venue is about 100,000 locations: this answers it with room.
pub const DEFAULT_MAX_CONNECTION_ROWS: usize = 250_000;

/// One query per core: the work of a query is CPU-bound, so more at once only makes each
/// slower and holds more memory.
pub fn default_query_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            deadline: DEFAULT_QUERY_DEADLINE,
            concurrency: default_query_concurrency(),
            queue: DEFAULT_QUERY_QUEUE,
            max_connection_rows: DEFAULT_MAX_CONNECTION_ROWS,
            max_accuracy_m: udaconnect_core::track::defaults::MAX_ACCURACY_M,
        }
    }
}

/// Why a query was not answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Every place was taken and the queue full.
    Busy { concurrency: usize, queue: usize },
    /// The deadline passed first; the work was cancelled.
    Deadline(Duration),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let detail = match self {
            Refused::Busy { concurrency, queue } => format!(
                "{concurrency} queries are being answered and {queue} are waiting (the most \
                 allowed); retry after Retry-After seconds"
            ),
            Refused::Deadline(d) => format!(
                "the query was not answered within {} s and was stopped; narrow the window or \
                 the distance, or retry later",
                d.as_secs_f64()
            ),
        };
        // 503 answers carry Retry-After (see `Problem`).
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "urn:udaconnect:problem:busy",
            detail,
        )
        .into_response()
    }
}

/// Admits heavy queries within [`QueryLimits`].
pub struct QueryLimiter {
    limits: QueryLimits,
    places: Arc<Semaphore>,
    waiting: AtomicUsize,
    metrics: Arc<Metrics>,
}

impl QueryLimiter {
    pub fn new(limits: QueryLimits, metrics: Arc<Metrics>) -> Self {
        QueryLimiter {
            places: Arc::new(Semaphore::new(limits.concurrency.max(1))),
            limits,
            waiting: AtomicUsize::new(0),
            metrics,
        }
    }

    pub fn limits(&self) -> &QueryLimits {
        &self.limits
    }

    /// Runs `work` once a place is free, within the deadline (waiting included). Past the
    /// deadline `work` is dropped, which cancels what it runs (see the engines).
    pub async fn run<T>(&self, work: impl Future<Output = T>) -> Result<T, Refused> {
        let admitted = async {
            let _place = self.admit().await?;
            Ok::<T, Refused>(work.await)
        };
        match tokio::time::timeout(self.limits.deadline, admitted).await {
            Ok(answer) => answer,
            Err(_) => {
                self.refused("query_deadline");
                Err(Refused::Deadline(self.limits.deadline))
            }
        }
    }

    async fn admit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Refused> {
        if let Ok(place) = self.places.clone().try_acquire_owned() {
            return Ok(place);
        }
        let queued = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _left = Waiting(&self.waiting);
        if queued >= self.limits.queue {
            self.refused("query_busy");
            return Err(Refused::Busy {
                concurrency: self.limits.concurrency,
                queue: self.limits.queue,
            });
        }
        // The semaphore is never closed.
        self.places
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Refused::Deadline(self.limits.deadline))
    }

    pub fn refused(&self, reason: &str) {
        self.metrics
            .requests_refused
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }
}

/// Leaves the queue when dropped: admitted, refused, or the waiting request abandoned.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(concurrency: usize, queue: usize, deadline_ms: u64) -> Arc<QueryLimiter> {
        Arc::new(QueryLimiter::new(
            QueryLimits {
                deadline: Duration::from_millis(deadline_ms),
                concurrency,
                queue,
                max_connection_rows: 10,
                max_accuracy_m: udaconnect_core::track::defaults::MAX_ACCURACY_M,
            },
            Arc::new(Metrics::new()),
        ))
    }

    #[tokio::test]
    async fn beyond_the_places_and_the_queue_a_query_is_refused_at_once() {
        let limits = limiter(1, 1, 5_000);
        let (release, hold) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn({
            let limits = limits.clone();
            async move { limits.run(hold).await }
        });
        tokio::task::yield_now().await;
        while limits.places.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let waiting = tokio::spawn({
            let limits = limits.clone();
            async move { limits.run(async { 7 }).await }
        });
        while limits.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            limits.run(async { 8 }).await,
            Err(Refused::Busy {
                concurrency: 1,
                queue: 1
            })
        );
        release.send(()).unwrap();
        assert!(running.await.unwrap().is_ok());
        assert_eq!(waiting.await.unwrap(), Ok(7));
        assert_eq!(limits.waiting.load(Ordering::Acquire), 0);
        assert_eq!(limits.run(async { 9 }).await, Ok(9));
    }

    #[tokio::test]
    async fn past_the_deadline_the_work_is_dropped() {
        let limits = limiter(1, 1, 50);
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        struct Flag(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Release);
            }
        }
        let flag = Flag(dropped.clone());
        let answer = limits
            .run(async move {
                let _flag = flag;
                std::future::pending::<()>().await
            })
            .await;
        assert_eq!(answer, Err(Refused::Deadline(Duration::from_millis(50))));
        assert!(dropped.load(Ordering::Acquire));
        // The place was given back.
        assert_eq!(limits.run(async { 1 }).await, Ok(1));
    }
}

//! Waiting for what becomes true in its own time (a consumer group forming, a broker
//! starting), with a deadline that names what never came.

use std::future::Future;
use std::time::{Duration, Instant};

/// Pause between two calls of the condition: short next to any deadline, long enough not to
/// spin on a server.
const PAUSE: Duration = Duration::from_millis(50);

/// Calls `f` until it gives `Some`, and returns that; panics with `what` once `timeout` has
/// passed. `f` may wait itself (a poll with a timeout): the pause between calls is short.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(PAUSE).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn gives_the_first_value_and_calls_until_then() {
        let mut calls = 0;
        let got = eventually("the third call", Duration::from_secs(5), || {
            calls += 1;
            let now = calls;
            async move { (now == 3).then_some(now * 10) }
        })
        .await;
        assert_eq!((got, calls), (30, 3));
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for nothing")]
    async fn panics_naming_what_never_came() {
        eventually("nothing", Duration::from_millis(120), || async {
            None::<()>
        })
        .await;
    }
}

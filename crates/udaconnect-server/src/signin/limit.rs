use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys remembered at most; past it, the keys whose requests are all outside the window are
/// forgotten, and when none is, the request is refused (a flood of distinct keys cannot grow
/// memory without bound).
const MAX_KEYS: usize = 100_000;

/// At most `limit` requests per key within a sliding `window`: sign-in links per address,
/// sign-in requests per client.
pub struct WindowLimiter {
    limit: usize,
    window: Duration,
    seen: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl WindowLimiter {
    pub fn new(limit: usize, window: Duration) -> WindowLimiter {
        WindowLimiter {
            limit,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request for `key` at `now`; `Err(wait)` when the key is at its limit, with the
    /// time until its oldest request leaves the window.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let cutoff = now.checked_sub(self.window);
        let live = |t: &Instant| cutoff.is_none_or(|c| *t > c);
        if seen.len() >= MAX_KEYS && !seen.contains_key(key) {
            seen.retain(|_, times| times.back().is_some_and(live));
            if seen.len() >= MAX_KEYS {
                return Err(self.window);
            }
        }
        let times = seen.entry(key.to_string()).or_default();
        while times.front().is_some_and(|t| !live(t)) {
            times.pop_front();
        }
        if times.len() >= self.limit {
            let oldest = times.front().copied().unwrap_or(now);
            return Err((oldest + self.window).saturating_duration_since(now));
        }
        times.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_limit_per_window_and_is_told_how_long_to_wait() {
        let l = WindowLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(l.take("a", t0).is_ok());
        assert!(l.take("a", t0 + Duration::from_secs(10)).is_ok());
        let wait = l.take("a", t0 + Duration::from_secs(20)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(40));
        assert!(l.take("b", t0 + Duration::from_secs(20)).is_ok());
        assert!(l.take("a", t0 + Duration::from_secs(61)).is_ok());
    }
}

//! The wall clock as a port. Code that needs the time is handed it, or a [`Clock`] to ask:
//! [`SystemClock`] is the one place in the core that reads the machine's clock, kept here so
//! that every caller shares one adapter rather than each writing its own; tests hand in a
//! [`ManualClock`] and decide what time it is.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use crate::time::truncate_to_micros;

/// Tells the time.
pub trait Clock: Send + Sync + 'static {
    /// Now, in whole microseconds: the precision every store keeps, so a time taken here is
    /// stored and read back unchanged.
    fn now(&self) -> DateTime<Utc>;
}

pub type DynClock = Arc<dyn Clock>;

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        truncate_to_micros(Utc::now())
    }
}

/// A clock that says what it is told, for tests: it stands still until set or advanced.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock showing `t` (cut to whole microseconds, as [`Clock::now`] promises).
    pub fn new(t: DateTime<Utc>) -> Self {
        ManualClock {
            now: Mutex::new(truncate_to_micros(t)),
        }
    }

    pub fn set(&self, t: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = truncate_to_micros(t);
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now = truncate_to_micros(*now + by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_timestamp;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = parse_timestamp("2020-07-07T10:17:06.5Z").unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::nanoseconds(90_001_500));
        assert_eq!(
            clock.now(),
            parse_timestamp("2020-07-07T10:17:06.590001Z").unwrap()
        );
        clock.set(start);
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn the_system_clock_tells_whole_microseconds_going_forward() {
        let a = SystemClock.now();
        let b = SystemClock.now();
        assert!(a <= b);
        assert_eq!(a.timestamp_subsec_nanos() % 1000, 0);
        assert!(a > parse_timestamp("2024-01-01T00:00:00Z").unwrap());
    }
}

//! Time as a dependency, so lifecycle rules can be tested by moving a clock instead of waiting.

use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time in Unix seconds.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in Unix seconds.
    fn now(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// The system clock shifted by an adjustable offset, for tests that move time forward; frozen, it stands
/// still until advanced (for tests that assert on waits of a second or two).
#[derive(Debug, Default)]
pub struct ManualClock {
    offset: AtomicI64,
    /// The system time the clock stopped at; 0 while it follows the system clock.
    frozen_at: AtomicI64,
}

impl ManualClock {
    /// Moves the clock forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }

    /// Stops the clock at the current time; from now on only [`ManualClock::advance`] moves it.
    pub fn freeze(&self) {
        self.frozen_at.store(SystemClock.now(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        let base = match self.frozen_at.load(Ordering::SeqCst) {
            0 => SystemClock.now(),
            at => at,
        };
        base + self.offset.load(Ordering::SeqCst)
    }
}

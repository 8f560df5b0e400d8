//! A clock the tests control, for the one-time-code windows of Sportlink's login: it reads the
//! system clock plus an offset, and waiting on it moves the offset forward instead of sleeping.
//! The simulator checks codes and the executor computes them on the same instance, so "wait for
//! the next 30-second window" is exercised exactly, in no time (issue 12).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use rondo_reverse_sync::clock::{Clock, SharedClock};

#[derive(Debug, Default)]
pub struct SkipClock {
    skipped_ms: AtomicU64,
}

impl SkipClock {
    pub fn shared() -> Arc<SkipClock> {
        Arc::new(SkipClock::default())
    }

    /// How far waiting has moved this clock ahead of the system's.
    pub fn skipped(&self) -> Duration {
        Duration::from_millis(self.skipped_ms.load(Ordering::SeqCst))
    }

    /// Moves the clock forward, as time passing would.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.skipped_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Seconds left in the current 30-second one-time-code window on this clock.
    pub fn left_in_window(&self) -> u64 {
        let now = self
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        30 - now % 30
    }

    /// Moves the clock to just after the start of the next window, so that the next few seconds
    /// of a test happen within one window.
    pub fn to_next_window(&self) {
        self.advance(Duration::from_secs(self.left_in_window() + 1));
    }

    pub fn as_shared(self: &Arc<Self>) -> SharedClock {
        self.clone()
    }
}

impl Clock for SkipClock {
    fn now(&self) -> SystemTime {
        SystemTime::now() + self.skipped()
    }

    fn sleep(&self, wait: Duration) -> BoxFuture<'static, ()> {
        self.advance(wait);
        Box::pin(std::future::ready(()))
    }
}

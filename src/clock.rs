//! Wall-clock time for what depends on the calendar rather than on elapsed time: the one-time
//! code windows of Sportlink's login (30 s steps of Unix time). A dependency, so that tests can
//! run the login against a simulator on a clock they control instead of waiting for real windows
//! (issue 12); the service always uses [`SystemClock`].

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

/// A source of the current time that can also be waited on.
pub trait Clock: Debug + Send + Sync {
    fn now(&self) -> SystemTime;
    /// Completes once [`Clock::now`] has reached `now() + wait`.
    fn sleep(&self, wait: Duration) -> BoxFuture<'static, ()>;
}

/// The shared handle the session and the simulator hold.
pub type SharedClock = Arc<dyn Clock>;

/// The computer's clock; waiting is a real (tokio) sleep.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, wait: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(wait))
    }
}

/// The service's clock.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

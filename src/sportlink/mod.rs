//! Pushing verified changes into Sportlink Club by driving headless Chromium.
//!
//! - [`browser`]: the one browser session (lazy start, login with TOTP, re-login, idle close).
//! - [`page`]: the page model (sections by heading, scoped actions, waits with deadlines).
//! - [`driver`]: the [`driver::SportlinkDriver`] seam used by the executor.
//! - [`executor`]: the unit of work (one member) and the loop around it.
//! - [`lock`]: one executor per Sportlink account.

pub mod artefacts;
pub mod browser;
pub mod diagnose;
pub mod driver;
pub mod executor;
pub mod lock;
pub mod network;
pub mod orphans;
pub mod page;
pub mod read;
pub mod readback;
pub mod scrub;
pub mod setup;
pub mod totp;

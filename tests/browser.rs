//! The integration tests that drive real Chromium: the executor against the Sportlink simulator,
//! the simulator's pages, the crash and soak runs, and the README's demo. They fail when
//! Chromium is missing, unless `RRS_SKIP_BROWSER_TESTS=1` skips them on purpose. One binary
//! (issue 12): every test executable is link time on two cores.

use rrs_testkit as support;

#[path = "support/binary.rs"]
mod binary;
#[path = "crash.rs"]
mod crash;
#[path = "demo.rs"]
mod demo;
#[path = "executor.rs"]
mod executor;
#[path = "simulator_browser.rs"]
mod simulator_browser;
// The 200-member soak is the longest test. libtest starts tests in the order of their names,
// so this name puts it first, beside the others, instead of alone at the end (where it
// stretched the run by its whole length).
#[path = "soak.rs"]
mod bulk_soak;

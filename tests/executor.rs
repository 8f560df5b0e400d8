//! The Sportlink executor against the simulator, in real Chromium (issue #4). Skipped, with a
//! printed reason, only when Chromium is not installed. Every run is bounded in time.

#[path = "executor/audit.rs"]
mod audit;
#[path = "executor/bench.rs"]
mod bench;
#[path = "executor/bench_e2e.rs"]
mod bench_e2e;
#[path = "executor/browser.rs"]
mod browser;
#[path = "executor/cli.rs"]
mod cli;
#[path = "executor/conflicts.rs"]
mod conflicts;
#[path = "executor/failures.rs"]
mod failures;
#[path = "executor/fields.rs"]
mod fields;
#[path = "executor/lifecycle.rs"]
mod lifecycle;
#[path = "executor/login.rs"]
mod login;
#[path = "executor/pages.rs"]
mod pages;
#[path = "executor/rendering.rs"]
mod rendering;

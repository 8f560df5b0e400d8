//! The Sportlink executor against the simulator, in real Chromium (issue #4). Skipped, with a
//! printed reason, only when Chromium is not installed. Every run is bounded in time.

mod support;

#[path = "executor/browser.rs"]
mod browser;
#[path = "executor/fields.rs"]
mod fields;

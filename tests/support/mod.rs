//! Helpers shared by integration tests. Each test binary uses a subset.
#![allow(dead_code)]

pub mod chromium;
pub mod headless;
pub mod rig;

//! The outside world, stood in: a Sportlink Club simulator, a Rondo Club REST stand-in, a
//! webhook load generator and the demo that runs the service against them. Nothing here is part
//! of the service; the demo, the tests and the benchmarks use it.
//!
//! One crate rather than four: they share `local_server`, and on two cores every crate and test
//! executable is build time (issue 12).

pub mod demo;
pub mod loadgen;
pub mod local_server;
pub mod rondo_standin;
pub mod simulator;

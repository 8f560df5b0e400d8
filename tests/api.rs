//! The integration tests that need neither a browser nor WordPress: the admin API and operator
//! page over HTTP, webhooks (including hostile input), alerts, the unit files, the simulator's
//! own API, and properties of the pure parts. One binary (issue 12): every test executable is
//! link time on two cores.

#[path = "support/binary.rs"]
mod binary;

#[path = "admin.rs"]
mod admin;
#[path = "alerts.rs"]
mod alerts;
#[path = "deploy.rs"]
mod deploy;
#[path = "hostile.rs"]
mod hostile;
#[path = "properties.rs"]
mod properties;
#[path = "simulator.rs"]
mod simulator;
#[path = "webhook.rs"]
mod webhook;

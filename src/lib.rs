//! rondo-reverse-sync: corrections made in Rondo Club (WordPress) pushed back into Sportlink Club.
//!
//! The flow, one module each: `webhook`/`poll` learn about a person → `detect` finds what changed
//! (pure) → `store` records it (the only SQL) → `sportlink` pushes it through a browser, guarded by
//! `conflict`. `catalogue` says where every tracked field lives on both sides.

pub mod alerts;
pub mod audit;
pub mod catalogue;
pub mod clock;
pub mod config;
pub mod conflict;
pub mod daemon;
pub mod detect;
pub mod domain;
pub mod http;
pub mod normalise;
pub mod operations;
pub mod poll;
pub mod replay;
pub mod sportlink;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod webhook;

use std::sync::Arc;

use catalogue::{Catalogue, CatalogueError};
use config::Settings;
use store::{Store, StoreError, StoreOptions};

/// The field catalogue the settings name, or the built-in one.
pub fn load_catalogue(settings: &Settings) -> Result<Catalogue, CatalogueError> {
    match &settings.fields.catalogue_file {
        Some(path) => Catalogue::load(path),
        None => Ok(Catalogue::builtin()),
    }
}

/// Opens the configured database, creating it when missing, and migrates it: for `migrate`
/// (and `serve --create-database`). Blocking.
pub fn open_store(settings: &Settings, catalogue: Arc<Catalogue>) -> Result<Store, StoreError> {
    Store::open(&settings.database.path, catalogue, store_options(settings))
}

/// Opens the configured database, which must exist, and migrates it: every verb but `migrate`.
/// Blocking.
pub fn open_existing_store(
    settings: &Settings,
    catalogue: Arc<Catalogue>,
) -> Result<Store, StoreError> {
    Store::open_existing(&settings.database.path, catalogue, store_options(settings))
}

fn store_options(settings: &Settings) -> StoreOptions {
    StoreOptions {
        busy_timeout: std::time::Duration::from_millis(settings.database.busy_timeout_ms),
    }
}

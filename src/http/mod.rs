//! Thin axum handlers over the rest of the service. [`router`] is the one place routes are
//! declared; every error answer is JSON `{"error": "..."}` ([`ApiError`]).

mod error;
mod health;
mod webhook;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Notify;

use crate::store::Store;
use crate::webhook::Verifier;

pub use error::ApiError;

/// What handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub verifier: Arc<Verifier>,
    /// Largest webhook body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Woken after a delivery committed new changes, so the executor starts without polling.
    pub executor_wake: Arc<Notify>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/webhooks/rondo-club", post(webhook::receive))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
}

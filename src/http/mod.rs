//! Thin axum handlers over the rest of the service. [`router`] is the one place routes are
//! declared; every error answer is JSON `{"error": "..."}`. The webhook and health checks here;
//! the admin API (`/api/`), the operator page (`/`) and `/metrics` in [`ops_routes`].

pub mod admin;
pub mod audit;
mod connections;
mod error;
mod health;
pub mod metrics;
pub mod openapi;
pub mod operator;
pub mod ops;
mod webhook;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Notify;

use crate::store::Store;
use crate::webhook::Verifier;

pub use connections::ConnectionLimits;
pub use error::ApiError;
pub use ops::{
    ExecutorStateView, ExecutorView, LoginLimits, OperationError, Operations, OpsState,
    PollAccepted, Redetected, Unwired,
};

/// What handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub verifier: Arc<Verifier>,
    /// Largest webhook body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Woken after a delivery committed new changes, so the executor starts without polling.
    pub executor_wake: Arc<Notify>,
    /// The admin API's, the operator page's and the metrics' state (same store and wake).
    pub ops: OpsState,
    /// Deadline for one request to `/api/` and `/` (the operator page); then 503.
    pub request_timeout: std::time::Duration,
    /// The connection cap and the header-read timeout the server applies.
    pub connections: ConnectionLimits,
}

pub fn router(state: AppState) -> Router {
    let ops = state.ops.clone();
    let timeout = state.request_timeout;
    Router::new()
        .route("/webhooks/rondo-club", post(webhook::receive))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
        .merge(ops_routes(ops).layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                within(timeout, request, next)
            },
        )))
}

/// Runs a request with a deadline: a handler stuck on a slow upstream (Rondo Club, a locked
/// database) answers 503 instead of holding the connection. Dropping the handler's future is
/// safe: database writes run on the writer thread and commit or roll back as a whole.
async fn within(
    timeout: std::time::Duration,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(?timeout, "request took too long; answered 503");
            ApiError::Unavailable(format!(
                "the request did not finish within {} seconds",
                timeout.as_secs()
            ))
            .into_response()
        }
    }
}

/// The admin API, the operator page and `/metrics`, with their state applied.
pub fn ops_routes(state: OpsState) -> Router {
    let api = Router::new()
        .route("/deliveries/{id}/replay", post(admin::replay_delivery))
        .route("/members/{knvb_id}/redetect", post(admin::redetect_member))
        .route("/members/{knvb_id}", get(admin::get_member))
        .route("/changes/{id}/requeue", post(admin::requeue_change))
        .route("/changes/requeue", post(admin::requeue_changes))
        .route("/changes", get(admin::list_changes))
        .route("/conflicts", get(admin::list_conflicts))
        .route("/runs", get(admin::list_runs))
        .route("/status", get(admin::get_status))
        .route("/poll", post(admin::trigger_poll))
        .route("/executor/resume", post(admin::resume_executor))
        .route("/forward-sync/report", post(admin::forward_sync_report))
        .route("/history", get(admin::history::history))
        .route("/openapi.json", get(openapi::openapi_json))
        .merge(audit::routes())
        .fallback(admin::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::require_token,
        ));
    // The read-only token opens these and nothing else (the admin token opens them too).
    let member_status = Router::new()
        .route("/member-status", get(admin::member_status::attention))
        .route(
            "/member-status/{knvb_id}",
            get(admin::member_status::member_status),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::member_status::require_read_token,
        ));
    let api = member_status.merge(api);
    Router::new()
        .route("/", get(operator::page))
        .route("/login", post(operator::login))
        .route("/logout", post(operator::logout))
        .route("/ui/changes/{id}/requeue", post(operator::ui_requeue))
        .route("/ui/executor/resume", post(operator::ui_resume))
        .route("/history", get(operator::history))
        .route("/history/requeue", get(operator::confirm_requeue))
        .route("/ui/history/requeue", post(operator::ui_requeue_filter))
        .route("/members/{knvb_id}", get(operator::member))
        .route("/metrics", get(metrics::scrape))
        .nest("/api", api)
        .with_state(state)
}

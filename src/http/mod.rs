//! Thin axum handlers. This part: the admin API (`/api/`), the operator page (`/`) and
//! `/metrics`, built by [`ops_routes`] over an [`OpsState`].

pub mod admin;
pub mod metrics;
pub mod operator;
pub mod ops;

use axum::routing::{get, post};
use axum::Router;

pub use metrics::Metrics;
pub use ops::{
    ExecutorStateView, ExecutorView, OperationError, Operations, OpsState, PollAccepted,
    Redetected, Unwired,
};

/// The admin API, the operator page and `/metrics`, with their state applied: merge into the
/// service's router.
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
        .route("/openapi.json", get(admin::openapi_json))
        .fallback(admin::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::require_token,
        ));
    Router::new()
        .route("/", get(operator::page))
        .route("/login", post(operator::login))
        .route("/logout", post(operator::logout))
        .route("/ui/changes/{id}/requeue", post(operator::ui_requeue))
        .route("/ui/executor/resume", post(operator::ui_resume))
        .route("/metrics", get(metrics::scrape))
        .nest("/api", api)
        .with_state(state)
}

//! `GET /metrics`: the service's metrics ([`crate::telemetry::Metrics`]) as Prometheus text, with
//! the values read from the store and the executor at scrape time.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::ops::{ExecutorStateView, OpsState};
use crate::telemetry::metrics::{ExecutorGauge, StoreScrape, CONTENT_TYPE};

/// Prometheus metrics (text format). Not behind the admin token: meant for a local scraper,
/// and it holds no secrets.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus/OpenMetrics text", content_type = "application/openmetrics-text"))
)]
pub async fn scrape(State(state): State<OpsState>) -> Response {
    let read = state
        .store()
        .read(|db| {
            Ok(StoreScrape {
                by_field: db.change_counts_by_field()?,
                counts: db.change_counts()?,
                runs: db.run_counts()?,
            })
        })
        .await;
    let scrape = match read {
        Ok(values) => values,
        Err(e) => {
            tracing::error!(error = %e, "metrics: cannot read the store");
            return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response();
        }
    };
    let executor = match state.operations().executor_status().map(|e| e.state) {
        None => ExecutorGauge::NotRunning,
        Some(ExecutorStateView::Idle) => ExecutorGauge::Idle,
        Some(ExecutorStateView::Working { .. }) => ExecutorGauge::Working,
        Some(ExecutorStateView::Paused { .. }) => ExecutorGauge::Paused,
    };
    match state.metrics().render(&scrape, executor) {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics: cannot encode");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n").into_response()
        }
    }
}

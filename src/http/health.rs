//! `GET /healthz`: the process answers. `GET /readyz`: the database answers, its schema is the
//! one this binary expects, and a write can be committed now.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, AppState};

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive", content_type = "application/json")))]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The database answers and its schema is the one this binary expects.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", content_type = "application/json"),
        (status = 503, description = "Not ready, with the reason", body = super::error::ErrorBody),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let info = state.store.read(|db| db.schema_info()).await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check: database not reachable");
        ApiError::Unavailable("database not reachable".into())
    })?;
    // Ready means a webhook can be committed: a real write, so a deleted or read-only file, a
    // full disk or a lock held past the busy timeout all show here.
    state.store.probe_write().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check: the database cannot take writes");
        ApiError::Unavailable("database cannot take writes now; see the service log".into())
    })?;
    if info.version != info.known {
        return Err(ApiError::Unavailable(format!(
            "database schema is at version {}, this binary expects {}",
            info.version, info.known
        )));
    }
    Ok(Json(
        json!({ "status": "ready", "schema_version": info.version }),
    ))
}

//! The divergence audit in the admin API (`/api/audits…`, bearer token like the rest of `/api/`)
//! and its block on the operator page. The audit itself runs in the executor's loop
//! (`crate::audit`); these handlers only record what the operator asks (start, cancel, queue
//! rows) and wake that loop.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::admin::{ApiError, ApiJson, ErrorBody, MAX_PER_PAGE};
use super::ops::OpsState;
use crate::audit;
use crate::store::{AuditResult, AuditRun, AuditTrigger, AuditVerdict, QueuedRow, Store};

/// The audit routes' part of the OpenAPI document (merged into it by `openapi::openapi_json`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(start, list, status, cancel, results, results_csv, queue))]
pub struct AuditDoc;

/// Most rows one queue request takes.
const MAX_QUEUE: usize = 500;
/// Rows in one CSV download (a club of 5,000 members has about 80,000).
const MAX_CSV_ROWS: u32 = 2_000_000;

/// The routes, merged into `/api` (behind its token check).
pub fn routes() -> Router<OpsState> {
    Router::new()
        .route("/audits", post(start).get(list))
        .route("/audits/{id}", get(status))
        .route("/audits/{id}/cancel", post(cancel))
        .route("/audits/{id}/results", get(results))
        .route("/audits/{id}/results.csv", get(results_csv))
        .route("/audits/{id}/queue", post(queue))
}

/// A run with its progress.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditStatus {
    #[serde(flatten)]
    pub run: AuditRun,
    /// Estimated time left at the pace so far, in milliseconds (`null` before the first member).
    pub estimated_ms_left: Option<u64>,
    /// Verdicts so far, by kind.
    pub counts: std::collections::BTreeMap<String, u64>,
}

async fn status_of(store: &Store, run: AuditRun) -> Result<AuditStatus, ApiError> {
    let id = run.id;
    let counts = store.read(move |c| c.audit_counts(id)).await?;
    Ok(AuditStatus {
        estimated_ms_left: run.is_active().then(|| run.estimated_ms_left()).flatten(),
        run,
        counts: counts
            .into_iter()
            .map(|(verdict, n)| (verdict.as_str().to_owned(), n))
            .collect(),
    })
}

fn parse_id(path: Result<Path<String>, PathRejection>) -> Result<i64, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::BadRequest(format!("audit id {raw:?} is not a positive integer")))
}

async fn run_or_404(store: &Store, id: i64) -> Result<AuditRun, ApiError> {
    store
        .read(move |c| c.audit_run(id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("audit {id} not found")))
}

/// `POST /api/audits`: start a run (202). 409 while another is unfinished; 503 when this
/// process runs no executor (nothing would read Sportlink).
#[utoipa::path(post, path = "/api/audits", tag = "admin",
    responses(
        (status = 202, description = "Started; the executor's loop lists and reads the members", body = AuditStatus),
        (status = 409, description = "Another audit is unfinished", body = ErrorBody),
        (status = 503, description = "No executor in this process", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn start(State(state): State<OpsState>) -> Result<Response, ApiError> {
    if state.operations().executor_status().is_none() {
        return Err(ApiError::Unavailable(
            "no Sportlink executor runs in this process: the audit reads through its browser"
                .into(),
        ));
    }
    let run = state
        .store()
        .write(|c| c.start_audit(AuditTrigger::Api, Utc::now()))
        .await?;
    tracing::info!(audit = run.id, "audit started through the admin API");
    state.wake_executor();
    let body = status_of(state.store(), run).await?;
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// `GET /api/audits`: the latest runs, newest first.
#[utoipa::path(get, path = "/api/audits", tag = "admin",
    responses((status = 200, description = "The latest 50 runs, newest first", body = [AuditRun])),
    security(("bearer" = [])))]
async fn list(State(state): State<OpsState>) -> Result<Json<Vec<AuditRun>>, ApiError> {
    Ok(Json(state.store().read(|c| c.list_audits(50)).await?))
}

/// `GET /api/audits/{id}`: status, progress, estimate, counts.
#[utoipa::path(get, path = "/api/audits/{id}", tag = "admin",
    params(("id" = i64, Path, description = "Audit id")),
    responses(
        (status = 200, description = "Status, progress, estimate of the time left, counts", body = AuditStatus),
        (status = 404, description = "No such audit", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn status(
    State(state): State<OpsState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<AuditStatus>, ApiError> {
    let id = parse_id(path)?;
    let run = run_or_404(state.store(), id).await?;
    Ok(Json(status_of(state.store(), run).await?))
}

/// `POST /api/audits/{id}/cancel`: stops the run between members; what it found is kept.
#[utoipa::path(post, path = "/api/audits/{id}/cancel", tag = "admin",
    params(("id" = i64, Path, description = "Audit id")),
    responses(
        (status = 200, description = "Cancelled; its rows so far are kept", body = AuditStatus),
        (status = 404, description = "No such audit", body = ErrorBody),
        (status = 409, description = "It has already ended", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn cancel(
    State(state): State<OpsState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<AuditStatus>, ApiError> {
    let id = parse_id(path)?;
    run_or_404(state.store(), id).await?;
    let cancelled = state
        .store()
        .write(move |c| c.cancel_audit(id, Utc::now()))
        .await?;
    if !cancelled {
        return Err(ApiError::Conflict(format!("audit {id} has already ended")));
    }
    tracing::info!(audit = id, "audit cancelled through the admin API");
    let run = run_or_404(state.store(), id).await?;
    Ok(Json(status_of(state.store(), run).await?))
}

#[derive(Debug, Deserialize)]
struct ResultsQuery {
    /// Comma-separated verdicts (equal, differs, differs_pending, unknown_in_sportlink,
    /// unknown_in_rondo_club, unreadable); all when absent.
    verdict: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

fn parse_verdicts(raw: Option<&str>) -> Result<Vec<AuditVerdict>, ApiError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            AuditVerdict::parse(v).ok_or_else(|| {
                let words: Vec<&str> = AuditVerdict::ALL.iter().map(|v| v.as_str()).collect();
                ApiError::BadRequest(format!(
                    "unknown verdict {v:?}; one of {}",
                    words.join(", ")
                ))
            })
        })
        .collect()
}

/// `GET /api/audits/{id}/results?verdict=differs&limit=50&offset=0`.
#[utoipa::path(get, path = "/api/audits/{id}/results", tag = "admin",
    params(
        ("id" = i64, Path, description = "Audit id"),
        ("verdict" = Option<String>, Query, description = "Comma-separated: equal, differs, differs_pending, unknown_in_sportlink, unknown_in_rondo_club, unreadable"),
        ("limit" = Option<u32>, Query, description = "1 to 200, default 50"),
        ("offset" = Option<u32>, Query, description = "Rows to skip"),
    ),
    responses(
        (status = 200, description = "Rows by member and field", body = [AuditResult]),
        (status = 400, description = "Bad verdict or limit", body = ErrorBody),
        (status = 404, description = "No such audit", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn results(
    State(state): State<OpsState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ResultsQuery>, QueryRejection>,
) -> Result<Json<Vec<AuditResult>>, ApiError> {
    let id = parse_id(path)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let verdicts = parse_verdicts(q.verdict.as_deref())?;
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PER_PAGE {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1 to {MAX_PER_PAGE}"
        )));
    }
    let offset = q.offset.unwrap_or(0);
    run_or_404(state.store(), id).await?;
    let rows = state
        .store()
        .read(move |c| c.audit_results(id, &verdicts, limit, offset))
        .await?;
    Ok(Json(rows))
}

/// `GET /api/audits/{id}/results.csv[?verdict=…]`: every row of the run as CSV.
#[utoipa::path(get, path = "/api/audits/{id}/results.csv", tag = "admin",
    params(
        ("id" = i64, Path, description = "Audit id"),
        ("verdict" = Option<String>, Query, description = "Comma-separated verdicts; all when absent"),
    ),
    responses(
        (status = 200, description = "Every row as CSV", content_type = "text/csv"),
        (status = 404, description = "No such audit", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn results_csv(
    State(state): State<OpsState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ResultsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = parse_id(path)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let verdicts = parse_verdicts(q.verdict.as_deref())?;
    run_or_404(state.store(), id).await?;
    let rows = state
        .store()
        .read(move |c| c.audit_results(id, &verdicts, MAX_CSV_ROWS, 0))
        .await?;
    let csv = audit::to_csv(&rows);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"audit-{id}.csv\""),
            ),
        ],
        csv,
    )
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct QueueRequest {
    /// Result row ids (`id` of `GET /api/audits/{id}/results`), verdict `differs`.
    rows: Vec<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct QueueResponse {
    queued: usize,
    rows: Vec<QueuedRow>,
}

/// `POST /api/audits/{id}/queue` `{"rows": [..]}`: queue differing rows as changes (Rondo Club's
/// value pushed; the executor's conflict guard decides at push time as for any change). Each
/// row is queued or refused with its reason; the queueing is recorded on the row.
#[utoipa::path(post, path = "/api/audits/{id}/queue", tag = "admin",
    params(("id" = i64, Path, description = "Audit id")),
    request_body = QueueRequest,
    responses(
        (status = 200, description = "Per row: the change created, or why not", body = QueueResponse),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 404, description = "No such audit", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn queue(
    State(state): State<OpsState>,
    path: Result<Path<String>, PathRejection>,
    ApiJson(request): ApiJson<QueueRequest>,
) -> Result<Json<QueueResponse>, ApiError> {
    let id = parse_id(path)?;
    if request.rows.is_empty() {
        return Err(ApiError::BadRequest("no rows given".into()));
    }
    if request.rows.len() > MAX_QUEUE {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_QUEUE} rows per request"
        )));
    }
    run_or_404(state.store(), id).await?;
    let rows = request.rows;
    let outcome = state
        .store()
        .write(move |c| c.queue_audit_rows(id, &rows, "admin API", Utc::now()))
        .await?;
    let queued = outcome.iter().filter(|r| r.change_id.is_some()).count();
    if queued > 0 {
        state.wake_executor();
    }
    Ok(Json(QueueResponse {
        queued,
        rows: outcome,
    }))
}

/// The latest audit run as the operator page shows it (the page words it, in its language).
pub enum AuditOverview {
    /// The audit's state cannot be read now (logged).
    Unreadable,
    /// No audit has run yet.
    NoneYet,
    Latest {
        id: i64,
        /// Progress in the audit's own words (as the CLI prints it).
        progress: String,
        /// Counts per verdict, when there are any.
        summary: Option<String>,
    },
}

pub async fn overview(store: &Store) -> AuditOverview {
    let latest = store.read(|c| c.list_audits(1)).await;
    let run = match latest {
        Ok(runs) => runs.into_iter().next(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the audit runs");
            return AuditOverview::Unreadable;
        }
    };
    let Some(run) = run else {
        return AuditOverview::NoneYet;
    };
    let id = run.id;
    let counts = store
        .read(move |c| c.audit_counts(id))
        .await
        .unwrap_or_default();
    AuditOverview::Latest {
        id,
        progress: audit::progress_line(&run),
        summary: (!counts.is_empty()).then(|| audit::summary(&counts)),
    }
}

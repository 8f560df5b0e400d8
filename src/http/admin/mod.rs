//! The admin API under `/api/` (product.md §8): JSON, bearer token, every bad request a 4xx
//! with a reason. Thin handlers: validation here, SQL in the store, detection through
//! `Conn::apply_sighting` only.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

pub mod history;
pub mod member_status;

pub use super::error::{ApiError, ErrorBody, DATABASE_UNAVAILABLE};
use super::ops::{ExecutorView, OpsState, PollAccepted};
use crate::domain::{ChangeId, ChangeStatus, KnvbId};
use crate::store::{
    ChangeRecord, ChangeStatusCounts, ConflictRecord, DeliverySummary, ForwardSyncOutcome,
    ForwardSyncReport, InvalidKnvbId, MemberSummary, RunRecord, SightingResult, StoreError,
};

pub const MAX_PER_PAGE: u32 = 200;
const DEFAULT_PER_PAGE: u32 = 50;
/// Most ids one bulk requeue takes.
const MAX_BULK: usize = 200;
/// How far in the future a reported timestamp may be (clock skew); later ones are refused, as
/// a future `sync_origin_at` would hide real user edits as forward-sync writes until then.
const MAX_FUTURE_SKEW: TimeDelta = TimeDelta::minutes(5);
const MAX_VALUE_LEN: usize = 1_000;

/// The bearer token of a request, if it sent one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Middleware for `/api/`: the admin token as a bearer token, or 401.
pub async fn require_token(
    State(state): State<OpsState>,
    request: Request,
    next: Next,
) -> Response {
    match bearer(request.headers()) {
        Some(token) if state.token_matches(token) => next.run(request).await,
        _ => ApiError::Unauthorized.into_response(),
    }
}

/// A JSON body whose rejections are 4xx answers with a reason, in the API's error shape.
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type_ok = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge(e.body_text())
            } else {
                ApiError::BadRequest(e.body_text())
            }
        })?;
        if !content_type_ok {
            return Err(ApiError::BadRequest(
                "expected Content-Type: application/json".into(),
            ));
        }
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

fn parse_knvb_id(raw: &str) -> Result<KnvbId, ApiError> {
    KnvbId::parse(raw).map_err(|e| ApiError::BadRequest(e.to_string()))
}

fn parse_change_id(raw: &str) -> Result<ChangeId, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .map(ChangeId)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "change id {:?} is not a positive integer",
                raw.chars().take(40).collect::<String>()
            ))
        })
}

/// Paging from `page` (from 1) and `per_page` (1 to 200).
fn paging(page: Option<&str>, per_page: Option<&str>) -> Result<(u32, u32), ApiError> {
    let page = match page {
        None | Some("") => 1,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|p| *p >= 1 && *p <= 1_000_000)
            .ok_or_else(|| {
                ApiError::BadRequest("page must be a whole number from 1 to 1000000".into())
            })?,
    };
    let per_page = match per_page {
        None | Some("") => DEFAULT_PER_PAGE,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|p| (1..=MAX_PER_PAGE).contains(p))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "per_page must be a whole number from 1 to {MAX_PER_PAGE}"
                ))
            })?,
    };
    Ok((page, per_page))
}

fn offset(page: u32, per_page: u32) -> u32 {
    (page - 1).saturating_mul(per_page)
}

// ---------------------------------------------------------------------------------------------
// Detection from a stored delivery or from Rondo Club

/// What one detection (replay, re-detect) found.
#[derive(Debug, Serialize, ToSchema)]
pub struct DetectionResponse {
    pub knvb_id: Option<String>,
    /// `changed`, `unchanged`, `first_sighting`, `forward_sync`, `stale`, `deceased`, …
    pub verdict: String,
    pub changes: Vec<DetectedChange>,
    pub superseded: Vec<ChangeId>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DetectedChange {
    pub id: ChangeId,
    pub field: String,
    pub old_value: String,
    pub new_value: String,
}

impl From<SightingResult> for DetectionResponse {
    fn from(r: SightingResult) -> Self {
        Self {
            knvb_id: r.knvb_id.map(String::from),
            verdict: r.verdict.as_str().to_string(),
            changes: r
                .change_ids
                .iter()
                .zip(r.changes.iter())
                .map(|(id, c)| DetectedChange {
                    id: *id,
                    field: c.field.clone(),
                    old_value: c.old_value.clone(),
                    new_value: c.new_value.clone(),
                })
                .collect(),
            superseded: r.superseded,
        }
    }
}

/// Re-runs a stored webhook delivery through detection (source `replay`). Never moves the
/// poll's watermark.
#[utoipa::path(
    post,
    path = "/api/deliveries/{id}/replay",
    tag = "admin",
    params(("id" = String, Path, description = "The delivery's webhook-id")),
    responses(
        (status = 200, description = "Detection ran", body = DetectionResponse),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such delivery", body = ErrorBody),
        (status = 409, description = "The delivery holds no replayable person", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(name = "replay_delivery", skip_all)]
pub async fn replay_delivery(
    State(state): State<OpsState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<DetectionResponse>, ApiError> {
    let Path(id) = path?;
    if id.is_empty() || id.len() > 256 || id.chars().any(|c| c.is_control()) {
        return Err(ApiError::BadRequest(
            "a delivery id is 1 to 256 printable characters".into(),
        ));
    }
    let result = crate::replay::replay_delivery(state.store(), id, Utc::now()).await?;
    if !result.change_ids.is_empty() {
        state.wake_executor();
    }
    Ok(Json(result.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RedetectResponse {
    pub run_id: i64,
    pub summary: String,
    /// The change rows this detection recorded.
    pub changes: Vec<ChangeRecord>,
}

/// Fetches one member from Rondo Club now and runs it through detection (source `replay`).
/// Never moves the poll's watermark.
#[utoipa::path(
    post,
    path = "/api/members/{knvb_id}/redetect",
    tag = "admin",
    params(("knvb_id" = String, Path, description = "The member's KNVB id")),
    responses(
        (status = 200, description = "Detection ran", body = RedetectResponse),
        (status = 400, description = "Bad KNVB id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "Unknown member", body = ErrorBody),
        (status = 502, description = "Rondo Club failed", body = ErrorBody),
        (status = 503, description = "Not available in this build", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(name = "redetect_member", skip_all)]
pub async fn redetect_member(
    State(state): State<OpsState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<RedetectResponse>, ApiError> {
    let Path(raw) = path?;
    let knvb_id = parse_knvb_id(&raw)?;
    let done = state.operations().redetect(knvb_id).await?;
    let run_id = done.run_id;
    let changes = state
        .store()
        .read(move |db| {
            db.changes_of_run(run_id)?
                .into_iter()
                .filter_map(|id| db.change(id).transpose())
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    if !changes.is_empty() {
        state.wake_executor();
    }
    Ok(Json(RedetectResponse {
        run_id,
        summary: done.summary,
        changes,
    }))
}

// ---------------------------------------------------------------------------------------------
// Requeue

#[derive(Debug, Serialize, ToSchema)]
pub struct RequeueResponse {
    pub requeued: Vec<ChangeId>,
    pub refused: Vec<RequeueRefusal>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequeueRefusal {
    pub id: ChangeId,
    pub error: String,
}

/// Bulk requeue: `{"ids": [1, 2]}` or a bare list `[1, 2]`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RequeueRequest {
    Object { ids: Vec<i64> },
    List(Vec<i64>),
}

/// Puts a failed, skipped or conflict-lost change back in the queue and wakes the executor.
#[utoipa::path(
    post,
    path = "/api/changes/{id}/requeue",
    tag = "admin",
    params(("id" = i64, Path, description = "The change's id")),
    responses(
        (status = 200, description = "Requeued (pending again)", body = ChangeRecord),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such change", body = ErrorBody),
        (status = 409, description = "Not in a requeueable state, or a newer change exists", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn requeue_change(
    State(state): State<OpsState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ChangeRecord>, ApiError> {
    let Path(raw) = path?;
    let id = parse_change_id(&raw)?;
    let record = requeue_one(&state, id).await?;
    Ok(Json(record))
}

/// The requeue behind the API and the operator page's button.
#[tracing::instrument(name = "requeue", skip(state))]
pub async fn requeue_one(state: &OpsState, id: ChangeId) -> Result<ChangeRecord, ApiError> {
    let record = crate::replay::requeue_change(state.store(), id, Utc::now()).await?;
    state.wake_executor();
    Ok(record)
}

/// Requeues several changes; each is requeued or refused with its reason.
#[utoipa::path(
    post,
    path = "/api/changes/requeue",
    tag = "admin",
    request_body = RequeueRequest,
    responses(
        (status = 200, description = "Per id: requeued or refused", body = RequeueResponse),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn requeue_changes(
    State(state): State<OpsState>,
    ApiJson(request): ApiJson<RequeueRequest>,
) -> Result<Json<RequeueResponse>, ApiError> {
    let ids = match request {
        RequeueRequest::Object { ids } | RequeueRequest::List(ids) => ids,
    };
    if ids.is_empty() {
        return Err(ApiError::BadRequest("no change ids given".into()));
    }
    if ids.len() > MAX_BULK {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_BULK} ids at a time"
        )));
    }
    if let Some(bad) = ids.iter().find(|id| **id <= 0) {
        return Err(ApiError::BadRequest(format!(
            "change id {bad} is not a positive integer"
        )));
    }
    let now = Utc::now();
    let response = state
        .store()
        .write(move |db| {
            let mut response = RequeueResponse {
                requeued: Vec::new(),
                refused: Vec::new(),
            };
            for id in ids.into_iter().map(ChangeId) {
                match db.requeue(id, now) {
                    Ok(()) => response.requeued.push(id),
                    Err(StoreError::NotFound(what)) => response.refused.push(RequeueRefusal {
                        id,
                        error: format!("{what} not found"),
                    }),
                    Err(StoreError::Rejected(reason)) => {
                        response.refused.push(RequeueRefusal { id, error: reason })
                    }
                    Err(other) => return Err(other),
                }
            }
            Ok(response)
        })
        .await?;
    if !response.requeued.is_empty() {
        state.wake_executor();
    }
    Ok(Json(response))
}

// ---------------------------------------------------------------------------------------------
// Poll and executor

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PollRequest {
    /// All people regardless of `modified_gmt` (finds meta-only writes).
    #[serde(default)]
    pub full: bool,
}

/// Starts a reconciliation poll now. An empty body means `{"full": false}`.
#[utoipa::path(
    post,
    path = "/api/poll",
    tag = "admin",
    request_body(content = PollRequest, description = "Optional"),
    responses(
        (status = 202, description = "Poll started or queued", body = PollAccepted),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 409, description = "A poll is already running", body = ErrorBody),
        (status = 503, description = "Not available in this build", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn trigger_poll(
    State(state): State<OpsState>,
    body: Bytes,
) -> Result<(StatusCode, Json<PollAccepted>), ApiError> {
    let request: PollRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PollRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?
    };
    let accepted = state.operations().trigger_poll(request.full).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// Ends a circuit-breaker pause of the executor now.
#[utoipa::path(
    post,
    path = "/api/executor/resume",
    tag = "admin",
    responses(
        (status = 200, description = "Resumed; the executor's state", body = ExecutorView),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 503, description = "No executor in this process", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn resume_executor(
    State(state): State<OpsState>,
) -> Result<Json<ExecutorView>, ApiError> {
    state.operations().resume_executor()?;
    state.wake_executor();
    state
        .operations()
        .executor_status()
        .map(Json)
        .ok_or_else(|| {
            ApiError::Unavailable("the Sportlink executor is not available in this build".into())
        })
}

// ---------------------------------------------------------------------------------------------
// Reading

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Comma-separated statuses: pending, synced, superseded, conflict_lost, skipped, failed.
    pub status: Option<String>,
    pub knvb_id: Option<String>,
    /// From 1.
    pub page: Option<String>,
    /// 1 to 200 (default 50).
    pub per_page: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangesPage {
    pub changes: Vec<ChangeRecord>,
    pub page: u32,
    pub per_page: u32,
    pub total: u64,
}

fn parse_statuses(raw: Option<&str>) -> Result<Vec<ChangeStatus>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for name in raw.split(',').map(str::trim) {
        let status = ChangeStatus::parse(name).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "unknown status {:?}; expected some of {}",
                name.chars().take(40).collect::<String>(),
                ChangeStatus::ALL.map(ChangeStatus::as_str).join(", ")
            ))
        })?;
        if !out.contains(&status) {
            out.push(status);
        }
    }
    Ok(out)
}

/// Changes, newest first, filtered by status and member, a page at a time.
#[utoipa::path(
    get,
    path = "/api/changes",
    tag = "admin",
    params(ChangesQuery),
    responses(
        (status = 200, description = "One page of changes", body = ChangesPage),
        (status = 400, description = "Unknown status, bad paging or KNVB id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_changes(
    State(state): State<OpsState>,
    query: Result<Query<ChangesQuery>, QueryRejection>,
) -> Result<Json<ChangesPage>, ApiError> {
    let Query(q) = query?;
    let statuses = parse_statuses(q.status.as_deref())?;
    let knvb_id = match q.knvb_id.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(parse_knvb_id(raw)?),
    };
    let (page, per_page) = paging(q.page.as_deref(), q.per_page.as_deref())?;
    let (changes, total) = state
        .store()
        .read(move |db| {
            Ok((
                db.list_changes(
                    &statuses,
                    knvb_id.as_ref(),
                    per_page,
                    offset(page, per_page),
                )?,
                db.count_changes(&statuses, knvb_id.as_ref())?,
            ))
        })
        .await?;
    Ok(Json(ChangesPage {
        changes,
        page,
        per_page,
        total,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldTimestampsView {
    pub rondo_club_modified: Option<DateTime<Utc>>,
    pub sportlink_modified: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    /// The baseline (last seen state); absent when detection never stored one.
    pub member: Option<MemberSummary>,
    pub field_timestamps: BTreeMap<String, FieldTimestampsView>,
    /// Newest first (at most 200).
    pub changes: Vec<ChangeRecord>,
    /// Newest first (at most 200).
    pub conflicts: Vec<ConflictRecord>,
}

/// One member: baseline, per-field timestamps, history of changes and conflicts.
#[utoipa::path(
    get,
    path = "/api/members/{knvb_id}",
    tag = "admin",
    params(("knvb_id" = String, Path, description = "The member's KNVB id")),
    responses(
        (status = 200, description = "The member", body = MemberView),
        (status = 400, description = "Bad KNVB id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "Unknown member", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_member(
    State(state): State<OpsState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<MemberView>, ApiError> {
    let Path(raw) = path?;
    let knvb_id = parse_knvb_id(&raw)?;
    let fields: Vec<String> = state
        .store()
        .catalogue()
        .names()
        .map(str::to_string)
        .collect();
    let lookup = knvb_id.clone();
    let view = state
        .store()
        .read(move |db| {
            let member = db.member(&lookup)?;
            let mut field_timestamps = BTreeMap::new();
            if member.is_some() {
                for field in fields {
                    let (sportlink_modified, rondo_club_modified) =
                        db.field_timestamps(&lookup, &field)?;
                    field_timestamps.insert(
                        field,
                        FieldTimestampsView {
                            rondo_club_modified,
                            sportlink_modified,
                        },
                    );
                }
            }
            Ok(MemberView {
                member,
                field_timestamps,
                changes: db.list_changes(&[], Some(&lookup), MAX_PER_PAGE, 0)?,
                conflicts: db.list_conflicts(Some(&lookup), MAX_PER_PAGE, 0)?,
            })
        })
        .await?;
    if view.member.is_none() && view.changes.is_empty() && view.conflicts.is_empty() {
        return Err(ApiError::NotFound(format!("member {knvb_id} not found")));
    }
    Ok(Json(view))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    pub knvb_id: Option<String>,
    pub page: Option<String>,
    pub per_page: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConflictsPage {
    pub conflicts: Vec<ConflictRecord>,
    pub page: u32,
    pub per_page: u32,
    pub total: u64,
}

/// Conflict decisions (where the values differed), newest first.
#[utoipa::path(
    get,
    path = "/api/conflicts",
    tag = "admin",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of conflicts", body = ConflictsPage),
        (status = 400, description = "Bad paging or KNVB id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_conflicts(
    State(state): State<OpsState>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<ConflictsPage>, ApiError> {
    let Query(q) = query?;
    let knvb_id = match q.knvb_id.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(parse_knvb_id(raw)?),
    };
    let (page, per_page) = paging(q.page.as_deref(), q.per_page.as_deref())?;
    let (conflicts, total) = state
        .store()
        .read(move |db| {
            Ok((
                db.list_conflicts(knvb_id.as_ref(), per_page, offset(page, per_page))?,
                db.count_conflicts(knvb_id.as_ref())?,
            ))
        })
        .await?;
    Ok(Json(ConflictsPage {
        conflicts,
        page,
        per_page,
        total,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    pub page: Option<String>,
    pub per_page: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunsPage {
    pub runs: Vec<RunRecord>,
    pub page: u32,
    pub per_page: u32,
    pub total: u64,
}

/// Detection and sync runs, newest first.
#[utoipa::path(
    get,
    path = "/api/runs",
    tag = "admin",
    params(RunsQuery),
    responses(
        (status = 200, description = "One page of runs", body = RunsPage),
        (status = 400, description = "Bad paging", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_runs(
    State(state): State<OpsState>,
    query: Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Json<RunsPage>, ApiError> {
    let Query(q) = query?;
    let (page, per_page) = paging(q.page.as_deref(), q.per_page.as_deref())?;
    let (runs, total) = state
        .store()
        .read(move |db| {
            Ok((
                db.list_runs(per_page, offset(page, per_page))?,
                db.count_runs()?,
            ))
        })
        .await?;
    Ok(Json(RunsPage {
        runs,
        page,
        per_page,
        total,
    }))
}

/// Everything the operator page's header shows.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusView {
    pub changes: ChangeStatusCounts,
    /// `null` when this process runs no executor.
    pub executor: Option<ExecutorView>,
    pub poll_watermark: Option<DateTime<Utc>>,
    pub last_webhook: Option<DeliverySummary>,
    /// People whose `knvb-id` is there but not usable (how many; the most recent ones listed).
    pub invalid_knvb_id_count: u64,
    pub invalid_knvb_ids: Vec<InvalidKnvbId>,
}

/// Most people with an invalid `knvb-id` the status lists.
const INVALID_KNVB_ID_LIST: u32 = 50;

pub async fn status_view(state: &OpsState) -> Result<StatusView, ApiError> {
    let (changes, poll_watermark, last_webhook, invalid_knvb_id_count, invalid_knvb_ids) = state
        .store()
        .read(|db| {
            Ok((
                db.change_counts()?,
                db.watermark()?,
                db.last_delivery()?,
                db.count_invalid_knvb_ids()?,
                db.invalid_knvb_ids(INVALID_KNVB_ID_LIST)?,
            ))
        })
        .await?;
    Ok(StatusView {
        changes,
        executor: state.operations().executor_status(),
        poll_watermark,
        last_webhook,
        invalid_knvb_id_count,
        invalid_knvb_ids,
    })
}

/// Counts by status, executor state, poll watermark, last webhook.
#[utoipa::path(
    get,
    path = "/api/status",
    tag = "admin",
    responses(
        (status = 200, description = "Service status", body = StatusView),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_status(State(state): State<OpsState>) -> Result<Json<StatusView>, ApiError> {
    status_view(&state).await.map(Json)
}

// ---------------------------------------------------------------------------------------------
// The forward sync's report

/// What the forward sync (Sportlink → Rondo Club) wrote into Rondo Club.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardSyncBody {
    pub knvb_id: String,
    /// Tracked field name → the value written (string, number, boolean or null).
    #[schema(value_type = Object)]
    pub fields: BTreeMap<String, Value>,
    /// RFC 3339: when the values were written into Rondo Club.
    pub rondo_club_modified: String,
    /// RFC 3339 or null: when Sportlink last changed them, if known.
    #[serde(default)]
    pub sportlink_modified: Option<String>,
}

fn parse_report_time(name: &str, raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    let t = DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            ApiError::BadRequest(format!(
                "{name} {:?} is not an RFC 3339 date-time with a zone: {e}",
                raw.chars().take(40).collect::<String>()
            ))
        })?;
    if t > now + MAX_FUTURE_SKEW {
        return Err(ApiError::BadRequest(format!("{name} {t} is in the future")));
    }
    Ok(t)
}

/// The forward sync reports what it wrote, so the next sighting of those values is not pushed
/// back into Sportlink: sets the baseline, `sync_origin` and the per-field timestamps.
#[utoipa::path(
    post,
    path = "/api/forward-sync/report",
    tag = "admin",
    request_body = ForwardSyncBody,
    responses(
        (status = 200, description = "Recorded", body = ForwardSyncOutcome),
        (status = 400, description = "Bad body: unknown field, bad value, KNVB id or timestamp", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(name = "forward_sync_report", skip_all)]
pub async fn forward_sync_report(
    State(state): State<OpsState>,
    ApiJson(body): ApiJson<ForwardSyncBody>,
) -> Result<Json<ForwardSyncOutcome>, ApiError> {
    let now = Utc::now();
    let knvb_id = parse_knvb_id(&body.knvb_id)?;
    if body.fields.is_empty() {
        return Err(ApiError::BadRequest(
            "fields: name at least one field".into(),
        ));
    }
    let catalogue = state.store().catalogue();
    for (field, value) in &body.fields {
        if catalogue.get(field).is_none() {
            return Err(ApiError::BadRequest(format!(
                "fields: unknown field {:?}; known: {}",
                field.chars().take(60).collect::<String>(),
                catalogue.names().collect::<Vec<_>>().join(", ")
            )));
        }
        match value {
            Value::Object(_) | Value::Array(_) => {
                return Err(ApiError::BadRequest(format!(
                    "fields.{field}: expected a string, number, boolean or null"
                )))
            }
            Value::String(s) if s.len() > MAX_VALUE_LEN => {
                return Err(ApiError::BadRequest(format!(
                    "fields.{field}: longer than {MAX_VALUE_LEN} bytes"
                )))
            }
            _ => {}
        }
    }
    let rondo_club_modified =
        parse_report_time("rondo_club_modified", &body.rondo_club_modified, now)?;
    let sportlink_modified = body
        .sportlink_modified
        .as_deref()
        .map(|raw| parse_report_time("sportlink_modified", raw, now))
        .transpose()?;
    let report = ForwardSyncReport {
        knvb_id,
        fields: body.fields,
        rondo_club_modified,
        sportlink_modified,
    };
    let outcome = state
        .store()
        .write(move |db| db.record_forward_sync(&report, now))
        .await?;
    tracing::info!(knvb_id = %outcome.knvb_id, fields = outcome.changed_fields.len(), "forward-sync report recorded");
    Ok(Json(outcome))
}

/// Unknown paths under `/api/`.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such API endpoint; see /api/openapi.json".into())
}

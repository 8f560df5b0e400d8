//! Reading: changes, a member, conflicts, runs, the status.

use super::*;

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

pub(super) fn parse_statuses(raw: Option<&str>) -> Result<Vec<ChangeStatus>, ApiError> {
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
    pub field_timestamps: BTreeMap<FieldName, FieldTimestampsView>,
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
    let fields: Vec<FieldName> = state.store().catalogue().names().cloned().collect();
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

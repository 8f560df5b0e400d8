//! What one detection (a stored delivery replayed, or a member re-detected from Rondo Club) answers.

use super::*;

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
    pub field: FieldName,
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

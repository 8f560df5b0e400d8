//! Putting resolved changes back in the queue, one or many.

use super::*;

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

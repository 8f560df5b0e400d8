//! Poll now, and resume the executor.

use super::*;

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

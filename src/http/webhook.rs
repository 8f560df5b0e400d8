//! `POST /webhooks/rondo-club`: read at most the configured number of bytes, verify the signature
//! over exactly those bytes, then hand the verified body to [`crate::webhook::ingest`], and answer
//! only after the delivery and its changes are committed.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use chrono::Utc;
use futures::StreamExt as _;

use super::{ApiError, AppState};
use crate::webhook::{ingest, Ingested};

#[tracing::instrument(name = "webhook", skip_all, fields(webhook_id, knvb_id))]
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Ingested>, ApiError> {
    let bytes = read_capped(&headers, body, state.max_body_bytes).await?;
    let now = Utc::now();
    let verified = state
        .verifier
        .verify(&headers, bytes, now.timestamp())
        .map_err(|e| {
            tracing::warn!(reason = %e, "webhook rejected: not verified");
            ApiError::new(StatusCode::UNAUTHORIZED, e.to_string())
        })?;
    tracing::Span::current().record("webhook_id", verified.webhook_id());

    let ingested = ingest(&state.store, verified, now)
        .await
        .map_err(ApiError::internal)?;
    match &ingested {
        Ingested::Processed {
            knvb_id,
            verdict,
            change_ids,
        } => {
            if let Some(id) = knvb_id {
                tracing::Span::current().record("knvb_id", id.as_str());
            }
            tracing::info!(
                verdict = verdict.as_str(),
                changes = change_ids.len(),
                "webhook processed"
            );
            if !change_ids.is_empty() {
                state.executor_wake.notify_one();
            }
        }
        Ingested::Rejected { reason } => {
            tracing::warn!(%reason, "webhook recorded as rejected");
            return Err(ApiError::new(StatusCode::BAD_REQUEST, reason.clone()));
        }
        other => tracing::info!(outcome = ?other, "webhook recorded"),
    }
    Ok(Json(ingested))
}

/// The whole body, or 413 as soon as it is known to be longer than `limit`: from
/// `Content-Length` before reading anything, or while reading a body sent without one.
async fn read_capped(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {limit} bytes"),
        )
    };
    let declared = match headers.get(header::CONTENT_LENGTH) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::new(StatusCode::BAD_REQUEST, "malformed Content-Length")
                })?,
        ),
    };
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let capacity = declared.map_or(8 * 1024, |len| len as usize);
    let mut buffer = Vec::with_capacity(capacity.min(limit));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            tracing::debug!(error = %e, "webhook body could not be read");
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            )
        })?;
        if buffer.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buffer))
}

//! `POST /webhooks/rondo-club`: read at most the configured number of bytes, verify the signature
//! over exactly those bytes, then hand the verified body to [`crate::webhook::ingest`], and answer
//! only after the delivery and its changes are committed.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::Json;
use chrono::Utc;
use futures::StreamExt as _;

use super::error::DATABASE_UNAVAILABLE;
use super::{ApiError, AppState};
use crate::webhook::{ingest, Ingested};

/// How long the whole body may take to arrive. A client that trickles bytes gets 408 instead of
/// holding a connection and a task for ever; the snippet sends a few kB at once.
const BODY_DEADLINE: Duration = Duration::from_secs(10);

/// A signed Standard Webhooks delivery from the Rondo Club snippet.
#[utoipa::path(
    post,
    path = "/webhooks/rondo-club",
    tag = "webhook",
    request_body(content = Object, description = "Event: {type, timestamp, data: {id, modified_gmt, acf, origin, user}}, signed with webhook-id, webhook-timestamp, webhook-signature"),
    params(
        ("webhook-id" = String, Header, description = "Unique delivery id (idempotency key)"),
        ("webhook-timestamp" = i64, Header, description = "Unix seconds"),
        ("webhook-signature" = String, Header, description = "v1,<base64 HMAC-SHA256>, space-separated for rotation"),
    ),
    responses(
        (status = 200, description = "Committed (processed, trashed, ignored or duplicate)", content_type = "application/json"),
        (status = 400, description = "Verified but malformed", body = super::error::ErrorBody),
        (status = 401, description = "Bad or missing signature, stale timestamp", body = super::error::ErrorBody),
        (status = 413, description = "Body over the limit", body = super::error::ErrorBody),
    )
)]
#[tracing::instrument(name = "webhook", skip_all, fields(webhook_id, knvb_id))]
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Ingested>, ApiError> {
    let bytes = tokio::time::timeout(
        BODY_DEADLINE,
        read_capped(&headers, body, state.max_body_bytes),
    )
    .await
    .map_err(|_| {
        ApiError::RequestTimeout(format!(
            "the body did not arrive within {} seconds",
            BODY_DEADLINE.as_secs()
        ))
    })
    .and_then(|read| read)
    .inspect_err(|e| {
        let too_large = matches!(e, ApiError::TooLarge(_));
        state
            .ops
            .metrics()
            .record_delivery(if too_large { "too_large" } else { "unreadable" });
    })?;
    let now = Utc::now();
    let verified = state
        .verifier
        .verify(&headers, bytes, now.timestamp())
        .map_err(|e| {
            state.ops.metrics().record_delivery("unverified");
            tracing::warn!(reason = %e, "webhook rejected: not verified");
            ApiError::Unverified(e.to_string())
        })?;
    tracing::Span::current().record("webhook_id", verified.webhook_id());

    let ingested = ingest(&state.store, verified, now).await.map_err(|e| {
        state.ops.metrics().record_delivery("error");
        if e.is_unavailable() {
            // Not acknowledged: the snippet queues the delivery and sends it again later.
            tracing::error!(error = %e, "webhook not recorded: database unavailable");
            ApiError::Unavailable(DATABASE_UNAVAILABLE.into())
        } else {
            ApiError::internal(e)
        }
    })?;
    state.ops.metrics().record_delivery(match &ingested {
        Ingested::Processed { .. } => "processed",
        Ingested::Trashed => "trashed",
        Ingested::Ignored { .. } => "ignored",
        Ingested::Rejected { .. } => "rejected",
        Ingested::Duplicate => "duplicate",
    });
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
            return Err(ApiError::BadRequest(reason.clone()));
        }
        other => tracing::info!(outcome = ?other, "webhook recorded"),
    }
    Ok(Json(ingested))
}

/// The whole body, or 413 as soon as it is known to be longer than `limit`: from
/// `Content-Length` before reading anything, or while reading a body sent without one.
async fn read_capped(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::TooLarge(format!("the body is larger than {limit} bytes"));
    let declared = match headers.get(header::CONTENT_LENGTH) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::BadRequest("malformed Content-Length".into()))?,
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
            ApiError::BadRequest("the request body could not be read".into())
        })?;
        if buffer.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buffer))
}

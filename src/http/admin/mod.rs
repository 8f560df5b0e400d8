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

mod control;
mod detection;
mod forward_sync;
pub mod history;
pub mod member_status;
mod reading;
mod requeue;

pub use control::*;
pub use detection::*;
pub use forward_sync::*;
pub use reading::*;
pub use requeue::*;

pub use super::error::{ApiError, ErrorBody, DATABASE_UNAVAILABLE};
use super::ops::{ExecutorView, OpsState, PollAccepted};
use crate::domain::{ChangeId, ChangeStatus, FieldName, KnvbId};
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

/// Unknown paths under `/api/`.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such API endpoint; see /api/openapi.json".into())
}

//! `GET /api/history`: every change with its story, newest first, filtered by member, status,
//! field and detection time, a page at a time by keyset (`before` = the last id of the previous
//! page), so a page deep in 100,000 changes costs what the first one does. The operator page's
//! history reads the same filter ([`HistoryParams::filter`]).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{parse_statuses, ApiError, ErrorBody};
use crate::catalogue::Catalogue;
use crate::domain::{ChangeId, FieldName};
use crate::http::ops::OpsState;
use crate::store::{HistoryFilter, HistoryRow};

const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// The history's filter as the query string carries it (the API and the operator page).
#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// A KNVB id or its beginning, or a part of the member's name (case does not matter).
    pub q: Option<String>,
    /// Comma-separated statuses: pending, synced, superseded, conflict_lost, skipped, failed.
    pub status: Option<String>,
    /// A tracked field's name.
    pub field: Option<String>,
    /// Detected at or after: RFC 3339, or a date `YYYY-MM-DD` (its start, UTC).
    pub from: Option<String>,
    /// Detected before: RFC 3339, or a date `YYYY-MM-DD` (the end of that day, UTC).
    pub to: Option<String>,
    /// Keyset cursor: the `next_before` of the previous page.
    pub before: Option<String>,
    /// 1 to 200 (default 50).
    pub limit: Option<String>,
}

fn parse_time(name: &str, raw: &str, end_of_day: bool) -> Result<DateTime<Utc>, ApiError> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        ApiError::BadRequest(format!(
            "{name} {:?} is neither an RFC 3339 date-time nor a date YYYY-MM-DD",
            raw.chars().take(40).collect::<String>()
        ))
    })?;
    let date = if end_of_day {
        date.succ_opt().unwrap_or(date)
    } else {
        date
    };
    Ok(date.and_time(chrono::NaiveTime::MIN).and_utc())
}

impl HistoryParams {
    /// The store's filter, every part checked; a bad part is a 400 that names it.
    pub fn filter(&self, catalogue: &Catalogue) -> Result<HistoryFilter, ApiError> {
        // Letters and digits: a KNVB id's beginning or a part of a name; with spaces, hyphens,
        // apostrophes or dots: a part of a name only.
        let (knvb_id_prefix, name) = match self.q.as_deref().map(str::trim) {
            None | Some("") => (None, None),
            Some(q) if q.len() <= 32 && q.chars().all(|c| c.is_ascii_alphanumeric()) => {
                (Some(q.to_ascii_uppercase()), Some(q.to_string()))
            }
            Some(q)
                if q.chars().count() <= 64
                    && q.chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '\'' | '.')) =>
            {
                (None, Some(q.to_string()))
            }
            Some(_) => {
                return Err(ApiError::BadRequest(
                    "q: a KNVB id (or its beginning) or a part of a name: letters, digits, \
                     spaces, - ' and ., at most 64"
                        .into(),
                ))
            }
        };
        let field = match self.field.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(name) => match catalogue.get(name) {
                Some(spec) => Some(spec.name.clone()),
                None => {
                    return Err(ApiError::BadRequest(format!(
                        "field: unknown field {:?}; known: {}",
                        name.chars().take(60).collect::<String>(),
                        catalogue
                            .names()
                            .map(FieldName::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            },
        };
        let from = match self.from.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(parse_time("from", raw, false)?),
        };
        let to = match self.to.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(parse_time("to", raw, true)?),
        };
        if let (Some(from), Some(to)) = (from, to) {
            if from >= to {
                return Err(ApiError::BadRequest("from must be before to".into()));
            }
        }
        let before = match self.before.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(
                raw.parse::<i64>()
                    .ok()
                    .filter(|id| *id > 0)
                    .map(ChangeId)
                    .ok_or_else(|| {
                        ApiError::BadRequest("before must be a positive change id".into())
                    })?,
            ),
        };
        Ok(HistoryFilter {
            knvb_id_prefix,
            knvb_id: None,
            name,
            statuses: parse_statuses(self.status.as_deref())?,
            field,
            from,
            to,
            before,
        })
    }

    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.limit.as_deref() {
            None | Some("") => Ok(DEFAULT_LIMIT),
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "limit must be a whole number from 1 to {MAX_LIMIT}"
                    ))
                }),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPage {
    pub changes: Vec<HistoryRow>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<ChangeId>,
}

/// One page of the history and the cursor of the next: `limit + 1` rows are read, so the
/// last page is known without a count.
pub async fn history_page(
    state: &OpsState,
    filter: HistoryFilter,
    limit: u32,
) -> Result<HistoryPage, ApiError> {
    let mut changes = state
        .store()
        .read(move |db| db.history(&filter, limit + 1))
        .await?;
    let next_before = if changes.len() > limit as usize {
        changes.truncate(limit as usize);
        changes.last().map(|row| row.change.id)
    } else {
        None
    };
    Ok(HistoryPage {
        changes,
        next_before,
    })
}

/// Every change with its story: how it arrived (delivery, run), when it was detected, its
/// attempts and last error, how it ended and the conflict decision about it.
#[utoipa::path(
    get,
    path = "/api/history",
    tag = "admin",
    params(HistoryParams),
    responses(
        (status = 200, description = "One page, newest first", body = HistoryPage),
        (status = 400, description = "Bad filter, cursor or limit", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 503, description = "The database is not available now", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn history(
    State(state): State<OpsState>,
    query: Result<Query<HistoryParams>, QueryRejection>,
) -> Result<Json<HistoryPage>, ApiError> {
    let Query(params) = query?;
    let filter = params.filter(state.store().catalogue())?;
    let limit = params.limit()?;
    history_page(&state, filter, limit).await.map(Json)
}

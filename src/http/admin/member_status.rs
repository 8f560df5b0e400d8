//! The read-only part of the API (`/api/member-status…`): what became of a member's recent
//! edits, per field, in states a volunteer understands, and the counts that need attention.
//! The only endpoints the read-only token (`admin.read_token`) opens; the admin token opens
//! them too. The WordPress snippet's "Sportlink" box and dashboard widget read them.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{bearer, parse_knvb_id, ApiError, ErrorBody};
use crate::domain::FieldName;
use crate::http::ops::OpsState;
use crate::store::{AttentionCounts, ChangeRecord, REFUSAL_MARKER};

/// Default and largest window of "recent" activity, in days.
const DEFAULT_DAYS: i64 = 30;
const MAX_DAYS: i64 = 365;
/// Lost conflicts count as needing attention for this many days.
pub const CONFLICT_DAYS: i64 = 7;

/// Middleware for the read-only endpoints: the read-only token or the admin token, or 401.
pub async fn require_read_token(
    State(state): State<OpsState>,
    request: Request,
    next: Next,
) -> Response {
    match bearer(request.headers()) {
        Some(token) if state.read_token_matches(token) || state.token_matches(token) => {
            next.run(request).await
        }
        _ => ApiError::Unauthorized.into_response(),
    }
}

/// Where a field's latest edit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldState {
    /// Not in Sportlink yet (not tried, or tried and retried later).
    Waiting,
    /// Written to Sportlink and verified there (`since`).
    Verified,
    /// Sportlink refused the value; `sportlink_message` says why. Someone must correct it.
    Refused,
    /// Could not be pushed after its attempts, for another reason; the operator is alerted.
    Failed,
    /// Deliberately not pushed; `reason` says why.
    NotPushed,
}

/// Why an edit was not pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotPushedReason {
    /// The member is a former member ("Oud bondslid") in Sportlink.
    FormerMember,
    Deceased,
    /// A newer edit of the same field replaced it.
    Superseded,
    /// Sportlink held a newer value (it won the conflict); the sync from Sportlink brings it.
    SportlinkNewer,
    Other,
}

/// One tracked field's latest edit.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldStatus {
    pub field: FieldName,
    /// The value the edit set (what is, or was to be, written to Sportlink).
    pub value: String,
    pub state: FieldState,
    pub reason: Option<NotPushedReason>,
    pub detected_at: DateTime<Utc>,
    /// For `verified`: since when Sportlink holds it.
    pub verified_at: Option<DateTime<Utc>>,
    pub attempts: u32,
    /// For `waiting` after a failed attempt and for `refused` while it is retried.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// For `refused`: Sportlink's own message.
    pub sportlink_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MemberStatus {
    pub knvb_id: String,
    /// Whether the service has seen this member at all.
    pub known: bool,
    /// The latest edit of each field with activity in the last `days` days (or still
    /// waiting), by field name.
    pub fields: Vec<FieldStatus>,
}

/// Sportlink's own message in a stored error, when the error is a refused save.
pub fn sportlink_message(last_error: &str) -> Option<String> {
    let (_, after) = last_error.split_once(REFUSAL_MARKER)?;
    // `"<section>": <message>`: the section heading is quoted.
    let message = after
        .strip_prefix('"')
        .and_then(|rest| rest.split_once("\": "))
        .map(|(_, message)| message)
        .unwrap_or(after);
    let message = message.trim();
    (!message.is_empty()).then(|| message.chars().take(500).collect())
}

/// A change row in the volunteer's terms. Pure.
pub fn field_status(change: &ChangeRecord) -> FieldStatus {
    let refusal = change.last_error.as_deref().and_then(sportlink_message);
    let reason_text = change.status_reason.as_deref().unwrap_or("");
    let (state, reason) = match change.status.as_str() {
        "synced" => (FieldState::Verified, None),
        "pending" if refusal.is_some() => (FieldState::Refused, None),
        "pending" => (FieldState::Waiting, None),
        "failed" if refusal.is_some() => (FieldState::Refused, None),
        "failed" => (FieldState::Failed, None),
        "superseded" => (FieldState::NotPushed, Some(NotPushedReason::Superseded)),
        "conflict_lost" => (FieldState::NotPushed, Some(NotPushedReason::SportlinkNewer)),
        "skipped" if reason_text.contains("former") => {
            (FieldState::NotPushed, Some(NotPushedReason::FormerMember))
        }
        "skipped" if reason_text.contains("deceased") => {
            (FieldState::NotPushed, Some(NotPushedReason::Deceased))
        }
        _ => (FieldState::NotPushed, Some(NotPushedReason::Other)),
    };
    FieldStatus {
        field: change.field.clone(),
        value: change.new_value.clone(),
        state,
        reason,
        detected_at: change.detected_at,
        verified_at: (state == FieldState::Verified)
            .then_some(change.synced_at)
            .flatten(),
        attempts: change.attempts,
        next_attempt_at: matches!(change.status.as_str(), "pending")
            .then_some(change.next_attempt_at)
            .flatten(),
        sportlink_message: (state == FieldState::Refused).then_some(refusal).flatten(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemberStatusQuery {
    /// How many days back counts as recent (1 to 365, default 30).
    pub days: Option<String>,
}

/// What became of a member's recent edits, per tracked field. Read-only token or admin token.
#[utoipa::path(
    get,
    path = "/api/member-status/{knvb_id}",
    tag = "member status",
    params(("knvb_id" = String, Path, description = "The member's KNVB id"), MemberStatusQuery),
    responses(
        (status = 200, description = "The member's fields with recent activity (none for a member never seen)", body = MemberStatus),
        (status = 400, description = "Bad KNVB id or days", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 503, description = "The database is not available now", body = ErrorBody),
    ),
    security(("bearer" = []), ("read_token" = []))
)]
#[tracing::instrument(name = "member_status", skip_all)]
pub async fn member_status(
    State(state): State<OpsState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<MemberStatusQuery>, QueryRejection>,
) -> Result<Json<MemberStatus>, ApiError> {
    let Path(raw) = path?;
    let Query(q) = query?;
    let knvb_id = parse_knvb_id(&raw)?;
    let days = match q.days.as_deref() {
        None | Some("") => DEFAULT_DAYS,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|d| (1..=MAX_DAYS).contains(d))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("days must be a whole number from 1 to {MAX_DAYS}"))
            })?,
    };
    let since = Utc::now() - TimeDelta::days(days);
    let lookup = knvb_id.clone();
    let (known, changes) = state
        .store()
        .read(move |db| {
            Ok((
                db.member_known(&lookup)?,
                db.latest_change_per_field(&lookup, since)?,
            ))
        })
        .await?;
    Ok(Json(MemberStatus {
        knvb_id: knvb_id.to_string(),
        known,
        fields: changes.iter().map(field_status).collect(),
    }))
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AttentionView {
    #[serde(flatten)]
    pub counts: AttentionCounts,
    /// `conflicts_lost` counts the lost conflicts of this many last days.
    pub conflict_days: i64,
}

/// The counts of changes that need attention (no members, values or errors). Read-only token
/// or admin token.
#[utoipa::path(
    get,
    path = "/api/member-status",
    tag = "member status",
    responses(
        (status = 200, description = "Counts", body = AttentionView),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 503, description = "The database is not available now", body = ErrorBody),
    ),
    security(("bearer" = []), ("read_token" = []))
)]
pub async fn attention(State(state): State<OpsState>) -> Result<Json<AttentionView>, ApiError> {
    let since = Utc::now() - TimeDelta::days(CONFLICT_DAYS);
    let counts = state
        .store()
        .read(move |db| db.attention_counts(since))
        .await?;
    Ok(Json(AttentionView {
        counts,
        conflict_days: CONFLICT_DAYS,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ChangeId;

    fn change(status: &str, reason: Option<&str>, error: Option<&str>) -> ChangeRecord {
        ChangeRecord {
            id: ChangeId(1),
            knvb_id: "ABC1234".into(),
            field: FieldName::parse("postal_code").unwrap(),
            old_value: "1234AB".into(),
            new_value: "99999".into(),
            source: crate::domain::Source::Webhook,
            status: crate::domain::ChangeStatus::parse(status).expect("a change status"),
            status_reason: reason.map(str::to_string),
            attempts: 1,
            last_error: error.map(str::to_string),
            next_attempt_at: None,
            superseded_by: None,
            detected_at: Utc::now(),
            synced_at: Some(Utc::now()),
            delivery_id: None,
            detection_run_id: None,
        }
    }

    #[test]
    fn a_refusal_keeps_sportlink_own_words() {
        let error = "page general: Sportlink refused the save of section \"Adres\": De postcode '99999' is ongeldig";
        assert_eq!(
            sportlink_message(error).as_deref(),
            Some("De postcode '99999' is ongeldig")
        );
        let s = field_status(&change("pending", None, Some(error)));
        assert_eq!(s.state, FieldState::Refused);
        assert_eq!(
            s.sportlink_message.as_deref(),
            Some("De postcode '99999' is ongeldig")
        );
        assert_eq!(
            field_status(&change("failed", None, Some(error))).state,
            FieldState::Refused
        );
        assert_eq!(sportlink_message("timeout waiting for the page"), None);
    }

    #[test]
    fn every_status_has_a_state() {
        assert_eq!(
            field_status(&change("synced", None, None)).state,
            FieldState::Verified
        );
        assert!(field_status(&change("synced", None, None))
            .verified_at
            .is_some());
        assert_eq!(
            field_status(&change("pending", None, Some("navigation timed out"))).state,
            FieldState::Waiting
        );
        assert_eq!(
            field_status(&change("failed", None, Some("navigation timed out"))).state,
            FieldState::Failed
        );
        assert_eq!(
            field_status(&change("failed", None, Some("navigation timed out"))).sportlink_message,
            None
        );
        let former = field_status(&change(
            "skipped",
            Some("former member (Oud bondslid): not pushed"),
            None,
        ));
        assert_eq!(
            (former.state, former.reason),
            (FieldState::NotPushed, Some(NotPushedReason::FormerMember))
        );
        assert_eq!(
            field_status(&change("superseded", None, None)).reason,
            Some(NotPushedReason::Superseded)
        );
        assert_eq!(
            field_status(&change("conflict_lost", None, None)).reason,
            Some(NotPushedReason::SportlinkNewer)
        );
        assert_eq!(
            field_status(&change(
                "skipped",
                Some("deceased member: not pushed"),
                None
            ))
            .reason,
            Some(NotPushedReason::Deceased)
        );
    }
}

//! The forward sync's report of what it wrote into Rondo Club.

use super::*;

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
    let mut fields = BTreeMap::new();
    for (field, value) in body.fields {
        let Some(spec) = catalogue.get(&field) else {
            return Err(ApiError::BadRequest(format!(
                "fields: unknown field {:?}; known: {}",
                field.chars().take(60).collect::<String>(),
                catalogue
                    .names()
                    .map(FieldName::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        match &value {
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
        fields.insert(spec.name.clone(), value);
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
        fields,
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

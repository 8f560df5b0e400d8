//! A person as Rondo Club's REST API (`/wp/v2/people`) or the webhook snippet sends it.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use crate::domain::KnvbId;
use crate::normalise;

#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// WordPress post id.
    pub id: Option<i64>,
    /// `modified_gmt`: WordPress gives it without a zone; it is UTC.
    pub modified_gmt: Option<DateTime<Utc>>,
    pub acf: Map<String, Value>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PersonError {
    #[error("person is not a JSON object")]
    NotAnObject,
    #[error("person has no `acf` object")]
    NoAcf,
    #[error("person `id` is not a positive integer")]
    BadId,
    #[error("person `modified_gmt` {0:?} is not a date-time like 2026-11-26T11:30:20")]
    BadModified(String),
}

/// Parses WordPress's `modified_gmt` (`2026-11-26T11:30:20`, UTC without a zone); a trailing `Z`
/// or offset is accepted too.
pub fn parse_modified_gmt(raw: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(raw) {
        return Some(dt.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S"))
        .ok()
        .map(|naive| naive.and_utc())
}

impl Person {
    pub fn from_json(value: &Value) -> Result<Self, PersonError> {
        let obj = value.as_object().ok_or(PersonError::NotAnObject)?;
        let acf = match obj.get("acf") {
            Some(Value::Object(map)) => map.clone(),
            // WordPress serialises an empty ACF field group as `[]`.
            Some(Value::Array(a)) if a.is_empty() => Map::new(),
            _ => return Err(PersonError::NoAcf),
        };
        let id = match obj.get("id") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    .filter(|id| *id > 0)
                    .ok_or(PersonError::BadId)?,
            ),
        };
        let modified_gmt = match obj.get("modified_gmt") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                Some(parse_modified_gmt(s).ok_or_else(|| PersonError::BadModified(s.clone()))?)
            }
            Some(other) => return Err(PersonError::BadModified(other.to_string())),
        };
        Ok(Self {
            id,
            modified_gmt,
            acf,
        })
    }

    /// The member id, when the person has a usable one.
    pub fn knvb_id(&self) -> Option<KnvbId> {
        let raw = normalise::json_scalar(self.acf.get("knvb-id")?);
        KnvbId::parse(&raw).ok()
    }

    /// A `knvb-id` that is there but not a usable id (a zero-width space in it, punctuation, a
    /// list): the value as it can be shown safely (invisible and control characters escaped,
    /// at most 64 characters). `None` when the id is usable, or absent or empty (not a member).
    pub fn invalid_knvb_id(&self) -> Option<String> {
        let value = self.acf.get("knvb-id")?;
        let raw = match value {
            serde_json::Value::Null | serde_json::Value::Bool(false) => return None,
            serde_json::Value::String(s) if s.trim().is_empty() => return None,
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => value.to_string(),
            other => normalise::json_scalar(other),
        };
        if KnvbId::parse(&raw).is_ok() {
            return None;
        }
        let shown: String = raw
            .chars()
            .take(64)
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c.to_string()
                } else {
                    c.escape_unicode().to_string()
                }
            })
            .collect();
        Some(shown)
    }
}

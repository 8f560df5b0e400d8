//! The events Rondo Club's snippet sends, parsed only from a [`VerifiedBody`].

use serde::Deserialize;
use serde_json::Value;

use super::signature::VerifiedBody;
use crate::domain::Origin;

/// A person as the event carries it: the same shape as `/wp/v2/people/{id}` with
/// `_fields=id,modified_gmt,acf`, plus who wrote it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawPersonData")]
pub struct PersonData {
    pub id: u64,
    /// UTC without a zone (`2026-11-26T11:30:20`), as WordPress writes it.
    pub modified_gmt: Option<String>,
    /// The tracked ACF fields (an object; WordPress writes an empty one as `[]`).
    pub acf: Value,
    /// `user_edit` or `sync_sportlink_to_rondo_club`.
    pub origin: Origin,
    /// Login of the WordPress user who saved (empty for scripts and cron).
    pub user: Option<String>,
}

/// `data` as sent, before the origin is checked.
#[derive(Deserialize)]
struct RawPersonData {
    id: u64,
    #[serde(default)]
    modified_gmt: Option<String>,
    #[serde(default)]
    acf: Value,
    origin: String,
    #[serde(default)]
    user: Option<String>,
}

impl TryFrom<RawPersonData> for PersonData {
    type Error = String;

    fn try_from(raw: RawPersonData) -> Result<Self, Self::Error> {
        let origin = match Origin::parse(&raw.origin) {
            Some(o @ (Origin::UserEdit | Origin::SyncSportlinkToRondoClub)) => o,
            _ => {
                return Err(format!(
                    "origin {:?} is not user_edit or sync_sportlink_to_rondo_club",
                    raw.origin.chars().take(64).collect::<String>()
                ))
            }
        };
        Ok(Self {
            id: raw.id,
            modified_gmt: raw.modified_gmt,
            acf: raw.acf,
            origin,
            user: raw.user,
        })
    }
}

impl PersonData {
    /// The person as Rondo Club's REST API would show it, for the detection path.
    pub fn person_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "modified_gmt": self.modified_gmt,
            "acf": self.acf,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    PersonCreated(PersonData),
    PersonUpdated(PersonData),
    PersonTrashed(PersonData),
    /// A type this service does not handle; recorded and acknowledged.
    Unknown {
        event_type: String,
    },
}

impl Event {
    pub fn event_type(&self) -> &str {
        match self {
            Self::PersonCreated(_) => "person.created",
            Self::PersonUpdated(_) => "person.updated",
            Self::PersonTrashed(_) => "person.trashed",
            Self::Unknown { event_type } => event_type,
        }
    }
}

/// Why a verified body is not an event we understand. Answered with 400 and recorded.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the body is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("the body is not an event: {0}")]
    WrongShape(String),
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    data: Option<Value>,
}

/// The event type of a verified body, if it is a JSON object with a string `type`; for recording
/// what a rejected delivery claimed to be.
pub fn claimed_type(body: &VerifiedBody) -> Option<String> {
    let value: Value = serde_json::from_slice(body.bytes()).ok()?;
    value.get("type")?.as_str().map(str::to_owned)
}

impl Event {
    pub fn parse(body: &VerifiedBody) -> Result<Self, EventError> {
        Self::parse_stored(body.bytes())
    }

    /// Parses the body of a delivery that was verified when it arrived and is now read back from
    /// the database (operator replay). Never use it for bytes that were not verified.
    pub fn parse_stored(bytes: &[u8]) -> Result<Self, EventError> {
        let value: Value = serde_json::from_slice(bytes).map_err(EventError::NotJson)?;
        if !value.is_object() {
            return Err(EventError::WrongShape("expected a JSON object".into()));
        }
        let envelope: Envelope =
            serde_json::from_value(value).map_err(|e| EventError::WrongShape(e.to_string()))?;
        let person = |data: Option<Value>| -> Result<PersonData, EventError> {
            let data = data.ok_or_else(|| EventError::WrongShape("missing field `data`".into()))?;
            serde_json::from_value(data).map_err(|e| EventError::WrongShape(format!("data: {e}")))
        };
        Ok(match envelope.event_type.as_str() {
            "person.created" => Self::PersonCreated(person(envelope.data)?),
            "person.updated" => Self::PersonUpdated(person(envelope.data)?),
            "person.trashed" => Self::PersonTrashed(person(envelope.data)?),
            _ => Self::Unknown {
                event_type: envelope.event_type,
            },
        })
    }
}

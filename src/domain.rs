//! Newtypes and small enums shared by every part of the flow. Parsed once at the edge, then trusted.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The Sportlink member id (`knvb-id` in Rondo Club), e.g. `ABC1234`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct KnvbId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid KNVB id {0:?}: expected 1 to 32 letters and digits")]
pub struct InvalidKnvbId(pub String);

impl KnvbId {
    pub fn parse(raw: &str) -> Result<Self, InvalidKnvbId> {
        let trimmed = raw.trim();
        let valid = !trimmed.is_empty()
            && trimmed.len() <= 32
            && trimmed.chars().all(|c| c.is_ascii_alphanumeric());
        if valid {
            Ok(Self(trimmed.to_ascii_uppercase()))
        } else {
            Err(InvalidKnvbId(raw.chars().take(64).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KnvbId {
    type Error = InvalidKnvbId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<KnvbId> for String {
    fn from(value: KnvbId) -> Self {
        value.0
    }
}

impl fmt::Display for KnvbId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a tracked field: a key of the field catalogue (`email`, `mobile`, `postal_code`, …),
/// as detection, the store's `field_name` columns, the executor, the API and the CSV carry it.
///
/// Checked for its alphabet (`[a-z][a-z0-9_]*`, at most 48) and not against the catalogue, for
/// three reasons. The name becomes part of column names (`{name}_rondo_club_modified`), so the
/// alphabet is what makes that safe, and a type can promise it everywhere. Whether a name is
/// *tracked* is the catalogue's question, asked where a name comes in from outside (the API's
/// `field` filter, the forward-sync report), and a row of a field that a later catalogue file
/// dropped must still read back. And the catalogue is configuration loaded at start: a type below
/// it could only know it through a global.
///
/// Serialises as its text (JSON, CSV), is stored as its text, and compares with text, so that
/// `change.field == "email"` reads as it should. `{:?}` shows it as the quoted text, as it showed
/// when it was a `String`, so messages naming a field did not change.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String")]
#[schema(
    example = "email",
    description = "A tracked field's name, as the field catalogue has it (`email`, `mobile`, `postal_code`, …)"
)]
pub struct FieldName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "field name {0:?} must be lower-case letters, digits and _, starting with a letter, at most 48"
)]
pub struct InvalidFieldName(pub String);

impl FieldName {
    pub fn parse(raw: &str) -> Result<Self, InvalidFieldName> {
        let valid = !raw.is_empty()
            && raw.len() <= 48
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if valid {
            Ok(Self(raw.to_string()))
        } else {
            Err(InvalidFieldName(raw.chars().take(64).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FieldName {
    type Error = InvalidFieldName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl Serialize for FieldName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for FieldName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Read as the text it is (`r.field.as_deref() == Some("city")`); a name never changes in place.
impl std::ops::Deref for FieldName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for FieldName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Row id of a `rondo_club_change_detections` row. Changes are always marked by this id, never by
/// member and field name (lessons.md 11).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct ChangeId(pub i64);

impl fmt::Display for ChangeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where detection learnt about a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Webhook,
    Poll,
    Replay,
    Baseline,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::Webhook,
        Source::Poll,
        Source::Replay,
        Source::Baseline,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Webhook => "webhook",
            Source::Poll => "poll",
            Source::Replay => "replay",
            Source::Baseline => "baseline",
        }
    }
}

/// Who made the last write, as the snippet reports it and as `rondo_club_members.sync_origin`
/// stores it (the original design's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A person edited the member in Rondo Club.
    UserEdit,
    /// The forward sync copied Sportlink's data into Rondo Club.
    SyncSportlinkToRondoClub,
    /// This service wrote the value into Sportlink.
    SyncRondoClubToSportlink,
}

impl Origin {
    pub const ALL: [Origin; 3] = [
        Origin::UserEdit,
        Origin::SyncSportlinkToRondoClub,
        Origin::SyncRondoClubToSportlink,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Origin::UserEdit => "user_edit",
            Origin::SyncSportlinkToRondoClub => "sync_sportlink_to_rondo_club",
            Origin::SyncRondoClubToSportlink => "sync_rondo_club_to_sportlink",
        }
    }
}

/// The life of one detected change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    /// Waiting for the executor (possibly after failed attempts, see `next_attempt_at`).
    Pending,
    /// Written to Sportlink and verified after a reload (or found already there).
    Synced,
    /// A newer change of the same member and field replaced it before it was pushed.
    Superseded,
    /// Sportlink changed the field meanwhile and won the conflict resolution.
    ConflictLost,
    /// Deliberately not pushed (former or deceased member), with a reason.
    Skipped,
    /// Gave up after the configured number of attempts; replayable.
    Failed,
}

impl ChangeStatus {
    pub const ALL: [ChangeStatus; 6] = [
        ChangeStatus::Pending,
        ChangeStatus::Synced,
        ChangeStatus::Superseded,
        ChangeStatus::ConflictLost,
        ChangeStatus::Skipped,
        ChangeStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeStatus::Pending => "pending",
            ChangeStatus::Synced => "synced",
            ChangeStatus::Superseded => "superseded",
            ChangeStatus::ConflictLost => "conflict_lost",
            ChangeStatus::Skipped => "skipped",
            ChangeStatus::Failed => "failed",
        }
    }
}

/// A code stored as text (in SQLite and in JSON) compares with its text, so that callers that
/// hold the word ("synced") and callers that hold the value agree.
macro_rules! compares_with_text {
    ($($t:ty),*) => {$(
        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    )*};
}

pub(crate) use compares_with_text;

/// A code stored and shown as one word (`ALL` and `as_str` on the type): compares with text,
/// displays as its word, and `parse` reads a word back (`None` for an unknown one).
macro_rules! stored_word {
    ($($t:ty),*) => {$(
        $crate::domain::compares_with_text!($t);

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $t {
            pub fn parse(raw: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|code| code.as_str() == raw)
            }
        }
    )*};
}

pub(crate) use stored_word;

compares_with_text!(FieldName);
stored_word!(Source, ChangeStatus, Origin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knvb_id_is_trimmed_and_uppercased() {
        assert_eq!(KnvbId::parse(" abc1234 ").unwrap().as_str(), "ABC1234");
    }

    #[test]
    fn knvb_id_rejects_empty_and_punctuation() {
        assert!(KnvbId::parse("").is_err());
        assert!(KnvbId::parse("ABC 123").is_err());
        assert!(KnvbId::parse("ABC;DROP").is_err());
        assert!(KnvbId::parse(&"A".repeat(33)).is_err());
    }

    #[test]
    fn field_names_keep_to_the_column_alphabet() {
        assert_eq!(FieldName::parse("postal_code").unwrap(), "postal_code");
        assert_eq!(FieldName::parse("email2").unwrap().to_string(), "email2");
        for bad in [
            "",
            "Email",
            "2email",
            "e-mail",
            " email",
            "email;drop",
            &"a".repeat(49),
        ] {
            assert!(FieldName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_field_name_is_its_text_in_json() {
        let name = FieldName::parse("mobile").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), r#""mobile""#);
        let map = std::collections::BTreeMap::from([(name.clone(), 1)]);
        assert_eq!(serde_json::to_string(&map).unwrap(), r#"{"mobile":1}"#);
        assert_eq!(map.get("mobile"), Some(&1));
        assert_eq!(
            serde_json::from_str::<FieldName>(r#""mobile""#).unwrap(),
            name
        );
        assert!(serde_json::from_str::<FieldName>(r#""Mobile""#).is_err());
    }

    #[test]
    fn enums_round_trip_through_their_names() {
        for s in ChangeStatus::ALL {
            assert_eq!(ChangeStatus::parse(s.as_str()), Some(s));
        }
        for s in Source::ALL {
            assert_eq!(Source::parse(s.as_str()), Some(s));
        }
        for o in Origin::ALL {
            assert_eq!(Origin::parse(o.as_str()), Some(o));
        }
    }
}

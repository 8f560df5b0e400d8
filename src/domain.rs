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

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who made the last write, as the snippet reports it and as `rondo_club_members.sync_origin`
/// stores it (the original design's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
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

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

impl fmt::Display for ChangeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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

compares_with_text!(Source, ChangeStatus);

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

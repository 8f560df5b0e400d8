//! The conflict resolver (product.md §5): the original last-writer-wins table, checked in order,
//! as one pure function. The store writes the audit row (`conflict_resolutions`).

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::catalogue::FieldKind;

/// Clock drift allowance: within it, Sportlink (the official administration) wins.
pub const GRACE: TimeDelta = TimeDelta::seconds(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Winner {
    Neither,
    Sportlink,
    RondoClub,
}

impl Winner {
    pub const ALL: [Winner; 3] = [Winner::Neither, Winner::Sportlink, Winner::RondoClub];

    /// The value stored in `conflict_resolutions.winning_system`.
    pub fn as_str(self) -> &'static str {
        match self {
            Winner::Neither => "neither",
            Winner::Sportlink => "sportlink",
            Winner::RondoClub => "rondo_club",
        }
    }
}

crate::domain::stored_word!(Winner, Reason);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    ValuesMatchNoConflict,
    BothNullSportlinkDefault,
    OnlySportlinkHasHistory,
    OnlyRondoClubHasHistory,
    GracePeriodSportlinkWins,
    RondoClubNewer,
    SportlinkNewer,
}

impl Reason {
    pub const ALL: [Reason; 7] = [
        Reason::ValuesMatchNoConflict,
        Reason::BothNullSportlinkDefault,
        Reason::OnlySportlinkHasHistory,
        Reason::OnlyRondoClubHasHistory,
        Reason::GracePeriodSportlinkWins,
        Reason::RondoClubNewer,
        Reason::SportlinkNewer,
    ];

    /// The value stored in `conflict_resolutions.resolution_reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ValuesMatchNoConflict => "values_match_no_conflict",
            Reason::BothNullSportlinkDefault => "both_null_sportlink_default",
            Reason::OnlySportlinkHasHistory => "only_sportlink_has_history",
            Reason::OnlyRondoClubHasHistory => "only_rondo_club_has_history",
            Reason::GracePeriodSportlinkWins => "grace_period_sportlink_wins",
            Reason::RondoClubNewer => "rondo_club_newer",
            Reason::SportlinkNewer => "sportlink_newer",
        }
    }
}

/// One field as both systems know it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictInput<'a> {
    pub kind: FieldKind,
    pub sportlink_value: &'a str,
    pub rondo_club_value: &'a str,
    pub sportlink_modified: Option<DateTime<Utc>>,
    pub rondo_club_modified: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    pub winner: Winner,
    pub reason: Reason,
}

/// The table of product.md §5, in its order.
pub fn resolve(input: &ConflictInput<'_>) -> Resolution {
    let (winner, reason) = if input
        .kind
        .same(input.sportlink_value, input.rondo_club_value)
    {
        (Winner::Neither, Reason::ValuesMatchNoConflict)
    } else {
        match (input.sportlink_modified, input.rondo_club_modified) {
            (None, None) => (Winner::Sportlink, Reason::BothNullSportlinkDefault),
            (Some(_), None) => (Winner::Sportlink, Reason::OnlySportlinkHasHistory),
            (None, Some(_)) => (Winner::RondoClub, Reason::OnlyRondoClubHasHistory),
            (Some(sportlink), Some(rondo)) => {
                let lead = rondo - sportlink;
                if lead.abs() <= GRACE {
                    (Winner::Sportlink, Reason::GracePeriodSportlinkWins)
                } else if lead > GRACE {
                    (Winner::RondoClub, Reason::RondoClubNewer)
                } else {
                    (Winner::Sportlink, Reason::SportlinkNewer)
                }
            }
        }
    };
    Resolution { winner, reason }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(ms: i64) -> Option<DateTime<Utc>> {
        Some(Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap() + TimeDelta::milliseconds(ms))
    }

    fn run(
        kind: FieldKind,
        s: &str,
        r: &str,
        sm: Option<DateTime<Utc>>,
        rm: Option<DateTime<Utc>>,
    ) -> (Winner, Reason) {
        let res = resolve(&ConflictInput {
            kind,
            sportlink_value: s,
            rondo_club_value: r,
            sportlink_modified: sm,
            rondo_club_modified: rm,
        });
        (res.winner, res.reason)
    }

    #[test]
    fn values_match() {
        assert_eq!(
            run(FieldKind::Text, "a@b.nl", "a@b.nl", t(0), t(60_000)),
            (Winner::Neither, Reason::ValuesMatchNoConflict)
        );
    }

    #[test]
    fn values_that_match_only_after_normalisation() {
        assert_eq!(
            run(FieldKind::Phone, "06 1234 5678", "+31612345678", None, None),
            (Winner::Neither, Reason::ValuesMatchNoConflict)
        );
        assert_eq!(
            run(FieldKind::Date, "30 okt. 2023", "2023-10-30", None, None),
            (Winner::Neither, Reason::ValuesMatchNoConflict)
        );
        assert_eq!(
            run(FieldKind::Checkbox, "1", "true", None, None),
            (Winner::Neither, Reason::ValuesMatchNoConflict)
        );
    }

    #[test]
    fn both_null() {
        assert_eq!(
            run(FieldKind::Text, "a", "b", None, None),
            (Winner::Sportlink, Reason::BothNullSportlinkDefault)
        );
    }

    #[test]
    fn only_sportlink_has_history() {
        assert_eq!(
            run(FieldKind::Text, "a", "b", t(0), None),
            (Winner::Sportlink, Reason::OnlySportlinkHasHistory)
        );
    }

    #[test]
    fn only_rondo_club_has_history() {
        assert_eq!(
            run(FieldKind::Text, "a", "b", None, t(0)),
            (Winner::RondoClub, Reason::OnlyRondoClubHasHistory)
        );
    }

    #[test]
    fn grace_period_at_exactly_five_seconds_either_way() {
        assert_eq!(
            run(FieldKind::Text, "a", "b", t(0), t(5_000)),
            (Winner::Sportlink, Reason::GracePeriodSportlinkWins)
        );
        assert_eq!(
            run(FieldKind::Text, "a", "b", t(5_000), t(0)),
            (Winner::Sportlink, Reason::GracePeriodSportlinkWins)
        );
        assert_eq!(
            run(FieldKind::Text, "a", "b", t(0), t(0)),
            (Winner::Sportlink, Reason::GracePeriodSportlinkWins)
        );
    }

    #[test]
    fn rondo_club_newer_just_past_the_grace() {
        assert_eq!(
            run(FieldKind::Text, "a", "b", t(0), t(5_001)),
            (Winner::RondoClub, Reason::RondoClubNewer)
        );
    }

    #[test]
    fn sportlink_newer_just_past_the_grace() {
        assert_eq!(
            run(FieldKind::Text, "a", "b", t(5_001), t(0)),
            (Winner::Sportlink, Reason::SportlinkNewer)
        );
    }
}

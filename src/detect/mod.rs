//! Detection (product.md §4), the pure part: a person as Rondo Club returns it, plus what we saw of
//! that member last time, gives the tracked values, their hash and what changed. No I/O here; the
//! store applies an [`Evaluation`] in one transaction (`store::Conn::apply_sighting`), and that one
//! path is used by the webhook, the poll, replay and the baseline import.

mod person;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::catalogue::Catalogue;
use crate::domain::{FieldName, KnvbId, Origin, Source};
use crate::normalise;

pub use person::{Person, PersonError};

/// Canonical values of the tracked fields, by field name.
pub type TrackedValues = BTreeMap<FieldName, String>;

/// One time detection learns about a person.
#[derive(Debug, Clone)]
pub struct Sighting {
    pub person: Person,
    pub source: Source,
    /// Who made the write, when the sender knows it (the webhook snippet does; the poll does not).
    pub origin: Option<Origin>,
}

/// What the store knows of a member from the previous sighting.
#[derive(Debug, Clone, PartialEq)]
pub struct Prior {
    pub baseline: TrackedValues,
    pub hash: String,
    pub sync_origin: Option<Origin>,
    /// When the write that `sync_origin` describes happened.
    pub sync_origin_at: Option<DateTime<Utc>>,
    /// `modified_gmt` of the sighting the baseline came from.
    pub modified_gmt: Option<DateTime<Utc>>,
}

/// Why a sighting emitted no changes, or that it did (stored as `rondo_club_members.last_verdict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No `knvb-id`: not a Sportlink member; nothing stored.
    NotAMember,
    /// A `knvb-id` that is there but not a usable id: recorded for the operator, nothing
    /// detected (it may be a member whose edits would otherwise be lost without a trace).
    InvalidKnvbId,
    /// Older than what we already saw (`modified_gmt` before the baseline's): a late poll page
    /// or an old delivery replayed. Applying it would look like a revert nobody made; ignored.
    Stale,
    /// Date of death on or before today: baseline moved, nothing pushed.
    Deceased,
    /// The write came from the forward sync: baseline moved, nothing pushed (loop prevention).
    ForwardSync,
    /// The baseline import: the values become the starting state.
    BaselineImport,
    /// No baseline yet: this sighting becomes it.
    FirstSighting,
    /// Same hash as last time.
    Unchanged,
    /// One or more tracked fields changed.
    Changed,
}

impl Verdict {
    pub const ALL: [Verdict; 9] = [
        Verdict::NotAMember,
        Verdict::InvalidKnvbId,
        Verdict::Stale,
        Verdict::Deceased,
        Verdict::ForwardSync,
        Verdict::BaselineImport,
        Verdict::FirstSighting,
        Verdict::Unchanged,
        Verdict::Changed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NotAMember => "not_a_member",
            Verdict::InvalidKnvbId => "invalid_knvb_id",
            Verdict::Stale => "stale",
            Verdict::Deceased => "deceased",
            Verdict::ForwardSync => "forward_sync",
            Verdict::BaselineImport => "baseline_import",
            Verdict::FirstSighting => "first_sighting",
            Verdict::Unchanged => "unchanged",
            Verdict::Changed => "changed",
        }
    }
}

crate::domain::stored_word!(Verdict);

/// A changed field: the last seen value and the new one, both canonical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: FieldName,
    pub old_value: String,
    pub new_value: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub knvb_id: Option<KnvbId>,
    pub values: TrackedValues,
    pub hash: String,
    pub verdict: Verdict,
    /// Fields whose value differs from the baseline, whatever the verdict: the store moves their
    /// `{field}_rondo_club_modified`.
    pub differing: Vec<FieldName>,
    /// The changes to record (only when the verdict is [`Verdict::Changed`]).
    pub changes: Vec<FieldChange>,
}

/// All tracked values of a person.
pub fn extract(catalogue: &Catalogue, person: &Person) -> TrackedValues {
    catalogue
        .fields()
        .iter()
        .map(|f| (f.name.clone(), f.extract(&person.acf)))
        .collect()
}

/// Fields whose value cannot be read from this person: no source provides it, and a repeater it
/// would come from (`contact_info`, `addresses`) is there but not a list of rows (a serialized
/// PHP array, a string, an object). Such a value is unknown, never empty: detection keeps the
/// last seen value for it and emits nothing (an unreadable repeater once looked like "all e-mail
/// addresses removed" and was pushed into Sportlink as such).
pub fn unreadable_fields(catalogue: &Catalogue, person: &Person) -> BTreeSet<FieldName> {
    use crate::catalogue::RondoSource;
    let repeater_unreadable = |key: &str| match person.acf.get(key) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(rows)) => rows.iter().any(|row| !row.is_object()),
        Some(_) => true,
    };
    catalogue
        .fields()
        .iter()
        .filter(|field| {
            let provided = field.sources.iter().any(|source| match source {
                RondoSource::Acf { acf } => person.acf.contains_key(acf),
                // A readable repeater provides the field (a missing row is an empty value).
                RondoSource::Contact { .. } => {
                    !repeater_unreadable("contact_info") && person.acf.contains_key("contact_info")
                }
                RondoSource::Address { .. } => {
                    !repeater_unreadable("addresses") && person.acf.contains_key("addresses")
                }
            });
            let unreadable = field.sources.iter().any(|source| match source {
                RondoSource::Acf { .. } => false,
                RondoSource::Contact { .. } => repeater_unreadable("contact_info"),
                RondoSource::Address { .. } => repeater_unreadable("addresses"),
            });
            !provided && unreadable
        })
        .map(|field| field.name.clone())
        .collect()
}

/// SHA-256 over the canonical JSON of `{fields, knvb_id}` (keys sorted), hex-encoded.
pub fn tracked_hash(knvb_id: &KnvbId, values: &TrackedValues) -> String {
    #[derive(Serialize)]
    struct Canonical<'a> {
        fields: &'a TrackedValues,
        knvb_id: &'a str,
    }
    let json = serde_json::to_vec(&Canonical {
        fields: values,
        knvb_id: knvb_id.as_str(),
    })
    .unwrap_or_default();
    let digest = Sha256::digest(&json);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_deceased(person: &Person, today: NaiveDate) -> bool {
    person
        .acf
        .get("datum-overlijden")
        .map(normalise::json_scalar)
        .and_then(|raw| normalise::parse_date(&raw))
        .is_some_and(|died| died <= today)
}

/// Whether the last write came from the forward sync: the event says so, or the member row says
/// so, this sighting is not newer than that forward-sync write, and it holds what the forward
/// sync is known to have written (the baseline it left). A meta-only write does not move
/// `modified_gmt`, so a member's edit after a forward-sync run can look "not newer": its values
/// are what tells it apart (`differs` = some tracked value differs from the baseline).
fn from_forward_sync(sighting: &Sighting, prior: Option<&Prior>, differs: bool) -> bool {
    match sighting.origin {
        Some(origin) => origin == Origin::SyncSportlinkToRondoClub,
        None => prior.is_some_and(|p| {
            !differs
                && p.sync_origin == Some(Origin::SyncSportlinkToRondoClub)
                && match (sighting.person.modified_gmt, p.sync_origin_at) {
                    (Some(modified), Some(at)) => modified <= at,
                    _ => true,
                }
        }),
    }
}

/// The seven steps of product.md §4, without side effects.
pub fn evaluate(
    catalogue: &Catalogue,
    sighting: &Sighting,
    prior: Option<&Prior>,
    now: DateTime<Utc>,
) -> Evaluation {
    let mut values = extract(catalogue, &sighting.person);
    // Unknown values stay what they were last seen as (or stay out of a first baseline, to be
    // adopted once readable).
    for field in unreadable_fields(catalogue, &sighting.person) {
        match prior.and_then(|p| p.baseline.get(&field)) {
            Some(seen) => values.insert(field, seen.clone()),
            None => values.remove(&field),
        };
    }
    let Some(knvb_id) = sighting.person.knvb_id() else {
        return Evaluation {
            knvb_id: None,
            values,
            hash: String::new(),
            verdict: if sighting.person.invalid_knvb_id().is_some() {
                Verdict::InvalidKnvbId
            } else {
                Verdict::NotAMember
            },
            differing: Vec::new(),
            changes: Vec::new(),
        };
    };
    let hash = tracked_hash(&knvb_id, &values);
    let stale = match (
        prior.and_then(|p| p.modified_gmt),
        sighting.person.modified_gmt,
    ) {
        (Some(seen), Some(this)) => this < seen,
        _ => false,
    };
    if stale {
        return Evaluation {
            knvb_id: Some(knvb_id),
            values,
            hash,
            verdict: Verdict::Stale,
            differing: Vec::new(),
            changes: Vec::new(),
        };
    }

    // A field missing from the baseline was added to the catalogue since: adopt its value rather
    // than push every member's value as if someone had typed it.
    let differing: Vec<FieldChange> = match prior {
        Some(p) => values
            .iter()
            .filter_map(|(field, new)| {
                let old = p.baseline.get(field)?;
                (old != new).then(|| FieldChange {
                    field: field.clone(),
                    old_value: old.clone(),
                    new_value: new.clone(),
                })
            })
            .collect(),
        None => Vec::new(),
    };
    let differing_names = differing.iter().map(|c| c.field.clone()).collect();

    let verdict = if is_deceased(&sighting.person, now.date_naive()) {
        Verdict::Deceased
    } else if from_forward_sync(sighting, prior, !differing.is_empty()) {
        Verdict::ForwardSync
    } else if sighting.source == Source::Baseline {
        Verdict::BaselineImport
    } else if prior.is_none() {
        Verdict::FirstSighting
    } else if prior.is_some_and(|p| p.hash == hash) || differing.is_empty() {
        Verdict::Unchanged
    } else {
        Verdict::Changed
    };
    let changes = if verdict == Verdict::Changed {
        differing
    } else {
        Vec::new()
    };
    Evaluation {
        knvb_id: Some(knvb_id),
        values,
        hash,
        verdict,
        differing: differing_names,
        changes,
    }
}

#[cfg(test)]
mod tests;

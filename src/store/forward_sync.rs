//! What the forward sync (Sportlink → Rondo Club) reports it wrote (product.md §8). Recording it
//! moves the baseline to those values, so the next sighting of them is not a user edit echoed
//! back into Sportlink (lessons.md 5), and feeds the conflict resolver's timestamps.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

use super::{ts, Conn, Result, SeenThrough, StoreError};
use crate::detect::{tracked_hash, TrackedValues, Verdict};
use crate::domain::{FieldName, KnvbId, Origin};

/// One forward-sync write, validated at the edge (known fields, scalar values).
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardSyncReport {
    pub knvb_id: KnvbId,
    /// Field name → the value written into Rondo Club, as JSON (string, number, bool or null).
    pub fields: BTreeMap<FieldName, Value>,
    /// When the forward sync wrote the values into Rondo Club: the time of the copy (loop
    /// prevention's `sync_origin_at`), not of a change in Rondo Club.
    pub rondo_club_modified: DateTime<Utc>,
    /// When Sportlink last changed them, when the forward sync knows; `None` leaves the stored
    /// `{field}_sportlink_modified` as it is.
    pub sportlink_modified: Option<DateTime<Utc>>,
}

/// What recording a report did.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ForwardSyncOutcome {
    pub knvb_id: KnvbId,
    /// The member had no baseline yet; one was started with the reported fields.
    pub new_member: bool,
    /// The canonical values now in the baseline, by field.
    pub baseline: TrackedValues,
    /// Fields whose baseline value the report changed.
    pub changed_fields: Vec<FieldName>,
}

impl Conn<'_> {
    /// What Sportlink holds for a field as far as a pending (or failed) change knows: the conflict
    /// guard's "old" value of the oldest unpushed change.
    fn expected_sportlink_value(&self, knvb_id: &str, field: &FieldName) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT expected_sportlink_value FROM rondo_club_change_detections
                 WHERE knvb_id = ?1 AND field_name = ?2 AND status IN ('pending', 'failed')
                 ORDER BY id LIMIT 1",
                params![knvb_id, field],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records a forward-sync write in one transaction: baseline values (normalised by the
    /// catalogue) and hash, `sync_origin = sync_sportlink_to_rondo_club` at the write's time, and
    /// per field `{field}_sportlink_modified` (the report's, or the copy time for a value that
    /// is news). `{field}_rondo_club_modified` is left at the last user edit.
    ///
    /// A member without a baseline gets one holding only the reported fields: detection adopts
    /// fields missing from a baseline instead of reporting them as changes.
    pub fn record_forward_sync(
        &self,
        report: &ForwardSyncReport,
        now: DateTime<Utc>,
    ) -> Result<ForwardSyncOutcome> {
        if report.fields.is_empty() {
            return Err(StoreError::Rejected("the report names no fields".into()));
        }
        let mut reported = TrackedValues::new();
        for (field, value) in &report.fields {
            let spec = self.catalogue.get(field).ok_or_else(|| {
                StoreError::Rejected(format!("unknown field {field:?} in the report"))
            })?;
            if value.is_object() || value.is_array() {
                return Err(StoreError::Rejected(format!(
                    "field {field:?}: expected a string, number, boolean or null"
                )));
            }
            reported.insert(field.clone(), spec.kind.normalise_json(value));
        }

        let knvb_id = report.knvb_id.as_str();
        let stored: Option<String> = self
            .conn
            .query_row(
                "SELECT baseline_json FROM rondo_club_members WHERE knvb_id = ?1",
                [knvb_id],
                |r| r.get(0),
            )
            .optional()?;
        let new_member = stored.is_none();
        let mut baseline: TrackedValues = match &stored {
            Some(json) => serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
                what: format!("baseline of {knvb_id}"),
                message: e.to_string(),
            })?,
            None => TrackedValues::new(),
        };
        let mut changed_fields = Vec::new();
        for (field, value) in &reported {
            if baseline.get(field) != Some(value) {
                changed_fields.push(field.clone());
            }
            baseline.insert(field.clone(), value.clone());
        }
        let hash = tracked_hash(&report.knvb_id, &baseline);
        let baseline_json = serde_json::to_string(&baseline).map_err(|e| StoreError::Corrupt {
            what: "baseline".into(),
            message: e.to_string(),
        })?;
        let origin = Origin::SyncSportlinkToRondoClub.as_str();
        let written_at = ts(report.rondo_club_modified);
        if new_member {
            self.conn.execute(
                "INSERT INTO rondo_club_members (
                     knvb_id, tracked_fields_hash, baseline_json, sync_origin, sync_origin_at,
                     first_seen_at, last_seen_at, last_seen_source, last_verdict, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?6)",
                params![
                    knvb_id,
                    hash,
                    baseline_json,
                    origin,
                    written_at,
                    ts(now),
                    SeenThrough::ForwardSyncReport,
                    Verdict::ForwardSync,
                ],
            )?;
        } else {
            self.conn.execute(
                "UPDATE rondo_club_members
                 SET tracked_fields_hash = ?2, baseline_json = ?3, sync_origin = ?4,
                     sync_origin_at = ?5, updated_at = ?6
                 WHERE knvb_id = ?1",
                params![knvb_id, hash, baseline_json, origin, written_at, ts(now)],
            )?;
        }
        for (field, value) in &reported {
            // The reported value is Sportlink's, copied: it says when Sportlink had it, never
            // when a volunteer edited Rondo Club. `{field}_rondo_club_modified` stays at the last
            // user edit (the conflict resolver's Rondo Club side is the time of the value being
            // pushed). `{field}_sportlink_modified` is the report's when it knows it; otherwise,
            // when the value is news about a member we knew (not what Sportlink was known to
            // hold under a pending change, nor the baseline we had), the copy time is the latest
            // Sportlink can have changed it. A first report leaves it unknown.
            let sportlink_modified = match report.sportlink_modified {
                Some(t) => Some(t),
                None if !new_member
                    && changed_fields.contains(field)
                    && self.expected_sportlink_value(knvb_id, field)?.as_ref() != Some(value) =>
                {
                    Some(report.rondo_club_modified)
                }
                None => None,
            };
            // A FieldName is [a-z][a-z0-9_]*: safe in a column name.
            self.conn.execute(
                &format!(
                    "UPDATE rondo_club_members
                     SET {field}_sportlink_modified = COALESCE(?2, {field}_sportlink_modified)
                     WHERE knvb_id = ?1"
                ),
                params![knvb_id, sportlink_modified.map(ts)],
            )?;
        }
        Ok(ForwardSyncOutcome {
            knvb_id: report.knvb_id.clone(),
            new_member,
            baseline,
            changed_fields,
        })
    }
}

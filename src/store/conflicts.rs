//! The conflict audit (`conflict_resolutions`): every decision where the values differed.

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;

use super::{parse_opt_ts, parse_ts, ts, Conn, Result};
use crate::conflict::{ConflictInput, Reason, Resolution, Winner};
use crate::domain::{ChangeId, FieldName, KnvbId};

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ConflictRecord {
    pub id: i64,
    pub knvb_id: String,
    pub field: FieldName,
    pub sportlink_value: Option<String>,
    pub rondo_club_value: Option<String>,
    pub sportlink_modified: Option<DateTime<Utc>>,
    pub rondo_club_modified: Option<DateTime<Utc>>,
    pub winning_system: Winner,
    pub resolution_reason: Reason,
    pub resolved_at: DateTime<Utc>,
    pub change_id: Option<ChangeId>,
}

impl Conn<'_> {
    /// Writes the audit row for one resolver decision.
    pub fn record_conflict(
        &self,
        knvb_id: &KnvbId,
        field: &FieldName,
        input: &ConflictInput<'_>,
        resolution: &Resolution,
        change_id: Option<ChangeId>,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO conflict_resolutions (
                 knvb_id, field_name, sportlink_value, rondo_club_value, sportlink_modified,
                 rondo_club_modified, winning_system, resolution_reason, resolved_at, change_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                knvb_id.as_str(),
                field,
                input.sportlink_value,
                input.rondo_club_value,
                input.sportlink_modified.map(ts),
                input.rondo_club_modified.map(ts),
                resolution.winner.as_str(),
                resolution.reason.as_str(),
                ts(now),
                change_id.map(|c| c.0),
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Conflict decisions, newest first.
    pub fn list_conflicts(
        &self,
        knvb_id: Option<&KnvbId>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<ConflictRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, knvb_id, field_name, sportlink_value, rondo_club_value,
                    sportlink_modified, rondo_club_modified, winning_system, resolution_reason,
                    resolved_at, change_id
             FROM conflict_resolutions WHERE (?1 IS NULL OR knvb_id = ?1)
             ORDER BY id DESC LIMIT ?2 OFFSET ?3",
        )?;
        let rows = stmt
            .query_map(params![knvb_id.map(KnvbId::as_str), limit, offset], |r| {
                Ok((
                    ConflictRecord {
                        id: r.get(0)?,
                        knvb_id: r.get(1)?,
                        field: r.get(2)?,
                        sportlink_value: r.get(3)?,
                        rondo_club_value: r.get(4)?,
                        sportlink_modified: None,
                        rondo_club_modified: None,
                        winning_system: r.get(7)?,
                        resolution_reason: r.get(8)?,
                        resolved_at: DateTime::<Utc>::MIN_UTC,
                        change_id: r.get::<_, Option<i64>>(10)?.map(ChangeId),
                    },
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, String>(9)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(mut rec, sm, rm, at)| {
                rec.sportlink_modified = parse_opt_ts(sm)?;
                rec.rondo_club_modified = parse_opt_ts(rm)?;
                rec.resolved_at = parse_ts(&at)?;
                Ok(rec)
            })
            .collect()
    }
}

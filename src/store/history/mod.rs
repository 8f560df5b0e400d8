//! Reading the history of changes: every change with its story (how it arrived, its attempts,
//! how it ended, its conflict decision), newest first, a page at a time by keyset; a member's
//! latest change per field (what the WordPress box shows); the counts that need attention.

use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, types::Value};
use serde::Serialize;

use super::changes::{finish, record, RECORD_COLUMNS};
use super::{parse_opt_ts, ts, ChangeRecord, Conn, Result, RunKind};
use crate::conflict::{Reason, Winner};
use crate::domain::{ChangeId, ChangeStatus, FieldName, KnvbId};

/// How the executor words a save that Sportlink refused (`PageError::SaveRefused`); the text
/// after it is Sportlink's own message. The change row keeps only the error's text, so this is
/// how a refusal is told from other failures.
pub const REFUSAL_MARKER: &str = "Sportlink refused the save of section ";

/// What the history is filtered by. Empty means "all".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryFilter {
    /// A KNVB id or its beginning (upper case).
    pub knvb_id_prefix: Option<String>,
    /// Exactly this member (a member's timeline).
    pub knvb_id: Option<KnvbId>,
    /// A part of the member's name (`display_name`); with `knvb_id_prefix`, either matches.
    pub name: Option<String>,
    pub statuses: Vec<ChangeStatus>,
    pub field: Option<FieldName>,
    /// Detected at or after.
    pub from: Option<DateTime<Utc>>,
    /// Detected before.
    pub to: Option<DateTime<Utc>>,
    /// Keyset cursor: only changes with a smaller id (the last id of the previous page).
    pub before: Option<ChangeId>,
}

/// One change and its story.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HistoryRow {
    #[serde(flatten)]
    pub change: ChangeRecord,
    /// The member's name as Rondo Club last showed it.
    pub member_name: Option<String>,
    /// When the webhook delivery that carried it arrived (absent for poll and replay).
    pub received_at: Option<DateTime<Utc>>,
    /// The detection run's kind (`poll`, `full_poll`, `replay`, …) and start.
    pub run_kind: Option<RunKind>,
    pub run_started_at: Option<DateTime<Utc>>,
    /// When it ended without a push, failed for good or was verified.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The conflict decision about this change, if the values differed at push time.
    pub conflict_winner: Option<Winner>,
    pub conflict_reason: Option<Reason>,
    /// What Sportlink held at that decision.
    pub conflict_sportlink_value: Option<String>,
}

/// The changes that need someone's attention, for the WordPress dashboard widget.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AttentionCounts {
    /// Pending, not tried yet.
    pub waiting: u64,
    /// Pending after a failed attempt that was not a refusal (retried later).
    pub retrying: u64,
    /// Sportlink refused the value (pending or failed): someone must correct it.
    pub refused: u64,
    /// Gave up after the attempts for another reason.
    pub failed: u64,
    /// Sportlink had a newer value and won, in the last `conflict_days` days.
    pub conflicts_lost: u64,
}

/// `c.id, c.knvb_id, …`: the record's columns from the aliased change table.
fn prefixed_columns() -> String {
    RECORD_COLUMNS
        .split(',')
        .map(|c| format!("c.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The smallest string greater than every string that starts with `prefix` (KNVB ids are
/// ASCII, so U+FFFF sorts after any character they hold).
fn prefix_upper_bound(prefix: &str) -> String {
    format!("{prefix}\u{FFFF}")
}

impl Conn<'_> {
    /// At most `limit` changes matching `filter`, newest (highest id) first. The page's ids are
    /// chosen first and only they are joined to their delivery, run and conflict.
    pub fn history(&self, filter: &HistoryFilter, limit: u32) -> Result<Vec<HistoryRow>> {
        let (where_sql, args) = history_where(filter);
        let sql = format!(
            "SELECT {cols}, c.resolved_at, d.received_at, r.kind, r.started_at,
                    cr.winning_system, cr.resolution_reason, cr.sportlink_value, m.display_name
             FROM (SELECT c.id FROM rondo_club_change_detections c
                   WHERE {where_sql} ORDER BY c.id DESC LIMIT {limit}) page
             JOIN rondo_club_change_detections c ON c.id = page.id
             LEFT JOIN webhook_deliveries d ON d.id = c.delivery_id
             LEFT JOIN runs r ON r.id = c.detection_run_id
             LEFT JOIN rondo_club_members m ON m.knvb_id = c.knvb_id
             LEFT JOIN conflict_resolutions cr ON cr.id =
                 (SELECT MAX(x.id) FROM conflict_resolutions x WHERE x.change_id = c.id)
             ORDER BY c.id DESC",
            cols = prefixed_columns(),
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let n = RECORD_COLUMNS.split(',').count();
        let rows = stmt
            .query_map(params_from_iter(args.iter()), |r| {
                Ok((
                    record(r)?,
                    r.get::<_, Option<String>>(n)?,
                    r.get::<_, Option<String>>(n + 1)?,
                    r.get::<_, Option<RunKind>>(n + 2)?,
                    r.get::<_, Option<String>>(n + 3)?,
                    r.get::<_, Option<Winner>>(n + 4)?,
                    r.get::<_, Option<Reason>>(n + 5)?,
                    r.get::<_, Option<String>>(n + 6)?,
                    r.get::<_, Option<String>>(n + 7)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(
                |(raw, resolved, received, kind, started, winner, reason, sportlink, name)| {
                    Ok(HistoryRow {
                        change: finish(raw)?,
                        member_name: name,
                        received_at: parse_opt_ts(received)?,
                        run_kind: kind,
                        run_started_at: parse_opt_ts(started)?,
                        resolved_at: parse_opt_ts(resolved)?,
                        conflict_winner: winner,
                        conflict_reason: reason,
                        conflict_sportlink_value: sportlink,
                    })
                },
            )
            .collect()
    }

    /// How many changes match `filter` (its cursor ignored), counted up to `cap`: the
    /// operator's bulk requeue names the number, and a count never scans more than that.
    pub fn count_history(&self, filter: &HistoryFilter, cap: u64) -> Result<u64> {
        let filter = HistoryFilter {
            before: None,
            ..filter.clone()
        };
        let (where_sql, args) = history_where(&filter);
        let sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM rondo_club_change_detections c
             WHERE {where_sql} LIMIT {cap})"
        );
        Ok(self
            .conn
            .query_row(&sql, params_from_iter(args.iter()), |r| r.get(0))?)
    }

    /// The ids of the changes matching `filter`, newest first, at most `limit`.
    pub fn history_ids(&self, filter: &HistoryFilter, limit: u32) -> Result<Vec<ChangeId>> {
        let (where_sql, args) = history_where(filter);
        let sql = format!(
            "SELECT c.id FROM rondo_club_change_detections c
             WHERE {where_sql} ORDER BY c.id DESC LIMIT {limit}"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let ids = stmt
            .query_map(params_from_iter(args.iter()), |r| r.get::<_, i64>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(ids.into_iter().map(ChangeId).collect())
    }

    /// The member's newest change of each field that was detected since `since` or is still
    /// pending, by field name.
    pub fn latest_change_per_field(
        &self,
        knvb_id: &KnvbId,
        since: DateTime<Utc>,
    ) -> Result<Vec<ChangeRecord>> {
        let sql = format!(
            "SELECT {cols} FROM rondo_club_change_detections c
             WHERE c.knvb_id = ?1
               AND c.id = (SELECT MAX(l.id) FROM rondo_club_change_detections l
                           WHERE l.knvb_id = c.knvb_id AND l.field_name = c.field_name)
               AND (c.detected_at >= ?2 OR c.status = 'pending')
             ORDER BY c.field_name",
            cols = prefixed_columns(),
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map(params![knvb_id.as_str(), ts(since)], record)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(finish).collect()
    }

    /// Whether detection has seen this member (a baseline or any change).
    pub fn member_known(&self, knvb_id: &KnvbId) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM rondo_club_members WHERE knvb_id = ?1)
                 OR EXISTS (SELECT 1 FROM rondo_club_change_detections WHERE knvb_id = ?1)",
            [knvb_id.as_str()],
            |r| r.get(0),
        )?)
    }

    /// The counts that need attention; lost conflicts resolved since `conflicts_since`.
    pub fn attention_counts(&self, conflicts_since: DateTime<Utc>) -> Result<AttentionCounts> {
        let refused = "instr(COALESCE(last_error, ''), ?1) > 0";
        let sql = format!(
            "SELECT
                 COALESCE(SUM(status = 'pending' AND attempts = 0), 0),
                 COALESCE(SUM(status = 'pending' AND attempts > 0 AND NOT {refused}), 0),
                 COALESCE(SUM(status IN ('pending', 'failed') AND {refused}), 0),
                 COALESCE(SUM(status = 'failed' AND NOT {refused}), 0),
                 COALESCE(SUM(status = 'conflict_lost' AND resolved_at >= ?2), 0)
             FROM rondo_club_change_detections
             WHERE status IN ('pending', 'failed', 'conflict_lost')"
        );
        Ok(self
            .conn
            .query_row(&sql, params![REFUSAL_MARKER, ts(conflicts_since)], |r| {
                Ok(AttentionCounts {
                    waiting: r.get(0)?,
                    retrying: r.get(1)?,
                    refused: r.get(2)?,
                    failed: r.get(3)?,
                    conflicts_lost: r.get(4)?,
                })
            })?)
    }
}

/// The `WHERE` clause (over alias `c`) and its arguments.
fn history_where(filter: &HistoryFilter) -> (String, Vec<Value>) {
    let mut sql = String::from("1 = 1");
    let mut args: Vec<Value> = Vec::new();
    let prefix = filter.knvb_id_prefix.as_deref().filter(|p| !p.is_empty());
    let name = filter.name.as_deref().filter(|n| !n.is_empty());
    let by_name = "c.knvb_id IN (SELECT knvb_id FROM rondo_club_members
                                 WHERE display_name LIKE ? ESCAPE '\\')";
    if let Some(prefix) = prefix {
        sql.push_str(" AND (c.knvb_id >= ? AND c.knvb_id < ?");
        args.push(Value::Text(prefix.to_string()));
        args.push(Value::Text(prefix_upper_bound(prefix)));
        if name.is_some() {
            sql.push_str(" OR ");
            sql.push_str(by_name);
        }
        sql.push(')');
    } else if name.is_some() {
        sql.push_str(" AND ");
        sql.push_str(by_name);
    }
    if let Some(name) = name {
        let escaped = name
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        args.push(Value::Text(format!("%{escaped}%")));
    }
    if let Some(member) = &filter.knvb_id {
        sql.push_str(" AND c.knvb_id = ?");
        args.push(Value::Text(member.as_str().to_string()));
    }
    if !filter.statuses.is_empty() {
        sql.push_str(&format!(
            " AND c.status IN ({})",
            vec!["?"; filter.statuses.len()].join(", ")
        ));
        args.extend(
            filter
                .statuses
                .iter()
                .map(|s| Value::Text(s.as_str().to_string())),
        );
    }
    if let Some(field) = &filter.field {
        sql.push_str(" AND c.field_name = ?");
        args.push(Value::Text(field.to_string()));
    }
    if let Some(from) = filter.from {
        sql.push_str(" AND c.detected_at >= ?");
        args.push(Value::Text(ts(from)));
    }
    if let Some(to) = filter.to {
        sql.push_str(" AND c.detected_at < ?");
        args.push(Value::Text(ts(to)));
    }
    if let Some(before) = filter.before {
        sql.push_str(" AND c.id < ?");
        args.push(Value::Integer(before.0));
    }
    (sql, args)
}

/// The history's benchmark (ignored by `cargo test`; the file says how to run it).
#[cfg(test)]
mod bench;

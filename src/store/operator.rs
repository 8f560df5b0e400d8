//! Queries for the admin API, the operator page and the metrics: totals for paging, stored
//! webhook deliveries (for replay), and change counts by field.

use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, OptionalExtension};
use serde::Serialize;

use super::{parse_ts, ts, Conn, DeliveryOutcome, Result};
use crate::domain::{ChangeId, ChangeStatus, FieldName, KnvbId, Source};

/// The newest delivery, as the operator page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeliverySummary {
    pub id: String,
    pub received_at: DateTime<Utc>,
    pub event_type: Option<String>,
    pub knvb_id: Option<String>,
    pub outcome: DeliveryOutcome,
    pub detail: Option<String>,
}

/// Number of change rows per (field, source, status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldSourceStatusCount {
    pub field: FieldName,
    pub source: Source,
    pub status: ChangeStatus,
    pub count: u64,
}

impl Conn<'_> {
    /// How many changes `list_changes` would page through with these filters.
    pub fn count_changes(
        &self,
        statuses: &[ChangeStatus],
        knvb_id: Option<&KnvbId>,
    ) -> Result<u64> {
        let mut sql = String::from("SELECT COUNT(*) FROM rondo_club_change_detections WHERE 1 = 1");
        let mut args: Vec<String> = Vec::new();
        if !statuses.is_empty() {
            sql.push_str(&format!(
                " AND status IN ({})",
                vec!["?"; statuses.len()].join(", ")
            ));
            args.extend(statuses.iter().map(|s| s.as_str().to_string()));
        }
        if let Some(id) = knvb_id {
            sql.push_str(" AND knvb_id = ?");
            args.push(id.as_str().to_string());
        }
        Ok(self
            .conn
            .query_row(&sql, params_from_iter(args.iter()), |r| r.get(0))?)
    }

    /// The change rows a run recorded, by id.
    pub fn changes_of_run(&self, run_id: i64) -> Result<Vec<ChangeId>> {
        let mut stmt = self.conn.prepare(
            "SELECT id FROM rondo_club_change_detections WHERE detection_run_id = ?1 ORDER BY id",
        )?;
        let ids = stmt
            .query_map([run_id], |r| r.get(0).map(ChangeId))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(ids)
    }

    pub fn count_conflicts(&self, knvb_id: Option<&KnvbId>) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM conflict_resolutions WHERE (?1 IS NULL OR knvb_id = ?1)",
            [knvb_id.map(KnvbId::as_str)],
            |r| r.get(0),
        )?)
    }

    /// Runs per (kind, status), for metrics: poll runs survive restarts this way.
    pub fn run_counts(&self) -> Result<Vec<(String, String, u64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT kind, status, COUNT(*) FROM runs GROUP BY kind, status ORDER BY kind, status",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn count_runs(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))?)
    }

    /// Change rows per field, source and status (for metrics, read at scrape time).
    pub fn change_counts_by_field(&self) -> Result<Vec<FieldSourceStatusCount>> {
        let mut stmt = self.conn.prepare(
            "SELECT field_name, source, status, COUNT(*) FROM rondo_club_change_detections
             GROUP BY field_name, source, status ORDER BY field_name, source, status",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(FieldSourceStatusCount {
                    field: r.get(0)?,
                    source: r.get(1)?,
                    status: r.get(2)?,
                    count: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Notes that an operator replayed a delivery. Returns whether the delivery exists.
    pub fn mark_delivery_replayed(&self, id: &str, now: DateTime<Utc>) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE webhook_deliveries SET replayed_at = ?2 WHERE id = ?1",
            params![id, ts(now)],
        )?;
        Ok(n > 0)
    }

    /// The most recently received delivery, if any.
    pub fn last_delivery(&self) -> Result<Option<DeliverySummary>> {
        let row = self
            .conn
            .query_row(
                "SELECT id, received_at, event_type, knvb_id, outcome, detail
                 FROM webhook_deliveries ORDER BY received_at DESC, rowid DESC LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, DeliveryOutcome>(4)?,
                        r.get::<_, Option<String>>(5)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(id, received, event_type, knvb_id, outcome, detail)| {
            Ok(DeliverySummary {
                id,
                received_at: parse_ts(&received)?,
                event_type,
                knvb_id,
                outcome,
                detail,
            })
        })
        .transpose()
    }
}

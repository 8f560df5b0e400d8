//! Webhook deliveries (`webhook_deliveries`), keyed by `webhook-id`. The insert is the
//! idempotency guard: it happens in the same transaction as the detection it leads to, so a
//! delivery is processed exactly once however many times (or how concurrently) it arrives.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{parse_opt_ts, parse_ts, ts, Conn, Result};

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// A person event that went through detection (see `detail` for the verdict).
    Processed,
    /// `person.trashed`: recorded, nothing detected.
    Trashed,
    /// An event type this service does not handle.
    Ignored,
    /// Verified, but not an event we understand (answered 400; `detail` says why).
    Rejected,
}

impl DeliveryOutcome {
    pub const ALL: [DeliveryOutcome; 4] = [
        Self::Processed,
        Self::Trashed,
        Self::Ignored,
        Self::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Trashed => "trashed",
            Self::Ignored => "ignored",
            Self::Rejected => "rejected",
        }
    }
}

crate::domain::stored_word!(DeliveryOutcome);

/// A verified delivery, as it is recorded.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    pub id: &'a str,
    pub received_at: DateTime<Utc>,
    /// The sender's `webhook-timestamp`.
    pub webhook_timestamp: i64,
    pub event_type: Option<&'a str>,
    pub wp_post_id: Option<i64>,
    pub knvb_id: Option<&'a str>,
    pub outcome: DeliveryOutcome,
    pub detail: Option<&'a str>,
    /// The raw body, exactly as signed (for replay).
    pub body: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRecord {
    pub id: String,
    pub received_at: DateTime<Utc>,
    pub webhook_timestamp: i64,
    pub event_type: Option<String>,
    pub wp_post_id: Option<i64>,
    pub knvb_id: Option<String>,
    pub outcome: DeliveryOutcome,
    pub detail: Option<String>,
    #[serde(skip)]
    pub body: Vec<u8>,
    pub replayed_at: Option<DateTime<Utc>>,
}

const DELIVERY_COLUMNS: &str = "id, received_at, webhook_timestamp, event_type, wp_post_id, \
     knvb_id, outcome, detail, body, replayed_at";

fn delivery_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(DeliveryRecord, String, Option<String>)> {
    Ok((
        DeliveryRecord {
            id: r.get(0)?,
            received_at: DateTime::<Utc>::MIN_UTC,
            webhook_timestamp: r.get(2)?,
            event_type: r.get(3)?,
            wp_post_id: r.get(4)?,
            knvb_id: r.get(5)?,
            outcome: r.get(6)?,
            detail: r.get(7)?,
            body: r.get(8)?,
            replayed_at: None,
        },
        r.get(1)?,
        r.get(9)?,
    ))
}

fn finish(raw: (DeliveryRecord, String, Option<String>)) -> Result<DeliveryRecord> {
    let (mut record, received, replayed) = raw;
    record.received_at = parse_ts(&received)?;
    record.replayed_at = parse_opt_ts(replayed)?;
    Ok(record)
}

impl Conn<'_> {
    /// Records a delivery unless its id is already known. `false` means a duplicate: the caller
    /// must then do nothing else for it. An id whose earlier delivery was rejected (answered 400,
    /// nothing done) does not count as seen: the new delivery takes its place.
    pub fn insert_delivery(&self, delivery: &NewDelivery<'_>) -> Result<bool> {
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO webhook_deliveries (id, received_at, webhook_timestamp, event_type,
                 wp_post_id, knvb_id, outcome, detail, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (id) DO UPDATE SET
                 received_at = excluded.received_at,
                 webhook_timestamp = excluded.webhook_timestamp,
                 event_type = excluded.event_type,
                 wp_post_id = excluded.wp_post_id,
                 knvb_id = excluded.knvb_id,
                 outcome = excluded.outcome,
                 detail = excluded.detail,
                 body = excluded.body,
                 replayed_at = NULL
             WHERE webhook_deliveries.outcome = 'rejected'",
            )?
            .execute(params![
                delivery.id,
                ts(delivery.received_at),
                delivery.webhook_timestamp,
                delivery.event_type,
                delivery.wp_post_id,
                delivery.knvb_id,
                delivery.outcome.as_str(),
                delivery.detail,
                delivery.body,
            ])?;
        Ok(inserted == 1)
    }

    /// Sets what detection made of a delivery recorded in the same transaction.
    pub fn set_delivery_result(
        &self,
        id: &str,
        knvb_id: Option<&str>,
        outcome: DeliveryOutcome,
        detail: &str,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE webhook_deliveries
                 SET knvb_id = COALESCE(?2, knvb_id), outcome = ?3, detail = ?4
                 WHERE id = ?1",
            )?
            .execute(params![id, knvb_id, outcome.as_str(), detail])?;
        Ok(())
    }

    pub fn delivery(&self, id: &str) -> Result<Option<DeliveryRecord>> {
        self.conn
            .query_row(
                &format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = ?1"),
                [id],
                delivery_row,
            )
            .optional()?
            .map(finish)
            .transpose()
    }

    /// Deliveries about one WordPress post, oldest first.
    pub fn deliveries_for_post(&self, wp_post_id: i64) -> Result<Vec<DeliveryRecord>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE wp_post_id = ?1
             ORDER BY received_at, rowid"
        ))?;
        let rows = stmt
            .query_map([wp_post_id], delivery_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(finish).collect()
    }

    pub fn delivery_count(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM webhook_deliveries", [], |r| r.get(0))?)
    }
}

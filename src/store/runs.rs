//! Runs (poll, baseline, replay, executor) and the poll's watermark (`reverse_sync_state`).

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{parse_opt_ts, parse_ts, ts, Conn, Result, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Poll,
    FullPoll,
    Detect,
    Baseline,
    Replay,
    Sync,
}

impl RunKind {
    pub const ALL: [RunKind; 6] = [
        RunKind::Poll,
        RunKind::FullPoll,
        RunKind::Detect,
        RunKind::Baseline,
        RunKind::Replay,
        RunKind::Sync,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Poll => "poll",
            RunKind::FullPoll => "full_poll",
            RunKind::Detect => "detect",
            RunKind::Baseline => "baseline",
            RunKind::Replay => "replay",
            RunKind::Sync => "sync",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
}

impl RunStatus {
    pub const ALL: [RunStatus; 3] = [RunStatus::Running, RunStatus::Completed, RunStatus::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
        }
    }
}

crate::domain::stored_word!(RunKind, RunStatus);

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RunRecord {
    pub id: i64,
    pub kind: RunKind,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub knvb_id: Option<String>,
    pub dry_run: bool,
    pub people_seen: u64,
    pub changes_detected: u64,
    pub detail: Option<String>,
    pub error: Option<String>,
}

impl Conn<'_> {
    pub fn start_run(
        &self,
        kind: RunKind,
        knvb_id: Option<&str>,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO runs (kind, started_at, status, knvb_id, dry_run)
             VALUES (?1, ?2, 'running', ?3, ?4)",
            params![kind.as_str(), ts(now), knvb_id, dry_run],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Adds to a running run's counters (a poll commits page by page).
    pub fn add_to_run(&self, id: i64, people_seen: u64, changes: u64) -> Result<()> {
        self.conn.execute(
            "UPDATE runs SET people_seen = people_seen + ?2, changes_detected = changes_detected + ?3
             WHERE id = ?1",
            params![id, people_seen, changes],
        )?;
        Ok(())
    }

    pub fn finish_run(
        &self,
        id: i64,
        status: RunStatus,
        detail: Option<&str>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE runs SET status = ?2, finished_at = ?3, detail = ?4, error = ?5
             WHERE id = ?1 AND status = 'running'",
            params![id, status.as_str(), ts(now), detail, error],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("running run {id}")));
        }
        Ok(())
    }

    pub fn list_runs(&self, limit: u32, offset: u32) -> Result<Vec<RunRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, kind, status, started_at, finished_at, knvb_id, dry_run, people_seen,
                    changes_detected, detail, error
             FROM runs ORDER BY id DESC LIMIT ?1 OFFSET ?2",
        )?;
        let rows = stmt
            .query_map(params![limit, offset], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, RunKind>(1)?,
                    r.get::<_, RunStatus>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, bool>(6)?,
                    r.get::<_, u64>(7)?,
                    r.get::<_, u64>(8)?,
                    r.get::<_, Option<String>>(9)?,
                    r.get::<_, Option<String>>(10)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(
                |(
                    id,
                    kind,
                    status,
                    started,
                    finished,
                    knvb_id,
                    dry_run,
                    seen,
                    changes,
                    detail,
                    error,
                )| {
                    Ok(RunRecord {
                        id,
                        kind,
                        status,
                        started_at: parse_ts(&started)?,
                        finished_at: parse_opt_ts(finished)?,
                        knvb_id,
                        dry_run,
                        people_seen: seen,
                        changes_detected: changes,
                        detail,
                        error,
                    })
                },
            )
            .collect()
    }

    /// The poll's watermark: the newest `modified_gmt` a completed full run has seen.
    pub fn watermark(&self) -> Result<Option<DateTime<Utc>>> {
        let raw: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT last_detection_at FROM reverse_sync_state WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        parse_opt_ts(raw.flatten())
    }

    /// Moves the watermark forward (never back).
    pub fn advance_watermark(&self, to: DateTime<Utc>, now: DateTime<Utc>) -> Result<()> {
        self.conn.execute(
            "UPDATE reverse_sync_state
             SET last_detection_at = CASE
                     WHEN last_detection_at IS NULL OR last_detection_at < ?1 THEN ?1
                     ELSE last_detection_at END,
                 updated_at = ?2
             WHERE id = 1",
            params![ts(to), ts(now)],
        )?;
        Ok(())
    }
}

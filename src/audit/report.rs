//! A run's results for people: the CSV, the progress line and the verdict counts.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;

use crate::store::{AuditResult, AuditRun, AuditVerdict};

/// A run's verdicts as CSV (RFC 4180, header line). A cell that a spreadsheet would run as a
/// formula gets a leading `'`; phone numbers (`+31…`) stay as they are.
pub fn to_csv(results: &[AuditResult]) -> String {
    let mut out = String::from(
        "audit_id,knvb_id,field,verdict,sportlink_value,rondo_club_value,sportlink_modified,\
         rondo_club_modified,pending_change_id,queued_change_id,detail,row_id\r\n",
    );
    let ts = |t: Option<chrono::DateTime<Utc>>| t.map(crate::store::ts).unwrap_or_default();
    for r in results {
        let cells = [
            r.audit_id.to_string(),
            r.knvb_id.clone(),
            r.field.as_deref().unwrap_or_default().to_owned(),
            r.verdict.as_str().to_owned(),
            r.sportlink_value.clone().unwrap_or_default(),
            r.rondo_club_value.clone().unwrap_or_default(),
            ts(r.sportlink_modified),
            ts(r.rondo_club_modified),
            r.pending_change_id
                .map(|i| i.to_string())
                .unwrap_or_default(),
            r.queued_change_id
                .map(|i| i.to_string())
                .unwrap_or_default(),
            r.detail.clone().unwrap_or_default(),
            r.id.to_string(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

pub(super) fn csv_cell(value: &str) -> String {
    let looks_like_number = |s: &str| {
        s.len() > 1
            && s[1..]
                .chars()
                .all(|c| c.is_ascii_digit() || c == ' ' || c == '.' || c == '-')
    };
    let formula = match value.chars().next() {
        Some('=' | '@' | '\t' | '\r') => true,
        Some('+' | '-') => !looks_like_number(value),
        _ => false,
    };
    let value = if formula {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// One line of progress: members done of all, and the estimate of the time left.
pub fn progress_line(run: &AuditRun) -> String {
    let left = run
        .estimated_ms_left()
        .map(|ms| format!(", about {} left", human_duration(Duration::from_millis(ms))))
        .unwrap_or_default();
    format!(
        "audit {}: {}, {} of {} members{left}",
        run.id, run.status, run.members_done, run.members_total
    )
}

pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Verdict counts as `verdict: n` pairs, in a fixed order.
pub fn summary(counts: &[(AuditVerdict, u64)]) -> String {
    let map: HashMap<AuditVerdict, u64> = counts.iter().copied().collect();
    AuditVerdict::ALL
        .iter()
        .map(|k| format!("{k}: {}", map.get(k).copied().unwrap_or(0)))
        .collect::<Vec<_>>()
        .join(", ")
}

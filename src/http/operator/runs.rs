//! Runs in words ("poll: 3 people seen, 1 changed, 4 changes; watermark moved to 15:17"), with
//! the runs that found nothing to do folded into one line.

use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde_json::Value;

use super::i18n::L10n;
use crate::store::RunRecord;

/// What a run's `detail` says, read from what the poll (its report as JSON) and the executor
/// (`members: N done, N failed, N skipped`) record.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    people_changed: u64,
    changes: u64,
    watermark: Option<DateTime<Utc>>,
    sync: Option<(u64, u64, u64)>,
}

fn counts(run: &RunRecord) -> Counts {
    let detail = run.detail.as_deref().unwrap_or("");
    let mut c = Counts {
        changes: run.changes_detected,
        ..Default::default()
    };
    if let Ok(report) = serde_json::from_str::<Value>(detail) {
        let n = |key: &str| report.get(key).and_then(Value::as_u64);
        c.people_changed = n("people_changed").unwrap_or(0);
        c.changes = n("changes").unwrap_or(run.changes_detected);
        // The watermark moved only when the run saw someone newer.
        if report
            .get("newest_modified_gmt")
            .is_some_and(|v| !v.is_null())
        {
            c.watermark = report
                .get("watermark")
                .and_then(Value::as_str)
                .and_then(|w| DateTime::parse_from_rfc3339(w).ok())
                .map(|w| w.with_timezone(&Utc));
        }
    } else if let Some(rest) = detail.strip_prefix("members: ") {
        let number = |word: &str| {
            rest.split(',')
                .map(str::trim)
                .find_map(|part| part.strip_suffix(word)?.trim().parse::<u64>().ok())
        };
        if let (Some(done), Some(failed), Some(skipped)) =
            (number("done"), number("failed"), number("skipped"))
        {
            c.sync = Some((done, failed, skipped));
        }
    }
    c
}

/// Whether a run found nothing to do (and nothing went wrong): folded on the page.
pub fn is_empty(run: &RunRecord) -> bool {
    if run.status != "completed" || run.error.is_some() {
        return false;
    }
    let c = counts(run);
    match c.sync {
        Some((done, failed, skipped)) => done + failed + skipped == 0,
        None => c.changes == 0 && run.kind != "baseline",
    }
}

/// One run in words.
pub fn run_words(l: &L10n, run: &RunRecord) -> String {
    let c = counts(run);
    let mut text = match (run.kind.as_str(), c.sync) {
        ("sync", Some((done, failed, skipped))) => l.ta(
            "run-sync",
            &[
                ("done", done.into()),
                ("failed", failed.into()),
                ("skipped", skipped.into()),
            ],
        ),
        ("sync", None) => l.ta(
            "run-sync-raw",
            &[("detail", run.detail.clone().unwrap_or_default().into())],
        ),
        (kind @ ("poll" | "full_poll"), _) => {
            let mut words = l.ta(
                &format!("run-{kind}"),
                &[
                    ("seen", run.people_seen.into()),
                    ("changed", c.people_changed.into()),
                    ("changes", c.changes.into()),
                ],
            );
            if let Some(w) = c.watermark {
                words.push_str("; ");
                words.push_str(&l.ta("run-watermark", &[("when", l.time(w).into())]));
            }
            words
        }
        ("baseline", _) => l.ta("run-baseline", &[("seen", run.people_seen.into())]),
        ("detect", _) => l.ta(
            "run-detect",
            &[
                ("seen", run.people_seen.into()),
                ("changes", c.changes.into()),
            ],
        ),
        ("replay", _) => match &run.knvb_id {
            Some(member) => l.ta(
                "run-replay",
                &[
                    ("member", member.clone().into()),
                    ("changes", c.changes.into()),
                ],
            ),
            None => l.ta("run-replay-nomember", &[("changes", c.changes.into())]),
        },
        (kind, _) => l.ta(
            "run-other",
            &[
                ("kind", kind.to_string().into()),
                ("seen", run.people_seen.into()),
                ("changes", c.changes.into()),
            ],
        ),
    };
    if run.dry_run {
        text.push(' ');
        text.push_str(&l.t("run-dry"));
    }
    if run.status == "running" {
        text.push_str(" — ");
        text.push_str(&l.t("run-running"));
    }
    if let Some(error) = &run.error {
        text.push_str(" — ");
        text.push_str(&l.ta("run-failed", &[("error", error.clone().into())]));
    }
    text
}

/// The runs, newest first; each stretch of runs that found nothing is one folded line.
pub fn runs_list(l: &L10n, runs: &[RunRecord]) -> Markup {
    let mut groups: Vec<Vec<&RunRecord>> = Vec::new();
    for run in runs {
        match groups.last_mut() {
            Some(group) if is_empty(run) && group.iter().all(|r| is_empty(r)) => group.push(run),
            _ => groups.push(vec![run]),
        }
    }
    html! {
        ul.runs {
            @for group in &groups {
                @if group.len() > 1 || group.iter().all(|r| is_empty(r)) {
                    li.muted {
                        details {
                            summary {
                                (l.ta("runs-folded", &[
                                    ("count", group.len().into()),
                                    ("from", l.when(group.last().map_or(Utc::now(), |r| r.started_at)).into()),
                                    ("to", l.when(group.first().map_or(Utc::now(), |r| r.started_at)).into()),
                                ]))
                            }
                            ul.runs { @for run in group { li id={ "run-" (run.id) } { (l.when(run.started_at)) " · " (run_words(l, run)) } } }
                        }
                    }
                } @else {
                    @for run in group {
                        li id={ "run-" (run.id) } class=(run.status) { (l.when(run.started_at)) " · " (run_words(l, run)) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::operator::i18n::Lang;

    fn run(kind: &str, detail: Option<&str>, seen: u64, changes: u64) -> RunRecord {
        RunRecord {
            id: 1,
            kind: crate::store::RunKind::parse(kind).expect("a run kind"),
            status: crate::store::RunStatus::Completed,
            started_at: Utc::now(),
            finished_at: Some(Utc::now()),
            knvb_id: None,
            dry_run: false,
            people_seen: seen,
            changes_detected: changes,
            detail: detail.map(str::to_string),
            error: None,
        }
    }

    fn l(lang: Lang) -> L10n {
        L10n {
            lang,
            tz: chrono_tz::Europe::Amsterdam,
        }
    }

    #[test]
    fn a_poll_in_words_with_the_watermark_in_club_time() {
        let detail = r#"{"people_changed":1,"changes":4,"newest_modified_gmt":"2026-11-30T14:17:00Z","watermark":"2026-11-30T14:17:00Z"}"#;
        let r = run("poll", Some(detail), 3, 4);
        assert_eq!(
            run_words(&l(Lang::En), &r),
            "poll: 3 people seen, 1 changed, 4 changes; watermark moved to 15:17"
        );
        assert_eq!(
            run_words(&l(Lang::Nl), &r),
            "controle: 3 personen gezien, 1 gewijzigd, 4 wijzigingen; peilmoment naar 15:17"
        );
        assert!(!is_empty(&r));
    }

    #[test]
    fn a_sync_run_counts_the_members_it_pushed() {
        let r = run("sync", Some("members: 2 done, 1 failed, 0 skipped"), 0, 0);
        assert_eq!(
            run_words(&l(Lang::En), &r),
            "to Sportlink: 2 members done, 1 failed, 0 skipped"
        );
        assert!(!is_empty(&r));
        assert!(is_empty(&run(
            "sync",
            Some("members: 0 done, 0 failed, 0 skipped"),
            0,
            0
        )));
    }

    #[test]
    fn empty_runs_fold_into_one_line() {
        let empty = || run("poll", Some(r#"{"people_changed":0,"changes":0}"#), 0, 0);
        let useful = run("poll", Some(r#"{"people_changed":1,"changes":1}"#), 1, 1);
        let html = runs_list(&l(Lang::En), &[empty(), empty(), useful, empty()]).into_string();
        assert_eq!(html.matches("<details>").count(), 2, "{html}");
        assert!(html.contains("2 runs that found nothing to do"), "{html}");
        assert!(html.contains("1 run that found nothing to do"), "{html}");
    }
}

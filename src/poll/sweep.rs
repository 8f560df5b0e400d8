//! One poll run: the sweep over Rondo Club's people page by page (or one member), each page
//! through the one detection path and committed on its own, and the watermark settled after a
//! complete run.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{PollError, PollReport, RondoClient, MAX_PAGES};
use crate::detect::{Person, Sighting, Verdict};
use crate::domain::{KnvbId, Source};
use crate::store::{RunKind, RunStatus, SightingContext, Store};

pub(super) struct Sweep {
    pub(super) kind: RunKind,
    pub(super) source: Source,
    pub(super) modified_after: Option<DateTime<Utc>>,
    pub(super) dry_run: bool,
}

async fn start_run(
    store: &Store,
    kind: RunKind,
    knvb_id: Option<&KnvbId>,
    dry_run: bool,
) -> Result<i64, PollError> {
    let knvb = knvb_id.map(|k| k.as_str().to_owned());
    Ok(store
        .write(move |db| db.start_run(kind, knvb.as_deref(), dry_run, Utc::now()))
        .await?)
}

/// A request of a run that gives way to a stop: a Rondo Club that never answers must not hold
/// one up.
async fn until_stopped<T, E>(
    cancel: &CancellationToken,
    request: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, PollError>
where
    PollError: From<E>,
{
    tokio::select! {
        answer = request => answer.map_err(PollError::from),
        () = cancel.cancelled() => Err(PollError::Cancelled),
    }
}

/// Records the end of a run; a failure to record it is logged, the run's own outcome wins.
async fn finish_run(store: &Store, run_id: i64, outcome: Result<&PollReport, &PollError>) {
    let (status, detail, error) = match outcome {
        Ok(report) => (
            RunStatus::Completed,
            serde_json::to_string(report).ok(),
            None,
        ),
        Err(e) => (RunStatus::Failed, None, Some(e.to_string())),
    };
    let written = store
        .write(move |db| {
            db.finish_run(
                run_id,
                status,
                detail.as_deref(),
                error.as_deref(),
                Utc::now(),
            )
        })
        .await;
    if let Err(e) = written {
        tracing::error!(run_id, error = %e, "cannot record the end of a run");
    }
}

pub(super) async fn sweep(
    store: &Store,
    client: &RondoClient,
    plan: Sweep,
    cancel: &CancellationToken,
) -> Result<PollReport, PollError> {
    let started_at = Utc::now();
    let run_id = start_run(store, plan.kind, None, plan.dry_run).await?;
    let mut report = PollReport {
        run_id,
        kind: plan.kind.as_str().into(),
        dry_run: plan.dry_run,
        modified_after: plan.modified_after,
        ..PollReport::default()
    };
    // The identity first: with a wrong password WordPress would list people as anonymous. A
    // failure is recorded as a failed run, so the operator page shows it. Like every request of
    // the run it gives way to a stop.
    let outcome = match until_stopped(cancel, client.whoami()).await {
        Ok(_) => sweep_pages(store, client, &plan, cancel, &mut report).await,
        Err(e) => Err(e),
    };
    let outcome = match outcome {
        Ok(()) => settle_watermark(store, &plan, started_at, &mut report).await,
        Err(e) => Err(e),
    };
    finish_run(store, run_id, outcome.as_ref().map(|_| &report)).await;
    match outcome {
        Ok(()) => {
            tracing::info!(
                run_id,
                kind = plan.kind.as_str(),
                people = report.people_seen,
                changes = report.changes,
                "run completed"
            );
            Ok(report)
        }
        Err(e) => {
            tracing::warn!(run_id, kind = plan.kind.as_str(), error = %e, "run failed");
            Err(e)
        }
    }
}

async fn sweep_pages(
    store: &Store,
    client: &RondoClient,
    plan: &Sweep,
    cancel: &CancellationToken,
    report: &mut PollReport,
) -> Result<(), PollError> {
    // Post ids only (8 bytes a person): enough to notice that edits during the run shifted the
    // page boundaries so that someone was skipped.
    let mut seen_ids: HashSet<i64> = HashSet::new();
    let mut first_total: Option<u64> = None;
    let fetch = |page: u32| until_stopped(cancel, client.people_page(plan.modified_after, page));
    let mut page = 1u32;
    let mut current = fetch(page).await?;
    // While one page is committed the next is fetched: two pages in memory at most.
    while let Some(fetched) = current {
        if first_total.is_none() {
            first_total = fetched.total;
        }
        let count = fetched.people.len();
        report.pages += 1;
        seen_ids.extend(
            fetched
                .people
                .iter()
                .filter_map(|p| p.get("id").and_then(Value::as_i64)),
        );
        let last_page = count == 0
            || match fetched.total_pages {
                Some(total_pages) => page >= total_pages,
                None => count < client.per_page() as usize,
            };
        let apply = apply_page(
            store,
            fetched.people,
            plan.source,
            report.run_id,
            plan.dry_run,
        );
        if last_page {
            apply.await?.add_to(report);
            break;
        }
        if page >= MAX_PAGES {
            return Err(PollError::TooManyPages(MAX_PAGES));
        }
        let (applied, next) = tokio::join!(apply, fetch(page + 1));
        applied?.add_to(report);
        current = next?;
        page += 1;
    }
    if let Some(total) = first_total {
        if (seen_ids.len() as u64) < total {
            report.note = Some(format!(
                "saw {} of the {total} people the first page announced (people deleted during \
                 the run shift the pages); the watermark stays for the next run to catch up",
                seen_ids.len()
            ));
        }
    }
    Ok(())
}

/// After a completed sweep: move the watermark when this run may.
///
/// Never past the run's start: someone saved on a page already read while the run went on is
/// then found by the next run, however long this one took (retries, `Retry-After`).
async fn settle_watermark(
    store: &Store,
    plan: &Sweep,
    started_at: DateTime<Utc>,
    report: &mut PollReport,
) -> Result<(), PollError> {
    let may_move = !plan.dry_run && report.note.is_none();
    let newest = report.newest_modified_gmt.map(|t| t.min(started_at));
    let (watermark, moved) = store
        .write(move |db| {
            let before = db.watermark()?;
            if let (true, Some(to)) = (may_move, newest) {
                db.advance_watermark(to, Utc::now())?;
            }
            let after = db.watermark()?;
            Ok((after, after != before))
        })
        .await?;
    report.watermark = watermark;
    report.watermark_moved = moved;
    Ok(())
}

/// Counts of one committed page.
#[derive(Debug, Default)]
struct PageOutcome {
    people: u64,
    people_changed: u64,
    changes: u64,
    unchanged: u64,
    first_sightings: u64,
    baseline_imports: u64,
    ignored: u64,
    unreadable: u64,
    newest: Option<DateTime<Utc>>,
}

impl PageOutcome {
    fn add_to(&self, report: &mut PollReport) {
        report.people_seen += self.people;
        report.people_changed += self.people_changed;
        report.changes += self.changes;
        report.unchanged += self.unchanged;
        report.first_sightings += self.first_sightings;
        report.baseline_imports += self.baseline_imports;
        report.ignored += self.ignored;
        report.unreadable += self.unreadable;
        report.newest_modified_gmt = report.newest_modified_gmt.max(self.newest);
    }
}

/// One page of people through detection in one write transaction.
async fn apply_page(
    store: &Store,
    people: Vec<Value>,
    source: Source,
    run_id: i64,
    dry_run: bool,
) -> Result<PageOutcome, PollError> {
    // Parsing happens here, off the writer thread.
    let mut outcome = PageOutcome::default();
    let mut sightings = Vec::with_capacity(people.len());
    for raw in &people {
        outcome.people += 1;
        match Person::from_json(raw) {
            Ok(person) => {
                outcome.newest = outcome.newest.max(person.modified_gmt);
                sightings.push(Sighting {
                    person,
                    source,
                    origin: None,
                });
            }
            Err(e) => {
                outcome.unreadable += 1;
                let id = raw.get("id").and_then(Value::as_i64);
                tracing::warn!(run_id, wp_post_id = ?id, error = %e, "skipped an unreadable person");
            }
        }
    }
    drop(people);
    let counted = store
        .write(move |db| {
            let now = Utc::now();
            let context = SightingContext {
                run_id: Some(run_id),
                delivery_id: None,
                dry_run,
            };
            let mut verdicts = Vec::with_capacity(sightings.len());
            let mut changes = 0u64;
            for sighting in &sightings {
                let result = db.apply_sighting(sighting, &context, now)?;
                changes += result.changes.len() as u64;
                verdicts.push(result.verdict);
            }
            db.add_to_run(run_id, sightings.len() as u64, changes)?;
            Ok((verdicts, changes))
        })
        .await?;
    let (verdicts, changes) = counted;
    outcome.changes = changes;
    for verdict in verdicts {
        match verdict {
            Verdict::Changed => outcome.people_changed += 1,
            Verdict::Unchanged => outcome.unchanged += 1,
            Verdict::FirstSighting => outcome.first_sightings += 1,
            Verdict::BaselineImport => outcome.baseline_imports += 1,
            Verdict::NotAMember
            | Verdict::InvalidKnvbId
            | Verdict::Stale
            | Verdict::Deceased
            | Verdict::ForwardSync => outcome.ignored += 1,
        }
    }
    Ok(outcome)
}

pub(super) async fn one_member(
    store: &Store,
    client: &RondoClient,
    kind: RunKind,
    source: Source,
    knvb_id: KnvbId,
    dry_run: bool,
) -> Result<PollReport, PollError> {
    let lookup = knvb_id.clone();
    let member = store.read(move |db| db.member(&lookup)).await?;
    let Some(wp_post_id) = member.and_then(|m| m.wp_post_id) else {
        return Err(PollError::UnknownMember(knvb_id));
    };
    let run_id = start_run(store, kind, Some(&knvb_id), dry_run).await?;
    let mut report = PollReport {
        run_id,
        kind: kind.as_str().into(),
        dry_run,
        ..PollReport::default()
    };
    let outcome = match client.whoami().await {
        Ok(_) => fetch_member(store, client, source, &knvb_id, wp_post_id, &mut report).await,
        Err(e) => Err(e.into()),
    };
    finish_run(store, run_id, outcome.as_ref().map(|_| &report)).await;
    let watermark = store.read(|db| db.watermark()).await?;
    report.watermark = watermark;
    outcome.map(|()| report)
}

async fn fetch_member(
    store: &Store,
    client: &RondoClient,
    source: Source,
    knvb_id: &KnvbId,
    wp_post_id: i64,
    report: &mut PollReport,
) -> Result<(), PollError> {
    let raw = client.person(wp_post_id).await?;
    let person = Person::from_json(&raw).map_err(|e| PollError::UnreadablePerson {
        wp_post_id,
        detail: e.to_string(),
    })?;
    let found = person.knvb_id();
    if found.as_ref() != Some(knvb_id) {
        return Err(PollError::MemberMismatch {
            knvb_id: knvb_id.clone(),
            wp_post_id,
            found: found.map(|k| k.to_string()),
        });
    }
    report.pages = 1;
    let outcome = apply_page(store, vec![raw], source, report.run_id, report.dry_run).await?;
    outcome.add_to(report);
    Ok(())
}

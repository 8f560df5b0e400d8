//! Reconciliation poll (product.md §7) and the baseline import: people from Rondo Club's REST API,
//! page by page, through the one detection path (`Conn::apply_sighting`), one write per page.
//!
//! The watermark (`reverse_sync_state.last_detection_at`) moves only after a completed run that
//! covered everyone the query matched, to the newest `modified_gmt` seen; the next incremental
//! run starts `poll.overlap_secs` before it. A per-member detection, a replay or a dry run never
//! moves it.

mod client;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::PollSettings;
use crate::detect::{Person, Sighting, Verdict};
use crate::domain::{KnvbId, Source};
use crate::http::Metrics;
use crate::store::{RunKind, RunStatus, SightingContext, Store, StoreError};

pub use client::{wp_timestamp, Identity, PeoplePage, RetryPolicy, RondoClient, RondoError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PollMode {
    /// People modified since the watermark (minus the overlap).
    Incremental,
    /// Everyone, whatever their `modified_gmt` (finds meta-only writes).
    Full,
}

#[derive(Debug, Clone)]
pub struct PollRequest {
    pub mode: PollMode,
    /// Only this member (by the `wp_post_id` the store knows); never moves the watermark.
    pub knvb_id: Option<KnvbId>,
    /// Evaluate and report, write no changes, never move the watermark.
    pub dry_run: bool,
}

impl PollRequest {
    /// The kind of run this request makes (`detect` for one member, else `poll`/`full_poll`).
    pub fn run_kind(&self) -> RunKind {
        match (&self.knvb_id, self.mode) {
            (Some(_), _) => RunKind::Detect,
            (None, PollMode::Incremental) => RunKind::Poll,
            (None, PollMode::Full) => RunKind::FullPoll,
        }
    }

    pub fn incremental() -> Self {
        Self {
            mode: PollMode::Incremental,
            knvb_id: None,
            dry_run: false,
        }
    }

    pub fn full() -> Self {
        Self {
            mode: PollMode::Full,
            ..Self::incremental()
        }
    }
}

/// What a run did. Counts are people, except `changes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PollReport {
    pub run_id: i64,
    pub kind: String,
    pub dry_run: bool,
    /// The `modified_after` sent (`None`: everyone).
    pub modified_after: Option<DateTime<Utc>>,
    pub pages: u32,
    pub people_seen: u64,
    /// Sightings that produced change rows, and how many rows.
    pub people_changed: u64,
    pub changes: u64,
    pub unchanged: u64,
    pub first_sightings: u64,
    pub baseline_imports: u64,
    /// Forward-sync writes, deceased members, stale sightings, people without a `knvb-id`.
    pub ignored: u64,
    /// Person objects detection could not read (logged, skipped).
    pub unreadable: u64,
    pub newest_modified_gmt: Option<DateTime<Utc>>,
    /// The watermark after the run.
    pub watermark: Option<DateTime<Utc>>,
    pub watermark_moved: bool,
    /// Why the watermark stayed where it was, when a complete run did not move it.
    pub note: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Rondo(#[from] RondoError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "member {0} has never been seen, so its Rondo Club post id is unknown; run a full poll \
         (`detect --full`) or `baseline` first"
    )]
    UnknownMember(KnvbId),
    #[error("member {knvb_id}: Rondo Club post {wp_post_id} now has knvb-id {found:?}")]
    MemberMismatch {
        knvb_id: KnvbId,
        wp_post_id: i64,
        found: Option<String>,
    },
    #[error("person {wp_post_id}: {detail}")]
    UnreadablePerson { wp_post_id: i64, detail: String },
    #[error("the people list still had pages after {0} pages; stopped")]
    TooManyPages(u32),
    #[error("cancelled")]
    Cancelled,
    #[error("the poller has stopped")]
    PollerGone,
}

/// A safety stop for a server whose page count keeps growing (10,000 pages of 100 is a million
/// people, far beyond any club).
const MAX_PAGES: u32 = 10_000;

/// A poll or a `detect`. Checks the credentials first, records a run row, commits page by page.
pub async fn run_poll(
    store: &Store,
    client: &RondoClient,
    settings: &PollSettings,
    request: PollRequest,
) -> Result<PollReport, PollError> {
    run_poll_until(store, client, settings, request, &CancellationToken::new()).await
}

/// [`run_poll`], stopping between pages when `cancel` fires (the run is recorded as failed).
pub async fn run_poll_until(
    store: &Store,
    client: &RondoClient,
    settings: &PollSettings,
    request: PollRequest,
    cancel: &CancellationToken,
) -> Result<PollReport, PollError> {
    let kind = request.run_kind();
    let source = Source::Poll;
    match request.knvb_id.clone() {
        Some(knvb_id) => one_member(store, client, kind, source, knvb_id, request.dry_run).await,
        None => {
            let modified_after = match request.mode {
                PollMode::Full => None,
                PollMode::Incremental => {
                    let overlap = chrono::Duration::seconds(
                        i64::try_from(settings.overlap_secs).unwrap_or(i64::MAX / 1_000_000),
                    );
                    store.read(|db| db.watermark()).await?.map(|w| w - overlap)
                }
            };
            let plan = Sweep {
                kind,
                source,
                modified_after,
                dry_run: request.dry_run,
            };
            sweep(store, client, plan, cancel).await
        }
    }
}

/// `baseline`: every person becomes the starting state, without changes; then the watermark
/// moves to the newest `modified_gmt` seen.
pub async fn run_baseline(
    store: &Store,
    client: &RondoClient,
    cancel: &CancellationToken,
) -> Result<PollReport, PollError> {
    let plan = Sweep {
        kind: RunKind::Baseline,
        source: Source::Baseline,
        modified_after: None,
        dry_run: false,
    };
    sweep(store, client, plan, cancel).await
}

/// Re-detect one member now (the admin API): fetched from Rondo Club, source `replay`. Never
/// moves the watermark.
pub async fn redetect_member(
    store: &Store,
    client: &RondoClient,
    knvb_id: KnvbId,
) -> Result<PollReport, PollError> {
    one_member(
        store,
        client,
        RunKind::Replay,
        Source::Replay,
        knvb_id,
        false,
    )
    .await
}

struct Sweep {
    kind: RunKind,
    source: Source,
    modified_after: Option<DateTime<Utc>>,
    dry_run: bool,
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

async fn sweep(
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
    // failure is recorded as a failed run, so the operator page shows it.
    let outcome = match client.whoami().await {
        Ok(_) => sweep_pages(store, client, &plan, cancel, &mut report).await,
        Err(e) => Err(e.into()),
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
    let fetch = |page: u32| async move {
        tokio::select! {
            fetched = client.people_page(plan.modified_after, page) => fetched.map_err(PollError::from),
            _ = cancel.cancelled() => Err(PollError::Cancelled),
        }
    };
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

async fn one_member(
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

/// A trigger for [`Poller`]: what to run and where to send the outcome.
struct Trigger {
    request: PollRequest,
    reply: oneshot::Sender<Result<PollReport, Arc<PollError>>>,
}

/// The poll inside `serve`: every `poll.interval_secs` when `poll.enabled`, or now on a trigger;
/// one run at a time (a trigger during a run waits for it). Stops when the token is cancelled.
pub struct Poller {
    triggers: mpsc::Sender<Trigger>,
    task: tokio::task::JoinHandle<()>,
}

/// A cheap handle for triggering polls (the admin API holds one).
#[derive(Clone)]
pub struct PollerHandle {
    triggers: mpsc::Sender<Trigger>,
}

impl Poller {
    pub fn spawn(
        store: Store,
        client: RondoClient,
        settings: PollSettings,
        cancel: CancellationToken,
    ) -> Self {
        Self::spawn_with_metrics(store, client, settings, cancel, None)
    }

    /// As [`Poller::spawn`], counting every run (`rrs_poll_runs_total`, its duration) into
    /// `metrics`.
    pub fn spawn_with_metrics(
        store: Store,
        client: RondoClient,
        settings: PollSettings,
        cancel: CancellationToken,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(poller_loop(store, client, settings, cancel, rx, metrics));
        Self { triggers: tx, task }
    }

    pub fn handle(&self) -> PollerHandle {
        PollerHandle {
            triggers: self.triggers.clone(),
        }
    }

    /// Waits for the loop to end (after the token is cancelled).
    pub async fn join(self) {
        drop(self.triggers);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the poller task ended abnormally");
        }
    }
}

impl PollerHandle {
    /// Queues a run; the receiver gets its outcome (drop it to not wait).
    pub async fn trigger(
        &self,
        request: PollRequest,
    ) -> Result<oneshot::Receiver<Result<PollReport, Arc<PollError>>>, PollError> {
        let (reply, rx) = oneshot::channel();
        self.triggers
            .send(Trigger { request, reply })
            .await
            .map_err(|_| PollError::PollerGone)?;
        Ok(rx)
    }

    /// Runs now (after any run in progress) and waits for the report.
    pub async fn run(&self, request: PollRequest) -> Result<PollReport, Arc<PollError>> {
        let rx = self.trigger(request).await.map_err(Arc::new)?;
        rx.await
            .unwrap_or_else(|_| Err(Arc::new(PollError::PollerGone)))
    }
}

async fn poller_loop(
    store: Store,
    client: RondoClient,
    settings: PollSettings,
    cancel: CancellationToken,
    mut triggers: mpsc::Receiver<Trigger>,
    metrics: Option<Arc<Metrics>>,
) {
    let period = Duration::from_secs(settings.interval_secs.max(1));
    // The first scheduled poll one period after start: `serve` may be restarting in a loop, and
    // the webhook is the fast path anyway.
    let mut next = tokio::time::Instant::now() + period;
    loop {
        let scheduled = async {
            if settings.enabled {
                tokio::time::sleep_until(next).await
            } else {
                std::future::pending().await
            }
        };
        let (request, reply) = tokio::select! {
            _ = cancel.cancelled() => break,
            _ = scheduled => (PollRequest::incremental(), None),
            trigger = triggers.recv() => match trigger {
                Some(t) => (t.request, Some(t.reply)),
                None => break,
            },
        };
        let kind = request.run_kind();
        let started = std::time::Instant::now();
        let outcome = run_poll_until(&store, &client, &settings, request, &cancel)
            .await
            .map_err(Arc::new);
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, "poll failed");
        }
        if let Some(metrics) = &metrics {
            let result = if outcome.is_ok() {
                "completed"
            } else {
                "failed"
            };
            metrics.record_poll_run(kind.as_str(), result, started.elapsed());
        }
        if reply.is_none() {
            next = tokio::time::Instant::now() + period;
        }
        if let Some(reply) = reply {
            // The caller may have stopped waiting; the run is recorded either way.
            let _ignored = reply.send(outcome);
        }
    }
}

impl PollReport {
    /// A few lines for the CLI.
    pub fn summary(&self) -> String {
        let ts = |t: Option<DateTime<Utc>>| t.map_or("none".to_string(), wp_timestamp);
        let mut out = format!(
            "run {} ({}{}): {} people in {} pages, {} changes in {} people\n",
            self.run_id,
            self.kind,
            if self.dry_run { ", dry run" } else { "" },
            self.people_seen,
            self.pages,
            self.changes,
            self.people_changed,
        );
        out.push_str(&format!(
            "  unchanged {}, first seen {}, baseline {}, ignored {}, unreadable {}\n",
            self.unchanged,
            self.first_sightings,
            self.baseline_imports,
            self.ignored,
            self.unreadable
        ));
        out.push_str(&format!(
            "  modified after {}, newest seen {}, watermark {}{}\n",
            self.modified_after
                .map_or("(everyone)".to_string(), wp_timestamp),
            ts(self.newest_modified_gmt),
            ts(self.watermark),
            if self.watermark_moved { " (moved)" } else { "" },
        ));
        if let Some(note) = &self.note {
            out.push_str(&format!("  note: {note}\n"));
        }
        out
    }
}

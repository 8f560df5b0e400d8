//! Reconciliation poll (product.md §7) and the baseline import: people from Rondo Club's REST API,
//! page by page, through the one detection path (`Conn::apply_sighting`), one write per page.
//!
//! The watermark (`reverse_sync_state.last_detection_at`) moves only after a completed run that
//! covered everyone the query matched, to the newest `modified_gmt` seen; the next incremental
//! run starts `poll.overlap_secs` before it. A per-member detection, a replay or a dry run never
//! moves it.

mod client;
mod poller;
mod sweep;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::PollSettings;
use crate::domain::{KnvbId, Source};
use crate::store::{RunKind, Store, StoreError};

pub use client::{wp_timestamp, Identity, PeoplePage, RetryPolicy, RondoClient, RondoError};
pub use poller::{Poller, PollerHandle};

use sweep::{one_member, sweep, Sweep};

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

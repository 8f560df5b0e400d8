//! The poll inside `serve`: a task that runs a poll on schedule or on a trigger, one at a time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{run_poll_until, PollError, PollReport, PollRequest};
use crate::config::PollSettings;
use crate::store::Store;
use crate::telemetry::Metrics;

use super::RondoClient;

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
    /// Starts the loop, counting every run (`rrs_poll_runs_total`, its duration) into `metrics`.
    pub fn spawn(
        store: Store,
        client: RondoClient,
        settings: PollSettings,
        cancel: CancellationToken,
        metrics: Arc<Metrics>,
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
    metrics: Arc<Metrics>,
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
            // A stop wins over queued triggers: no run starts once the service is stopping.
            biased;
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
        let result = if outcome.is_ok() {
            "completed"
        } else {
            "failed"
        };
        metrics.record_poll_run(kind.as_str(), result, started.elapsed());
        if reply.is_none() {
            next = tokio::time::Instant::now() + period;
        }
        if let Some(reply) = reply {
            // The caller may have stopped waiting; the run is recorded either way.
            let _ignored = reply.send(outcome);
        }
    }
}

//! The service's Prometheus metrics: counters and histograms the webhook, the executor and the
//! poll record into ([`Metrics`]), plus values read from the store and the executor at scrape
//! time ([`Metrics::render`], which `GET /metrics` serves). Owned here, below the workers and
//! the HTTP layer, so that neither imports the other for it. No secrets: every label value is a
//! fixed word or a catalogue field name.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::store::{ChangeStatusCounts, FieldSourceStatusCount};

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionKindLabels {
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PollLabels {
    kind: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PollKindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabels {
    field: String,
    source: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    kind: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

fn action_seconds() -> Histogram {
    // 50 ms … ~100 s: a field fill to a whole member with reloads on a slow Sportlink.
    Histogram::new(exponential_buckets(0.05, 2.0, 12))
}

fn poll_seconds() -> Histogram {
    // 0.5 s … ~70 min.
    Histogram::new(exponential_buckets(0.5, 2.0, 14))
}

/// The executor's state as the `rrs_executor_state` gauge shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorGauge {
    NotRunning,
    Idle,
    Working,
    Paused,
}

impl ExecutorGauge {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorGauge::NotRunning => "not_running",
            ExecutorGauge::Idle => "idle",
            ExecutorGauge::Working => "working",
            ExecutorGauge::Paused => "paused",
        }
    }
}

/// What `/metrics` reads from the store at scrape time.
#[derive(Debug, Default)]
pub struct StoreScrape {
    pub by_field: Vec<FieldSourceStatusCount>,
    pub counts: ChangeStatusCounts,
    pub runs: Vec<(String, String, u64)>,
}

/// The service's metrics. One per process, shared through the app state.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    deliveries: Family<OutcomeLabels, Counter>,
    executor_actions: Family<ActionLabels, Counter>,
    executor_action_seconds: Family<ActionKindLabels, Histogram, fn() -> Histogram>,
    poll_runs: Family<PollLabels, Counter>,
    poll_run_seconds: Family<PollKindLabels, Histogram, fn() -> Histogram>,
    changes: Family<ChangeLabels, Gauge>,
    runs: Family<RunLabels, Gauge>,
    queue_depth: Gauge,
    changes_by_status: Family<StateLabels, Gauge>,
    executor_state: Family<StateLabels, Gauge>,
    circuit_breaker_open: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rrs");
        let deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries received, by outcome",
            deliveries.clone(),
        );
        let executor_actions = Family::<ActionLabels, Counter>::default();
        registry.register(
            "executor_actions",
            "Sportlink executor actions, by action and outcome",
            executor_actions.clone(),
        );
        let executor_action_seconds =
            Family::<ActionKindLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                action_seconds,
            );
        registry.register(
            "executor_action_seconds",
            "Duration of Sportlink executor actions",
            executor_action_seconds.clone(),
        );
        let poll_runs = Family::<PollLabels, Counter>::default();
        registry.register(
            "poll_runs",
            "Reconciliation poll runs, by kind and outcome",
            poll_runs.clone(),
        );
        let poll_run_seconds =
            Family::<PollKindLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                poll_seconds,
            );
        registry.register(
            "poll_run_seconds",
            "Duration of reconciliation poll runs",
            poll_run_seconds.clone(),
        );
        let changes = Family::<ChangeLabels, Gauge>::default();
        registry.register(
            "changes",
            "Detected changes in the store, by field, source and status",
            changes.clone(),
        );
        let runs = Family::<RunLabels, Gauge>::default();
        registry.register(
            "runs",
            "Recorded runs (poll, full_poll, detect, baseline, replay, sync), by kind and status",
            runs.clone(),
        );
        let changes_by_status = Family::<StateLabels, Gauge>::default();
        registry.register(
            "changes_by_status",
            "Detected changes in the store, by status",
            changes_by_status.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Pending changes waiting for the Sportlink executor",
            queue_depth.clone(),
        );
        let executor_state = Family::<StateLabels, Gauge>::default();
        registry.register(
            "executor_state",
            "1 for the executor's current state (idle, working, paused, not_running)",
            executor_state.clone(),
        );
        let circuit_breaker_open = Gauge::default();
        registry.register(
            "circuit_breaker_open",
            "1 while the circuit breaker has paused the executor",
            circuit_breaker_open.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            deliveries,
            executor_actions,
            executor_action_seconds,
            poll_runs,
            poll_run_seconds,
            changes,
            runs,
            queue_depth,
            changes_by_status,
            executor_state,
            circuit_breaker_open,
        }
    }

    /// A webhook delivery was answered; `outcome` is a fixed word (`processed`, `duplicate`,
    /// `bad_signature`, `malformed`, `ignored`, `too_large`, …).
    pub fn record_delivery(&self, outcome: &str) {
        self.deliveries
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// One executor action (`login`, `member`, `page_save`, `verify`, …) with its outcome
    /// (`ok`, `failed`, `conflict_lost`, `skipped`, …) and how long it took.
    pub fn record_executor_action(&self, action: &str, outcome: &str, duration: Duration) {
        self.executor_actions
            .get_or_create(&ActionLabels {
                action: action.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        self.executor_action_seconds
            .get_or_create(&ActionKindLabels {
                action: action.to_string(),
            })
            .observe(duration.as_secs_f64());
    }

    /// A poll run ended; `kind` is `poll`, `full_poll` or `detect`, `outcome` `completed` or
    /// `failed`.
    pub fn record_poll_run(&self, kind: &str, outcome: &str, duration: Duration) {
        self.poll_runs
            .get_or_create(&PollLabels {
                kind: kind.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        self.poll_run_seconds
            .get_or_create(&PollKindLabels {
                kind: kind.to_string(),
            })
            .observe(duration.as_secs_f64());
    }

    /// Sets the scrape-time values and encodes everything as Prometheus text.
    pub fn render(
        &self,
        scrape: &StoreScrape,
        executor: ExecutorGauge,
    ) -> Result<String, std::fmt::Error> {
        let by_field = &scrape.by_field;
        let counts = &scrape.counts;
        // One scrape at a time: clearing and refilling the store-backed families must not
        // interleave with another scrape's encoding.
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        self.changes.clear();
        for row in by_field {
            self.changes
                .get_or_create(&ChangeLabels {
                    field: row.field.to_string(),
                    source: row.source.to_string(),
                    status: row.status.to_string(),
                })
                .set(row.count as i64);
        }
        self.runs.clear();
        for (kind, status, n) in &scrape.runs {
            self.runs
                .get_or_create(&RunLabels {
                    kind: kind.clone(),
                    status: status.clone(),
                })
                .set(*n as i64);
        }
        for (status, n) in [
            ("pending", counts.pending),
            ("synced", counts.synced),
            ("superseded", counts.superseded),
            ("conflict_lost", counts.conflict_lost),
            ("skipped", counts.skipped),
            ("failed", counts.failed),
        ] {
            self.changes_by_status
                .get_or_create(&StateLabels {
                    state: status.into(),
                })
                .set(n as i64);
        }
        self.queue_depth.set(counts.pending as i64);
        let current = executor.as_str();
        for state in ["idle", "working", "paused", "not_running"] {
            self.executor_state
                .get_or_create(&StateLabels {
                    state: state.into(),
                })
                .set(i64::from(state == current));
        }
        self.circuit_breaker_open
            .set(i64::from(executor == ExecutorGauge::Paused));
        let mut out = String::new();
        encode(&mut out, &registry)?;
        Ok(out)
    }
}

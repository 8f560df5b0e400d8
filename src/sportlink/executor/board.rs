//! The status board: what the operator sees of the executor (idle, working, paused), the
//! circuit breaker's count and pause, and the alerts it raises.

use super::*;

/// What the operator sees of the executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ExecutorState {
    Idle,
    Working {
        knvb_id: String,
    },
    /// Paused by the circuit breaker (or a refused login) until `until` or an operator resume.
    Paused {
        reason: String,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct ExecutorStatus {
    pub state: ExecutorState,
    pub consecutive_drift_failures: u32,
    pub last_run_finished_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// Shared, cheap to clone: the executor writes it, the operator page and API read it.
#[derive(Debug, Clone)]
pub struct StatusBoard {
    inner: Arc<Mutex<BoardInner>>,
}

#[derive(Debug)]
pub(super) struct BoardInner {
    pub(super) status: ExecutorStatus,
    pub(super) pause_deadline: Option<Instant>,
    pub(super) alerts: Option<AlertSender>,
}

impl Default for StatusBoard {
    fn default() -> Self {
        Self {
            inner: Arc::new(Mutex::new(BoardInner {
                status: ExecutorStatus {
                    state: ExecutorState::Idle,
                    consecutive_drift_failures: 0,
                    last_run_finished_at: None,
                    last_error: None,
                },
                pause_deadline: None,
                alerts: None,
            })),
        }
    }
}

impl StatusBoard {
    pub(super) fn with<T>(&self, f: impl FnOnce(&mut BoardInner) -> T) -> T {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    pub fn status(&self) -> ExecutorStatus {
        self.with(|b| {
            b.refresh_pause();
            b.status.clone()
        })
    }

    /// Still paused? A pause past its cool-down ends here.
    pub fn paused(&self) -> Option<String> {
        self.with(|b| {
            b.refresh_pause();
            match &b.status.state {
                ExecutorState::Paused { reason, .. } => Some(reason.clone()),
                _ => None,
            }
        })
    }

    /// When a pause ends by itself (for the daemon's timer).
    pub fn pause_deadline(&self) -> Option<Instant> {
        self.with(|b| {
            b.refresh_pause();
            b.pause_deadline
        })
    }

    /// Operator action: end a pause now.
    pub fn resume(&self) {
        self.with(|b| {
            if matches!(b.status.state, ExecutorState::Paused { .. }) {
                tracing::warn!("executor resumed by the operator");
                b.status.state = ExecutorState::Idle;
                b.alert(AlertEvent::CircuitBreakerReset);
            }
            b.pause_deadline = None;
            b.status.consecutive_drift_failures = 0;
        });
    }

    /// Sends circuit-breaker and failure alerts to `alerts` from now on.
    pub fn set_alerts(&self, alerts: AlertSender) {
        self.with(|b| b.alerts = Some(alerts));
    }

    /// Raises an alert when a sender is set.
    pub fn alert(&self, event: AlertEvent) {
        self.with(|b| b.alert(event));
    }

    pub(super) fn pause(&self, reason: String, cooldown: Duration) {
        self.with(|b| {
            let now = Utc::now();
            let until =
                now + chrono::TimeDelta::from_std(cooldown).unwrap_or(chrono::TimeDelta::MAX);
            tracing::error!(%reason, "Sportlink executor paused");
            b.alert(AlertEvent::CircuitBreakerTripped {
                reason: reason.clone(),
                failures: b.status.consecutive_drift_failures,
            });
            b.status.state = ExecutorState::Paused {
                reason,
                since: now,
                until,
            };
            b.pause_deadline = Some(Instant::now() + cooldown);
        });
    }

    pub(super) fn working(&self, knvb_id: &KnvbId) {
        self.with(|b| {
            if !matches!(b.status.state, ExecutorState::Paused { .. }) {
                b.status.state = ExecutorState::Working {
                    knvb_id: knvb_id.to_string(),
                };
            }
        });
    }

    pub(super) fn idle(&self) {
        self.with(|b| {
            if !matches!(b.status.state, ExecutorState::Paused { .. }) {
                b.status.state = ExecutorState::Idle;
            }
        });
    }

    /// Count a member's result for the breaker; returns the streak of drift failures.
    pub(super) fn record(&self, result: &MemberResult) -> u32 {
        self.with(|b| {
            match result {
                // The streak counts consecutive members whose pages did not look like the
                // catalogue; members skipped or failing for other reasons neither add to it nor
                // end it. Only a member whose pages worked ends it.
                MemberResult::Failed {
                    ui_drift, error, ..
                } => {
                    b.status.last_error = Some(error.clone());
                    if *ui_drift {
                        b.status.consecutive_drift_failures += 1;
                    }
                }
                MemberResult::NothingPending | MemberResult::Skipped { .. } => {}
                MemberResult::Done { .. } | MemberResult::DryRun => {
                    b.status.consecutive_drift_failures = 0
                }
            }
            b.status.consecutive_drift_failures
        })
    }

    pub(super) fn run_finished(&self) {
        self.with(|b| b.status.last_run_finished_at = Some(Utc::now()));
    }
}

impl BoardInner {
    pub(super) fn refresh_pause(&mut self) {
        if let Some(deadline) = self.pause_deadline {
            if Instant::now() >= deadline {
                tracing::warn!("executor pause ended after its cool-down");
                self.pause_deadline = None;
                self.status.state = ExecutorState::Idle;
                self.status.consecutive_drift_failures = 0;
                self.alert(AlertEvent::CircuitBreakerReset);
            }
        }
    }

    pub(super) fn alert(&self, event: AlertEvent) {
        if let Some(alerts) = &self.alerts {
            alerts.send(event);
        }
    }
}

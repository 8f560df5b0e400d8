//! Alerts for changes that ended `failed` or `conflict_lost` and for the circuit breaker, by e-mail
//! and/or a JSON POST, grouped per subject (a member, or the circuit breaker) into digests with a
//! cool-down so one stuck member is one message, not one every run (lessons.md 15).
//!
//! Wiring: `Alerter::spawn(&settings.alerts, cancel)` returns an [`AlertSender`] to clone into the
//! executor and a task handle to join. The task stops when the token is cancelled or when every
//! sender has been dropped; either way it sends what is pending first. Dropping the senders after
//! the executor has been joined (instead of cancelling) keeps alerts raised while the executor
//! finishes its last member.

mod digest;
mod transport;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::AlertSettings;
use crate::domain::{ChangeId, FieldName, KnvbId};

pub use digest::{Digest, Grouper, Payload, Stamped, MAX_EVENTS_PER_DIGEST};
pub use transport::{AlertSetupError, SendError, SendPolicy, Transport};

/// Events waiting for the alerter; beyond this `send` drops (and logs) instead of blocking.
const QUEUE_CAPACITY: usize = 1_024;
/// How long shutdown waits for sends in flight (including their retries) before abandoning them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Something an operator must hear about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlertEvent {
    /// A change ended `failed` after its last attempt.
    ChangeFailed {
        change_id: ChangeId,
        knvb_id: KnvbId,
        field: FieldName,
        reason: String,
    },
    /// A change ended `conflict_lost`: Sportlink's value was kept.
    ConflictLost {
        change_id: ChangeId,
        knvb_id: KnvbId,
        field: FieldName,
        sportlink_value: String,
        rondo_club_value: String,
        reason: String,
    },
    /// The executor paused itself after consecutive failures that look like UI drift.
    CircuitBreakerTripped { reason: String, failures: u32 },
    /// The executor runs again (operator action or end of the breaker's cool-down).
    CircuitBreakerReset,
    /// Sent by `rondo-reverse-sync test-alert` to check the transports.
    Test { note: String },
}

/// What a digest is about. Serialises as `{"kind":"member","knvb_id":"…"}` or
/// `{"kind":"circuit_breaker"}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    Member(KnvbId),
    CircuitBreaker,
    Test,
}

impl Serialize for Subject {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        match self {
            Subject::Member(knvb_id) => {
                map.serialize_entry("kind", "member")?;
                map.serialize_entry("knvb_id", knvb_id)?;
            }
            Subject::CircuitBreaker => map.serialize_entry("kind", "circuit_breaker")?,
            Subject::Test => map.serialize_entry("kind", "test")?,
        }
        map.end()
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Member(knvb_id) => write!(f, "member {knvb_id}"),
            Subject::CircuitBreaker => f.write_str("circuit breaker"),
            Subject::Test => f.write_str("test"),
        }
    }
}

impl AlertEvent {
    pub fn subject(&self) -> Subject {
        match self {
            AlertEvent::ChangeFailed { knvb_id, .. } | AlertEvent::ConflictLost { knvb_id, .. } => {
                Subject::Member(knvb_id.clone())
            }
            AlertEvent::CircuitBreakerTripped { .. } | AlertEvent::CircuitBreakerReset => {
                Subject::CircuitBreaker
            }
            AlertEvent::Test { .. } => Subject::Test,
        }
    }

    fn summary_label(&self) -> &'static str {
        match self {
            AlertEvent::ChangeFailed { .. } => "failed",
            AlertEvent::ConflictLost { .. } => "conflict lost",
            AlertEvent::CircuitBreakerTripped { .. } => "tripped",
            AlertEvent::CircuitBreakerReset => "reset",
            AlertEvent::Test { .. } => "test",
        }
    }
}

impl fmt::Display for AlertEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlertEvent::ChangeFailed {
                change_id,
                knvb_id,
                field,
                reason,
            } => write!(
                f,
                "change {change_id} ({knvb_id}, {field}) failed: {reason}"
            ),
            AlertEvent::ConflictLost {
                change_id,
                knvb_id,
                field,
                sportlink_value,
                rondo_club_value,
                reason,
            } => write!(
                f,
                "change {change_id} ({knvb_id}, {field}) lost a conflict: Sportlink keeps \
                 {sportlink_value:?}, Rondo Club had {rondo_club_value:?} ({reason})"
            ),
            AlertEvent::CircuitBreakerTripped { reason, failures } => write!(
                f,
                "circuit breaker tripped after {failures} consecutive failures; the executor \
                 is paused: {reason}"
            ),
            AlertEvent::CircuitBreakerReset => {
                f.write_str("circuit breaker reset; the executor runs again")
            }
            AlertEvent::Test { note } => write!(f, "test alert: {note}"),
        }
    }
}

/// A cheap, cloneable handle for raising alerts. `send` never blocks and never fails the caller.
#[derive(Debug, Clone)]
pub struct AlertSender {
    tx: mpsc::Sender<Stamped>,
    dropped: Arc<AtomicU64>,
}

impl AlertSender {
    /// A sender and the raw receiving end, for tests of code that raises alerts.
    pub fn channel(capacity: usize) -> (AlertSender, mpsc::Receiver<Stamped>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        (AlertSender { tx, dropped }, rx)
    }

    /// Queues an alert. When the queue is full or the alerter has stopped, the alert is dropped
    /// with a log line: alerting must never hold up the executor.
    pub fn send(&self, event: AlertEvent) {
        let stamped = Stamped {
            at: Utc::now(),
            event,
        };
        match self.tx.try_send(stamped) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(s)) => {
                // A flood logs its first drop and then every hundredth, not every one.
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped == 1 || dropped.is_multiple_of(100) {
                    tracing::warn!(
                        subject = %s.event.subject(),
                        dropped_so_far = dropped,
                        "alert queue full; alert dropped: {}",
                        s.event
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(s)) => {
                tracing::warn!(subject = %s.event.subject(), "alerter stopped; alert dropped: {}", s.event);
            }
        }
    }
}

/// The background task that turns events into digests and sends them.
pub struct Alerter {
    grouper: Grouper,
    transports: Vec<Arc<Transport>>,
    policy: Arc<SendPolicy>,
    rx: mpsc::Receiver<Stamped>,
    sends: JoinSet<()>,
}

impl Alerter {
    /// Starts the alerter on the current runtime. Fails only on settings that `validate` rejects.
    pub fn spawn(
        settings: &AlertSettings,
        cancel: CancellationToken,
    ) -> Result<(AlertSender, JoinHandle<()>), AlertSetupError> {
        let transports = Transport::from_settings(settings)?;
        if transports.is_empty() {
            tracing::info!("no alert transport configured; alerts are only logged");
        }
        let (sender, rx) = AlertSender::channel(QUEUE_CAPACITY);
        let alerter = Alerter {
            grouper: Grouper::new(
                Duration::from_millis(settings.gather_ms),
                Duration::from_secs(settings.cooldown_secs),
            ),
            transports: transports.into_iter().map(Arc::new).collect(),
            policy: Arc::new(SendPolicy::from_settings(settings)),
            rx,
            sends: JoinSet::new(),
        };
        Ok((sender, tokio::spawn(alerter.run(cancel))))
    }

    async fn run(mut self, cancel: CancellationToken) {
        loop {
            let next_due = self.grouper.next_due();
            tokio::select! {
                () = cancel.cancelled() => break,
                received = self.rx.recv() => match received {
                    Some(stamped) => {
                        tracing::debug!(subject = %stamped.event.subject(), "alert queued: {}", stamped.event);
                        self.grouper.add(stamped, Instant::now());
                    }
                    None => break,
                },
                () = sleep_until(next_due), if next_due.is_some() => {
                    for digest in self.grouper.take_due(Instant::now()) {
                        self.dispatch(digest);
                    }
                }
                Some(joined) = self.sends.join_next(), if !self.sends.is_empty() => {
                    if let Err(e) = joined {
                        tracing::error!(error = %e, "alert send task failed");
                    }
                }
            }
        }
        self.shutdown().await;
    }

    /// Sends what is queued and pending, then waits a bounded time for sends in flight.
    async fn shutdown(mut self) {
        self.rx.close();
        while let Ok(stamped) = self.rx.try_recv() {
            self.grouper.add(stamped, Instant::now());
        }
        for digest in self.grouper.take_all() {
            self.dispatch(digest);
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !self.sends.is_empty() {
            match tokio::time::timeout_at(deadline, self.sends.join_next()).await {
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!(
                        unsent = self.sends.len(),
                        "alerts still being sent at shutdown were abandoned"
                    );
                    self.sends.shutdown().await;
                }
            }
        }
        tracing::debug!("alerter stopped");
    }

    fn dispatch(&mut self, digest: Digest) {
        tracing::info!(
            subject = %digest.subject,
            events = digest.events.len() + digest.omitted,
            "alert digest: {}",
            digest.title()
        );
        if self.transports.is_empty() {
            return;
        }
        let digest = Arc::new(digest);
        for transport in &self.transports {
            let transport = Arc::clone(transport);
            let digest = Arc::clone(&digest);
            let policy = Arc::clone(&self.policy);
            self.sends
                .spawn(async move { transport.deliver(&digest, &policy).await });
        }
    }
}

/// How one transport fared with a test alert.
#[derive(Debug)]
pub struct TransportCheck {
    /// `e-mail` or `webhook`.
    pub transport: &'static str,
    /// Where it sent, safe to show (server, or the webhook's host).
    pub target: String,
    pub result: Result<(), SendError>,
}

/// Sends one test alert through every configured transport, once each, without retries, and says
/// how each fared (`rondo-reverse-sync test-alert`). An empty list: nothing is configured.
pub async fn send_test_alert(
    settings: &AlertSettings,
    note: &str,
) -> Result<Vec<TransportCheck>, AlertSetupError> {
    let policy = SendPolicy {
        backoff: Vec::new(),
        ..SendPolicy::from_settings(settings)
    };
    let digest = Digest {
        subject: Subject::Test,
        events: vec![Stamped {
            at: Utc::now(),
            event: AlertEvent::Test {
                note: note.to_string(),
            },
        }],
        omitted: 0,
        cooldown: Duration::from_secs(settings.cooldown_secs),
    };
    let mut checks = Vec::new();
    for transport in Transport::from_settings(settings)? {
        checks.push(TransportCheck {
            transport: transport.name(),
            target: transport.target(),
            result: transport.send_with_deadline(&digest, &policy).await,
        });
    }
    Ok(checks)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

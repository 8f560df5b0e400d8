//! What the admin API, the operator page and the metrics share: the store, the admin token, the
//! metrics, and one narrow seam ([`Operations`]) to the parts that other modules own (the poll,
//! re-detection from Rondo Club, the executor's state), so these handlers stay thin and testable.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

use super::metrics::Metrics;
use crate::config::Secret;
use crate::domain::KnvbId;
use crate::store::{Store, StoreError};

/// How long an operator page session lasts.
pub const SESSION_LIFETIME_SECS: i64 = 12 * 3600;

/// What the operator sees of the Sportlink executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ExecutorStateView {
    Idle,
    Working {
        knvb_id: String,
    },
    /// Paused by the circuit breaker until `until` or an operator's resume.
    Paused {
        reason: String,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ExecutorView {
    #[serde(flatten)]
    pub state: ExecutorStateView,
    pub consecutive_drift_failures: u32,
    pub last_run_finished_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl ExecutorView {
    pub fn is_paused(&self) -> bool {
        matches!(self.state, ExecutorStateView::Paused { .. })
    }
}

/// What a re-detection from Rondo Club did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Redetected {
    /// The run it was recorded as; its change rows carry this `detection_run_id`.
    pub run_id: i64,
    /// One line: what detection decided.
    pub summary: String,
}

/// A poll the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PollAccepted {
    pub full: bool,
    /// What happens next, e.g. "started" or "queued behind the running poll".
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    /// The part is not wired into this build (or this process): answered with 503.
    #[error("{0} is not available in this build")]
    Unavailable(&'static str),
    #[error("{0}")]
    NotFound(String),
    /// The operation cannot run now (e.g. a poll is already running): 409.
    #[error("{0}")]
    Busy(String),
    /// Rondo Club (or another upstream) failed: 502, with a reason free of secrets.
    #[error("{0}")]
    Upstream(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The seam to the parts other modules own. `serve` wires the real ones; tests use fakes.
pub trait Operations: Send + Sync + 'static {
    /// The executor's state, or `None` when this process runs no executor.
    fn executor_status(&self) -> Option<ExecutorView>;
    /// Ends a circuit-breaker pause now.
    fn resume_executor(&self) -> Result<(), OperationError>;
    /// Starts (or queues) a reconciliation poll.
    fn trigger_poll(&self, full: bool) -> BoxFuture<'_, Result<PollAccepted, OperationError>>;
    /// Fetches one member from Rondo Club now and runs it through detection (source `replay`).
    fn redetect(&self, knvb_id: KnvbId) -> BoxFuture<'_, Result<Redetected, OperationError>>;
}

/// For a process without a poller or executor: every operation answers "not available".
#[derive(Debug, Default, Clone, Copy)]
pub struct Unwired;

impl Operations for Unwired {
    fn executor_status(&self) -> Option<ExecutorView> {
        None
    }

    fn resume_executor(&self) -> Result<(), OperationError> {
        Err(OperationError::Unavailable("the Sportlink executor"))
    }

    fn trigger_poll(&self, _full: bool) -> BoxFuture<'_, Result<PollAccepted, OperationError>> {
        Box::pin(async { Err(OperationError::Unavailable("the reconciliation poll")) })
    }

    fn redetect(&self, _knvb_id: KnvbId) -> BoxFuture<'_, Result<Redetected, OperationError>> {
        Box::pin(async { Err(OperationError::Unavailable("re-detection from Rondo Club")) })
    }
}

/// Shared state of the admin API, the operator page and `/metrics`. Cheap to clone.
#[derive(Clone)]
pub struct OpsState {
    inner: Arc<OpsInner>,
}

struct OpsInner {
    store: Store,
    token: Secret,
    metrics: Arc<Metrics>,
    operations: Arc<dyn Operations>,
    executor_wake: Arc<Notify>,
}

type HmacSha256 = Hmac<Sha256>;

impl OpsState {
    /// `executor_wake` is the `Notify` the executor loop waits on; a requeue or a replay that
    /// found changes signals it.
    pub fn new(
        store: Store,
        admin_token: Secret,
        metrics: Arc<Metrics>,
        operations: Arc<dyn Operations>,
        executor_wake: Arc<Notify>,
    ) -> Self {
        Self {
            inner: Arc::new(OpsInner {
                store,
                token: admin_token,
                metrics,
                operations,
                executor_wake,
            }),
        }
    }

    /// The same state with the real poll, re-detection and executor behind the seam.
    pub fn with_operations(&self, operations: Arc<dyn Operations>) -> Self {
        Self {
            inner: Arc::new(OpsInner {
                store: self.inner.store.clone(),
                token: self.inner.token.clone(),
                metrics: self.inner.metrics.clone(),
                operations,
                executor_wake: self.inner.executor_wake.clone(),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    pub fn operations(&self) -> &dyn Operations {
        self.inner.operations.as_ref()
    }

    pub fn wake_executor(&self) {
        self.inner.executor_wake.notify_one();
    }

    /// Whether `presented` is the admin token. Constant time over SHA-256 digests, so neither
    /// the content nor the length of the token leaks through timing. An unset token matches
    /// nothing.
    pub fn token_matches(&self, presented: &str) -> bool {
        let token = self.inner.token.expose();
        if token.is_empty() {
            return false;
        }
        let a = Sha256::digest(presented.as_bytes());
        let b = Sha256::digest(token.as_bytes());
        a.ct_eq(&b).into()
    }

    fn mac(&self, purpose: &str, message: &str) -> Option<String> {
        let token = self.inner.token.expose();
        if token.is_empty() {
            return None;
        }
        let mut mac = HmacSha256::new_from_slice(token.as_bytes()).ok()?;
        mac.update(purpose.as_bytes());
        mac.update(b"|");
        mac.update(message.as_bytes());
        Some(hex(&mac.finalize().into_bytes()))
    }

    /// A session value for the operator page's cookie: issue time and an HMAC keyed by the
    /// token, never the token itself. Changing the token ends every session.
    pub fn new_session(&self, now: DateTime<Utc>) -> Option<String> {
        let issued = now.timestamp().to_string();
        let mac = self.mac("rrs-operator-session-v1", &issued)?;
        Some(format!("v1.{issued}.{mac}"))
    }

    /// Whether a cookie's session value is one we issued and still valid.
    pub fn session_valid(&self, value: &str, now: DateTime<Utc>) -> bool {
        let mut parts = value.splitn(3, '.');
        let (Some("v1"), Some(issued), Some(mac)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let Ok(issued_at) = issued.parse::<i64>() else {
            return false;
        };
        let age = now.timestamp() - issued_at;
        if !(-60..=SESSION_LIFETIME_SECS).contains(&age) {
            return false;
        }
        let Some(expected) = self.mac("rrs-operator-session-v1", issued) else {
            return false;
        };
        expected.as_bytes().ct_eq(mac.as_bytes()).into()
    }

    /// The CSRF token for the forms of a session (bound to the session value).
    pub fn csrf_token(&self, session: &str) -> Option<String> {
        self.mac("rrs-operator-csrf-v1", session)
    }

    pub fn csrf_valid(&self, session: &str, presented: &str) -> bool {
        match self.csrf_token(session) {
            Some(expected) => expected.as_bytes().ct_eq(presented.as_bytes()).into(),
            None => false,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;
    use crate::store::StoreOptions;

    fn state(token: &str) -> (tempfile::TempDir, OpsState) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("db.sqlite3"),
            Arc::new(Catalogue::builtin()),
            StoreOptions::default(),
        )
        .unwrap();
        let state = OpsState::new(
            store,
            if token.is_empty() {
                Secret::default()
            } else {
                Secret::new(token)
            },
            Arc::new(Metrics::new()),
            Arc::new(Unwired),
            Arc::new(Notify::new()),
        );
        (dir, state)
    }

    #[test]
    fn token_compare() {
        let (_d, s) = state("s3cret-token");
        assert!(s.token_matches("s3cret-token"));
        assert!(!s.token_matches("s3cret-toke"));
        assert!(!s.token_matches(""));
        let (_d, unset) = state("");
        assert!(!unset.token_matches(""));
        assert!(unset.new_session(Utc::now()).is_none());
    }

    #[test]
    fn sessions_are_signed_expire_and_hide_the_token() {
        let (_d, s) = state("s3cret-token");
        let now = Utc::now();
        let session = s.new_session(now).unwrap();
        assert!(!session.contains("s3cret-token"));
        assert!(s.session_valid(&session, now));
        assert!(!s.session_valid(
            &session,
            now + chrono::TimeDelta::seconds(SESSION_LIFETIME_SECS + 1)
        ));
        // Change the last character to a different one (a fixed "0" would sometimes be no change).
        let last = session.chars().last().unwrap();
        let other_char = if last == '0' { '1' } else { '0' };
        let forged = format!("{}{other_char}", &session[..session.len() - 1]);
        assert_ne!(forged, session);
        assert!(!s.session_valid(&forged, now));
        let (_d2, other) = state("another-token");
        assert!(!other.session_valid(&session, now));
        let csrf = s.csrf_token(&session).unwrap();
        assert!(s.csrf_valid(&session, &csrf));
        assert!(!s.csrf_valid(&session, "nope"));
        assert_ne!(csrf, session);
    }
}

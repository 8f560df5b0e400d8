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

use crate::config::Secret;
use crate::domain::KnvbId;
use crate::store::{Store, StoreError};
use crate::telemetry::Metrics;

/// How long an operator page session lasts.
pub const SESSION_LIFETIME_SECS: i64 = 12 * 3600;
/// Most operator sessions kept at once; the oldest is ended when a sign-in would exceed it.
const MAX_SESSIONS: usize = 256;

/// How many sign-in attempts the operator page takes: per client (by peer address) and from
/// everyone together, each a burst that refills one attempt per interval. The defaults allow
/// a person a few typos and an attacker about 0.05 guesses a second per address and 0.5 in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    pub per_client_burst: u32,
    pub per_client_refill: std::time::Duration,
    pub overall_burst: u32,
    pub overall_refill: std::time::Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            per_client_burst: 5,
            per_client_refill: std::time::Duration::from_secs(20),
            overall_burst: 20,
            overall_refill: std::time::Duration::from_secs(2),
        }
    }
}

type KeyedLimiter = governor::RateLimiter<
    std::net::IpAddr,
    governor::state::keyed::DefaultKeyedStateStore<std::net::IpAddr>,
    governor::clock::DefaultClock,
>;
type DirectLimiter = governor::RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    governor::clock::DefaultClock,
>;

/// The sign-in rate limits in force.
struct LoginLimiter {
    per_client: KeyedLimiter,
    overall: DirectLimiter,
}

impl LoginLimiter {
    fn new(limits: LoginLimits) -> Self {
        let quota = |burst: u32, refill: std::time::Duration| {
            let burst =
                std::num::NonZeroU32::new(burst.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
            governor::Quota::with_period(refill.max(std::time::Duration::from_millis(1)))
                .unwrap_or_else(|| governor::Quota::per_second(std::num::NonZeroU32::MIN))
                .allow_burst(burst)
        };
        Self {
            per_client: governor::RateLimiter::keyed(quota(
                limits.per_client_burst,
                limits.per_client_refill,
            )),
            overall: governor::RateLimiter::direct(quota(
                limits.overall_burst,
                limits.overall_refill,
            )),
        }
    }
}

/// A sign-in attempt refused by the rate limit: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub std::time::Duration);

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

#[derive(Clone)]
struct OpsInner {
    store: Store,
    token: Secret,
    /// The read-only token: member status and nothing else (unset: nobody reads with it).
    read_token: Secret,
    /// The club's time zone: the operator page shows every time in it.
    time_zone: chrono_tz::Tz,
    metrics: Arc<Metrics>,
    operations: Arc<dyn Operations>,
    executor_wake: Arc<Notify>,
    /// Live operator sessions (id → issue time): a session is valid only while it is here, so
    /// signing out ends it on the server, not only in the browser.
    sessions: Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>,
    login_limiter: Arc<LoginLimiter>,
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
                read_token: Secret::default(),
                time_zone: chrono_tz::Europe::Amsterdam,
                metrics,
                operations,
                executor_wake,
                sessions: Arc::default(),
                login_limiter: Arc::new(LoginLimiter::new(LoginLimits::default())),
            }),
        }
    }

    /// The same state with other sign-in rate limits (`admin.sign_in_*`).
    pub fn with_login_limits(&self, limits: LoginLimits) -> Self {
        let mut inner = (*self.inner).clone();
        inner.login_limiter = Arc::new(LoginLimiter::new(limits));
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The same state with a read-only token (`admin.read_token`): it reads member status and
    /// nothing else.
    pub fn with_read_token(&self, read_token: Secret) -> Self {
        let mut inner = (*self.inner).clone();
        inner.read_token = read_token;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The same state with another time zone for the operator page (`admin.time_zone`).
    pub fn with_time_zone(&self, time_zone: chrono_tz::Tz) -> Self {
        let mut inner = (*self.inner).clone();
        inner.time_zone = time_zone;
        Self {
            inner: Arc::new(inner),
        }
    }

    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.inner.time_zone
    }

    /// Takes one sign-in attempt from `client`'s allowance and from the overall one; `Err` with
    /// the wait when either is used up (then the attempt must not even be checked).
    pub fn allow_login_attempt(&self, client: std::net::IpAddr) -> Result<(), RetryAfter> {
        use governor::clock::{Clock, DefaultClock};
        let limiter = &self.inner.login_limiter;
        let now = DefaultClock::default().now();
        if limiter.per_client.len() > 10_000 {
            limiter.per_client.retain_recent();
        }
        limiter
            .per_client
            .check_key(&client)
            .and_then(|()| limiter.overall.check())
            .map_err(|not_until| RetryAfter(not_until.wait_time_from(now)))
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
        secret_matches(&self.inner.token, presented)
    }

    /// Whether `presented` is the read-only token; compared like the admin token.
    pub fn read_token_matches(&self, presented: &str) -> bool {
        secret_matches(&self.inner.read_token, presented)
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

    /// A session value for the operator page's cookie: issue time, a random id and an HMAC
    /// keyed by the token, never the token itself. Changing the token ends every session; so
    /// does a restart (sessions live in this process) and signing out ([`Self::end_session`]).
    pub fn new_session(&self, now: DateTime<Utc>) -> Option<String> {
        use rand::RngCore as _;
        let issued_at = now.timestamp();
        let mut nonce = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut nonce);
        let id = hex(&nonce);
        let signed = format!("{issued_at}.{id}");
        let mac = self.mac("rrs-operator-session-v2", &signed)?;
        let mut sessions = self.inner.sessions.lock().ok()?;
        sessions.retain(|_, issued| now.timestamp() - *issued <= SESSION_LIFETIME_SECS);
        while sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, issued)| **issued)
                .map(|(id, _)| id.clone())?;
            sessions.remove(&oldest);
        }
        sessions.insert(id, issued_at);
        Some(format!("v2.{signed}.{mac}"))
    }

    /// The session id of a value we signed, when its signature is right and it has not
    /// expired; whether it is still live is a separate question.
    fn signed_session_id<'v>(&self, value: &'v str, now: DateTime<Utc>) -> Option<&'v str> {
        let mut parts = value.splitn(4, '.');
        let (Some("v2"), Some(issued), Some(id), Some(mac)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let issued_at = issued.parse::<i64>().ok()?;
        let age = now.timestamp() - issued_at;
        if !(-60..=SESSION_LIFETIME_SECS).contains(&age) {
            return None;
        }
        let expected = self.mac("rrs-operator-session-v2", &format!("{issued}.{id}"))?;
        bool::from(expected.as_bytes().ct_eq(mac.as_bytes())).then_some(id)
    }

    /// Whether a cookie's session value is one we issued, not expired and not ended.
    pub fn session_valid(&self, value: &str, now: DateTime<Utc>) -> bool {
        let Some(id) = self.signed_session_id(value, now) else {
            return false;
        };
        self.inner
            .sessions
            .lock()
            .is_ok_and(|sessions| sessions.contains_key(id))
    }

    /// Ends a session on the server: its cookie no longer signs anyone in.
    pub fn end_session(&self, value: &str) {
        let Some(id) = self.signed_session_id(value, Utc::now()) else {
            return;
        };
        if let Ok(mut sessions) = self.inner.sessions.lock() {
            sessions.remove(id);
        }
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

/// Constant time over SHA-256 digests; an unset secret matches nothing.
fn secret_matches(secret: &Secret, presented: &str) -> bool {
    let expected = secret.expose();
    if expected.is_empty() {
        return false;
    }
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
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
        // Signing out ends it on the server; another session lives on.
        let second = s.new_session(now).unwrap();
        assert_ne!(second, session);
        s.end_session(&session);
        assert!(!s.session_valid(&session, now));
        assert!(s.session_valid(&second, now));
        let csrf = s.csrf_token(&session).unwrap();
        assert!(s.csrf_valid(&session, &csrf));
        assert!(!s.csrf_valid(&session, "nope"));
        assert_ne!(csrf, session);
    }
}

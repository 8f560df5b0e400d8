//! The simulator's shared state: member store, fault switches, sessions and the request log.
//!
//! Tests hold a [`SimState`] (a cheap clone) to seed members, flip faults at runtime and read back
//! what was stored and requested. One std `Mutex` guards everything: no lock is held across an
//! `.await`, and the critical sections are tiny.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::RngCore;

use rondo_reverse_sync::clock::SharedClock;

use super::member::SimMember;
use super::totp::TotpVerifier;
use super::variant::Variant;

/// How dates are displayed in read-only mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DateDisplay {
    /// `30 okt 2023`
    #[default]
    Dutch,
    /// `30 okt. 2023` (Dutch locale abbreviations; "mei" has no dot)
    DutchDot,
    /// `30-10-2023`
    Numeric,
}

/// Runtime fault switches. `Faults::default()` is the realistic, well-behaved site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Faults {
    /// The page JS renders sections this long after their data arrived (also after a save).
    pub render_delay_ms: u64,
    /// Every HTTP response is delayed by this much.
    pub slow_response_ms: u64,
    /// A session is refused on its (N+1)-th request (pages and JSON calls both count).
    pub session_expire_after_requests: Option<u32>,
    /// Each new session is refused after a number of requests drawn from this range (inclusive);
    /// takes precedence over `session_expire_after_requests`.
    pub session_requests_range: Option<(u32, u32)>,
    /// Every data request of the app (a read it marks as its own) waits a random time in this
    /// range (milliseconds, inclusive), on top of `slow_response_ms`.
    pub data_delay_ms: Option<(u64, u64)>,
    /// Every save of the app waits a random time in this range (milliseconds, inclusive).
    pub save_delay_ms: Option<(u64, u64)>,
    /// A save the app makes is stored (and logged) at once, but its answer is held back for as
    /// long as this stays set: the moment between Sportlink taking a value and the client
    /// hearing of it, held open for a crash test ([`SimState::held_saves`] counts them).
    pub hold_save_answers: bool,
    /// Sections shown under another heading (old title, shown title): UI drift as Sportlink
    /// makes it, for the circuit breaker's tests.
    pub renamed_sections: Vec<(String, String)>,
    /// A session is refused once it is this old.
    pub session_expire_after: Option<Duration>,
    /// One-shot: the next save expires the session and answers 401.
    pub expire_session_on_next_save: bool,
    /// A TOTP code already accepted in its 30 s window is refused (Keycloak's replay protection).
    pub refuse_reused_totp: bool,
    /// One more `Wijzig` button in every page header, before the sections.
    pub extra_header_button: bool,
    /// Inputs named `Email`, `Mobile`, `Phone`, `inputRemarksN` instead of the new names.
    pub old_input_names: bool,
    /// One-shot: the next save is refused with this validation message.
    pub validation_error_on_save: Option<String>,
    /// The next N saves answer 500.
    pub server_error_on_saves: u32,
    /// One-shot: when a save is answered 500 (`server_error_on_saves`), `render_delay_ms`
    /// becomes this, so the client's retry meets a page that does not finish (for a stop that
    /// abandons the retry).
    pub render_delay_after_server_error_ms: Option<u64>,
    /// One-shot: the next save containing this JSON key (or its old input name) stores a value
    /// different from what was typed.
    pub store_differs: Option<String>,
    pub date_display: DateDisplay,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            render_delay_ms: 0,
            slow_response_ms: 0,
            session_expire_after_requests: None,
            session_requests_range: None,
            data_delay_ms: None,
            save_delay_ms: None,
            hold_save_answers: false,
            renamed_sections: Vec::new(),
            session_expire_after: None,
            expire_session_on_next_save: false,
            refuse_reused_totp: true,
            extra_header_button: false,
            old_input_names: false,
            validation_error_on_save: None,
            server_error_on_saves: 0,
            render_delay_after_server_error_ms: None,
            store_differs: None,
            date_display: DateDisplay::Dutch,
        }
    }
}

/// One request as the simulator received it. Login form secrets are never recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub time: DateTime<Utc>,
    pub method: String,
    pub path: String,
    /// The raw query string (`""` when none).
    pub query: String,
    /// The session cookie the request carried, valid or not.
    pub session_id: Option<String>,
    pub status: u16,
    /// For saves: the JSON body flattened to `(key, value)` pairs (`Email1`, `Remarks8`, ...).
    /// For login forms: the field names, with password and code as `[redacted]`.
    pub fields: Vec<(String, String)>,
    /// For a data request in the variant's format: the endpoint as sportlink.md names it
    /// (`/member/persondata/MemberCommunication`, ...), whatever prefix or id the URL had.
    pub endpoint: Option<String>,
    /// For a data request in the variant's format: the member id it addressed (from the query
    /// parameter or path segment the variant uses).
    pub member_id: Option<String>,
    /// The request carried the variant's client header, which only the page's own script sets.
    pub app_marked: bool,
    /// A document navigation (`Sec-Fetch-Mode: navigate`, or an HTML `Accept` without it).
    pub navigation: bool,
    /// How long the simulator held this request on purpose (delay faults), in milliseconds.
    pub delay_ms: u64,
}

impl LoggedRequest {
    /// The value of `name` in the query string, if present.
    pub fn query_param(&self, name: &str) -> Option<String> {
        super::http::query_param(&self.query, name)
    }

    /// A POST or PUT to one of the member JSON endpoints, in the variant's URL format.
    pub fn is_save(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT") && self.endpoint.is_some()
    }

    /// A document navigation (typed URL, link, form submit), not a script's request.
    pub fn is_navigation(&self) -> bool {
        self.navigation
    }

    /// The value logged for field `key`, if the request carried it.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
pub(crate) struct Session {
    created: Instant,
    requests: u32,
    /// This session's own request limit (drawn from `session_requests_range`).
    limit: Option<u32>,
}

/// A login that passed the password step and waits for its TOTP code.
#[derive(Debug)]
struct PendingLogin {
    created: Instant,
}

/// Why an authenticated request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionError {
    Missing,
    Expired,
}

/// An unconfirmed login is forgotten after this long, as Keycloak's auth session is.
const PENDING_LOGIN_TTL: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub(crate) struct Data {
    pub(crate) members: BTreeMap<String, SimMember>,
    pub(crate) faults: Faults,
    pub(crate) variant: Variant,
    log: Vec<LoggedRequest>,
    held_saves: u64,
    sessions: HashMap<String, Session>,
    pending_logins: HashMap<String, PendingLogin>,
    used_totp_steps: HashSet<u64>,
}

#[derive(Debug)]
struct Inner {
    username: String,
    password: String,
    totp: TotpVerifier,
    clock: SharedClock,
    data: Mutex<Data>,
}

/// Handle on the simulator's state. Cloning is cheap; all clones see the same store.
#[derive(Debug, Clone)]
pub struct SimState {
    inner: Arc<Inner>,
}

impl SimState {
    pub(crate) fn new(
        username: String,
        password: String,
        totp: TotpVerifier,
        clock: SharedClock,
    ) -> SimState {
        let data = Data {
            members: BTreeMap::new(),
            faults: Faults::default(),
            variant: Variant::plain(),
            log: Vec::new(),
            held_saves: 0,
            sessions: HashMap::new(),
            pending_logins: HashMap::new(),
            used_totp_steps: HashSet::new(),
        };
        SimState {
            inner: Arc::new(Inner {
                username,
                password,
                totp,
                clock,
                data: Mutex::new(data),
            }),
        }
    }

    /// The data lock. A panic while holding it cannot leave the store half-written in a way that
    /// matters for a test double, so a poisoned lock is simply taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Data> {
        self.inner
            .data
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds or replaces a member (keyed by `knvb_id`).
    pub fn seed_member(&self, member: SimMember) {
        self.lock().members.insert(member.knvb_id.clone(), member);
    }

    pub fn member(&self, knvb_id: &str) -> Option<SimMember> {
        self.lock().members.get(knvb_id).cloned()
    }

    pub fn members(&self) -> Vec<SimMember> {
        self.lock().members.values().cloned().collect()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// Changes some fault switches in place, keeping the others.
    pub fn update_faults(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut self.lock().faults);
    }

    pub fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    /// Switches the incidental shape of the site (URL formats, JSON wrappers, markup, timing).
    /// Pages already open keep the variant they were served with.
    pub fn set_variant(&self, variant: Variant) {
        self.lock().variant = variant;
    }

    /// The variant in use ([`Variant::plain`] until one is set).
    pub fn variant(&self) -> Variant {
        self.lock().variant.clone()
    }

    /// The seed of the variant in use, `None` for the plain or a hand-made variant.
    pub fn variant_seed(&self) -> Option<u64> {
        self.lock().variant.seed
    }

    /// Draws the variant from `SPORTLINK_SIM_SEED` or a random seed, uses it, and returns the
    /// seed; print [`Variant::repeat_hint`] (or the seed) so a failure can be repeated.
    pub fn use_variant_from_env_or_random(&self) -> u64 {
        let (seed, variant) = Variant::from_env_or_random();
        self.set_variant(variant);
        seed
    }

    /// How many save answers `hold_save_answers` has held back so far (stored, not answered).
    pub fn held_saves(&self) -> u64 {
        self.lock().held_saves
    }

    pub(crate) fn note_held_save(&self) {
        self.lock().held_saves += 1;
    }

    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.lock().log.clone()
    }

    pub fn clear_log(&self) {
        self.lock().log.clear();
    }

    /// Every save (successful or not) addressed to this member, oldest first.
    pub fn saves_for(&self, knvb_id: &str) -> Vec<LoggedRequest> {
        self.lock()
            .log
            .iter()
            .filter(|r| r.is_save() && r.member_id.as_deref() == Some(knvb_id))
            .cloned()
            .collect()
    }

    /// Ends every session: the next navigation goes to the login page, the next save gets 401.
    pub fn expire_all_sessions(&self) {
        self.lock().sessions.clear();
    }

    pub(crate) fn record(&self, request: LoggedRequest) {
        self.lock().log.push(request);
    }

    pub(crate) fn credentials_match(&self, username: &str, password: &str) -> bool {
        use subtle::ConstantTimeEq;
        let user_ok = username.as_bytes().ct_eq(self.inner.username.as_bytes());
        let pass_ok = password.as_bytes().ct_eq(self.inner.password.as_bytes());
        (user_ok & pass_ok).into()
    }

    pub(crate) fn start_pending_login(&self) -> String {
        let code = random_token();
        let mut data = self.lock();
        data.pending_logins
            .retain(|_, p| p.created.elapsed() < PENDING_LOGIN_TTL);
        data.pending_logins.insert(
            code.clone(),
            PendingLogin {
                created: Instant::now(),
            },
        );
        code
    }

    pub(crate) fn pending_login_exists(&self, session_code: &str) -> bool {
        self.lock()
            .pending_logins
            .get(session_code)
            .is_some_and(|p| p.created.elapsed() < PENDING_LOGIN_TTL)
    }

    /// Checks a TOTP code for a pending login. On success the pending login becomes a session
    /// and its id is returned.
    pub(crate) fn complete_login(&self, session_code: &str, otp: &str) -> Option<String> {
        let step = self
            .inner
            .totp
            .matching_step(otp, unix_secs(self.inner.clock.now()))?;
        let mut data = self.lock();
        if !data.pending_logins.contains_key(session_code) {
            return None;
        }
        let reused = data.used_totp_steps.contains(&step);
        if reused && data.faults.refuse_reused_totp {
            return None;
        }
        data.used_totp_steps.insert(step);
        // Steps more than one behind can never match again (±1 step), so forget them.
        data.used_totp_steps
            .retain(|&used| used.saturating_add(2) >= step);
        data.pending_logins.remove(session_code);
        let session_id = random_token();
        let limit = data
            .faults
            .session_requests_range
            .map(|(lo, hi)| rand::Rng::gen_range(&mut rand::thread_rng(), lo.min(hi)..=hi.max(lo)));
        data.sessions.insert(
            session_id.clone(),
            Session {
                created: Instant::now(),
                requests: 0,
                limit,
            },
        );
        Some(session_id)
    }

    /// Counts one request against the session and applies the expiry faults.
    pub(crate) fn touch_session(&self, session_id: Option<&str>) -> Result<(), SessionError> {
        let id = session_id.ok_or(SessionError::Missing)?;
        let mut data = self.lock();
        let faults = data.faults.clone();
        let session = data.sessions.get_mut(id).ok_or(SessionError::Missing)?;
        session.requests = session.requests.saturating_add(1);
        let too_many = session
            .limit
            .or(faults.session_expire_after_requests)
            .is_some_and(|limit| session.requests > limit);
        let too_old = faults
            .session_expire_after
            .is_some_and(|ttl| session.created.elapsed() >= ttl);
        if too_many || too_old {
            data.sessions.remove(id);
            return Err(SessionError::Expired);
        }
        Ok(())
    }

    pub(crate) fn end_session(&self, session_id: &str) {
        self.lock().sessions.remove(session_id);
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_secs(t: std::time::SystemTime) -> u64 {
    // A clock before 1970 is not a case worth failing a login over; it yields step 0.
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

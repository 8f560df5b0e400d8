//! The browser session: one Chromium process, one tab, one Sportlink login reused for many
//! members. Owned by exactly one task (the executor); nothing else touches it.
//!
//! Lazy: the browser starts on the first navigation. The login happens when a navigation lands on
//! Keycloak (`/auth/realms/`), and the navigation is retried once after it. `close` shuts Chromium
//! down, joins the chromiumoxide handler task and removes the throw-away profile directory; `Drop`
//! does what it can synchronously (Chromium is spawned with kill-on-drop). Starting and stopping
//! the Chromium process is in `process`; here the session that logs in and navigates.

mod process;

pub use process::QUIET_FLAGS;

use std::path::PathBuf;
use std::time::Duration;

use chromiumoxide::Page;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::lock::OtpStepRecorder;
use super::network::NetworkLog;
use super::page::{PageError, PageModel, PageTimings};
use super::scrub::Scrubber;
use super::totp::{OtpCode, OtpGenerator, OtpSetupError};
use crate::clock::SharedClock;
use process::RunningBrowser;

/// What the browser session needs to know.
#[derive(Clone)]
pub struct SessionSettings {
    /// e.g. `https://club.sportlink.com` (no trailing slash needed).
    pub base_url: String,
    pub username: String,
    pub password: SecretString,
    pub otp_secret: SecretString,
    pub chromium_path: PathBuf,
    pub headless: bool,
    pub timings: PageTimings,
    /// Deadline for Chromium to start.
    pub launch_timeout: Duration,
    /// What the one-time codes are computed from and what waiting for the next window waits
    /// on: the system clock, except in tests that control time.
    pub clock: SharedClock,
}

impl std::fmt::Debug for SessionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSettings")
            .field("base_url", &self.base_url)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("otp_secret", &"[redacted]")
            .field("chromium_path", &self.chromium_path)
            .field("headless", &self.headless)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("could not start Chromium at {path}: {reason}")]
    Launch { path: PathBuf, reason: String },
    #[error(transparent)]
    Otp(#[from] OtpSetupError),
    #[error("Sportlink refused the login: {message}")]
    LoginRefused { message: String },
    #[error("Sportlink refused the one-time code twice (is the server clock right, is the OTP secret right?): {message}")]
    OtpRefused { message: String },
    #[error("the login did not complete: {0}")]
    LoginIncomplete(String),
    #[error("still on the login page after logging in again; giving up on this page")]
    StillOnLogin,
    #[error("invalid member id {0:?}")]
    InvalidMemberId(String),
    #[error(transparent)]
    Page(#[from] PageError),
}

impl SessionError {
    /// Login problems that no retry will fix (wrong credentials, wrong secret).
    pub fn is_login_refused(&self) -> bool {
        matches!(
            self,
            Self::LoginRefused { .. } | Self::OtpRefused { .. } | Self::Otp(_)
        )
    }
}

/// Counters useful to tests and to the operator.
#[derive(Debug, Default, Clone, Copy)]
pub struct SessionStats {
    pub launches: u32,
    pub logins: u32,
}

/// One Sportlink session in one browser tab.
pub struct SportlinkSession {
    settings: SessionSettings,
    otp: OtpGenerator,
    /// Told each TOTP step the moment its code is about to be submitted.
    otp_recorder: Option<OtpStepRecorder>,
    /// Whether Sportlink takes a code of the next window (learnt: off after one refusal).
    otp_ahead_allowed: bool,
    browser: Option<RunningBrowser>,
    last_activity: Instant,
    stats: SessionStats,
    scrubber: Scrubber,
}

impl SportlinkSession {
    pub fn new(settings: SessionSettings) -> Result<Self, SessionError> {
        let otp = OtpGenerator::new(&settings.otp_secret)?;
        let scrubber = Scrubber::new([
            settings.password.expose_secret().to_owned(),
            settings.otp_secret.expose_secret().to_owned(),
        ]);
        Ok(Self {
            settings,
            otp,
            otp_recorder: None,
            otp_ahead_allowed: true,
            browser: None,
            last_activity: Instant::now(),
            stats: SessionStats::default(),
            scrubber,
        })
    }

    /// Continue from a TOTP step known to be used (persisted with the account lock).
    pub fn set_last_used_otp_step(&mut self, step: Option<u64>) {
        self.otp.remember_used_step(step);
    }

    /// Record every TOTP step as its code is submitted (the account lock's file).
    pub fn set_otp_recorder(&mut self, recorder: OtpStepRecorder) {
        self.otp_recorder = Some(recorder);
    }

    pub fn last_used_otp_step(&self) -> Option<u64> {
        self.otp.last_used_step()
    }

    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    pub fn scrubber(&self) -> &Scrubber {
        &self.scrubber
    }

    pub fn settings(&self) -> &SessionSettings {
        &self.settings
    }

    pub fn is_open(&self) -> bool {
        self.browser.is_some()
    }

    pub fn idle_for(&self) -> Duration {
        self.last_activity.elapsed()
    }

    /// The Chromium process id, while a browser runs (for measurements).
    pub fn browser_pid(&mut self) -> Option<u32> {
        self.browser.as_mut().and_then(|b| b.pid())
    }

    /// The page model over the (lazily started) browser tab.
    pub async fn page(&mut self) -> Result<PageModel<'_>, SessionError> {
        self.last_activity = Instant::now();
        if self.browser.as_ref().is_some_and(|b| !b.is_alive()) {
            tracing::warn!("Chromium went away; starting a new one");
            self.close().await;
        }
        if self.browser.is_none() {
            let running = RunningBrowser::launch(&self.settings).await?;
            self.stats.launches += 1;
            tracing::info!("Chromium started");
            self.browser = Some(running);
        }
        match &self.browser {
            Some(b) => Ok(PageModel::new(&b.page, &b.network, self.settings.timings)),
            None => Err(SessionError::LoginIncomplete("no browser".into())),
        }
    }

    /// The raw tab, for artefacts (screenshots). `None` when no browser runs.
    pub fn raw_page(&self) -> Option<&Page> {
        self.browser.as_ref().map(|b| &b.page)
    }

    /// Open `path` (e.g. `/member/member-details/X/general`), logging in when the navigation
    /// lands on Keycloak, then retrying the navigation once. Returns the network mark taken just
    /// before the navigation that stuck: the app's answers for this page are those since it.
    pub async fn open(&mut self, path: &str) -> Result<u64, SessionError> {
        let url = self.url(path);
        let model = self.page().await?;
        let mark = model.network().mark();
        let landed = model.goto(&url).await?;
        if !is_login_url(&landed) {
            return Ok(mark);
        }
        // The login may return to the page asked for (then the app's answers since before the
        // login are this page's: the login pages themselves make no app requests) or elsewhere.
        let before_login = self.page().await?.network().mark();
        self.login_here().await?;
        let model = self.page().await?;
        let here = model.current_url().await?;
        if super::network::path_of(&here) == path {
            return Ok(before_login);
        }
        let mark = model.network().mark();
        let landed = model.goto(&url).await?;
        if is_login_url(&landed) {
            return Err(SessionError::StillOnLogin);
        }
        Ok(mark)
    }

    /// What the app in the tab fetched (while a browser runs).
    pub fn network(&self) -> Option<&NetworkLog> {
        self.browser.as_ref().map(|b| &b.network)
    }

    /// Log in again after an expired session showed up somewhere other than a navigation (a
    /// save answered with the login page). Opens the site's root to get to the login form.
    pub async fn relogin(&mut self) -> Result<(), SessionError> {
        let url = self.url("/");
        let landed = self.page().await?.goto(&url).await?;
        if is_login_url(&landed) {
            self.login_here().await?;
        }
        Ok(())
    }

    /// Log in from the login page the tab is on: credentials, then the one-time code. A refused
    /// code is retried once with the code of the next window.
    async fn login_here(&mut self) -> Result<(), SessionError> {
        tracing::info!("logging in to Sportlink");
        let mut otp_attempts = 0;
        let mut credential_attempts = 0;
        // The step of a code from the window ahead that was just submitted.
        let mut ahead: Option<u64> = None;
        loop {
            let state = self.page().await?.login_state().await?;
            if !state.on_login {
                self.stats.logins += 1;
                tracing::info!("logged in to Sportlink");
                return Ok(());
            }
            if let Some(step) = ahead.take() {
                if state.has_otp || state.has_username {
                    // Sportlink does not take codes ahead of their window: stop offering them.
                    tracing::info!("Sportlink refused a code of the next window; waiting for windows from now on");
                    self.otp_ahead_allowed = false;
                    self.otp.give_back(step);
                    otp_attempts -= 1;
                }
            }
            if state.has_otp {
                if otp_attempts >= 2 {
                    return Err(SessionError::OtpRefused {
                        message: self.scrubber.scrub(&state.error),
                    });
                }
                if otp_attempts > 0 {
                    // The code we sent was refused: someone (another process, or an earlier
                    // login of ours) may have used this window. Never reuse: wait for the next.
                    self.otp.burn_current(self.settings.clock.now());
                }
                otp_attempts += 1;
                let (code, is_ahead) = self.fresh_otp(otp_attempts == 1).await;
                if is_ahead {
                    ahead = Some(code.step);
                }
                self.page().await?.submit_otp(&code.code).await?;
                continue;
            }
            if state.has_username {
                if credential_attempts > otp_attempts {
                    // Back at the first step right after submitting credentials: refused.
                    let message = if state.error.is_empty() {
                        "no message shown".to_owned()
                    } else {
                        state.error.clone()
                    };
                    return Err(SessionError::LoginRefused {
                        message: self.scrubber.scrub(&message),
                    });
                }
                if otp_attempts >= 2 {
                    return Err(SessionError::OtpRefused {
                        message: self.scrubber.scrub(&state.error),
                    });
                }
                if otp_attempts > 0 {
                    // Back at the first step after a refused code.
                    self.otp.burn_current(self.settings.clock.now());
                }
                credential_attempts += 1;
                let password = self.settings.password.clone();
                let username = self.settings.username.clone();
                self.page()
                    .await?
                    .submit_credentials(&username, password.expose_secret())
                    .await?;
                continue;
            }
            return Err(SessionError::LoginIncomplete(format!(
                "unknown login page (no #username/#password or #otp); message: {}",
                self.scrubber.scrub(&state.error)
            )));
        }
    }

    /// A code from a window that was never used: the current window's, else (first try only,
    /// while Sportlink takes them) the next window's, else the next window's once it starts.
    /// Its step is recorded before it is returned. `.1`: the code is ahead of its window.
    async fn fresh_otp(&mut self, may_go_ahead: bool) -> (OtpCode, bool) {
        loop {
            let now = self.settings.clock.now();
            let wait = self.otp.wait_before_next(now);
            if !wait.is_zero() && may_go_ahead && self.otp_ahead_allowed {
                if let Some(code) = self.otp.take_code_ahead(now) {
                    self.record_otp_step(code.step);
                    return (code, true);
                }
            }
            if !wait.is_zero() {
                tracing::info!(
                    wait_ms = wait.as_millis() as u64,
                    "waiting for the next one-time-code window"
                );
                // Waiting for a clock boundary, not for another task: a timed wait is the point.
                self.settings
                    .clock
                    .sleep(wait + Duration::from_millis(50))
                    .await;
            }
            if let Some(code) = self.otp.take_code(self.settings.clock.now()) {
                self.record_otp_step(code.step);
                return (code, false);
            }
        }
    }

    fn record_otp_step(&self, step: u64) {
        if let Some(recorder) = &self.otp_recorder {
            recorder.record(step);
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.settings.base_url.trim_end_matches('/'), path)
    }

    /// Shut the browser down (if one runs). Safe to call more than once.
    pub async fn close(&mut self) {
        if let Some(mut running) = self.browser.take() {
            running.close().await;
            tracing::info!("Chromium closed");
        }
    }
}

pub fn is_login_url(url: &str) -> bool {
    url.contains("/auth/realms/")
}

/// Validate a KNVB id before it goes into a URL path.
pub fn member_path(knvb_id: &str, page: &str) -> Result<String, SessionError> {
    let ok = !knvb_id.is_empty()
        && knvb_id.len() <= 32
        && knvb_id.chars().all(|c| c.is_ascii_alphanumeric());
    if !ok {
        return Err(SessionError::InvalidMemberId(
            knvb_id.chars().take(40).collect(),
        ));
    }
    Ok(format!("/member/member-details/{knvb_id}/{page}"))
}

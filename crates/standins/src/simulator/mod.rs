//! A stand-in for Sportlink Club, for tests and the demo: the Keycloak login with TOTP, member
//! pages rendered by JavaScript from JSON endpoints, an in-memory member store, a request log,
//! and runtime fault switches that reproduce what has broken browser automation before.
//!
//! Every detail that `../shared/spec/sportlink.md` does not promise (data URL format, JSON
//! wrappers, markup, texts' whitespace, order, timing, ...) follows a [`Variant`], drawn per run
//! from a seed (`SPORTLINK_SIM_SEED` pins it) so that automation cannot overfit one shape;
//! [`Variant::plain`] is the fixed shape a `SimState` starts with.
//!
//! The DOM and JSON it serves are specified in `docs/sportlink-contract.md` (promised vs drawn);
//! how to run it, the variants and the fault switches in `docs/simulator.md`.

mod api;
mod auth;
mod http;
mod member;
mod pages;
mod save;
mod state;
mod totp;
mod variant;

use crate::local_server::LocalServer;
use axum::routing::{get, post};
use axum::Router;
use rondo_reverse_sync::clock::{self, SharedClock};

pub use member::{Address, Communication, MemberStatus, Section, SimMember};
pub use state::{DateDisplay, Faults, LoggedRequest, SimState};
pub use totp::totp_code;
pub use variant::{
    AfterSave, ButtonElement, CheckboxStyle, EditButtonPlace, ErrorElement, FlagEncoding,
    HeadingElement, JsonWrapper, LoginErrorElement, MemberIdIn, MissingSection, ReadOnlyLayout,
    SaveAnswer, SaveMethod, SectionMarkup, SectionRendering, Variant, SEED_ENV,
};

/// Credentials the simulated site accepts, and where it listens.
#[derive(Clone)]
pub struct SimConfig {
    pub username: String,
    pub password: String,
    /// Base32 TOTP secret (RFC 6238, SHA1, 6 digits, 30 s).
    pub otp_secret_base32: String,
    /// 0 = any free port.
    pub port: u16,
    /// What one-time codes are checked against: the system clock, or one a test controls (and
    /// shares with the executor it drives).
    pub clock: SharedClock,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("otp_secret_base32", &"[redacted]")
            .field("port", &self.port)
            .field("clock", &self.clock)
            .finish()
    }
}

impl Default for SimConfig {
    /// Demo credentials; the secret is 160 bits like the ones authenticator apps are given.
    fn default() -> Self {
        SimConfig {
            username: "demo".to_owned(),
            password: "demo".to_owned(),
            otp_secret_base32: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".to_owned(),
            port: 0,
            clock: clock::system(),
        }
    }
}

/// A running simulator on 127.0.0.1.
#[derive(Debug)]
pub struct Simulator {
    server: LocalServer,
    state: SimState,
    clock: SharedClock,
}

impl Simulator {
    /// Binds 127.0.0.1 (`config.port`, 0 = free port) and serves until [`Simulator::shutdown`].
    /// Fails when the port is taken or the OTP secret is not base32.
    pub async fn start(config: SimConfig) -> std::io::Result<Simulator> {
        let totp = totp::TotpVerifier::from_base32(&config.otp_secret_base32)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let state = SimState::new(config.username, config.password, totp, config.clock.clone());
        let server =
            LocalServer::start("sportlink simulator", config.port, router(state.clone())).await?;
        Ok(Simulator {
            server,
            state,
            clock: config.clock,
        })
    }

    /// E.g. `http://127.0.0.1:43121` (no trailing slash).
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn state(&self) -> SimState {
        self.state.clone()
    }

    /// The clock one-time codes are checked against (a session logging in here needs the same).
    pub fn clock(&self) -> SharedClock {
        self.clock.clone()
    }

    /// Stops accepting connections, lets open requests finish (at most a few seconds), and joins
    /// the server task.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

fn router(state: SimState) -> Router {
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/member/member-details/{id}/{tab}", get(pages::member_page))
        .route(auth::AUTH_PATH, get(auth::login_page))
        .route(auth::PASSWORD_PATH, post(auth::submit_password))
        .route(auth::OTP_PATH, get(auth::otp_page).post(auth::submit_otp))
        .route("/logout", get(auth::logout))
        // Data requests are routed at request time, by the variant in use.
        .fallback(api::dispatch)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::log_and_delay,
        ))
        .with_state(state)
}

//! A stand-in for Sportlink Club, for tests and the demo: the Keycloak login with TOTP, member
//! pages rendered by JavaScript from JSON endpoints, an in-memory member store, a request log,
//! and runtime fault switches that reproduce what has broken browser automation before.
//!
//! The DOM and JSON it serves are specified in `docs/sportlink-contract.md`; how to run it and
//! the fault switches in `docs/simulator.md`.

mod api;
mod auth;
mod http;
mod member;
mod pages;
mod save;
mod state;
mod totp;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use member::{Address, Communication, MemberStatus, Section, SimMember};
pub use state::{DateDisplay, Faults, LoggedRequest, SimState};
pub use totp::totp_code;

/// How long `shutdown` waits for open connections (e.g. a browser's keep-alive) before it stops
/// the server task outright.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Credentials the simulated site accepts, and where it listens.
#[derive(Clone)]
pub struct SimConfig {
    pub username: String,
    pub password: String,
    /// Base32 TOTP secret (RFC 6238, SHA1, 6 digits, 30 s).
    pub otp_secret_base32: String,
    /// 0 = any free port.
    pub port: u16,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("otp_secret_base32", &"[redacted]")
            .field("port", &self.port)
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
        }
    }
}

/// A running simulator on 127.0.0.1.
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    state: SimState,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl Simulator {
    /// Binds 127.0.0.1 (`config.port`, 0 = free port) and serves until [`Simulator::shutdown`].
    /// Fails when the port is taken or the OTP secret is not base32.
    pub async fn start(config: SimConfig) -> std::io::Result<Simulator> {
        let totp = totp::TotpVerifier::from_base32(&config.otp_secret_base32)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let state = SimState::new(config.username, config.password, totp);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, config.port)).await?;
        let addr = listener.local_addr()?;

        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender (Simulator dropped) also stops the server.
                    let _ = stopped.await;
                })
                .await
        });
        tracing::info!(%addr, "sportlink simulator listening");
        Ok(Simulator {
            addr,
            state,
            stop: Some(stop),
            server: Some(server),
        })
    }

    /// E.g. `http://127.0.0.1:43121` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> SimState {
        self.state.clone()
    }

    /// Stops accepting connections, lets open requests finish (at most a few seconds), and joins
    /// the server task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            // The receiver is gone only if the server already ended; nothing to stop then.
            let _ = stop.send(());
        }
        let Some(mut server) = self.server.take() else {
            return;
        };
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "simulator server ended with an error"),
            Ok(Err(e)) => tracing::warn!(error = %e, "simulator server task failed"),
            Err(_) => {
                tracing::warn!("simulator connections still open after grace period; aborting");
                server.abort();
                // Joining after abort only reports the cancellation.
                let _ = server.await;
            }
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        // Without shutdown() the server still stops (not joined) rather than outliving its owner.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
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
        .merge(api::routes())
        .fallback(pages::fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::log_and_delay,
        ))
        .with_state(state)
}

//! Building the app from settings, and running it until a shutdown future completes.
//!
//! [`run`] takes an already bound listener (tests bind `127.0.0.1:0`) and returns at once with
//! the port; [`Running::wait`] returns once every task has finished. Shutdown: one cancellation
//! token; the server stops accepting, finishes the requests in flight, then returns.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::catalogue::Catalogue;
use crate::config::{ConfigError, Settings, WebhookSettings};
use crate::http::{self, AppState};
use crate::webhook::{Verifier, WebhookSecret};

/// The signature verifier for the configured secret (and the previous one, during a rotation).
pub fn verifier(settings: &WebhookSettings) -> Result<Verifier, ConfigError> {
    let mut secrets = Vec::new();
    for (setting, secret) in [
        ("webhook.secret", &settings.secret),
        ("webhook.previous_secret", &settings.previous_secret),
    ] {
        if secret.is_set() {
            secrets.push(
                WebhookSecret::parse(secret.expose())
                    .map_err(|e| ConfigError::new(setting, e.to_string()))?,
            );
        }
    }
    if secrets.is_empty() {
        return Err(ConfigError::new(
            "webhook.secret",
            "must be set (RRS_WEBHOOK__SECRET), as whsec_<base64>",
        ));
    }
    let tolerance = i64::try_from(settings.tolerance_secs)
        .map_err(|_| ConfigError::new("webhook.tolerance_secs", "too large"))?;
    Ok(Verifier::new(secrets, tolerance))
}

/// Opens (and migrates) the database and assembles what the handlers share.
pub async fn build_state(
    settings: &Settings,
    catalogue: Arc<Catalogue>,
) -> anyhow::Result<AppState> {
    let verifier = verifier(&settings.webhook)?;
    let store = {
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || crate::open_store(&settings, catalogue))
            .await
            .context("opening the database")??
    };
    Ok(AppState {
        store,
        verifier: Arc::new(verifier),
        max_body_bytes: settings.server.max_body_bytes,
        executor_wake: Arc::new(Notify::new()),
    })
}

/// The running service.
pub struct Running {
    port: u16,
    cancel: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
}

/// Serves `state` on `listener` until `shutdown` completes (or a task fails).
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<Running> {
    let port = listener.local_addr()?.port();
    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();

    let token = cancel.clone();
    tasks.spawn(async move {
        tokio::select! {
            () = shutdown => {
                tracing::info!("shutting down: no new connections, finishing requests in flight");
                token.cancel();
            }
            () = token.cancelled() => {}
        }
        Ok(())
    });

    let token = cancel.clone();
    let app = http::router(state);
    tasks.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(token.clone().cancelled_owned())
            .await
            .context("HTTP server");
        // However the server ended, everything else stops too.
        token.cancel();
        served
    });

    Ok(Running {
        port,
        cancel,
        tasks,
    })
}

impl Running {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the shutdown, as the shutdown future completing would.
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }

    /// Waits until every task has finished; the first failure, if any.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            let result = joined.map_err(anyhow::Error::from).and_then(|task| task);
            if let Err(e) = result {
                self.cancel.cancel();
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

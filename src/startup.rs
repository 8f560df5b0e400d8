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
use crate::config::Needs;
use crate::config::{ConfigError, Settings, WebhookSettings};
use crate::http::{self, AppState, Metrics, OpsState, Unwired};
use crate::operations::{ExecutorControl, ServiceOperations};
use crate::poll::{Poller, RondoClient};
use crate::sportlink::{self, service::ExecutorHandle};
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
    let executor_wake = Arc::new(Notify::new());
    // The poll and the executor are wired in by `serve` through `OpsState::with_operations`;
    // until then their admin endpoints answer 503 "not available in this build".
    let ops = OpsState::new(
        store.clone(),
        settings.admin.token.clone(),
        Arc::new(Metrics::new()),
        Arc::new(Unwired),
        executor_wake.clone(),
    );
    Ok(AppState {
        store,
        verifier: Arc::new(verifier),
        max_body_bytes: settings.server.max_body_bytes,
        executor_wake,
        ops,
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

/// The whole service: the HTTP server plus, when configured, the reconciliation poller (Rondo
/// Club) and the Sportlink executor, both behind the admin API's operations seam.
pub struct Service {
    running: Running,
    cancel: CancellationToken,
    poller: Option<Poller>,
    executor: Option<ExecutorHandle>,
}

/// Builds and starts the service on `listener` until `shutdown` completes. Settings problems
/// come back as [`ConfigError`] (inside the `anyhow::Error`). A part that is not configured
/// does not run, and its admin endpoints answer 503.
pub async fn launch(
    settings: &Settings,
    catalogue: Arc<Catalogue>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Service> {
    // Validate everything before starting anything, so an error leaves no task behind.
    let with = |needs: Needs| settings.validate(needs);
    if settings.admin.token.is_set() {
        with(Needs {
            admin: true,
            ..Needs::DATABASE_ONLY
        })?;
    } else {
        tracing::warn!(
            "admin.token is not set: the admin API and the operator page refuse everyone"
        );
    }
    let rondo = if settings.rondo_club.base_url.trim().is_empty() {
        tracing::warn!("rondo_club.base_url is not set: no reconciliation poll, no re-detection");
        None
    } else {
        with(Needs {
            rondo_club: true,
            ..Needs::DATABASE_ONLY
        })?;
        Some(
            RondoClient::new(&settings.rondo_club, &settings.poll)
                .map_err(|e| ConfigError::new("rondo_club", e.to_string()))?,
        )
    };
    let run_executor = !settings.sportlink.username.trim().is_empty();
    if run_executor {
        with(Needs {
            sportlink: true,
            ..Needs::DATABASE_ONLY
        })?;
    } else {
        tracing::warn!("sportlink.username is not set: the executor does not run");
    }

    let mut state = build_state(settings, catalogue).await?;
    let cancel = CancellationToken::new();
    let executor = if run_executor {
        let lock = sportlink::setup::lock_account(settings).context("Sportlink account lock")?;
        let executor =
            sportlink::setup::chromium_executor(&settings.sportlink, state.store.clone(), lock)
                .context("Sportlink executor")?;
        Some(ExecutorHandle::spawn_with_metrics(
            executor,
            cancel.clone(),
            Some(state.ops.metrics().clone()),
        ))
    } else {
        None
    };
    let poller = rondo.as_ref().map(|client| {
        Poller::spawn(
            state.store.clone(),
            client.clone(),
            settings.poll.clone(),
            cancel.clone(),
        )
    });
    let wake = executor
        .as_ref()
        .map(ExecutorHandle::notifier)
        .unwrap_or_else(|| state.executor_wake.clone());
    state.executor_wake = wake.clone();
    state.ops = OpsState::new(
        state.store.clone(),
        settings.admin.token.clone(),
        state.ops.metrics().clone(),
        Arc::new(ServiceOperations {
            store: state.store.clone(),
            poller: poller.as_ref().map(Poller::handle),
            rondo,
            executor: executor.as_ref().map(|e| ExecutorControl {
                board: e.status_board(),
                wake: e.notifier(),
            }),
        }),
        wake,
    );
    let running = match run(listener, state, shutdown).await {
        Ok(running) => running,
        Err(e) => {
            stop_parts(cancel, poller, executor).await;
            return Err(anyhow::Error::new(e).context("cannot start the HTTP server"));
        }
    };
    Ok(Service {
        running,
        cancel,
        poller,
        executor,
    })
}

impl Service {
    pub fn port(&self) -> u16 {
        self.running.port()
    }

    /// Starts the shutdown, as the shutdown future completing would.
    pub fn shutdown(&self) {
        self.running.shutdown();
    }

    /// Waits until the server has stopped, then stops and joins the poller and the executor
    /// (which closes the browser).
    pub async fn wait(self) -> anyhow::Result<()> {
        let Service {
            running,
            cancel,
            poller,
            executor,
        } = self;
        let served = running.wait().await;
        stop_parts(cancel, poller, executor).await;
        served
    }
}

/// Stops the poller and the executor and joins them (the executor closes the browser).
async fn stop_parts(
    cancel: CancellationToken,
    poller: Option<Poller>,
    executor: Option<ExecutorHandle>,
) {
    cancel.cancel();
    if let Some(poller) = poller {
        poller.join().await;
    }
    if let Some(executor) = executor {
        executor.join().await;
    }
}

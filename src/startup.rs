//! Building the app from settings, and running it until a shutdown future completes.
//!
//! [`run`] takes an already bound listener (tests bind `127.0.0.1:0`) and returns at once with
//! the port; [`Running::wait`] returns once every task has finished. Shutdown: one cancellation
//! token; the server stops accepting, finishes the requests in flight, then returns.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::catalogue::Catalogue;
use crate::config::{ConfigError, Settings, WebhookSettings};
use crate::http::{self, AppState, ConnectionLimits, OpsState, Unwired};
use crate::telemetry::Metrics;
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

/// The admin settings that shape the admin API and the operator page: the read-only token, the
/// time zone, the sign-in limits.
fn with_admin_settings(ops: OpsState, admin: &crate::config::AdminSettings) -> OpsState {
    ops.with_read_token(admin.read_token.clone())
        .with_time_zone(admin.tz())
        .with_login_limits(crate::http::LoginLimits {
            per_client_burst: admin.sign_in_burst_per_client,
            per_client_refill: Duration::from_secs(admin.sign_in_refill_secs_per_client),
            overall_burst: admin.sign_in_burst_overall,
            overall_refill: Duration::from_secs(admin.sign_in_refill_secs_overall),
        })
}

/// Opens (and migrates) the database, which must exist, and assembles what the handlers share.
async fn build_state(settings: &Settings, catalogue: Arc<Catalogue>) -> anyhow::Result<AppState> {
    let verifier = verifier(&settings.webhook)?;
    let store = {
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || crate::open_existing_store(&settings, catalogue))
            .await
            .context("opening the database")??
    };
    let executor_wake = Arc::new(Notify::new());
    // Without a poller and an executor: their admin endpoints answer 503 "not available in this
    // build". `launch` replaces these operations with the service's own (`ServiceOperations`)
    // once it has started them.
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
        request_timeout: Duration::from_secs(settings.server.request_timeout_secs),
        connections: ConnectionLimits::from_settings(settings),
    })
}

/// The running service.
pub struct Running {
    port: u16,
    cancel: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
    open_connections: Arc<AtomicUsize>,
}

/// Serves `state` on `listener` until `shutdown` completes (or a task fails).
async fn run(
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
    let limits = state.connections;
    let app = http::router(state);
    let open = Arc::new(AtomicUsize::new(0));
    let counter = open.clone();
    tasks.spawn(async move {
        let served = serve_connections(listener, app, limits, counter, token.clone())
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
        open_connections: open,
    })
}

/// The accept loop: every connection in its own task with the header-read (and keep-alive idle)
/// timeout, at most `max_connections` at once (one more is closed at once, so a flood of idle
/// sockets cannot use up the process's files or the slots for good). On cancellation: stop
/// accepting, let every connection finish its request in flight, close idle ones.
async fn serve_connections(
    listener: TcpListener,
    app: axum::Router,
    limits: ConnectionLimits,
    open: Arc<AtomicUsize>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    let mut refused_logged_at: Option<tokio::time::Instant> = None;
    loop {
        let (stream, peer) = tokio::select! {
            () = cancel.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off a little, keep serving.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // One line per minute at most: a flood must not flood the log too.
            if refused_logged_at.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                tracing::warn!(%peer, max = limits.max_connections, "connection refused: server.max_connections reached");
                refused_logged_at = Some(tokio::time::Instant::now());
            }
            drop(stream);
            continue;
        };
        let app = app.clone();
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo::<SocketAddr>(peer));
                app.clone().oneshot(request.map(axum::body::Body::new))
            },
        );
        let stop = cancel.clone();
        let open = open.clone();
        open.fetch_add(1, Ordering::SeqCst);
        connections.spawn(async move {
            let _slot = slot;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .keep_alive(true);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

impl Running {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Client connections open right now (at most `server.max_connections`).
    pub fn open_connections(&self) -> usize {
        self.open_connections.load(Ordering::SeqCst)
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

/// The whole service: the HTTP server, the reconciliation poller (when Rondo Club is configured),
/// the Sportlink executor (when Sportlink is), and the alerter (when a transport is configured).
pub struct Service {
    running: Running,
    /// The executor's wake-up (see [`Service::executor_wake`]).
    wake: Arc<Notify>,
    cancel: CancellationToken,
    poller: Option<crate::poll::Poller>,
    executor: Option<crate::daemon::ExecutorHandle>,
    alerter: Option<tokio::task::JoinHandle<()>>,
}

/// Builds everything `serve` runs from the settings and starts it on `listener`; runs until
/// `shutdown` completes. Configuration problems come back as [`ConfigError`] inside the error.
/// `clock` is what Sportlink's one-time codes are computed from: `serve` passes the system's.
pub async fn launch(
    settings: &Settings,
    catalogue: Arc<Catalogue>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    clock: crate::clock::SharedClock,
) -> anyhow::Result<Service> {
    use crate::config::Needs;
    use crate::http::OpsState;
    use crate::operations::{ExecutorControl, ServiceOperations};
    use crate::{poll, sportlink};

    // Settings problems before anything starts, so an error leaves no task behind.
    if settings.admin.token.is_set() {
        settings.validate(Needs {
            admin: true,
            ..Needs::DATABASE_ONLY
        })?;
    }
    if !settings.sportlink.username.trim().is_empty() {
        settings.validate(Needs {
            sportlink: true,
            ..Needs::DATABASE_ONLY
        })?;
    }
    let mut state = build_state(settings, catalogue).await?;
    if !settings.admin.token.is_set() {
        tracing::warn!(
            "admin.token is not set: the admin API and the operator page refuse everyone"
        );
    }
    let cancel = CancellationToken::new();
    let rondo = if settings.rondo_club.base_url.trim().is_empty() {
        tracing::warn!("rondo_club.base_url is not set: no reconciliation poll, no re-detection");
        None
    } else {
        settings.validate(Needs {
            rondo_club: true,
            ..Needs::DATABASE_ONLY
        })?;
        Some(poll::RondoClient::new(
            &settings.rondo_club,
            &settings.poll,
        )?)
    };
    let poller = rondo.as_ref().map(|client| {
        poll::Poller::spawn(
            state.store.clone(),
            client.clone(),
            settings.poll.clone(),
            cancel.clone(),
            state.ops.metrics().clone(),
        )
    });
    let alerts_configured = !settings.alerts.smtp_server.trim().is_empty()
        || !settings.alerts.webhook_url.trim().is_empty();
    let (alert_sender, alerter) = if alerts_configured {
        let (sender, task) = crate::alerts::Alerter::spawn(&settings.alerts, cancel.clone())?;
        (Some(sender), Some(task))
    } else {
        (None, None)
    };
    let executor = if settings.sportlink.username.trim().is_empty() {
        tracing::warn!("sportlink.username is not set: the executor does not run");
        None
    } else {
        settings.validate(Needs {
            sportlink: true,
            ..Needs::DATABASE_ONLY
        })?;
        let lock = sportlink::setup::lock_account(settings).context("Sportlink account lock")?;
        let mut executor = sportlink::setup::chromium_executor(
            &settings.sportlink,
            state.store.clone(),
            lock,
            clock,
        )
        .context("Sportlink executor")?;
        if let Some(sender) = &alert_sender {
            executor.set_alerts(sender.clone());
        }
        let audit = crate::audit::AuditLoop::new(
            rondo.clone(),
            (settings.sportlink.audit_interval_hours > 0).then(|| {
                std::time::Duration::from_secs(
                    settings.sportlink.audit_interval_hours.saturating_mul(3600),
                )
            }),
        );
        Some(crate::daemon::ExecutorHandle::spawn(
            executor,
            cancel.clone(),
            state.ops.metrics().clone(),
            audit,
        ))
    };
    let wake = executor
        .as_ref()
        .map(|e| e.notifier())
        .unwrap_or_else(|| state.executor_wake.clone());
    state.executor_wake = wake.clone();
    state.ops = OpsState::new(
        state.store.clone(),
        settings.admin.token.clone(),
        state.ops.metrics().clone(),
        Arc::new(ServiceOperations {
            store: state.store.clone(),
            poller: poller.as_ref().map(|p| p.handle()),
            rondo,
            executor: executor.as_ref().map(|e| ExecutorControl {
                board: e.status_board(),
                wake: e.notifier(),
            }),
        }),
        wake.clone(),
    );
    state.ops = with_admin_settings(state.ops, &settings.admin);
    let running = run(listener, state, shutdown)
        .await
        .context("cannot start the HTTP server")?;
    Ok(Service {
        running,
        wake,
        cancel,
        poller,
        executor,
        alerter,
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

    /// Client connections open right now.
    pub fn open_connections(&self) -> usize {
        self.running.open_connections()
    }

    /// The executor's wake-up, signalled whenever a change becomes due through the admin API,
    /// the operator page or a webhook (a requeue, a replay, a detection). Without an executor
    /// nothing consumes the signal, so whoever holds this can see that it was given.
    pub fn executor_wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Waits until the HTTP server has stopped, then stops and joins the poller, the executor
    /// (which closes the browser) and the alerter (which sends what it still holds).
    pub async fn wait(self) -> anyhow::Result<()> {
        let served = self.running.wait().await;
        self.cancel.cancel();
        if let Some(poller) = self.poller {
            poller.join().await;
        }
        if let Some(executor) = self.executor {
            executor.join().await;
        }
        if let Some(alerter) = self.alerter {
            if let Err(e) = alerter.await {
                tracing::error!(error = %e, "the alerter task failed");
            }
        }
        served
    }
}

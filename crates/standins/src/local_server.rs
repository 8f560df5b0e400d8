//! A small axum app on 127.0.0.1 for the stand-ins the tests and the demo run (the Sportlink
//! simulator, the Rondo Club stand-in): bind, serve, stop gracefully, join.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long open requests may take to finish once a shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct LocalServer {
    name: &'static str,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl LocalServer {
    /// Binds 127.0.0.1:`port` (0 = any free port) and serves `app` until [`LocalServer::shutdown`]
    /// or drop.
    pub async fn start(name: &'static str, port: u16, app: Router) -> std::io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender (the owner dropped) also stops the server.
                    let _ = stopped.await;
                })
                .await
        });
        tracing::info!(%addr, "{name} listening");
        Ok(Self {
            name,
            addr,
            stop: Some(stop),
            server: Some(server),
        })
    }

    /// E.g. `http://127.0.0.1:43121` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
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
        let name = self.name;
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "{name} ended with an error"),
            Ok(Err(e)) => tracing::warn!(error = %e, "{name} task failed"),
            Err(_) => {
                tracing::warn!("{name}: connections still open after the grace period; aborting");
                server.abort();
                // Joining after abort only reports the cancellation.
                let _ = server.await;
            }
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        // Without shutdown() the server still stops (not joined) rather than outliving its owner.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

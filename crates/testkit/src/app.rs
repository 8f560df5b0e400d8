//! The one way tests start the service: `startup::launch`, exactly as `serve` does, on a
//! listener the test chose and a clock it controls (the system's unless the test drives a
//! simulator on a [`crate::clock::SkipClock`]). It runs until shut down.

use std::sync::Arc;

use anyhow::Context;
use rondo_reverse_sync::catalogue::Catalogue;
use rondo_reverse_sync::clock::SharedClock;
use rondo_reverse_sync::config::Settings;
use rondo_reverse_sync::startup::{self, Service};
use tokio::net::TcpListener;

/// `serve` on `listener` with these settings and catalogue.
pub async fn launch(
    settings: &Settings,
    catalogue: Catalogue,
    listener: TcpListener,
    clock: SharedClock,
) -> anyhow::Result<Service> {
    startup::launch(
        settings,
        Arc::new(catalogue),
        listener,
        std::future::pending::<()>(),
        clock,
    )
    .await
    .context("the service starts as serve does")
}

/// `serve` on a free port of 127.0.0.1.
pub async fn serve(
    settings: &Settings,
    catalogue: Catalogue,
    clock: SharedClock,
) -> anyhow::Result<Service> {
    let listener = TcpListener::bind("127.0.0.1:0").await.context("bind")?;
    launch(settings, catalogue, listener, clock).await
}

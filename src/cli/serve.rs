//! `serve` (the service until a signal) and `migrate` (the database schema).

use std::sync::Arc;

use anyhow::Context;

use super::Failure;
use rondo_reverse_sync::catalogue::Catalogue;
use rondo_reverse_sync::clock;
use rondo_reverse_sync::config::{ConfigError, Settings};
use rondo_reverse_sync::{open_store, startup};

/// Serves until SIGTERM/SIGINT: stops accepting, finishes the requests in flight, joins every
/// task. The poller runs when Rondo Club is configured, the executor when Sportlink is; the
/// admin API answers 503 for a part that is not.
pub async fn serve(
    settings: &Settings,
    catalogue: Arc<Catalogue>,
    create_database: bool,
) -> Result<(), Failure> {
    if create_database {
        let settings = settings.clone();
        let catalogue = catalogue.clone();
        tokio::task::spawn_blocking(move || open_store(&settings, catalogue))
            .await
            .context("creating the database")??;
    }
    let listener = tokio::net::TcpListener::bind(settings.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.server.listen))?;
    let service = startup::launch(
        settings,
        catalogue,
        listener,
        startup::shutdown_signal(),
        clock::system(),
    )
    .await
    .map_err(|e| match e.downcast_ref::<ConfigError>() {
        Some(config) => Failure::Usage(config.to_string()),
        None => Failure::Failed(e),
    })?;
    tracing::info!(address = %settings.server.listen, port = service.port(), "listening");
    service.wait().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Creates or upgrades the database, then reports its schema version.
pub async fn migrate(settings: &Settings, catalogue: Arc<Catalogue>) -> Result<(), Failure> {
    let store = open_store(settings, catalogue)?;
    let info = store.read(|db| db.schema_info()).await?;
    println!(
        "database {} is at schema version {}",
        settings.database.path.display(),
        info.version
    );
    Ok(())
}

//! The real service for tests: the real router and store, on `127.0.0.1`, with a database in a
//! temporary directory.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use rondo_reverse_sync::catalogue::Catalogue;
use rondo_reverse_sync::config::Settings;
use rondo_reverse_sync::domain::{ChangeStatus, KnvbId};
use rondo_reverse_sync::startup::Service;
use rondo_reverse_sync::store::{ChangeRecord, DeliveryRecord, MemberSummary, Store};
use tokio::net::TcpListener;

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Used as `webhook.previous_secret` in the rotation test.
pub const OTHER_SECRET: &str = "whsec_c2Vjb25kIHNlY3JldCBmb3Igcm90YXRpb24uLi4=";

/// A database directory that outlives the services started on it.
pub struct TestDb {
    dir: tempfile::TempDir,
}

impl TestDb {
    pub fn new() -> Result<Self> {
        Ok(Self {
            dir: tempfile::Builder::new().prefix("rrs-test-").tempdir()?,
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("rrs.sqlite3")
    }

    /// Settings for a service on this database with the given webhook secrets.
    pub fn settings(&self, secret: &str, previous_secret: Option<&str>) -> Result<Settings> {
        let previous = previous_secret
            .map(|s| format!("previous_secret = {s:?}\n"))
            .unwrap_or_default();
        Ok(Settings::from_toml(&format!(
            "[database]\npath = {path:?}\n[webhook]\nsecret = {secret:?}\n{previous}",
            path = self.path().display().to_string()
        ))?)
    }
}

/// The service as `serve` starts it (`startup::launch`), on 127.0.0.1, with its own handle on
/// the database for the test to look at what it recorded.
pub struct TestService {
    pub settings: Settings,
    pub store: Store,
    pub port: u16,
    pub base_url: String,
    service: Option<Service>,
}

impl TestService {
    /// Starts the service on `port` (0: any free port), creating its database first when it is
    /// missing, as `migrate` would (the service itself refuses a missing database).
    pub async fn start(settings: &Settings, port: u16) -> Result<Self> {
        Self::start_with_clock(settings, port, rondo_reverse_sync::clock::system()).await
    }

    /// [`TestService::start`] with Sportlink's one-time codes from `clock` (a simulator's, so
    /// the executor's logins never wait for a real 30-second window).
    pub async fn start_with_clock(
        settings: &Settings,
        port: u16,
        clock: rondo_reverse_sync::clock::SharedClock,
    ) -> Result<Self> {
        if !settings.database.path.exists() {
            create_database(settings)?;
        }
        Self::launch(settings, port, clock).await
    }

    /// Starts the service as `serve` does: a missing database is an error.
    pub async fn start_on_existing(settings: &Settings, port: u16) -> Result<Self> {
        Self::launch(settings, port, rondo_reverse_sync::clock::system()).await
    }

    async fn launch(
        settings: &Settings,
        port: u16,
        clock: rondo_reverse_sync::clock::SharedClock,
    ) -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{port}"))?;
        let service = crate::app::launch(settings, Catalogue::builtin(), listener, clock).await?;
        let store = {
            let settings = settings.clone();
            tokio::task::spawn_blocking(move || {
                rondo_reverse_sync::open_existing_store(&settings, Arc::new(Catalogue::builtin()))
            })
            .await??
        };
        let port = service.port();
        Ok(Self {
            settings: settings.clone(),
            store,
            port,
            base_url: format!("http://127.0.0.1:{port}"),
            service: Some(service),
        })
    }

    /// A service with its own fresh database and [`SECRET`].
    pub async fn fresh() -> Result<(TestDb, Self)> {
        let db = TestDb::new()?;
        let service = Self::start(&db.settings(SECRET, None)?, 0).await?;
        Ok((db, service))
    }

    pub fn webhook_url(&self) -> String {
        format!("{}/webhooks/rondo-club", self.base_url)
    }

    /// Starts the shutdown and waits (bounded) until every task has finished.
    pub async fn stop(mut self) -> Result<()> {
        let service = self
            .service
            .take()
            .ok_or_else(|| anyhow!("already stopped"))?;
        service.shutdown();
        tokio::time::timeout(Duration::from_secs(30), service.wait())
            .await
            .map_err(|_| anyhow!("the service did not stop within 30 s"))?
    }

    /// The running service.
    pub fn service(&self) -> &Service {
        self.service.as_ref().expect("the service is running")
    }

    /// The running service, to stop it by hand.
    pub fn take_running(&mut self) -> Service {
        self.service.take().expect("the service is running")
    }

    pub async fn delivery_count(&self) -> Result<u64> {
        Ok(self.store.read(|db| db.delivery_count()).await?)
    }

    pub async fn delivery(&self, id: &str) -> Result<Option<DeliveryRecord>> {
        let id = id.to_owned();
        Ok(self.store.read(move |db| db.delivery(&id)).await?)
    }

    pub async fn deliveries_for_post(&self, post: u64) -> Result<Vec<DeliveryRecord>> {
        let post = i64::try_from(post)?;
        Ok(self
            .store
            .read(move |db| db.deliveries_for_post(post))
            .await?)
    }

    /// Every change row, newest first (all members, or one).
    pub async fn changes(&self, knvb_id: Option<&str>) -> Result<Vec<ChangeRecord>> {
        let knvb_id = knvb_id.map(KnvbId::parse).transpose()?;
        Ok(self
            .store
            .read(move |db| db.list_changes(&[], knvb_id.as_ref(), 1_000_000, 0))
            .await?)
    }

    pub async fn changes_with_status(&self, status: ChangeStatus) -> Result<Vec<ChangeRecord>> {
        Ok(self
            .store
            .read(move |db| db.list_changes(&[status], None, 1_000_000, 0))
            .await?)
    }

    pub async fn member(&self, knvb_id: &str) -> Result<Option<MemberSummary>> {
        let knvb_id = KnvbId::parse(knvb_id)?;
        Ok(self.store.read(move |db| db.member(&knvb_id)).await?)
    }
}

impl Drop for TestService {
    fn drop(&mut self) {
        if let Some(service) = &self.service {
            service.shutdown();
        }
    }
}

/// Creates (and migrates) the database the settings name, as `migrate` does.
pub fn create_database(settings: &Settings) -> Result<()> {
    drop(rondo_reverse_sync::open_store(
        settings,
        Arc::new(Catalogue::builtin()),
    )?);
    Ok(())
}

/// Waits until `check` returns `Some`, re-checking whenever `tick` elapses, for at most `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if start.elapsed() > deadline {
            return Err(anyhow!("timed out after {deadline:?} waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

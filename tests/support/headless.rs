//! A bare headless Chromium for tests that drive pages themselves (the operator page, the
//! simulator), with its CDP handler task and a throw-away profile. Included with
//! `#[path = "support/headless.rs"] mod headless;` so such tests do not pull in the rest of
//! `support`.

use std::time::Duration;

use anyhow::{anyhow, Context};
use chromiumoxide::browser::{Browser, BrowserConfig};
use futures::StreamExt;
use tokio::task::JoinHandle;

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// True when Chromium is installed; prints why the test is skipped otherwise.
pub fn chromium_available() -> bool {
    if std::path::Path::new(CHROMIUM).exists() {
        true
    } else {
        println!("SKIPPED: chromium not found at {CHROMIUM}");
        false
    }
}

pub struct Headless {
    pub browser: Browser,
    handler: JoinHandle<()>,
    _profile: tempfile::TempDir,
}

impl Headless {
    /// `window`: a fixed window size (and no viewport emulation), for screenshots.
    pub async fn launch(window: Option<(u32, u32)>) -> anyhow::Result<Headless> {
        let profile = tempfile::tempdir().context("profile dir")?;
        let mut builder = BrowserConfig::builder()
            .chrome_executable(CHROMIUM)
            .no_sandbox()
            .user_data_dir(profile.path())
            .launch_timeout(Duration::from_secs(30))
            .request_timeout(Duration::from_secs(20))
            // Without these Chromium stalls on this closed network.
            .args([
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ]);
        if let Some((width, height)) = window {
            builder = builder.window_size(width, height).viewport(None);
        }
        let config = builder
            .build()
            .map_err(|e| anyhow!("browser config: {e}"))?;
        let (browser, mut events) = Browser::launch(config).await.context("launch chromium")?;
        // The handler must be polled for the browser to make progress. Errors from events this
        // chromiumoxide version does not know are not fatal, so the loop keeps going.
        let handler = tokio::spawn(async move { while events.next().await.is_some() {} });
        Ok(Headless {
            browser,
            handler,
            _profile: profile,
        })
    }

    /// Closes the browser and joins its handler; call it on every path.
    pub async fn close(mut self) {
        if self.browser.close().await.is_err() {
            // The CDP connection is gone; make sure the process is too.
            let _ = self.browser.kill().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.browser.wait()).await;
        if tokio::time::timeout(Duration::from_secs(5), &mut self.handler)
            .await
            .is_err()
        {
            self.handler.abort();
        }
    }
}

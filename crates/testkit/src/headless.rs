//! A bare headless Chromium for tests that drive pages themselves (the operator page, the
//! simulator), with its CDP handler task and a throw-away profile. Included with
//! `#[path = "support/headless.rs"] mod headless;` so such tests do not pull in the rest of
//! `support`.

use std::time::Duration;

use anyhow::{anyhow, Context};
use chromiumoxide::browser::{Browser, BrowserConfig};
use futures::StreamExt;
use tokio::task::JoinHandle;

/// Set to `1` to skip the tests that need Chromium (they fail when it is missing otherwise);
/// `scripts/test` then says so at the end of the run.
pub const SKIP_BROWSER_TESTS: &str = "RRS_SKIP_BROWSER_TESTS";

/// Chromium as the service finds it: `RRS_SPORTLINK__CHROMIUM_PATH` (the service's own
/// override of `sportlink.chromium_path`), else that setting's default.
pub fn chromium_path() -> std::path::PathBuf {
    std::env::var_os("RRS_SPORTLINK__CHROMIUM_PATH")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| rondo_reverse_sync::config::SportlinkSettings::default().chromium_path)
}

/// Whether the browser tests are skipped on purpose (`RRS_SKIP_BROWSER_TESTS=1`): the only
/// reason a browser test may return early. Otherwise Chromium must be there: a missing one
/// fails the test, with how to install it.
pub fn browser_tests_skipped() -> bool {
    if std::env::var(SKIP_BROWSER_TESTS).is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: {SKIP_BROWSER_TESTS}=1");
        return true;
    }
    let path = chromium_path();
    assert!(
        path.exists(),
        "Chromium not found at {} (scripts/install-deps installs it; set {}=1 to skip the \
         browser tests on purpose)",
        path.display(),
        SKIP_BROWSER_TESTS
    );
    false
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
            .chrome_executable(chromium_path())
            .no_sandbox()
            .user_data_dir(profile.path())
            .launch_timeout(Duration::from_secs(30))
            .request_timeout(Duration::from_secs(20))
            // The service's own: without them Chromium stalls on this closed network.
            .args(rondo_reverse_sync::sportlink::browser::QUIET_FLAGS);
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

/// Waits (at most `within`) until the JavaScript expression `js` is true in `page`; the error
/// names `what` and shows the start of the page.
pub async fn until_true(
    page: &chromiumoxide::Page,
    js: &str,
    what: &str,
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let ok = page
            .evaluate(js)
            .await
            .ok()
            .and_then(|v| v.into_value::<bool>().ok())
            .unwrap_or(false);
        if ok {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            let html = page.content().await.unwrap_or_default();
            anyhow::bail!(
                "timed out waiting for {what}; page:\n{}",
                &html[..html.len().min(3000)]
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The inner text of the first element matching `selector` (empty when there is none).
pub async fn inner_text(page: &chromiumoxide::Page, selector: &str) -> anyhow::Result<String> {
    let js = format!(
        "(document.querySelector({}) || {{innerText: ''}}).innerText",
        serde_json::to_string(selector)?
    );
    Ok(page.evaluate(js).await?.into_value::<String>()?)
}

//! The Chromium process behind a session: launched with a throw-away profile and an environment
//! without the service's secrets, its handler and network observer tasks, closed (or killed on
//! drop) with the profile removed.

use std::path::PathBuf;
use std::time::Duration;

use chromiumoxide::browser::{Browser, BrowserConfig, HeadlessMode};
use chromiumoxide::error::CdpError;
use chromiumoxide::Page;
use futures::StreamExt;
use tokio::task::JoinHandle;

use super::{SessionError, SessionSettings};
use crate::sportlink::network::{self, NetworkLog};

/// The flags without which headless Chromium stalls on a closed network (it waits for update,
/// sync and first-run services it cannot reach). Every Chromium the project starts uses them.
pub const QUIET_FLAGS: [&str; 5] = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
];

/// A running Chromium with its handler task and profile directory.
pub(super) struct RunningBrowser {
    pub(super) browser: Browser,
    pub(super) handler: Option<JoinHandle<()>>,
    pub(super) page: Page,
    /// What the app in the tab fetched (filled by `observer`).
    pub(super) network: NetworkLog,
    pub(super) observer: Option<JoinHandle<()>>,
    pub(super) profile_dir: PathBuf,
}

impl RunningBrowser {
    pub(super) async fn launch(settings: &SessionSettings) -> Result<Self, SessionError> {
        let launch_err = |reason: String| SessionError::Launch {
            path: settings.chromium_path.clone(),
            reason,
        };
        let profile_dir = std::env::temp_dir().join(format!(
            "{}{}-{:016x}",
            crate::sportlink::orphans::PROFILE_PREFIX,
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&profile_dir).map_err(|e| launch_err(e.to_string()))?;

        let mut builder = BrowserConfig::builder()
            .chrome_executable(&settings.chromium_path)
            .user_data_dir(&profile_dir)
            .no_sandbox()
            .respect_https_errors()
            .launch_timeout(settings.launch_timeout)
            .request_timeout(settings.timings.action_timeout + Duration::from_secs(5))
            .args(QUIET_FLAGS)
            .args([
                "--no-default-browser-check",
                "--disable-features=Translate,OptimizationHints,MediaRouter",
                "--lang=nl-NL",
            ])
            // Chromium gets none of the service's settings: every RRS_* variable and anything
            // named like a secret is blanked in its environment.
            .envs(blanked_service_environment());
        builder = if settings.headless {
            builder.headless_mode(HeadlessMode::True)
        } else {
            builder.with_head()
        };
        let config = match builder.build() {
            Ok(c) => c,
            Err(e) => {
                remove_profile(&profile_dir);
                return Err(launch_err(e));
            }
        };
        let (mut browser, mut handler) = match Browser::launch(config).await {
            Ok(pair) => pair,
            Err(e) => {
                remove_profile(&profile_dir);
                return Err(launch_err(e.to_string()));
            }
        };
        let handler_task = tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                match event {
                    Ok(()) => {}
                    // The connection is gone: nothing more will come.
                    Err(CdpError::Ws(_)) => break,
                    // Newer Chromium versions send messages this chromiumoxide cannot decode;
                    // they are harmless for us.
                    Err(e) => tracing::trace!(error = %e, "browser handler"),
                }
            }
        });
        let network = NetworkLog::default();
        let opened = match browser.new_page("about:blank").await {
            Ok(page) => network::observe(&page, network.clone())
                .await
                .map(|observer| (page, observer)),
            Err(e) => Err(e.to_string()),
        };
        let (page, observer) = match opened {
            Ok(pair) => pair,
            Err(e) => {
                let _ = browser_close(&mut browser).await;
                handler_task.abort();
                let _ = handler_task.await;
                remove_profile(&profile_dir);
                return Err(launch_err(e));
            }
        };
        Ok(Self {
            browser,
            handler: Some(handler_task),
            page,
            network,
            observer: Some(observer),
            profile_dir,
        })
    }

    pub(super) fn is_alive(&self) -> bool {
        self.handler.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Close Chromium, wait for the process, join the handler, remove the profile.
    pub(super) async fn close(&mut self) {
        if let Some(observer) = self.observer.take() {
            observer.abort();
            let _ = observer.await;
        }
        let _ = browser_close(&mut self.browser).await;
        if let Some(handler) = self.handler.take() {
            let mut handler = handler;
            if tokio::time::timeout(Duration::from_secs(5), &mut handler)
                .await
                .is_err()
            {
                handler.abort();
                let _ = handler.await;
            }
        }
        remove_profile(&self.profile_dir);
    }

    pub(super) fn pid(&mut self) -> Option<u32> {
        self.browser
            .get_mut_child()
            .and_then(|c| c.as_mut_inner().id())
    }
}

async fn browser_close(browser: &mut Browser) -> Result<(), ()> {
    let closed = tokio::time::timeout(Duration::from_secs(5), browser.close()).await;
    if !matches!(closed, Ok(Ok(_))) {
        let _ = browser.kill().await;
    }
    match tokio::time::timeout(Duration::from_secs(5), browser.wait()).await {
        Ok(Ok(_)) => Ok(()),
        _ => {
            let _ = browser.kill().await;
            Err(())
        }
    }
}

impl Drop for RunningBrowser {
    fn drop(&mut self) {
        if let Some(observer) = self.observer.take() {
            observer.abort();
        }
        if let Some(handler) = self.handler.take() {
            handler.abort();
        }
        // Chromium itself is killed on drop by chromiumoxide (kill_on_drop).
        remove_profile(&self.profile_dir);
    }
}

/// Every `RRS_*` variable of this process, set to the empty string (for a child's environment).
fn blanked_service_environment() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| {
            let upper = k.to_ascii_uppercase();
            upper.starts_with("RRS_")
                || ["SECRET", "PASSWORD", "TOKEN", "OTP"]
                    .iter()
                    .any(|s| upper.contains(s))
        })
        .map(|k| (k, String::new()))
        .collect()
}

fn remove_profile(dir: &std::path::Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::debug!(error = %e, "could not remove the Chromium profile directory");
        }
    }
}

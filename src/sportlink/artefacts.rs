//! Screenshot and HTML of the page at a failure, for diagnosis. Secrets never in them: password
//! and code inputs are emptied before the screenshot, and the HTML is scrubbed of the configured
//! secrets and of the session's cookie values.

use std::path::{Path, PathBuf};

use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::Page;

use super::page::PageModel;
use super::scrub::Scrubber;

#[derive(Debug, Clone)]
pub struct Artefacts {
    pub screenshot: Option<PathBuf>,
    pub html: Option<PathBuf>,
}

/// Save both files under `dir`; returns what could be written. Never fails the caller: an
/// artefact is a help, not part of the outcome.
pub async fn capture(
    page: &Page,
    model: &PageModel<'_>,
    dir: &Path,
    label: &str,
    scrubber: &Scrubber,
) -> Artefacts {
    let mut result = Artefacts {
        screenshot: None,
        html: None,
    };
    if let Err(e) = tokio::fs::create_dir_all(dir).await {
        tracing::warn!(error = %e, dir = %dir.display(), "cannot create the artefact directory");
        return result;
    }
    let stem = format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        sanitise(label)
    );
    let cookies: Vec<String> = match page.get_cookies().await {
        Ok(c) => c.into_iter().map(|c| c.value).collect(),
        Err(_) => Vec::new(),
    };
    let scrubber = scrubber.with_extra(cookies);

    if let Err(e) = model.clear_secret_inputs().await {
        tracing::debug!(error = %e, "could not clear secret inputs before the screenshot");
    }
    let shot = ScreenshotParams::builder()
        .format(CaptureScreenshotFormat::Png)
        .full_page(true)
        .build();
    match tokio::time::timeout(model.timings().action_timeout, page.screenshot(shot)).await {
        Ok(Ok(png)) => {
            let path = dir.join(format!("{stem}.png"));
            match tokio::fs::write(&path, png).await {
                Ok(()) => result.screenshot = Some(path),
                Err(e) => tracing::warn!(error = %e, "cannot write the screenshot"),
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "screenshot failed"),
        Err(_) => tracing::warn!("screenshot timed out"),
    }
    match tokio::time::timeout(model.timings().action_timeout, page.content()).await {
        Ok(Ok(html)) => {
            let path = dir.join(format!("{stem}.html"));
            match tokio::fs::write(&path, scrubber.scrub(&html)).await {
                Ok(()) => result.html = Some(path),
                Err(e) => tracing::warn!(error = %e, "cannot write the page HTML"),
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "reading the page HTML failed"),
        Err(_) => tracing::warn!("reading the page HTML timed out"),
    }
    result
}

fn sanitise(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect()
}

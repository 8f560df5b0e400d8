//! Logging: `tracing` to stderr, human-readable or JSON lines.

use tracing_subscriber::EnvFilter;

use crate::config::LogSettings;

/// Installs the global subscriber. `RUST_LOG`, when set, overrides the configured level.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let filter = quiet_chromiumoxide(filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests, the demo inside a test) keeps the first subscriber.
    let _ = if settings.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// chromiumoxide 0.7 logs, at ERROR, every message of a newer Chromium that it cannot decode;
/// they are harmless (the Sportlink executor watches the browser itself). Silenced unless the
/// filter says something about chromiumoxide.
fn quiet_chromiumoxide(filter: EnvFilter) -> EnvFilter {
    if filter.to_string().contains("chromiumoxide") {
        return filter;
    }
    ["chromiumoxide::conn=off", "chromiumoxide::handler=off"]
        .into_iter()
        .filter_map(|d| d.parse().ok())
        .fold(filter, EnvFilter::add_directive)
}

//! Logging (`tracing` to stderr, human-readable or JSON lines) and the service's metrics
//! ([`metrics`]), which the workers record into and `GET /metrics` serves.

pub mod metrics;

pub use metrics::Metrics;

use tracing_subscriber::EnvFilter;

use crate::config::LogSettings;

/// Installs the global subscriber. `RUST_LOG`, when set, overrides the configured level.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(with_quiet_dependencies(&settings.level)))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Even when RUST_LOG asks for everything: the DevTools connection (chromiumoxide's and the
    // WebSocket library's traces) carries the Sportlink password when the login types it.
    let filter = [
        "chromiumoxide::conn=off",
        "tungstenite=off",
        "async_tungstenite=off",
    ]
    .into_iter()
    .filter_map(|d| d.parse().ok())
    .fold(filter, EnvFilter::add_directive);
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

/// chromiumoxide 0.7 logs an ERROR for every DevTools event newer Chromium sends that it has no
/// type for; they are harmless and would drown the log. Its real failures reach us as errors.
fn with_quiet_dependencies(level: &str) -> String {
    format!("{level},chromiumoxide::conn=off,chromiumoxide::handler=off")
}

//! The limits the HTTP server applies per client connection.

use std::time::Duration;

use crate::config::Settings;

/// What one client connection may hold: a slot among `max_connections`, and no longer than
/// `header_read_timeout` without sending a request (while connecting, or idle between
/// keep-alive requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

impl ConnectionLimits {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            max_connections: settings.server.max_connections.max(1),
            header_read_timeout: Duration::from_secs(
                settings.server.header_read_timeout_secs.max(1),
            ),
        }
    }
}

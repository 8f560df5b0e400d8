//! Settings: one TOML file with documented defaults (see `config.example.toml`), environment
//! variables `RRS_<SECTION>__<KEY>` for secrets and overrides, validated at start-up so a bad
//! setting stops the program with one line naming it.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};

mod load;
mod validate;

pub use load::SECRET_SETTINGS;
#[cfg(test)]
use load::*;
pub use validate::{decode_webhook_secret, parse_host_port};

/// Prefix of the environment overrides: `RRS_SPORTLINK__PASSWORD` sets `sportlink.password`.
pub const ENV_PREFIX: &str = "RRS_";

/// A secret setting. Prints as `[redacted]` in `Debug` and `Display`, and serialises as that too,
/// so it cannot leak through logs, errors or API answers.
#[derive(Clone, Default)]
pub struct Secret(Option<SecretString>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Some(SecretString::from(value.into())))
    }

    /// The value, for the one place that needs it (signing, logging in).
    pub fn expose(&self) -> &str {
        self.0.as_ref().map(|s| s.expose_secret()).unwrap_or("")
    }

    pub fn is_set(&self) -> bool {
        !self.expose().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A secret is a string, byte for byte: a number in the file would already have lost its
        // leading zeros or digits, so it is refused rather than converted. Environment variables
        // arrive here unparsed (see `secret_overrides`).
        Ok(match Option::<String>::deserialize(deserializer)? {
            None => Self::default(),
            Some(s) => Self::new(s),
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Only defaults are ever serialised (into figment); a set secret never is.
        if self.is_set() {
            serializer.serialize_str("[redacted]")
        } else {
            serializer.serialize_none()
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub webhook: WebhookSettings,
    pub rondo_club: RondoClubSettings,
    pub poll: PollSettings,
    pub sportlink: SportlinkSettings,
    pub admin: AdminSettings,
    pub alerts: AlertSettings,
    pub fields: FieldSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address the HTTP server listens on. Keep it on loopback behind a TLS reverse proxy.
    pub listen: SocketAddr,
    /// Largest webhook body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most connections open at once; a connection beyond it is closed at once (keep the
    /// unit's `LimitNOFILE=` well above it).
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, in seconds; also how long an
    /// idle keep-alive connection is kept. A client that connects and sends nothing is closed
    /// after this.
    pub header_read_timeout_secs: u64,
    /// Deadline for one request to the admin API (`/api/`) and the operator page (`/`), in
    /// seconds; a request that takes longer is answered 503.
    pub request_timeout_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            max_body_bytes: 1024 * 1024,
            max_connections: 256,
            header_read_timeout_secs: 10,
            request_timeout_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    pub path: PathBuf,
    /// How long a writer waits for a lock held by another process (the CLI), in milliseconds.
    pub busy_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            path: PathBuf::from("rondo-reverse-sync.sqlite3"),
            busy_timeout_ms: 5_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// `whsec_<base64>`, the same value as `RONDO_REVERSE_SYNC_SECRET` in wp-config.php.
    pub secret: Secret,
    /// The previous secret, accepted as well while a rotation is under way.
    pub previous_secret: Secret,
    /// Accepted distance between `webhook-timestamp` and now, in seconds.
    pub tolerance_secs: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            secret: Secret::default(),
            previous_secret: Secret::default(),
            tolerance_secs: 300,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RondoClubSettings {
    /// The WordPress site, e.g. `https://club.example.nl`.
    pub base_url: String,
    /// WordPress user that owns the application password.
    pub username: String,
    pub application_password: Secret,
    pub timeout_secs: u64,
}

impl Default for RondoClubSettings {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            username: String::new(),
            application_password: Secret::default(),
            timeout_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollSettings {
    /// Run the reconciliation poll inside `serve`.
    pub enabled: bool,
    pub interval_secs: u64,
    /// How far before the watermark the next poll starts (clock skew, per-second comparison).
    pub overlap_secs: u64,
    pub per_page: u32,
    /// Attempts per request for 429/5xx/timeouts.
    pub max_retries: u32,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: 3_600,
            overlap_secs: 120,
            per_page: 100,
            max_retries: 4,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SportlinkSettings {
    pub base_url: String,
    pub username: String,
    pub password: Secret,
    /// Base32 TOTP secret of the account (`SPORTLINK_OTP_SECRET` in the old setup).
    pub otp_secret: Secret,
    pub chromium_path: PathBuf,
    pub headless: bool,
    /// Minimum pause between two members, in milliseconds.
    pub min_member_interval_ms: u64,
    /// Random extra pause on top of the minimum, up to this many milliseconds.
    pub member_jitter_ms: u64,
    /// Deadline for one browser action (navigation, waiting for a section), in seconds.
    pub action_timeout_secs: u64,
    /// Close the browser after this long without work.
    pub idle_close_secs: u64,
    /// How long a page must be quiet before a section or input counts as missing, in
    /// milliseconds (sections are rendered by JavaScript after the page loaded).
    pub settle_ms: u64,
    /// Backoff between attempts at one member within a run, in milliseconds.
    pub retry_backoff_ms: Vec<u64>,
    /// After this many failed runs a change becomes `failed`.
    pub max_attempts: u32,
    /// Delay before a failed member is tried again in a later run; doubles per failed run
    /// (capped at six hours), in seconds.
    pub next_attempt_base_secs: u64,
    /// Consecutive UI-drift failures that pause the executor.
    pub circuit_breaker_threshold: u32,
    /// How long the circuit breaker keeps the executor paused unless an operator resumes it.
    pub circuit_breaker_cooldown_secs: u64,
    /// Where screenshots and page HTML of failures are kept.
    pub artefact_dir: PathBuf,
    /// Open forms and read values, but cancel instead of saving.
    pub dry_run: bool,
    /// KNVB id of a member whose pages the service checks read-only against the field catalogue
    /// at start-up and every `canary_interval_hours` (empty: no canary). A mismatch pauses the
    /// executor before any change fails; a later passing check resumes it.
    pub canary_member: String,
    /// Hours between two canary checks.
    pub canary_interval_hours: u64,
    /// Hours between two scheduled divergence audits (`serve`); 0: no scheduled audit.
    pub audit_interval_hours: u64,
}

impl Default for SportlinkSettings {
    fn default() -> Self {
        Self {
            base_url: "https://club.sportlink.com".into(),
            username: String::new(),
            password: Secret::default(),
            otp_secret: Secret::default(),
            chromium_path: PathBuf::from("/usr/bin/chromium"),
            headless: true,
            min_member_interval_ms: 1_000,
            member_jitter_ms: 1_000,
            action_timeout_secs: 20,
            idle_close_secs: 300,
            settle_ms: 750,
            retry_backoff_ms: vec![1_000, 3_000, 7_000],
            max_attempts: 5,
            next_attempt_base_secs: 300,
            circuit_breaker_threshold: 5,
            circuit_breaker_cooldown_secs: 1_800,
            artefact_dir: PathBuf::from("artefacts"),
            dry_run: false,
            canary_member: String::new(),
            canary_interval_hours: 24,
            audit_interval_hours: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// Bearer token for `/api/` and the operator page.
    pub token: Secret,
    /// A second, read-only bearer token: it reads member status (`/api/member-status…`, what
    /// the WordPress snippet's "Sportlink" box shows) and nothing else. Empty disables it.
    pub read_token: Secret,
    /// The club's time zone (IANA name): the operator page shows every time in it.
    pub time_zone: String,
    /// Sign-in attempts at the operator page, per client address: a burst of this many, then
    /// one more every `sign_in_refill_secs_per_client` seconds.
    pub sign_in_burst_per_client: u32,
    pub sign_in_refill_secs_per_client: u64,
    /// The same for everyone together (a guesser with many addresses).
    pub sign_in_burst_overall: u32,
    pub sign_in_refill_secs_overall: u64,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            token: Secret::default(),
            read_token: Secret::default(),
            time_zone: "Europe/Amsterdam".into(),
            sign_in_burst_per_client: 5,
            sign_in_refill_secs_per_client: 20,
            sign_in_burst_overall: 20,
            sign_in_refill_secs_overall: 2,
        }
    }
}

impl AdminSettings {
    /// The time zone, checked by [`Settings::validate`] (Amsterdam if it is not one).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone
            .parse()
            .unwrap_or(chrono_tz::Europe::Amsterdam)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// SMTP server `host:port`; empty disables e-mail alerts.
    pub smtp_server: String,
    pub smtp_username: String,
    pub smtp_password: Secret,
    /// `starttls`, `tls` or `none` (only for a local relay).
    pub smtp_security: String,
    pub from: String,
    pub to: Vec<String>,
    /// A URL that receives alerts as a JSON POST; empty disables it.
    pub webhook_url: String,
    /// Alerts about the same subject are combined into one digest per this many seconds.
    pub cooldown_secs: u64,
    /// How long the first alert about a subject waits for more of the same, in milliseconds.
    pub gather_ms: u64,
    /// Pauses before each retry of a failed send, in milliseconds; one retry per entry.
    pub retry_backoff_ms: Vec<u64>,
    /// Deadline for one send (SMTP conversation or webhook POST), in seconds.
    pub send_timeout_secs: u64,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            smtp_server: String::new(),
            smtp_username: String::new(),
            smtp_password: Secret::default(),
            smtp_security: "starttls".into(),
            from: String::new(),
            to: Vec::new(),
            webhook_url: String::new(),
            cooldown_secs: 3_600,
            gather_ms: 30_000,
            retry_backoff_ms: vec![5_000, 30_000, 120_000],
            send_timeout_secs: 20,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FieldSettings {
    /// A field catalogue file replacing the built-in one (see `src/catalogue/default.toml`).
    pub catalogue_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `human` or `json`.
    pub format: String,
    /// A tracing filter such as `info` or `rondo_reverse_sync=debug,info`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "human".into(),
            level: "info".into(),
        }
    }
}

/// A setting that is missing or wrong. Displays as one line: `config: <setting>: <problem>`.
#[derive(Debug, thiserror::Error)]
#[error("config: {setting}: {problem}")]
pub struct ConfigError {
    pub setting: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(setting: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            problem: problem.into(),
        }
    }
}

/// What a CLI verb needs to be configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub webhook: bool,
    pub rondo_club: bool,
    pub sportlink: bool,
    pub admin: bool,
}

impl Needs {
    pub const DATABASE_ONLY: Needs = Needs {
        webhook: false,
        rondo_club: false,
        sportlink: false,
        admin: false,
    };
}

#[cfg(test)]
mod tests;

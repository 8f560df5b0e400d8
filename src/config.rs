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
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            token: Secret::default(),
            read_token: Secret::default(),
            time_zone: "Europe/Amsterdam".into(),
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

impl Settings {
    /// Defaults, then the file (when given), then `RRS_…` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::new(
                    "--config",
                    format!("file {} does not exist", path.display()),
                ));
            }
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new("--config", format!("cannot read {}: {e}", path.display()))
            })?;
            check_toml_syntax(&path.display().to_string(), &text)?;
            figment = figment.merge(Toml::string(&text));
        }
        Self::extract(with_env_overrides(figment, std::env::vars_os())?)
    }

    /// Settings from a TOML string, then the environment (tests, the demo).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        check_toml_syntax("<config>", text)?;
        Self::extract(with_env_overrides(
            Figment::from(Serialized::defaults(Settings::default())).merge(Toml::string(text)),
            std::env::vars_os(),
        )?)
    }

    fn extract(figment: Figment) -> Result<Self, ConfigError> {
        figment.extract().map_err(|e| {
            let setting = if e.path.is_empty() {
                "file".to_string()
            } else {
                e.path.join(".")
            };
            // The kind's text never contains the value of a secret: figment describes the
            // type found, and for strings that is the string — so keep secrets out by path.
            let problem = if SECRET_SETTINGS.contains(&setting.as_str()) {
                "must be a string (in the file: quoted)".to_string()
            } else if setting.contains("secret")
                || setting.contains("password")
                || setting.contains("token")
            {
                "invalid value".to_string()
            } else {
                e.kind.to_string()
            };
            ConfigError::new(setting, problem)
        })
    }

    /// Checks what every verb relies on, plus what `needs` asks for.
    pub fn validate(&self, needs: Needs) -> Result<(), ConfigError> {
        if self.database.path.as_os_str().is_empty() {
            return Err(ConfigError::new("database.path", "must not be empty"));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(ConfigError::new(
                "server.max_body_bytes",
                "must be at least 1024",
            ));
        }
        if self.server.max_connections == 0 || self.server.max_connections > 100_000 {
            return Err(ConfigError::new(
                "server.max_connections",
                "must be between 1 and 100000",
            ));
        }
        for (setting, value) in [
            (
                "server.header_read_timeout_secs",
                self.server.header_read_timeout_secs,
            ),
            (
                "server.request_timeout_secs",
                self.server.request_timeout_secs,
            ),
        ] {
            if value == 0 || value > 3_600 {
                return Err(ConfigError::new(setting, "must be between 1 and 3600"));
            }
        }
        if !matches!(self.log.format.as_str(), "human" | "json") {
            return Err(ConfigError::new(
                "log.format",
                format!("{:?} is not one of human, json", self.log.format),
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(ConfigError::new(
                "log.level",
                format!("{:?} is not a valid filter", self.log.level),
            ));
        }
        if let Some(path) = &self.fields.catalogue_file {
            if !path.is_file() {
                return Err(ConfigError::new(
                    "fields.catalogue_file",
                    format!("{} is not a readable file", path.display()),
                ));
            }
        }
        validate_alerts(&self.alerts)?;
        if needs.webhook {
            validate_webhook_secret("webhook.secret", &self.webhook.secret, true)?;
            validate_webhook_secret(
                "webhook.previous_secret",
                &self.webhook.previous_secret,
                false,
            )?;
            if self.webhook.tolerance_secs == 0 || self.webhook.tolerance_secs > 3_600 {
                return Err(ConfigError::new(
                    "webhook.tolerance_secs",
                    "must be between 1 and 3600",
                ));
            }
        }
        if needs.admin && self.admin.token.expose().len() < 16 {
            return Err(ConfigError::new(
                "admin.token",
                "must be set (RRS_ADMIN__TOKEN) and at least 16 characters",
            ));
        }
        if needs.admin
            && self.admin.token.is_set()
            && (self.admin.token.expose() == self.webhook.secret.expose())
        {
            return Err(ConfigError::new(
                "admin.token",
                "must differ from the webhook secret",
            ));
        }
        if self.admin.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError::new(
                "admin.time_zone",
                format!(
                    "{:?} is not a time zone name such as Europe/Amsterdam",
                    self.admin.time_zone.chars().take(60).collect::<String>()
                ),
            ));
        }
        if needs.admin && self.admin.read_token.is_set() {
            if self.admin.read_token.expose().len() < 16 {
                return Err(ConfigError::new(
                    "admin.read_token",
                    "must be at least 16 characters (or empty to disable it)",
                ));
            }
            if self.admin.read_token.expose() == self.admin.token.expose()
                || self.admin.read_token.expose() == self.webhook.secret.expose()
            {
                return Err(ConfigError::new(
                    "admin.read_token",
                    "must differ from the admin token and the webhook secret",
                ));
            }
        }
        if needs.rondo_club {
            validate_url("rondo_club.base_url", &self.rondo_club.base_url)?;
            require("rondo_club.username", &self.rondo_club.username)?;
            if !self.rondo_club.application_password.is_set() {
                return Err(ConfigError::new(
                    "rondo_club.application_password",
                    "must be set (RRS_RONDO_CLUB__APPLICATION_PASSWORD)",
                ));
            }
            if self.poll.per_page == 0 || self.poll.per_page > 100 {
                return Err(ConfigError::new(
                    "poll.per_page",
                    "must be between 1 and 100",
                ));
            }
            if self.poll.interval_secs < 60 {
                return Err(ConfigError::new(
                    "poll.interval_secs",
                    "must be at least 60",
                ));
            }
        }
        if needs.sportlink {
            self.validate_sportlink()?;
        }
        Ok(())
    }

    fn validate_sportlink(&self) -> Result<(), ConfigError> {
        let s = &self.sportlink;
        validate_url("sportlink.base_url", &s.base_url)?;
        require("sportlink.username", &s.username)?;
        if !s.password.is_set() {
            return Err(ConfigError::new(
                "sportlink.password",
                "must be set (RRS_SPORTLINK__PASSWORD)",
            ));
        }
        let otp = s.otp_secret.expose().replace(' ', "").to_uppercase();
        let otp_ok = otp.len() >= 16 && base32_decodes(otp.trim_end_matches('='));
        if !otp_ok {
            return Err(ConfigError::new(
                "sportlink.otp_secret",
                "must be set (RRS_SPORTLINK__OTP_SECRET) to a base32 secret of at least 16 characters",
            ));
        }
        if s.action_timeout_secs == 0 {
            return Err(ConfigError::new(
                "sportlink.action_timeout_secs",
                "must be at least 1",
            ));
        }
        if s.max_attempts == 0 {
            return Err(ConfigError::new(
                "sportlink.max_attempts",
                "must be at least 1",
            ));
        }
        if s.circuit_breaker_threshold == 0 {
            return Err(ConfigError::new(
                "sportlink.circuit_breaker_threshold",
                "must be at least 1",
            ));
        }
        if s.retry_backoff_ms.is_empty() {
            return Err(ConfigError::new(
                "sportlink.retry_backoff_ms",
                "must list at least one delay",
            ));
        }
        Ok(())
    }
}

/// Alerts are optional, but a half-configured transport must stop start-up rather than fail
/// silently when the first alert is due.
fn validate_alerts(a: &AlertSettings) -> Result<(), ConfigError> {
    if a.smtp_server.trim().is_empty() {
        if !a.to.is_empty() {
            return Err(ConfigError::new(
                "alerts.smtp_server",
                "must be set when alerts.to is (host:port)",
            ));
        }
    } else {
        if parse_host_port(&a.smtp_server).is_none() {
            return Err(ConfigError::new(
                "alerts.smtp_server",
                format!("{:?} is not host:port", a.smtp_server),
            ));
        }
        if !matches!(a.smtp_security.as_str(), "starttls" | "tls" | "none") {
            return Err(ConfigError::new(
                "alerts.smtp_security",
                format!("{:?} is not one of starttls, tls, none", a.smtp_security),
            ));
        }
        if a.smtp_password.is_set() && a.smtp_username.trim().is_empty() {
            return Err(ConfigError::new(
                "alerts.smtp_username",
                "must be set when alerts.smtp_password is",
            ));
        }
        if !a.smtp_username.trim().is_empty() && !a.smtp_password.is_set() {
            return Err(ConfigError::new(
                "alerts.smtp_password",
                "must be set (RRS_ALERTS__SMTP_PASSWORD) when alerts.smtp_username is",
            ));
        }
        require("alerts.from", &a.from)?;
        if a.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::new(
                "alerts.from",
                format!("{:?} is not an e-mail address", a.from),
            ));
        }
        if a.to.is_empty() {
            return Err(ConfigError::new(
                "alerts.to",
                "must list at least one address when alerts.smtp_server is set",
            ));
        }
        if let Some(bad) =
            a.to.iter()
                .find(|to| to.parse::<lettre::message::Mailbox>().is_err())
        {
            return Err(ConfigError::new(
                "alerts.to",
                format!("{bad:?} is not an e-mail address"),
            ));
        }
    }
    if !a.webhook_url.is_empty() {
        // The URL may carry a token in its path, so the problem never repeats it.
        match reqwest::Url::parse(&a.webhook_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => {
                return Err(ConfigError::new(
                    "alerts.webhook_url",
                    "must be an http(s) URL with a host",
                ))
            }
        }
    }
    if a.send_timeout_secs == 0 || a.send_timeout_secs > 300 {
        return Err(ConfigError::new(
            "alerts.send_timeout_secs",
            "must be between 1 and 300",
        ));
    }
    if a.retry_backoff_ms.len() > 10 || a.retry_backoff_ms.iter().any(|&ms| ms > 3_600_000) {
        return Err(ConfigError::new(
            "alerts.retry_backoff_ms",
            "must list at most 10 delays of at most 3600000 ms",
        ));
    }
    Ok(())
}

/// `host:port` with a non-empty host and a port number; `[::1]:25` works too.
pub fn parse_host_port(value: &str) -> Option<(String, u16)> {
    let (host, port) = value.trim().rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port.parse::<u16>().ok().filter(|&p| p != 0)?;
    (!host.is_empty() && !host.contains(char::is_whitespace)).then(|| (host.to_string(), port))
}

/// The settings that hold secrets. Their environment variables are taken as strings, byte for
/// byte: figment's environment provider parses values (`000123` would become the number 123, a
/// 20-digit token a rounded float, `{…}` a map).
pub const SECRET_SETTINGS: &[&str] = &[
    "webhook.secret",
    "webhook.previous_secret",
    "rondo_club.application_password",
    "sportlink.password",
    "sportlink.otp_secret",
    "admin.token",
    "admin.read_token",
    "alerts.smtp_password",
];

/// The setting an environment variable's name stands for: `RRS_ADMIN__TOKEN` → `admin.token`.
/// Only names with a `__` are settings: `RRS_CONFIG` (the `--config` option) and other `RRS_…`
/// names are not, and must not fail as unknown fields.
fn env_setting(name: &str) -> Option<String> {
    let prefix = name.get(..ENV_PREFIX.len())?;
    if !prefix.eq_ignore_ascii_case(ENV_PREFIX) {
        return None;
    }
    let rest = &name[ENV_PREFIX.len()..];
    rest.contains("__")
        .then(|| rest.to_ascii_lowercase().replace("__", "."))
}

/// `figment` with the `RRS_<SECTION>__<KEY>` variables of `vars` merged in: secrets as they are,
/// everything else parsed (numbers, booleans, lists).
fn with_env_overrides(
    figment: Figment,
    vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Result<Figment, ConfigError> {
    let parsed = Env::prefixed(ENV_PREFIX)
        .filter(|key| {
            key.as_str().contains("__")
                && !SECRET_SETTINGS.contains(
                    &key.as_str()
                        .to_ascii_lowercase()
                        .replace("__", ".")
                        .as_str(),
                )
        })
        .split("__");
    let mut figment = figment.merge(parsed);
    for (setting, value) in secret_overrides(vars)? {
        figment = figment.merge(Serialized::default(setting, value));
    }
    Ok(figment)
}

/// The secrets set in `vars`, unparsed. A value that is not UTF-8 is refused by name.
fn secret_overrides(
    vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let mut found = Vec::new();
    for (name, value) in vars {
        let Some(setting) = name.to_str().and_then(env_setting) else {
            continue;
        };
        let Some(setting) = SECRET_SETTINGS.iter().find(|s| **s == setting) else {
            continue;
        };
        let value = value
            .into_string()
            .map_err(|_| ConfigError::new(*setting, "the environment variable is not UTF-8"))?;
        found.push((*setting, value));
    }
    Ok(found)
}

/// Refuses a file that is not TOML, naming where and what, but never repeating the line: it may
/// hold a secret (`secret = "whsec_…` with the closing quote missing).
fn check_toml_syntax(name: &str, text: &str) -> Result<(), ConfigError> {
    let Err(e) = toml::from_str::<toml::Table>(text) else {
        return Ok(());
    };
    let position = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit_once('\n')
            .map_or(before, |(_, l)| l)
            .chars()
            .count()
            + 1;
        format!("{name}:{line}:{column}")
    });
    Err(ConfigError::new(
        position.unwrap_or_else(|| name.to_string()),
        format!("TOML syntax error: {}", syntax_problem(e.message())),
    ))
}

/// The parser's message reduced to what is wrong, without any quoted piece of the input: only
/// the first line, and text between backticks kept only when it is punctuation (`=`, `"`).
fn syntax_problem(message: &str) -> String {
    let first = message.lines().next().unwrap_or("").trim();
    let mut out = String::new();
    for (i, part) in first.split('`').enumerate() {
        if i % 2 == 0 {
            out.push_str(part);
        } else if !part.is_empty() && part.chars().all(|c| c.is_ascii_punctuation()) {
            out.push('`');
            out.push_str(part);
            out.push('`');
        } else {
            out.push('…');
        }
    }
    if out.is_empty() {
        "not valid TOML".into()
    } else {
        out
    }
}

fn require(setting: &str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        Err(ConfigError::new(setting, "must be set"))
    } else {
        Ok(())
    }
}

fn validate_url(setting: &str, value: &str) -> Result<(), ConfigError> {
    match reqwest::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        Ok(_) => Err(ConfigError::new(
            setting,
            "must be an http(s) URL with a host",
        )),
        Err(e) if value.is_empty() => Err(ConfigError::new(setting, format!("must be set ({e})"))),
        Err(e) => Err(ConfigError::new(
            setting,
            format!("{value:?} is not a URL: {e}"),
        )),
    }
}

fn base32_decodes(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c))
}

/// Standard Webhooks secrets: `whsec_` followed by base64 of the key.
pub fn decode_webhook_secret(secret: &Secret) -> Option<Vec<u8>> {
    let b64 = secret.expose().strip_prefix("whsec_")?;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .filter(|k| !k.is_empty())
}

fn validate_webhook_secret(
    setting: &str,
    secret: &Secret,
    required: bool,
) -> Result<(), ConfigError> {
    if !secret.is_set() {
        return if required {
            Err(ConfigError::new(
                setting,
                "must be set (RRS_WEBHOOK__SECRET), as whsec_<base64>",
            ))
        } else {
            Ok(())
        };
    }
    match decode_webhook_secret(secret) {
        Some(key) if key.len() >= 16 => Ok(()),
        Some(_) => Err(ConfigError::new(setting, "key is shorter than 16 bytes")),
        None => Err(ConfigError::new(setting, "must look like whsec_<base64>")),
    }
}

#[cfg(test)]
mod tests;

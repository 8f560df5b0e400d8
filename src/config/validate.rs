//! Checking the settings before anything starts: what every verb needs, plus what a verb asks
//! for ([`Needs`]), each problem one line that names the setting.

use super::*;

impl Settings {
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
        within(
            "server.max_connections",
            self.server.max_connections,
            1,
            100_000,
        )?;
        within(
            "server.header_read_timeout_secs",
            self.server.header_read_timeout_secs,
            1,
            3_600,
        )?;
        within(
            "server.request_timeout_secs",
            self.server.request_timeout_secs,
            1,
            3_600,
        )?;
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
            within(
                "webhook.tolerance_secs",
                self.webhook.tolerance_secs,
                1,
                3_600,
            )?;
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
        let admin = &self.admin;
        within(
            "admin.sign_in_burst_per_client",
            admin.sign_in_burst_per_client,
            1,
            10_000,
        )?;
        within(
            "admin.sign_in_burst_overall",
            admin.sign_in_burst_overall,
            1,
            10_000,
        )?;
        within(
            "admin.sign_in_refill_secs_per_client",
            admin.sign_in_refill_secs_per_client,
            1,
            86_400,
        )?;
        within(
            "admin.sign_in_refill_secs_overall",
            admin.sign_in_refill_secs_overall,
            1,
            86_400,
        )?;
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
            within("poll.per_page", self.poll.per_page, 1, 100)?;
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

    pub(super) fn validate_sportlink(&self) -> Result<(), ConfigError> {
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
pub(super) fn validate_alerts(a: &AlertSettings) -> Result<(), ConfigError> {
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
    within("alerts.send_timeout_secs", a.send_timeout_secs, 1, 300)?;
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

pub(super) fn require(setting: &str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        Err(ConfigError::new(setting, "must be set"))
    } else {
        Ok(())
    }
}

pub(super) fn validate_url(setting: &str, value: &str) -> Result<(), ConfigError> {
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

pub(super) fn base32_decodes(s: &str) -> bool {
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

pub(super) fn validate_webhook_secret(
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

/// `value` of `setting` lies in `min..=max`, or the one-line error that says so.
fn within<T>(setting: &str, value: T, min: T, max: T) -> Result<(), ConfigError>
where
    T: PartialOrd + std::fmt::Display,
{
    if value < min || value > max {
        return Err(ConfigError::new(
            setting,
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(())
}

//! Loading the settings: the TOML file, then `RRS_<SECTION>__<KEY>` overrides (secrets byte for
//! byte), with errors that name the setting and never echo a secret.

use super::*;

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

    pub(super) fn extract(figment: Figment) -> Result<Self, ConfigError> {
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
pub(super) fn env_setting(name: &str) -> Option<String> {
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
pub(super) fn with_env_overrides(
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
pub(super) fn secret_overrides(
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
pub(super) fn check_toml_syntax(name: &str, text: &str) -> Result<(), ConfigError> {
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
pub(super) fn syntax_problem(message: &str) -> String {
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

use super::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn full() -> String {
    format!(
        r#"
[webhook]
secret = "{SECRET}"
[admin]
token = "an-admin-token-that-is-long"
[rondo_club]
base_url = "https://club.example.nl"
username = "reverse-sync"
application_password = "abcd efgh ijkl mnop qrst uvwx"
[sportlink]
username = "club-admin"
password = "s3cret-pass"
otp_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
"#
    )
}

const ALL: Needs = Needs {
    webhook: true,
    rondo_club: true,
    sportlink: true,
    admin: true,
};

fn error_for(toml: &str) -> String {
    match Settings::from_toml(toml).and_then(|s| s.validate(ALL).map(|_| s)) {
        Ok(_) => panic!("expected an error for {toml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults_are_valid_for_database_only_verbs() {
    let s = Settings::from_toml("").unwrap();
    s.validate(Needs::DATABASE_ONLY).unwrap();
    assert_eq!(s.server.listen.port(), 8787);
    assert_eq!(s.poll.interval_secs, 3600);
    assert_eq!(s.sportlink.retry_backoff_ms, [1000, 3000, 7000]);
}

#[test]
fn a_complete_file_is_valid_for_every_need() {
    Settings::from_toml(&full()).unwrap().validate(ALL).unwrap();
}

#[test]
fn the_example_config_parses_and_validates() {
    let text = include_str!("../../config.example.toml");
    let s = Settings::from_toml(text).unwrap();
    s.validate(Needs::DATABASE_ONLY).unwrap();
}

#[test]
fn each_invalid_setting_names_itself_in_one_line() {
    let cases: Vec<(String, &str)> = vec![
        (
            full().replace("[webhook]", "[webhook]\ntolerance_secs = 0"),
            "config: webhook.tolerance_secs:",
        ),
        (
            full().replace(SECRET, "not-a-secret"),
            "config: webhook.secret: must look like whsec_",
        ),
        (
            full().replace(SECRET, ""),
            "config: webhook.secret: must be set",
        ),
        (
            full().replace("an-admin-token-that-is-long", "short"),
            "config: admin.token:",
        ),
        (
            full().replace("https://club.example.nl", "club.example.nl"),
            "config: rondo_club.base_url:",
        ),
        (
            full().replace("username = \"reverse-sync\"", "username = \"\""),
            "config: rondo_club.username: must be set",
        ),
        (
            full().replace("abcd efgh ijkl mnop qrst uvwx", ""),
            "config: rondo_club.application_password:",
        ),
        (
            full().replace("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "not base32!"),
            "config: sportlink.otp_secret:",
        ),
        (
            full().replace("password = \"s3cret-pass\"", "password = \"\""),
            "config: sportlink.password:",
        ),
        (
            format!("{}\n[log]\nformat = \"xml\"", full()),
            "config: log.format:",
        ),
        (
            full().replace("[sportlink]", "[sportlink]\nmax_attempts = 0"),
            "config: sportlink.max_attempts:",
        ),
        (
            full().replace("[sportlink]", "[sportlink]\nretry_backoff_ms = []"),
            "config: sportlink.retry_backoff_ms:",
        ),
        (
            format!("{}\n[poll]\nper_page = 500", full()),
            "config: poll.per_page:",
        ),
        (
            format!(
                "{}\n[fields]\ncatalogue_file = \"/nonexistent/x.toml\"",
                full()
            ),
            "config: fields.catalogue_file:",
        ),
        // Type errors and typos come from the loader, also named by path.
        (
            format!("{}\n[server]\nlisten = \"not an address\"", full()),
            "config: server.listen:",
        ),
        (
            full().replace("[sportlink]", "[sportlink]\nmax_attempts = \"five\""),
            "config: sportlink.max_attempts:",
        ),
        (
            full().replace("[sportlink]", "[sportlink]\nmax_atempts = 3"),
            "config: sportlink.max_atempts:",
        ),
        (
            full().replace("[admin]", "[admin]\nsign_in_burst_per_client = 0"),
            "config: admin.sign_in_burst_per_client: must be between 1 and 10000",
        ),
        (
            full().replace("[admin]", "[admin]\nsign_in_refill_secs_overall = 0"),
            "config: admin.sign_in_refill_secs_overall: must be between 1 and 86400",
        ),
    ];
    for (toml, expected) in cases {
        let err = error_for(&toml);
        assert!(
            err.starts_with(expected),
            "{err:?} should start with {expected:?}"
        );
        assert!(!err.contains('\n'), "one line: {err:?}");
    }
}

#[test]
fn admin_token_must_differ_from_the_webhook_secret() {
    let toml = full().replace("an-admin-token-that-is-long", SECRET);
    assert!(error_for(&toml).contains("must differ from the webhook secret"));
}

#[test]
fn the_read_only_token_is_optional_long_and_different_from_the_other_secrets() {
    let with = |token: &str| {
        full().replace(
            "token = \"an-admin-token-that-is-long\"",
            &format!("token = \"an-admin-token-that-is-long\"\nread_token = \"{token}\""),
        )
    };
    let s = Settings::from_toml(&with("a-read-only-token-long-enough")).unwrap();
    assert!(s.validate(ALL).is_ok());
    assert!(!format!("{s:?}").contains("a-read-only-token-long-enough"));
    assert!(
        Settings::from_toml(&full()).unwrap().validate(ALL).is_ok(),
        "optional"
    );
    let short = error_for(&with("short"));
    assert!(
        short.contains("admin.read_token") && short.contains("16"),
        "{short}"
    );
    assert!(!short.contains("short\""), "{short}");
    for same in ["an-admin-token-that-is-long", SECRET] {
        let err = error_for(&with(same));
        assert!(err.contains("admin.read_token: must differ"), "{err}");
        assert!(!err.contains(same), "{err}");
    }
}

#[test]
fn secrets_never_appear_in_debug_output_or_errors() {
    let s = Settings::from_toml(&full()).unwrap();
    let debug = format!("{s:?}");
    for secret in [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "an-admin-token-that-is-long",
        "abcd efgh",
        "s3cret-pass",
        "JBSWY3DPEHPK3PXP",
    ] {
        assert!(!debug.contains(secret), "{secret} leaked into Debug");
    }
    assert!(debug.contains("[redacted]"));
    assert_eq!(s.sportlink.password.expose(), "s3cret-pass");

    // A secret of the wrong type is reported without its value.
    let err = Settings::from_toml("[sportlink]\npassword = [\"hunter2-secret\"]")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("config: sportlink.password:"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn webhook_secret_decodes() {
    let key = decode_webhook_secret(&Secret::new(SECRET)).unwrap();
    assert_eq!(key.len(), 24);
    assert!(decode_webhook_secret(&Secret::new("whsec_***")).is_none());
}

fn with_alerts(alerts: &str) -> String {
    format!("{}\n[alerts]\n{alerts}", full())
}

const SMTP_ALERTS: &str = r#"
smtp_server = "mail.example.nl:587"
smtp_username = "alerts@example.nl"
smtp_password = "smtp-pass-secret"
from = "Rondo Reverse Sync <alerts@example.nl>"
to = ["ledenadministratie@example.nl"]
webhook_url = "https://hooks.example.nl/T000/B000/XXXX"
"#;

#[test]
fn complete_alert_settings_are_valid() {
    let s = Settings::from_toml(&with_alerts(SMTP_ALERTS)).unwrap();
    s.validate(ALL).unwrap();
    assert_eq!(s.alerts.gather_ms, 30_000);
    assert!(!format!("{s:?}").contains("smtp-pass-secret"));
}

#[test]
fn each_invalid_alert_setting_names_itself_in_one_line() {
    let cases: Vec<(String, &str)> = vec![
        (
            with_alerts("to = [\"a@example.nl\"]"),
            "config: alerts.smtp_server: must be set when alerts.to is",
        ),
        (
            with_alerts(&SMTP_ALERTS.replace("mail.example.nl:587", "mail.example.nl")),
            "config: alerts.smtp_server: \"mail.example.nl\" is not host:port",
        ),
        (
            with_alerts(&format!("{SMTP_ALERTS}\nsmtp_security = \"ssl\"")),
            "config: alerts.smtp_security:",
        ),
        (
            with_alerts(&SMTP_ALERTS.replace("smtp_username = \"alerts@example.nl\"", "")),
            "config: alerts.smtp_username: must be set when alerts.smtp_password is",
        ),
        (
            with_alerts(&SMTP_ALERTS.replace("smtp_password = \"smtp-pass-secret\"", "")),
            "config: alerts.smtp_password: must be set (RRS_ALERTS__SMTP_PASSWORD)",
        ),
        (
            with_alerts(
                &SMTP_ALERTS.replace("from = \"Rondo Reverse Sync <alerts@example.nl>\"", ""),
            ),
            "config: alerts.from: must be set",
        ),
        (
            with_alerts(
                &SMTP_ALERTS.replace("Rondo Reverse Sync <alerts@example.nl>", "not an address"),
            ),
            "config: alerts.from: \"not an address\" is not an e-mail address",
        ),
        (
            with_alerts(&SMTP_ALERTS.replace("[\"ledenadministratie@example.nl\"]", "[]")),
            "config: alerts.to: must list at least one address",
        ),
        (
            with_alerts(&SMTP_ALERTS.replace("ledenadministratie@example.nl", "leden@")),
            "config: alerts.to: \"leden@\" is not an e-mail address",
        ),
        (
            with_alerts(&SMTP_ALERTS.replace("https://hooks.example.nl/T000/B000/XXXX", "hooks")),
            "config: alerts.webhook_url: must be an http(s) URL",
        ),
        (
            with_alerts("send_timeout_secs = 0"),
            "config: alerts.send_timeout_secs:",
        ),
        (
            with_alerts("retry_backoff_ms = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]"),
            "config: alerts.retry_backoff_ms:",
        ),
    ];
    for (toml, expected) in cases {
        let err = error_for(&toml);
        assert!(
            err.starts_with(expected),
            "{err:?} should start with {expected:?}"
        );
        assert!(!err.contains('\n'), "one line: {err:?}");
        assert!(!err.contains("smtp-pass-secret"), "{err}");
    }
}

#[test]
fn host_port_parses_names_and_addresses() {
    assert_eq!(
        parse_host_port("mail.example.nl:465"),
        Some(("mail.example.nl".into(), 465))
    );
    assert_eq!(parse_host_port("[::1]:25"), Some(("::1".into(), 25)));
    assert_eq!(parse_host_port("mail.example.nl"), None);
    assert_eq!(parse_host_port(":25"), None);
    assert_eq!(parse_host_port("mail:0"), None);
    assert_eq!(parse_host_port("mail:99999"), None);
}

/// Issue 15, item 7: every secret from the environment is a string, byte for byte, whatever it
/// looks like (figment would parse `000123` as 123, `{…}` as a map, `true` as a boolean).
#[test]
fn secrets_from_the_environment_are_kept_byte_for_byte() {
    let values = [
        ("RRS_WEBHOOK__SECRET", "whsec_0001"),
        ("RRS_WEBHOOK__PREVIOUS_SECRET", "12345678901234567891"),
        ("RRS_RONDO_CLUB__APPLICATION_PASSWORD", "true"),
        ("RRS_SPORTLINK__PASSWORD", "{not: a, map}"),
        ("RRS_SPORTLINK__OTP_SECRET", "[1, 2]"),
        ("RRS_ADMIN__TOKEN", "0001234567890123456789"),
        ("RRS_ADMIN__READ_TOKEN", "000987654321098765432"),
        ("rrs_alerts__smtp_password", "1e3"),
    ];
    assert_eq!(
        values.len(),
        SECRET_SETTINGS.len(),
        "every secret is tested"
    );
    let vars = values.iter().map(|(k, v)| ((*k).into(), (*v).into()));
    let figment = Figment::from(Serialized::defaults(Settings::default()));
    let s: Settings = Settings::extract(with_env_overrides(figment, vars).unwrap()).unwrap();
    let got = [
        s.webhook.secret.expose(),
        s.webhook.previous_secret.expose(),
        s.rondo_club.application_password.expose(),
        s.sportlink.password.expose(),
        s.sportlink.otp_secret.expose(),
        s.admin.token.expose(),
        s.admin.read_token.expose(),
        s.alerts.smtp_password.expose(),
    ];
    for ((name, want), got) in values.iter().zip(got) {
        assert_eq!(got, *want, "{name}");
    }
}

#[test]
fn a_secret_that_is_a_number_in_the_file_is_refused_not_converted() {
    let err = Settings::from_toml("[admin]\ntoken = 1234567890123456789\n").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("config: admin.token: must be a string"),
        "{err}"
    );
    assert!(!err.to_string().contains("1234567890"), "{err}");
}

#[test]
fn a_syntax_error_names_line_and_column_without_the_content() {
    let err = Settings::from_toml("[webhook]\nsecret = \"whsec_Leak\n").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("config: <config>:2:"), "{text}");
    assert!(!text.contains("Leak"), "{text}");
}

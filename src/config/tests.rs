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

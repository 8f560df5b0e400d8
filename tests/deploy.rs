//! The files in `deploy/`: the systemd unit is hardened and passes `systemd-analyze verify`, the
//! production config validates, the env file names every secret the code has (and nothing it
//! lacks), and the reverse-proxy examples keep `/metrics` private.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use rondo_reverse_sync::config::{Needs, Settings};

const UNIT: &str = include_str!("../deploy/rondo-reverse-sync.service");
const CONFIG: &str = include_str!("../deploy/config.toml.example");
const ENV: &str = include_str!("../deploy/env.example");
const CADDY: &str = include_str!("../deploy/Caddyfile.example");
const NGINX: &str = include_str!("../deploy/nginx.conf.example");

/// The active (uncommented) `Key=value` lines of the unit, every value of each key.
fn directives(unit: &str) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            map.entry(key.trim().to_string())
                .or_default()
                .push(value.trim().to_string());
        }
    }
    map
}

#[test]
fn the_unit_has_the_hardening_directives() {
    let d = directives(UNIT);
    let expected = [
        ("User", "rondo-reverse-sync"),
        ("StateDirectory", "rondo-reverse-sync"),
        ("ConfigurationDirectory", "rondo-reverse-sync"),
        ("EnvironmentFile", "/etc/rondo-reverse-sync/env"),
        ("WorkingDirectory", "/var/lib/rondo-reverse-sync"),
        (
            "ExecStart",
            "/usr/local/bin/rondo-reverse-sync --config /etc/rondo-reverse-sync/config.toml serve",
        ),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        (
            "RestrictAddressFamilies",
            "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        ),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("SystemCallArchitectures", "native"),
        ("CapabilityBoundingSet", ""),
        ("UMask", "0077"),
        ("Restart", "on-failure"),
        ("KillMode", "mixed"),
    ];
    for (key, value) in expected {
        assert_eq!(
            d.get(key).map(Vec::as_slice),
            Some([value.to_string()].as_slice()),
            "{key}={value}"
        );
    }
    let stop: u64 = d["TimeoutStopSec"][0]
        .parse()
        .expect("TimeoutStopSec in seconds");
    assert!(
        stop >= 60,
        "the executor gets time to finish a member: {stop}"
    );
    // Chromium's JIT needs writable+executable memory; the unit says why it is absent.
    assert!(!d.contains_key("MemoryDenyWriteExecute"));
    assert!(UNIT.contains("# MemoryDenyWriteExecute=yes is deliberately left out"));
}

#[test]
fn systemd_analyze_verify_passes() {
    if std::env::var("RRS_SKIP_SYSTEMD_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: RRS_SKIP_SYSTEMD_TESTS=1");
        return;
    }
    assert!(
        Command::new("systemd-analyze")
            .arg("--version")
            .output()
            .is_ok(),
        "systemd-analyze is not installed (scripts/install-deps installs it; set \
         RRS_SKIP_SYSTEMD_TESTS=1 to skip this test on purpose)"
    );
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("rondo-reverse-sync.service");
    // verify checks that ExecStart is executable; point it at the binary this build made.
    let text = UNIT.replace(
        "/usr/local/bin/rondo-reverse-sync",
        env!("CARGO_BIN_EXE_rondo-reverse-sync"),
    );
    std::fs::write(&unit, text).unwrap();

    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Unknown or misspelt keys are only warnings (exit 0), so the output is checked as well.
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("rondo-reverse-sync.service"))
        .collect();
    assert!(out.status.success(), "verify failed: {stderr}");
    assert!(about_unit.is_empty(), "verify complained: {about_unit:#?}");

    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout);
    match exposure(&report) {
        Some(level) => {
            println!("systemd-analyze security: exposure {level}");
            assert!(level <= 4.0, "exposure {level} is worse than OK:\n{report}");
        }
        None => println!(
            "security rating skipped: this systemd-analyze gave no rating ({})",
            String::from_utf8_lossy(&security.stderr).trim()
        ),
    }
}

/// `→ Overall exposure level for x.service: 3.0 OK 🙂` → 3.0
fn exposure(report: &str) -> Option<f64> {
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))?;
    let (_, rest) = line.rsplit_once(": ")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Section and key of every `RRS_SECTION__KEY=` line, commented or not.
fn env_settings() -> Vec<(String, String)> {
    ENV.lines()
        .map(|l| l.trim_start_matches('#').trim())
        .filter_map(|l| l.strip_prefix("RRS_"))
        .filter_map(|l| l.split_once('=').map(|(name, _)| name))
        .map(|name| {
            let (section, key) = name.split_once("__").expect("RRS_<SECTION>__<KEY>");
            (section.to_lowercase(), key.to_lowercase())
        })
        .collect()
}

/// Every `Secret` setting, found from the code: they print as `[redacted]`.
fn secret_settings() -> Vec<(String, String)> {
    let debug = format!("{:#?}", Settings::default());
    let mut section = String::new();
    let mut secrets = Vec::new();
    for line in debug.lines() {
        let indent = line.len() - line.trim_start().len();
        let Some((name, value)) = line.trim().split_once(": ") else {
            continue;
        };
        if indent == 4 {
            section = name.to_string();
        } else if indent == 8 && value.trim_end_matches(',') == "[redacted]" {
            secrets.push((section.clone(), name.to_string()));
        }
    }
    secrets
}

#[test]
fn the_env_file_names_every_secret_and_only_real_settings() {
    let listed = env_settings();
    let secrets = secret_settings();
    assert!(
        secrets.len() >= 7,
        "secrets found from the code: {secrets:?}"
    );
    for secret in &secrets {
        assert!(listed.contains(secret), "env.example lacks {secret:?}");
    }
    for (section, key) in &listed {
        // deny_unknown_fields turns a misspelt name into an error.
        let toml = format!("[{section}]\n{key} = \"https://example.nl/x\"");
        if let Err(e) = Settings::from_toml(&toml) {
            panic!("env.example names {section}.{key}, which is no setting: {e}");
        }
    }
}

#[test]
fn the_production_config_validates_once_the_secrets_are_set() {
    let with_secrets = CONFIG
        .replace(
            "[webhook]\n",
            "[webhook]\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n",
        )
        .replace(
            "[admin]\n",
            "[admin]\ntoken = \"an-admin-token-that-is-long\"\n",
        )
        .replace(
            "[rondo_club]\n",
            "[rondo_club]\napplication_password = \"abcd efgh ijkl mnop\"\n",
        )
        .replace(
            "[sportlink]\n",
            "[sportlink]\npassword = \"pw\"\notp_secret = \"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\"\n",
        )
        .replace("[alerts]\n", "[alerts]\nsmtp_password = \"pw\"\n");
    let settings = Settings::from_toml(&with_secrets).expect("parses");
    let all = Needs {
        webhook: true,
        rondo_club: true,
        sportlink: true,
        admin: true,
    };
    settings.validate(all).expect("validates");
    let state = Path::new("/var/lib/rondo-reverse-sync");
    assert!(settings.database.path.starts_with(state));
    assert!(settings.sportlink.artefact_dir.starts_with(state));
    assert!(settings.server.listen.ip().is_loopback());

    // Without the secrets it must not validate: they are not in the file.
    let bare = Settings::from_toml(CONFIG).expect("parses");
    assert!(bare.validate(all).is_err());
}

#[test]
fn the_proxy_examples_forward_to_the_service_and_keep_metrics_private() {
    for (name, text, metrics_blocked, body_limit) in [
        ("Caddyfile", CADDY, "respond @metrics", "max_size 1MiB"),
        (
            "nginx",
            NGINX,
            "location = /metrics { return 404; }",
            "client_max_body_size 1m;",
        ),
    ] {
        assert!(
            text.contains("127.0.0.1:8787"),
            "{name} proxies to the service"
        );
        assert!(text.contains(metrics_blocked), "{name} blocks /metrics");
        assert!(text.contains(body_limit), "{name} limits bodies to 1 MiB");
        assert!(
            text.contains("X-Forwarded-") || text.contains("X-Real-IP"),
            "{name}"
        );
    }
    for path in ["/webhooks/rondo-club", "/api/", "location /"] {
        assert!(NGINX.contains(path), "nginx forwards {path}");
    }
}

#[test]
fn the_rrs_helper_is_valid_shell() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/rrs");
    let out = Command::new("sh").arg("-n").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rrs_config_names_the_file_and_is_not_mistaken_for_a_setting() {
    // deploy/rrs and operators may export RRS_CONFIG next to the RRS_<SECTION>__<KEY> secrets.
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("from-file.sqlite3");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[database]\npath = {:?}\n", database.display().to_string()),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rondo-reverse-sync"))
        .arg("migrate")
        .current_dir(dir.path())
        .env("RRS_CONFIG", &config)
        .env("RRS_LOG__LEVEL", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(database.is_file(), "the file's database.path was used");
}

use crate::binary;

/// Issue 15, item 7: figment's environment provider parses values, so a token `000123…` lost its
/// zeros and a 20-digit one was rounded. Through the real binary: `serve` with the token in the
/// environment accepts exactly that token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_from_the_environment_are_taken_byte_for_byte() {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    // Leading zeros (a number would drop them); 20 digits (beyond i64: a float would round them).
    for token in ["0001234567890123456789", "12345678901234567891"] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("rrs.sqlite3");
        let served = binary::Served::start(dir.path(), &db, &[("RRS_ADMIN__TOKEN", token)]).await;
        let answer = client
            .get(format!("{}/api/status", served.base_url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status(),
            reqwest::StatusCode::OK,
            "token {token}: {}",
            served.log_text()
        );
    }
}

/// Issue 15, item 8: a TOML syntax error names the file, line and column and what is wrong, but
/// never repeats the line, which may hold a secret.
#[test]
fn a_toml_syntax_error_names_the_place_and_never_echoes_the_line() {
    let leaked = "whsec_TopSecretDoNotPrint0123456789abcdef";
    let cases = [
        // The closing quote is missing.
        (
            format!("[database]\npath = \"x.sqlite3\"\n[webhook]\nsecret = \"{leaked}\n"),
            ":4:",
        ),
        // Not quoted at all.
        (format!("[webhook]\nsecret = {leaked}\n"), ":2:"),
        // A key without a value.
        (format!("[webhook]\n{leaked}\n"), ":2:"),
    ];
    for (text, place) in cases {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, &text).unwrap();
        let out = binary::run(
            dir.path(),
            &["--config", config.to_str().unwrap(), "migrate"],
            &[],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("config.toml{place}")),
            "names file and line: {stderr}"
        );
        assert!(stderr.contains("TOML"), "says what is wrong: {stderr}");
        assert!(!stderr.contains("TopSecret"), "echoed the line: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    }
}

/// Issue 15, item 3: `serve` never creates a database silently: on a missing one it refuses with
/// one line naming `migrate`; `--create-database` is the explicit first start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_missing_database_unless_asked_to_create_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rrs.sqlite3");
    let db_text = db.display().to_string();
    let env = [
        ("RRS_DATABASE__PATH", db_text.as_str()),
        ("RRS_WEBHOOK__SECRET", binary::SECRET),
        ("RRS_SERVER__LISTEN", "127.0.0.1:0"),
    ];
    let out = binary::run(dir.path(), &["serve"], &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("does not exist") && stderr.contains("migrate"),
        "{stderr}"
    );
    assert!(!db.exists(), "serve created the database");
    for verb in [&["status"][..], &["detect"]] {
        let out = binary::run(
            dir.path(),
            verb,
            &[
                ("RRS_DATABASE__PATH", db_text.as_str()),
                ("RRS_RONDO_CLUB__BASE_URL", "http://127.0.0.1:9"),
                ("RRS_RONDO_CLUB__USERNAME", "u"),
                ("RRS_RONDO_CLUB__APPLICATION_PASSWORD", "p"),
            ],
        );
        assert!(!out.status.success(), "{verb:?}");
        assert!(!db.exists(), "{verb:?} created the database");
    }

    let served =
        binary::Served::start_with_args(dir.path(), &db, &["serve", "--create-database"], &[])
            .await;
    assert!(db.is_file(), "--create-database created it");
    drop(served);
}

/// Issue 15, item 16: the snippet's README says to check `status` for an arriving delivery, so
/// `status` shows the last delivery (and its JSON form too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_last_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rrs.sqlite3");
    let db_text = db.display().to_string();
    let env = [("RRS_DATABASE__PATH", db_text.as_str())];
    let served = binary::Served::start(dir.path(), &db, &[]).await;
    let out = binary::run(dir.path(), &["status"], &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("last delivery       none received"),
        "{stdout}"
    );

    let body = serde_json::json!({
        "type": "person.created",
        "timestamp": "2026-11-26T11:30:21Z",
        "data": {"id": 7, "modified_gmt": "2026-11-26T11:30:20",
                 "acf": {"knvb-id": "STA0001", "email_1": "a@example.org"},
                 "origin": "user_edit", "user": "volunteer"}
    })
    .to_string();
    let now = chrono::Utc::now().timestamp();
    let signature = rondo_reverse_sync::webhook::WebhookSecret::parse(binary::SECRET)
        .unwrap()
        .sign("msg_status_1", now, body.as_bytes());
    let answer = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/webhooks/rondo-club", served.base_url))
        .header("content-type", "application/json")
        .header("webhook-id", "msg_status_1")
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::OK);

    let out = binary::run(dir.path(), &["status"], &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("last delivery"))
        .unwrap_or_else(|| panic!("no last delivery line: {stdout}"));
    for part in ["processed", "person.created", "STA0001", "msg_status_1"] {
        assert!(line.contains(part), "{part}: {line}");
    }
    let out = binary::run(dir.path(), &["status", "--json"], &env);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["last_delivery"]["id"], "msg_status_1", "{json}");
    drop(served);
}

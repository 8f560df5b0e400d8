//! The CLI verbs' code paths (`check`, `sync`) from a configuration, against the simulator.

use rondo_reverse_sync::config::Settings;
use rondo_reverse_sync::domain::ChangeStatus;
use rondo_reverse_sync::sportlink::browser::SessionError;
use rondo_reverse_sync::sportlink::setup::{self, SetupError};
use tokio_util::sync::CancellationToken;

use crate::support::chromium::{browser_tests_skipped, OTP_SECRET, PASSWORD, USER};
use crate::support::rig::{Member, Rig};

fn settings(rig: &Rig, password: &str) -> Settings {
    Settings::from_toml(&format!(
        r#"
        [database]
        path = "{db}"
        [sportlink]
        base_url = "{base}"
        username = "{USER}"
        password = "{password}"
        otp_secret = "{OTP_SECRET}"
        min_member_interval_ms = 0
        member_jitter_ms = 0
        settle_ms = 400
        action_timeout_secs = 15
        artefact_dir = "{artefacts}"
        "#,
        db = rig.dir.path().join("rrs.sqlite3").display(),
        base = rig.sim.base_url(),
        artefacts = rig.artefact_dir().display(),
    ))
    .expect("settings")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_sync_from_the_configuration() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let wrong = settings(&rig, "definitely-wrong-pw");
    let err = setup::check_login(&wrong, rig.sim.clock())
        .await
        .unwrap_err();
    assert!(
        matches!(err, SetupError::Session(SessionError::LoginRefused { .. })),
        "{err}"
    );
    assert!(err
        .to_string()
        .contains("Ongeldige gebruikersnaam of wachtwoord"));
    assert!(!err.to_string().contains("definitely-wrong-pw"));

    let good = settings(&rig, PASSWORD);
    setup::check_login(&good, rig.sim.clock())
        .await
        .expect("check logs in");

    let mut m = Member::jan("CLI0001");
    rig.seed(&m).await;
    m.email = "via-cli@example.org".into();
    let ids = rig.user_edit(&m).await;
    let cancel = CancellationToken::new();
    let only = rondo_reverse_sync::domain::KnvbId::parse("CLI0001").unwrap();
    let report = setup::sync(
        &good,
        rig.store.clone(),
        Some(&only),
        false,
        &cancel,
        rig.sim.clock(),
    )
    .await
    .expect("sync");
    let text = setup::render_report(&report);
    assert!(text.contains("CLI0001  done: 1 synced"), "{text}");
    assert!(!setup::report_failed(&report));
    assert_eq!(rig.change(ids[0]).await.status, ChangeStatus::Synced);
    assert_eq!(
        rig.state().member("CLI0001").unwrap().communication.email1,
        "via-cli@example.org"
    );
    rig.finish().await;
}

/// Issue 13, part 1: `check --member` looks at a member's pages read-only. With a catalogue that
/// expects "Contactgegevens" where Sportlink shows "Communicatie" (a renamed heading, as the
/// executor sees it), it names the missing heading, suggests the one the page shows, reports the
/// values the app fetched — and Sportlink receives no save and no edit-mode request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_member_names_a_renamed_heading_and_suggests_the_fix() {
    use rondo_reverse_sync::sportlink::setup::check_member;

    use crate::support::rig::catalogue_expecting_heading;

    if browser_tests_skipped() {
        return;
    }
    let renamed = catalogue_expecting_heading("Communicatie", "Contactgegevens");
    let rig = Rig::start_with_catalogue(renamed.clone()).await;
    let m = Member::jan("CHK0001");
    rig.seed(&m).await;
    let settings = settings(&rig, PASSWORD);
    let member = rondo_reverse_sync::domain::KnvbId::parse("CHK0001").unwrap();
    let check = check_member(&settings, &renamed, &member, rig.sim.clock())
        .await
        .expect("the check runs");
    let text = check.to_string();
    assert!(!check.matches_catalogue(), "{text}");
    assert!(
        text.contains("section \"Contactgegevens\": NOT FOUND"),
        "{text}"
    );
    assert!(
        text.contains("suggestion: in the catalogue, section = \"Communicatie\""),
        "{text}"
    );
    assert!(text.contains("section \"Adres\": found"), "{text}");
    assert!(
        text.contains("section \"Financiële gegevens\": found"),
        "{text}"
    );
    // The values the app fetched, normalised (the seeded e-mail, whatever the JSON shape).
    assert!(
        text.contains(&format!("value email: {:?}", m.email)),
        "{text}"
    );
    let log = rig.state().request_log();
    assert!(log.iter().all(|r| !r.is_save()), "no save: {log:?}");

    // The built-in catalogue matches the same pages.
    let builtin = rondo_reverse_sync::catalogue::Catalogue::builtin();
    let check = check_member(&settings, &builtin, &member, rig.sim.clock())
        .await
        .expect("the check runs");
    assert!(check.matches_catalogue(), "{check}");
    rig.finish().await;
}

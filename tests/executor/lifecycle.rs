//! The run around the unit of work: skipped members, the circuit breaker, crash safety, dry run,
//! pacing, the account lock, and the daemon's background task.

use std::time::Duration;

use rondo_reverse_sync::alerts::{AlertEvent, AlertSender};
use rondo_reverse_sync::config::Settings;
use rondo_reverse_sync::daemon::ExecutorHandle;
use rondo_reverse_sync::domain::{ChangeStatus, Origin, Source};
use rondo_reverse_sync::sportlink::executor::{ExecutorState, MemberResult, StopReason};
use rondo_reverse_sync::sportlink::lock::LockError;
use rondo_reverse_sync::sportlink::setup::{self, SetupError};
use rrs_standins::simulator::Section;
use tokio_util::sync::CancellationToken;

use crate::support::chromium::{browser_tests_skipped, wait_for_sim};
use crate::support::rig::{
    assert_done, catalogue_expecting_heading, first_request_of, saves, Member, Rig,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_former_member_is_skipped_with_a_reason_never_synced() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("OUD0001");
    rig.seed(&m).await;
    rig.state().seed_member(m.sim().former());
    m.email = "weg@example.org".into();
    m.blokkade = true;
    let ids = rig.user_edit(&m).await;
    let mut executor = rig.executor();
    let report = rig.run(&mut executor, None).await;
    executor.close().await;
    let MemberResult::Skipped { reason } = &report.members[0].result else {
        panic!("{report:?}");
    };
    assert!(reason.contains("Oud bondslid"), "{reason}");
    for id in ids {
        let c = rig.change(id).await;
        assert_eq!(c.status, ChangeStatus::Skipped);
        assert!(c.status_reason.unwrap().contains("Oud bondslid"));
        assert!(c.synced_at.is_none());
    }
    assert!(saves(&rig.state(), "OUD0001").is_empty());
    assert_eq!(
        rig.sync_origin("OUD0001").await.as_deref(),
        Some("user_edit")
    );
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deceased_member_is_skipped_without_opening_sportlink() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("DOD0001");
    rig.seed(&m).await;
    m.email = "nog-open@example.org".into();
    let ids = rig.user_edit(&m).await;
    // Later Rondo Club reports the member deceased (detection pushes nothing new for that).
    let mut acf = m.acf();
    acf["datum-overlijden"] = "2024-01-01".into();
    rig.store
        .write({
            let person = rondo_reverse_sync::detect::Person::from_json(&serde_json::json!({
                "id": 100, "modified_gmt": "2099-01-01T00:00:00", "acf": acf,
            }))
            .unwrap();
            move |c| {
                c.apply_sighting(
                    &rondo_reverse_sync::detect::Sighting {
                        person,
                        source: Source::Webhook,
                        origin: Some(Origin::UserEdit),
                    },
                    &Default::default(),
                    chrono::Utc::now(),
                )
            }
        })
        .await
        .unwrap();
    let mut executor = rig.executor();
    let report = rig.run(&mut executor, None).await;
    executor.close().await;
    assert!(
        matches!(&report.members[0].result, MemberResult::Skipped { reason } if reason.contains("deceased")),
        "{report:?}"
    );
    assert_eq!(rig.change(ids[0]).await.status, ChangeStatus::Skipped);
    assert!(
        rig.state().request_log().is_empty(),
        "Sportlink was not opened"
    );
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circuit_breaker_trips_after_n_drift_failures_and_stops_touching_sportlink() {
    if browser_tests_skipped() {
        return;
    }
    // Sportlink "renamed its section": the page shows "Communicatie", the catalogue expects
    // "Contactgegevens" — for the executor the same as a heading renamed under it.
    let rig = Rig::start_with_catalogue(catalogue_expecting_heading(
        "Communicatie",
        "Contactgegevens",
    ))
    .await;
    let ids: Vec<&str> = vec!["CB00001", "CB00002", "CB00003"];
    for id in &ids {
        let mut m = Member::jan(id);
        rig.seed(&m).await;
        m.email = format!("{}@nieuw.nl", id.to_lowercase());
        rig.user_edit(&m).await;
    }
    let (alerts, mut raised) = AlertSender::channel(16);
    let mut executor = rig.executor_with(|s| s.circuit_breaker_threshold = 2);
    executor.set_alerts(alerts);
    let report = rig.run(&mut executor, None).await;
    assert_eq!(report.members.len(), 2, "{report:?}");
    let alert = raised.try_recv().expect("the operator is alerted").event;
    assert!(
        matches!(alert, AlertEvent::CircuitBreakerTripped { failures: 2, .. }),
        "{alert:?}"
    );
    // The alert carries the page-model diagnosis of the last member: the missing heading, what
    // the page shows instead, and the catalogue edit that would match it.
    let AlertEvent::CircuitBreakerTripped { reason, .. } = &alert else {
        unreachable!()
    };
    assert!(
        reason.contains(rondo_reverse_sync::sportlink::diagnose::DIAGNOSIS_MARK)
            && reason.contains("section \"Contactgegevens\": NOT FOUND")
            && reason.contains("section = \"Communicatie\""),
        "{reason}"
    );
    for m in &report.members {
        let MemberResult::Failed {
            ui_drift, error, ..
        } = &m.result
        else {
            panic!("{report:?}");
        };
        assert!(*ui_drift, "{report:?}");
        // The pause says what was missing and what the page shows instead.
        assert!(
            error.contains("\"Contactgegevens\" not found") && error.contains("\"Communicatie\""),
            "{error}"
        );
    }
    assert!(
        matches!(report.stopped, Some(StopReason::CircuitBreakerOpen { .. })),
        "{report:?}"
    );
    assert!(
        first_request_of(&rig.state(), "CB00003").is_none(),
        "third member untouched"
    );
    assert!(
        rig.state().request_log().iter().all(|r| !r.is_save()),
        "nothing was saved"
    );
    let board = executor.status_board();
    assert!(matches!(board.status().state, ExecutorState::Paused { .. }));

    // While paused, a run does nothing at all.
    rig.state().clear_log();
    let paused = rig.run(&mut executor, None).await;
    assert!(paused.members.is_empty());
    assert!(matches!(
        paused.stopped,
        Some(StopReason::CircuitBreakerOpen { .. })
    ));
    assert!(rig.state().request_log().is_empty());

    // The operator resumes without fixing the catalogue: the breaker trips again at once.
    board.resume();
    assert!(matches!(
        raised.try_recv().map(|s| s.event),
        Ok(AlertEvent::CircuitBreakerReset)
    ));
    let again = rig.run(&mut executor, None).await;
    executor.close().await;
    assert_eq!(again.members.len(), 2, "{again:?}");
    assert!(matches!(
        again.stopped,
        Some(StopReason::CircuitBreakerOpen { .. })
    ));
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_without_a_section_are_skipped_and_do_not_trip_the_breaker() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut all_ids = Vec::new();
    for id in ["NOC0001", "NOC0002", "NOC0003"] {
        let mut m = Member::jan(id);
        rig.seed(&m).await;
        rig.state()
            .seed_member(m.sim().without_section(Section::Communication));
        m.email = format!("{}@nieuw.nl", id.to_lowercase());
        all_ids.extend(rig.user_edit(&m).await);
    }
    // A member who has the section between them is pushed as usual.
    let mut ok = Member::jan("NOC0004");
    rig.seed(&ok).await;
    ok.email = "wel@example.org".into();
    let ok_ids = rig.user_edit(&ok).await;
    let (alerts, mut raised) = AlertSender::channel(16);
    let mut executor = rig.executor_with(|s| s.circuit_breaker_threshold = 2);
    executor.set_alerts(alerts);
    let report = rig.run(&mut executor, None).await;
    executor.close().await;
    assert_eq!(report.members.len(), 4, "{report:?}");
    assert!(report.stopped.is_none(), "{report:?}");
    for m in report
        .members
        .iter()
        .filter(|m| m.knvb_id.as_str() != "NOC0004")
    {
        let MemberResult::Skipped { reason } = &m.result else {
            panic!("{report:?}");
        };
        assert!(reason.contains("\"Communicatie\""), "{reason}");
    }
    for id in &all_ids {
        let c = rig.change(*id).await;
        assert_eq!(c.status, ChangeStatus::Skipped, "{c:?}");
        assert!(
            c.status_reason
                .as_deref()
                .unwrap_or("")
                .contains("Communicatie"),
            "{c:?}"
        );
    }
    assert_eq!(rig.change(ok_ids[0]).await.status, ChangeStatus::Synced);
    assert!(raised.try_recv().is_err(), "no alert");
    let board = executor.status_board();
    assert!(!matches!(
        board.status().state,
        ExecutorState::Paused { .. }
    ));
    assert_eq!(board.status().consecutive_drift_failures, 0);
    assert_eq!(saves(&rig.state(), "NOC0001").len(), 0);
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_save_and_the_database_update_is_not_pushed_twice() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("CRA0001");
    rig.seed(&m).await;
    m.email = "na-crash@example.org".into();
    let ids = rig.user_edit(&m).await;
    // Slow answers widen the window between Sportlink's save and our database update.
    rig.state().update_faults(|f| f.slow_response_ms = 700);
    let mut executor = rig.executor();
    let task = tokio::spawn(async move {
        let cancel = CancellationToken::new();
        let report = executor.run(None, false, &cancel).await;
        executor.close().await;
        report
    });
    let state = rig.state();
    let saved = wait_for_sim(&state, Duration::from_secs(90), |s| {
        s.member("CRA0001").unwrap().communication.email1 == "na-crash@example.org"
    })
    .await;
    // The process dies: the task (and with it the browser and the lock) is gone mid-member.
    task.abort();
    let _ = task.await;
    assert!(saved, "the save reached Sportlink");
    assert_eq!(
        rig.change(ids[0]).await.status,
        ChangeStatus::Pending,
        "killed before the database update"
    );
    assert_eq!(saves(&rig.state(), "CRA0001").len(), 1);

    rig.state().update_faults(|f| f.slow_response_ms = 0);
    let report = rig.push().await;
    assert_done(&report, 1);
    assert_eq!(
        report.members[0].fields[0].decision,
        rondo_reverse_sync::sportlink::executor::FieldDecision::AlreadyInSync
    );
    assert_eq!(saves(&rig.state(), "CRA0001").len(), 1, "not written again");
    assert_eq!(rig.change(ids[0]).await.status, ChangeStatus::Synced);
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_changes_nothing() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("DRY0001");
    rig.seed(&m).await;
    m.email = "misschien@example.org".into();
    m.datum_vog = "2026-02-02".into();
    m.blokkade = true;
    rig.user_edit(&m).await;
    let before_changes = format!("{:?}", rig.changes_of("DRY0001").await);
    let before_sim = rig.state().member("DRY0001").unwrap();
    let before_ts = rig.timestamps("DRY0001", "email").await;
    let mut executor = rig.executor();
    let report = rig.run_mode(&mut executor, None, true).await;
    executor.close().await;
    assert!(
        matches!(report.members[0].result, MemberResult::DryRun),
        "{report:?}"
    );
    assert_eq!(
        report.members[0].fields.len(),
        3,
        "what would be written is reported"
    );
    assert!(report.members[0]
        .fields
        .iter()
        .all(|f| f.decision == rondo_reverse_sync::sportlink::executor::FieldDecision::Write));
    let text = setup::render_report(&report);
    assert!(text.contains("DRY0001  dry run: nothing changed"), "{text}");
    assert!(
        text.contains("\"misschien@example.org\": would be written"),
        "{text}"
    );
    assert!(saves(&rig.state(), "DRY0001").is_empty());
    assert_eq!(rig.state().member("DRY0001").unwrap(), before_sim);
    assert_eq!(
        format!("{:?}", rig.changes_of("DRY0001").await),
        before_changes
    );
    assert_eq!(rig.timestamps("DRY0001", "email").await, before_ts);
    assert!(rig.conflicts("DRY0001").await.is_empty());
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pause_between_members_respects_the_configured_minimum() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let ids = ["GAP0001", "GAP0002", "GAP0003"];
    for id in ids {
        let mut m = Member::jan(id);
        rig.seed(&m).await;
        m.freescout_id = "1".into();
        rig.user_edit(&m).await;
    }
    let mut executor = rig.executor_with(|s| s.min_member_interval_ms = 1_200);
    let report = rig.run(&mut executor, None).await;
    executor.close().await;
    assert_eq!(report.members.len(), 3);
    let log = rig.state().request_log();
    let member_requests = |id: &str| {
        let page = format!("/member/member-details/{id}/");
        log.iter()
            .filter(|r| r.path.starts_with(&page) || r.member_id.as_deref() == Some(id))
            .map(|r| r.time)
            .collect::<Vec<_>>()
    };
    for pair in ids.windows(2) {
        let last_of_previous = member_requests(pair[0]).into_iter().max().unwrap();
        let first_of_next = member_requests(pair[1]).into_iter().min().unwrap();
        let gap = (first_of_next - last_of_previous)
            .to_std()
            .unwrap_or_default();
        assert!(
            gap >= Duration::from_millis(1_200),
            "{} → {}: {gap:?}",
            pair[0],
            pair[1]
        );
    }
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_executor_per_account_also_against_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rrs.sqlite3");
    let settings = Settings::from_toml(&format!(
        r#"
        [database]
        path = "{}"
        [sportlink]
        base_url = "http://127.0.0.1:9"
        username = "clubadmin"
        password = "x"
        otp_secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        "#,
        db.display()
    ))
    .unwrap();
    // The daemon holds the account.
    let held = setup::lock_account(&settings).unwrap();
    let catalogue = std::sync::Arc::new(rondo_reverse_sync::catalogue::Catalogue::builtin());
    let store = rondo_reverse_sync::open_store(&settings, catalogue).unwrap();
    let cancel = CancellationToken::new();
    let err = setup::sync(
        &settings,
        store.clone(),
        None,
        false,
        &cancel,
        rondo_reverse_sync::clock::system(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, SetupError::Lock(LockError::Held { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("another executor"), "{err}");
    let err = setup::check_login(&settings, rondo_reverse_sync::clock::system())
        .await
        .unwrap_err();
    assert!(
        matches!(err, SetupError::Lock(LockError::Held { .. })),
        "{err}"
    );
    drop(held);
    // Released: the lock can be taken again.
    assert!(setup::lock_account(&settings).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_task_wakes_on_new_changes_and_closes_the_browser_on_shutdown() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("SRV1001");
    rig.seed(&m).await;
    let cancel = CancellationToken::new();
    let handle = ExecutorHandle::spawn(
        rig.executor(),
        cancel.clone(),
        std::sync::Arc::new(rondo_reverse_sync::telemetry::Metrics::new()),
        rondo_reverse_sync::audit::AuditLoop::default(),
    );
    m.email = "via-webhook@example.org".into();
    let ids = rig.user_edit(&m).await;
    // What the webhook handler does after committing changes.
    handle.notifier().notify_one();
    let state = rig.state();
    let pushed = wait_for_sim(&state, Duration::from_secs(90), |s| {
        s.member("SRV1001").unwrap().communication.email1 == "via-webhook@example.org"
    })
    .await;
    assert!(pushed);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while rig.change(ids[0]).await.status != ChangeStatus::Synced {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not marked synced in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while !matches!(handle.status().state, ExecutorState::Idle) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            handle.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(30), handle.join())
        .await
        .expect("the executor task ends, browser closed");
    // The account is free again once the task ended.
    assert!(rondo_reverse_sync::sportlink::lock::AccountLock::acquire(
        rig.dir.path(),
        crate::support::chromium::USER
    )
    .is_ok());
    rig.finish().await;
}

/// `serve` (built by `startup::launch`) with `sportlink.dry_run`: the executor logs in, opens the
/// member's form and cancels; Sportlink receives no save and the change stays pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_dry_run_opens_forms_but_never_saves() {
    use rondo_reverse_sync::catalogue::Catalogue;

    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("DRY0002");
    rig.seed(&m).await;
    m.email = "droog@example.org".into();
    let ids = rig.user_edit(&m).await;

    let mut settings = rig.serve_settings();
    settings.sportlink.dry_run = true;
    let service = rrs_testkit::app::serve(&settings, Catalogue::builtin(), rig.sim.clock())
        .await
        .expect("serve starts");
    // The daemon runs once at start: wait until that dry run is recorded as finished.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let runs = rig.store.read(|c| c.list_runs(20, 0)).await.expect("runs");
        if runs
            .iter()
            .any(|r| r.kind == "sync" && r.dry_run && r.finished_at.is_some())
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no dry run finished: {runs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    service.shutdown();
    service.wait().await.expect("clean stop");
    let log = rig.state().request_log();
    assert!(
        log.iter()
            .any(|r| r.path == "/member/member-details/DRY0002/general"),
        "the form was opened: {log:?}"
    );
    assert!(log.iter().all(|r| !r.is_save()), "nothing saved: {log:?}");
    let c = rig.change(ids[0]).await;
    assert_eq!(c.status, ChangeStatus::Pending, "{c:?}");
    assert_eq!(c.attempts, 0, "{c:?}");
    assert_eq!(
        rig.state().member("DRY0002").unwrap().communication.email1,
        Member::jan("DRY0002").email
    );
    rig.finish().await;
}

/// Issue 13, part 2: the canary. `serve` with a canary member and a catalogue that no longer
/// matches Sportlink's pages pauses the executor at start-up with the diagnosis, before any
/// change is attempted; no save is made. With the catalogue fixed, the next start's canary passes
/// and the change is pushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_pauses_before_any_change_fails_and_lets_a_fixed_catalogue_through() {
    use rondo_reverse_sync::catalogue::Catalogue;

    use crate::support::rig::catalogue_expecting_heading;

    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let canary = Member::jan("CAN0001");
    rig.seed(&canary).await;
    let mut m = Member::jan("CAN0002");
    rig.seed(&m).await;
    m.email = "na-de-kanarie@example.org".into();
    let ids = rig.user_edit(&m).await;
    let mut settings = rig.serve_settings();
    settings.sportlink.canary_member = "CAN0001".into();
    settings.admin.token =
        rondo_reverse_sync::config::Secret::new("canary-test-token-0123456789abcdef0123456789");
    let client = reqwest::Client::new();

    let renamed = catalogue_expecting_heading("Communicatie", "Contactgegevens");
    let service = rrs_testkit::app::serve(&settings, renamed, rig.sim.clock())
        .await
        .expect("serve starts");
    let status_url = format!("http://127.0.0.1:{}/api/status", service.port());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        let status: serde_json::Value = client
            .get(&status_url)
            .bearer_auth("canary-test-token-0123456789abcdef0123456789")
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("json");
        if status["executor"]["state"] == "paused" {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not paused: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    service.shutdown();
    service.wait().await.expect("clean stop");
    let reason = status["executor"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(reason.contains("canary"), "{status}");
    assert!(
        reason.contains("\"Contactgegevens\": NOT FOUND"),
        "{status}"
    );
    assert!(reason.contains("section = \"Communicatie\""), "{status}");
    let log = rig.state().request_log();
    assert!(log.iter().all(|r| !r.is_save()), "no save: {log:?}");
    assert!(
        first_request_of(&rig.state(), "CAN0002").is_none(),
        "the pending change's member was not opened"
    );
    let c = rig.change(ids[0]).await;
    assert_eq!(c.attempts, 0, "{c:?}");

    // The catalogue is fixed: the canary passes at start-up and the change goes through.
    let service = rrs_testkit::app::serve(&settings, Catalogue::builtin(), rig.sim.clock())
        .await
        .expect("serve starts");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while rig.change(ids[0]).await.status != ChangeStatus::Synced {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            rig.change(ids[0]).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    service.shutdown();
    service.wait().await.expect("clean stop");
    assert_eq!(
        rig.state().member("CAN0002").unwrap().communication.email1,
        "na-de-kanarie@example.org"
    );
    rig.finish().await;
}

/// Issue 5's "a requeued change is pushed again", through the real parts: a change that failed
/// for good (Sportlink kept answering 500) is requeued over the admin API of `serve`, and the
/// service's own executor pushes it into the simulator and verifies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requeued_change_is_pushed_again_by_the_services_executor() {
    use rondo_reverse_sync::catalogue::Catalogue;

    const TOKEN: &str = "requeue-test-token-0123456789abcdef0123456789";
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("REQ0001");
    rig.seed(&m).await;
    m.email = "opnieuw@example.org".into();
    let ids = rig.user_edit(&m).await;

    // One attempt allowed, and Sportlink fails every save: the change fails for good.
    rig.state()
        .update_faults(|f| f.server_error_on_saves = 1_000);
    let mut executor = rig.executor_with(|s| s.max_attempts = 1);
    rig.run(&mut executor, None).await;
    executor.close().await;
    drop(executor); // the account lock goes with it
    assert_eq!(rig.change(ids[0]).await.status, ChangeStatus::Failed);
    rig.state().update_faults(|f| f.server_error_on_saves = 0);

    let mut settings = rig.serve_settings();
    settings.admin.token = rondo_reverse_sync::config::Secret::new(TOKEN);
    let service = rrs_testkit::app::serve(&settings, Catalogue::builtin(), rig.sim.clock())
        .await
        .expect("serve starts");
    let answer = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/api/changes/{}/requeue",
            service.port(),
            ids[0]
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("the admin API answers");
    assert!(answer.status().is_success(), "{:?}", answer.text().await);

    // A hang guard, not a timing claim.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while rig.change(ids[0]).await.status != ChangeStatus::Synced {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the requeued change was not pushed: {:?}",
            rig.change(ids[0]).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    service.shutdown();
    service.wait().await.expect("clean stop");
    assert_eq!(
        rig.state().member("REQ0001").unwrap().communication.email1,
        "opnieuw@example.org"
    );
    // Refused with 500 before the requeue, taken after it.
    let statuses: Vec<u16> = saves(&rig.state(), "REQ0001")
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    assert_eq!(statuses.first(), Some(&500), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&200), "{statuses:?}");
    rig.finish().await;
}

/// Stopping the service while the executor waits on a member's page that never finishes
/// rendering abandons that attempt instead of waiting out the action timeout (ten minutes
/// here, so without the abandon the stop runs into its hang guard): nothing was saved, nothing
/// is recorded, the change stays due with its attempts untouched. Found through the admin
/// tests, where a stop waited more than 30 s on a member Sportlink does not know.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_abandons_a_member_that_has_not_been_saved_yet() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("STP0001");
    rig.seed(&m).await;
    m.email = "gestopt@example.org".into();
    let ids = rig.user_edit(&m).await;
    // The member's sections never render within the test.
    rig.state().update_faults(|f| f.render_delay_ms = 600_000);
    stop_while_the_executor_waits(&rig, rig.serve_settings(), "opened the member", |s| {
        first_request_of(s, "STP0001").is_some()
    })
    .await;
    let change = rig.change(ids[0]).await;
    assert_eq!(change.status, ChangeStatus::Pending, "{change:?}");
    assert_eq!(
        change.attempts, 0,
        "an abandoned attempt is not counted: {change:?}"
    );
    assert!(change.last_error.is_none(), "{change:?}");
    assert!(
        saves(&rig.state(), "STP0001").is_empty(),
        "nothing was saved"
    );
    rig.finish().await;
}

/// A stop that abandons a *retry* still records the failure of the attempt before it, as a stop
/// during the backoff between the two always did: Sportlink answered the first save 500, the
/// retry waits on a page that does not finish, and the service is stopped then. The change stays
/// due with that one attempt counted and its error kept (an abandon that dropped it lost the
/// failure and its count).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_that_abandons_a_retry_records_the_failure_before_it() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("STP0002");
    rig.seed(&m).await;
    m.email = "na-een-fout@example.org".into();
    let ids = rig.user_edit(&m).await;
    rig.state().update_faults(|f| {
        f.server_error_on_saves = 1;
        f.render_delay_after_server_error_ms = Some(600_000);
    });
    let mut settings = rig.serve_settings();
    settings.sportlink.retry_backoff_ms = vec![100; 3];
    // The refused save, then the retry on the member's page.
    stop_while_the_executor_waits(&rig, settings, "retried the member", |s| {
        let log = s.request_log();
        let Some(refused) = log
            .iter()
            .find(|r| r.is_save() && r.status == 500)
            .map(|r| r.time)
        else {
            return false;
        };
        let page = "/member/member-details/STP0002/";
        log.iter().any(|r| {
            r.time > refused
                && (r.path.starts_with(page) || r.member_id.as_deref() == Some("STP0002"))
        })
    })
    .await;
    let change = rig.change(ids[0]).await;
    assert_eq!(change.status, ChangeStatus::Pending, "{change:?}");
    assert_eq!(
        change.attempts, 1,
        "the refused attempt is counted, the abandoned retry is not: {change:?}"
    );
    assert!(
        change.last_error.is_some(),
        "the refused attempt's error is kept: {change:?}"
    );
    let statuses: Vec<u16> = saves(&rig.state(), "STP0002")
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    assert_eq!(
        statuses,
        vec![500],
        "only the refused save reached Sportlink"
    );
    rig.finish().await;
}

/// Runs `serve` on the rig with pages allowed ten minutes (action timeout 600 s), waits until
/// the simulator shows `on_page` (a hang guard, not a timing claim), stops the service, and
/// asserts that the stop did not wait for the page.
async fn stop_while_the_executor_waits(
    rig: &Rig,
    mut settings: Settings,
    what: &str,
    on_page: impl Fn(&rrs_standins::simulator::SimState) -> bool,
) {
    use rondo_reverse_sync::catalogue::Catalogue;

    settings.sportlink.action_timeout_secs = 600;
    let service = rrs_testkit::app::serve(&settings, Catalogue::builtin(), rig.sim.clock())
        .await
        .expect("serve starts");
    let there = wait_for_sim(&rig.state(), Duration::from_secs(120), on_page).await;
    assert!(there, "the executor never {what}");
    service.shutdown();
    tokio::time::timeout(Duration::from_secs(60), service.wait())
        .await
        .expect("the stop does not wait for the page (action timeout 600 s)")
        .expect("clean stop");
}

//! Saves that fail: a validation message, a server error, a stored value that differs.

use rondo_reverse_sync::alerts::{AlertEvent, AlertSender};
use rondo_reverse_sync::domain::ChangeStatus;
use rondo_reverse_sync::sportlink::executor::MemberResult;

use crate::support::chromium::browser_tests_skipped;
use crate::support::rig::{assert_done, saves, Member, Rig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validation_error_leaves_the_change_pending_with_sportlinks_message() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("VAL0001");
    rig.seed(&m).await;
    let old_email = m.email.clone();
    m.email = "geen-apenstaartje".into();
    let ids = rig.user_edit(&m).await;
    let mut executor = rig.executor();
    let report = rig.run(&mut executor, None).await;
    executor.close().await;
    let MemberResult::Failed {
        error, attempts, ..
    } = &report.members[0].result
    else {
        panic!("{report:?}");
    };
    assert!(error.contains("Ongeldig e-mailadres"), "{error}");
    assert_eq!(
        *attempts, 1,
        "a refused value is not retried within the run"
    );
    let c = rig.change(ids[0]).await;
    assert_eq!(c.status, ChangeStatus::Pending);
    assert!(c.last_error.unwrap().contains("Ongeldig e-mailadres"));
    assert!(c.next_attempt_at.is_some());
    assert_eq!(
        rig.state().member("VAL0001").unwrap().communication.email1,
        old_email
    );
    let statuses: Vec<u16> = saves(&rig.state(), "VAL0001").iter().map(|s| s.0).collect();
    assert_eq!(statuses, vec![400]);
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_is_retried() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("SRV0001");
    rig.seed(&m).await;
    m.email = "volhouden@example.org".into();
    let ids = rig.user_edit(&m).await;
    rig.state().update_faults(|f| f.server_error_on_saves = 2);
    let report = rig.push().await;
    assert_done(&report, 1);
    let statuses: Vec<u16> = saves(&rig.state(), "SRV0001").iter().map(|s| s.0).collect();
    assert_eq!(statuses, vec![500, 500, 200]);
    assert_eq!(rig.change(ids[0]).await.status, ChangeStatus::Synced);
    assert_eq!(
        rig.state().member("SRV0001").unwrap().communication.email1,
        "volhouden@example.org"
    );
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_that_persists_is_recorded_and_retried_in_a_later_run() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("SRV0002");
    rig.seed(&m).await;
    m.freescout_id = "9".into();
    let ids = rig.user_edit(&m).await;
    rig.state().update_faults(|f| f.server_error_on_saves = 4);
    let mut executor = rig.executor();
    let first = rig.run(&mut executor, None).await;
    let MemberResult::Failed {
        attempts, error, ..
    } = &first.members[0].result
    else {
        panic!("{first:?}");
    };
    assert_eq!(*attempts, 4, "one try and three retries");
    // Sportlink's own words, whatever they are in this variant.
    let said = rig.state().variant().server_error_text;
    assert!(error.contains(&said), "{error} / {said}");
    let c = rig.change(ids[0]).await;
    assert_eq!((c.status.as_str(), c.attempts), ("pending", 1));
    // The next run (the change is due again at once in this rig) succeeds.
    let second = rig.run(&mut executor, None).await;
    executor.close().await;
    assert!(
        matches!(second.members[0].result, MemberResult::Done { .. }),
        "{second:?}"
    );
    assert_eq!(rig.change(ids[0]).await.status, ChangeStatus::Synced);
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_value_that_differs_from_the_typed_one_is_not_synced() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("DIF0001");
    rig.seed(&m).await;
    m.email = "precies@example.org".into();
    let ids = rig.user_edit(&m).await;
    rig.state()
        .update_faults(|f| f.store_differs = Some("Email1".into()));
    let mut executor = rig.executor();
    let report = rig.run(&mut executor, None).await;
    executor.close().await;
    let MemberResult::Failed { error, .. } = &report.members[0].result else {
        panic!("{report:?}");
    };
    assert!(error.contains("not marked synced"), "{error}");
    let c = rig.change(ids[0]).await;
    assert_eq!(c.status, ChangeStatus::Pending);
    assert!(c.synced_at.is_none());
    let stored = rig.state().member("DIF0001").unwrap().communication.email1;
    assert_ne!(
        stored, "precies@example.org",
        "the simulator did store something else"
    );
    let (sportlink_modified, _) = rig.timestamps("DIF0001", "email").await;
    assert!(sportlink_modified.is_none());
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_are_bounded_across_runs_then_the_change_is_failed_and_alerted() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("MAX0001");
    rig.seed(&m).await;
    m.email = "nog-steeds-fout".into();
    let ids = rig.user_edit(&m).await;
    let (alerts, mut raised) = AlertSender::channel(16);
    let mut executor = rig.executor_with(|s| s.max_attempts = 2);
    executor.set_alerts(alerts);
    let first = rig.run(&mut executor, None).await;
    assert!(
        matches!(&first.members[0].result, MemberResult::Failed { gave_up, .. } if gave_up.is_empty())
    );
    assert_eq!(rig.change(ids[0]).await.status, ChangeStatus::Pending);
    let second = rig.run(&mut executor, None).await;
    // Nothing is due any more: a third run leaves Sportlink alone.
    rig.state().clear_log();
    let third = rig.run(&mut executor, None).await;
    executor.close().await;
    let MemberResult::Failed { gave_up, .. } = &second.members[0].result else {
        panic!("{second:?}");
    };
    assert_eq!(gave_up, &ids);
    let c = rig.change(ids[0]).await;
    assert_eq!(c.status, ChangeStatus::Failed);
    assert_eq!(c.attempts, 2);
    assert!(c.status_reason.unwrap().contains("Ongeldig e-mailadres"));
    let alert = raised.try_recv().expect("alerted").event;
    assert!(
        matches!(&alert, AlertEvent::ChangeFailed { change_id, field, .. } if *change_id == ids[0] && field == "email"),
        "{alert:?}"
    );
    assert!(third.members.is_empty());
    assert!(rig.state().request_log().is_empty());
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_missing_from_a_select_is_refused_without_saving() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("SEL0001");
    rig.seed(&m).await;
    m.country = "XQ".into();
    m.city = "Nergenshuizen".into();
    let ids = rig.user_edit(&m).await;
    let mut executor = rig.executor();
    let report = rig.run(&mut executor, None).await;
    executor.close().await;
    let MemberResult::Failed {
        error,
        attempts,
        ui_drift,
        ..
    } = &report.members[0].result
    else {
        panic!("{report:?}");
    };
    assert!(
        error.contains("country_code") && error.contains("not one of the options"),
        "{error}"
    );
    assert_eq!(*attempts, 1);
    assert!(!ui_drift);
    // Nothing of the section was saved, not even the city typed before the country.
    assert!(saves(&rig.state(), "SEL0001").is_empty());
    assert_eq!(
        rig.state().member("SEL0001").unwrap().address.city,
        "Amsterdam"
    );
    for id in ids {
        assert_eq!(rig.change(id).await.status, ChangeStatus::Pending);
    }
    rig.finish().await;
}

//! The conflict guard at push time (L = live, O = expected old, N = new), and superseded changes.

use rondo_reverse_sync::alerts::{AlertEvent, AlertSender};
use rondo_reverse_sync::domain::{ChangeStatus, FieldName};
use rondo_reverse_sync::sportlink::executor::{FieldDecision, MemberResult};

use crate::support::chromium::browser_tests_skipped;
use crate::support::rig::{assert_done, knvb, saves, Member, Rig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_equals_new_is_synced_without_a_write() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("CON0001");
    rig.seed(&m).await;
    m.email = "al-gedaan@example.org".into();
    // Someone already typed the new value into Sportlink.
    rig.state().seed_member(m.sim());
    let ids = rig.user_edit(&m).await;
    let report = rig.push().await;
    assert_done(&report, 1);
    assert_eq!(
        report.members[0].fields[0].decision,
        FieldDecision::AlreadyInSync
    );
    assert!(saves(&rig.state(), "CON0001").is_empty(), "no write");
    assert_eq!(rig.change(ids[0]).await.status, ChangeStatus::Synced);
    assert!(rig.conflicts("CON0001").await.is_empty());
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_equals_old_is_written() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("CON0002");
    rig.seed(&m).await;
    m.mobile = "+31655554444".into();
    let ids = rig.user_edit(&m).await;
    let mut executor = rig.executor();
    let report = rig.run(&mut executor, None).await;
    executor.close().await;
    assert_eq!(report.members[0].fields[0].decision, FieldDecision::Write);
    assert_eq!(report.members[0].fields[0].live_value, "0612345678");
    let posted = saves(&rig.state(), "CON0002");
    assert_eq!(posted.len(), 1);
    assert!(
        posted[0]
            .1
            .contains(&("Mobile1".to_owned(), "0655554444".to_owned())),
        "{posted:?}"
    );
    assert_eq!(rig.change(ids[0]).await.status, ChangeStatus::Synced);
    assert!(rig.conflicts("CON0002").await.is_empty());
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_is_other_and_sportlink_wins() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("CON0003");
    rig.seed(&m).await;
    // A first edit is pushed: Sportlink's side of the field now has a fresh timestamp.
    m.email = "eerste@example.org".into();
    rig.user_edit(&m).await;
    let mut executor = rig.executor();
    rig.run(&mut executor, None).await;
    // The administrator changes the e-mail in Sportlink directly...
    let mut in_sportlink = rig.state().member("CON0003").unwrap();
    in_sportlink.communication.email1 = "door-admin@example.org".into();
    rig.state().seed_member(in_sportlink);
    // ...and an older Rondo Club edit arrives late (its modified_gmt is before our push).
    m.email = "laat@example.org".into();
    let ids = rig.user_edit(&m).await;
    rig.state().clear_log();
    let (alerts, mut raised) = AlertSender::channel(16);
    executor.set_alerts(alerts);
    let report = rig.run(&mut executor, None).await;
    executor.close().await;
    let alert = raised.try_recv().expect("a lost conflict is alerted").event;
    assert!(
        matches!(&alert, AlertEvent::ConflictLost { field, sportlink_value, .. }
            if field == "email" && sportlink_value == "door-admin@example.org"),
        "{alert:?}"
    );
    assert!(
        matches!(
            report.members[0].result,
            MemberResult::Done {
                synced: 0,
                conflicts_lost: 1
            }
        ),
        "{report:?}"
    );
    assert_eq!(
        report.members[0].fields[0].decision,
        FieldDecision::ConflictLost {
            reason: "sportlink_newer".into()
        }
    );
    assert!(saves(&rig.state(), "CON0003").is_empty(), "no write");
    assert_eq!(
        rig.state().member("CON0003").unwrap().communication.email1,
        "door-admin@example.org"
    );
    let c = rig.change(ids[0]).await;
    assert_eq!(c.status, ChangeStatus::ConflictLost);
    assert!(c.status_reason.unwrap().contains("sportlink_newer"));
    let audit = rig.conflicts("CON0003").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].winning_system, "sportlink");
    assert_eq!(audit[0].resolution_reason, "sportlink_newer");
    assert_eq!(
        audit[0].sportlink_value.as_deref(),
        Some("door-admin@example.org")
    );
    assert_eq!(
        audit[0].rondo_club_value.as_deref(),
        Some("laat@example.org")
    );
    assert_eq!(audit[0].change_id, Some(ids[0]));
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_is_other_and_rondo_club_wins() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("CON0004");
    rig.seed(&m).await;
    // Sportlink was changed by someone, but we know nothing of when (no Sportlink timestamp);
    // the Rondo Club edit has one: Rondo Club wins.
    let mut in_sportlink = m.sim();
    in_sportlink.communication.email1 = "onbekend@example.org".into();
    rig.state().seed_member(in_sportlink);
    m.email = "vrijwilliger@example.org".into();
    let ids = rig.user_edit(&m).await;
    let mut executor = rig.executor();
    let report = rig.run(&mut executor, None).await;
    executor.close().await;
    assert_eq!(
        report.members[0].fields[0].decision,
        FieldDecision::WriteAfterConflict {
            reason: "only_rondo_club_has_history".into()
        }
    );
    assert_eq!(
        rig.state().member("CON0004").unwrap().communication.email1,
        "vrijwilliger@example.org"
    );
    assert_eq!(saves(&rig.state(), "CON0004").len(), 1);
    assert_eq!(rig.change(ids[0]).await.status, ChangeStatus::Synced);
    let audit = rig.conflicts("CON0004").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].winning_system, "rondo_club");
    assert_eq!(
        audit[0].sportlink_value.as_deref(),
        Some("onbekend@example.org")
    );
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_latest_of_superseded_changes_is_written() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("SUP0001");
    rig.seed(&m).await;
    m.email = "tussenstap@example.org".into();
    let first = rig.user_edit(&m).await;
    m.email = "definitief@example.org".into();
    let second = rig.user_edit(&m).await;
    let report = rig.push().await;
    assert_done(&report, 1);
    let posted = saves(&rig.state(), "SUP0001");
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert!(posted[0]
        .1
        .contains(&("Email1".to_owned(), "definitief@example.org".to_owned())));
    assert_eq!(rig.change(first[0]).await.status, ChangeStatus::Superseded);
    assert_eq!(rig.change(second[0]).await.status, ChangeStatus::Synced);
    assert_eq!(
        rig.state().member("SUP0001").unwrap().communication.email1,
        "definitief@example.org"
    );
    rig.finish().await;
}

/// A run saved a value and was killed before recording it; a newer edit superseded that change.
/// Sportlink then holds an earlier value of the newer change's own chain: our write, not a
/// Sportlink edit, so no conflict (found by the crash test with the executor).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrecorded_earlier_write_of_the_chain_is_ours_not_a_conflict() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("CON0090");
    rig.seed(&m).await;
    m.email = "tussenstap@example.org".into();
    let first = rig.user_edit(&m).await;
    rig.state().seed_member(m.sim());
    m.email = "eindstand@example.org".into();
    let second = rig.user_edit(&m).await;
    let mut executor = rig.executor();
    let report = rig.run(&mut executor, None).await;
    executor.close().await;
    assert_eq!(
        report.members[0].fields[0].decision,
        FieldDecision::Write,
        "{report:?}"
    );
    let posted = saves(&rig.state(), "CON0090");
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert!(posted[0]
        .1
        .contains(&("Email1".to_owned(), "eindstand@example.org".to_owned())));
    assert_eq!(rig.change(first[0]).await.status, ChangeStatus::Superseded);
    assert_eq!(rig.change(second[0]).await.status, ChangeStatus::Synced);
    assert!(rig.conflicts("CON0090").await.is_empty());
    rig.finish().await;
}

/// Issue 15.5: a volunteer edits B; a Sportlink user then changes the field to C; the forward
/// sync copies C into Rondo Club and reports it with its own (later) copy time. The copy time is
/// not a Rondo Club edit: the resolver compares the volunteer's edit with Sportlink's change, so
/// the stale B is not written over the newer C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_sync_copy_of_sportlinks_newer_value_is_not_overwritten() {
    use std::collections::BTreeMap;

    use chrono::{TimeDelta, Utc};
    use rondo_reverse_sync::store::ForwardSyncReport;

    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("CON0009");
    rig.seed(&m).await;
    m.email = "vrijwilliger@example.org".into();
    let ids = rig.user_edit(&m).await;
    // Later, someone changes the e-mail in Sportlink itself...
    let mut in_sportlink = rig.state().member("CON0009").unwrap();
    in_sportlink.communication.email1 = "in-sportlink@example.org".into();
    rig.state().seed_member(in_sportlink);
    // ...and the forward sync copies it into Rondo Club now and reports that.
    let report = ForwardSyncReport {
        knvb_id: knvb("CON0009"),
        fields: BTreeMap::from([(
            FieldName::parse("email").unwrap(),
            serde_json::json!("in-sportlink@example.org"),
        )]),
        rondo_club_modified: Utc::now(),
        sportlink_modified: Some(Utc::now() - TimeDelta::minutes(10)),
    };
    rig.store
        .write(move |c| c.record_forward_sync(&report, Utc::now()))
        .await
        .expect("report recorded");
    let mut executor = rig.executor();
    let run = rig.run(&mut executor, None).await;
    executor.close().await;
    assert!(
        saves(&rig.state(), "CON0009").is_empty(),
        "no write: {run:?}"
    );
    assert_eq!(
        rig.state().member("CON0009").unwrap().communication.email1,
        "in-sportlink@example.org"
    );
    let c = rig.change(ids[0]).await;
    assert_eq!(c.status, ChangeStatus::ConflictLost, "{c:?}");
    let audit = rig.conflicts("CON0009").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].winning_system, "sportlink");
    assert_eq!(audit[0].resolution_reason, "sportlink_newer");
    rig.finish().await;
}

/// Issue 15.6: a decision that led to a write is audited even when the attempt does not get to
/// its end. Here the session expires right after Sportlink took the save: the redo after the
/// new login finds the value already there (no decision of its own), and the audit row of the
/// write is there all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_decision_that_led_to_a_write_is_audited_when_the_session_expires_after_it() {
    use std::time::Duration;

    use crate::support::chromium::wait_for_sim;

    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("CON0010");
    rig.seed(&m).await;
    let mut in_sportlink = m.sim();
    in_sportlink.communication.email1 = "onbekend@example.org".into();
    rig.state().seed_member(in_sportlink);
    m.email = "vrijwilliger@example.org".into();
    let ids = rig.user_edit(&m).await;
    let mut executor = rig.executor();
    let state = rig.state();
    // End every session the moment the save is in.
    let expirer = tokio::spawn(async move {
        let saved = wait_for_sim(&state, Duration::from_secs(90), |s| {
            !s.saves_for("CON0010").is_empty()
        })
        .await;
        state.expire_all_sessions();
        saved
    });
    let report = rig.run(&mut executor, None).await;
    executor.close().await;
    assert!(expirer.await.expect("join"), "the save happened");
    assert_eq!(
        rig.change(ids[0]).await.status,
        ChangeStatus::Synced,
        "{report:?}"
    );
    assert_eq!(saves(&rig.state(), "CON0010").len(), 1, "written once");
    let audit = rig.conflicts("CON0010").await;
    assert_eq!(audit.len(), 1, "{audit:?} {report:?}");
    assert_eq!(audit[0].winning_system, "rondo_club");
    rig.finish().await;
}

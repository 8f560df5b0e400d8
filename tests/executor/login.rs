//! Logging in: TOTP, one session for many members, wrong password, a refused reused code, and
//! sessions that expire on a navigation or on a save.

use std::time::Duration;

use rondo_reverse_sync::config::Secret;
use rondo_reverse_sync::domain::ChangeStatus;
use rondo_reverse_sync::sportlink::browser::SportlinkSession;
use rondo_reverse_sync::sportlink::driver::SportlinkDriver;
use rondo_reverse_sync::sportlink::executor::{ExecutorState, MemberResult, StopReason};
use rrs_standins::simulator::SimState;

use crate::support::chromium::{browser_tests_skipped, session_settings};
use crate::support::rig::{saves, Member, Rig};

fn otp_posts(state: &SimState) -> Vec<u16> {
    state
        .request_log()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.contains("/login-actions/otp"))
        .map(|r| r.status)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_totp_login_serves_many_members() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    for n in 1..=3 {
        let mut m = Member::jan(&format!("LOG000{n}"));
        rig.seed(&m).await;
        m.email = format!("lid{n}@example.org");
        rig.user_edit(&m).await;
    }
    let mut executor = rig.executor();
    let report = rig.run(&mut executor, None).await;
    let logins = executor.driver().session().stats().logins;
    executor.close().await;
    assert_eq!(report.members.len(), 3);
    assert!(report
        .members
        .iter()
        .all(|m| matches!(m.result, MemberResult::Done { synced: 1, .. })));
    assert_eq!(logins, 1);
    assert_eq!(
        otp_posts(&rig.state()).len(),
        1,
        "one code for the whole run"
    );
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_a_clear_error_and_marks_nothing() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("PWD0001");
    rig.seed(&m).await;
    m.email = "x@example.org".into();
    let ids = rig.user_edit(&m).await;
    let wrong = "not-the-password-8813";
    let mut executor = rig.executor_with(|s| s.password = Secret::new(wrong));
    let report = rig.run(&mut executor, None).await;
    let status = executor.status_board().status();
    executor.close().await;
    let Some(StopReason::LoginRefused { message }) = &report.stopped else {
        panic!("expected a refused login: {report:?}");
    };
    assert!(
        message.contains("Ongeldige gebruikersnaam of wachtwoord"),
        "{message}"
    );
    assert!(!message.contains(wrong));
    assert!(!format!("{report:?}").contains(wrong));
    // Nothing marked: the change is untouched.
    let c = rig.change(ids[0]).await;
    assert_eq!(c.status, ChangeStatus::Pending);
    assert_eq!(c.attempts, 0);
    assert_eq!(c.last_error, None);
    assert!(saves(&rig.state(), "PWD0001").is_empty());
    // The executor pauses rather than hammering the login with a wrong password.
    assert!(
        matches!(status.state, ExecutorState::Paused { .. }),
        "{status:?}"
    );
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reused_code_waits_for_the_next_window() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    // Someone else (another tool with the same account) and we log in within one window. Both
    // browsers are started first, so the two logins follow each other closely.
    let mut other = SportlinkSession::new(session_settings(&rig.sim)).unwrap();
    let mut ours = SportlinkSession::new(session_settings(&rig.sim)).unwrap();
    let launched = async {
        other.page().await?;
        ours.page().await?;
        Ok::<_, rondo_reverse_sync::sportlink::browser::SessionError>(())
    };
    let launched = tokio::time::timeout(Duration::from_secs(60), launched).await;
    if !matches!(launched, Ok(Ok(()))) {
        other.close().await;
        ours.close().await;
        panic!("browsers did not start: {launched:?}");
    }
    // Both logins within one window: start them at the beginning of one (in controlled time).
    rig.otp_clock.to_next_window();
    let first = tokio::time::timeout(Duration::from_secs(60), other.relogin()).await;
    let other_step = other.last_used_otp_step();
    other.close().await;
    if !matches!(first, Ok(Ok(()))) {
        ours.close().await;
        panic!("the other login failed: {first:?}");
    }
    assert_eq!(otp_posts(&rig.state()).len(), 1);

    // Our session has never used a code, so its first try is this window's code: refused.
    let skipped_before = rig.otp_clock.skipped();
    let login = tokio::time::timeout(Duration::from_secs(90), ours.relogin()).await;
    let step_used = ours.last_used_otp_step();
    ours.close().await;
    assert!(
        matches!(login, Ok(Ok(()))),
        "login succeeds in the next window: {login:?}"
    );
    let posts = otp_posts(&rig.state());
    assert_eq!(posts.len(), 3, "refused once, then accepted: {posts:?}");
    assert_eq!(posts[1], 200, "the refused code re-shows the form");
    assert!(matches!(posts[2], 302 | 303), "{posts:?}");
    assert_eq!(
        step_used,
        other_step.map(|s| s + 1),
        "the code of the next window"
    );
    // It waited for the next window (on the controlled clock, so the test did not).
    assert!(
        rig.otp_clock.skipped() > skipped_before,
        "the session waited for the next window"
    );
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_process_never_reuses_the_code_of_the_previous_one() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    rig.otp_clock.to_next_window();
    let mut m = Member::jan("OTP0001");
    rig.seed(&m).await;
    m.email = "a@example.org".into();
    rig.user_edit(&m).await;
    let mut first = rig.executor();
    rig.run(&mut first, None).await;
    let first_step = first.driver().last_otp_step();
    first.close().await;
    drop(first); // releases the account lock, which remembers the step used

    m.email = "b@example.org".into();
    rig.user_edit(&m).await;
    let mut second = rig.executor();
    let report = rig.run(&mut second, None).await;
    let second_step = second.driver().last_otp_step();
    second.close().await;
    assert!(
        second_step > first_step,
        "{second_step:?} after {first_step:?}"
    );
    assert!(
        matches!(report.members[0].result, MemberResult::Done { .. }),
        "{report:?}"
    );
    // Two logins, two codes, none refused: the second took a later window's code (the next
    // one's, ahead of time, which the simulator accepts as RFC 6238 skew).
    let posts = otp_posts(&rig.state());
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert!(posts.iter().all(|s| matches!(s, 302 | 303)), "{posts:?}");
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_on_navigation_logs_in_again() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut a = Member::jan("EXP0001");
    let mut b = Member::jan("EXP0002");
    rig.seed(&a).await;
    rig.seed(&b).await;
    a.email = "a@example.org".into();
    rig.user_edit(&a).await;
    let mut executor = rig.executor();
    rig.run(&mut executor, Some("EXP0001")).await;

    // The session ends while the browser keeps its (now invalid) cookie.
    rig.state().expire_all_sessions();
    b.email = "b@example.org".into();
    let ids = rig.user_edit(&b).await;
    let report = rig.run(&mut executor, None).await;
    let logins = executor.driver().session().stats().logins;
    executor.close().await;
    assert!(
        matches!(
            report.members[0].result,
            MemberResult::Done { synced: 1, .. }
        ),
        "{report:?}"
    );
    assert_eq!(logins, 2);
    assert_eq!(
        rig.state().member("EXP0002").unwrap().communication.email1,
        "b@example.org"
    );
    assert_eq!(rig.change(ids[0]).await.status, ChangeStatus::Synced);
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_on_save_logs_in_again_and_redoes_the_page() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("EXP0003");
    rig.seed(&m).await;
    m.email = "na-verlopen@example.org".into();
    m.freescout_id = "777".into();
    let ids = rig.user_edit(&m).await;
    rig.state()
        .update_faults(|f| f.expire_session_on_next_save = true);
    let mut executor = rig.executor();
    let report = rig.run(&mut executor, None).await;
    let logins = executor.driver().session().stats().logins;
    executor.close().await;
    assert!(
        matches!(
            report.members[0].result,
            MemberResult::Done { synced: 2, .. }
        ),
        "{report:?}"
    );
    assert_eq!(logins, 2);
    let statuses: Vec<u16> = saves(&rig.state(), "EXP0003").iter().map(|s| s.0).collect();
    assert_eq!(
        statuses,
        vec![401, 200, 200],
        "refused save, redone save, other page"
    );
    let stored = rig.state().member("EXP0003").unwrap();
    assert_eq!(stored.communication.email1, "na-verlopen@example.org");
    assert_eq!(stored.remark(3), Some("777"));
    for id in ids {
        assert_eq!(rig.change(id).await.status, ChangeStatus::Synced);
    }
    rig.finish().await;
}

//! Fault soak (issue #6, reliability test 2): the executor against the Sportlink simulator with
//! session expiry, slow responses, server errors on save and validation errors all switched on;
//! then UI drift, which must trip the circuit breaker and stop all traffic to Sportlink.
//!
//! Size: 200 members, as the issue asks. The re-logins after a session expiry need a fresh TOTP
//! window (one is never used twice); on the test clock (`SkipClock`) that is a jump, not a wait,
//! so the whole test takes about two minutes alone on two idle cores (five on real windows);
//! every fault fires several times (asserted below). At 200 members a session expiry also lands on opening a member, which used
//! to cost the change an attempt (and, with two attempts, the invalid e-mail's Sportlink message):
//! it now costs a login, as it does on a form.
//!
//! Skipped only under `RRS_SKIP_BROWSER_TESTS=1`; without Chromium it fails.

use std::time::{Duration, Instant};

use rondo_reverse_sync::domain::ChangeStatus;
use rondo_reverse_sync::sportlink::executor::{ExecutorState, MemberResult, StopReason};
use rrs_standins::simulator::{Faults, SimState};
use tokio_util::sync::CancellationToken;

use rrs_testkit::chromium::browser_tests_skipped;
use rrs_testkit::rig::{first_request_of, Member, Rig};

/// Members in the faulty part (see the top of the file).
const MEMBERS: usize = 200;
/// Every `INVALID_EVERY`-th member gets an e-mail address without '@'.
const INVALID_EVERY: usize = 6;
/// A session is refused on its (N+1)-th request.
const SESSION_REQUESTS: u32 = 200;
/// A server error is armed whenever the simulator has seen another this many saves.
const SERVER_ERROR_EVERY_SAVES: usize = 9;
/// A hang guard for one run over all members with every fault on (it takes about 0.5 s a member).
const FAULTY_RUN_LIMIT: Duration = Duration::from_secs(900);
/// Runs "like a daemon": at most this many until nothing is due.
const MAX_RUNS: usize = 6;
/// Drift part: the breaker threshold and the members with a change.
const BREAKER_THRESHOLD: u32 = 3;
const DRIFT_MEMBERS: usize = 5;

fn knvb_id(prefix: &str, i: usize) -> String {
    format!("{prefix}{i:04}")
}

fn is_invalid(i: usize) -> bool {
    i % INVALID_EVERY == 3
}

/// One user edit per member, on different pages and sections.
fn edit(i: usize, m: &mut Member) {
    if is_invalid(i) {
        m.email = format!("lid{i}-zonder-apenstaartje.nl");
        return;
    }
    match i % 3 {
        0 => m.email = format!("nieuw{i}@example.org"),
        1 => m.mobile = format!("+316{:08}", 20_000_000 + i),
        _ => m.freescout_id = format!("{}", 5_000 + i),
    }
}

fn saves_in(state: &SimState) -> Vec<u16> {
    state
        .request_log()
        .iter()
        .filter(|r| r.is_save())
        .map(|r| r.status)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_faults_every_change_ends_correctly_and_drift_trips_the_breaker() {
    if browser_tests_skipped() {
        return;
    }
    let started = Instant::now();
    let rig = Rig::start().await;
    // The faults are this test's subject. The variant's in-page rendering delays (drawn per
    // test, up to 1.2 s a section) set its length, from 2 to 5½ minutes for the same work; they
    // have their own tests.
    rig.without_section_delays();

    // Sportlink and the baselines; one user edit per member through the detection path.
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut change_ids = Vec::new();
    for i in 0..MEMBERS {
        let m = Member::jan(&knvb_id("SOK", i));
        rig.seed(&m).await;
        let mut edited = m.clone();
        edit(i, &mut edited);
        let ids = rig.user_edit(&edited).await;
        assert_eq!(ids.len(), 1, "one change per member: {ids:?}");
        change_ids.push(ids[0]);
        before.push(m);
        after.push(edited);
    }

    // All faults at once.
    let state = rig.state();
    state.update_faults(|f| {
        f.session_expire_after_requests = Some(SESSION_REQUESTS);
        f.slow_response_ms = 25;
        f.server_error_on_saves = 1;
        f.validation_error_on_save = Some("Tijdelijk niet mogelijk".into());
    });
    // More server errors spread over the run: armed as the saves come in.
    let injector = {
        let state = state.clone();
        let stop = CancellationToken::new();
        let stop_task = stop.clone();
        let task = tokio::spawn(async move {
            let mut armed_at = 0;
            while !stop_task.is_cancelled() {
                let saves = state.request_log().iter().filter(|r| r.is_save()).count();
                if saves >= armed_at + SERVER_ERROR_EVERY_SAVES {
                    armed_at = saves;
                    state.update_faults(|f| f.server_error_on_saves = 1);
                }
                tokio::select! {
                    _ = stop_task.cancelled() => {}
                    _ = tokio::time::sleep(Duration::from_millis(25)) => {}
                }
            }
        });
        (stop, task)
    };

    let mut executor = rig.executor_with(|s| {
        s.max_attempts = 2;
        s.retry_backoff_ms = vec![50; 3];
        s.circuit_breaker_threshold = BREAKER_THRESHOLD;
    });
    let board = executor.status_board();
    let mut runs = 0;
    loop {
        assert!(runs < MAX_RUNS, "still work due after {MAX_RUNS} runs");
        runs += 1;
        let report = rig.run_within(&mut executor, FAULTY_RUN_LIMIT).await;
        assert_eq!(report.stopped, None, "run {runs}: {report:?}");
        assert!(
            report
                .members
                .iter()
                .all(|m| !matches!(m.result, MemberResult::Failed { ui_drift: true, .. })),
            "no fault here is UI drift: {report:?}"
        );
        if report.members.is_empty() {
            break;
        }
    }
    injector.0.cancel();
    injector.1.await.expect("fault injector");
    let faulty_secs = started.elapsed().as_secs_f64();

    // The breaker never tripped.
    let status = board.status();
    assert!(
        !matches!(status.state, ExecutorState::Paused { .. }),
        "{status:?}"
    );
    assert_eq!(status.consecutive_drift_failures, 0);

    // The faults did happen.
    let log = state.request_log();
    let statuses = saves_in(&state);
    assert!(
        statuses.iter().filter(|s| **s == 500).count() >= 3,
        "server errors: {statuses:?}"
    );
    let logins = log
        .iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/auth/realms/"))
        .count();
    assert!(
        logins >= 2,
        "the session expired at least once ({logins} logins)"
    );
    assert!(state.faults().validation_error_on_save.is_none(), "used");
    let faulty_requests = log.len();

    // Every change in a correct state, and Sportlink holds exactly what was asked.
    for i in 0..MEMBERS {
        let id = knvb_id("SOK", i);
        let change = rig.change(change_ids[i]).await;
        let stored = state.member(&id).expect("member still there");
        if is_invalid(i) {
            assert_ne!(change.status, ChangeStatus::Synced, "{change:?}");
            assert!(change.synced_at.is_none(), "{change:?}");
            let message = match change.status.as_str() {
                "pending" => change.last_error.clone(),
                "failed" => change.status_reason.clone(),
                other => panic!("{id}: unexpected status {other}: {change:?}"),
            };
            assert!(
                message
                    .as_deref()
                    .is_some_and(|m| m.contains("Ongeldig e-mailadres")),
                "{id}: Sportlink's message is kept: {change:?}"
            );
            assert_eq!(stored, before[i].sim(), "{id}: nothing written");
            assert!(
                state
                    .saves_for(&id)
                    .iter()
                    .all(|s| !(200..300).contains(&s.status)),
                "{id}: no save went through"
            );
        } else {
            assert_eq!(change.status, ChangeStatus::Synced, "{id}: {change:?}");
            assert_eq!(stored, after[i].sim(), "{id}: only the edit was written");
        }
    }
    let counts = rig.store.read(|c| c.change_counts()).await.expect("counts");
    let invalid = (0..MEMBERS).filter(|i| is_invalid(*i)).count() as u64;
    assert_eq!(counts.synced, MEMBERS as u64 - invalid, "{counts:?}");
    assert_eq!(counts.pending + counts.failed, invalid, "{counts:?}");

    // UI drift: Sportlink's page changed and the Communicatie section is no longer where the
    // contract says. The same executor (a daemon keeps running) trips its breaker after
    // BREAKER_THRESHOLD members and sends nothing more.
    state.set_faults(Faults {
        slow_response_ms: 25,
        renamed_sections: vec![("Communicatie".into(), "Contactgegevens".into())],
        ..Faults::default()
    });
    for i in 0..DRIFT_MEMBERS {
        let mut m = Member::jan(&knvb_id("DRF", i));
        rig.seed(&m).await;
        m.email = format!("drift{i}@example.org");
        rig.user_edit(&m).await;
    }
    state.clear_log();
    let report = rig.run(&mut executor, None).await;
    assert_eq!(
        report.members.len(),
        BREAKER_THRESHOLD as usize,
        "{report:?}"
    );
    assert!(
        report
            .members
            .iter()
            .all(|m| matches!(m.result, MemberResult::Failed { ui_drift: true, .. })),
        "{report:?}"
    );
    assert!(
        matches!(report.stopped, Some(StopReason::CircuitBreakerOpen { .. })),
        "{report:?}"
    );
    assert!(matches!(board.status().state, ExecutorState::Paused { .. }));
    assert!(saves_in(&state).is_empty(), "no save while drifting");
    for i in BREAKER_THRESHOLD as usize..DRIFT_MEMBERS {
        let id = knvb_id("DRF", i);
        assert!(first_request_of(&state, &id).is_none(), "{id} untouched");
    }
    // Paused: a daemon's next runs do not touch Sportlink at all.
    state.clear_log();
    for _ in 0..2 {
        let paused = rig.run(&mut executor, None).await;
        assert!(paused.members.is_empty(), "{paused:?}");
    }
    executor.close().await;
    assert!(state.request_log().is_empty(), "{:?}", state.request_log());
    for i in 0..DRIFT_MEMBERS {
        let id = knvb_id("DRF", i);
        assert_eq!(
            state.member(&id).unwrap().communication.email1,
            format!("{}@example.nl", id.to_lowercase())
        );
    }
    println!(
        "soak: {MEMBERS} members in {runs} runs, faulty part {faulty_secs:.1} s \
         ({:.2} s per member; {faulty_requests} requests, {logins} logins, {} saves), \
         whole test {:.1} s",
        faulty_secs / MEMBERS as f64,
        statuses.len(),
        started.elapsed().as_secs_f64()
    );
    rig.finish().await;
}

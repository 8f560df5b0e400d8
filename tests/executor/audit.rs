//! The divergence audit (issue 13, part 3) against the simulator in real Chromium and the Rondo
//! Club stand-in: 200 members with 10 seeded differences of each kind are reported exactly, no
//! save reaches Sportlink, and a run killed halfway resumes without reading finished members
//! again. Plus the measurement (ignored): time and requests per member with realistic delays.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use rondo_reverse_sync::audit::{self, StepOutcome};
use rondo_reverse_sync::config::{PollSettings, RondoClubSettings, Secret};
use rondo_reverse_sync::domain::{Origin, Source};
use rondo_reverse_sync::poll::RondoClient;
use rondo_reverse_sync::store::{AuditRun, AuditTrigger};
use rrs_standins::rondo_standin::{RondoStandIn, StandInConfig};
use rrs_standins::simulator::{Faults, SimState};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::support::chromium::browser_tests_skipped;
use crate::support::rig::{Member, Rig};

const MEMBERS: usize = 200;
const EACH: usize = 10;
/// Upper bound for reading 200 members on two shared cores.
const AUDIT_LIMIT: Duration = Duration::from_secs(1500);

fn id(i: usize) -> String {
    format!("AUD{i:04}")
}

/// The Rondo Club stand-in and a client for it.
async fn rondo_club() -> (RondoStandIn, RondoClient) {
    let config = StandInConfig::default();
    let standin = RondoStandIn::start(config.clone())
        .await
        .expect("the stand-in starts");
    let settings = RondoClubSettings {
        base_url: standin.base_url(),
        username: config.username.clone(),
        application_password: Secret::new(&config.application_password),
        timeout_secs: 10,
    };
    let client = RondoClient::new(&settings, &PollSettings::default()).expect("client");
    (standin, client)
}

/// A sighting with the member's own post id (the rig's uses one id for everyone).
async fn sight(rig: &Rig, post: i64, acf: Value, source: Source, origin: Option<Origin>) {
    rig.sight_at(post, Utc::now() - TimeDelta::hours(2), acf, source, origin)
        .await;
}

/// Seeds the three systems; returns the member ids expected per verdict.
async fn seed(rig: &Rig, standin: &RondoStandIn) -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut expected: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for i in 0..MEMBERS {
        let knvb = id(i);
        let post = 1000 + i as i64;
        let mut m = Member::jan(&knvb);
        let kind = match i / EACH {
            0 => "differs_pending",
            1 => "differs",
            2 => "unknown_in_sportlink",
            3 => "unknown_in_rondo_club",
            _ => "equal",
        };
        expected.entry(kind).or_default().insert(knvb.clone());
        // The service saw everyone as they are now in Sportlink.
        sight(rig, post, m.acf(), Source::Baseline, None).await;
        match kind {
            "differs_pending" => {
                rig.state().seed_member(m.sim());
                // A volunteer's edit, not pushed yet.
                m.email = format!("nieuw.{}@example.nl", knvb.to_lowercase());
                sight(rig, post, m.acf(), Source::Webhook, Some(Origin::UserEdit)).await;
            }
            "differs" => {
                // Changed in Sportlink; the forward sync has not run yet.
                let mut s = m.clone();
                s.city = "Rotterdam".into();
                rig.state().seed_member(s.sim());
            }
            "unknown_in_sportlink" => {}
            _ => rig.state().seed_member(m.sim()),
        }
        if kind != "unknown_in_rondo_club" {
            standin
                .state()
                .upsert_person(json!({"id": post, "acf": m.acf()}))
                .expect("person in the stand-in");
        }
    }
    expected
}

/// Steps the unfinished audit until it ends (bounded by the caller).
async fn run_to_end(
    executor: &mut rondo_reverse_sync::sportlink::executor::Executor<
        rondo_reverse_sync::sportlink::driver::ChromiumDriver,
    >,
    client: &RondoClient,
) {
    let cancel = CancellationToken::new();
    loop {
        match audit::step(executor, Some(client), &cancel)
            .await
            .expect("audit step")
        {
            StepOutcome::Finished { .. } | StepOutcome::Idle => return,
            StepOutcome::Listed { .. } | StepOutcome::Member { .. } => {}
            other => panic!("unexpected audit step: {other:?}"),
        }
    }
}

async fn run_of(rig: &Rig, id: i64) -> AuditRun {
    rig.store
        .read(move |c| c.audit_run(id))
        .await
        .expect("read")
        .expect("the run exists")
}

/// Members whose pages or data the simulator served.
fn members_requested(state: &SimState) -> BTreeSet<String> {
    state
        .request_log()
        .into_iter()
        .filter_map(|r| {
            r.member_id.clone().or_else(|| {
                r.path
                    .strip_prefix("/member/member-details/")
                    .and_then(|rest| rest.split('/').next())
                    .map(str::to_owned)
            })
        })
        .collect()
}

/// Nothing but reads (and the login's own form posts) reached the simulator.
fn assert_read_only(state: &SimState) {
    let log = state.request_log();
    assert!(!log.is_empty());
    let saves: Vec<_> = log.iter().filter(|r| r.is_save()).collect();
    assert!(saves.is_empty(), "the audit saved: {saves:?}");
    let writes: Vec<_> = log
        .iter()
        .filter(|r| r.method != "GET" && !r.path.contains("/auth/"))
        .collect();
    assert!(
        writes.is_empty(),
        "the audit sent more than reads: {writes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_reports_exactly_the_seeded_differences_read_only_and_resumes_after_a_kill() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let (standin, client) = rondo_club().await;
    let expected = seed(&rig, &standin).await;

    let run = audit::start_or_resume(&rig.store, AuditTrigger::Cli)
        .await
        .expect("audit starts");

    // First process: killed (its task aborted, browser and all) once about half is done.
    let first = {
        let mut executor = rig.executor();
        let client = client.clone();
        tokio::spawn(async move {
            run_to_end(&mut executor, &client).await;
            executor.close().await;
        })
    };
    let started = Instant::now();
    loop {
        let done = run_of(&rig, run.id).await.members_done;
        if done >= (MEMBERS / 2) as u64 {
            break;
        }
        assert!(!first.is_finished(), "the first process ended early");
        assert!(
            started.elapsed() < AUDIT_LIMIT,
            "half the audit took too long"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.abort();
    let _ = first.await;
    let half = run_of(&rig, run.id).await;
    assert_eq!(half.status, "reading", "{half:?}");
    let done_before: BTreeSet<String> = rig
        .store
        .read(move |c| c.audit_results(run.id, &[], u32::MAX, 0))
        .await
        .expect("read")
        .into_iter()
        .map(|r| r.knvb_id)
        .collect();
    assert!(done_before.len() >= MEMBERS / 2 && done_before.len() < MEMBERS);
    assert_read_only(&rig.state());

    // Second process: resumes with the members not done.
    rig.state().clear_log();
    let mut executor = rig.executor();
    tokio::time::timeout(AUDIT_LIMIT, run_to_end(&mut executor, &client))
        .await
        .expect("the resumed audit finishes in time");
    executor.close().await;
    let end = run_of(&rig, run.id).await;
    assert_eq!(end.status, "completed", "{end:?}");
    assert_eq!(end.members_done, MEMBERS as u64);
    assert_eq!(end.members_total, MEMBERS as u64);
    let reread: BTreeSet<String> = members_requested(&rig.state())
        .intersection(&done_before)
        .cloned()
        .collect();
    assert!(
        reread.is_empty(),
        "finished members were read again: {reread:?}"
    );
    assert_read_only(&rig.state());
    assert!(rig
        .state()
        .members()
        .iter()
        .all(|m| rig.state().saves_for(&m.knvb_id).is_empty()));

    // Exactly the seeded differences, per kind.
    let rows = rig
        .store
        .read(move |c| c.audit_results(run.id, &[], u32::MAX, 0))
        .await
        .expect("read");
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &rows {
        if r.verdict != "equal" {
            found
                .entry(r.verdict.as_str().to_owned())
                .or_default()
                .insert(r.knvb_id.clone());
        }
    }
    for kind in [
        "differs_pending",
        "differs",
        "unknown_in_sportlink",
        "unknown_in_rondo_club",
    ] {
        assert_eq!(found.get(kind), expected.get(kind), "verdict {kind}");
    }
    let unexpected: Vec<_> = rows
        .iter()
        .filter(|r| r.verdict != "equal" && !expected.contains_key(r.verdict.as_str()))
        .map(|r| (&r.knvb_id, &r.field, r.verdict.as_str(), &r.detail))
        .collect();
    assert_eq!(found.len(), 4, "unexpected verdicts: {unexpected:?}");
    let differing: Vec<_> = rows.iter().filter(|r| r.verdict == "differs").collect();
    assert_eq!(differing.len(), EACH);
    for r in &differing {
        assert_eq!(r.field.as_deref(), Some("city"));
        assert_eq!(r.sportlink_value.as_deref(), Some("Rotterdam"));
        assert_eq!(r.rondo_club_value.as_deref(), Some("Amsterdam"));
        assert!(r.rondo_club_modified.is_some(), "{r:?}");
    }
    let pending: Vec<_> = rows
        .iter()
        .filter(|r| r.verdict == "differs_pending")
        .collect();
    assert_eq!(pending.len(), EACH);
    assert!(pending
        .iter()
        .all(|r| r.field.as_deref() == Some("email") && r.pending_change_id.is_some()));
    let fields = rig.store.catalogue().fields().len();
    let equal = rows.iter().filter(|r| r.verdict == "equal").count();
    assert_eq!(equal, (MEMBERS - 2 * EACH) * fields - 2 * EACH);

    // The operator queues the differing rows: ten pending changes, audited on the rows; a second
    // time they are refused.
    let ids: Vec<i64> = differing.iter().map(|r| r.id).collect();
    let again = ids.clone();
    let queued = rig
        .store
        .write(move |c| c.queue_audit_rows(run.id, &ids, "test", Utc::now()))
        .await
        .expect("queue");
    assert!(queued.iter().all(|q| q.change_id.is_some()), "{queued:?}");
    let queued = rig
        .store
        .write(move |c| c.queue_audit_rows(run.id, &again, "test", Utc::now()))
        .await
        .expect("queue again");
    assert!(queued.iter().all(|q| q.change_id.is_none()), "{queued:?}");
    let csv = audit::to_csv(&rows);
    assert_eq!(csv.lines().count(), rows.len() + 1);

    standin.shutdown().await;
    rig.finish().await;
}

/// Measurement, run by hand:
/// `cargo test --test executor audit_bench -- --ignored --nocapture`
/// Audit time per member and requests per member against the simulator with the realistic delays
/// of the executor's benchmark (`bench_realistic`: every data request of the app 150–900 ms, each
/// session ending after 25–60 requests) and the service's default pacing (1 s + up to 1 s jitter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run by hand"]
async fn audit_bench_realistic_delays() {
    const N: usize = 50;
    if browser_tests_skipped() {
        return;
    }
    let mut rig = Rig::start().await;
    // Production timings, and as in `bench_realistic_delays` the variant's own in-page render
    // delays removed: what remains is what the server makes the browser wait.
    rig.sportlink.settle_ms = rondo_reverse_sync::config::SportlinkSettings::default().settle_ms;
    rig.without_section_delays();
    let (standin, client) = rondo_club().await;
    for i in 0..N {
        let m = Member::jan(&id(i));
        sight(&rig, 1000 + i as i64, m.acf(), Source::Baseline, None).await;
        rig.state().seed_member(m.sim());
        standin
            .state()
            .upsert_person(json!({"id": 1000 + i as i64, "acf": m.acf()}))
            .expect("person");
    }
    rig.state().set_faults(Faults {
        data_delay_ms: Some((150, 900)),
        session_requests_range: Some((25, 60)),
        ..Faults::default()
    });
    let mut executor = rig.executor_with(|s| {
        s.min_member_interval_ms = 1_000;
        s.member_jitter_ms = 1_000;
    });
    let run = audit::start_or_resume(&rig.store, AuditTrigger::Cli)
        .await
        .expect("start");
    // Log in and list before measuring.
    let cancel = CancellationToken::new();
    audit::step(&mut executor, Some(&client), &cancel)
        .await
        .expect("listing");
    rig.state().clear_log();
    let started = Instant::now();
    tokio::time::timeout(AUDIT_LIMIT, run_to_end(&mut executor, &client))
        .await
        .expect("in time");
    let wall = started.elapsed();
    executor.close().await;
    let end = run_of(&rig, run.id).await;
    let log = rig.state().request_log();
    let logins = log
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("/auth/"))
        .count();
    let (read, read_ms) = {
        let id = run.id;
        rig.store
            .read(move |c| c.audit_read_time(id))
            .await
            .expect("read")
    };
    assert_read_only(&rig.state());
    eprintln!(
        "audit of {N} members: {:.2} s per member wall (pacing included), {:.2} s per member \
         busy as recorded, {:.2} s per member reading Sportlink ({read} reads); {:.1} requests \
         per member ({} navigations, {} app data requests, {logins} login form posts); status {}",
        wall.as_secs_f64() / N as f64,
        end.busy_ms as f64 / 1000.0 / N as f64,
        read_ms as f64 / 1000.0 / read.max(1) as f64,
        log.len() as f64 / N as f64,
        log.iter().filter(|r| r.is_navigation()).count(),
        log.iter().filter(|r| r.app_marked).count(),
        end.status
    );
    standin.shutdown().await;
    rig.finish().await;
}

/// In `serve`: the admin API starts an audit, the executor's loop pushes the pending change first
/// and reads the members between its runs; the results, the CSV, and a differing row queued as a
/// change that the executor then pushes (the only saves).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_audit_between_executor_runs_and_queues_a_row() {
    if browser_tests_skipped() {
        return;
    }
    const TOKEN: &str = "audit-test-token-0123456789abcdef0123456789";
    let rig = Rig::start().await;
    for i in 0..5 {
        let m = Member::jan(&id(i));
        sight(&rig, 1000 + i as i64, m.acf(), Source::Baseline, None).await;
        let mut s = m.clone();
        if i == 1 {
            s.city = "Rotterdam".into();
        }
        rig.state().seed_member(s.sim());
    }
    // A pending change for member 0: the executor's work goes first.
    let mut edited = Member::jan(&id(0));
    edited.email = "eerst-gepusht@example.nl".into();
    sight(
        &rig,
        1000,
        edited.acf(),
        Source::Webhook,
        Some(Origin::UserEdit),
    )
    .await;

    let mut settings = rig.serve_settings();
    settings.admin.token = Secret::new(TOKEN);
    let service = rrs_testkit::app::serve(
        &settings,
        rig.store.catalogue().as_ref().clone(),
        rig.sim.clock(),
    )
    .await
    .expect("serve starts");
    let base = format!("http://127.0.0.1:{}/api", service.port());
    let http = reqwest::Client::new();
    let started: Value = http
        .post(format!("{base}/audits"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("start")
        .json()
        .await
        .expect("json");
    let audit_id = started["id"].as_i64().expect("an id");
    // A second start while it runs is refused.
    let again = http
        .post(format!("{base}/audits"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("start again");
    assert_eq!(again.status(), 409);

    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        let status: Value = http
            .get(format!("{base}/audits/{audit_id}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("json");
        if status["status"] == "completed" {
            break status;
        }
        assert!(Instant::now() < deadline, "not done: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status["members_done"], 5, "{status}");
    assert_eq!(status["counts"]["differs"], 1, "{status}");
    assert!(status["counts"]["differs_pending"].is_null(), "{status}");
    assert!(
        rig.state().saves_for(&id(0)).len() == 1,
        "the pending change was pushed before the audit read its member"
    );
    let rows: Value = http
        .get(format!("{base}/audits/{audit_id}/results?verdict=differs"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("results")
        .json()
        .await
        .expect("json");
    let row = &rows[0];
    assert_eq!(row["knvb_id"], id(1));
    assert_eq!(row["field"], "city");
    let csv = http
        .get(format!("{base}/audits/{audit_id}/results.csv"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("csv");
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.expect("text");
    assert!(
        csv.contains("AUD0001,city,differs,Rotterdam,Amsterdam"),
        "{csv}"
    );
    let bad = http
        .get(format!("{base}/audits/{audit_id}/results?verdict=nonsense"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("bad verdict");
    assert_eq!(bad.status(), 400);
    // The operator page shows the run's progress and counts.
    let page = http
        .get(format!("http://127.0.0.1:{}/", service.port()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("operator page")
        .text()
        .await
        .expect("html");
    assert!(
        page.contains(&format!("audit {audit_id}: completed, 5 of 5 members"))
            && page.contains("differs: 1"),
        "{page}"
    );
    let ended = http
        .post(format!("{base}/audits/{audit_id}/cancel"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("cancel");
    assert_eq!(ended.status(), 409);
    // No audit read saved anything: the only save so far is the pending change's.
    let saved: Vec<String> = rig
        .state()
        .request_log()
        .iter()
        .filter(|r| r.is_save())
        .filter_map(|r| r.member_id.clone())
        .collect();
    assert_eq!(saved, vec![id(0)]);

    // The operator queues the row: Rondo Club's value goes to Sportlink through the executor.
    let queued: Value = http
        .post(format!("{base}/audits/{audit_id}/queue"))
        .bearer_auth(TOKEN)
        .json(&json!({"rows": [row["id"]]}))
        .send()
        .await
        .expect("queue")
        .json()
        .await
        .expect("json");
    assert_eq!(queued["queued"], 1, "{queued}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while rig.state().member(&id(1)).map(|m| m.address.city) != Some("Amsterdam".into()) {
        assert!(Instant::now() < deadline, "the queued row was not pushed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    service.shutdown();
    service.wait().await.expect("clean stop");
    rig.finish().await;
}

/// The `audit` verb of the real binary: the report, the CSV, exit 0; read-only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_verb_reports_and_writes_the_csv() {
    use crate::support::chromium::{chromium_path, OTP_SECRET, PASSWORD, USER};

    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    for i in 0..3 {
        let m = Member::jan(&id(i));
        sight(&rig, 1000 + i as i64, m.acf(), Source::Baseline, None).await;
        let mut s = m.clone();
        if i == 2 {
            s.email = "anders@example.nl".into();
        }
        rig.state().seed_member(s.sim());
    }
    let csv = rig.dir.path().join("audit.csv");
    let db = rig.store.path().display().to_string();
    let base = rig.sim.base_url();
    let chromium = chromium_path().display().to_string();
    let csv_arg = csv.display().to_string();
    let dir = rig.dir.path().to_path_buf();
    let artefacts = dir.join("artefacts").display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        crate::binary::run_within(
            &dir,
            &["audit", "--csv", &csv_arg],
            &[
                ("RRS_DATABASE__PATH", &db),
                ("RRS_SPORTLINK__BASE_URL", &base),
                ("RRS_SPORTLINK__USERNAME", USER),
                ("RRS_SPORTLINK__PASSWORD", PASSWORD),
                ("RRS_SPORTLINK__OTP_SECRET", OTP_SECRET),
                ("RRS_SPORTLINK__CHROMIUM_PATH", &chromium),
                ("RRS_SPORTLINK__MIN_MEMBER_INTERVAL_MS", "0"),
                ("RRS_SPORTLINK__MEMBER_JITTER_MS", "0"),
                ("RRS_SPORTLINK__SETTLE_MS", "400"),
                ("RRS_SPORTLINK__ARTEFACT_DIR", &artefacts),
            ],
            Duration::from_secs(180),
        )
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("completed, 3 of 3 members"), "{stdout}");
    assert!(stdout.contains("differs: 1,"), "{stdout}");
    assert!(stderr.contains("audit 1 started"), "{stderr}");
    assert!(!stderr.contains(PASSWORD) && !stdout.contains(PASSWORD));
    let text = std::fs::read_to_string(&csv).expect("the CSV");
    assert!(
        text.contains("AUD0002,email,differs,anders@example.nl,aud0002@example.nl"),
        "{text}"
    );
    assert_read_only(&rig.state());
    rig.finish().await;
}

/// `sportlink.audit_interval_hours`: `serve` starts the scheduled audit (the first right after
/// start-up when none ran before) and runs it to its end by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_the_scheduled_audit() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    for i in 0..2 {
        let m = Member::jan(&id(i));
        sight(&rig, 1000 + i as i64, m.acf(), Source::Baseline, None).await;
        rig.state().seed_member(m.sim());
    }
    let mut settings = rig.serve_settings();
    settings.sportlink.audit_interval_hours = 24;
    let service = rrs_testkit::app::serve(
        &settings,
        rig.store.catalogue().as_ref().clone(),
        rig.sim.clock(),
    )
    .await
    .expect("serve starts");
    let deadline = Instant::now() + Duration::from_secs(180);
    let run = loop {
        let runs = rig.store.read(|c| c.list_audits(5)).await.expect("read");
        if let Some(run) = runs.into_iter().find(|r| r.status == "completed") {
            break run;
        }
        assert!(Instant::now() < deadline, "no scheduled audit completed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    service.shutdown();
    service.wait().await.expect("clean stop");
    assert_eq!(run.trigger, "schedule");
    assert_eq!(run.rondo_source.map(|s| s.as_str()), Some("stored"));
    assert_eq!(run.members_done, 2);
    assert_read_only(&rig.state());
    rig.finish().await;
}

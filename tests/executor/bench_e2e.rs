//! Executor benchmark (issue #6): browser time per member page against the simulator with render
//! delay 0 and politeness delay 0, 100 members, one login for the whole run. Ignored in CI (it
//! reports, it does not judge); run by hand:
//!
//! ```text
//! cargo test --release --test executor -- --ignored bench_e2e::bench_executor_100 --nocapture
//! ```
//!
//! `RRS_BENCH_SETTLE_MS` sets the DOM-quiet period (default: the configuration default).

use std::time::{Duration, Instant};

use rondo_reverse_sync::config::SportlinkSettings;
use rondo_reverse_sync::sportlink::executor::MemberResult;

use crate::support::chromium::browser_tests_skipped;
use crate::support::rig::{Member, Rig};

const MEMBERS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run by hand with --ignored"]
async fn bench_executor_100() {
    if browser_tests_skipped() {
        return;
    }
    let mut rig = Rig::start().await;
    let settle = std::env::var("RRS_BENCH_SETTLE_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SportlinkSettings::default().settle_ms);
    rig.sportlink.settle_ms = settle;
    let mut members = Vec::new();
    for n in 0..MEMBERS {
        let m = Member::jan(&format!("BEN{n:04}"));
        rig.seed(&m).await;
        let mut edited = m.clone();
        edited.email = format!("nieuw{n}@example.nl");
        assert!(!rig.user_edit(&edited).await.is_empty());
        members.push(edited);
    }
    let mut executor = rig.executor();
    let started = Instant::now();
    let report = tokio::time::timeout(
        Duration::from_secs(900),
        executor.run(None, false, &tokio_util::sync::CancellationToken::new()),
    )
    .await
    .expect("the run ends within 15 minutes")
    .expect("run");
    let wall = started.elapsed();
    executor.close().await;

    let mut times: Vec<Duration> = report
        .members
        .iter()
        .flat_map(|m| m.page_times.iter().copied())
        .collect();
    times.sort_unstable();
    let synced = report
        .members
        .iter()
        .filter(|m| matches!(m.result, MemberResult::Done { synced: 1, .. }))
        .count();
    let q = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    let logins = rig
        .state()
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("login"))
        .count();
    eprintln!(
        "executor bench: {MEMBERS} members, settle {settle} ms, {} pages, {synced} synced, \
         {logins} login POSTs, wall {:.1} s; per page median {:.0} ms, p95 {:.0} ms",
        times.len(),
        wall.as_secs_f64(),
        q(0.5).as_secs_f64() * 1000.0,
        q(0.95).as_secs_f64() * 1000.0,
    );
    for m in &members {
        let saved = crate::support::rig::saves(&rig.state(), &m.knvb_id);
        assert!(
            saved
                .iter()
                .any(|(status, fields)| (200..300).contains(status)
                    && fields.iter().any(|(_, v)| v == &m.email)),
            "{} was not saved with {}",
            m.knvb_id,
            m.email
        );
    }
    assert_eq!(synced, MEMBERS, "{:?}", report.stopped);
    rig.finish().await;
}

/// End to end (issue #6): a signed webhook to the running service → the value verified in the
/// simulator (the change marked synced, which the executor does only after reading the value
/// back), with the default rate limit and an idle queue (each edit after the previous one is
/// synced and the politeness interval has passed): p50 and p95 over 50 edits.
///
/// ```text
/// cargo test --release --test executor -- --ignored bench_e2e::bench_end_to_end_50 --nocapture
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run by hand with --ignored"]
async fn bench_end_to_end_50() {
    use chrono::Utc;
    use rondo_reverse_sync::config::{Secret, WebhookSettings};
    use rondo_reverse_sync::webhook::WebhookSecret;
    use rrs_standins::loadgen::Delivery;
    use serde_json::json;

    const EDITS: usize = 50;
    const SECRET: &str = "whsec_ZTJlLWJlbmNoLXNlY3JldC1rZXktMDEyMzQ1Njc4OQ==";
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let defaults = SportlinkSettings::default();
    let members: Vec<Member> = (0..EDITS)
        .map(|n| Member::jan(&format!("E2E{n:04}")))
        .collect();
    for m in &members {
        rig.seed(m).await;
    }
    // `serve` as it runs at a club: the service's own executor, default pacing.
    let mut settings = rig.serve_settings();
    settings.webhook = WebhookSettings {
        secret: Secret::new(SECRET),
        ..WebhookSettings::default()
    };
    settings.sportlink.min_member_interval_ms = defaults.min_member_interval_ms;
    settings.sportlink.member_jitter_ms = defaults.member_jitter_ms;
    settings.sportlink.settle_ms = defaults.settle_ms;
    let running = rrs_testkit::app::serve(
        &settings,
        rondo_reverse_sync::catalogue::Catalogue::builtin(),
        rig.sim.clock(),
    )
    .await
    .expect("serve starts");
    let url = format!("http://127.0.0.1:{}/webhooks/rondo-club", running.port());
    let client = reqwest::Client::new();
    let secret = WebhookSecret::parse(SECRET).expect("secret");
    let pause = Duration::from_millis(defaults.min_member_interval_ms + defaults.member_jitter_ms);

    let mut latencies = Vec::new();
    for (n, m) in members.iter().enumerate() {
        let mut edited = m.clone();
        edited.email = format!("e2e{n}@example.nl");
        let body = json!({"type": "person.updated", "data": {
            "id": 100, "modified_gmt": Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
            "origin": "user_edit", "user": "vrijwilliger", "acf": edited.acf()}});
        let delivery = Delivery::sign(
            &secret,
            format!("msg_e2e_{n}"),
            Utc::now().timestamp(),
            body.to_string().into_bytes(),
        );
        let started = Instant::now();
        let answer: serde_json::Value = delivery
            .request(&client, &url)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        let id: i64 = answer["change_ids"][0]
            .as_i64()
            .unwrap_or_else(|| panic!("{answer}"));
        let deadline = started + Duration::from_secs(60);
        loop {
            let change = rig.change(rondo_reverse_sync::domain::ChangeId(id)).await;
            if change.status == "synced" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "edit {n} not synced in 60 s: {change:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        latencies.push(started.elapsed());
        // An idle queue: the next edit arrives after the politeness interval has passed.
        tokio::time::sleep(pause).await;
    }
    latencies.sort_unstable();
    let q = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    eprintln!(
        "end-to-end bench: {EDITS} edits, settle {} ms, interval {} ms + jitter {} ms: \
         p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        defaults.settle_ms,
        defaults.min_member_interval_ms,
        defaults.member_jitter_ms,
        q(0.5).as_secs_f64() * 1000.0,
        q(0.95).as_secs_f64() * 1000.0,
        q(1.0).as_secs_f64() * 1000.0,
    );
    running.shutdown();
    running.wait().await.expect("stopped");
    rig.finish().await;
}

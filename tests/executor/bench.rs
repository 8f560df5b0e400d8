//! Measurement, run by hand:
//! `cargo test --test executor bench -- --ignored --nocapture`
//! Browser time per member page against the simulator (render delay 0, pacing excluded) over
//! 100 members with changes on three pages each, and Chromium's peak memory meanwhile.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rondo_reverse_sync::sportlink::executor::MemberResult;

use crate::support::chromium::browser_tests_skipped;
use crate::support::rig::{Member, Rig};

const MEMBERS: usize = 100;

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// (RSS, PSS) in KiB summed over a process and its descendants.
fn tree_memory(root: u32) -> (u64, u64) {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // The command may contain spaces; fields after the closing parenthesis are fixed.
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                continue;
            };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut stack = vec![root];
    let (mut rss, mut pss) = (0, 0);
    while let Some(pid) = stack.pop() {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            rss += kib(&status, "VmRSS:");
        }
        if let Ok(rollup) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
            pss += kib(&rollup, "Pss:");
        }
        stack.extend(children.get(&pid).cloned().unwrap_or_default());
    }
    (rss, pss)
}

/// PSS (KiB) per Chromium process of the tree, by its `--type=` (the browser process has none).
fn breakdown(root: u32) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
        {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let kind = cmdline
            .split(['\0', ' '])
            .find_map(|a| a.strip_prefix("--type="))
            .unwrap_or("browser")
            .to_owned();
        let rollup =
            std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        out.push((kind, kib(&rollup, "Pss:")));
        stack.extend(children.get(&pid).cloned().unwrap_or_default());
    }
    out
}

fn kib(text: &str, key: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, run by hand with --ignored --nocapture"]
async fn bench_browser_time_per_member_page() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut warm = Member::jan("WARM001");
    rig.seed(&warm).await;
    warm.email = "warm@example.org".into();
    rig.user_edit(&warm).await;
    eprintln!("BENCH seeding {MEMBERS} members");
    for n in 0..MEMBERS {
        let mut m = Member::jan(&format!("B{n:06}"));
        rig.seed(&m).await;
        m.email = format!("b{n}@example.org");
        m.datum_vog = "2025-05-05".into();
        m.blokkade = true;
        rig.user_edit(&m).await;
    }
    let mut executor = rig.executor();
    // Start the browser and log in outside the measurement.
    let warm_up = rig.run(&mut executor, Some("WARM001")).await;
    assert!(
        matches!(warm_up.members[0].result, MemberResult::Done { .. }),
        "{warm_up:?}"
    );
    let pid = executor
        .driver_mut()
        .session_mut()
        .browser_pid()
        .expect("browser runs");

    let stop = Arc::new(AtomicBool::new(false));
    // Stops the sampler on every path (a panic included), so the runtime can shut down.
    let _stop_on_drop = StopOnDrop(stop.clone());
    let peak_rss = Arc::new(AtomicU64::new(0));
    let peak_pss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak_rss, peak_pss) = (stop.clone(), peak_rss.clone(), peak_pss.clone());
        tokio::task::spawn_blocking(move || {
            let mut last_print = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let (rss, pss) = tree_memory(pid);
                if last_print.elapsed() >= Duration::from_secs(10) {
                    println!("BENCH   memory now: PSS {} MiB", pss / 1024);
                    last_print = Instant::now();
                }
                peak_rss.fetch_max(rss, Ordering::Relaxed);
                peak_pss.fetch_max(pss, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let started = Instant::now();
    let cancel = tokio_util::sync::CancellationToken::new();
    let report = tokio::time::timeout(
        Duration::from_secs(1800),
        executor.run(None, false, &cancel),
    )
    .await
    .expect("bench run within 30 minutes")
    .expect("bench run");
    let wall = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    for (kind, pss) in breakdown(pid) {
        println!("BENCH   at the end: {kind:<24} PSS {} MiB", pss / 1024);
    }
    executor.close().await;

    assert_eq!(report.members.len(), MEMBERS);
    assert!(report
        .members
        .iter()
        .all(|m| matches!(m.result, MemberResult::Done { synced: 3, .. })));
    let mut pages: Vec<Duration> = report
        .members
        .iter()
        .flat_map(|m| m.page_times.iter().copied())
        .collect();
    let mut members: Vec<Duration> = report
        .members
        .iter()
        .map(|m| m.page_times.iter().sum())
        .collect();
    pages.sort();
    members.sort();
    println!(
        "BENCH {} members, {} member-pages, wall {:.1} s (no pacing)",
        members.len(),
        pages.len(),
        wall.as_secs_f64()
    );
    println!(
        "BENCH per member-page: median {} ms, p95 {} ms, max {} ms",
        percentile(&pages, 50.0).as_millis(),
        percentile(&pages, 95.0).as_millis(),
        pages.last().unwrap().as_millis()
    );
    println!(
        "BENCH per member (3 pages): median {} ms, p95 {} ms",
        percentile(&members, 50.0).as_millis(),
        percentile(&members, 95.0).as_millis()
    );
    println!(
        "BENCH Chromium peak memory (process tree): RSS sum {} MiB, PSS {} MiB",
        peak_rss.load(Ordering::Relaxed) / 1024,
        peak_pss.load(Ordering::Relaxed) / 1024
    );
    rig.finish().await;
}

/// Issue 14, item 4: against the simulator with realistic delays — every data request of the
/// app waits 150–900 ms, every save 200–1200 ms, a session ends after 25–60 requests — with the
/// production timings (settle 750 ms) and a freshly drawn variant. Reports requests per
/// member-page, logins per 100 member-pages, and member-page time ÷ the simulator's own delays
/// for that page (the union of the intervals in which it held that member's requests).
/// `cargo test --test executor bench_realistic -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, run by hand with --ignored --nocapture"]
async fn bench_realistic_delays() {
    use rondo_reverse_sync::config::SportlinkSettings;

    const ONE_PAGE: usize = 40;
    const THREE_PAGES: usize = 10;
    if browser_tests_skipped() {
        return;
    }
    let mut rig = Rig::start().await;
    rig.sportlink.settle_ms = SportlinkSettings::default().settle_ms;
    // The variant's own rendering delays in the page are not the server's; without them the
    // ratio below compares the executor with what the server made it wait.
    rig.without_section_delays();
    let variant = rig.state().variant();
    println!("BENCH {}", variant.repeat_hint());
    println!(
        "BENCH variant: re-fetch after save {}, save answer {:?}",
        variant.refetch_after_save, variant.save_answer
    );
    let mut members = Vec::new();
    for n in 0..ONE_PAGE + THREE_PAGES {
        let id = format!("R{n:06}");
        let mut m = Member::jan(&id);
        rig.seed(&m).await;
        m.email = format!("r{n}@example.org");
        if n >= ONE_PAGE {
            m.datum_vog = "2025-05-05".into();
            m.blokkade = true;
        }
        rig.user_edit(&m).await;
        members.push(id);
    }
    rig.state().update_faults(|f| {
        f.data_delay_ms = Some((150, 900));
        f.save_delay_ms = Some((200, 1200));
        f.session_requests_range = Some((25, 60));
    });
    let mut executor = rig.executor();
    let started = Instant::now();
    let report = rig
        .run_within(&mut executor, Duration::from_secs(3600))
        .await;
    let wall = started.elapsed();
    executor.close().await;
    assert_eq!(report.members.len(), members.len(), "{report:?}");
    assert!(
        report
            .members
            .iter()
            .all(|m| matches!(m.result, MemberResult::Done { .. })),
        "{report:?}"
    );

    // Attribute every logged request to the member in progress (logins included).
    let mut log = rig.state().request_log();
    log.sort_by_key(|r| r.time);
    let member_of = |r: &rrs_standins::simulator::LoggedRequest| {
        r.member_id.clone().or_else(|| {
            r.path
                .strip_prefix("/member/member-details/")
                .and_then(|rest| rest.split('/').next())
                .map(str::to_owned)
        })
    };
    let mut current: Option<String> = None;
    let mut per_member: HashMap<String, Vec<&rrs_standins::simulator::LoggedRequest>> =
        HashMap::new();
    for r in &log {
        if let Some(m) = member_of(r) {
            current = Some(m);
        }
        if let Some(m) = &current {
            per_member.entry(m.clone()).or_default().push(r);
        }
    }
    let logins = log
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("/login-actions/otp"))
        .count();
    let mut pages = 0usize;
    let mut requests = 0usize;
    let mut ratios = Vec::new();
    for outcome in &report.members {
        let id = outcome.knvb_id.as_str();
        let n_pages = outcome.page_times.len().max(1);
        pages += n_pages;
        let reqs = per_member.get(id).cloned().unwrap_or_default();
        requests += reqs.len();
        // The union of the intervals in which the simulator held this member's requests.
        let mut spans: Vec<(i64, i64)> = reqs
            .iter()
            .map(|r| {
                let start = r.time.timestamp_millis();
                (start, start + r.delay_ms as i64)
            })
            .collect();
        spans.sort_unstable();
        let mut union = 0i64;
        let mut open: Option<(i64, i64)> = None;
        for (s, e) in spans {
            match open {
                Some((os, oe)) if s <= oe => open = Some((os, oe.max(e))),
                Some((os, oe)) => {
                    union += oe - os;
                    open = Some((s, e));
                }
                None => open = Some((s, e)),
            }
        }
        if let Some((os, oe)) = open {
            union += oe - os;
        }
        let time: Duration = outcome.page_times.iter().sum();
        if union > 0 {
            ratios.push(time.as_millis() as f64 / union as f64);
        }
    }
    ratios.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let mut page_times: Vec<Duration> = report
        .members
        .iter()
        .flat_map(|m| m.page_times.iter().copied())
        .collect();
    page_times.sort();
    println!(
        "BENCH {} members, {pages} member-pages, wall {:.1} s (no pacing)",
        report.members.len(),
        wall.as_secs_f64()
    );
    println!(
        "BENCH requests per member-page: {:.2} (all requests, logins included: {requests})",
        requests as f64 / pages as f64
    );
    println!(
        "BENCH logins per 100 member-pages: {:.1} ({logins} logins)",
        100.0 * logins as f64 / pages as f64
    );
    println!(
        "BENCH member-page time: median {} ms, p95 {} ms",
        percentile(&page_times, 50.0).as_millis(),
        percentile(&page_times, 95.0).as_millis()
    );
    let median = ratios[ratios.len() / 2];
    let p95 = ratios[((ratios.len() as f64 * 0.95).ceil() as usize).clamp(1, ratios.len()) - 1];
    println!("BENCH member time / simulator's own delays: median {median:.2}, p95 {p95:.2}");
    rig.finish().await;
}

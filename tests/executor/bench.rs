//! Measurement, run by hand:
//! `cargo test --test executor bench -- --ignored --nocapture`
//! Browser time per member page against the simulator (render delay 0, pacing excluded) over
//! 100 members with changes on three pages each, and Chromium's peak memory meanwhile.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rondo_reverse_sync::sportlink::executor::MemberResult;

use crate::support::chromium::chromium_available;
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
    if !chromium_available() {
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

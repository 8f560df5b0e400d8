//! The history's benchmark: 100,000 changes, realistic mix, every filter the page offers.
//! Ignored by `cargo test`; run it with
//! `cargo test --release --lib history_bench -- --ignored --nocapture` (docs/benchmarks.md).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeDelta;

use super::*;
use crate::catalogue::Catalogue;
use crate::store::{Store, StoreOptions};

const CHANGES: i64 = 100_000;
const MEMBERS: i64 = 8_000;
const FIELDS: [&str; 8] = [
    "email",
    "email2",
    "mobile",
    "phone",
    "datum_vog",
    "postal_code",
    "city",
    "street_name",
];

fn seed(db: &Conn<'_>, now: DateTime<Utc>) -> Result<()> {
    let start = now - TimeDelta::days(365);
    for m in 0..MEMBERS {
        db.conn.execute(
            "INSERT INTO rondo_club_members (knvb_id, tracked_fields_hash, baseline_json,
                 first_seen_at, last_seen_at, last_seen_source, last_verdict, updated_at,
                 display_name)
             VALUES (?1, 'h', '{}', ?2, ?2, 'poll', 'changed', ?2, ?3)",
            params![format!("BM{m:05}"), ts(start), format!("Lid{m} van Dijk")],
        )?;
    }
    for r in 0..2_000 {
        db.conn.execute(
            "INSERT INTO runs (id, kind, started_at, status) VALUES (?1, 'poll', ?2, 'completed')",
            params![r + 1, ts(start + TimeDelta::hours(r * 4))],
        )?;
    }
    let mut delivery = db.conn.prepare(
        "INSERT INTO webhook_deliveries (id, received_at, webhook_timestamp, outcome, body)
         VALUES (?1, ?2, 0, 'processed', x'7b7d')",
    )?;
    let mut change = db.conn.prepare(
        "INSERT INTO rondo_club_change_detections (id, knvb_id, field_name, old_value,
             new_value, expected_sportlink_value, detected_at, detection_run_id, delivery_id,
             source, status, attempts, last_error, synced_at, resolved_at, updated_at)
         VALUES (?1, ?2, ?3, 'old@example.nl', 'new@example.nl', 'old@example.nl', ?4, ?5, ?6,
                 ?7, ?8, ?9, ?10, ?11, ?11, ?4)",
    )?;
    let mut conflict = db.conn.prepare(
        "INSERT INTO conflict_resolutions (knvb_id, field_name, sportlink_value,
             rondo_club_value, winning_system, resolution_reason, resolved_at, change_id)
         VALUES (?1, ?2, 'a', 'b', 'sportlink', 'sportlink_newer', ?3, ?4)",
    )?;
    for id in 1..=CHANGES {
        // Spread over a year, oldest first, as ids grow.
        let at = start + TimeDelta::seconds(id * 315);
        let member = format!("BM{:05}", (id * 7919) % MEMBERS);
        let field = FIELDS[(id % FIELDS.len() as i64) as usize];
        // 90 % synced, 4 % superseded, 2 % each pending, failed, conflict lost.
        let status = match id % 50 {
            0 => "pending",
            1 => "failed",
            2 => "conflict_lost",
            3 | 4 => "superseded",
            _ => "synced",
        };
        let webhook = id % 3 != 0;
        let delivery_id = webhook.then(|| format!("msg_{id}"));
        if let Some(d) = &delivery_id {
            delivery.execute(params![d, ts(at)])?;
        }
        let error = (status == "failed").then_some("timeout waiting for the page");
        let done = (status != "pending").then(|| ts(at + TimeDelta::minutes(1)));
        change.execute(params![
            id,
            member,
            field,
            ts(at),
            (id % 2_000) + 1,
            delivery_id,
            if webhook { "webhook" } else { "poll" },
            status,
            i64::from(status == "failed") * 5,
            error,
            done,
        ])?;
        if status == "conflict_lost" {
            conflict.execute(params![member, field, ts(at), id])?;
        }
    }
    db.conn.execute_batch("ANALYZE")?;
    Ok(())
}

fn time<T>(runs: u32, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let mut all: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .collect();
    all.sort();
    (all[all.len() / 2], all[all.len() - 1])
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn history_bench() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(
        &dir.path().join("bench.sqlite3"),
        Arc::new(Catalogue::builtin()),
        StoreOptions::default(),
    )
    .expect("store");
    let now = Utc::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let seeding = Instant::now();
    rt.block_on(store.write(move |db| seed(db, now)))
        .expect("seed");
    println!("seeded {CHANGES} changes in {:?}", seeding.elapsed());
    let cases: Vec<(&str, HistoryFilter)> = vec![
        ("first page, no filter", HistoryFilter::default()),
        (
            "status failed",
            HistoryFilter {
                statuses: vec![ChangeStatus::Failed],
                ..Default::default()
            },
        ),
        (
            "status pending + failed + conflict lost",
            HistoryFilter {
                statuses: vec![
                    ChangeStatus::Pending,
                    ChangeStatus::Failed,
                    ChangeStatus::ConflictLost,
                ],
                ..Default::default()
            },
        ),
        (
            "field email, status synced",
            HistoryFilter {
                statuses: vec![ChangeStatus::Synced],
                field: Some(FieldName::parse("email").unwrap()),
                ..Default::default()
            },
        ),
        (
            "one member (KNVB id)",
            HistoryFilter {
                knvb_id_prefix: Some("BM04242".into()),
                ..Default::default()
            },
        ),
        (
            "name (part of it): Lid4242",
            HistoryFilter {
                name: Some("Lid4242".into()),
                ..Default::default()
            },
        ),
        (
            "q=BM04 as the page sends it (id prefix or name)",
            HistoryFilter {
                knvb_id_prefix: Some("BM04".into()),
                name: Some("BM04".into()),
                ..Default::default()
            },
        ),
        (
            "KNVB id prefix BM04",
            HistoryFilter {
                knvb_id_prefix: Some("BM04".into()),
                ..Default::default()
            },
        ),
        (
            "one week, 6 months ago",
            HistoryFilter {
                from: Some(now - TimeDelta::days(187)),
                to: Some(now - TimeDelta::days(180)),
                ..Default::default()
            },
        ),
        (
            "deep page (before id 1,000)",
            HistoryFilter {
                before: Some(ChangeId(1_000)),
                ..Default::default()
            },
        ),
        (
            "rare: failed, field city, last 30 days",
            HistoryFilter {
                statuses: vec![ChangeStatus::Failed],
                field: Some(FieldName::parse("city").unwrap()),
                from: Some(now - TimeDelta::days(30)),
                ..Default::default()
            },
        ),
    ];
    println!("| query (50 rows a page) | median | slowest of 30 |");
    println!("|---|---|---|");
    for (name, filter) in cases {
        let (median, worst) = time(30, || {
            let filter = filter.clone();
            rt.block_on(store.read(move |db| db.history(&filter, 51)))
                .expect("history")
        });
        println!("| {name} | {median:.2?} | {worst:.2?} |");
    }
    let (median, worst) = time(30, || {
        rt.block_on(store.read(|db| {
            db.count_history(
                &HistoryFilter {
                    statuses: vec![ChangeStatus::Synced],
                    ..Default::default()
                },
                10_000,
            )
        }))
        .expect("count")
    });
    println!("| count for a bulk requeue (capped at 10,000) | {median:.2?} | {worst:.2?} |");
}

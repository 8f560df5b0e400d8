use std::sync::Arc;

use chrono::{TimeDelta, TimeZone};
use serde_json::json;

use super::migrate::latest_known;
use super::*;
use crate::detect::{Person, Sighting, Verdict};
use crate::domain::{ChangeId, ChangeStatus, FieldName, KnvbId, Origin, Source};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

struct TestDb {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: Store,
}

fn open() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.sqlite3");
    let store = Store::open(
        &path,
        Arc::new(Catalogue::builtin()),
        StoreOptions::default(),
    )
    .unwrap();
    TestDb {
        _dir: dir,
        path,
        store,
    }
}

fn acf(email: &str, mobile: &str) -> serde_json::Value {
    json!({
        "knvb-id": "ABC1234",
        "contact_info": [
            {"contact_type": "email", "contact_value": email},
            {"contact_type": "mobile", "contact_value": mobile}
        ],
        "datum-vog": "2023-10-30",
        "financiele-blokkade": false
    })
}

fn sighting(acf: serde_json::Value, minute: u32, source: Source) -> Sighting {
    Sighting {
        person: Person::from_json(&json!({
            "id": 11,
            "modified_gmt": format!("2026-11-26T11:{minute:02}:00"),
            "acf": acf
        }))
        .unwrap(),
        source,
        origin: None,
    }
}

async fn apply(store: &Store, s: Sighting) -> Result<SightingResult> {
    store
        .write(move |db| db.apply_sighting(&s, &SightingContext::default(), t0()))
        .await
}

fn id() -> KnvbId {
    KnvbId::parse("ABC1234").unwrap()
}

async fn changes(store: &Store) -> Vec<ChangeRecord> {
    let mut v = store
        .read(|db| db.list_changes(&[], None, 100, 0))
        .await
        .unwrap();
    v.reverse();
    v
}

#[tokio::test]
async fn fresh_database_has_every_original_table_and_column() {
    let db = open();
    let conn = Connection::open(&db.path).unwrap();
    let columns = |table: &str| -> Vec<String> {
        let mut stmt = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    let members = columns("rondo_club_members");
    for field in [
        "email",
        "email2",
        "mobile",
        "phone",
        "datum_vog",
        "freescout_id",
        "financiele_blokkade",
    ] {
        for col in [
            format!("{field}_rondo_club_modified"),
            format!("{field}_sportlink_modified"),
        ] {
            assert!(members.contains(&col), "missing {col}");
        }
    }
    for col in ["knvb_id", "sync_origin", "tracked_fields_hash"] {
        assert!(members.contains(&col.to_string()), "missing {col}");
    }
    let changes = columns("rondo_club_change_detections");
    for col in [
        "knvb_id",
        "field_name",
        "old_value",
        "new_value",
        "detected_at",
        "rondo_club_modified_gmt",
        "detection_run_id",
        "synced_at",
        "status",
        "attempts",
        "last_error",
        "next_attempt_at",
        "superseded_by",
        "source",
    ] {
        assert!(changes.contains(&col.to_string()), "missing {col}");
    }
    let state = columns("reverse_sync_state");
    for col in ["id", "last_detection_at", "updated_at"] {
        assert!(state.contains(&col.to_string()), "missing {col}");
    }
    let conflicts = columns("conflict_resolutions");
    for col in [
        "knvb_id",
        "field_name",
        "sportlink_value",
        "rondo_club_value",
        "sportlink_modified",
        "rondo_club_modified",
        "winning_system",
        "resolution_reason",
        "resolved_at",
    ] {
        assert!(conflicts.contains(&col.to_string()), "missing {col}");
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn migrating_twice_changes_nothing() {
    let db = open();
    let dump = |path: &Path| -> Vec<(String, i64)> {
        let conn = Connection::open(path).unwrap();
        let mut stmt = conn
            .prepare("SELECT sql, (SELECT COUNT(*) FROM schema_migrations) FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    let before = dump(&db.path);
    drop(db.store);
    let again = Store::open(
        &db.path,
        Arc::new(Catalogue::builtin()),
        StoreOptions::default(),
    )
    .unwrap();
    assert_eq!(
        again.read(|c| c.schema_info()).await.unwrap().version,
        latest_known()
    );
    assert_eq!(dump(&db.path), before);
}

#[tokio::test]
async fn a_newer_schema_is_refused_with_a_clear_message() {
    let db = open();
    drop(db.store);
    let conn = Connection::open(&db.path).unwrap();
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future', 'x')",
        [],
    )
    .unwrap();
    drop(conn);
    let err = Store::open(
        &db.path,
        Arc::new(Catalogue::builtin()),
        StoreOptions::default(),
    )
    .err()
    .expect("must refuse")
    .to_string();
    assert!(err.contains("schema version 999"), "{err}");
    assert!(err.contains("newer than this binary"), "{err}");
}

#[test]
fn every_migration_file_is_embedded_in_order() {
    let mut files: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
    files.sort();
    let embedded: Vec<String> = MIGRATIONS.iter().map(|m| format!("{}.sql", m.1)).collect();
    assert_eq!(files, embedded);
    for (i, m) in MIGRATIONS.iter().enumerate() {
        assert_eq!(m.0, i as i64 + 1);
        assert!(m.1.starts_with(&format!("{:04}_", m.0)));
    }
}

#[tokio::test]
async fn first_sighting_then_one_change_with_baseline_and_hash_in_the_same_write() {
    let db = open();
    let r = apply(
        &db.store,
        sighting(acf("a@x.nl", "+31611111111"), 1, Source::Webhook),
    )
    .await
    .unwrap();
    assert_eq!(r.verdict, Verdict::FirstSighting);
    let r = apply(
        &db.store,
        sighting(acf("b@x.nl", "+31611111111"), 2, Source::Webhook),
    )
    .await
    .unwrap();
    assert_eq!(r.verdict, Verdict::Changed);
    assert_eq!(r.change_ids.len(), 1);
    // The same state again is not re-detected: the hash was written (lessons.md 3).
    let r = apply(
        &db.store,
        sighting(acf("b@x.nl", "06 1111 1111"), 3, Source::Poll),
    )
    .await
    .unwrap();
    assert_eq!(r.verdict, Verdict::Unchanged);
    let c = changes(&db.store).await;
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].old_value.as_str(), c[0].new_value.as_str()),
        ("a@x.nl", "b@x.nl")
    );
    assert_eq!(c[0].status, "pending");
    assert_eq!(c[0].source, "webhook");
    let (_, rondo_modified) = db
        .store
        .read(|c| c.field_timestamps(&id(), &FieldName::parse("email").unwrap()))
        .await
        .unwrap();
    assert_eq!(
        rondo_modified,
        Some(Utc.with_ymd_and_hms(2026, 11, 26, 11, 2, 0).unwrap())
    );
}

#[tokio::test]
async fn revert_gives_two_changes_and_the_later_supersedes() {
    let db = open();
    apply(&db.store, sighting(acf("a@x.nl", ""), 1, Source::Webhook))
        .await
        .unwrap();
    let first = apply(&db.store, sighting(acf("b@x.nl", ""), 2, Source::Webhook))
        .await
        .unwrap();
    let second = apply(&db.store, sighting(acf("a@x.nl", ""), 3, Source::Webhook))
        .await
        .unwrap();
    assert_eq!(second.superseded, first.change_ids);
    let c = changes(&db.store).await;
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].status, "superseded");
    assert_eq!(c[0].superseded_by, Some(second.change_ids[0]));
    assert_eq!(c[1].status, "pending");
    let pending = db.store.read(|c| c.pending_changes(&id())).await.unwrap();
    assert_eq!(pending.len(), 1);
    // Sportlink still holds the value before the first change.
    assert_eq!(pending[0].expected_sportlink_value, "a@x.nl");
    assert_eq!(pending[0].old_value, "b@x.nl");
    assert_eq!(pending[0].new_value, "a@x.nl");
}

#[tokio::test]
async fn the_baseline_moves_on_skipped_sightings_too() {
    let db = open();
    apply(&db.store, sighting(acf("a@x.nl", ""), 1, Source::Webhook))
        .await
        .unwrap();
    let mut forward = sighting(acf("sportlink@x.nl", ""), 2, Source::Webhook);
    forward.origin = Some(Origin::SyncSportlinkToRondoClub);
    let r = apply(&db.store, forward).await.unwrap();
    assert_eq!(r.verdict, Verdict::ForwardSync);
    assert!(changes(&db.store).await.is_empty());
    let member = db.store.read(|c| c.member(&id())).await.unwrap().unwrap();
    assert_eq!(member.baseline["email"], "sportlink@x.nl");
    assert_eq!(
        member.sync_origin.map(|o| o.as_str()),
        Some("sync_sportlink_to_rondo_club")
    );
    // The next user edit diffs against the forward sync's value, the last seen state.
    let mut edit = sighting(acf("user@x.nl", ""), 3, Source::Webhook);
    edit.origin = Some(Origin::UserEdit);
    let r = apply(&db.store, edit).await.unwrap();
    assert_eq!(r.changes[0].old_value, "sportlink@x.nl");
}

#[tokio::test]
async fn a_failure_midway_leaves_nothing_behind() {
    let db = open();
    apply(
        &db.store,
        sighting(acf("a@x.nl", "+31611111111"), 1, Source::Webhook),
    )
    .await
    .unwrap();
    let before = db.store.read(|c| c.member(&id())).await.unwrap();
    // Make the second change row's insert fail, after the first one went in.
    db.store
        .write(|c| {
            c.conn.execute_batch(
                "CREATE TRIGGER boom BEFORE INSERT ON rondo_club_change_detections
                 WHEN NEW.field_name = 'mobile' BEGIN SELECT RAISE(ABORT, 'boom'); END;",
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let err = apply(
        &db.store,
        sighting(acf("b@x.nl", "+31622222222"), 2, Source::Webhook),
    )
    .await;
    assert!(err.is_err());
    assert!(
        changes(&db.store).await.is_empty(),
        "no change row survives"
    );
    assert_eq!(
        db.store.read(|c| c.member(&id())).await.unwrap(),
        before,
        "baseline untouched"
    );
}

#[tokio::test]
async fn one_failing_job_in_a_group_commit_does_not_affect_the_others() {
    let db = open();
    let mut tasks = Vec::new();
    for i in 0..50u32 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write(move |c| {
                    let run = c.start_run(RunKind::Detect, None, false, t0())?;
                    if i % 5 == 0 {
                        return Err(StoreError::Rejected("no".into()));
                    }
                    Ok(run)
                })
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 40);
    let runs = db.store.read(|c| c.list_runs(100, 0)).await.unwrap();
    assert_eq!(runs.len(), 40);
}

#[tokio::test]
async fn a_panicking_job_is_rolled_back_and_the_writer_lives_on() {
    let db = open();
    let r: Result<()> = db
        .store
        .write(|c| {
            c.start_run(RunKind::Detect, None, false, t0())?;
            panic!("bug");
        })
        .await;
    assert!(matches!(r, Err(StoreError::JobPanicked)));
    db.store
        .write(|c| c.start_run(RunKind::Poll, None, false, t0()))
        .await
        .unwrap();
    let runs = db.store.read(|c| c.list_runs(10, 0)).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].kind, "poll");
}

async fn one_pending(db: &TestDb) -> ChangeId {
    apply(&db.store, sighting(acf("a@x.nl", ""), 1, Source::Webhook))
        .await
        .unwrap();
    apply(&db.store, sighting(acf("b@x.nl", ""), 2, Source::Webhook))
        .await
        .unwrap()
        .change_ids[0]
}

#[tokio::test]
async fn mark_synced_by_id_sets_timestamps_and_origin() {
    let db = open();
    let change = one_pending(&db).await;
    let due = db
        .store
        .read(|c| c.due_members(t0(), None, 10))
        .await
        .unwrap();
    assert_eq!(due, [id()]);
    let n = db
        .store
        .write(move |c| c.mark_synced(&[change], t0()))
        .await
        .unwrap();
    assert_eq!(n, 1);
    let c = changes(&db.store).await;
    assert_eq!(c[0].status, "synced");
    assert_eq!(c[0].synced_at, Some(t0()));
    let (sportlink, _) = db
        .store
        .read(|c| c.field_timestamps(&id(), &FieldName::parse("email").unwrap()))
        .await
        .unwrap();
    assert_eq!(sportlink, Some(t0()));
    let member = db.store.read(|c| c.member(&id())).await.unwrap().unwrap();
    assert_eq!(
        member.sync_origin.map(|o| o.as_str()),
        Some("sync_rondo_club_to_sportlink")
    );
    assert!(db
        .store
        .read(|c| c.due_members(t0(), None, 10))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_change_superseded_while_pushed_is_synced_and_its_successor_learns() {
    let db = open();
    let first = one_pending(&db).await;
    let second = apply(&db.store, sighting(acf("c@x.nl", ""), 3, Source::Webhook))
        .await
        .unwrap();
    db.store
        .write(move |c| c.mark_synced(&[first], t0()))
        .await
        .unwrap();
    let pending = db.store.read(|c| c.pending_changes(&id())).await.unwrap();
    assert_eq!(pending[0].id, second.change_ids[0]);
    assert_eq!(pending[0].expected_sportlink_value, "b@x.nl");
}

#[tokio::test]
async fn failures_back_off_then_fail_and_can_be_requeued() {
    let db = open();
    let change = one_pending(&db).await;
    let later = t0() + TimeDelta::minutes(5);
    let failed = db
        .store
        .write(move |c| c.record_failure(&[change], "Sla op not found", later, 2, t0()))
        .await
        .unwrap();
    assert!(failed.is_empty());
    assert!(db
        .store
        .read(|c| c.due_members(t0(), None, 10))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        db.store
            .read(move |c| c.due_members(later, None, 10))
            .await
            .unwrap()
            .len(),
        1
    );
    let failed = db
        .store
        .write(move |c| c.record_failure(&[change], "again", later, 2, t0()))
        .await
        .unwrap();
    assert_eq!(failed, [change]);
    let rec = db
        .store
        .read(move |c| c.change(change))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.status, "failed");
    assert_eq!(rec.attempts, 2);
    assert!(rec.status_reason.unwrap().contains("again"));

    db.store
        .write(move |c| c.requeue(change, t0()))
        .await
        .unwrap();
    let rec = db
        .store
        .read(move |c| c.change(change))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rec.status.as_str(), rec.attempts), ("pending", 0));
    // A pending change cannot be requeued.
    let err = db
        .store
        .write(move |c| c.requeue(change, t0()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("only failed"), "{err}");
}

#[tokio::test]
async fn requeue_is_refused_when_a_newer_change_exists() {
    let db = open();
    let change = one_pending(&db).await;
    db.store
        .write(move |c| {
            c.resolve_without_push(&[change], ChangeStatus::Skipped, "former member", t0())
        })
        .await
        .unwrap();
    apply(&db.store, sighting(acf("c@x.nl", ""), 3, Source::Webhook))
        .await
        .unwrap();
    let err = db
        .store
        .write(move |c| c.requeue(change, t0()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("newer change"), "{err}");
}

#[tokio::test]
async fn counts_and_watermark() {
    let db = open();
    one_pending(&db).await;
    let counts = db.store.read(|c| c.change_counts()).await.unwrap();
    assert_eq!(counts.pending, 1);
    assert_eq!(db.store.read(|c| c.watermark()).await.unwrap(), None);
    db.store
        .write(|c| c.advance_watermark(t0(), t0()))
        .await
        .unwrap();
    db.store
        .write(|c| c.advance_watermark(t0() - TimeDelta::hours(1), t0()))
        .await
        .unwrap();
    assert_eq!(db.store.read(|c| c.watermark()).await.unwrap(), Some(t0()));
}

#[tokio::test]
async fn a_chain_knows_its_earlier_unrecorded_values_back_to_the_last_synced_one() {
    let db = open();
    let first = one_pending(&db).await; // a -> b
    let second = apply(&db.store, sighting(acf("c@x.nl", ""), 3, Source::Webhook))
        .await
        .unwrap()
        .change_ids[0];
    let chain = db
        .store
        .read(move |c| c.unrecorded_chain_values(second))
        .await
        .unwrap();
    assert_eq!(chain, ["b@x.nl"], "the superseded b may have been written");
    db.store
        .write(move |c| c.mark_synced(&[second], t0()))
        .await
        .unwrap();
    apply(&db.store, sighting(acf("d@x.nl", ""), 4, Source::Webhook))
        .await
        .unwrap();
    let fourth = apply(&db.store, sighting(acf("e@x.nl", ""), 5, Source::Webhook))
        .await
        .unwrap()
        .change_ids[0];
    let chain = db
        .store
        .read(move |c| c.unrecorded_chain_values(fourth))
        .await
        .unwrap();
    assert_eq!(chain, ["d@x.nl"], "nothing from before the synced change");
    assert!(db
        .store
        .read(move |c| c.unrecorded_chain_values(first))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_member_first_known_from_a_forward_sync_report_reads_back_typed() {
    let db = open();
    let report = ForwardSyncReport {
        knvb_id: id(),
        fields: [(FieldName::parse("email").unwrap(), json!("s@x.nl"))].into(),
        rondo_club_modified: t0(),
        sportlink_modified: None,
    };
    db.store
        .write(move |c| c.record_forward_sync(&report, t0()))
        .await
        .unwrap();
    let member = db.store.read(|c| c.member(&id())).await.unwrap().unwrap();
    assert_eq!(member.last_seen_source, SeenThrough::ForwardSyncReport);
    assert_eq!(member.last_verdict, Verdict::ForwardSync);
    assert_eq!(member.sync_origin, Some(Origin::SyncSportlinkToRondoClub));
}

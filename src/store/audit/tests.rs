use std::sync::Arc;

use super::*;
use crate::catalogue::Catalogue;
use crate::store::{Store, StoreOptions};

fn member(id: &str) -> AuditMember {
    AuditMember {
        knvb_id: KnvbId::parse(id).unwrap(),
        in_rondo_club: true,
        wp_post_id: None,
        values: Some(TrackedValues::new()),
        modified_gmt: None,
    }
}

fn done() -> AuditMemberDone {
    AuditMemberDone {
        sportlink_state: "found",
        error: None,
        results: vec![NewAuditResult {
            field: Some(FieldName::parse("email").unwrap()),
            ..NewAuditResult::new(AuditVerdict::Equal)
        }],
        read_ms: 10,
        busy_ms: 20,
    }
}

#[tokio::test]
async fn one_run_at_a_time_resumable_and_a_cancelled_run_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("a.sqlite3"),
        Arc::new(Catalogue::builtin()),
        StoreOptions::default(),
    )
    .unwrap();
    let now = Utc::now();
    let run = store
        .write(move |c| c.start_audit(AuditTrigger::Cli, now))
        .await
        .unwrap();
    let refused = store
        .write(move |c| c.start_audit(AuditTrigger::Api, now))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Rejected(_))),
        "{refused:?}"
    );
    let id = run.id;
    let members = vec![member("AAA1"), member("BBB2"), member("CCC3")];
    let total = store
        .write(move |c| c.record_audit_listing(id, RondoSource::Stored, &members, now))
        .await
        .unwrap();
    assert_eq!(total, 3);
    let first = KnvbId::parse("AAA1").unwrap();
    store
        .write(move |c| c.finish_audit_member(id, &first, &done(), now))
        .await
        .unwrap();
    // A member recorded twice (a redo after a kill between the write and the next unit)
    // counts once.
    let first = KnvbId::parse("AAA1").unwrap();
    store
        .write(move |c| c.finish_audit_member(id, &first, &done(), now))
        .await
        .unwrap();
    let todo = store
        .read(move |c| c.audit_members_todo(id, 10))
        .await
        .unwrap();
    let todo: Vec<&str> = todo.iter().map(|m| m.knvb_id.as_str()).collect();
    assert_eq!(todo, ["BBB2", "CCC3"]);
    let run = store.read(move |c| c.audit_run(id)).await.unwrap().unwrap();
    assert_eq!((run.members_done, run.members_total), (1, 3));
    assert_eq!(run.estimated_ms_left(), Some(40));

    assert!(store.write(move |c| c.cancel_audit(id, now)).await.unwrap());
    let second = KnvbId::parse("BBB2").unwrap();
    let late = store
        .write(move |c| c.finish_audit_member(id, &second, &done(), now))
        .await;
    assert!(matches!(late, Err(StoreError::Rejected(_))), "{late:?}");
    let rows = store
        .read(move |c| c.audit_results(id, &[], 100, 0))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(store.read(|c| c.active_audit()).await.unwrap().is_none());
    // A row that does not differ is never queued.
    let row = rows[0].id;
    let queued = store
        .write(move |c| c.queue_audit_rows(id, &[row, 999], "test", now))
        .await
        .unwrap();
    assert!(queued.iter().all(|q| q.change_id.is_none()), "{queued:?}");
}

use super::*;
use crate::domain::{ChangeId, FieldName, KnvbId};

const GATHER: Duration = Duration::from_secs(30);
const COOLDOWN: Duration = Duration::from_secs(3_600);

fn failed(knvb: &str, change: i64) -> Stamped {
    Stamped {
        at: Utc::now(),
        event: AlertEvent::ChangeFailed {
            change_id: ChangeId(change),
            knvb_id: KnvbId::parse(knvb).unwrap(),
            field: FieldName::parse("email_1").unwrap(),
            reason: format!("reason {change}"),
        },
    }
}

fn change_ids(d: &Digest) -> Vec<i64> {
    d.events
        .iter()
        .map(|s| match &s.event {
            AlertEvent::ChangeFailed { change_id, .. } => change_id.0,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[test]
fn the_first_event_waits_only_for_the_gathering_window() {
    let t0 = Instant::now();
    let mut g = Grouper::new(GATHER, COOLDOWN);
    g.add(failed("AB1", 1), t0);
    g.add(failed("AB1", 2), t0 + Duration::from_secs(10));
    assert_eq!(g.next_due(), Some(t0 + GATHER));
    assert!(g
        .take_due(t0 + GATHER - Duration::from_millis(1))
        .is_empty());
    let digests = g.take_due(t0 + GATHER);
    assert_eq!(digests.len(), 1);
    assert_eq!(change_ids(&digests[0]), [1, 2]);
    assert_eq!(g.next_due(), None);
}

#[test]
fn events_within_the_cooldown_become_one_digest_at_its_end() {
    let t0 = Instant::now();
    let mut g = Grouper::new(GATHER, COOLDOWN);
    g.add(failed("AB1", 1), t0);
    let sent_at = t0 + GATHER;
    assert_eq!(g.take_due(sent_at).len(), 1);
    for (i, minutes) in [5u64, 20, 50].into_iter().enumerate() {
        g.add(
            failed("AB1", 10 + i as i64),
            sent_at + Duration::from_secs(minutes * 60),
        );
    }
    assert_eq!(g.next_due(), Some(sent_at + COOLDOWN));
    assert!(g
        .take_due(sent_at + COOLDOWN - Duration::from_secs(1))
        .is_empty());
    let digests = g.take_due(sent_at + COOLDOWN);
    assert_eq!(digests.len(), 1);
    assert_eq!(change_ids(&digests[0]), [10, 11, 12]);
}

#[test]
fn after_a_quiet_cooldown_the_next_event_is_prompt_again() {
    let t0 = Instant::now();
    let mut g = Grouper::new(GATHER, COOLDOWN);
    g.add(failed("AB1", 1), t0);
    g.take_due(t0 + GATHER);
    let later = t0 + GATHER + COOLDOWN + Duration::from_secs(1);
    assert!(g.take_due(later).is_empty());
    g.add(failed("AB1", 2), later);
    assert_eq!(g.next_due(), Some(later + GATHER));
}

#[test]
fn subjects_are_independent() {
    let t0 = Instant::now();
    let mut g = Grouper::new(GATHER, COOLDOWN);
    g.add(failed("AB1", 1), t0);
    g.add(failed("CD2", 2), t0);
    g.add(
        Stamped {
            at: Utc::now(),
            event: AlertEvent::CircuitBreakerTripped {
                reason: "section not found".into(),
                failures: 5,
            },
        },
        t0,
    );
    let digests = g.take_due(t0 + GATHER);
    let subjects: Vec<_> = digests.iter().map(|d| d.subject.to_string()).collect();
    assert_eq!(subjects, ["member AB1", "member CD2", "circuit breaker"]);
    assert!(digests.iter().all(|d| d.events.len() == 1));
}

#[test]
fn take_all_flushes_pending_digests_regardless_of_timing() {
    let t0 = Instant::now();
    let mut g = Grouper::new(GATHER, COOLDOWN);
    g.add(failed("AB1", 1), t0);
    g.take_due(t0 + GATHER);
    g.add(failed("AB1", 2), t0 + GATHER);
    g.add(failed("CD2", 3), t0 + GATHER);
    let all = g.take_all();
    assert_eq!(all.len(), 2);
    assert_eq!(g.next_due(), None);
    assert!(g.take_all().is_empty());
}

#[test]
fn a_flood_is_bounded_and_counted() {
    let t0 = Instant::now();
    let mut g = Grouper::new(GATHER, COOLDOWN);
    for i in 0..(MAX_EVENTS_PER_DIGEST as i64 + 7) {
        g.add(failed("AB1", i), t0);
    }
    let d = g.take_all().remove(0);
    assert_eq!(d.events.len(), MAX_EVENTS_PER_DIGEST);
    assert_eq!(d.omitted, 7);
    assert!(d.text().contains("and 7 more events"));
}

#[test]
fn the_text_and_json_list_every_event() {
    let t0 = Instant::now();
    let mut g = Grouper::new(GATHER, COOLDOWN);
    g.add(failed("AB1", 1), t0);
    g.add(
        Stamped {
            at: Utc::now(),
            event: AlertEvent::ConflictLost {
                change_id: ChangeId(2),
                knvb_id: KnvbId::parse("AB1").unwrap(),
                field: FieldName::parse("mobile_1").unwrap(),
                sportlink_value: "0611111111".into(),
                rondo_club_value: "0622222222".into(),
                reason: "sportlink_newer".into(),
            },
        },
        t0,
    );
    let d = g.take_all().remove(0);
    assert_eq!(
        d.title(),
        "rondo-reverse-sync: member AB1: 1 conflict lost, 1 failed"
    );
    let text = d.text();
    assert!(
        text.contains("change 1 (AB1, email_1) failed: reason 1"),
        "{text}"
    );
    assert!(text.contains("Sportlink keeps \"0611111111\", Rondo Club had \"0622222222\""));
    assert!(text.contains("one digest per 1 h"), "{text}");
    let json = serde_json::to_value(d.payload()).unwrap();
    assert_eq!(json["subject"]["kind"], "member");
    assert_eq!(json["events"][0]["kind"], "change_failed");
    assert_eq!(json["events"][0]["change_id"], 1);
    assert_eq!(json["events"][1]["sportlink_value"], "0611111111");
    assert!(json["events"][1]["at"].as_str().unwrap().ends_with('Z'));
}

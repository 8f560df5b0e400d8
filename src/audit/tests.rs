use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};

use super::report::csv_cell;
use super::*;
use crate::domain::{ChangeId, FieldName};
use crate::store::{
    AuditMemberContext, AuditMemberDone, AuditTrigger, NewAuditResult, RondoSource,
};

fn member(values: &[(&str, &str)]) -> AuditMember {
    AuditMember {
        knvb_id: KnvbId::parse("ABC1234").unwrap(),
        in_rondo_club: true,
        wp_post_id: Some(7),
        values: Some(
            values
                .iter()
                .map(|(k, v)| (FieldName::parse(k).unwrap(), (*v).to_owned()))
                .collect(),
        ),
        modified_gmt: Some(Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap()),
    }
}

fn found(values: &[(&str, &str)]) -> Result<SportlinkRead, String> {
    Ok(SportlinkRead::Found {
        former: false,
        values: values
            .iter()
            .map(|(k, v)| (FieldName::parse(k).unwrap(), Ok((*v).to_owned())))
            .collect(),
        app_requests: 0,
    })
}

fn verdict_of<'a>(done: &'a AuditMemberDone, field: &str) -> &'a NewAuditResult {
    done.results
        .iter()
        .find(|r| r.field.as_deref() == Some(field))
        .unwrap()
}

#[test]
fn equal_after_normalisation_differs_and_pending() {
    let catalogue = Catalogue::builtin();
    let m = member(&[
        ("mobile", "+31612345678"),
        ("email", "a@example.nl"),
        ("datum_vog", "2023-10-30"),
    ]);
    let read = found(&[
        ("mobile", "06 12345678"),
        ("email", "b@example.nl"),
        ("datum_vog", "30 okt 2023"),
    ]);
    let mut context = AuditMemberContext::default();
    let done = compare(&catalogue, &m, &read, &context);
    assert_eq!(verdict_of(&done, "mobile").verdict, "equal");
    assert_eq!(verdict_of(&done, "datum_vog").verdict, "equal");
    let email = verdict_of(&done, "email");
    assert_eq!(email.verdict, "differs");
    assert_eq!(email.sportlink_value.as_deref(), Some("b@example.nl"));
    assert_eq!(email.rondo_club_value.as_deref(), Some("a@example.nl"));
    assert_eq!(email.rondo_club_modified, m.modified_gmt);
    // Fields neither side gave are unreadable, not equal.
    assert_eq!(verdict_of(&done, "city").verdict, "unreadable");

    context.pending.push((
        ChangeId(9),
        FieldName::parse("email").unwrap(),
        "a@example.nl".into(),
    ));
    let done = compare(&catalogue, &m, &read, &context);
    let email = verdict_of(&done, "email");
    assert_eq!(email.verdict, "differs_pending");
    assert_eq!(email.pending_change_id, Some(ChangeId(9)));
}

#[test]
fn unknown_on_either_side_is_one_member_row() {
    let catalogue = Catalogue::builtin();
    let m = member(&[("email", "a@example.nl")]);
    let unknown = Ok(SportlinkRead::Unknown {
        detail: "404".into(),
    });
    let done = compare(&catalogue, &m, &unknown, &AuditMemberContext::default());
    assert_eq!(done.results.len(), 1);
    assert_eq!(done.results[0].verdict, "unknown_in_sportlink");

    let mut gone = m.clone();
    gone.in_rondo_club = false;
    let done = compare(
        &catalogue,
        &gone,
        &found(&[("email", "a@example.nl")]),
        &AuditMemberContext::default(),
    );
    assert_eq!(done.results.len(), 1);
    assert_eq!(done.results[0].verdict, "unknown_in_rondo_club");
}

#[test]
fn a_newer_sighting_wins_over_the_listing() {
    let catalogue = Catalogue::builtin();
    let m = member(&[("email", "old@example.nl")]);
    let context = AuditMemberContext {
        newer_baseline: Some((
            BTreeMap::from([(
                FieldName::parse("email").unwrap(),
                "new@example.nl".to_owned(),
            )]),
            None,
        )),
        ..Default::default()
    };
    let done = compare(
        &catalogue,
        &m,
        &found(&[("email", "new@example.nl")]),
        &context,
    );
    assert_eq!(verdict_of(&done, "email").verdict, "equal");
}

#[test]
fn csv_quotes_and_defuses_formulas_but_keeps_phones() {
    assert_eq!(csv_cell("+31612345678"), "+31612345678");
    assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
    assert_eq!(csv_cell("a,b"), "\"a,b\"");
    assert_eq!(csv_cell("+cmd"), "'+cmd");
}

#[test]
fn estimate_follows_the_pace_so_far() {
    let run = AuditRun {
        id: 1,
        status: AuditRunStatus::Reading,
        trigger: AuditTrigger::Cli,
        rondo_source: Some(RondoSource::Rest),
        started_at: Utc::now(),
        finished_at: None,
        members_total: 10,
        members_done: 4,
        busy_ms: 8000,
        error: None,
    };
    assert_eq!(run.estimated_ms_left(), Some(12000));
    assert!(progress_line(&run).contains("4 of 10 members, about 12s left"));
}

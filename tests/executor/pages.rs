//! A member with changes on three pages; a failing page fails the member as a whole, and the
//! retry finds the saved page in sync and does not write it again.

use rondo_reverse_sync::domain::ChangeStatus;
use rondo_reverse_sync::sportlink::executor::{FieldDecision, MemberResult};
use rrs_standins::simulator::Section;

use crate::support::chromium::{browser_tests_skipped, OTP_SECRET, PASSWORD};
use crate::support::rig::{assert_done, saves, Member, Rig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_page_fails_the_member_and_the_retry_does_not_rewrite_saved_pages() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("PAGE001");
    rig.seed(&m).await;
    m.email = "drie@example.nl".into();
    m.datum_vog = "2026-01-15".into();
    m.blokkade = true;
    let ids = rig.user_edit(&m).await;
    assert_eq!(ids.len(), 3);
    // Sportlink stores something else than typed on the /other page: that page fails.
    rig.state()
        .update_faults(|f| f.store_differs = Some("Remarks8".into()));

    let mut executor = rig.executor();
    let first = rig.run(&mut executor, None).await;
    let MemberResult::Failed {
        error,
        screenshot,
        html,
        ..
    } = &first.members[0].result
    else {
        panic!("expected a failure: {:?}", first.members[0]);
    };
    assert!(error.contains("Vrije invoervelden"), "{error}");
    assert!(error.contains("not marked synced"), "{error}");
    // Fail fast: nothing is marked, the financial page was not touched.
    for id in &ids {
        let c = rig.change(*id).await;
        assert_eq!(c.status, ChangeStatus::Pending, "{c:?}");
        assert_eq!(c.attempts, 1);
        assert!(c
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("Vrije invoervelden"));
    }
    let stored = rig.state().member("PAGE001").unwrap();
    assert_eq!(
        stored.communication.email1, "drie@example.nl",
        "general was saved"
    );
    assert!(!stored.has_financial_block, "financial was not reached");
    assert_eq!(saves(&rig.state(), "PAGE001").len(), 2);

    // The failure left a screenshot and the page HTML, without secrets.
    let screenshot = screenshot.as_ref().expect("screenshot kept");
    let html = html.as_ref().expect("HTML kept");
    assert!(std::fs::metadata(screenshot).unwrap().len() > 1000);
    let page = std::fs::read_to_string(html).unwrap();
    assert!(
        page.contains("Vrije invoervelden"),
        "the failed page was kept"
    );
    assert!(!page.contains(PASSWORD) && !page.contains(OTP_SECRET));

    // The fault was one save; the retry writes only what is missing.
    let second = rig.run(&mut executor, None).await;
    executor.close().await;
    assert!(
        matches!(
            second.members[0].result,
            MemberResult::Done { synced: 3, .. }
        ),
        "{:?}",
        second.members[0]
    );
    let email = second.members[0]
        .fields
        .iter()
        .find(|f| f.field == "email")
        .unwrap();
    assert_eq!(email.decision, FieldDecision::AlreadyInSync);
    let posted = saves(&rig.state(), "PAGE001");
    let communication_saves = posted
        .iter()
        .filter(|(_, fields)| fields.iter().any(|(k, _)| k == "Email1"))
        .count();
    assert_eq!(
        communication_saves, 1,
        "the saved page was not written again: {posted:?}"
    );
    assert_eq!(posted.len(), 4, "{posted:?}");
    for id in &ids {
        assert_eq!(rig.change(*id).await.status, ChangeStatus::Synced);
    }
    let stored = rig.state().member("PAGE001").unwrap();
    assert_eq!(stored.remark(8), Some("2026-01-15"));
    assert!(stored.has_financial_block);
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_the_member_lacks_is_skipped_and_the_other_pages_are_pushed() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("PAGE002");
    rig.seed(&m).await;
    rig.state()
        .seed_member(m.sim().without_section(Section::FreeFields));
    m.email = "twee@example.nl".into();
    m.datum_vog = "2026-01-15".into();
    m.blokkade = true;
    let ids = rig.user_edit(&m).await;
    let report = rig.push().await;
    assert_done(&report, 2);
    let mut statuses = Vec::new();
    for id in &ids {
        let c = rig.change(*id).await;
        statuses.push((c.field.clone(), c.status, c.status_reason.clone()));
    }
    let vog = statuses.iter().find(|(f, ..)| f == "datum_vog").unwrap();
    assert_eq!(vog.1, ChangeStatus::Skipped, "{statuses:?}");
    assert!(
        vog.2
            .as_deref()
            .unwrap_or("")
            .contains("\"Vrije invoervelden\""),
        "{statuses:?}"
    );
    assert!(statuses
        .iter()
        .filter(|(f, ..)| f != "datum_vog")
        .all(|(_, s, _)| *s == ChangeStatus::Synced));
    let stored = rig.state().member("PAGE002").unwrap();
    assert_eq!(stored.communication.email1, "twee@example.nl");
    assert!(stored.has_financial_block);
    rig.finish().await;
}

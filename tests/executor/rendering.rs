//! The page model against what broke automation before: JavaScript rendering with a delay, an
//! extra header button, members lacking sections, old and new input names.

use rondo_reverse_sync::domain::ChangeStatus;
use rondo_reverse_sync::sportlink::executor::MemberResult;
use rrs_standins::simulator::Section;

use crate::support::chromium::browser_tests_skipped;
use crate::support::rig::{assert_done, saves, Member, Rig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sections_rendered_after_a_delay_are_waited_for() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    // Longer than the settle time: a fixed wait would have given up.
    rig.state().update_faults(|f| f.render_delay_ms = 1_500);
    let mut m = Member::jan("REN0001");
    rig.seed(&m).await;
    m.email = "traag@example.org".into();
    m.datum_vog = "2024-12-24".into();
    rig.user_edit(&m).await;
    let report = rig.push().await;
    assert_done(&report, 2);
    let stored = rig.state().member("REN0001").unwrap();
    assert_eq!(stored.communication.email1, "traag@example.org");
    assert_eq!(stored.remark(8), Some("2024-12-24"));
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extra_header_button_changes_nothing() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    rig.state().update_faults(|f| f.extra_header_button = true);
    let mut m = Member::jan("HDR0001");
    rig.seed(&m).await;
    m.freescout_id = "31337".into();
    m.blokkade = true;
    m.city = "Utrecht".into();
    rig.user_edit(&m).await;
    let report = rig.push().await;
    assert_done(&report, 3);
    let stored = rig.state().member("HDR0001").unwrap();
    assert_eq!(stored.remark(3), Some("31337"));
    assert!(stored.has_financial_block);
    assert_eq!(stored.address.city, "Utrecht");
    // Each save went to its own section's endpoint with only that section's keys.
    let posted = saves(&rig.state(), "HDR0001");
    assert_eq!(posted.len(), 3, "{posted:?}");
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_lacking_sections() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    // Fewer sections than usual, but the one we need is there: found by its heading.
    let mut few = Member::jan("SEC0001");
    rig.seed(&few).await;
    rig.state().seed_member(
        few.sim()
            .without_section(Section::PersonalDetails)
            .without_section(Section::Address)
            .without_section(Section::Parents),
    );
    few.email = "weinig@example.org".into();
    let few_ids = rig.user_edit(&few).await;
    // The section we need is missing for this member (others have it): skipped with the
    // section named; nothing is touched.
    let mut lacking = Member::jan("SEC0002");
    rig.seed(&lacking).await;
    rig.state()
        .seed_member(lacking.sim().without_section(Section::Address));
    lacking.street = "Nergensweg".into();
    let lacking_ids = rig.user_edit(&lacking).await;

    let mut executor = rig.executor();
    let report = rig.run(&mut executor, None).await;
    executor.close().await;
    let by_id = |id: &str| {
        report
            .members
            .iter()
            .find(|m| m.knvb_id.as_str() == id)
            .unwrap()
            .result
            .clone()
    };
    assert!(matches!(
        by_id("SEC0001"),
        MemberResult::Done { synced: 1, .. }
    ));
    let MemberResult::Skipped { reason } = by_id("SEC0002") else {
        panic!("{report:?}");
    };
    assert!(reason.contains("no section \"Adres\""), "{reason}");
    assert_eq!(rig.change(few_ids[0]).await.status, ChangeStatus::Synced);
    assert_eq!(
        rig.change(lacking_ids[0]).await.status,
        ChangeStatus::Skipped
    );
    assert!(saves(&rig.state(), "SEC0002").is_empty());
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_and_new_input_names() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut new_names = Member::jan("NAM0001");
    let mut old_names = Member::jan("NAM0002");
    rig.seed(&new_names).await;
    rig.seed(&old_names).await;
    for m in [&mut new_names, &mut old_names] {
        m.email = format!("{}@nieuw.nl", m.knvb_id.to_lowercase());
        m.mobile = "+31699998888".into();
        m.phone = "+31307654321".into();
        m.datum_vog = "2025-07-04".into();
        m.freescout_id = "55".into();
    }
    rig.user_edit(&new_names).await;
    rig.user_edit(&old_names).await;

    let mut executor = rig.executor();
    let first = rig.run(&mut executor, Some("NAM0001")).await;
    // Sportlink goes back to the old names (Email, Mobile, Phone, inputRemarksN).
    rig.state().update_faults(|f| f.old_input_names = true);
    let second = rig.run(&mut executor, Some("NAM0002")).await;
    executor.close().await;
    for (report, id) in [(first, "NAM0001"), (second, "NAM0002")] {
        assert!(
            matches!(
                report.members[0].result,
                MemberResult::Done { synced: 5, .. }
            ),
            "{id}: {report:?}"
        );
        let stored = rig.state().member(id).unwrap();
        assert_eq!(
            stored.communication.email1,
            format!("{}@nieuw.nl", id.to_lowercase())
        );
        assert_eq!(stored.communication.mobile1, "0699998888");
        assert_eq!(stored.communication.telephone1, "0307654321");
        assert_eq!(stored.remark(8), Some("2025-07-04"));
        assert_eq!(stored.remark(3), Some("55"));
    }
    rig.finish().await;
}

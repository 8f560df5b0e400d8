//! Every tracked field end to end: pending change → value stored in the simulator → change
//! synced → `{field}_sportlink_modified` and `sync_origin` set.

use rondo_reverse_sync::domain::ChangeStatus;
use rondo_reverse_sync::sportlink::executor::MemberResult;

use crate::support::chromium::browser_tests_skipped;
use crate::support::rig::{saves, Member, Rig};

async fn assert_synced(rig: &Rig, knvb_id: &str, fields: &[&str]) {
    let changes = rig.changes_of(knvb_id).await;
    for field in fields {
        let change = changes
            .iter()
            .find(|c| c.field == *field)
            .unwrap_or_else(|| panic!("no change for {field}"));
        assert_eq!(change.status, ChangeStatus::Synced, "{field}: {change:?}");
        assert!(change.synced_at.is_some(), "{field} has no synced_at");
        let (sportlink_modified, rondo_modified) = rig.timestamps(knvb_id, field).await;
        assert!(
            sportlink_modified.is_some(),
            "{field}_sportlink_modified not set"
        );
        assert!(
            rondo_modified.is_some(),
            "{field}_rondo_club_modified not set"
        );
        assert!(
            sportlink_modified > rondo_modified,
            "{field}: the push is the newer write"
        );
    }
    assert_eq!(
        rig.sync_origin(knvb_id).await.as_deref(),
        Some("sync_rondo_club_to_sportlink")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seven_original_fields_end_to_end() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("ORG0001");
    m.blokkade = false;
    rig.seed(&m).await;
    m.email = "nieuw@example.nl".into();
    m.email2 = "tweede@example.nl".into();
    m.mobile = "+31687654321".into();
    m.phone = "+31101234567".into();
    m.datum_vog = "2025-03-01".into();
    m.freescout_id = "4242".into();
    m.blokkade = true;
    let ids = rig.user_edit(&m).await;
    assert_eq!(ids.len(), 7, "seven changes detected");

    let mut executor = rig.executor();
    let report = rig.run(&mut executor, None).await;
    executor.close().await;

    assert_eq!(report.members.len(), 1);
    assert!(
        matches!(
            report.members[0].result,
            MemberResult::Done {
                synced: 7,
                conflicts_lost: 0
            }
        ),
        "{:?}",
        report.members[0]
    );
    let stored = rig.state().member("ORG0001").unwrap();
    assert_eq!(stored.communication.email1, "nieuw@example.nl");
    assert_eq!(stored.communication.email2, "tweede@example.nl");
    // Typed in Dutch local form.
    assert_eq!(stored.communication.mobile1, "0687654321");
    assert_eq!(stored.communication.telephone1, "0101234567");
    assert_eq!(stored.remark(8), Some("2025-03-01"));
    assert_eq!(stored.remark(3), Some("4242"));
    assert!(stored.has_financial_block);
    assert_synced(
        &rig,
        "ORG0001",
        &[
            "email",
            "email2",
            "mobile",
            "phone",
            "datum_vog",
            "freescout_id",
            "financiele_blokkade",
        ],
    )
    .await;
    // One save per section: communication, free fields, financial.
    let posted = saves(&rig.state(), "ORG0001");
    assert_eq!(posted.len(), 3, "{posted:?}");
    assert!(posted.iter().all(|(status, _)| (200..300).contains(status)));
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_and_second_contact_fields_end_to_end() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("ADR0001");
    m.addition = "bis".into();
    rig.seed(&m).await;
    m.street = "Kerkweg".into();
    m.number = "12".into();
    // Removing the addition is a real change: pushed as an empty input.
    m.addition = String::new();
    m.postcode = "9876 ZX".into();
    m.city = "Groningen".into();
    m.country = "BE".into();
    m.mobile2 = "+31611112222".into();
    m.phone2 = "+3250123456".into();
    let ids = rig.user_edit(&m).await;
    assert_eq!(ids.len(), 8);

    let mut executor = rig.executor();
    let report = rig.run(&mut executor, None).await;
    executor.close().await;
    assert!(
        matches!(
            report.members[0].result,
            MemberResult::Done { synced: 8, .. }
        ),
        "{:?}",
        report.members[0]
    );
    let stored = rig.state().member("ADR0001").unwrap();
    assert_eq!(stored.address.street_name, "Kerkweg");
    assert_eq!(stored.address.address_number, "12");
    assert_eq!(stored.address.address_number_appendix, "");
    assert_eq!(stored.address.zip_code, "9876ZX");
    assert_eq!(stored.address.city, "Groningen");
    assert_eq!(stored.address.country_code, "BE");
    assert_eq!(stored.communication.mobile2, "0611112222");
    // A foreign number is typed as E.164.
    assert_eq!(stored.communication.telephone2, "+3250123456");
    assert_synced(
        &rig,
        "ADR0001",
        &[
            "street_name",
            "house_number",
            "house_number_addition",
            "postal_code",
            "city",
            "country_code",
            "mobile2",
            "phone2",
        ],
    )
    .await;
    rig.finish().await;
}

/// Issue 14: the executor never builds a Sportlink URL or data request of its own. Whatever the
/// variant's data URL format, every request the simulator received was either a navigation (the
/// login entry, the login forms, member pages) or made by the page's own script (which marks
/// its requests with a header whose name is drawn per variant). And the navigations went only
/// to the login entry, the login pages and member pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_a_navigation_or_the_apps_own() {
    if browser_tests_skipped() {
        return;
    }
    let rig = Rig::start().await;
    let mut m = Member::jan("OWN0001");
    rig.seed(&m).await;
    m.email = "eigen@example.org".into();
    m.city = "Zwolle".into();
    m.datum_vog = "2025-02-03".into();
    m.blokkade = true;
    rig.user_edit(&m).await;
    // A former member and one without the address section, for the status and absence paths.
    let mut former = Member::jan("OWN0002");
    rig.seed(&former).await;
    rig.state().seed_member(former.sim().former());
    former.email = "weg@example.org".into();
    rig.user_edit(&former).await;
    let mut lacking = Member::jan("OWN0003");
    rig.seed(&lacking).await;
    rig.state().seed_member(
        lacking
            .sim()
            .without_section(rrs_standins::simulator::Section::Address),
    );
    lacking.street = "Nergens".into();
    rig.user_edit(&lacking).await;
    let mut executor = rig.executor();
    let report = rig.run(&mut executor, None).await;
    executor.close().await;
    assert_eq!(report.members.len(), 3, "{report:?}");
    let log = rig.state().request_log();
    assert!(log.iter().any(|r| r.is_save()), "the saves are in the log");
    let variant = rig.state().variant();
    for r in &log {
        assert!(
            r.navigation || r.app_marked,
            "a request neither a navigation nor the app's own: {} {}?{} ({})",
            r.method,
            r.path,
            r.query,
            variant.repeat_hint()
        );
        if r.navigation {
            let allowed = r.path == "/"
                || r.path.starts_with("/auth/realms/")
                || r.path.starts_with("/member/member-details/");
            assert!(
                allowed,
                "navigation to {} ({})",
                r.path,
                variant.repeat_hint()
            );
        }
    }
    rig.finish().await;
}

/// Issue 14: pinned variants that differ from the plain simulator where the old executor was
/// overfitted — the data requests' URL format (another query parameter under a path prefix; the
/// id in the path), the section markup (article/h4, fieldset/legend, panel/role=heading) and
/// the save (PUT without a re-fetch; POST with one). Each pushes and verifies three pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variants_with_other_data_urls_and_markup_push_and_verify() {
    use rrs_standins::simulator::{MemberIdIn, Variant};

    if browser_tests_skipped() {
        return;
    }
    for seed in [1u64, 4, 6] {
        let variant = Variant::draw(seed);
        assert!(
            variant.member_id_in != MemberIdIn::Query("PersonId".into())
                || !variant.path_prefix.is_empty(),
            "seed {seed} keeps the plain URL format; pick another"
        );
        let rig = Rig::start().await;
        rig.state().set_variant(variant);
        let mut m = Member::jan(&format!("VAR{seed:04}"));
        rig.seed(&m).await;
        m.email = format!("variant{seed}@example.org");
        m.datum_vog = "2025-03-04".into();
        m.blokkade = true;
        let ids = rig.user_edit(&m).await;
        let mut executor = rig.executor();
        let report = rig.run(&mut executor, None).await;
        executor.close().await;
        assert!(
            matches!(
                report.members[0].result,
                MemberResult::Done { synced: 3, .. }
            ),
            "seed {seed}: {report:?}"
        );
        for id in &ids {
            assert_eq!(
                rig.change(*id).await.status,
                ChangeStatus::Synced,
                "seed {seed}"
            );
        }
        let stored = rig.state().member(&format!("VAR{seed:04}")).unwrap();
        assert_eq!(
            stored.communication.email1,
            format!("variant{seed}@example.org")
        );
        assert_eq!(stored.remark(8), Some("2025-03-04"));
        assert!(stored.has_financial_block, "seed {seed}");
        rig.finish().await;
    }
}

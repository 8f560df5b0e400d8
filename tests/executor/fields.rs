//! Every tracked field end to end: pending change → value stored in the simulator → change
//! synced → `{field}_sportlink_modified` and `sync_origin` set.

use rondo_reverse_sync::domain::ChangeStatus;
use rondo_reverse_sync::sportlink::executor::MemberResult;

use crate::support::chromium::chromium_available;
use crate::support::rig::{saves, Member, Rig};

async fn assert_synced(rig: &Rig, knvb_id: &str, fields: &[&str]) {
    let changes = rig.changes_of(knvb_id).await;
    for field in fields {
        let change = changes
            .iter()
            .find(|c| c.field == *field)
            .unwrap_or_else(|| panic!("no change for {field}"));
        assert_eq!(
            change.status,
            ChangeStatus::Synced.as_str(),
            "{field}: {change:?}"
        );
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
    if !chromium_available() {
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
    if !chromium_available() {
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

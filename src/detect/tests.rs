use chrono::TimeZone;
use serde_json::json;

use super::*;

fn cat() -> Catalogue {
    Catalogue::builtin()
}

fn person(acf: serde_json::Value) -> Person {
    Person::from_json(&json!({"id": 7, "modified_gmt": "2026-11-26T11:30:20", "acf": acf})).unwrap()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

fn sighting(acf: serde_json::Value, source: Source, origin: Option<Origin>) -> Sighting {
    Sighting {
        person: person(acf),
        source,
        origin,
    }
}

fn contact_layout() -> serde_json::Value {
    json!({
        "knvb-id": "ABC1234",
        "contact_info": [
            {"contact_type": "email", "contact_label": "", "contact_value": "jan@example.nl"},
            {"contact_type": "mobile", "contact_label": "", "contact_value": "+31612345678"},
            {"contact_type": "phone", "contact_label": "", "contact_value": "+31201234567"},
            {"contact_type": "email", "contact_label": "werk", "contact_value": "jan@work.nl"},
            {"contact_type": "website", "contact_label": "", "contact_value": "https://x.nl"}
        ],
        "datum-vog": "2023-10-30",
        "freescout-id": 42,
        "financiele-blokkade": false
    })
}

fn prior_of(acf: serde_json::Value) -> Prior {
    let p = person(acf);
    let values = extract(&cat(), &p);
    Prior {
        hash: tracked_hash(&p.knvb_id().unwrap(), &values),
        baseline: values,
        sync_origin: None,
        sync_origin_at: None,
        modified_gmt: p.modified_gmt,
    }
}

#[test]
fn extracts_the_contact_info_layout() {
    let v = extract(&cat(), &person(contact_layout()));
    assert_eq!(v["email"], "jan@example.nl");
    assert_eq!(v["email2"], "jan@work.nl", "second email row is email2");
    assert_eq!(v["mobile"], "+31612345678");
    assert_eq!(v["phone"], "+31201234567");
    assert_eq!(v["datum_vog"], "2023-10-30");
    assert_eq!(v["freescout_id"], "42");
    assert_eq!(v["financiele_blokkade"], "false");
    assert_eq!(v["street_name"], "", "no addresses repeater means empty");
}

#[test]
fn email2_row_wins_over_second_email_row() {
    let mut acf = contact_layout();
    acf["contact_info"]
        .as_array_mut()
        .unwrap()
        .push(json!({"contact_type": "email2", "contact_value": "tweede@example.nl"}));
    let v = extract(&cat(), &person(acf));
    assert_eq!(v["email2"], "tweede@example.nl");
}

#[test]
fn extracts_the_fixed_field_layout_which_wins() {
    let mut acf = contact_layout();
    let obj = acf.as_object_mut().unwrap();
    obj.insert("email_1".into(), json!("vast@example.nl"));
    obj.insert("email_2".into(), json!(""));
    obj.insert("mobile_1".into(), json!("06 1234 5678"));
    obj.insert("mobile_2".into(), json!("+32470123456"));
    obj.insert("telephone_1".into(), json!(null));
    obj.insert("telephone_2".into(), json!("020-7654321"));
    obj.insert(
        "addresses".into(),
        json!([
            {"address_label": "Work", "street_name": "Kantoorweg", "city": "Utrecht"},
            {"address_label": "Home", "street_name": " Dorpsstraat ", "house_number": 12,
             "house_number_addition": "a", "postal_code": "1234 ab", "city": "Amsterdam",
             "country": "Nederland", "country_code": "nl"}
        ]),
    );
    let v = extract(&cat(), &person(acf));
    assert_eq!(v["email"], "vast@example.nl");
    assert_eq!(
        v["email2"], "",
        "a present but empty fixed field still wins"
    );
    assert_eq!(v["mobile"], "+31612345678");
    assert_eq!(v["mobile2"], "+32470123456");
    assert_eq!(v["phone"], "");
    assert_eq!(v["phone2"], "+31207654321");
    assert_eq!(v["street_name"], "Dorpsstraat");
    assert_eq!(v["house_number"], "12");
    assert_eq!(v["house_number_addition"], "a");
    assert_eq!(v["postal_code"], "1234AB");
    assert_eq!(v["city"], "Amsterdam");
    assert_eq!(v["country_code"], "NL");
}

#[test]
fn missing_repeaters_and_wrong_shapes_are_empty_not_errors() {
    let v = extract(
        &cat(),
        &person(json!({"knvb-id": "X1", "contact_info": "oops", "addresses": {"a": 1}})),
    );
    assert!(v
        .values()
        .filter(|s| s.as_str() != "false")
        .all(String::is_empty));
    assert_eq!(v.len(), cat().fields().len());
}

#[test]
fn numbers_and_strings_are_the_same_value() {
    let mut a = contact_layout();
    a["freescout-id"] = json!(42);
    let mut b = contact_layout();
    b["freescout-id"] = json!("42");
    assert_eq!(
        extract(&cat(), &person(a.clone())),
        extract(&cat(), &person(b.clone()))
    );
    let e = evaluate(
        &cat(),
        &sighting(b, Source::Poll, None),
        Some(&prior_of(a)),
        now(),
    );
    assert_eq!(e.verdict, Verdict::Unchanged);
}

#[test]
fn formatting_noise_gives_the_same_hash() {
    let mut noisy = contact_layout();
    noisy["contact_info"][0]["contact_value"] = json!("  jan@example.nl\u{a0}");
    noisy["contact_info"][1]["contact_value"] = json!("06 12 34 56 78");
    noisy["contact_info"][2]["contact_value"] = json!("020-1234567");
    noisy["datum-vog"] = json!("20231030");
    noisy["financiele-blokkade"] = json!(0);
    let id = KnvbId::parse("ABC1234").unwrap();
    let clean = extract(&cat(), &person(contact_layout()));
    assert_eq!(
        tracked_hash(&id, &extract(&cat(), &person(noisy))),
        tracked_hash(&id, &clean)
    );
    let mut real = contact_layout();
    real["contact_info"][1]["contact_value"] = json!("+31612345679");
    assert_ne!(
        tracked_hash(&id, &extract(&cat(), &person(real))),
        tracked_hash(&id, &clean)
    );
    assert_eq!(tracked_hash(&id, &clean).len(), 64);
}

#[test]
fn block_true_vs_one_is_no_change() {
    let mut a = contact_layout();
    a["financiele-blokkade"] = json!(true);
    let mut b = contact_layout();
    b["financiele-blokkade"] = json!("1");
    let e = evaluate(
        &cat(),
        &sighting(b, Source::Poll, None),
        Some(&prior_of(a)),
        now(),
    );
    assert_eq!(e.verdict, Verdict::Unchanged);
}

#[test]
fn no_knvb_id_is_not_a_member() {
    let mut acf = contact_layout();
    acf.as_object_mut().unwrap().remove("knvb-id");
    let e = evaluate(&cat(), &sighting(acf, Source::Webhook, None), None, now());
    assert_eq!(e.verdict, Verdict::NotAMember);
    assert!(e.knvb_id.is_none() && e.changes.is_empty());
}

#[test]
fn deceased_member_moves_baseline_only() {
    let prior = prior_of(contact_layout());
    let mut acf = contact_layout();
    acf["datum-overlijden"] = json!("2026-11-26");
    acf["contact_info"][0]["contact_value"] = json!("new@example.nl");
    let e = evaluate(
        &cat(),
        &sighting(acf.clone(), Source::Webhook, Some(Origin::UserEdit)),
        Some(&prior),
        now(),
    );
    assert_eq!(e.verdict, Verdict::Deceased);
    assert!(e.changes.is_empty());
    assert_eq!(e.differing, ["email"]);
    // A date of death in the future is not (yet) deceased.
    acf["datum-overlijden"] = json!("2026-11-27");
    let e = evaluate(
        &cat(),
        &sighting(acf, Source::Webhook, Some(Origin::UserEdit)),
        Some(&prior),
        now(),
    );
    assert_eq!(e.verdict, Verdict::Changed);
}

#[test]
fn forward_sync_origin_on_the_event_emits_nothing() {
    let mut acf = contact_layout();
    acf["contact_info"][0]["contact_value"] = json!("sportlink@example.nl");
    let e = evaluate(
        &cat(),
        &sighting(acf, Source::Webhook, Some(Origin::SyncSportlinkToRondoClub)),
        Some(&prior_of(contact_layout())),
        now(),
    );
    assert_eq!(e.verdict, Verdict::ForwardSync);
    assert!(e.changes.is_empty());
    assert_eq!(e.differing, ["email"]);
}

#[test]
fn forward_sync_origin_on_the_member_row_emits_nothing_until_a_newer_write() {
    // The baseline holds what the forward sync wrote (its report or its webhook).
    let mut written = contact_layout();
    written["contact_info"][0]["contact_value"] = json!("sportlink@example.nl");
    let mut prior = prior_of(written.clone());
    prior.sync_origin = Some(Origin::SyncSportlinkToRondoClub);
    prior.sync_origin_at = Some(Utc.with_ymd_and_hms(2026, 11, 26, 11, 30, 20).unwrap());
    let e = evaluate(
        &cat(),
        &sighting(written.clone(), Source::Poll, None),
        Some(&prior),
        now(),
    );
    assert_eq!(e.verdict, Verdict::ForwardSync);

    // A later save (modified after the forward sync's write) is a user edit again.
    let mut acf = written.clone();
    acf["contact_info"][0]["contact_value"] = json!("volunteer@example.nl");
    let mut later = sighting(acf.clone(), Source::Poll, None);
    later.person.modified_gmt = Some(Utc.with_ymd_and_hms(2026, 11, 26, 11, 31, 0).unwrap());
    let e = evaluate(&cat(), &later, Some(&prior), now());
    assert_eq!(e.verdict, Verdict::Changed);

    // So is a meta-only edit, which leaves modified_gmt at the forward sync's write: its values
    // differ from what the forward sync wrote (issue 15, item 2).
    let e = evaluate(
        &cat(),
        &sighting(acf, Source::Poll, None),
        Some(&prior),
        now(),
    );
    assert_eq!(e.verdict, Verdict::Changed);
    assert_eq!(e.changes.len(), 1);
}

#[test]
fn first_sighting_and_baseline_import_emit_nothing() {
    let e = evaluate(
        &cat(),
        &sighting(contact_layout(), Source::Webhook, Some(Origin::UserEdit)),
        None,
        now(),
    );
    assert_eq!(e.verdict, Verdict::FirstSighting);
    let mut acf = contact_layout();
    acf["contact_info"][0]["contact_value"] = json!("x@example.nl");
    let e = evaluate(
        &cat(),
        &sighting(acf, Source::Baseline, None),
        Some(&prior_of(contact_layout())),
        now(),
    );
    assert_eq!(e.verdict, Verdict::BaselineImport);
    assert!(e.changes.is_empty());
}

#[test]
fn equal_hash_is_unchanged() {
    let e = evaluate(
        &cat(),
        &sighting(contact_layout(), Source::Poll, None),
        Some(&prior_of(contact_layout())),
        now(),
    );
    assert_eq!(e.verdict, Verdict::Unchanged);
}

#[test]
fn one_and_several_fields_changed() {
    let prior = prior_of(contact_layout());
    let mut acf = contact_layout();
    acf["datum-vog"] = json!("2024-01-15");
    let e = evaluate(
        &cat(),
        &sighting(acf.clone(), Source::Webhook, Some(Origin::UserEdit)),
        Some(&prior),
        now(),
    );
    assert_eq!(e.verdict, Verdict::Changed);
    assert_eq!(
        e.changes,
        [FieldChange {
            field: FieldName::parse("datum_vog").unwrap(),
            old_value: "2023-10-30".into(),
            new_value: "2024-01-15".into()
        }]
    );
    acf["freescout-id"] = json!(43);
    acf["contact_info"][1]["contact_value"] = json!("+31687654321");
    let e = evaluate(
        &cat(),
        &sighting(acf, Source::Poll, None),
        Some(&prior),
        now(),
    );
    let fields: Vec<_> = e.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["datum_vog", "freescout_id", "mobile"]);
}

#[test]
fn clearing_a_field_and_lifting_a_block_are_changes() {
    let mut before = contact_layout();
    before["financiele-blokkade"] = json!(true);
    let prior = prior_of(before);
    let mut acf = contact_layout();
    acf["contact_info"][3]["contact_value"] = json!("-");
    acf["financiele-blokkade"] = json!(false);
    let e = evaluate(
        &cat(),
        &sighting(acf, Source::Webhook, Some(Origin::UserEdit)),
        Some(&prior),
        now(),
    );
    assert_eq!(
        e.changes,
        [
            FieldChange {
                field: FieldName::parse("email2").unwrap(),
                old_value: "jan@work.nl".into(),
                new_value: "".into()
            },
            FieldChange {
                field: FieldName::parse("financiele_blokkade").unwrap(),
                old_value: "true".into(),
                new_value: "false".into()
            }
        ]
    );
}

#[test]
fn a_field_new_to_the_catalogue_is_adopted_not_pushed() {
    let mut prior = prior_of(contact_layout());
    prior.baseline.remove("city");
    prior.hash = "stale".into();
    let mut acf = contact_layout();
    acf["addresses"] = json!([{"address_label": "Home", "city": "Delft"}]);
    let e = evaluate(
        &cat(),
        &sighting(acf, Source::Poll, None),
        Some(&prior),
        now(),
    );
    assert_eq!(e.verdict, Verdict::Unchanged);
    assert_eq!(e.values["city"], "Delft");
}

#[test]
fn person_shape_errors_are_clear() {
    assert_eq!(
        Person::from_json(&json!([1])),
        Err(PersonError::NotAnObject)
    );
    assert_eq!(
        Person::from_json(&json!({"id": 1})),
        Err(PersonError::NoAcf)
    );
    assert_eq!(
        Person::from_json(&json!({"id": "x", "acf": {}})),
        Err(PersonError::BadId)
    );
    assert!(matches!(
        Person::from_json(&json!({"acf": {}, "modified_gmt": "yesterday"})),
        Err(PersonError::BadModified(_))
    ));
    let p = Person::from_json(&json!({"acf": [], "modified_gmt": "2026-11-26T11:30:20Z"})).unwrap();
    assert!(p.acf.is_empty());
}

#[test]
fn an_older_sighting_than_the_baseline_is_stale() {
    let prior = prior_of(contact_layout());
    let mut old = sighting(contact_layout(), Source::Poll, None);
    old.person.acf["datum-vog"] = json!("2020-01-01");
    old.person.modified_gmt = Some(Utc.with_ymd_and_hms(2026, 11, 26, 11, 0, 0).unwrap());
    let e = evaluate(&cat(), &old, Some(&prior), now());
    assert_eq!(e.verdict, Verdict::Stale);
    assert!(e.changes.is_empty());
}

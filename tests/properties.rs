//! Property tests for the pure core: extraction, normalisation, the hash, and the resolver.
//! `PROPTEST_CASES=100000 cargo test --release --test properties` runs them longer by hand.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{json, Value};

use rondo_reverse_sync::catalogue::{Catalogue, FieldKind};
use rondo_reverse_sync::conflict::{resolve, ConflictInput, Reason, Winner, GRACE};
use rondo_reverse_sync::detect::{extract, tracked_hash, Person};
use rondo_reverse_sync::domain::KnvbId;
use rondo_reverse_sync::normalise;

const KINDS: [FieldKind; 6] = [
    FieldKind::Text,
    FieldKind::Phone,
    FieldKind::Date,
    FieldKind::Checkbox,
    FieldKind::Select,
    FieldKind::Postcode,
];

fn any_kind() -> impl Strategy<Value = FieldKind> {
    (0..KINDS.len()).prop_map(|i| KINDS[i])
}

/// Arbitrary JSON, a few levels deep, with the kinds of strings people type.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_-]{1,12}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn dutch_mobile() -> impl Strategy<Value = (String, String)> {
    // Eight digits after 06, rendered in the notations people and Sportlink use.
    ("[0-9]{8}", 0..5usize).prop_map(|(digits, style)| {
        let e164 = format!("+316{digits}");
        let shown = match style {
            0 => format!("06{digits}"),
            1 => format!("06 {} {}", &digits[..4], &digits[4..]),
            2 => format!("+31 6 {digits}"),
            3 => format!("0031 6{digits}"),
            _ => format!("06-{digits}"),
        };
        (e164, shown)
    })
}

proptest! {
    #[test]
    fn normalisation_is_idempotent(kind in any_kind(), raw in "\\PC{0,30}") {
        let once = kind.normalise(&raw);
        prop_assert_eq!(kind.normalise(&once), once.clone());
    }

    #[test]
    fn normalisation_ignores_surrounding_whitespace(kind in any_kind(), raw in "\\PC{0,30}") {
        prop_assert_eq!(kind.normalise(&format!(" \t{raw}\u{a0} ")), kind.normalise(&raw));
    }

    #[test]
    fn typed_values_read_back_the_same(kind in any_kind(), raw in "\\PC{0,30}") {
        // What the executor types into Sportlink normalises back to the value it came from.
        let canonical = kind.normalise(&raw);
        prop_assert_eq!(kind.normalise(&kind.for_sportlink(&canonical)), canonical);
    }

    #[test]
    fn dutch_phones_in_any_notation_are_one_value((e164, shown) in dutch_mobile()) {
        prop_assert_eq!(normalise::phone(&shown), e164.clone());
        prop_assert_eq!(normalise::phone(&normalise::phone_for_sportlink(&e164)), e164);
    }

    #[test]
    fn dates_in_every_display_form_are_one_value(days in 0i64..40_000) {
        let date = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).unwrap() + TimeDelta::days(days);
        let months = ["jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"];
        let month = months[chrono::Datelike::month0(&date) as usize];
        let canonical = date.format("%Y-%m-%d").to_string();
        for shown in [
            canonical.clone(),
            date.format("%d-%m-%Y").to_string(),
            date.format("%Y%m%d").to_string(),
            format!("{} {month} {}", chrono::Datelike::day(&date), chrono::Datelike::year(&date)),
            format!("{} {month}. {}", chrono::Datelike::day(&date), chrono::Datelike::year(&date)),
        ] {
            prop_assert_eq!(normalise::date(&shown), canonical.clone(), "{}", shown);
        }
    }

    #[test]
    fn extraction_never_panics_and_covers_every_field(acf in any_json()) {
        let catalogue = Catalogue::builtin();
        let person = json!({"id": 1, "acf": acf});
        if let Ok(p) = Person::from_json(&person) {
            let values = extract(&catalogue, &p);
            prop_assert_eq!(values.len(), catalogue.fields().len());
        }
    }

    #[test]
    fn person_parsing_never_panics(value in any_json()) {
        let _ = Person::from_json(&value);
    }

    #[test]
    fn hash_is_stable_under_formatting_noise(
        (e164, shown) in dutch_mobile(),
        email in "[a-z]{1,8}@[a-z]{1,8}\\.nl",
        block in any::<bool>(),
        id in 1u32..99_999,
    ) {
        let catalogue = Catalogue::builtin();
        let knvb = KnvbId::parse(&format!("ABC{id}")).unwrap();
        let clean = json!({"knvb-id": knvb.as_str(), "contact_info": [
            {"contact_type": "email", "contact_value": email},
            {"contact_type": "mobile", "contact_value": e164}],
            "financiele-blokkade": block});
        let noisy = json!({"knvb-id": format!(" {} ", knvb.as_str().to_lowercase()), "contact_info": [
            {"contact_type": "email", "contact_value": format!("  {email}\u{a0}")},
            {"contact_type": "mobile", "contact_value": shown}],
            "financiele-blokkade": if block { json!("1") } else { json!(0) }});
        let a = extract(&catalogue, &Person::from_json(&json!({"acf": clean})).unwrap());
        let b = extract(&catalogue, &Person::from_json(&json!({"acf": noisy})).unwrap());
        prop_assert_eq!(tracked_hash(&knvb, &a), tracked_hash(&knvb, &b));
    }

    #[test]
    fn a_real_change_changes_the_hash(a in "[a-z]{1,10}", b in "[a-z]{1,10}") {
        prop_assume!(a != b);
        let catalogue = Catalogue::builtin();
        let knvb = KnvbId::parse("ABC1").unwrap();
        let values = |city: &str| extract(&catalogue, &Person::from_json(&json!({"acf": {
            "knvb-id": "ABC1", "addresses": [{"address_label": "Home", "city": city}]}})).unwrap());
        prop_assert_ne!(tracked_hash(&knvb, &values(&a)), tracked_hash(&knvb, &values(&b)));
    }

    #[test]
    fn resolver_follows_the_table(
        kind in any_kind(),
        s in "\\PC{0,10}",
        r in "\\PC{0,10}",
        sm in proptest::option::of(-100_000i64..100_000),
        rm in proptest::option::of(-100_000i64..100_000),
    ) {
        let base: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let at = |ms: Option<i64>| ms.map(|ms| base + TimeDelta::milliseconds(ms));
        let res = resolve(&ConflictInput {
            kind,
            sportlink_value: &s,
            rondo_club_value: &r,
            sportlink_modified: at(sm),
            rondo_club_modified: at(rm),
        });
        if kind.same(&s, &r) {
            prop_assert_eq!(res.reason, Reason::ValuesMatchNoConflict);
            prop_assert_eq!(res.winner, Winner::Neither);
        } else {
            // Rondo Club wins only with a timestamp more than the grace period newer (or alone).
            let rondo_wins = match (sm, rm) {
                (None, Some(_)) => true,
                (Some(s), Some(r)) => TimeDelta::milliseconds(r - s) > GRACE,
                _ => false,
            };
            prop_assert_eq!(res.winner == Winner::RondoClub, rondo_wins);
            prop_assert_ne!(res.winner, Winner::Neither);
        }
        // Swapping nothing but time never changes a match into a conflict.
        let again = resolve(&ConflictInput { kind, sportlink_value: &s, rondo_club_value: &r,
            sportlink_modified: None, rondo_club_modified: None });
        prop_assert_eq!(again.winner == Winner::Neither, res.winner == Winner::Neither);
    }
}

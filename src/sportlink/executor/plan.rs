//! Planning: a member's pending changes grouped into the page sections they are pushed in, in
//! Sportlink's page order.

use super::*;

/// One change with its catalogue entry.
pub(super) struct Planned {
    pub(super) change: PendingChange,
    pub(super) spec: FieldSpec,
}

/// One section of one page with the changes to push there.
pub(super) struct PlannedForm {
    pub(super) form: FormSpec,
    pub(super) changes: Vec<Planned>,
}

/// Group a member's changes by page and section, pages in a fixed order (general, other,
/// financial; on general the communication section before the address), sections in catalogue
/// order. Changes whose field the catalogue does not know are returned apart.
pub(super) fn plan(
    catalogue: &Catalogue,
    changes: Vec<PendingChange>,
) -> (Vec<PlannedForm>, Vec<PendingChange>) {
    let order: BTreeMap<(SportlinkPage, String), usize> = catalogue
        .fields()
        .iter()
        .enumerate()
        .fold(BTreeMap::new(), |mut acc, (i, f)| {
            acc.entry((f.page, f.section.clone())).or_insert(i);
            acc
        });
    let mut forms: Vec<PlannedForm> = Vec::new();
    let mut unknown = Vec::new();
    for change in changes {
        let Some(spec) = catalogue.get(&change.field).cloned() else {
            unknown.push(change);
            continue;
        };
        let field = FormField {
            name: spec.name.to_string(),
            selectors: spec.selectors.clone(),
            verify_path: spec.verify.endpoint.clone(),
            verify_pointer: spec.verify.pointer.clone(),
        };
        let page = spec.page;
        match forms
            .iter_mut()
            .find(|f| f.form.page == page && f.form.section == spec.section)
        {
            Some(form) => {
                form.form.fields.push(field);
                form.changes.push(Planned { change, spec });
            }
            None => forms.push(PlannedForm {
                form: FormSpec {
                    page,
                    section: spec.section.clone(),
                    fields: vec![field],
                },
                changes: vec![Planned { change, spec }],
            }),
        }
    }
    forms.sort_by_key(|f| {
        let page = f.form.page;
        (
            page,
            order
                .get(&(page, f.form.section.clone()))
                .copied()
                .unwrap_or(usize::MAX),
        )
    });
    (forms, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_follow_the_fixed_page_order() {
        let catalogue = Catalogue::builtin();
        let change = |id: i64, field: &str| PendingChange {
            id: ChangeId(id),
            knvb_id: KnvbId::parse("ABC1234").unwrap(),
            field: FieldName::parse(field).unwrap(),
            old_value: String::new(),
            new_value: "x".into(),
            expected_sportlink_value: String::new(),
            rondo_club_modified_gmt: None,
            attempts: 0,
            detected_at: Utc::now(),
        };
        let (forms, unknown) = plan(
            &catalogue,
            vec![
                change(1, "financiele_blokkade"),
                change(2, "city"),
                change(3, "datum_vog"),
                change(4, "email"),
                change(5, "no_such_field"),
                change(6, "mobile"),
            ],
        );
        let order: Vec<(String, usize)> = forms
            .iter()
            .map(|f| (f.form.section.clone(), f.changes.len()))
            .collect();
        assert_eq!(
            order,
            [
                ("Communicatie".to_owned(), 2),
                ("Adres".to_owned(), 1),
                ("Vrije invoervelden".to_owned(), 1),
                ("Financiële gegevens".to_owned(), 1),
            ]
        );
        assert_eq!(unknown.len(), 1);
    }
}

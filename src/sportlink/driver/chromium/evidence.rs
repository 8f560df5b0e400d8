//! What a member page and the app's answers show: whether the form's section is there (and, when
//! it is not, whether the member lacks it or the page changed), whether the member is shown as
//! "Oud bondslid", and what Sportlink stored (from the app's own answers, else from a reload).

use super::*;

/// How long the network must be quiet after a save before no re-fetch by the app is expected.
const REFETCH_GRACE: std::time::Duration = std::time::Duration::from_millis(300);

/// What the app did after the earlier saves of one section: fetch the section again, or not.
/// An app that did not re-fetch after several saves (and never did) is not waited for: the
/// fresh page is read at once. It only saves the grace; what is verified does not change (the
/// reload shows what Sportlink stored, and an answer already there is still used).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct RefetchHabit {
    refetched: u32,
    not_refetched: u32,
}

impl RefetchHabit {
    /// Saves without a re-fetch (and none with one) after which none is waited for.
    const LEARNED_AFTER: u32 = 3;

    pub(super) fn expect_refetch(self) -> bool {
        self.refetched > 0 || self.not_refetched < Self::LEARNED_AFTER
    }

    pub(super) fn record(&mut self, refetched: bool) {
        if refetched {
            self.refetched = self.refetched.saturating_add(1);
        } else {
            self.not_refetched = self.not_refetched.saturating_add(1);
        }
    }
}

impl ChromiumDriver {
    /// "Oud bondslid" on the current page or in the given answers.
    pub async fn page_shows_former_member(
        &mut self,
        observed: &[Observed],
    ) -> Result<bool, DriverError> {
        if self.session.page().await?.shows_former_member().await? {
            return Ok(true);
        }
        Ok(observed
            .iter()
            .filter_map(Observed::json)
            .any(|j| holds_former_status(&j, 0)))
    }

    /// Wait for the form's section on the current page (reusing a lookup of the fresh page).
    pub(super) async fn lookup_section(
        &mut self,
        form: &FormSpec,
    ) -> Result<SectionLookup, DriverError> {
        if let Some(fresh) = self.fresh.as_mut() {
            if let Some((section, lookup)) = fresh.lookup.take() {
                if section == form.section {
                    return Ok(lookup);
                }
            }
        }
        let lookup = self
            .session
            .page()
            .await?
            .await_section(&form.section)
            .await?;
        if matches!(lookup, SectionLookup::Found { .. }) {
            self.seen.insert((form.page, fold(&form.section)));
        }
        Ok(lookup)
    }

    /// A section absent from a settled page: the member lacks it, or the page changed.
    ///
    /// The member lacks it when the app's data request for the section came back empty, or when
    /// the page shows no section we do not know (a renamed heading would be one) and either
    /// another known section of the page is there or other members showed this section. A page
    /// whose own data requests failed says nothing about the member (retried). Anything else is
    /// drift.
    pub(super) fn classify_absence(
        &self,
        form: &FormSpec,
        headings: Vec<PageHeading>,
        mark: u64,
    ) -> PageError {
        let observed = self.observed_since(mark);
        if let Some(failed) = observed
            .iter()
            .find(|r| r.is_read() && (r.status == 0 || r.status >= 500))
        {
            return PageError::AppRequestFailed {
                path: failed.path().to_owned(),
                status: failed.status,
            };
        }
        let known: Vec<String> = self
            .known_sections
            .iter()
            .filter(|(p, _)| *p == form.page)
            .map(|(_, s)| fold(s))
            .collect();
        let unknown_editable = headings
            .iter()
            .any(|h| !h.top && h.editable && !known.contains(&fold(&h.text)));
        let known_present = headings
            .iter()
            .any(|h| !h.top && known.contains(&fold(&h.text)));
        let seen_elsewhere = self.seen.contains(&(form.page, fold(&form.section)));
        let no_data = form
            .fields
            .iter()
            .any(|f| readback::endpoint_answered_empty(&observed, &f.verify_path));
        if no_data
            || (!unknown_editable && (known_present || (seen_elsewhere && !headings.is_empty())))
        {
            PageError::SectionMissing {
                section: form.section.clone(),
            }
        } else {
            PageError::SectionNotFound {
                section: form.section.clone(),
                found: headings,
            }
        }
    }

    /// Whether the page shows, or the app was given, the status "Oud bondslid".
    pub(super) async fn shows_former_member(&mut self, mark: u64) -> Result<bool, DriverError> {
        if self.session.page().await?.shows_former_member().await? {
            return Ok(true);
        }
        Ok(self
            .observed_since(mark)
            .iter()
            .filter_map(Observed::json)
            .any(|j| holds_former_status(&j, 0)))
    }

    /// Resolve every field from the answers since `mark`; `None` for a field not found.
    pub(super) fn resolve(&self, form: &FormSpec, mark: u64) -> BTreeMap<String, Option<String>> {
        let observed = self.observed_since(mark);
        form.fields
            .iter()
            .map(|f| {
                let value =
                    readback::find(&observed, &f.verify_path, &f.verify_pointer).map(|(v, _)| v);
                (f.name.clone(), value)
            })
            .collect()
    }

    /// After a save: what the app's own re-fetch carried (waiting for it unless this section's
    /// saves taught that none comes), or `None` when the fresh page must be read.
    pub(super) async fn refetched_values(
        &mut self,
        form: &FormSpec,
        mark: u64,
    ) -> Result<Option<StoredValues>, DriverError> {
        let key = (form.page, fold(&form.section));
        let habit = self.refetch_habits.get(&key).copied().unwrap_or_default();
        let values = if habit.expect_refetch() {
            self.await_refetch(form, mark).await?
        } else {
            Some(self.resolve(form, mark)).filter(|v| v.values().all(Option::is_some))
        };
        self.refetch_habits
            .entry(key)
            .or_default()
            .record(values.is_some());
        Ok(values)
    }

    /// After a save: wait for the app's own re-fetch to carry every field. An app re-fetches right
    /// after the save's answer, so once nothing has moved on the network for a short grace (and
    /// nothing is in flight) none is coming.
    async fn await_refetch(
        &mut self,
        form: &FormSpec,
        mark: u64,
    ) -> Result<Option<StoredValues>, DriverError> {
        let timings = self.session.settings().timings;
        let grace = timings.settle.min(REFETCH_GRACE);
        let started = Instant::now();
        loop {
            let values = self.resolve(form, mark);
            if values.values().all(Option::is_some) {
                return Ok(Some(values));
            }
            let quiet = self
                .session
                .network()
                .is_some_and(|n| n.in_flight() == 0 && n.quiet_for().is_none_or(|q| q >= grace));
            if (quiet && started.elapsed() >= grace) || started.elapsed() >= timings.action_timeout
            {
                return Ok(None);
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// Reload the page and read every field from what the app fetched; fields it did not fetch
    /// are read from the section's inputs on the fresh page (opened and cancelled, never saved).
    pub(super) async fn read_fresh_page(
        &mut self,
        knvb_id: &str,
        form: &FormSpec,
    ) -> Result<StoredValues, DriverError> {
        self.fresh = None;
        let mark = self.session.network().map_or(0, |n| n.mark());
        let landed = self.session.page().await?.reload().await?;
        if is_login_url(&landed) {
            return Err(PageError::SessionExpired.into());
        }
        let path = member_path(knvb_id, form.page.path())?;
        if !landed.contains(&path) {
            return Err(PageError::Protocol(format!(
                "reloading the member page ended on another page: {landed}"
            ))
            .into());
        }
        // What the app fetches for the fresh page is enough as soon as it carries every field.
        let timings = self.session.settings().timings;
        let started = Instant::now();
        let mut values = self.resolve(form, mark);
        while values.values().any(Option::is_none) {
            let settled = self.session.network().is_some_and(|n| {
                n.in_flight() == 0 && n.quiet_for().is_none_or(|q| q >= timings.settle / 3)
            });
            if settled || started.elapsed() >= timings.action_timeout {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            values = self.resolve(form, mark);
        }
        if values.values().any(Option::is_none) {
            match self.lookup_section(form).await? {
                SectionLookup::Found { .. } => {}
                SectionLookup::Absent { headings } => {
                    return Err(self.classify_absence(form, headings, mark).into())
                }
            }
            values = self.resolve(form, mark);
        }
        if values.values().any(Option::is_none) {
            let model = self.session.page().await?;
            let shown = model.open_edit(&form.section, &form.locators()).await;
            let cancelled = model.cancel(&form.section, true).await;
            let shown = shown?;
            cancelled?;
            for (name, value) in values.iter_mut() {
                if value.is_none() {
                    *value = shown.get(name).cloned();
                }
            }
        }
        Ok(values)
    }
}

fn fold(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c == '\u{200b}')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// A JSON string anywhere in the answer that says "Oud bondslid".
fn holds_former_status(v: &serde_json::Value, depth: usize) -> bool {
    if depth > 6 {
        return false;
    }
    match v {
        serde_json::Value::String(s) => fold(s) == "oud bondslid",
        serde_json::Value::Object(m) => m.values().any(|x| holds_former_status(x, depth + 1)),
        serde_json::Value::Array(a) => a.iter().any(|x| holds_former_status(x, depth + 1)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn former_status_is_found_in_any_answer() {
        let j = serde_json::json!({"Person": {"Status": " Oud  bondslid "}});
        assert!(holds_former_status(&j, 0));
        let j = serde_json::json!({"MemberStatus": "Actief", "Note": "was oud bondslid"});
        assert!(!holds_former_status(&j, 0));
    }

    #[test]
    fn a_refetch_is_waited_for_until_several_saves_went_without_one() {
        let mut habit = RefetchHabit::default();
        for _ in 0..RefetchHabit::LEARNED_AFTER {
            assert!(habit.expect_refetch());
            habit.record(false);
        }
        assert!(!habit.expect_refetch());
        // One re-fetch seen (an answer already there when the page is read): waited for again.
        habit.record(true);
        assert!(habit.expect_refetch());
        habit.record(false);
        assert!(
            habit.expect_refetch(),
            "an app that re-fetched once is always waited for"
        );
    }
}

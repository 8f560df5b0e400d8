//! The driver over real Chromium: one [`SportlinkSession`], the page model on each page, the
//! app's own answers for reading values back, reload as the fallback. What a page and the app's
//! answers show (a section there or absent and why, the former-member status, the stored values)
//! is read in `evidence`.

mod evidence;

use super::*;

/// Sections sportlink.md lists per page besides the catalogue's own: their presence shows a
/// page rendered as expected.
const SPEC_SECTIONS: &[(MemberPage, &str)] = &[
    (MemberPage::General, "Persoonlijke gegevens"),
    (MemberPage::General, "Ouders/verzorgers"),
    (MemberPage::General, "Nationaliteit"),
    (MemberPage::Other, "Vrije invoervelden bij aanmelding"),
    (MemberPage::Other, "Notities"),
];

/// The page currently loaded and untouched since, with what the app fetched for it.
#[derive(Debug, Clone)]
struct FreshPage {
    path: String,
    /// Network mark taken before the navigation.
    mark: u64,
    /// The section looked up on it (by `member_status`), reusable by `open_form`.
    lookup: Option<(String, SectionLookup)>,
}

/// The real driver: Chromium through the session and the page model.
pub struct ChromiumDriver {
    session: SportlinkSession,
    artefact_dir: Option<PathBuf>,
    fresh: Option<FreshPage>,
    /// Network mark of the page the open form is on (set by `open_form`).
    form_page_mark: Option<u64>,
    /// Live values read when the form was opened (the fresh page's own values).
    form_live: BTreeMap<String, String>,
    /// Network mark taken just before the last save click.
    save_mark: Option<u64>,
    known_sections: Vec<(MemberPage, String)>,
    /// Sections found on some member's page (folded headings): their absence elsewhere is the
    /// member's, not the page's.
    seen: std::collections::HashSet<(MemberPage, String)>,
    /// Per section (folded heading): whether the app fetched it again after earlier saves.
    refetch_habits: std::collections::HashMap<(MemberPage, String), evidence::RefetchHabit>,
}

impl ChromiumDriver {
    pub fn new(session: SportlinkSession, artefact_dir: Option<PathBuf>) -> Self {
        Self {
            session,
            artefact_dir,
            fresh: None,
            form_page_mark: None,
            form_live: BTreeMap::new(),
            save_mark: None,
            known_sections: SPEC_SECTIONS
                .iter()
                .map(|(p, s)| (*p, (*s).to_owned()))
                .collect(),
            seen: std::collections::HashSet::new(),
            refetch_habits: std::collections::HashMap::new(),
        }
    }

    pub fn session(&self) -> &SportlinkSession {
        &self.session
    }

    pub fn session_mut(&mut self) -> &mut SportlinkSession {
        &mut self.session
    }

    /// Forget the page the executor last opened: the tab is about to show something else (the
    /// audit's read-only reading).
    pub fn forget_fresh_page(&mut self) {
        self.fresh = None;
    }

    /// Open the site and log in (for `check`).
    pub async fn login_check(&mut self) -> Result<(), DriverError> {
        self.fresh = None;
        self.session.relogin().await?;
        Ok(())
    }

    /// The section headings known per page beyond the catalogue (sportlink.md's list).
    pub fn known_section_headings(&self) -> Vec<String> {
        self.known_sections.iter().map(|(_, s)| s.clone()).collect()
    }

    /// Open one of the member's pages, let it render and look at it against the expected
    /// sections without touching anything (for `check --member`). Returns what was seen and the
    /// answers the app got for the page.
    pub async fn look_at(
        &mut self,
        knvb_id: &str,
        page: MemberPage,
        sections: &[crate::sportlink::page::ExpectedSection],
    ) -> Result<(crate::sportlink::page::PageDiagnosis, Vec<Observed>), DriverError> {
        self.fresh = None;
        let mark = self.open_page(knvb_id, page).await?;
        self.fresh = None;
        let model = self.session.page().await?;
        // Sections may render one by one: wait for each (an absent one after the page settled).
        for section in sections {
            match model.await_section(&section.heading).await {
                Ok(_)
                | Err(PageError::Timeout { .. })
                | Err(PageError::SectionAmbiguous { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let diagnosis = model.diagnose(sections).await?;
        Ok((diagnosis, self.observed_since(mark)))
    }

    /// Navigate to the member's page unless it is the fresh page already; returns its mark.
    async fn open_page(&mut self, knvb_id: &str, page: MemberPage) -> Result<u64, DriverError> {
        let path = member_path(knvb_id, page.path())?;
        if let Some(fresh) = &self.fresh {
            if fresh.path == path {
                return Ok(fresh.mark);
            }
        }
        self.fresh = None;
        let mark = self.session.open(&path).await?;
        self.fresh = Some(FreshPage {
            path,
            mark,
            lookup: None,
        });
        Ok(mark)
    }

    fn observed_since(&self, mark: u64) -> Vec<Observed> {
        self.session
            .network()
            .map(|n| n.since(mark))
            .unwrap_or_default()
    }
}

impl SportlinkDriver for ChromiumDriver {
    async fn member_status(
        &mut self,
        knvb_id: &str,
        form: &FormSpec,
    ) -> Result<MemberStatus, DriverError> {
        let mark = self.open_page(knvb_id, form.page).await?;
        let lookup = self.lookup_section(form).await?;
        if let Some(fresh) = self.fresh.as_mut() {
            fresh.lookup = Some((form.section.clone(), lookup));
        }
        if self.shows_former_member(mark).await? {
            Ok(MemberStatus::Former("Oud bondslid".into()))
        } else {
            Ok(MemberStatus::Active)
        }
    }

    async fn open_form(
        &mut self,
        knvb_id: &str,
        form: &FormSpec,
    ) -> Result<BTreeMap<String, String>, DriverError> {
        let mark = self.open_page(knvb_id, form.page).await?;
        let lookup = self.lookup_section(form).await?;
        self.fresh = None;
        self.form_page_mark = Some(mark);
        self.save_mark = None;
        if let SectionLookup::Absent { headings } = lookup {
            return Err(self.classify_absence(form, headings, mark).into());
        }
        let model = self.session.page().await?;
        let live = match model.open_edit(&form.section, &form.locators()).await {
            Ok(live) => live,
            // A section without its "Wijzig": a former member whose status showed late, or drift.
            Err(e @ PageError::EditButton { count: 0, .. }) => {
                if self.shows_former_member(mark).await? {
                    return Err(PageError::FormerMember.into());
                }
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        self.form_live = live.clone();
        Ok(live)
    }

    async fn save_form(
        &mut self,
        form: &FormSpec,
        values: &[(String, String)],
    ) -> Result<(), DriverError> {
        self.fresh = None;
        let mut inputs = Vec::with_capacity(values.len());
        for (name, value) in values {
            let field = form
                .field(name)
                .ok_or_else(|| DriverError::UnknownField(name.clone()))?;
            inputs.push(InputValue {
                name: name.clone(),
                selectors: field.selectors.clone(),
                value: value.clone(),
            });
        }
        // On failure the section stays as it is, so the executor's screenshot shows it; the
        // executor then cancels it (`cancel_form`).
        let model = self.session.page().await?;
        model.fill(&form.section, &inputs).await?;
        let mark = model.save(&form.section, &form.locators()).await?;
        self.save_mark = Some(mark);
        Ok(())
    }

    async fn cancel_form(&mut self, form: &FormSpec) -> Result<(), DriverError> {
        self.fresh = None;
        let model = self.session.page().await?;
        model.cancel(&form.section, true).await?;
        Ok(())
    }

    async fn read_stored(
        &mut self,
        knvb_id: &str,
        form: &FormSpec,
        after_save: bool,
    ) -> Result<StoredValues, DriverError> {
        if after_save {
            if let Some(mark) = self.save_mark.take() {
                if let Some(values) = self.refetched_values(form, mark).await? {
                    tracing::debug!("verified from the app's own answer after the save");
                    return Ok(values);
                }
            }
            return self.read_fresh_page(knvb_id, form).await;
        }
        // Nothing was written: the page the form was opened on is fresh; what the app fetched for
        // it, or else the inputs it showed, is what Sportlink holds.
        let mut values = match self.form_page_mark {
            Some(mark) => self.resolve(form, mark),
            None => form.fields.iter().map(|f| (f.name.clone(), None)).collect(),
        };
        for (name, value) in values.iter_mut() {
            if value.is_none() {
                *value = self.form_live.get(name).cloned();
            }
        }
        Ok(values)
    }

    async fn relogin(&mut self) -> Result<(), DriverError> {
        self.fresh = None;
        self.session.relogin().await?;
        Ok(())
    }

    async fn capture_artefacts(&mut self, label: &str) -> Option<Artefacts> {
        let dir = self.artefact_dir.clone()?;
        let page = self.session.raw_page()?.clone();
        let scrubber = self.session.scrubber().clone();
        let model = self.session.page().await.ok()?;
        Some(artefacts::capture(&page, &model, &dir, label, &scrubber).await)
    }

    async fn close(&mut self) {
        self.fresh = None;
        self.session.close().await;
    }

    fn last_otp_step(&self) -> Option<u64> {
        self.session.last_used_otp_step()
    }

    fn resume_otp_step(&mut self, step: Option<u64>) {
        self.session.set_last_used_otp_step(step);
    }

    fn set_otp_recorder(&mut self, recorder: OtpStepRecorder) {
        self.session.set_otp_recorder(recorder);
    }

    async fn check_pages(
        &mut self,
        knvb_id: &str,
        catalogue: &crate::catalogue::Catalogue,
    ) -> Result<Option<String>, DriverError> {
        let check = crate::sportlink::diagnose::check_member(self, catalogue, knvb_id).await?;
        Ok((!check.matches_catalogue()).then(|| check.to_string()))
    }

    async fn audit_read(
        &mut self,
        knvb_id: &str,
        catalogue: &crate::catalogue::Catalogue,
    ) -> Result<crate::sportlink::read::SportlinkRead, DriverError> {
        crate::sportlink::read::read_member(self, catalogue, knvb_id).await
    }

    fn know_sections(&mut self, sections: Vec<(MemberPage, String)>) {
        for s in sections {
            if !self.known_sections.contains(&s) {
                self.known_sections.push(s);
            }
        }
    }

    async fn close_if_idle(&mut self, idle: std::time::Duration) {
        if self.session.is_open() && self.session.idle_for() >= idle {
            tracing::debug!("closing the idle browser");
            self.close().await;
        }
    }
}

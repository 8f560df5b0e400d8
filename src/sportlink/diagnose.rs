//! `check --member`: a read-only look at one member's Sportlink pages against the field catalogue
//! (issue 13, part 1). It opens the pages the catalogue uses, waits for them to render, and
//! reports per section whether its heading is there, its buttons, which selector of each field
//! matched, and the values the app fetched — never clicking "Wijzig", never saving. Where
//! something expected is missing it lists what the page does have and suggests the catalogue
//! edit that would match it.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use crate::catalogue::{Catalogue, SportlinkPage};

use super::driver::{ChromiumDriver, DriverError};
use super::page::{ExpectedSection, InputLocator, PageDiagnosis, PageHeading};

/// Starts the page-model diagnosis inside a pause reason (circuit breaker, canary) and its alert;
/// the operator page shows what follows it as a preformatted block.
pub const DIAGNOSIS_MARK: &str = "Page-model diagnosis (read-only look, as `check --member`):\n";

/// What one page showed.
#[derive(Debug, Clone)]
pub struct PageCheck {
    pub page: SportlinkPage,
    pub diagnosis: PageDiagnosis,
    /// Per field of this page: the value the app fetched (normalised), if any.
    pub values: BTreeMap<String, Option<String>>,
    /// Per expected heading that is not there: a suggested replacement from the page.
    pub suggestions: BTreeMap<String, Vec<String>>,
}

/// The whole check of one member.
#[derive(Debug, Clone)]
pub struct MemberCheck {
    pub knvb_id: String,
    pub pages: Vec<PageCheck>,
    /// Whether the member is shown as "Oud bondslid".
    pub former: bool,
}

impl MemberCheck {
    /// Every expected section was found exactly once with one "Wijzig".
    pub fn matches_catalogue(&self) -> bool {
        self.pages.iter().all(|p| {
            !p.diagnosis.on_login
                && p.diagnosis
                    .sections
                    .iter()
                    .all(|s| s.found == 1 && (s.edit_buttons == 1 || self.former))
        })
    }
}

/// Open the member's pages the catalogue uses (in the executor's page order) and look.
pub async fn check_member(
    driver: &mut ChromiumDriver,
    catalogue: &Catalogue,
    knvb_id: &str,
) -> Result<MemberCheck, DriverError> {
    let mut by_page: BTreeMap<SportlinkPage, Vec<ExpectedSection>> = BTreeMap::new();
    for f in catalogue.fields() {
        let sections = by_page.entry(f.page).or_default();
        let locator = InputLocator {
            name: f.name.to_string(),
            selectors: f.selectors.clone(),
        };
        match sections.iter_mut().find(|s| s.heading == f.section) {
            Some(s) => s.fields.push(locator),
            None => sections.push(ExpectedSection {
                heading: f.section.clone(),
                fields: vec![locator],
            }),
        }
    }
    let known: Vec<String> = catalogue
        .fields()
        .iter()
        .map(|f| fold(&f.section))
        .chain(driver.known_section_headings().iter().map(|s| fold(s)))
        .collect();
    let mut pages = Vec::new();
    let mut former = false;
    for (page, sections) in by_page {
        let (diagnosis, observed) = driver.look_at(knvb_id, page, &sections).await?;
        former |= driver.page_shows_former_member(&observed).await?;
        let values = catalogue
            .fields()
            .iter()
            .filter(|f| f.page == page)
            .map(|f| {
                let value = super::readback::find(&observed, &f.verify.endpoint, &f.verify.pointer)
                    .map(|(v, _)| f.kind.normalise(&v));
                (f.name.to_string(), value)
            })
            .collect();
        let candidates: Vec<String> = diagnosis
            .headings
            .iter()
            .filter(|h| !h.top && !known.contains(&fold(&h.text)))
            .map(|h| h.text.clone())
            .collect();
        let suggestions = diagnosis
            .sections
            .iter()
            .filter(|s| s.found == 0)
            .map(|s| (s.heading.clone(), candidates.clone()))
            .collect();
        pages.push(PageCheck {
            page,
            diagnosis,
            values,
            suggestions,
        });
    }
    Ok(MemberCheck {
        knvb_id: knvb_id.to_owned(),
        pages,
        former,
    })
}

fn fold(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn heading_list(headings: &[PageHeading]) -> String {
    let list: Vec<String> = headings
        .iter()
        .filter(|h| !h.top)
        .map(|h| {
            if h.editable {
                format!("\"{}\" (with Wijzig)", h.text)
            } else {
                format!("\"{}\"", h.text)
            }
        })
        .collect();
    if list.is_empty() {
        "no section headings".into()
    } else {
        list.join(", ")
    }
}

impl fmt::Display for MemberCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "member {}{}",
            self.knvb_id,
            if self.former { " (Oud bondslid)" } else { "" }
        );
        for p in &self.pages {
            let _ = writeln!(out, "page /{}:", p.page);
            if p.diagnosis.on_login {
                let _ = writeln!(out, "  ended on the login page");
                continue;
            }
            for s in &p.diagnosis.sections {
                match s.found {
                    1 => {
                        let _ = writeln!(
                            out,
                            "  section \"{}\": found; Wijzig buttons: {}; buttons: {:?}",
                            s.heading, s.edit_buttons, s.buttons
                        );
                        for m in &s.fields {
                            match &m.matched {
                                Some(sel) => {
                                    let _ = writeln!(out, "    {}: input {sel}", m.name);
                                }
                                None if s.inputs.is_empty() => {
                                    let _ = writeln!(
                                        out,
                                        "    {}: no inputs outside edit mode (not opened: check never clicks Wijzig)",
                                        m.name
                                    );
                                }
                                None => {
                                    let _ = writeln!(
                                        out,
                                        "    {}: no selector matched; inputs there: {:?} — add the right one in front of `selectors`",
                                        m.name, s.inputs
                                    );
                                }
                            }
                        }
                    }
                    0 => {
                        let _ = writeln!(
                            out,
                            "  section \"{}\": NOT FOUND; the page shows {}",
                            s.heading,
                            heading_list(&p.diagnosis.headings)
                        );
                        match p.suggestions.get(&s.heading).map(Vec::as_slice) {
                            Some([one]) => {
                                let _ = writeln!(
                                    out,
                                    "    suggestion: in the catalogue, section = \"{one}\" where it says \"{}\"",
                                    s.heading
                                );
                            }
                            Some(many) if !many.is_empty() => {
                                let _ = writeln!(
                                    out,
                                    "    suggestion: one of {many:?} may be the new name of \"{}\"",
                                    s.heading
                                );
                            }
                            _ => {}
                        }
                    }
                    n => {
                        let _ = writeln!(out, "  section \"{}\": found {n} times", s.heading);
                    }
                }
            }
            for (field, value) in &p.values {
                match value {
                    Some(v) => {
                        let _ = writeln!(out, "  value {field}: {v:?} (what the app fetched)");
                    }
                    None => {
                        let _ = writeln!(out, "  value {field}: not in what the app fetched");
                    }
                }
            }
        }
        let _ = write!(
            out,
            "{}",
            if self.matches_catalogue() {
                "the pages match the catalogue"
            } else {
                "the pages do NOT match the catalogue"
            }
        );
        f.write_str(&out)
    }
}

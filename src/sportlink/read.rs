//! Reading one member's tracked fields in Sportlink (for the divergence audit), read-only: open each page the
//! catalogue uses and take the values from the answers the app itself fetched (as the executor's
//! verification does). Never clicks "Wijzig", never types, never saves.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::catalogue::{Catalogue, SportlinkPage};
use crate::domain::FieldName;
use crate::sportlink::browser::{is_login_url, member_path};
use crate::sportlink::driver::{ChromiumDriver, DriverError};
use crate::sportlink::page::{PageError, SectionLookup};
use crate::sportlink::readback;

/// What Sportlink showed of one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SportlinkRead {
    /// No such member in Sportlink (its page answered 404, or every request of the app for it).
    Unknown { detail: String },
    Found {
        /// Shown as "Oud bondslid".
        former: bool,
        /// Per catalogue field: the raw stored value, or why it could not be read.
        values: BTreeMap<FieldName, Result<String, String>>,
        /// Requests the browser made for this member (navigations and the app's own), for
        /// measurements.
        app_requests: usize,
    },
}

/// How often the answers are looked at while a page loads.
const POLL: Duration = Duration::from_millis(25);

/// Read every catalogue field of the member, page by page (general, other, financial).
pub async fn read_member(
    driver: &mut ChromiumDriver,
    catalogue: &Catalogue,
    knvb_id: &str,
) -> Result<SportlinkRead, DriverError> {
    let mut by_page: BTreeMap<SportlinkPage, Vec<&crate::catalogue::FieldSpec>> = BTreeMap::new();
    for f in catalogue.fields() {
        by_page.entry(f.page).or_default().push(f);
    }
    let mut values = BTreeMap::new();
    let mut former = false;
    let mut app_requests = 0;
    for (index, (page, fields)) in by_page.into_iter().enumerate() {
        let path = member_path(knvb_id, page.path())?;
        // The tab leaves the executor's "fresh page" behind: it must never reuse its lookups.
        driver.forget_fresh_page();
        let mark = driver.session_mut().open(&path).await?;
        driver.forget_fresh_page();
        app_requests += 1;
        if let Some(status) = document_status(driver).await? {
            if status == 404 || status == 410 {
                return Ok(SportlinkRead::Unknown {
                    detail: format!("Sportlink answered HTTP {status} for {path}"),
                });
            }
        }
        let timings = driver.session().settings().timings;
        let started = Instant::now();
        let resolve = |driver: &ChromiumDriver| {
            let observed = driver
                .session()
                .network()
                .map(|n| n.since(mark))
                .unwrap_or_default();
            let found: BTreeMap<FieldName, Option<String>> = fields
                .iter()
                .map(|f| {
                    let v = readback::find(&observed, &f.verify.endpoint, &f.verify.pointer)
                        .map(|(v, _)| v);
                    (f.name.clone(), v)
                })
                .collect();
            (observed, found)
        };
        let (mut observed, mut found) = resolve(driver);
        // The app's answers carry every field as soon as they are all in; else wait until the
        // network has been quiet for the settle time (nothing more is coming).
        while found.values().any(Option::is_none) && started.elapsed() < timings.action_timeout {
            let settled = driver.session().network().is_some_and(|n| {
                n.in_flight() == 0 && n.quiet_for().is_none_or(|q| q >= timings.settle)
            });
            if settled && started.elapsed() >= timings.settle {
                break;
            }
            tokio::time::sleep(POLL).await;
            (observed, found) = resolve(driver);
        }
        let url = driver.session_mut().page().await?.current_url().await?;
        if is_login_url(&url) {
            return Err(PageError::SessionExpired.into());
        }
        if index == 0 && found.values().all(Option::is_none) {
            let reads: Vec<u16> = observed
                .iter()
                .filter(|r| r.is_read())
                .map(|r| r.status)
                .collect();
            if !reads.is_empty() && reads.iter().all(|s| *s == 404 || *s == 410) {
                return Ok(SportlinkRead::Unknown {
                    detail: format!("every request of Sportlink's app for {path} was answered 404"),
                });
            }
        }
        // Fields not in what the app fetched: give late sections their chance to render, then
        // say why each one could not be read.
        let mut why: BTreeMap<FieldName, String> = BTreeMap::new();
        if found.values().any(Option::is_none) {
            let mut sections: Vec<&str> = Vec::new();
            for f in fields.iter().filter(|f| found.get(&f.name) == Some(&None)) {
                if !sections.contains(&f.section.as_str()) {
                    sections.push(&f.section);
                }
            }
            for section in sections {
                let lookup = driver
                    .session_mut()
                    .page()
                    .await?
                    .await_section(section)
                    .await;
                let reason = match lookup {
                    Ok(SectionLookup::Found { .. }) => {
                        "not in what Sportlink's app fetched for the page".to_owned()
                    }
                    Ok(SectionLookup::Absent { headings }) => {
                        let shown: Vec<String> = headings
                            .iter()
                            .filter(|h| !h.top)
                            .map(|h| format!("\"{}\"", h.text))
                            .collect();
                        format!(
                            "no section \"{section}\" on the {page} page (it shows {})",
                            if shown.is_empty() {
                                "no sections".to_owned()
                            } else {
                                shown.join(", ")
                            }
                        )
                    }
                    Err(PageError::SessionExpired) => return Err(PageError::SessionExpired.into()),
                    Err(e) => format!("section \"{section}\": {e}"),
                };
                for f in fields.iter().filter(|f| f.section == section) {
                    why.insert(f.name.clone(), reason.clone());
                }
            }
            (observed, found) = resolve(driver);
        }
        former |= driver.page_shows_former_member(&observed).await?;
        app_requests += observed.len();
        for (name, value) in found {
            let value = match value {
                Some(v) => Ok(v),
                None => Err(why
                    .remove(&name)
                    .unwrap_or_else(|| "not in what Sportlink's app fetched".to_owned())),
            };
            values.insert(name, value);
        }
    }
    Ok(SportlinkRead::Found {
        former,
        values,
        app_requests,
    })
}

/// The HTTP status of the document in the tab (Navigation Timing), when the browser tells.
async fn document_status(driver: &ChromiumDriver) -> Result<Option<u16>, DriverError> {
    let Some(page) = driver.session().raw_page() else {
        return Ok(None);
    };
    let result = page
        .evaluate(
            "(() => { const n = performance.getEntriesByType('navigation')[0]; \
             return n && typeof n.responseStatus === 'number' ? n.responseStatus : 0; })()",
        )
        .await;
    match result {
        Ok(v) => Ok(v
            .into_value::<i64>()
            .ok()
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| *s > 0)),
        // A document replaced while asking (a redirect to the login page) says nothing.
        Err(e) => {
            tracing::debug!(error = %e, "could not read the document's status");
            Ok(None)
        }
    }
}

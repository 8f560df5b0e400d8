//! The seam between the executor's unit of work and Sportlink: [`SportlinkDriver`]. The real
//! implementation drives Chromium through [`SportlinkSession`] and the page model; tests of the
//! unit of work can use a fake.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;

use super::artefacts::{self, Artefacts};
use super::browser::{member_path, SessionError, SportlinkSession};
use super::page::{InputLocator, InputValue, PageError};

pub use crate::catalogue::SportlinkPage as MemberPage;

/// Where one field lives in a section, and where Sportlink's stored value can be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormField {
    pub name: String,
    /// CSS selectors, first match inside the section wins.
    pub selectors: Vec<String>,
    /// JSON endpoint path, e.g. `/member/persondata/MemberCommunication`.
    pub verify_path: String,
    /// JSON pointer into its answer, e.g. `/Email1`.
    pub verify_pointer: String,
}

/// One section of one member page, with the fields to work on in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormSpec {
    pub page: MemberPage,
    pub section: String,
    pub fields: Vec<FormField>,
}

impl FormSpec {
    fn locators(&self) -> Vec<InputLocator> {
        self.fields
            .iter()
            .map(|f| InputLocator {
                name: f.name.clone(),
                selectors: f.selectors.clone(),
            })
            .collect()
    }

    fn field(&self, name: &str) -> Option<&FormField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// The member's status as Sportlink shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberStatus {
    Active,
    /// "Oud bondslid": sections cannot be edited.
    Former(String),
}

/// Sportlink's stored value per field, read back from the app's JSON (`None`: not in the answer).
pub type StoredValues = BTreeMap<String, Option<String>>;

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("{path} answered HTTP {status}")]
    Endpoint { path: String, status: u16 },
    #[error("the form has no field {0}")]
    UnknownField(String),
}

impl From<PageError> for DriverError {
    fn from(e: PageError) -> Self {
        Self::Session(SessionError::Page(e))
    }
}

impl DriverError {
    pub fn page_error(&self) -> Option<&PageError> {
        match self {
            Self::Session(SessionError::Page(p)) => Some(p),
            _ => None,
        }
    }

    /// Sportlink's UI no longer matches the page model (counts for the circuit breaker).
    pub fn is_ui_drift(&self) -> bool {
        self.page_error().is_some_and(PageError::is_ui_drift)
    }

    pub fn is_session_expired(&self) -> bool {
        matches!(self.page_error(), Some(PageError::SessionExpired))
            || matches!(self, Self::Session(SessionError::StillOnLogin))
            || matches!(self, Self::Endpoint { status: 401, .. })
    }

    /// The login itself was refused: no retry helps, stop the run.
    pub fn is_login_refused(&self) -> bool {
        matches!(self, Self::Session(s) if s.is_login_refused())
    }

    /// Sportlink refused a save with a message (validation or server error).
    pub fn refusal_message(&self) -> Option<&str> {
        match self.page_error() {
            Some(PageError::SaveRefused { message, .. }) => Some(message),
            _ => None,
        }
    }
}

/// What the executor needs from Sportlink. Every method acts on one member's pages through the
/// one browser tab; the implementation logs in when a navigation lands on the login page.
pub trait SportlinkDriver: Send + Sync {
    /// The member's status (opens the member's `page`, which the next `open_form` can reuse).
    fn member_status(
        &mut self,
        knvb_id: &str,
        page: MemberPage,
    ) -> impl Future<Output = Result<MemberStatus, DriverError>> + Send;

    /// Open the member's page, put the form's section in edit mode, and return the live values
    /// of its fields as the inputs show them (checkboxes as `"true"`/`"false"`).
    fn open_form(
        &mut self,
        knvb_id: &str,
        form: &FormSpec,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, DriverError>> + Send;

    /// Type the values (field name → text to type) into the open section and save it with the
    /// section's own button; returns once the section left edit mode.
    fn save_form(
        &mut self,
        form: &FormSpec,
        values: &[(String, String)],
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Cancel the open section.
    fn cancel_form(
        &mut self,
        form: &FormSpec,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// What Sportlink stored, read from the app's JSON endpoints inside the page; `reload`
    /// reloads the page first (after a save).
    fn read_stored(
        &mut self,
        knvb_id: &str,
        form: &FormSpec,
        reload: bool,
    ) -> impl Future<Output = Result<StoredValues, DriverError>> + Send;

    /// Log in again (after a save landed on the login page).
    fn relogin(&mut self) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Screenshot and HTML of the current page, for a failure report.
    fn capture_artefacts(&mut self, label: &str) -> impl Future<Output = Option<Artefacts>> + Send;

    /// Close the browser (if open).
    fn close(&mut self) -> impl Future<Output = ()> + Send;

    /// Close the browser if it has been idle this long.
    fn close_if_idle(&mut self, idle: std::time::Duration) -> impl Future<Output = ()> + Send;

    /// The last TOTP time step used to log in (kept with the account lock across processes).
    fn last_otp_step(&self) -> Option<u64> {
        None
    }

    /// Continue from the TOTP step a previous holder of the account lock used last.
    fn resume_otp_step(&mut self, _step: Option<u64>) {}
}

/// The real driver: Chromium through the session and the page model.
pub struct ChromiumDriver {
    session: SportlinkSession,
    artefact_dir: Option<PathBuf>,
    /// The page that was just loaded and not touched since (reusable by the next `open_form`).
    fresh_path: Option<String>,
}

impl ChromiumDriver {
    pub fn new(session: SportlinkSession, artefact_dir: Option<PathBuf>) -> Self {
        Self {
            session,
            artefact_dir,
            fresh_path: None,
        }
    }

    pub fn session(&self) -> &SportlinkSession {
        &self.session
    }

    pub fn session_mut(&mut self) -> &mut SportlinkSession {
        &mut self.session
    }

    /// Open the site and log in (for `check`).
    pub async fn login_check(&mut self) -> Result<(), DriverError> {
        self.fresh_path = None;
        self.session.relogin().await?;
        Ok(())
    }

    async fn open_page(&mut self, knvb_id: &str, page: MemberPage) -> Result<(), DriverError> {
        let path = member_path(knvb_id, page.path())?;
        if self.fresh_path.as_deref() == Some(path.as_str()) {
            return Ok(());
        }
        self.fresh_path = None;
        self.session.open(&path).await?;
        self.fresh_path = Some(path);
        Ok(())
    }

    async fn fetch_json(
        &mut self,
        path: &str,
        knvb_id: &str,
    ) -> Result<serde_json::Value, DriverError> {
        let fetched = self.session.page().await?.fetch(path, knvb_id).await?;
        if fetched.status == 401 || super::browser::is_login_url(&fetched.url) {
            return Err(PageError::SessionExpired.into());
        }
        if fetched.status != 200 {
            return Err(DriverError::Endpoint {
                path: path.to_owned(),
                status: fetched.status,
            });
        }
        Ok(super::page::parse_json(&fetched.body)?)
    }
}

impl SportlinkDriver for ChromiumDriver {
    async fn member_status(
        &mut self,
        knvb_id: &str,
        page: MemberPage,
    ) -> Result<MemberStatus, DriverError> {
        self.open_page(knvb_id, page).await?;
        let header = self.fetch_json("/member/MemberHeader", knvb_id).await?;
        let status = header
            .get("MemberStatus")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .trim()
            .to_owned();
        if status.to_lowercase().contains("oud bondslid") {
            Ok(MemberStatus::Former(status))
        } else {
            Ok(MemberStatus::Active)
        }
    }

    async fn open_form(
        &mut self,
        knvb_id: &str,
        form: &FormSpec,
    ) -> Result<BTreeMap<String, String>, DriverError> {
        self.open_page(knvb_id, form.page).await?;
        self.fresh_path = None;
        let model = self.session.page().await?;
        model.await_section(&form.section).await?;
        Ok(model.open_edit(&form.section, &form.locators()).await?)
    }

    async fn save_form(
        &mut self,
        form: &FormSpec,
        values: &[(String, String)],
    ) -> Result<(), DriverError> {
        self.fresh_path = None;
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
        model.save(&form.section, &form.locators()).await?;
        Ok(())
    }

    async fn cancel_form(&mut self, form: &FormSpec) -> Result<(), DriverError> {
        self.fresh_path = None;
        let model = self.session.page().await?;
        model.cancel(&form.section, true).await?;
        Ok(())
    }

    async fn read_stored(
        &mut self,
        knvb_id: &str,
        form: &FormSpec,
        reload: bool,
    ) -> Result<StoredValues, DriverError> {
        if reload {
            self.fresh_path = None;
            let landed = self.session.page().await?.reload().await?;
            if super::browser::is_login_url(&landed) {
                return Err(PageError::SessionExpired.into());
            }
            // The app has fetched its data again once the section is rendered.
            self.session
                .page()
                .await?
                .await_section(&form.section)
                .await?;
        }
        let mut answers: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        let mut stored = StoredValues::new();
        for field in &form.fields {
            if !answers.contains_key(&field.verify_path) {
                let json = self.fetch_json(&field.verify_path, knvb_id).await?;
                answers.insert(field.verify_path.clone(), json);
            }
            let value = answers
                .get(&field.verify_path)
                .and_then(|json| json.pointer(&field.verify_pointer))
                .and_then(json_scalar);
            stored.insert(field.name.clone(), value);
        }
        Ok(stored)
    }

    async fn relogin(&mut self) -> Result<(), DriverError> {
        self.fresh_path = None;
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
        self.fresh_path = None;
        self.session.close().await;
    }

    fn last_otp_step(&self) -> Option<u64> {
        self.session.last_used_otp_step()
    }

    fn resume_otp_step(&mut self, step: Option<u64>) {
        self.session.set_last_used_otp_step(step);
    }

    async fn close_if_idle(&mut self, idle: std::time::Duration) {
        if self.session.is_open() && self.session.idle_for() >= idle {
            tracing::debug!("closing the idle browser");
            self.close().await;
        }
    }
}

/// A JSON scalar as the text the comparison works on (`null` is empty).
fn json_scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Null => Some(String::new()),
        _ => None,
    }
}

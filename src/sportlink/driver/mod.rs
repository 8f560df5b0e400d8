//! The seam between the executor's unit of work and Sportlink: [`SportlinkDriver`]. The real
//! implementation drives Chromium through [`SportlinkSession`] and the page model; tests of the
//! unit of work can use a fake.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;

use tokio::time::Instant;

use super::artefacts::{self, Artefacts};
use super::browser::{is_login_url, member_path, SessionError, SportlinkSession};
use super::lock::OtpStepRecorder;
use super::network::Observed;
use super::page::{InputLocator, InputValue, PageError, PageHeading, SectionLookup};
use super::readback;

pub use crate::catalogue::SportlinkPage as MemberPage;

mod chromium;

pub use chromium::ChromiumDriver;

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
    #[error("the form has no field {0}")]
    UnknownField(String),
    #[error("this driver cannot read members for the audit")]
    AuditUnsupported,
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

    /// Sportlink shows the member as "Oud bondslid" (seen only once a form was opened).
    pub fn is_former_member(&self) -> bool {
        matches!(self.page_error(), Some(PageError::FormerMember))
    }

    /// The member has no such section in Sportlink (a fact about the member, not a failure).
    pub fn missing_section(&self) -> Option<&str> {
        match self.page_error() {
            Some(PageError::SectionMissing { section }) => Some(section),
            _ => None,
        }
    }

    pub fn is_session_expired(&self) -> bool {
        matches!(self.page_error(), Some(PageError::SessionExpired))
            || matches!(self, Self::Session(SessionError::StillOnLogin))
    }

    /// The login itself was refused: no retry helps, stop the run.
    pub fn is_login_refused(&self) -> bool {
        matches!(self, Self::Session(s) if s.is_login_refused())
    }

    /// Sportlink refused a save: its message, and whether a retry may succeed (a server error).
    pub fn refusal(&self) -> Option<(&str, bool)> {
        match self.page_error() {
            Some(PageError::SaveRefused {
                message, transient, ..
            }) => Some((message, *transient)),
            _ => None,
        }
    }
}

/// What the executor needs from Sportlink. Every method acts on one member's pages through the
/// one browser tab; the implementation logs in when a navigation lands on the login page.
pub trait SportlinkDriver: Send + Sync {
    /// The member's status, from what the page shows (opens the form's page and waits for it to
    /// render; the next `open_form` of that page reuses it).
    fn member_status(
        &mut self,
        knvb_id: &str,
        form: &FormSpec,
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

    /// What Sportlink stored. `after_save`: read it from the server's own answers after the last
    /// save (the app re-fetching the section), or from a freshly loaded page when none comes.
    /// Otherwise from what the current (fresh) page was given.
    fn read_stored(
        &mut self,
        knvb_id: &str,
        form: &FormSpec,
        after_save: bool,
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

    /// Record each TOTP step the moment its code is submitted.
    fn set_otp_recorder(&mut self, _recorder: OtpStepRecorder) {}

    /// The sections the catalogue knows per page (to tell a member without a section from a
    /// page that changed).
    fn know_sections(&mut self, _sections: Vec<(MemberPage, String)>) {}

    /// Look at a member's pages read-only against the catalogue (never clicks Wijzig, never
    /// saves); `Some(report)` when they do not match it.
    fn check_pages(
        &mut self,
        _knvb_id: &str,
        _catalogue: &crate::catalogue::Catalogue,
    ) -> impl Future<Output = Result<Option<String>, DriverError>> + Send {
        async { Ok(None) }
    }

    /// Read every catalogue field of a member read-only, for the divergence audit (never clicks
    /// Wijzig, never saves).
    fn audit_read(
        &mut self,
        _knvb_id: &str,
        _catalogue: &crate::catalogue::Catalogue,
    ) -> impl Future<Output = Result<super::read::SportlinkRead, DriverError>> + Send {
        async { Err(DriverError::AuditUnsupported) }
    }
}

//! What the page model reports: its errors and what it found on a page (headings, inputs,
//! values, diagnoses).

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("section \"{section}\" not found; the page shows {}", describe_headings(.found))]
    SectionNotFound {
        section: String,
        found: Vec<PageHeading>,
    },
    #[error("this member has no section \"{section}\" in Sportlink")]
    SectionMissing { section: String },
    #[error("section \"{section}\" appears {count} times")]
    SectionAmbiguous { section: String, count: u32 },
    #[error("section \"{section}\" has {count} \"Wijzig\" buttons, expected exactly one (buttons there: {buttons:?})")]
    EditButton {
        section: String,
        count: u32,
        buttons: Vec<String>,
    },
    #[error("section \"{section}\" did not enter edit mode")]
    EditModeNotEntered { section: String },
    #[error("input for {fields:?} not found in section \"{section}\" (inputs there: {inputs:?})")]
    InputNotFound {
        section: String,
        fields: Vec<String>,
        inputs: Vec<String>,
    },
    #[error("value for {field} is not one of the options of its select in section \"{section}\"")]
    OptionNotAvailable { section: String, field: String },
    #[error("section \"{section}\" has {count} save buttons, expected exactly one (buttons there: {buttons:?})")]
    SaveButton {
        section: String,
        count: u32,
        buttons: Vec<String>,
    },
    /// Sportlink did not accept the save. `transient`: a server error or a lost connection (a
    /// retry may succeed); otherwise Sportlink refused the value (validation).
    #[error("Sportlink refused the save of section \"{section}\": {message}")]
    SaveRefused {
        section: String,
        message: String,
        transient: bool,
    },
    #[error("section \"{section}\" stayed in edit mode after \"Sla op\" without a message or an answer from Sportlink")]
    SaveNotFinished { section: String },
    #[error("the member is shown as \"Oud bondslid\": sections cannot be edited")]
    FormerMember,
    #[error("the page's own data request {path} was answered with HTTP {status}")]
    AppRequestFailed { path: String, status: u16 },
    #[error("the session expired (the page went to the login page)")]
    SessionExpired,
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    #[error("the browser failed")]
    Browser(#[source] Box<chromiumoxide::error::CdpError>),
    #[error("unexpected answer from the page: {0}")]
    Protocol(String),
}

impl PageError {
    /// Failures that mean Sportlink's UI no longer matches the page model (circuit breaker):
    /// the page does not look like the catalogue, whatever the low-level error.
    pub fn is_ui_drift(&self) -> bool {
        matches!(
            self,
            Self::SectionNotFound { .. }
                | Self::SectionAmbiguous { .. }
                | Self::EditButton { .. }
                | Self::EditModeNotEntered { .. }
                | Self::InputNotFound { .. }
                | Self::SaveButton { .. }
        )
    }
}

/// A heading-like text on a rendered page, and whether its section has its own edit button.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PageHeading {
    pub text: String,
    /// The page's own title (`h1`), not a section.
    #[serde(default)]
    pub top: bool,
    #[serde(default)]
    pub editable: bool,
}

fn describe_headings(found: &[PageHeading]) -> String {
    if found.is_empty() {
        return "no headings at all".into();
    }
    let list: Vec<String> = found
        .iter()
        .filter(|h| !h.top)
        .map(|h| format!("\"{}\"", h.text))
        .collect();
    if list.is_empty() {
        "no section headings".into()
    } else {
        format!("the headings {}", list.join(", "))
    }
}

/// One input to find: the field's name (for reports) and its selectors (first match wins).
#[derive(Debug, Clone, Serialize)]
pub struct InputLocator {
    pub name: String,
    pub selectors: Vec<String>,
}

/// A value to type into an input (already in the form Sportlink expects).
#[derive(Debug, Clone, Serialize)]
pub struct InputValue {
    pub name: String,
    pub selectors: Vec<String>,
    pub value: String,
}

/// State of the login form, as the page shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct LoginState {
    pub on_login: bool,
    pub has_username: bool,
    pub has_otp: bool,
    pub has_submit: bool,
    pub error: String,
}

/// What a read-only look at a page found (see [`PageModel::diagnose`]).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PageDiagnosis {
    pub headings: Vec<PageHeading>,
    pub sections: Vec<SectionDiagnosis>,
    pub on_login: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SectionDiagnosis {
    pub heading: String,
    /// How many sections carry this heading (1 is right).
    pub found: u32,
    pub buttons: Vec<String>,
    pub edit_buttons: u32,
    /// The inputs the section shows now (`input[name="…"] (type)`).
    pub inputs: Vec<String>,
    pub fields: Vec<FieldMatch>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FieldMatch {
    pub name: String,
    /// The first of the field's selectors that matched inside the section.
    pub matched: Option<String>,
}

/// A section to look for, with its fields' selectors.
#[derive(Debug, Clone, Serialize)]
pub struct ExpectedSection {
    pub heading: String,
    pub fields: Vec<InputLocator>,
}

/// A section that was looked for on a rendered page.
#[derive(Debug, Clone)]
pub enum SectionLookup {
    Found {
        editing: bool,
    },
    /// The page settled without it; what the page shows instead.
    Absent {
        headings: Vec<PageHeading>,
    },
}

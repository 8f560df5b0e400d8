//! The page model: everything the executor does inside a Sportlink page, as small JavaScript
//! snippets evaluated in the page (docs/sportlink-contract.md is the only thing they rely on).
//!
//! - A section is found by its heading text, never by position, and every action is scoped to
//!   that section (its own "Wijzig", "Sla op"/"Opslaan", "Annuleer", inputs, `.validation-error`).
//! - Inputs passed to a snippet are serialised with serde_json and embedded as a JSON literal;
//!   untrusted text is never concatenated into code.
//! - Every wait is a condition polled inside the page with a deadline. The page answers
//!   `{"state": "pending"}` when its time slice runs out, and the Rust side decides whether the
//!   overall deadline has passed. Evaluation errors while a navigation replaces the document are
//!   retried until the deadline.

use std::collections::BTreeMap;
use std::time::Duration;

use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::Page;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// How long the page may run one polling slice before reporting back.
const SLICE: Duration = Duration::from_millis(1500);
/// Pause between evaluation attempts that failed because the document was being replaced.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Helpers shared by all snippets. Kept free of any input: inputs arrive as the argument `a`.
const PRELUDE: &str = r#"
const norm = (s) => String(s == null ? '' : s).replace(/\s+/g, ' ').trim().toLowerCase();
const headingOf = (sec) => {
  for (const h of sec.querySelectorAll('h1,h2,h3,h4,h5,h6')) { if (h.closest('section') === sec) return h; }
  return null;
};
const allSections = () => Array.from(document.querySelectorAll('section'));
const sectionsByHeading = (heading) => allSections().filter((sec) => {
  const h = headingOf(sec); return h !== null && norm(h.textContent) === norm(heading);
});
const allHeadings = () => allSections().map(headingOf).filter((h) => h !== null).map((h) => h.textContent.replace(/\s+/g, ' ').trim());
const shown = (el) => el.getClientRects().length > 0;
const ownButtons = (sec, texts) => Array.from(sec.querySelectorAll('button, input[type=button], input[type=submit]'))
  .filter((b) => b.closest('section') === sec && shown(b) && !b.disabled && texts.includes(norm(b.tagName === 'INPUT' ? b.value : b.textContent)));
const SAVE = ['sla op', 'opslaan'];
const EDIT = ['wijzig'];
const CANCEL = ['annuleer', 'annuleren'];
const editing = (sec) => ownButtons(sec, SAVE).length > 0;
const findInput = (sec, selectors) => {
  for (const s of selectors) {
    let found = [];
    try { found = Array.from(sec.querySelectorAll(s)); } catch (e) { continue; }
    found = found.filter((el) => el.closest('section') === sec);
    if (found.length > 0) return found[0];
  }
  return null;
};
const editable = (el) => el !== null && !el.disabled && !el.readOnly;
const readInput = (el) => (el.type === 'checkbox' || el.type === 'radio') ? (el.checked ? 'true' : 'false') : String(el.value == null ? '' : el.value);
const errorText = (sec) => Array.from(sec.querySelectorAll('.validation-error'))
  .filter((e) => e.closest('section') === sec)
  .map((e) => e.textContent.replace(/\s+/g, ' ').trim()).filter((t) => t.length > 0).join(' ');
const onLogin = () => location.pathname.indexOf('/auth/realms/') !== -1;
const quietFor = (ms) => {
  if (!window.__rrsObserver) {
    window.__rrsLastMutation = Date.now();
    window.__rrsObserver = new MutationObserver(() => { window.__rrsLastMutation = Date.now(); });
    window.__rrsObserver.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
    return false;
  }
  return Date.now() - window.__rrsLastMutation >= ms;
};
const until = async (budget, check) => {
  const end = Date.now() + budget;
  for (;;) {
    const r = check();
    if (r !== null) return r;
    if (Date.now() >= end) return { state: 'pending' };
    await new Promise((res) => setTimeout(res, 20));
  }
};
const setValue = (el, v) => {
  const proto = el.tagName === 'SELECT' ? HTMLSelectElement.prototype
    : el.tagName === 'TEXTAREA' ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
  const d = Object.getOwnPropertyDescriptor(proto, 'value');
  if (d && d.set) { d.set.call(el, v); } else { el.value = v; }
  el.dispatchEvent(new Event('input', { bubbles: true }));
  el.dispatchEvent(new Event('change', { bubbles: true }));
};
const single = (heading) => {
  const secs = sectionsByHeading(heading);
  if (secs.length === 0) return { err: { state: 'absent', headings: allHeadings() } };
  if (secs.length > 1) return { err: { state: 'ambiguous', count: secs.length } };
  return { sec: secs[0] };
};
"#;

/// Wait until the section with the heading is rendered (or the rendered page clearly lacks it).
const AWAIT_SECTION: &str = r#"
return until(a.budget_ms, () => {
  if (onLogin()) return { state: 'login' };
  const quiet = quietFor(a.quiet_ms);
  const secs = sectionsByHeading(a.heading);
  if (secs.length === 1) return { state: 'found', editing: editing(secs[0]), edit_buttons: ownButtons(secs[0], EDIT).length };
  if (secs.length > 1) return { state: 'ambiguous', count: secs.length };
  if (document.readyState === 'complete' && quiet && allHeadings().length > 0) return { state: 'absent', headings: allHeadings() };
  return null;
});
"#;

const CLICK_EDIT: &str = r#"
const s = single(a.heading);
if (s.err) return s.err;
if (editing(s.sec)) return { state: 'already_editing' };
const buttons = ownButtons(s.sec, EDIT);
if (buttons.length !== 1) return { state: 'no_edit_button', count: buttons.length };
buttons[0].click();
return { state: 'clicked' };
"#;

/// Wait until the section is in edit mode with all the wanted inputs, and read their values.
const AWAIT_EDITING: &str = r#"
return until(a.budget_ms, () => {
  if (onLogin()) return { state: 'login' };
  const quiet = quietFor(a.quiet_ms);
  const secs = sectionsByHeading(a.heading);
  if (secs.length !== 1) return null;
  const sec = secs[0];
  if (!editing(sec)) return null;
  const values = {};
  const missing = [];
  for (const f of a.fields) {
    const el = findInput(sec, f.selectors);
    if (editable(el)) { values[f.name] = readInput(el); } else { missing.push(f.name); }
  }
  if (missing.length === 0) return { state: 'editing', values: values };
  if (quiet) {
    const names = Array.from(sec.querySelectorAll('input,select,textarea')).map((e) => e.getAttribute('name') || e.id || e.tagName.toLowerCase());
    return { state: 'missing_inputs', missing: missing, inputs: names };
  }
  return null;
});
"#;

const FILL: &str = r#"
const s = single(a.heading);
if (s.err) return s.err;
if (!editing(s.sec)) return { state: 'not_editing' };
const values = {};
for (const f of a.fields) {
  const el = findInput(s.sec, f.selectors);
  if (!editable(el)) return { state: 'missing_inputs', missing: [f.name], inputs: [] };
  el.focus();
  if (el.type === 'checkbox') {
    const want = f.value === 'true';
    if (el.checked !== want) el.click();
    if (el.checked !== want) {
      el.checked = want;
      el.dispatchEvent(new Event('input', { bubbles: true }));
      el.dispatchEvent(new Event('change', { bubbles: true }));
    }
  } else if (el.tagName === 'SELECT') {
    const options = Array.from(el.options).map((o) => o.value);
    if (!options.includes(f.value)) return { state: 'no_option', field: f.name, options: options.slice(0, 400) };
    setValue(el, f.value);
  } else {
    setValue(el, f.value);
  }
  el.dispatchEvent(new Event('blur'));
  values[f.name] = readInput(el);
}
return { state: 'filled', values: values };
"#;

const CLICK_SAVE: &str = r#"
const s = single(a.heading);
if (s.err) return s.err;
const buttons = ownButtons(s.sec, SAVE);
if (buttons.length !== 1) return { state: 'no_save_button', count: buttons.length };
buttons[0].click();
return { state: 'clicked' };
"#;

/// After "Sla op": wait until the section is read-only again, shows an error, or the session
/// expired (the page went to the login page).
const AWAIT_SAVED: &str = r#"
return until(a.budget_ms, () => {
  if (onLogin()) return { state: 'login' };
  const secs = sectionsByHeading(a.heading);
  if (secs.length !== 1) return null;
  const sec = secs[0];
  const err = errorText(sec);
  if (err) return { state: 'error', message: err };
  if (!editing(sec) && ownButtons(sec, EDIT).length > 0 && a.fields.every((f) => !editable(findInput(sec, f.selectors)))) return { state: 'saved' };
  return null;
});
"#;

/// Cancel the section (and any other section left in edit mode: never leave a form open).
const CLICK_CANCEL: &str = r#"
let clicked = 0;
for (const sec of allSections()) {
  if (!editing(sec)) continue;
  const h = headingOf(sec);
  const mine = h !== null && norm(h.textContent) === norm(a.heading);
  if (!mine && !a.all) continue;
  const buttons = ownButtons(sec, CANCEL);
  if (buttons.length > 0) { buttons[0].click(); clicked += 1; }
}
return { state: 'clicked', count: clicked };
"#;

const AWAIT_NOT_EDITING: &str = r#"
return until(a.budget_ms, () => {
  if (onLogin()) return { state: 'login' };
  const open = allSections().filter((sec) => editing(sec)).length;
  return open === 0 ? { state: 'idle' } : null;
});
"#;

const FETCH_JSON: &str = r#"
const url = a.path + (a.path.indexOf('?') === -1 ? '?' : '&') + 'PersonId=' + encodeURIComponent(a.person_id);
const r = await fetch(url, { credentials: 'include', headers: { 'Accept': 'application/json' }, cache: 'no-store' });
const body = await r.text();
return { state: 'fetched', status: r.status, url: r.url, body: body };
"#;

const LOGIN_STATE: &str = r#"
return until(a.budget_ms, () => {
  if (document.readyState !== 'complete') return null;
  const q = (s) => document.querySelector(s);
  const err = q('#input-error');
  return {
    state: 'login_state',
    on_login: onLogin(),
    has_username: q('#username') !== null && q('#password') !== null,
    has_otp: q('#otp') !== null,
    has_submit: q('#kc-login') !== null,
    error: err ? err.textContent.replace(/\s+/g, ' ').trim() : '',
  };
});
"#;

const SUBMIT_CREDENTIALS: &str = r#"
const u = document.querySelector('#username');
const p = document.querySelector('#password');
const b = document.querySelector('#kc-login');
if (!u || !p || !b) return { state: 'missing' };
setValue(u, a.username);
setValue(p, a.password);
window.__rrsNavMark = true;
b.click();
return { state: 'clicked' };
"#;

const SUBMIT_OTP: &str = r#"
const o = document.querySelector('#otp');
const b = document.querySelector('#kc-login');
if (!o || !b) return { state: 'missing' };
setValue(o, a.code);
window.__rrsNavMark = true;
b.click();
return { state: 'clicked' };
"#;

/// Wait for the document that a form submission navigates to (the old one carries a mark).
const AWAIT_NEW_DOCUMENT: &str = r#"
return until(a.budget_ms, () => (!window.__rrsNavMark && document.readyState === 'complete') ? { state: 'loaded' } : null);
"#;

const CLEAR_PASSWORD: &str = r#"
for (const el of document.querySelectorAll('input[type=password], #password, #otp')) { el.value = ''; }
return { state: 'cleared' };
"#;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("section \"{section}\" not found (sections on the page: {found:?})")]
    SectionNotFound { section: String, found: Vec<String> },
    #[error("section \"{section}\" appears {count} times")]
    SectionAmbiguous { section: String, count: u32 },
    #[error("section \"{section}\" has {count} \"Wijzig\" buttons (expected exactly one)")]
    EditButton { section: String, count: u32 },
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
    #[error("section \"{section}\" has {count} save buttons (expected exactly one)")]
    SaveButton { section: String, count: u32 },
    #[error("Sportlink refused the save of section \"{section}\": {message}")]
    SaveRefused { section: String, message: String },
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
    /// Failures that mean Sportlink's UI no longer matches the page model (circuit breaker).
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveResult {
    Saved,
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

/// An answer fetched from inside the page.
#[derive(Debug, Clone, Deserialize)]
pub struct Fetched {
    pub status: u16,
    pub url: String,
    pub body: String,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Answer {
    Pending,
    Login,
    Found {
        editing: bool,
    },
    Ambiguous {
        count: u32,
    },
    Absent {
        #[serde(default)]
        headings: Vec<String>,
    },
    AlreadyEditing,
    NoEditButton {
        count: u32,
    },
    Clicked,
    Editing {
        values: BTreeMap<String, String>,
    },
    MissingInputs {
        missing: Vec<String>,
        #[serde(default)]
        inputs: Vec<String>,
    },
    NotEditing,
    NoOption {
        field: String,
    },
    Filled {
        values: BTreeMap<String, String>,
    },
    NoSaveButton {
        count: u32,
    },
    Error {
        message: String,
    },
    Saved,
    Idle,
    Fetched(Fetched),
    LoginState(LoginState),
    Missing,
    Loaded,
    Cleared,
}

/// Timing knobs of the page model.
#[derive(Debug, Clone, Copy)]
pub struct PageTimings {
    /// Deadline of one action (render, edit mode, save, navigation).
    pub action_timeout: Duration,
    /// How long the DOM must be quiet before a missing section or input counts as missing.
    pub settle: Duration,
}

/// The page model over one chromiumoxide page.
pub struct PageModel<'a> {
    page: &'a Page,
    timings: PageTimings,
}

impl<'a> PageModel<'a> {
    pub fn new(page: &'a Page, timings: PageTimings) -> Self {
        Self { page, timings }
    }

    pub fn timings(&self) -> PageTimings {
        self.timings
    }

    /// Navigate and wait for the load event; returns the URL the browser ended on.
    pub async fn goto(&self, url: &str) -> Result<String, PageError> {
        let after = self.timings.action_timeout;
        match tokio::time::timeout(after, self.page.goto(url)).await {
            Err(_) => {
                return Err(PageError::Timeout {
                    what: "page load".into(),
                    after,
                })
            }
            Ok(Err(e)) => return Err(PageError::Browser(Box::new(e))),
            Ok(Ok(_)) => {}
        }
        self.current_url().await
    }

    pub async fn reload(&self) -> Result<String, PageError> {
        let after = self.timings.action_timeout;
        match tokio::time::timeout(after, self.page.reload()).await {
            Err(_) => {
                return Err(PageError::Timeout {
                    what: "page reload".into(),
                    after,
                })
            }
            Ok(Err(e)) => return Err(PageError::Browser(Box::new(e))),
            Ok(Ok(_)) => {}
        }
        self.current_url().await
    }

    pub async fn current_url(&self) -> Result<String, PageError> {
        let url = self
            .page
            .url()
            .await
            .map_err(|e| PageError::Browser(Box::new(e)))?;
        Ok(url.unwrap_or_default())
    }

    /// Wait until the section is rendered. Errors: login page, section absent or ambiguous.
    pub async fn await_section(&self, heading: &str) -> Result<bool, PageError> {
        let args =
            serde_json::json!({ "heading": heading, "quiet_ms": millis(self.timings.settle) });
        match self
            .poll(AWAIT_SECTION, args, "the section to render")
            .await?
        {
            Answer::Found { editing } => Ok(editing),
            Answer::Login => Err(PageError::SessionExpired),
            Answer::Ambiguous { count } => Err(PageError::SectionAmbiguous {
                section: heading.into(),
                count,
            }),
            Answer::Absent { headings } => Err(PageError::SectionNotFound {
                section: heading.into(),
                found: headings,
            }),
            other => Err(unexpected(other)),
        }
    }

    /// Click the section's own "Wijzig", wait for edit mode with all the inputs, return their
    /// live values (checkboxes as "true"/"false"). On an error the section is left as it is
    /// (for the failure screenshot); the caller cancels it with [`Self::cancel`].
    pub async fn open_edit(
        &self,
        heading: &str,
        inputs: &[InputLocator],
    ) -> Result<BTreeMap<String, String>, PageError> {
        let args = serde_json::json!({ "heading": heading });
        match self.once(CLICK_EDIT, args).await? {
            Answer::Clicked => {}
            Answer::AlreadyEditing => {
                // A section left open is a doubt: close it and start again from read-only.
                self.cancel(heading, false).await?;
                let args = serde_json::json!({ "heading": heading });
                match self.once(CLICK_EDIT, args).await? {
                    Answer::Clicked => {}
                    other => return Err(self.section_error(heading, other)),
                }
            }
            other => return Err(self.section_error(heading, other)),
        }
        let args = serde_json::json!({
            "heading": heading,
            "fields": inputs,
            "quiet_ms": millis(self.timings.settle),
        });
        match self.poll(AWAIT_EDITING, args, "edit mode").await {
            Ok(Answer::Editing { values }) => Ok(values),
            Ok(Answer::MissingInputs { missing, inputs }) => Err(PageError::InputNotFound {
                section: heading.into(),
                fields: missing,
                inputs,
            }),
            Ok(Answer::Login) => Err(PageError::SessionExpired),
            Ok(other) => Err(unexpected(other)),
            Err(PageError::Timeout { .. }) => Err(PageError::EditModeNotEntered {
                section: heading.into(),
            }),
            Err(e) => Err(e),
        }
    }

    fn section_error(&self, heading: &str, answer: Answer) -> PageError {
        match answer {
            Answer::Absent { headings } => PageError::SectionNotFound {
                section: heading.into(),
                found: headings,
            },
            Answer::Ambiguous { count } => PageError::SectionAmbiguous {
                section: heading.into(),
                count,
            },
            Answer::NoEditButton { count } => PageError::EditButton {
                section: heading.into(),
                count,
            },
            Answer::AlreadyEditing => PageError::EditModeNotEntered {
                section: heading.into(),
            },
            Answer::Login => PageError::SessionExpired,
            other => unexpected(other),
        }
    }

    /// Type values into the open section; returns what the inputs hold afterwards.
    pub async fn fill(
        &self,
        heading: &str,
        values: &[InputValue],
    ) -> Result<BTreeMap<String, String>, PageError> {
        let args = serde_json::json!({ "heading": heading, "fields": values });
        match self.once(FILL, args).await? {
            Answer::Filled { values } => Ok(values),
            Answer::MissingInputs { missing, inputs } => Err(PageError::InputNotFound {
                section: heading.into(),
                fields: missing,
                inputs,
            }),
            Answer::NoOption { field } => Err(PageError::OptionNotAvailable {
                section: heading.into(),
                field,
            }),
            Answer::NotEditing => Err(PageError::EditModeNotEntered {
                section: heading.into(),
            }),
            other => Err(self.section_error(heading, other)),
        }
    }

    /// Click the section's own save button and wait until it leaves edit mode. A message in the
    /// section's `.validation-error` is a refused save.
    pub async fn save(&self, heading: &str, inputs: &[InputLocator]) -> Result<(), PageError> {
        let args = serde_json::json!({ "heading": heading });
        match self.once(CLICK_SAVE, args).await? {
            Answer::Clicked => {}
            Answer::NoSaveButton { count } => {
                return Err(PageError::SaveButton {
                    section: heading.into(),
                    count,
                })
            }
            other => return Err(self.section_error(heading, other)),
        }
        let args = serde_json::json!({ "heading": heading, "fields": inputs });
        match self.poll(AWAIT_SAVED, args, "the save to finish").await? {
            Answer::Saved => Ok(()),
            Answer::Error { message } => Err(PageError::SaveRefused {
                section: heading.into(),
                message,
            }),
            Answer::Login => Err(PageError::SessionExpired),
            other => Err(unexpected(other)),
        }
    }

    /// Click "Annuleer" in the section (or in every open section) and wait until none is open.
    pub async fn cancel(&self, heading: &str, all: bool) -> Result<(), PageError> {
        let args = serde_json::json!({ "heading": heading, "all": all });
        match self.once(CLICK_CANCEL, args).await? {
            Answer::Clicked => {}
            other => return Err(unexpected(other)),
        }
        if !all {
            return Ok(());
        }
        match self
            .poll(
                AWAIT_NOT_EDITING,
                serde_json::json!({}),
                "edit mode to close",
            )
            .await?
        {
            Answer::Idle => Ok(()),
            Answer::Login => Err(PageError::SessionExpired),
            other => Err(unexpected(other)),
        }
    }

    /// Fetch a JSON endpoint of the app from inside the page (same session cookie).
    pub async fn fetch(&self, path: &str, person_id: &str) -> Result<Fetched, PageError> {
        let args = serde_json::json!({ "path": path, "person_id": person_id });
        match self.once(FETCH_JSON, args).await? {
            Answer::Fetched(f) => Ok(f),
            other => Err(unexpected(other)),
        }
    }

    pub async fn login_state(&self) -> Result<LoginState, PageError> {
        match self
            .poll(LOGIN_STATE, serde_json::json!({}), "the login page")
            .await?
        {
            Answer::LoginState(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// Fill `#username`/`#password` and submit; waits for the next document.
    pub async fn submit_credentials(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(), PageError> {
        let args = serde_json::json!({ "username": username, "password": password });
        self.submit(SUBMIT_CREDENTIALS, args).await
    }

    /// Fill `#otp` and submit; waits for the next document.
    pub async fn submit_otp(&self, code: &str) -> Result<(), PageError> {
        let args = serde_json::json!({ "code": code });
        self.submit(SUBMIT_OTP, args).await
    }

    async fn submit(&self, script: &str, args: serde_json::Value) -> Result<(), PageError> {
        match self.once(script, args).await? {
            Answer::Clicked => {}
            Answer::Missing => return Err(PageError::Protocol("login form not found".into())),
            other => return Err(unexpected(other)),
        }
        match self
            .poll(
                AWAIT_NEW_DOCUMENT,
                serde_json::json!({}),
                "the login form to submit",
            )
            .await?
        {
            Answer::Loaded => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Empty password and code inputs (before a screenshot of a login page).
    pub async fn clear_secret_inputs(&self) -> Result<(), PageError> {
        self.once(CLEAR_PASSWORD, serde_json::json!({}))
            .await
            .map(|_| ())
    }

    /// Evaluate a snippet once (retrying only evaluation errors from a replaced document).
    async fn once(&self, body: &str, args: serde_json::Value) -> Result<Answer, PageError> {
        let deadline = Instant::now() + self.timings.action_timeout;
        self.eval_with_retry(body, &args, deadline).await
    }

    /// Evaluate a polling snippet in slices until it answers something other than `pending` or
    /// the action deadline passes.
    async fn poll(
        &self,
        body: &str,
        mut args: serde_json::Value,
        what: &str,
    ) -> Result<Answer, PageError> {
        let after = self.timings.action_timeout;
        let deadline = Instant::now() + after;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PageError::Timeout {
                    what: what.into(),
                    after,
                });
            }
            if let Some(obj) = args.as_object_mut() {
                obj.insert("budget_ms".into(), millis(left.min(SLICE)).into());
            }
            match self.eval_with_retry(body, &args, deadline).await {
                Ok(Answer::Pending) => continue,
                Ok(answer) => return Ok(answer),
                Err(PageError::Timeout { .. }) => {
                    return Err(PageError::Timeout {
                        what: what.into(),
                        after,
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn eval_with_retry(
        &self,
        body: &str,
        args: &serde_json::Value,
        deadline: Instant,
    ) -> Result<Answer, PageError> {
        let expression = build_expression(body, args)?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // The slice is the page's own budget; give the round trip some headroom.
            let call_deadline = left + Duration::from_secs(2);
            let result = tokio::time::timeout(call_deadline, self.evaluate(&expression)).await;
            match result {
                Err(_) => {
                    return Err(PageError::Timeout {
                        what: "the page to answer".into(),
                        after: call_deadline,
                    })
                }
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(EvalError::Fatal(e))) => return Err(e),
                Ok(Err(EvalError::Transient(e))) => {
                    if Instant::now() + RETRY_PAUSE >= deadline {
                        return Err(PageError::Timeout {
                            what: format!("the page to answer ({e})"),
                            after: self.timings.action_timeout,
                        });
                    }
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }

    async fn evaluate(&self, expression: &str) -> Result<Answer, EvalError> {
        let params = EvaluateParams::builder()
            .expression(expression)
            .await_promise(true)
            .return_by_value(true)
            .build()
            .map_err(|e| EvalError::Fatal(PageError::Protocol(e)))?;
        match self.page.evaluate_expression(params).await {
            Ok(result) => match result.value() {
                Some(v) => parse_answer(v.clone()).map_err(EvalError::Fatal),
                None => Err(EvalError::Transient("no value".into())),
            },
            Err(e) => classify_cdp_error(e),
        }
    }
}

enum EvalError {
    Transient(String),
    Fatal(PageError),
}

fn classify_cdp_error(e: chromiumoxide::error::CdpError) -> Result<Answer, EvalError> {
    use chromiumoxide::error::CdpError;
    match e {
        // The document was replaced while the snippet ran (navigation, reload, login redirect).
        CdpError::JavascriptException(ref details) => {
            let text = details
                .exception
                .as_ref()
                .and_then(|x| x.description.clone())
                .unwrap_or_else(|| details.text.clone());
            if text.contains("destroyed") || text.contains("navigat") {
                Err(EvalError::Transient("document replaced".into()))
            } else {
                Err(EvalError::Fatal(PageError::Protocol(format!(
                    "script error: {}",
                    truncate(&text, 300)
                ))))
            }
        }
        CdpError::ChromeMessage(ref m) if is_context_gone(m) => {
            Err(EvalError::Transient("context gone".into()))
        }
        CdpError::Chrome(ref err) if is_context_gone(&err.message) => {
            Err(EvalError::Transient("context gone".into()))
        }
        CdpError::NotFound | CdpError::Timeout => Err(EvalError::Transient("no context".into())),
        other => Err(EvalError::Fatal(PageError::Browser(Box::new(other)))),
    }
}

fn is_context_gone(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("context") || m.contains("destroyed") || m.contains("navigat")
}

fn parse_answer(value: serde_json::Value) -> Result<Answer, PageError> {
    serde_json::from_value(value)
        .map_err(|e| PageError::Protocol(format!("unexpected answer: {e}")))
}

fn build_expression(body: &str, args: &serde_json::Value) -> Result<String, PageError> {
    let literal = serde_json::to_string(args).map_err(|e| PageError::Protocol(e.to_string()))?;
    Ok(format!(
        "(async (a) => {{ 'use strict'; {PRELUDE}\n{body}\n}})({literal})"
    ))
}

fn unexpected(answer: Answer) -> PageError {
    PageError::Protocol(format!("unexpected answer {answer:?}"))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max_chars).collect();
        out.push('…');
        out
    }
}

/// Parse a JSON answer body (for callers that read endpoint data).
pub fn parse_json<T: DeserializeOwned>(body: &str) -> Result<T, PageError> {
    serde_json::from_str(body)
        .map_err(|e| PageError::Protocol(format!("endpoint did not answer JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_embedded_as_json_literals() {
        let args = serde_json::json!({ "heading": "x'); alert(1); ('", "v": "</script>\u{2028}" });
        let expr = build_expression("return a;", &args).unwrap();
        // The untrusted text only appears inside a JSON string literal.
        let literal = serde_json::to_string(&args).unwrap();
        assert!(expr.ends_with(&format!("({literal})")));
        assert!(literal.contains(r#""x'); alert(1); ('""#));
    }

    #[test]
    fn drift_classification() {
        assert!(PageError::SectionNotFound {
            section: "Adres".into(),
            found: vec![]
        }
        .is_ui_drift());
        assert!(!PageError::SessionExpired.is_ui_drift());
        assert!(!PageError::SaveRefused {
            section: "Adres".into(),
            message: "x".into()
        }
        .is_ui_drift());
    }
}

//! The page model: everything the executor does inside a Sportlink page, as small JavaScript
//! snippets evaluated in the page. They rely only on what `../shared/spec/sportlink.md` promises
//! and a person's browser sees: heading texts, button texts ("Wijzig", "Sla op"/"Opslaan",
//! "Annuleer"), input names from the catalogue, "Oud bondslid", the `/auth/realms/` login page.
//! Never on element types, ids, classes or positions.
//!
//! - A section is found by its heading text (whitespace and `&nbsp;` folded): the largest element
//!   around that text holding no other heading and no other section's buttons. Every action is
//!   scoped to it.
//! - A refused save is told from the answer the app got to its save request (observed in the
//!   browser, see `network.rs`) and from the message the section shows, whatever element holds it.
//! - Inputs passed to a snippet are serialised with serde_json and embedded as a JSON literal;
//!   untrusted text is never concatenated into code.
//! - Every wait is a condition polled inside the page with a deadline. The page answers
//!   `{"state": "pending"}` when its time slice runs out, and the Rust side decides whether the
//!   overall deadline has passed. Evaluation errors while a navigation replaces the document are
//!   retried until the deadline.
//!
//! The JavaScript is in `scripts.rs`, what the model reports in `types.rs`; this file is the one
//! `PageModel` and its actions, longer than most because each action is a snippet, its answer
//! and its error in one place.

use std::collections::BTreeMap;
use std::time::Duration;

use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::Page;
use serde::Deserialize;
use tokio::time::Instant;

use super::network::NetworkLog;

/// How long the page may run one polling slice before reporting back.
const SLICE: Duration = Duration::from_millis(1500);
/// The least time the DOM and the app's requests must be quiet before a section counts as absent.
const MIN_ABSENCE_QUIET: Duration = Duration::from_millis(1500);
/// Pause between evaluation attempts that failed because the document was being replaced.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

mod scripts;
mod types;

use scripts::*;
pub use types::*;

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
        headings: Vec<PageHeading>,
    },
    Status {
        former: bool,
    },
    Diagnosis(PageDiagnosis),
    AlreadyEditing,
    NoEditButton {
        count: u32,
        #[serde(default)]
        buttons: Vec<String>,
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
        #[serde(default)]
        buttons: Vec<String>,
    },
    Error {
        message: String,
    },
    Saved,
    Idle,
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
    /// How long the DOM and the app's requests must be quiet before a missing section or input
    /// counts as missing.
    pub settle: Duration,
}

/// The page model over one chromiumoxide page and what the app in it fetched.
pub struct PageModel<'a> {
    page: &'a Page,
    network: &'a NetworkLog,
    timings: PageTimings,
}

impl<'a> PageModel<'a> {
    pub fn new(page: &'a Page, network: &'a NetworkLog, timings: PageTimings) -> Self {
        Self {
            page,
            network,
            timings,
        }
    }

    pub fn timings(&self) -> PageTimings {
        self.timings
    }

    pub fn network(&self) -> &NetworkLog {
        self.network
    }

    /// The app's requests have all been answered and nothing new started for the settle time.
    fn network_settled(&self) -> bool {
        self.network.in_flight() == 0
            && self
                .network
                .quiet_for()
                .is_none_or(|q| q >= self.timings.settle)
    }

    /// Navigate and wait for the load event; returns the URL the browser ended on.
    pub async fn goto(&self, url: &str) -> Result<String, PageError> {
        self.network.forget_in_flight();
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
        self.network.forget_in_flight();
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

    /// Wait until the section is rendered, or until the page (DOM and the app's requests) has
    /// settled without it. Errors: login page, section ambiguous, timeout.
    pub async fn await_section(&self, heading: &str) -> Result<SectionLookup, PageError> {
        // A section may render well after the others, without a request of its own: its
        // absence is believed only after a longer quiet spell than a wait for an input needs.
        let quiet = self.timings.settle.max(MIN_ABSENCE_QUIET);
        let args = serde_json::json!({ "heading": heading, "quiet_ms": millis(quiet) });
        let after = self.timings.action_timeout;
        let deadline = Instant::now() + after;
        let mut last_absent = None;
        loop {
            match self
                .poll_until(
                    AWAIT_SECTION,
                    args.clone(),
                    "the section to render",
                    deadline,
                )
                .await
            {
                Ok(Answer::Found { editing }) => return Ok(SectionLookup::Found { editing }),
                Ok(Answer::Login) => return Err(PageError::SessionExpired),
                Ok(Answer::Ambiguous { count }) => {
                    return Err(PageError::SectionAmbiguous {
                        section: heading.into(),
                        count,
                    })
                }
                Ok(Answer::Absent { headings }) => {
                    let rendered = headings.iter().any(|h| !h.top);
                    if rendered && self.network_settled() {
                        return Ok(SectionLookup::Absent { headings });
                    }
                    // The app is still loading, or has rendered no section yet: an absence
                    // means nothing yet.
                    last_absent = Some(headings);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(other) => return Err(unexpected(other)),
                Err(PageError::Timeout { .. }) => {
                    return match last_absent {
                        // Requests that never finish (a stalled app): what the page shows is
                        // all there is.
                        Some(headings) => Ok(SectionLookup::Absent { headings }),
                        None => Err(PageError::Timeout {
                            what: format!("section \"{heading}\" to render"),
                            after,
                        }),
                    };
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Look at the rendered page against the expected sections, touching nothing.
    pub async fn diagnose(&self, sections: &[ExpectedSection]) -> Result<PageDiagnosis, PageError> {
        let args = serde_json::json!({ "sections": sections });
        match self.once(DIAGNOSE, args).await? {
            Answer::Diagnosis(d) => Ok(d),
            other => Err(unexpected(other)),
        }
    }

    /// Whether the rendered page shows the status "Oud bondslid".
    pub async fn shows_former_member(&self) -> Result<bool, PageError> {
        match self.once(SHOWS_FORMER, serde_json::json!({})).await? {
            Answer::Status { former } => Ok(former),
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
            Ok(Answer::NoSaveButton { count, buttons }) => Err(PageError::SaveButton {
                section: heading.into(),
                count,
                buttons,
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
            Answer::NoEditButton { count, buttons } => PageError::EditButton {
                section: heading.into(),
                count,
                buttons,
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

    /// Click the section's own save button and wait until it leaves edit mode. Returns the
    /// network mark taken just before the click: answers the app received after it are
    /// `network().since(mark)`.
    ///
    /// A refused save is told from what the app was answered (HTTP status of its save request)
    /// and what the section shows (a message, whatever element holds it).
    pub async fn save(&self, heading: &str, inputs: &[InputLocator]) -> Result<u64, PageError> {
        let mark = self.network.mark();
        let args = serde_json::json!({ "heading": heading });
        match self.once(CLICK_SAVE, args).await? {
            Answer::Clicked => {}
            Answer::NoSaveButton { count, buttons } => {
                return Err(PageError::SaveButton {
                    section: heading.into(),
                    count,
                    buttons,
                })
            }
            other => return Err(self.section_error(heading, other)),
        }
        let args = serde_json::json!({
            "heading": heading,
            "fields": inputs,
            "quiet_ms": millis(self.timings.settle),
        });
        let after = self.timings.action_timeout;
        let deadline = Instant::now() + after;
        // When the section looked finished while a request of the app was still out: after the
        // settle time the page is believed (verification reads what was stored in any case).
        let mut looked_done_at: Option<Instant> = None;
        loop {
            let answer = self
                .poll_until(AWAIT_SAVED, args.clone(), "the save to finish", deadline)
                .await;
            let still_loading = self.network.in_flight() > 0
                && looked_done_at.get_or_insert_with(Instant::now).elapsed() < self.timings.settle;
            let writes: Vec<_> = self
                .network
                .since(mark)
                .into_iter()
                .filter(|r| !r.is_read())
                .collect();
            let failed_write = writes
                .iter()
                .rev()
                .find(|r| r.status == 0 || r.status >= 400);
            match answer {
                Ok(Answer::Saved) => {
                    if still_loading {
                        // Read-only while the request is still out: not finished yet.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    if let Some(w) = failed_write {
                        return Err(refused_save(heading, w.status, String::new()));
                    }
                    return Ok(mark);
                }
                Ok(Answer::Login) => return Err(PageError::SessionExpired),
                Ok(Answer::Error { message }) => {
                    if still_loading {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    if let Some(w) = failed_write {
                        return Err(refused_save(heading, w.status, message));
                    }
                    if !message.is_empty() {
                        // A message without a failed request: refused by the page itself, or
                        // by a server that answers errors with 200.
                        return Err(PageError::SaveRefused {
                            section: heading.into(),
                            message,
                            transient: false,
                        });
                    }
                    // Still editing, nothing said: keep waiting until the deadline.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(other) => return Err(unexpected(other)),
                Err(PageError::Timeout { .. }) => {
                    return Err(PageError::SaveNotFinished {
                        section: heading.into(),
                    })
                }
                Err(e) => return Err(e),
            }
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
        args: serde_json::Value,
        what: &str,
    ) -> Result<Answer, PageError> {
        let deadline = Instant::now() + self.timings.action_timeout;
        self.poll_until(body, args, what, deadline).await
    }

    /// [`Self::poll`] against a deadline the caller keeps across several polls.
    async fn poll_until(
        &self,
        body: &str,
        mut args: serde_json::Value,
        what: &str,
        deadline: Instant,
    ) -> Result<Answer, PageError> {
        let after = self.timings.action_timeout;
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

/// A save whose request the app got answered with a failure: 401 is an expired session; 5xx (or
/// no answer at all) a transient server error; anything else a refusal. The section's own
/// message wins over the bare status.
fn refused_save(heading: &str, status: u16, message: String) -> PageError {
    if status == 401 {
        return PageError::SessionExpired;
    }
    let message = if message.is_empty() {
        format!("the save was answered with HTTP {status}")
    } else {
        message
    };
    PageError::SaveRefused {
        section: heading.into(),
        message,
        transient: status == 0 || status >= 500,
    }
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
        assert!(!PageError::SectionMissing {
            section: "Adres".into()
        }
        .is_ui_drift());
        assert!(!PageError::SessionExpired.is_ui_drift());
        assert!(!PageError::SaveRefused {
            section: "Adres".into(),
            message: "x".into(),
            transient: false,
        }
        .is_ui_drift());
    }
}

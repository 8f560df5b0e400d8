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

use std::collections::BTreeMap;
use std::time::Duration;

use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::Page;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::network::NetworkLog;

/// How long the page may run one polling slice before reporting back.
const SLICE: Duration = Duration::from_millis(1500);
/// The least time the DOM and the app's requests must be quiet before a section counts as absent.
const MIN_ABSENCE_QUIET: Duration = Duration::from_millis(1500);
/// Pause between evaluation attempts that failed because the document was being replaced.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Helpers shared by all snippets. Kept free of any input: inputs arrive as the argument `a`.
///
/// Nothing here relies on element names, ids, classes or positions that sportlink.md does not
/// promise. A section is the largest element around its heading text that holds no other heading
/// and no other section's buttons; buttons are found by their text, inputs by the catalogue's
/// selectors inside the section.
const PRELUDE: &str = r#"
const fold = (s) => String(s == null ? '' : s).replace(/[\s\u00a0\u200b\u200c\u200d\ufeff]+/g, ' ').trim();
const norm = (s) => fold(s).toLowerCase();
const CONTROL = 'button,input,select,textarea,option,script,style,noscript,template,[role=button]';
const NOT_A_HEADING = 'button,[role=button],select,option,label,nav,[role=tab],[role=navigation],script,style,head,title,textarea';
const ownText = (el) => {
  let t = '';
  for (const n of el.childNodes) {
    if (n.nodeType === 3) { t += n.nodeValue + ' '; }
    else if (n.nodeType === 1 && !n.matches(CONTROL)) { t += ownText(n) + ' '; }
  }
  return t;
};
const shown = (el) => {
  if (el.getClientRects().length === 0) return false;
  const st = getComputedStyle(el);
  return st.visibility !== 'hidden' && st.display !== 'none';
};
const BUTTONS = 'button,input[type=button],input[type=submit],[role=button]';
const labelOf = (b) => norm(b.tagName === 'INPUT' ? b.value : (fold(b.textContent) || b.getAttribute('aria-label') || b.getAttribute('title') || ''));
const usable = (b) => shown(b) && !b.disabled && b.getAttribute('aria-disabled') !== 'true';
const SAVE = ['sla op', 'opslaan'];
const EDIT = ['wijzig'];
const CANCEL = ['annuleer', 'annuleren'];
const ACTIONS = SAVE.concat(EDIT, CANCEL);
const buttonsIn = (root, texts) => Array.from(root.querySelectorAll(BUTTONS)).filter((b) => usable(b) && texts.includes(labelOf(b)));
const HEADINGISH = 'h1,h2,h3,h4,h5,h6,[role=heading],legend';
// Elements whose own text (without buttons and inputs) is exactly the heading; the deepest wins.
// Walks text nodes (cheap on large pages) and tries their nearest few ancestors.
const headingElements = (heading) => {
  const want = norm(heading);
  if (!want || !document.body) return [];
  const first = want.split(' ')[0];
  const eligible = (el) => !el.matches(CONTROL) && el.closest(NOT_A_HEADING) === null;
  const found = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n !== null; n = walker.nextNode()) {
    if (norm(n.nodeValue).indexOf(first) === -1) continue;
    let el = n.parentElement;
    for (let depth = 0; el !== null && el !== document.body && depth < 4; depth += 1, el = el.parentElement) {
      if (eligible(el) && norm(ownText(el)) === want) { found.add(el); break; }
    }
  }
  const all = Array.from(found);
  return all.filter((el) => !all.some((o) => o !== el && el.contains(o)) && shown(el));
};
const foreignHeading = (node, h) => Array.from(node.querySelectorAll(HEADINGISH))
  .some((x) => !x.contains(h) && !h.contains(x) && fold(ownText(x)) !== '' && shown(x));
const containerOf = (h) => {
  let cur = h;
  for (;;) {
    const parent = cur.parentElement;
    if (!parent || parent === document.body || parent === document.documentElement) break;
    if (foreignHeading(parent, h)) break;
    const mine = buttonsIn(cur, ACTIONS).length;
    if (mine > 0 && buttonsIn(parent, ACTIONS).length > mine) break;
    cur = parent;
  }
  if (buttonsIn(cur, ACTIONS).length > 0) return cur;
  // Flat markup: the heading's block holds nothing but the heading, and the section is the run
  // of siblings after it, up to the next heading.
  const nodes = [cur];
  for (let sib = cur.nextElementSibling; sib !== null; sib = sib.nextElementSibling) {
    if (sib.matches(HEADINGISH) || Array.from(sib.querySelectorAll(HEADINGISH)).some((x) => fold(ownText(x)) !== '' && shown(x))) break;
    nodes.push(sib);
  }
  if (nodes.length === 1) return cur;
  const range = {
    nodes: nodes,
    querySelectorAll: (sel) => nodes.flatMap((n) => (n.matches(sel) ? [n] : []).concat(Array.from(n.querySelectorAll(sel)))),
    contains: (el) => nodes.some((n) => n === el || n.contains(el)),
  };
  return buttonsIn(range, ACTIONS).length > 0 ? range : cur;
};
const sectionsByHeading = (heading) => {
  let hs = headingElements(heading);
  // A heading element proper wins over the same text elsewhere (a breadcrumb, a summary line).
  const proper = hs.filter((h) => h.matches(HEADINGISH) || h.closest(HEADINGISH) !== null);
  if (proper.length > 0) hs = proper;
  const secs = [];
  const key = (c) => (c.nodes ? c.nodes[0] : c);
  for (const h of hs) { const c = containerOf(h); if (!secs.some((x) => key(x) === key(c))) secs.push(c); }
  return secs;
};
// Every heading-like text on the page, with whether its section has its own "Wijzig".
const pageHeadings = () => {
  const out = [];
  if (!document.body) return out;
  for (const h of document.body.querySelectorAll(HEADINGISH)) {
    const text = fold(ownText(h));
    if (!text || !shown(h) || h.closest(NOT_A_HEADING) !== null) continue;
    const top = h.matches('h1');
    const sec = containerOf(h);
    out.push({ text: text, top: top, editable: buttonsIn(sec, EDIT).length > 0 || buttonsIn(sec, SAVE).length > 0 });
  }
  return out;
};
const editing = (sec) => buttonsIn(sec, SAVE).length > 0;
const editable = (el) => el !== null && !el.disabled && !el.readOnly && el.type !== 'hidden';
const findInput = (sec, selectors) => {
  for (const s of selectors) {
    let found = [];
    try { found = Array.from(sec.querySelectorAll(s)); } catch (e) { continue; }
    if (found.length === 0) continue;
    const good = found.filter((el) => editable(el) && (shown(el) || el.type === 'checkbox' || el.type === 'radio'));
    if (good.length > 0) return good[0];
    const any = found.filter(editable);
    if (any.length > 0) return any[0];
    return found[0];
  }
  return null;
};
const inputNames = (sec) => Array.from(sec.querySelectorAll('input,select,textarea'))
  .filter((e) => !['hidden', 'button', 'submit', 'reset', 'image'].includes(e.type))
  .map((e) => (e.tagName.toLowerCase()) + (e.getAttribute('name') ? '[name="' + e.getAttribute('name') + '"]' : '') + (e.type && e.tagName === 'INPUT' ? ' (' + e.type + ')' : ''));
const buttonTexts = (sec) => Array.from(sec.querySelectorAll(BUTTONS)).filter(shown).map(labelOf).filter((t) => t.length > 0);
const readInput = (el) => (el.type === 'checkbox' || el.type === 'radio') ? (el.checked ? 'true' : 'false') : String(el.value == null ? '' : el.value);
const ERRORISH = '[role=alert],[aria-live],.validation-error,[class*=error],[class*=Error],[class*=invalid],[class*=danger],[class*=feedback],[class*=warning]';
const leafTexts = (root) => Array.from(root.querySelectorAll('*'))
  .filter((e) => !e.matches(CONTROL) && e.closest('button,[role=button],select') === null && shown(e))
  .map((e) => fold(Array.from(e.childNodes).filter((n) => n.nodeType === 3).map((n) => n.nodeValue).join(' ')))
  .filter((t) => t.length > 0);
const errorText = (sec) => {
  const texts = [];
  const add = (t) => { if (t && !texts.includes(t)) texts.push(t); };
  for (const e of sec.querySelectorAll(ERRORISH)) { if (shown(e)) add(fold(ownText(e))); }
  for (const e of document.querySelectorAll('[role=alert],[aria-live=assertive]')) { if (!sec.contains(e) && shown(e)) add(fold(ownText(e))); }
  if (texts.length === 0 && window.__rrsBefore) {
    for (const t of leafTexts(sec)) { if (!window.__rrsBefore.includes(t)) add(t); }
  }
  return texts.join(' ').slice(0, 500);
};
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
    await new Promise((res) => setTimeout(res, 40));
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
  if (secs.length === 0) return { err: { state: 'absent', headings: pageHeadings() } };
  if (secs.length > 1) return { err: { state: 'ambiguous', count: secs.length } };
  return { sec: secs[0] };
};
"#;

/// Wait until the section with the heading is rendered, or the page has been quiet for the settle
/// time without it (the Rust side also waits for the app's requests to finish before believing
/// an absence).
const AWAIT_SECTION: &str = r#"
return until(a.budget_ms, () => {
  if (onLogin()) return { state: 'login' };
  const quiet = quietFor(a.quiet_ms);
  const secs = sectionsByHeading(a.heading);
  if (secs.length === 1) return { state: 'found', editing: editing(secs[0]) };
  if (secs.length > 1) return { state: 'ambiguous', count: secs.length };
  if (document.readyState === 'complete' && quiet) return { state: 'absent', headings: pageHeadings() };
  return null;
});
"#;

/// What the page shows of the member's status (sportlink.md: former members show "Oud bondslid").
const SHOWS_FORMER: &str = r#"
const text = norm(document.body ? document.body.innerText : '');
return { state: 'status', former: text.indexOf('oud bondslid') !== -1 };
"#;

/// Read-only look at a rendered page against the catalogue: per expected section whether its
/// heading is there, its buttons, and which of each field's selectors match (inputs may only
/// exist in edit mode, which this never opens).
const DIAGNOSE: &str = r#"
const sections = a.sections.map((s) => {
  const secs = sectionsByHeading(s.heading);
  if (secs.length !== 1) return { heading: s.heading, found: secs.length, buttons: [], edit_buttons: 0, inputs: [], fields: [] };
  const sec = secs[0];
  const fields = s.fields.map((f) => {
    let matched = null;
    for (const sel of f.selectors) {
      let n = 0;
      try { n = sec.querySelectorAll(sel).length; } catch (e) { n = 0; }
      if (n > 0) { matched = sel; break; }
    }
    return { name: f.name, matched: matched };
  });
  return { heading: s.heading, found: 1, buttons: buttonTexts(sec), edit_buttons: buttonsIn(sec, EDIT).length, inputs: inputNames(sec), fields: fields };
});
return { state: 'diagnosis', headings: pageHeadings(), sections: sections, on_login: onLogin() };
"#;

const CLICK_EDIT: &str = r#"
const s = single(a.heading);
if (s.err) return s.err;
if (editing(s.sec)) return { state: 'already_editing' };
const buttons = buttonsIn(s.sec, EDIT);
if (buttons.length !== 1) return { state: 'no_edit_button', count: buttons.length, buttons: buttonTexts(s.sec) };
window.__rrsLastMutation = Date.now();
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
  if (!editing(sec)) {
    if (quiet && buttonsIn(sec, EDIT).length === 0 && sec.querySelectorAll('input,select,textarea').length > 0 && buttonsIn(sec, CANCEL).length > 0) {
      return { state: 'no_save_button', count: 0, buttons: buttonTexts(sec) };
    }
    return null;
  }
  const values = {};
  const missing = [];
  for (const f of a.fields) {
    const el = findInput(sec, f.selectors);
    if (editable(el)) { values[f.name] = readInput(el); } else { missing.push(f.name); }
  }
  if (missing.length === 0) return { state: 'editing', values: values };
  if (quiet) return { state: 'missing_inputs', missing: missing, inputs: inputNames(sec) };
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
  if (!editable(el)) return { state: 'missing_inputs', missing: [f.name], inputs: inputNames(s.sec) };
  if (el.focus) el.focus();
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
const buttons = buttonsIn(s.sec, SAVE);
if (buttons.length !== 1) return { state: 'no_save_button', count: buttons.length, buttons: buttonTexts(s.sec) };
window.__rrsBefore = leafTexts(s.sec);
window.__rrsLastMutation = Date.now();
buttons[0].click();
return { state: 'clicked' };
"#;

/// After "Sla op": wait until the section is read-only again, is editable again (with whatever
/// message it shows), or the session expired (the page went to the login page). The Rust side
/// combines this with the answer the app got to its save request.
const AWAIT_SAVED: &str = r#"
return until(a.budget_ms, () => {
  if (onLogin()) return { state: 'login' };
  const quiet = quietFor(a.quiet_ms);
  const secs = sectionsByHeading(a.heading);
  if (secs.length !== 1) return null;
  const sec = secs[0];
  const open = editing(sec);
  if (!open && buttonsIn(sec, EDIT).length > 0 && a.fields.every((f) => !editable(findInput(sec, f.selectors)))) return { state: 'saved' };
  const err = errorText(sec);
  if (open && (err || quiet)) return { state: 'error', message: err };
  return null;
});
"#;

/// Cancel the section (and any other section left in edit mode: never leave a form open).
const CLICK_CANCEL: &str = r#"
let clicked = 0;
const mine = sectionsByHeading(a.heading);
const open = [];
for (const sec of mine) { if (editing(sec)) open.push(sec); }
if (a.all) {
  for (const b of buttonsIn(document.body, SAVE)) {
    let sec = b.parentElement;
    while (sec && buttonsIn(sec, CANCEL).length === 0) sec = sec.parentElement;
    if (sec && !open.some((o) => o.contains(b))) open.push(sec);
  }
}
for (const sec of open) {
  const buttons = buttonsIn(sec, CANCEL);
  if (buttons.length > 0) { buttons[0].click(); clicked += 1; }
}
return { state: 'clicked', count: clicked };
"#;

const AWAIT_NOT_EDITING: &str = r#"
return until(a.budget_ms, () => {
  if (onLogin()) return { state: 'login' };
  return buttonsIn(document.body, SAVE).length === 0 ? { state: 'idle' } : null;
});
"#;

const LOGIN_STATE: &str = r#"
return until(a.budget_ms, () => {
  if (document.readyState !== 'complete') return null;
  const q = (s) => document.querySelector(s);
  // Keycloak's own message element when there is one, else whatever the page marks as an alert
  // or an error (sportlink.md promises a message, not its element).
  const texts = [];
  for (const e of document.querySelectorAll('#input-error,[role=alert],[aria-live],[class*=error],[class*=Error],[class*=alert],[class*=feedback]')) {
    if (!shown(e) || e.closest('form') !== null && e.matches('input,label')) continue;
    const t = fold(e.textContent);
    if (t && !texts.some((x) => x.indexOf(t) !== -1 || t.indexOf(x) !== -1)) texts.push(t);
  }
  return {
    state: 'login_state',
    on_login: onLogin(),
    has_username: q('#username') !== null && q('#password') !== null,
    has_otp: q('#otp') !== null,
    has_submit: q('#kc-login') !== null,
    error: texts.join(' ').slice(0, 300),
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

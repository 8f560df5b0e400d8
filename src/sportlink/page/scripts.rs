//! The JavaScript the page model evaluates in Sportlink's pages: one prelude of helpers and one
//! snippet per action. Kept together because they are one program, read and changed as one
//! (the prelude's definitions are used by every snippet); the Rust side is in `mod.rs`.

/// Helpers shared by all snippets. Kept free of any input: inputs arrive as the argument `a`.
///
/// Nothing here relies on element names, ids, classes or positions that sportlink.md does not
/// promise. A section is the largest element around its heading text that holds no other heading
/// and no other section's buttons; buttons are found by their text, inputs by the catalogue's
/// selectors inside the section.
pub(super) const PRELUDE: &str = r#"
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
pub(super) const AWAIT_SECTION: &str = r#"
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
pub(super) const SHOWS_FORMER: &str = r#"
const text = norm(document.body ? document.body.innerText : '');
return { state: 'status', former: text.indexOf('oud bondslid') !== -1 };
"#;

/// Read-only look at a rendered page against the catalogue: per expected section whether its
/// heading is there, its buttons, and which of each field's selectors match (inputs may only
/// exist in edit mode, which this never opens).
pub(super) const DIAGNOSE: &str = r#"
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

pub(super) const CLICK_EDIT: &str = r#"
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
pub(super) const AWAIT_EDITING: &str = r#"
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

pub(super) const FILL: &str = r#"
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

pub(super) const CLICK_SAVE: &str = r#"
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
pub(super) const AWAIT_SAVED: &str = r#"
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
pub(super) const CLICK_CANCEL: &str = r#"
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

pub(super) const AWAIT_NOT_EDITING: &str = r#"
return until(a.budget_ms, () => {
  if (onLogin()) return { state: 'login' };
  return buttonsIn(document.body, SAVE).length === 0 ? { state: 'idle' } : null;
});
"#;

pub(super) const LOGIN_STATE: &str = r#"
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

pub(super) const SUBMIT_CREDENTIALS: &str = r#"
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

pub(super) const SUBMIT_OTP: &str = r#"
const o = document.querySelector('#otp');
const b = document.querySelector('#kc-login');
if (!o || !b) return { state: 'missing' };
setValue(o, a.code);
window.__rrsNavMark = true;
b.click();
return { state: 'clicked' };
"#;

/// Wait for the document that a form submission navigates to (the old one carries a mark).
pub(super) const AWAIT_NEW_DOCUMENT: &str = r#"
return until(a.budget_ms, () => (!window.__rrsNavMark && document.readyState === 'complete') ? { state: 'loaded' } : null);
"#;

pub(super) const CLEAR_PASSWORD: &str = r#"
for (const el of document.querySelectorAll('input[type=password], #password, #otp')) { el.value = ''; }
return { state: 'cleared' };
"#;

//! Real-Chromium tests of the simulator: the login, the JS-rendered sections and the save cycle
//! work in a browser the way the executor will drive them, in the plain shape and in drawn
//! variants. Chromium must be installed (`scripts/install-deps`); without it these tests fail.
//! Every wait is a condition with a deadline.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use chromiumoxide::Page;
use rrs_standins::simulator::{
    totp_code, DateDisplay, Faults, SaveAnswer, Section, SimConfig, SimMember, SimState, Simulator,
    Variant, SEED_ENV,
};
use serde_json::Value;

// Shared with other tests; this file uses only part of it.
use headless::Headless;
#[allow(dead_code)]
use rrs_testkit::headless;

const USER: &str = "clubadmin";
const PASSWORD: &str = "correct horse";
const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const MEMBER: &str = "ABC1234";
const FORMER: &str = "OUD0001";
/// Generous: two cores are shared with other builds.
const WAIT: Duration = Duration::from_secs(15);
const SCENARIO_LIMIT: Duration = Duration::from_secs(90);

use headless::browser_tests_skipped;

async fn start_sim() -> Simulator {
    let sim = Simulator::start(SimConfig {
        username: USER.into(),
        password: PASSWORD.into(),
        otp_secret_base32: SECRET.into(),
        port: 0,
        clock: rondo_reverse_sync::clock::system(),
    })
    .await
    .expect("simulator starts");
    let mut jan = SimMember::new(MEMBER, "Jan Jansen");
    jan.communication.email1 = "jan@example.nl".into();
    jan.communication.mobile1 = "+31612345678".into();
    jan.set_remark(8, "2023-10-30");
    sim.state().seed_member(jan);
    sim.state()
        .seed_member(SimMember::new(FORMER, "Oud Lid").former());
    sim
}

/// Runs `scenario` in a fresh browser against a fresh simulator, then always cleans up.
async fn with_browser<F, Fut>(scenario: F) -> anyhow::Result<()>
where
    F: FnOnce(Page, String, SimState) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let sim = start_sim().await;
    let headless = match Headless::launch(None).await {
        Ok(h) => h,
        Err(e) => {
            sim.shutdown().await;
            return Err(e);
        }
    };
    let outcome = async {
        let page = headless.browser.new_page("about:blank").await?;
        tokio::time::timeout(SCENARIO_LIMIT, scenario(page, sim.base_url(), sim.state()))
            .await
            .map_err(|_| anyhow!("scenario exceeded {SCENARIO_LIMIT:?}"))?
    }
    .await;
    headless.close().await;
    sim.shutdown().await;
    outcome
}

/// Polls a JS expression until it yields something other than false/null, or fails at `WAIT`.
/// Errors while polling (e.g. the page is navigating) count as "not yet".
async fn wait_for(page: &Page, what: &str, expression: &str) -> anyhow::Result<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(result) = page.evaluate(expression).await {
            if let Ok(value) = result.into_value::<Value>() {
                if !matches!(value, Value::Null | Value::Bool(false)) {
                    return Ok(value);
                }
            }
        }
        if Instant::now() >= deadline {
            let url = page.url().await.ok().flatten().unwrap_or_default();
            bail!("timed out waiting for {what} (at {url})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn eval(page: &Page, expression: &str) -> anyhow::Result<Value> {
    Ok(page.evaluate(expression).await?.into_value::<Value>()?)
}

/// JS for the section whose `h2` is `title` (null when absent).
fn section_js(title: &str) -> String {
    format!(
        "[...document.querySelectorAll('section')].find(s => s.querySelector('h2') && s.querySelector('h2').textContent.trim() === {})",
        Value::from(title)
    )
}

fn section_xpath(title: &str) -> String {
    format!("//section[h2[normalize-space()='{title}']]")
}

async fn click_in_section(page: &Page, title: &str, button: &str) -> anyhow::Result<()> {
    let xpath = format!(
        "{}//button[normalize-space()='{button}']",
        section_xpath(title)
    );
    page.find_xpath(&xpath)
        .await
        .with_context(|| format!("button {button} in {title}"))?
        .click()
        .await?;
    Ok(())
}

/// Clears the named input in the section and types `text` with real key events.
async fn fill(page: &Page, title: &str, name: &str, text: &str) -> anyhow::Result<()> {
    let xpath = format!("{}//input[@name='{name}']", section_xpath(title));
    let input = page
        .find_xpath(&xpath)
        .await
        .with_context(|| format!("input {name} in {title}"))?;
    input
        .call_js_fn("function() { this.value = ''; }", false)
        .await?;
    input.click().await?.type_str(text).await?;
    Ok(())
}

async fn log_in(page: &Page, base: &str, start_path: &str, code: &str) -> anyhow::Result<()> {
    page.goto(format!("{base}{start_path}")).await?;
    wait_for(
        page,
        "the login form",
        "!!document.querySelector('#username')",
    )
    .await?;
    page.find_element("#username")
        .await?
        .click()
        .await?
        .type_str(USER)
        .await?;
    page.find_element("#password")
        .await?
        .click()
        .await?
        .type_str(PASSWORD)
        .await?;
    page.find_element("#kc-login").await?.click().await?;
    wait_for(page, "the code form", "!!document.querySelector('#otp')").await?;
    page.find_element("#otp")
        .await?
        .click()
        .await?
        .type_str(code)
        .await?;
    page.find_element("#kc-login").await?.click().await?;
    wait_for(
        page,
        "leaving the login pages",
        "!location.pathname.startsWith('/auth/realms/') && document.readyState === 'complete'",
    )
    .await?;
    Ok(())
}

fn current_code() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    totp_code(SECRET, now).expect("valid test secret")
}

#[tokio::test]
async fn browser_logs_in_edits_communication_and_sees_read_only_mode() {
    if browser_tests_skipped() {
        return;
    }
    let result = with_browser(|page, base, state| async move {
        let general = format!("/member/member-details/{MEMBER}/general");
        log_in(&page, &base, &general, &current_code()).await?;
        let communication = section_js("Communicatie");
        wait_for(&page, "the Communicatie section", &format!("!!{communication}")).await?;

        let mobile = eval(&page, &format!("{communication}.querySelector('dd[data-field=Mobile1]').textContent")).await?;
        if mobile != "0612345678" {
            bail!("mobile shown as {mobile}, expected local form");
        }
        click_in_section(&page, "Communicatie", "Wijzig").await?;
        wait_for(&page, "edit mode", &format!("!!{communication}.querySelector('input[name=Email1]')")).await?;
        fill(&page, "Communicatie", "Email1", "nieuw@example.nl").await?;
        click_in_section(&page, "Communicatie", "Sla op").await?;
        wait_for(
            &page,
            "read-only mode with the new address",
            &format!(
                "{communication}.querySelectorAll('input').length === 0 && \
                 {communication}.querySelector('dd[data-field=Email1]').textContent === 'nieuw@example.nl'"
            ),
        )
        .await?;

        let stored = state.member(MEMBER).context("member")?.communication.email1;
        if stored != "nieuw@example.nl" {
            bail!("store has {stored}");
        }
        let saves = state.saves_for(MEMBER);
        if saves.len() != 1 || saves[0].status != 200 {
            bail!("expected one successful save, got {saves:?}");
        }
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("{e:#}");
    }
}

#[tokio::test]
async fn browser_sees_rendering_faults_and_failed_saves() {
    if browser_tests_skipped() {
        return;
    }
    let result = with_browser(|page, base, state| async move {
        state.set_faults(Faults {
            // Long enough that "no sections right after load" cannot be a timing accident.
            render_delay_ms: 2000,
            old_input_names: true,
            extra_header_button: true,
            date_display: DateDisplay::DutchDot,
            ..Faults::default()
        });
        let other = format!("/member/member-details/{MEMBER}/other");
        log_in(&page, &base, &other, &current_code()).await?;
        let free = section_js("Vrije invoervelden");
        let early_sections = eval(&page, "document.querySelectorAll('section').length").await?;
        if early_sections != 0 {
            bail!("{early_sections} sections present before the render delay passed");
        }
        let header_buttons = eval(&page, "document.querySelectorAll('.page-header button').length").await?;
        if header_buttons != 2 {
            bail!("expected 2 header buttons, got {header_buttons}");
        }
        wait_for(&page, "the free fields section", &format!("!!{free}")).await?;
        let date = eval(&page, &format!("{free}.querySelector('dd[data-field=Remarks8]').textContent")).await?;
        if date != "30 okt. 2023" {
            bail!("date shown as {date}");
        }

        click_in_section(&page, "Vrije invoervelden", "Wijzig").await?;
        let old_name = wait_for(&page, "old input name", &format!("{free}.querySelector('input[name=inputRemarks8]') && {free}.querySelector('input[name=inputRemarks8]').value")).await?;
        if old_name != "30-10-2023" {
            bail!("edit value {old_name}");
        }
        fill(&page, "Vrije invoervelden", "inputRemarks8", "31-02-2024").await?;
        click_in_section(&page, "Vrije invoervelden", "Sla op").await?;
        wait_for(&page, "validation error", &format!("{free}.querySelector('.validation-error') && {free}.querySelector('.validation-error').textContent === 'Ongeldige datum' && !!{free}.querySelector('input')")).await?;

        state.update_faults(|f| f.server_error_on_saves = 1);
        fill(&page, "Vrije invoervelden", "inputRemarks8", "01-03-2024").await?;
        click_in_section(&page, "Vrije invoervelden", "Sla op").await?;
        wait_for(&page, "server error", &format!("{free}.querySelector('.validation-error').textContent === 'Er is een fout opgetreden' && !!{free}.querySelector('input')")).await?;
        if state.member(MEMBER).context("member")?.remark(8) != Some("2023-10-30") {
            bail!("a failed save changed the store");
        }

        state.update_faults(|f| f.expire_session_on_next_save = true);
        click_in_section(&page, "Vrije invoervelden", "Sla op").await?;
        wait_for(&page, "the login page after a 401", "location.pathname.startsWith('/auth/realms/') && !!document.querySelector('#username')").await?;

        let former = format!("/member/member-details/{FORMER}/general");
        state.update_faults(|f| f.render_delay_ms = 0);
        // A fresh window's code: the first one was used for the first login.
        let next_code = totp_code(SECRET, now_secs() + 30).context("code")?;
        log_in(&page, &base, &former, &next_code).await?;
        let personal = section_js("Persoonlijke gegevens");
        wait_for(&page, "the former member's sections", &format!("!!{personal}")).await?;
        let status = eval(&page, "document.getElementById('member-status').textContent").await?;
        let section_buttons = eval(&page, "[...document.querySelectorAll('section button')].filter(b => b.textContent === 'Wijzig').length").await?;
        if status != "Oud bondslid" || section_buttons != 0 {
            bail!("former member shows status {status} and {section_buttons} section Wijzig buttons");
        }
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("{e:#}");
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Variants: the same scenario, driven only by what sportlink.md promises, in every drawn shape.

const PARTIAL: &str = "DEF5678";
/// One variant's whole scenario (three pages, three saves, two logins) must finish in this.
const VARIANT_LIMIT: Duration = Duration::from_secs(90);

/// The plain variant, then the one `SPORTLINK_SIM_SEED` pins, or eight random ones.
/// The variants one of the three tests below covers: the plain shape and two freshly drawn ones
/// (first part), three drawn ones (the others); the pinned variant in every part when
/// `SPORTLINK_SIM_SEED` is set. Nine variants in one test were the browser binary's last minute;
/// three parts run side by side.
fn variants_to_cover(part: usize) -> Vec<Variant> {
    let mut variants = Vec::new();
    if part == 0 {
        variants.push(Variant::plain());
    }
    let pinned = std::env::var(SEED_ENV).is_ok_and(|s| !s.trim().is_empty());
    let drawn = match (pinned, part) {
        (true, _) => 1,
        (false, 0) => 2,
        (false, _) => 3,
    };
    variants.extend((0..drawn).map(|_| Variant::from_env_or_random().1));
    variants
}

fn seed_variant_members(state: &SimState) {
    let mut jan = SimMember::new(MEMBER, "Jan Jansen");
    jan.communication.email1 = "jan@example.nl".into();
    jan.communication.mobile1 = "+31612345678".into();
    jan.address.address_number = "12".into();
    jan.set_remark(3, "1042");
    jan.set_remark(8, "2023-10-30");
    state.seed_member(jan);
    state.seed_member(SimMember::new(PARTIAL, "Piet Pietersen").without_section(Section::Address));
}

/// Helpers that rely only on what sportlink.md promises: headings by trimmed, whitespace-folded
/// text (any heading element), buttons by text (any clickable element), inputs by name.
const FIND: &str = r#"
const norm = (s) => String(s == null ? '' : s).replace(/[\s\u00a0]+/g, ' ').trim();
const headings = () => Array.from(document.querySelectorAll('h1,h2,h3,h4,h5,h6,legend,[role=heading]'));
const sectionOf = (title) => {
  const h = headings().find((x) => norm(x.textContent) === title);
  if (!h) return null;
  let node = h;
  while (node.parentElement && node.parentElement !== document.body
    && !headings().some((o) => o !== h && node.parentElement.contains(o))) { node = node.parentElement; }
  return node;
};
const shown = (e) => e.getClientRects().length > 0;
const textOf = (b) => norm(b.tagName === 'INPUT' ? b.value : b.textContent).toLowerCase();
const buttonsIn = (sec, texts) => Array.from(sec.querySelectorAll('button,a[role=button],input[type=button],input[type=submit]'))
  .filter((b) => shown(b) && !b.disabled && b.getAttribute('aria-disabled') !== 'true' && texts.includes(textOf(b)));
const inputIn = (sec, name) => Array.from(sec.querySelectorAll('[name="' + name + '"]'))
  .find((i) => !i.disabled && i.closest('[hidden]') === null) || null;
const editing = (sec) => buttonsIn(sec, ['sla op', 'opslaan']).length > 0;
const mark = (e) => {
  document.querySelectorAll('[data-test-click]').forEach((x) => x.removeAttribute('data-test-click'));
  if (!e) return false;
  e.setAttribute('data-test-click', '1');
  return true;
};
"#;

fn js(body: &str) -> String {
    format!("(() => {{ {FIND} {body} }})()")
}

fn quoted(text: &str) -> String {
    Value::from(text).to_string()
}

/// Clicks, with a real mouse event at its centre, the element `expression` (in FIND's scope)
/// yields, once it exists.
async fn click_found(page: &Page, what: &str, expression: &str) -> anyhow::Result<()> {
    wait_for(page, what, &js(&format!("return mark({expression});"))).await?;
    page.find_element("[data-test-click]")
        .await
        .with_context(|| format!("marked {what}"))?
        .click()
        .await
        .with_context(|| format!("clicking {what}"))?;
    Ok(())
}

async fn wait_for_sections(page: &Page, titles: &[&str]) -> anyhow::Result<()> {
    let list = Value::from(titles.to_vec()).to_string();
    wait_for(
        page,
        &format!("sections {titles:?}"),
        &js(&format!(
            "return {list}.every((t) => sectionOf(t) !== null);"
        )),
    )
    .await?;
    Ok(())
}

async fn open_edit(page: &Page, title: &str) -> anyhow::Result<()> {
    let sec = format!("sectionOf({})", quoted(title));
    let wijzig = format!("{sec} && buttonsIn({sec}, ['wijzig'])[0]");
    click_found(page, &format!("Wijzig in {title}"), &wijzig).await?;
    wait_for(
        page,
        &format!("edit mode of {title}"),
        &js(&format!("return !!{sec} && editing({sec});")),
    )
    .await?;
    Ok(())
}

/// Replaces the text of input `name` in `title` with `text`, typed with real key events.
async fn type_into(page: &Page, title: &str, name: &str, text: &str) -> anyhow::Result<()> {
    let sec = format!("sectionOf({})", quoted(title));
    let input = format!("{sec} && inputIn({sec}, {})", quoted(name));
    wait_for(
        page,
        &format!("input {name}"),
        &js(&format!("return mark({input});")),
    )
    .await?;
    let element = page.find_element("[data-test-click]").await?;
    element
        .call_js_fn("function() { this.value = ''; }", false)
        .await?;
    element.click().await?.type_str(text).await?;
    Ok(())
}

async fn click_save(page: &Page, title: &str) -> anyhow::Result<()> {
    let sec = format!("sectionOf({})", quoted(title));
    let save = format!("{sec} && buttonsIn({sec}, ['sla op', 'opslaan'])[0]");
    click_found(page, &format!("save in {title}"), &save).await
}

/// Waits until `title` is read-only (no save button, no editable input `name`) and shows
/// `shown` in its rendered text.
async fn wait_read_only(page: &Page, title: &str, name: &str, shown: &str) -> anyhow::Result<()> {
    let sec = format!("sectionOf({})", quoted(title));
    wait_for(
        page,
        &format!("{title} read-only showing {shown}"),
        &js(&format!(
            "const s = {sec}; return !!s && !editing(s) && !inputIn(s, {n}) && norm(s.innerText).includes({shown});",
            n = quoted(name),
            shown = quoted(shown)
        )),
    )
    .await?;
    Ok(())
}

/// Waits until `title` shows `message` while staying in edit mode (a refused save).
async fn wait_refused(page: &Page, title: &str, message: &str) -> anyhow::Result<()> {
    let sec = format!("sectionOf({})", quoted(title));
    wait_for(
        page,
        &format!("{title} still editing and showing {message:?}"),
        &js(&format!(
            "const s = {sec}; return !!s && editing(s) && norm(s.innerText).includes({m});",
            m = quoted(message)
        )),
    )
    .await?;
    Ok(())
}

/// Opens `title`'s edit mode, types `text` into input `name`, saves, and waits until the section
/// is read-only again and shows `shown_after`.
async fn edit_and_save(
    page: &Page,
    title: &str,
    name: &str,
    text: &str,
    shown_after: &str,
) -> anyhow::Result<()> {
    open_edit(page, title).await?;
    type_into(page, title, name, text).await?;
    click_save(page, title).await?;
    wait_read_only(page, title, name, shown_after).await
}

/// Logs in from `path` and ends on `path`, checking where the login itself led.
async fn log_in_to(
    page: &Page,
    base: &str,
    path: &str,
    variant: &Variant,
    code: &str,
) -> anyhow::Result<()> {
    log_in(page, base, path, code).await?;
    let landed = eval(page, "location.pathname").await?;
    let expected = if variant.login_returns_to_requested_page {
        path
    } else {
        "/"
    };
    if landed != expected {
        bail!("login led to {landed}, expected {expected}");
    }
    if landed != path {
        page.goto(format!("{base}{path}")).await?;
    }
    Ok(())
}

async fn exercise_variant(
    page: &Page,
    base: &str,
    state: &SimState,
    variant: &Variant,
) -> anyhow::Result<()> {
    let general = format!("/member/member-details/{MEMBER}/general");
    log_in_to(page, base, &general, variant, &current_code()).await?;
    let all_general = [
        "Persoonlijke gegevens",
        "Communicatie",
        "Adres",
        "Ouders/verzorgers",
        "Nationaliteit",
    ];
    wait_for_sections(page, &all_general).await?;
    let name = eval(
        page,
        &js("return norm((document.querySelector('h1') || {}).textContent);"),
    )
    .await?;
    if name != "Jan Jansen" {
        bail!("the page header's h1 shows {name}");
    }
    // Refused saves first: a validation error, then a server error, both shown in the section.
    open_edit(page, "Communicatie").await?;
    type_into(page, "Communicatie", "Email1", "geen-apenstaartje").await?;
    click_save(page, "Communicatie").await?;
    wait_refused(page, "Communicatie", "Ongeldig e-mailadres").await?;
    state.update_faults(|f| f.server_error_on_saves = 1);
    type_into(page, "Communicatie", "Email1", "nieuw@example.nl").await?;
    click_save(page, "Communicatie").await?;
    wait_refused(page, "Communicatie", &variant.server_error_text).await?;
    click_save(page, "Communicatie").await?;
    wait_read_only(page, "Communicatie", "Email1", "nieuw@example.nl").await?;
    let stored = state.member(MEMBER).context("member")?.communication.email1;
    if stored != "nieuw@example.nl" {
        bail!("the store has e-mail {stored}");
    }

    // A member without an address section: the others render, Adres never does.
    page.goto(format!("{base}/member/member-details/{PARTIAL}/general"))
        .await?;
    wait_for_sections(
        page,
        &["Persoonlijke gegevens", "Communicatie", "Nationaliteit"],
    )
    .await?;
    wait_for(
        page,
        "the page to finish rendering",
        "!!document.querySelector('main[aria-busy=false]')",
    )
    .await?;
    if eval(page, &js("return sectionOf('Adres') !== null;")).await? != Value::Bool(false) {
        bail!("a member without an address shows an Adres section");
    }

    let other = format!("/member/member-details/{MEMBER}/other");
    page.goto(format!("{base}{other}")).await?;
    wait_for_sections(
        page,
        &[
            "Vrije invoervelden",
            "Vrije invoervelden bij aanmelding",
            "Notities",
        ],
    )
    .await?;
    edit_and_save(
        page,
        "Vrije invoervelden",
        "Remarks8",
        "01-03-2024",
        "1 mrt 2024",
    )
    .await?;
    let remark = state
        .member(MEMBER)
        .context("member")?
        .remark(8)
        .map(str::to_owned);
    if remark.as_deref() != Some("2024-03-01") {
        bail!("the store has VOG date {remark:?}");
    }

    let financial = format!("/member/member-details/{MEMBER}/financial");
    page.goto(format!("{base}{financial}")).await?;
    let title = "Financiële gegevens";
    wait_for_sections(page, &[title]).await?;
    let sec = format!("sectionOf({})", quoted(title));
    click_found(
        page,
        "Wijzig in the financial section",
        &format!("{sec} && buttonsIn({sec}, ['wijzig'])[0]"),
    )
    .await?;
    let flag = format!("{sec} && inputIn({sec}, 'HasFinancialTransferBlockOwnClub')");
    click_found(page, "the financial checkbox", &flag).await?;
    wait_for(
        page,
        "the checkbox to be ticked",
        &js(&format!("const f = {flag}; return !!f && f.checked;")),
    )
    .await?;
    click_found(
        page,
        "save in the financial section",
        &format!("{sec} && buttonsIn({sec}, ['sla op', 'opslaan'])[0]"),
    )
    .await?;
    wait_for(
        page,
        "the financial section read-only again",
        &js(&format!(
            "const s = {sec}; return !!s && !editing(s) && norm(s.innerText).includes('Ja');"
        )),
    )
    .await?;
    if !state.member(MEMBER).context("member")?.has_financial_block {
        bail!("the financial block was not stored");
    }

    // A former member: the status text, and no section can be opened.
    page.goto(format!("{base}/member/member-details/{FORMER}/general"))
        .await?;
    wait_for_sections(page, &["Persoonlijke gegevens", "Communicatie"]).await?;
    wait_for(
        page,
        "the former member's page to finish rendering",
        "!!document.querySelector('main[aria-busy=false]')",
    )
    .await?;
    let former = eval(
        page,
        &js("return { status: norm(document.body.innerText).includes('Oud bondslid'), \
             edits: ['Persoonlijke gegevens', 'Communicatie', 'Adres'].map(sectionOf).filter((s) => s) \
               .map((s) => buttonsIn(s, ['wijzig']).length).reduce((a, b) => a + b, 0) };"),
    )
    .await?;
    if former["status"] != Value::Bool(true) || former["edits"] != 0 {
        bail!("former member page: {former}");
    }

    // Every request that was not a navigation came from the page's own script.
    let log = state.request_log();
    let unmarked: Vec<String> = log
        .iter()
        .filter(|r| !r.is_navigation() && !r.app_marked)
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect();
    if !unmarked.is_empty() {
        bail!(
            "requests without the app's {} header: {unmarked:?}",
            variant.client_header
        );
    }
    let saves: Vec<_> = log.iter().filter(|r| r.is_save()).collect();
    let statuses: Vec<u16> = saves.iter().map(|r| r.status).collect();
    let ok = if variant.save_answer == SaveAnswer::NoContent {
        204
    } else {
        200
    };
    if statuses != [400, 500, ok, ok, ok]
        || saves.iter().any(|r| {
            r.method != variant.save_method.as_str() || r.member_id.as_deref() != Some(MEMBER)
        })
    {
        bail!("expected two refused and three successful saves for {MEMBER}, got {saves:?}");
    }
    if !log
        .iter()
        .any(|r| r.endpoint.is_some() && r.method == "GET")
    {
        bail!("no data GET was logged");
    }

    // A request the page's script did not make is logged as such, and one in another URL
    // format is refused.
    let plain_url = Variant::plain().data_url("/member/MemberHeader", MEMBER);
    let status = eval(
        page,
        &format!(
            "fetch({}, {{credentials: 'include'}}).then((r) => r.status)",
            quoted(&plain_url)
        ),
    )
    .await?;
    let foreign = state
        .request_log()
        .into_iter()
        .rev()
        .find(|r| format!("{}?{}", r.path, r.query) == plain_url)
        .context("the page's foreign fetch was not logged")?;
    if foreign.app_marked || foreign.is_navigation() {
        bail!("a bare fetch was logged as the app's own or a navigation: {foreign:?}");
    }
    if plain_url != variant.data_url("/member/MemberHeader", MEMBER)
        && status != 404
        && status != 400
    {
        bail!("{plain_url} in another format answered {status}");
    }
    Ok(())
}

#[tokio::test]
async fn every_variant_renders_and_saves_through_its_own_ui_part_1() {
    every_variant_renders_and_saves_through_its_own_ui(0).await;
}

#[tokio::test]
async fn every_variant_renders_and_saves_through_its_own_ui_part_2() {
    every_variant_renders_and_saves_through_its_own_ui(1).await;
}

#[tokio::test]
async fn every_variant_renders_and_saves_through_its_own_ui_part_3() {
    every_variant_renders_and_saves_through_its_own_ui(2).await;
}

async fn every_variant_renders_and_saves_through_its_own_ui(part: usize) {
    if browser_tests_skipped() {
        return;
    }
    let sim = start_sim().await;
    let state = sim.state();
    // One login per variant within seconds: the reuse refusal is tested elsewhere.
    state.update_faults(|f| f.refuse_reused_totp = false);
    let headless = Headless::launch(None).await.expect("chromium launches");
    let page = headless
        .browser
        .new_page("about:blank")
        .await
        .expect("a page");
    let mut failure = None;
    for variant in variants_to_cover(part) {
        println!("{}", variant.repeat_hint());
        seed_variant_members(&state);
        state.set_variant(variant.clone());
        state.expire_all_sessions();
        state.clear_log();
        let outcome = tokio::time::timeout(
            VARIANT_LIMIT,
            exercise_variant(&page, &sim.base_url(), &state, &variant),
        )
        .await
        .unwrap_or_else(|_| Err(anyhow!("the scenario exceeded {VARIANT_LIMIT:?}")));
        if let Err(e) = outcome {
            let shown = eval(&page, "document.body.innerText")
                .await
                .unwrap_or_default();
            let recent: Vec<String> = state
                .request_log()
                .iter()
                .rev()
                .take(8)
                .map(|r| format!("{} {}?{} -> {}", r.method, r.path, r.query, r.status))
                .collect();
            failure = Some(format!(
                "{}: {e:#}\n{variant:?}\npage text: {shown}\nlast requests: {recent:#?}",
                variant.repeat_hint()
            ));
            break;
        }
    }
    headless.close().await;
    sim.shutdown().await;
    if let Some(failure) = failure {
        panic!("{failure}");
    }
}

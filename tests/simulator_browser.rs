//! Real-Chromium tests of the simulator: the login, the JS-rendered sections and the save cycle
//! work in a browser the way the executor will drive them. Skipped (with a message) only when
//! Chromium is not installed. Every wait is a condition with a deadline.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use chromiumoxide::Page;
use rondo_reverse_sync::simulator::{
    totp_code, DateDisplay, Faults, SimConfig, SimMember, SimState, Simulator,
};
use serde_json::Value;

#[path = "support/headless.rs"]
mod headless;
use headless::{chromium_available, Headless};

const USER: &str = "clubadmin";
const PASSWORD: &str = "correct horse";
const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const MEMBER: &str = "ABC1234";
const FORMER: &str = "OUD0001";
/// Generous: two cores are shared with other builds.
const WAIT: Duration = Duration::from_secs(15);
const SCENARIO_LIMIT: Duration = Duration::from_secs(90);

async fn start_sim() -> Simulator {
    let sim = Simulator::start(SimConfig {
        username: USER.into(),
        password: PASSWORD.into(),
        otp_secret_base32: SECRET.into(),
        port: 0,
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
    if !chromium_available() {
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
    if !chromium_available() {
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

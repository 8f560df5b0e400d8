//! The operator page in real headless Chromium, in Dutch and English, on a desktop and a phone:
//! the overview with pending, failed, refused and conflict rows, the history and a member's
//! timeline, screenshots of each kept in `target/test-artefacts/operator-page/`; and the requeue
//! of everything matching a filter, through its confirmation.

use super::*;
use anyhow::anyhow;
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::network::CookieParam;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::Page;
use rrs_testkit::headless::{browser_tests_skipped, Headless};
use std::path::PathBuf;

const WAIT: Duration = Duration::from_secs(20);

fn artefacts() -> anyhow::Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artefacts/operator-page");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn until(page: &Page, js: &str, what: &str) -> anyhow::Result<()> {
    rrs_testkit::headless::until_true(page, js, what, WAIT).await
}

async fn text(page: &Page, selector: &str) -> anyhow::Result<String> {
    rrs_testkit::headless::inner_text(page, selector).await
}

async fn shot(page: &Page, name: &str) -> anyhow::Result<()> {
    page.save_screenshot(
        ScreenshotParams::builder().full_page(true).build(),
        artefacts()?.join(name),
    )
    .await?;
    Ok(())
}

async fn open(page: &Page, url: &str, ready: &str) -> anyhow::Result<()> {
    page.goto(url).await?;
    until(page, &format!("!!document.querySelector('{ready}')"), url).await
}

async fn screens(page: &Page, app: &App, refused: ChangeId) -> anyhow::Result<()> {
    page.goto(app.url("/")).await?;
    // Signed in through the form, as a browser would; the browser gets that session's cookie.
    let (session, _) = sign_in(app).await;
    let value = session
        .strip_prefix("rrs_session=")
        .ok_or_else(|| anyhow!("not a session cookie: {session}"))?;
    page.set_cookies(vec![CookieParam::builder()
        .name("rrs_session")
        .value(value)
        .url(app.base.clone())
        .build()
        .map_err(|e| anyhow!("{e}"))?])
        .await?;
    for (lang, pending_title, refusal) in [
        ("nl", "Wachtende wijzigingen", "Poging 1 mislukt"),
        ("en", "Pending changes", "Attempt 1 failed"),
    ] {
        for (device, width, height, mobile) in
            [("desktop", 1100, 900, false), ("phone", 390, 844, true)]
        {
            page.execute(SetDeviceMetricsOverrideParams::new(
                width,
                height,
                if mobile { 2.0 } else { 1.0 },
                mobile,
            ))
            .await?;
            open(page, &app.url(&format!("/?lang={lang}")), "#pending").await?;
            let html_lang: String = page
                .evaluate("document.documentElement.lang")
                .await?
                .into_value()?;
            assert_eq!(html_lang, lang);
            let pending = text(page, "#pending").await?;
            assert!(pending.contains(pending_title), "{pending}");
            let row = text(page, &format!("#change-{refused}")).await?;
            assert!(
                row.contains(refusal) && row.contains("Ongeldige postcode"),
                "{row}"
            );
            assert!(text(page, "#attention").await?.contains("OPS0002"));
            assert!(text(page, "#conflicts").await?.contains("OPS0003"));
            let overflow: bool = page
                .evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
                .await?
                .into_value()?;
            assert!(!overflow, "{lang} {device}: the page scrolls sideways");
            shot(page, &format!("overview-{lang}-{device}.png")).await?;
            open(page, &app.url("/history"), "#history-rows table").await?;
            assert!(text(page, "#history-rows").await?.contains("OPS0004"));
            shot(page, &format!("history-{lang}-{device}.png")).await?;
            open(page, &app.url("/members/OPS0003"), "#member table").await?;
            shot(page, &format!("member-{lang}-{device}.png")).await?;
        }
    }
    // Keyboard: every link and button can take the focus (no tabindex=-1 anywhere).
    let unfocusable: u32 = page
        .evaluate("document.querySelectorAll('[tabindex=\"-1\"]').length")
        .await?
        .into_value()?;
    assert_eq!(unfocusable, 0);

    // Requeue everything that failed, through the confirmation, in Dutch.
    page.execute(SetDeviceMetricsOverrideParams::new(1100, 900, 1.0, false))
        .await?;
    open(
        page,
        &app.url("/history?status=failed&lang=nl"),
        "#history-rows a.button",
    )
    .await?;
    page.find_element("#history-rows a.button")
        .await?
        .click()
        .await?;
    until(
        page,
        "!!document.querySelector('#confirm-count')",
        "the confirmation",
    )
    .await?;
    let count = text(page, "#confirm-count").await?;
    assert!(count.starts_with("1 wijziging"), "{count}");
    shot(page, "confirm-requeue-nl.png").await?;
    page.find_element("#confirm button[type=submit]")
        .await?
        .click()
        .await?;
    until(page, "!!document.querySelector('.notice')", "the notice").await?;
    let notice = text(page, ".notice").await?;
    assert!(notice.contains("1 wijziging wacht weer"), "{notice}");
    Ok(())
}

#[tokio::test]
async fn the_operator_page_in_dutch_and_english_on_a_desktop_and_a_phone() {
    if browser_tests_skipped() {
        return;
    }
    let app = App::start().await;
    seed_pending(&app.store, "OPS0001", "wacht@example.nl").await;
    let failed = seed_failed(&app.store, "OPS0002").await;
    seed_conflict_lost(&app.store, "OPS0003").await;
    let refused = seed_pending(&app.store, "OPS0004", "99999").await;
    let now = Utc::now();
    app.store
        .write(move |db| {
            db.record_failure(
                &[refused],
                "page general: Sportlink refused the save of section \"Adres\": Ongeldige postcode",
                now + TimeDelta::minutes(5),
                5,
                now,
            )
        })
        .await
        .unwrap();
    let headless = Headless::launch(Some((1100, 900)))
        .await
        .expect("chromium starts");
    let outcome = async {
        let page = headless.browser.new_page("about:blank").await?;
        tokio::time::timeout(Duration::from_secs(120), screens(&page, &app, refused))
            .await
            .map_err(|_| anyhow!("the screens took longer than 120 s"))?
    }
    .await;
    headless.close().await;
    outcome.unwrap();
    assert_eq!(change_status(&app.store, failed).await, "pending");
    assert!(app.woken());
    app.stop().await;
}

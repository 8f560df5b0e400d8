//! The snippet's "Sportlink" box (`wp-plugin-snippet/rondo-reverse-sync-status.php`) on a
//! person's edit screen in the real WordPress, looked at in headless Chromium: a volunteer's edit
//! is "waiting", then "in Sportlink since …" once the executor's verified write is recorded; a
//! refused value shows Sportlink's own message; a skipped one says why it was not pushed; with the
//! service stopped (or hanging) the screen still loads and says the status is unavailable. A
//! screenshot of every state is kept in
//! `target/test-artefacts/wordpress-status/`.
//!
//! The outcomes are the real executor's: the service runs with a Sportlink account on the
//! simulator, and the simulator holds a save's answer (so "waiting" can be seen), refuses the
//! postal code with its own message, and shows the member as "Oud bondslid" for the last edit.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use chromiumoxide::cdp::browser_protocol::network::CookieParam;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::Page;
use chrono::{TimeDelta, Utc};
use rondo_reverse_sync::config::Secret;
use rondo_reverse_sync::domain::ChangeId;
use rondo_reverse_sync::store::HistoryFilter;
use rrs_standins::simulator::{MemberStatus, SimMember};
use rrs_testkit::chromium::{sportlink_settings, start_sim_on};
use serde_json::{json, Value};

use super::headless::{browser_tests_skipped, Headless};
use super::service::{wait_for, TestDb, TestService};
use super::wordpress::WordPress;
use super::{deliveries, new_person, DEADLINE};

fn artefact_dir() -> Result<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artefacts/wordpress-status");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Cookies that sign `login` in to wp-admin, made by WordPress itself.
async fn admin_cookies(wp: &WordPress, login: &str) -> Result<Vec<CookieParam>> {
    let out = wp
        .run_php(&format!(
            "$u = get_user_by('login', {login:?});
             $exp = time() + 3600;
             echo json_encode([
                 [AUTH_COOKIE, wp_generate_auth_cookie($u->ID, $exp, 'auth')],
                 [LOGGED_IN_COOKIE, wp_generate_auth_cookie($u->ID, $exp, 'logged_in')],
             ]);"
        ))
        .await?;
    let pairs: Vec<(String, String)> =
        serde_json::from_str(out.trim()).with_context(|| format!("cookies: {out}"))?;
    pairs
        .into_iter()
        .map(|(name, value)| {
            CookieParam::builder()
                .name(name)
                .value(value)
                .url(wp.base_url.clone())
                .build()
                .map_err(|e| anyhow!("cookie: {e}"))
        })
        .collect()
}

/// The box's element for a field in a state, as a CSS selector.
fn field_in(field: &str, state: &str) -> String {
    format!("#rondo-reverse-sync-status li[data-rrs-field=\"{field}\"][data-rrs-state=\"{state}\"]")
}

/// Loads the edit screen until `selector` is in the box (the box's cache lasts 2 s), and
/// returns the box's text and how long the last load took.
/// The edit screen loads and its box says the status is unavailable; the load time is printed,
/// not asserted (the box's own timeout is 1 s here).
async fn unavailable(page: &Page, url: &str, situation: &str) -> Result<()> {
    let (text, took) = edit_screen_until(
        page,
        url,
        "#rondo-reverse-sync-status p[data-rrs-state=\"unavailable\"]",
    )
    .await?;
    assert!(
        text.contains("De Sportlink-status is nu niet beschikbaar."),
        "{text}"
    );
    eprintln!(
        "edit screen {situation} loaded in {} ms (status timeout 1 s)",
        took.as_millis()
    );
    Ok(())
}

async fn edit_screen_until(page: &Page, url: &str, selector: &str) -> Result<(String, Duration)> {
    wait_for(
        &format!("{selector} on the edit screen"),
        DEADLINE,
        || async move {
            let started = Instant::now();
            page.goto(url).await?;
            let took = started.elapsed();
            if page.find_element(selector).await.is_err() {
                tokio::time::sleep(Duration::from_millis(300)).await;
                return Ok(None);
            }
            let text = page
                .find_element("#rondo-reverse-sync-status")
                .await?
                .inner_text()
                .await?
                .unwrap_or_default();
            Ok(Some((text, took)))
        },
    )
    .await
}

async fn screenshot(page: &Page, name: &str) -> Result<()> {
    let path = artefact_dir()?.join(name);
    page.save_screenshot(ScreenshotParams::builder().full_page(true).build(), &path)
        .await
        .with_context(|| format!("screenshot {}", path.display()))?;
    Ok(())
}

/// The change the service recorded for `field` of `knvb_id`, newest first.
async fn newest_change(service: &TestService, knvb_id: &str, field: &str) -> Result<ChangeId> {
    service
        .changes(Some(knvb_id))
        .await?
        .into_iter()
        .find(|c| c.field == field)
        .map(|c| c.id)
        .ok_or_else(|| anyhow!("no {field} change of {knvb_id}"))
}

/// A WordPress of these tests' own: they stop services and hang one, which leaves deliveries
/// for WP-Cron to retry against dead addresses; on the shared WordPress every other test's cron
/// run would wait on them.
async fn own_wordpress() -> Result<&'static WordPress> {
    static OWN: tokio::sync::OnceCell<WordPress> = tokio::sync::OnceCell::const_new();
    OWN.get_or_try_init(WordPress::start).await
}

#[tokio::test]
async fn the_sportlink_box_follows_an_edit_into_sportlink_in_dutch() -> Result<()> {
    if browser_tests_skipped() {
        return Ok(());
    }
    let wp = own_wordpress().await?;
    let db = TestDb::new()?;
    let knvb_id = "WPS0001";
    // Sportlink as the forward sync left it: the person's values in Rondo Club. The service runs
    // as its own clock's process would, so the simulator checks codes on the system clock.
    let sim = start_sim_on(rondo_reverse_sync::clock::system()).await;
    let state = sim.state();
    state.seed_member(sportlink_member(knvb_id));
    let mut settings = db.settings(&wp.webhook_secret, None)?;
    settings.admin.read_token = Secret::new(wp.read_token.clone());
    settings.sportlink = sportlink_settings(&sim, db.path().with_extension("artefacts"));
    // The held save below must outlast the screenshots of "waiting".
    settings.sportlink.action_timeout_secs = 120;
    let service = TestService::start(&settings, 0).await?;
    let post = new_person(wp, &service, knvb_id).await?;
    wp.run_php(&format!(
        "update_user_meta(get_user_by('login', {:?})->ID, 'locale', 'nl_NL');",
        wp.volunteer.user
    ))
    .await?;

    let headless = Headless::launch(Some((1280, 1000))).await?;
    let outcome = async {
        // Cookies need a page of the site (chromiumoxide refuses them on a blank page).
        let page = headless
            .browser
            .new_page(format!("{}/wp-login.php", wp.base_url))
            .await?;
        page.set_cookies(admin_cookies(wp, &wp.volunteer.user).await?)
            .await?;
        let edit_url = format!("{}/wp-admin/post.php?post={post}&action=edit", wp.base_url);

        // A volunteer's edit: waiting (Sportlink took the save, its answer is held back).
        state.update_faults(|f| f.hold_save_answers = true);
        wp.update_person(
            &wp.volunteer,
            post,
            &json!({"acf": {"email_1": "nieuw@example.org"}}),
        )
        .await?;
        deliveries(&service, post, 2).await?;
        // The snippet sends the name along: the operator's history finds the member by it.
        let by_name = HistoryFilter {
            name: Some("jan jansen".into()),
            ..Default::default()
        };
        let rows = service
            .store
            .read(move |db| db.history(&by_name, 10))
            .await?;
        assert!(
            rows.iter()
                .any(|r| r.change.knvb_id == knvb_id
                    && r.member_name.as_deref() == Some("Jan Jansen")),
            "{rows:?}"
        );
        let (text, _) = edit_screen_until(&page, &edit_url, &field_in("email", "waiting")).await?;
        assert!(text.contains("Wacht op verwerking in Sportlink."), "{text}");
        assert!(text.contains("nieuw@example.org"), "{text}");
        screenshot(&page, "edit-screen-waiting.png").await?;

        // The answer arrives, the executor verifies it: in Sportlink since …
        // The executor reaches its save (it may still have been logging in while the box said
        // "waiting"); Sportlink stores it and holds the answer, then lets it go.
        let state_held = state.clone();
        wait_for(
            "the executor's save, held by Sportlink",
            Duration::from_secs(120),
            || {
                let state = state_held.clone();
                async move { Ok((state.held_saves() == 1).then_some(())) }
            },
        )
        .await?;
        state.update_faults(|f| f.hold_save_answers = false);
        let (text, _) = edit_screen_until(&page, &edit_url, &field_in("email", "verified")).await?;
        assert!(
            text.contains("In Sportlink sinds") && text.contains("(gecontroleerd)"),
            "{text}"
        );
        screenshot(&page, "edit-screen-verified.png").await?;

        // A postal code Sportlink refuses: its own message, and what to do.
        let sportlink_says = "De postcode <99999> is ongeldig & onbekend";
        state.update_faults(|f| f.validation_error_on_save = Some(sportlink_says.into()));
        let mut acf = super::initial_acf(knvb_id);
        acf["addresses"][0]["postal_code"] = json!("99999");
        wp.update_person(
            &wp.volunteer,
            post,
            &json!({"acf": {"addresses": acf["addresses"]}}),
        )
        .await?;
        deliveries(&service, post, 3).await?;
        let (text, _) =
            edit_screen_until(&page, &edit_url, &field_in("postal_code", "refused")).await?;
        assert!(
            text.contains(&format!("Sportlink weigerde het: „{sportlink_says}”")),
            "Sportlink's message, escaped and shown as text: {text}"
        );
        assert!(text.contains("Verbeter de waarde hier en sla op"), "{text}");
        let html = page.content().await?;
        assert!(
            html.contains("De postcode &lt;99999&gt; is ongeldig &amp; onbekend"),
            "the message is escaped in the HTML"
        );
        assert!(
            !html.contains(&wp.read_token),
            "the read-only token is never in the page"
        );
        screenshot(&page, "edit-screen-refused.png").await?;

        // Not pushed, with the reason: the member turned out to be a former member.
        let mut former = state.member(knvb_id).context("the member in Sportlink")?;
        former.status = MemberStatus::FormerMember;
        state.seed_member(former);
        wp.update_person(
            &wp.volunteer,
            post,
            &json!({"acf": {"mobile_1": "+31687654321"}}),
        )
        .await?;
        deliveries(&service, post, 4).await?;
        let (text, _) =
            edit_screen_until(&page, &edit_url, &field_in("mobile", "not_pushed")).await?;
        assert!(
            text.contains("Niet doorgegeven: oud-lid in Sportlink."),
            "{text}"
        );
        screenshot(&page, "edit-screen-not-pushed.png").await?;

        // The service is down: the screen loads and says the status is unavailable.
        service.stop().await?;
        unavailable(&page, &edit_url, "with the service stopped").await?;
        screenshot(&page, "edit-screen-unavailable.png").await?;

        // A service that accepts the connection and never answers: the box gives up after its
        // timeout (1 s here) and says the same. The time is printed, not asserted.
        let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let hanging_url = format!(
            "http://127.0.0.1:{}/webhooks/rondo-club",
            hanging.local_addr()?.port()
        );
        wp.update_person(&wp.admin, post, &json!({"rrs_test_receiver": hanging_url}))
            .await?;
        unavailable(&page, &edit_url, "with a service that never answers").await?;
        drop(hanging);
        page.close().await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    headless.close().await;
    state.update_faults(|f| f.hold_save_answers = false);
    sim.shutdown().await;
    outcome
}

/// The member as Sportlink holds it, equal to what `initial_acf` gives Rondo Club.
fn sportlink_member(knvb_id: &str) -> SimMember {
    let mut m = SimMember::new(knvb_id, "Jan Jansen");
    m.communication.email1 = format!("{}@old.example.org", knvb_id.to_lowercase());
    m.communication.mobile1 = "0612345678".into();
    m.address.street_name = "Dorpsstraat".into();
    m.address.address_number = "1".into();
    m.address.zip_code = "1234 AB".into();
    m.address.city = "Utrecht".into();
    m.address.country_code = "NL".into();
    m.set_remark(3, "42");
    m.set_remark(8, "2024-01-02");
    m
}

#[tokio::test]
async fn the_dashboard_widget_counts_what_needs_attention_and_links_the_operator_page() -> Result<()>
{
    let wp = own_wordpress().await?;
    let db = TestDb::new()?;
    let mut settings = db.settings(&wp.webhook_secret, None)?;
    settings.admin.read_token = Secret::new(wp.read_token.clone());
    let service = TestService::start(&settings, 0).await?;
    let knvb_id = "WPS0002";
    let post = new_person(wp, &service, knvb_id).await?;
    wp.update_person(
        &wp.volunteer,
        post,
        &json!({"acf": {"email_1": "widget@example.org"}}),
    )
    .await?;
    deliveries(&service, post, 2).await?;
    let email = newest_change(&service, knvb_id, "email").await?;
    service
        .store
        .write(move |db| {
            db.record_failure(
                &[email],
                "page general: Sportlink refused the save of section \"Communicatie\": Ongeldig e-mailadres",
                Utc::now() + TimeDelta::hours(1),
                5,
                Utc::now(),
            )
        })
        .await?;
    // The widget reads the service named by RONDO_REVERSE_SYNC_API_URL (here: this test's).
    let html = wp
        .run_php(&format!(
            "define('RONDO_REVERSE_SYNC_API_URL', {base:?});
             add_filter('pre_determine_locale', static fn () => 'nl_NL');
             echo Rondo_Reverse_Sync_Status::widget_html();",
            base = service.base_url
        ))
        .await?;
    let counts: Value = json!({
        "refused": html.contains("Geweigerd door Sportlink: <strong>1</strong>"),
        "operator": html.contains(&format!("<a href=\"{}/\">Open de beheerpagina</a>", service.base_url)),
    });
    assert_eq!(counts, json!({"refused": true, "operator": true}), "{html}");
    service.stop().await
}

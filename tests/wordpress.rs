//! End to end against a real WordPress: edits through its REST API (and PHP), the real snippet
//! (`wp-plugin-snippet/rondo-reverse-sync.php`) sending signed webhooks, and the running service
//! recording them. One WordPress serves every test here; each test runs its own service with its
//! own database, and its own persons send their webhooks to it.

#[path = "poll.rs"]
mod poll;
#[path = "wordpress/status_box.rs"]
mod status_box;

use rrs_testkit::{headless, service, wordpress};

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use rondo_reverse_sync::store::{ChangeRecord, DeliveryRecord};
use serde_json::{json, Value};
use service::{wait_for, TestDb, TestService};
use wordpress::WordPress;

/// A hang guard, not a timing check: generous, because WordPress (PHP, MariaDB) shares two
/// cores with Chromium and the compiler on a loaded runner (30 s once ran out there).
const DEADLINE: Duration = Duration::from_secs(120);

/// A service on a fresh database that accepts the test WordPress's secret.
async fn service_for(wp: &WordPress) -> Result<(TestDb, TestService)> {
    let db = TestDb::new()?;
    let service = TestService::start(&db.settings(&wp.webhook_secret, None)?, 0).await?;
    Ok((db, service))
}

fn initial_acf(knvb_id: &str) -> Value {
    json!({
        "knvb-id": knvb_id,
        "first_name": "Jan",
        "last_name": "Jansen",
        "email_1": format!("{}@old.example.org", knvb_id.to_lowercase()),
        "email_2": "",
        "mobile_1": "+31612345678",
        "telephone_1": "",
        "contact_info": [
            {"contact_type": "email", "contact_label": "", "contact_value": "legacy@example.org"}
        ],
        "addresses": [
            {"address_label": "Home", "street_name": "Dorpsstraat", "house_number": "1",
             "house_number_addition": "", "postal_code": "1234 AB", "city": "Utrecht",
             "country": "Nederland", "country_code": "NL"}
        ],
        "datum-vog": "2024-01-02",
        "freescout-id": 42,
        "financiele-blokkade": false
    })
}

/// Waits until the service holds `count` deliveries about `post`, and returns them.
async fn deliveries(service: &TestService, post: u64, count: usize) -> Result<Vec<DeliveryRecord>> {
    wait_for(
        &format!("{count} deliveries for post {post}"),
        DEADLINE,
        || async move {
            let found = service.deliveries_for_post(post).await?;
            ensure!(
                found.len() <= count,
                "more deliveries than expected: {found:#?}"
            );
            Ok((found.len() == count).then_some(found))
        },
    )
    .await
}

/// Creates a person whose webhooks go to `service`, and waits for its first sighting.
async fn new_person(wp: &WordPress, service: &TestService, knvb_id: &str) -> Result<u64> {
    let post = wp
        .create_person(&wp.admin, &service.webhook_url(), initial_acf(knvb_id))
        .await?;
    let first = deliveries(service, post, 1).await?;
    ensure!(
        first[0].event_type.as_deref() == Some("person.created")
            && first[0].detail.as_deref() == Some("first_sighting: 0 change(s)"),
        "unexpected first delivery: {:?}",
        first[0]
    );
    Ok(post)
}

fn body_of(delivery: &DeliveryRecord) -> Result<Value> {
    serde_json::from_slice(&delivery.body).context("delivery body")
}

async fn pending_in_wordpress(wp: &WordPress, post: u64) -> Result<Vec<Value>> {
    Ok(wp
        .pending_deliveries()
        .await?
        .into_iter()
        .filter(|p| p["post_id"] == json!(post))
        .collect())
}

fn fields(changes: &[ChangeRecord]) -> Vec<&str> {
    let mut names: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
    names.sort_unstable();
    names
}

#[tokio::test]
async fn a_volunteer_edits_an_email_through_rest_and_one_change_is_recorded() -> Result<()> {
    let wp = WordPress::shared().await?;
    let (_db, service) = service_for(wp).await?;
    let post = new_person(wp, &service, "WPV0001").await?;

    wp.update_person(
        &wp.volunteer,
        post,
        &json!({"acf": {"email_1": "new@example.org"}}),
    )
    .await?;

    let all = deliveries(&service, post, 2).await?;
    let edit = &all[1];
    assert_eq!(edit.event_type.as_deref(), Some("person.updated"));
    assert_eq!(edit.outcome, "processed");
    let body = body_of(edit)?;
    assert_eq!(body["data"]["origin"], "user_edit");
    assert_eq!(body["data"]["user"], wp.volunteer.user.as_str());
    assert!(edit.id.starts_with("msg_"), "{}", edit.id);

    let changes = service.changes(Some("WPV0001")).await?;
    assert_eq!(changes.len(), 1, "{changes:#?}");
    let change = &changes[0];
    assert_eq!(change.field, "email");
    assert_eq!(change.old_value, "wpv0001@old.example.org");
    assert_eq!(change.new_value, "new@example.org");
    assert_eq!(change.source, "webhook");
    assert_eq!(change.status, "pending");
    assert_eq!(change.delivery_id.as_deref(), Some(edit.id.as_str()));
    assert!(pending_in_wordpress(wp, post).await?.is_empty());
    service.stop().await
}

#[tokio::test]
async fn the_same_edit_by_the_forward_sync_user_moves_the_baseline_without_a_change() -> Result<()>
{
    let wp = WordPress::shared().await?;
    let (_db, service) = service_for(wp).await?;
    let post = new_person(wp, &service, "WPS0001").await?;

    wp.update_person(
        &wp.sync,
        post,
        &json!({"acf": {"email_1": "from-sportlink@example.org"}}),
    )
    .await?;

    let all = deliveries(&service, post, 2).await?;
    let body = body_of(&all[1])?;
    assert_eq!(body["data"]["origin"], "sync_sportlink_to_rondo_club");
    assert_eq!(body["data"]["user"], wp.sync.user.as_str());
    assert_eq!(all[1].detail.as_deref(), Some("forward_sync: 0 change(s)"));
    assert!(service.changes(Some("WPS0001")).await?.is_empty());
    let member = service.member("WPS0001").await?.context("member")?;
    assert_eq!(member.baseline["email"], "from-sportlink@example.org");
    assert_eq!(
        member.sync_origin.map(|o| o.as_str()),
        Some("sync_sportlink_to_rondo_club")
    );

    // A volunteer's edit after it is diffed against the forward sync's value.
    wp.update_person(
        &wp.volunteer,
        post,
        &json!({"acf": {"email_1": "volunteer@example.org"}}),
    )
    .await?;
    deliveries(&service, post, 3).await?;
    let changes = service.changes(Some("WPS0001")).await?;
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(
        (changes[0].old_value.as_str(), changes[0].new_value.as_str()),
        ("from-sportlink@example.org", "volunteer@example.org")
    );
    service.stop().await
}

#[tokio::test]
async fn several_tracked_fields_in_one_request_are_one_delivery_with_a_change_each() -> Result<()> {
    let wp = WordPress::shared().await?;
    let (_db, service) = service_for(wp).await?;
    let post = new_person(wp, &service, "WPM0001").await?;

    wp.update_person(
        &wp.volunteer,
        post,
        &json!({"acf": {
            "email_1": "multi@example.org",
            "mobile_1": "+31687654321",
            "datum-vog": "2025-03-04",
            "freescout-id": 4711,
            "financiele-blokkade": true,
            "addresses": [
                {"address_label": "Home", "street_name": "Kerkstraat", "house_number": "12",
                 "house_number_addition": "", "postal_code": "1234 AB", "city": "Utrecht",
                 "country": "Nederland", "country_code": "NL"}
            ]
        }}),
    )
    .await?;

    let all = deliveries(&service, post, 2).await?;
    let changes = service.changes(Some("WPM0001")).await?;
    assert_eq!(
        fields(&changes),
        [
            "datum_vog",
            "email",
            "financiele_blokkade",
            "freescout_id",
            "house_number",
            "mobile",
            "street_name"
        ],
        "{changes:#?}"
    );
    assert!(changes
        .iter()
        .all(|c| c.delivery_id.as_deref() == Some(all[1].id.as_str())));
    let by_field = |name: &str| {
        changes
            .iter()
            .find(|c| c.field == name)
            .map(|c| c.new_value.clone())
    };
    assert_eq!(by_field("email").as_deref(), Some("multi@example.org"));
    assert_eq!(by_field("datum_vog").as_deref(), Some("2025-03-04"));
    assert_eq!(by_field("freescout_id").as_deref(), Some("4711"));
    assert_eq!(by_field("street_name").as_deref(), Some("Kerkstraat"));
    service.stop().await
}

#[tokio::test]
async fn a_meta_only_update_from_a_php_script_is_detected() -> Result<()> {
    let wp = WordPress::shared().await?;
    let (_db, service) = service_for(wp).await?;
    let post = new_person(wp, &service, "WPP0001").await?;
    let modified_before = wp.get_person(&wp.admin, post).await?["modified_gmt"].clone();

    // No post hook fires for this, and `modified_gmt` stays as it was: only the meta hooks see it.
    // Dates are stored the way ACF stores them (Ymd).
    wp.run_php(&format!(
        "update_post_meta({post}, 'email_1', 'script@example.org');\n\
         update_post_meta({post}, 'datum-vog', '20260101');"
    ))
    .await?;

    let all = deliveries(&service, post, 2).await?;
    let body = body_of(&all[1])?;
    assert_eq!(body["data"]["origin"], "user_edit");
    assert_eq!(body["data"]["modified_gmt"], modified_before);
    let changes = service.changes(Some("WPP0001")).await?;
    assert_eq!(fields(&changes), ["datum_vog", "email"], "{changes:#?}");
    let by_field = |name: &str| {
        changes
            .iter()
            .find(|c| c.field == name)
            .map(|c| c.new_value.clone())
    };
    assert_eq!(by_field("email").as_deref(), Some("script@example.org"));
    assert_eq!(by_field("datum_vog").as_deref(), Some("2026-01-01"));
    service.stop().await
}

#[tokio::test]
async fn an_edit_while_the_service_is_down_arrives_once_after_wp_cron_retries() -> Result<()> {
    let wp = WordPress::shared().await?;
    let db = TestDb::new()?;
    let settings = db.settings(&wp.webhook_secret, None)?;
    let service = TestService::start(&settings, 0).await?;
    let port = service.port;
    let post = new_person(wp, &service, "WPD0001").await?;
    service.stop().await?;

    wp.update_person(
        &wp.volunteer,
        post,
        &json!({"acf": {"email_1": "while-down@example.org"}}),
    )
    .await?;
    let pending = pending_in_wordpress(wp, post).await?;
    assert_eq!(
        pending.len(),
        1,
        "the failed delivery is kept: {pending:#?}"
    );
    let webhook_id = pending[0]["id"].as_str().context("webhook id")?.to_owned();
    assert!(pending[0]["attempts"].as_u64() >= Some(1));

    // Back on the same address; WP-Cron (here run by hand, as a system cron job would) retries.
    let service = wait_for("the port to be free again", DEADLINE, || {
        let settings = settings.clone();
        async move { Ok(TestService::start(&settings, port).await.ok()) }
    })
    .await?;
    wait_for("the retried delivery", DEADLINE, || {
        let service = &service;
        let webhook_id = &webhook_id;
        async move {
            wp.run_cron().await?;
            service.delivery(webhook_id).await
        }
    })
    .await?;
    ensure!(
        pending_in_wordpress(wp, post).await?.is_empty(),
        "the retry was not cleared"
    );

    // More cron runs change nothing: it arrived once.
    wp.run_cron().await?;
    let all = service.deliveries_for_post(post).await?;
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[1].id, webhook_id);
    let changes = service.changes(Some("WPD0001")).await?;
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0].new_value, "while-down@example.org");
    assert_eq!(changes[0].delivery_id.as_deref(), Some(webhook_id.as_str()));
    service.stop().await
}

#[tokio::test]
async fn an_untracked_field_edit_is_delivered_without_a_change() -> Result<()> {
    let wp = WordPress::shared().await?;
    let (_db, service) = service_for(wp).await?;
    let post = new_person(wp, &service, "WPU0001").await?;

    wp.update_person(&wp.volunteer, post, &json!({"acf": {"nickname": "Jantje"}}))
        .await?;

    let all = deliveries(&service, post, 2).await?;
    assert_eq!(all[1].outcome, "processed");
    assert_eq!(all[1].detail.as_deref(), Some("unchanged: 0 change(s)"));
    assert!(service.changes(Some("WPU0001")).await?.is_empty());
    service.stop().await
}

/// From the REST save returning to the change row being committed (median of 20). With PHP's
/// built-in server, as with PHP-FPM, the snippet sends from `shutdown` before the response is
/// complete, so the row is committed before the save returns: the time is zero, and a watcher
/// polling the database during the save shows how long before the return the row was there.
#[tokio::test]
async fn latency_from_a_rest_save_to_the_committed_change() -> Result<()> {
    const EDITS: usize = 20;
    let wp = WordPress::shared().await?;
    let (_db, service) = service_for(wp).await?;
    let post = new_person(wp, &service, "WPL0001").await?;
    let service = std::sync::Arc::new(service);

    let mut after_return = Vec::with_capacity(EDITS);
    let mut seen_relative_ms = Vec::with_capacity(EDITS);
    let mut save_durations = Vec::with_capacity(EDITS);
    for n in 0..EDITS {
        let email = format!("latency{n}@example.org");
        // Watches the database from before the save until the row is there.
        let watcher = {
            let service = service.clone();
            let email = email.clone();
            tokio::spawn(async move {
                // Its own loop: `wait_for` re-checks every 20 ms, too coarse to measure this.
                let deadline = Instant::now() + DEADLINE;
                loop {
                    let changes = service.changes(Some("WPL0001")).await?;
                    if changes.iter().any(|c| c.new_value == email) {
                        return Ok::<_, anyhow::Error>(Instant::now());
                    }
                    ensure!(Instant::now() < deadline, "no change row for {email}");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        let started = Instant::now();
        wp.update_person(&wp.volunteer, post, &json!({"acf": {"email_1": email}}))
            .await?;
        let returned = Instant::now();
        save_durations.push(returned - started);
        let seen = watcher.await??;
        after_return.push(seen.saturating_duration_since(returned));
        let relative = if seen >= returned {
            (seen - returned).as_secs_f64()
        } else {
            -(returned - seen).as_secs_f64()
        };
        seen_relative_ms.push(relative * 1000.0);
    }
    after_return.sort();
    save_durations.sort();
    seen_relative_ms.sort_by(f64::total_cmp);
    let median_after = after_return[EDITS / 2];
    eprintln!(
        "REST save returned → change row committed, median of {EDITS}: {median_after:?} \
         (committed before the save returned in {} of {EDITS}; seen {:.1} ms relative to the \
         return, median; the save took {:?}, median)",
        after_return.iter().filter(|d| d.is_zero()).count(),
        seen_relative_ms[EDITS / 2],
        save_durations[EDITS / 2],
    );
    assert_eq!(service.changes(Some("WPL0001")).await?.len(), EDITS);
    Ok(())
}

#[tokio::test]
async fn autosaves_send_nothing_and_trashing_is_recorded_without_changes() -> Result<()> {
    let wp = WordPress::shared().await?;
    let (_db, service) = service_for(wp).await?;
    let post = new_person(wp, &service, "WPT0001").await?;

    // The snippet sends before the REST call returns, so "nothing arrived" is known at once.
    wp.post_rest(
        &wp.volunteer,
        &format!("/wp/v2/people/{post}/autosaves"),
        &json!({"title": "Autosaved", "content": "draft text"}),
    )
    .await?;
    assert_eq!(service.deliveries_for_post(post).await?.len(), 1);

    wp.trash_person(&wp.volunteer, post).await?;
    let all = deliveries(&service, post, 2).await?;
    assert_eq!(all[1].event_type.as_deref(), Some("person.trashed"));
    assert_eq!(all[1].outcome, "trashed");
    assert_eq!(all[1].knvb_id.as_deref(), Some("WPT0001"));
    assert!(service.changes(Some("WPT0001")).await?.is_empty());
    service.stop().await
}

/// A receiver that accepts connections and never answers, counting them.
struct HangingReceiver {
    url: String,
    port: u16,
    accepted: std::sync::Arc<std::sync::Mutex<Vec<std::net::SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HangingReceiver {
    async fn start() -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = accepted.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, peer)) = listener.accept().await {
                if let Ok(mut seen) = seen.lock() {
                    seen.push(peer);
                }
                held.push(stream);
            }
        });
        Ok(Self {
            url: format!("http://127.0.0.1:{port}/webhooks/rondo-club"),
            port,
            accepted,
            task,
        })
    }

    /// The connections made before now: a sentinel connection of our own goes to the back of
    /// the listen queue, so once it is accepted every earlier one was too.
    async fn connections_so_far(&self) -> Result<usize> {
        let sentinel = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
        let mine = sentinel.local_addr()?;
        wait_for("the sentinel connection", DEADLINE, || async move {
            let seen = self
                .accepted
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?;
            Ok(seen.iter().position(|peer| *peer == mine))
        })
        .await
    }
}

impl Drop for HangingReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Issue 15, item 14: a receiver that hangs costs a batch of saves one deadline, not a timeout
/// per person: the snippet tries one delivery, stops at its timeout, queues the rest for
/// WP-Cron, and everything arrives once the receiver is back. Timings are printed, not asserted.
#[tokio::test]
async fn a_hanging_receiver_costs_one_deadline_and_wp_cron_delivers_the_rest() -> Result<()> {
    const PEOPLE: usize = 5;
    let wp = WordPress::shared().await?;
    let (_db, service) = service_for(wp).await?;
    let mut posts = Vec::new();
    for i in 0..PEOPLE {
        posts.push(new_person(wp, &service, &format!("WPH{i:04}")).await?);
    }
    let hanging = HangingReceiver::start().await?;
    let list = posts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    wp.run_php(&format!(
        "foreach ([{list}] as $p) {{ update_post_meta($p, '_rrs_test_receiver', '{}'); }}",
        hanging.url
    ))
    .await?;

    // One script saves every person: one shutdown, {PEOPLE} webhooks due.
    let started = Instant::now();
    wp.run_php(&format!(
        "foreach ([{list}] as $i => $p) {{ update_post_meta($p, 'email_1', \"batch$i@example.org\"); }}"
    ))
    .await?;
    let took = started.elapsed();
    eprintln!("a batch of {PEOPLE} saves against a hanging receiver took {took:?}");
    assert_eq!(
        hanging.connections_so_far().await?,
        1,
        "only the first delivery is tried"
    );
    for post in &posts {
        let pending = pending_in_wordpress(wp, *post).await?;
        assert_eq!(pending.len(), 1, "post {post}: {pending:#?}");
    }

    // The receiver is back (the service); WP-Cron sends everything, each once.
    wp.run_php(&format!(
        "foreach ([{list}] as $p) {{ update_post_meta($p, '_rrs_test_receiver', '{}'); }}",
        service.webhook_url()
    ))
    .await?;
    let started = Instant::now();
    wait_for("every queued delivery", DEADLINE, || {
        let service = &service;
        let posts = &posts;
        async move {
            wp.run_cron().await?;
            let mut arrived = 0;
            for post in posts {
                arrived += service.deliveries_for_post(*post).await?.len();
            }
            Ok((arrived == 2 * PEOPLE).then_some(()))
        }
    })
    .await?;
    eprintln!(
        "WP-Cron delivered the queued webhooks in {:?}",
        started.elapsed()
    );
    for (i, post) in posts.iter().enumerate() {
        assert!(pending_in_wordpress(wp, *post).await?.is_empty());
        let changes = service.changes(Some(&format!("WPH{i:04}"))).await?;
        assert_eq!(changes.len(), 1, "{changes:#?}");
        assert_eq!(changes[0].new_value, format!("batch{i}@example.org"));
    }
    service.stop().await
}

/// Issue 15, item 15 (the snippet's side): without ACF, a `contact_info` stored as one
/// serialized array of rows is read as those rows, not as "no rows" (which the service would
/// have pushed as "e-mail cleared").
#[tokio::test]
async fn a_contact_info_stored_as_one_serialized_array_is_read_as_its_rows() -> Result<()> {
    let wp = WordPress::shared().await?;
    let (_db, service) = service_for(wp).await?;
    let acf = json!({
        "knvb-id": "WPS0001",
        "contact_info": [
            {"contact_type": "email", "contact_label": "", "contact_value": "rows@example.org"}
        ],
        "datum-vog": "2024-01-02"
    });
    let post = wp
        .create_person(&wp.admin, &service.webhook_url(), acf)
        .await?;
    deliveries(&service, post, 1).await?;
    let member = service.member("WPS0001").await?.context("member")?;
    assert_eq!(member.baseline["email"], "rows@example.org");

    wp.run_php(&format!(
        "update_post_meta({post}, 'contact_info', [
            ['contact_type' => 'email', 'contact_label' => '', 'contact_value' => 'rows@example.org'],
            ['contact_type' => 'mobile', 'contact_label' => '', 'contact_value' => '+31687654321'],
        ]);"
    ))
    .await?;
    let all = deliveries(&service, post, 2).await?;
    let body = body_of(&all[1])?;
    assert_eq!(
        body["data"]["acf"]["contact_info"][1]["contact_value"], "+31687654321",
        "{body}"
    );
    let changes = service.changes(Some("WPS0001")).await?;
    assert_eq!(fields(&changes), ["mobile"], "{changes:#?}");
    service.stop().await
}

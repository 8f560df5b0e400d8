//! `demo`: the whole service on embedded defaults, against the built-in Sportlink simulator and a
//! stand-in for Rondo Club's REST API, in a temporary directory. It imports a small club as the
//! baseline, sends signed edits as webhooks (and one through the reconciliation poll), waits until
//! the executor has pushed and verified every one in the simulator, prints a summary and the
//! operator page's address, and stops cleanly (or keeps running with `--keep-running`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine;
use chrono::{SecondsFormat, Utc};
use rand::RngCore;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::rondo_standin::{RondoStandIn, StandInConfig};
use crate::simulator::{SimConfig, SimMember, Simulator};
use rondo_reverse_sync::catalogue::Catalogue;
use rondo_reverse_sync::config::{Secret, Settings};
use rondo_reverse_sync::domain::ChangeStatus;
use rondo_reverse_sync::poll::{self, RondoClient};
use rondo_reverse_sync::startup;
use rondo_reverse_sync::store::{ChangeRecord, Store, StoreOptions};
use rondo_reverse_sync::webhook::WebhookSecret;

/// How long the demo waits for every edit to be verified in the simulator.
const DEADLINE: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// Keep the service, the simulator and the stand-in running until Ctrl-C.
    pub keep_running: bool,
    /// Pause between members in milliseconds (the service's default is 1 000 + up to 1 000).
    pub member_interval_ms: Option<u64>,
}

/// A member of the demo club, as both systems hold it at the start.
struct DemoMember {
    knvb_id: &'static str,
    name: &'static str,
    email: &'static str,
    mobile: &'static str,
    vog: &'static str,
    city: &'static str,
}

const CLUB: [DemoMember; 3] = [
    DemoMember {
        knvb_id: "DEMO001",
        name: "Anna de Vries",
        email: "anna@example.nl",
        mobile: "+31612345601",
        vog: "2023-10-30",
        city: "Utrecht",
    },
    DemoMember {
        knvb_id: "DEMO002",
        name: "Bram Jansen",
        email: "bram@example.nl",
        mobile: "+31612345602",
        vog: "2024-02-14",
        city: "Utrecht",
    },
    DemoMember {
        knvb_id: "DEMO003",
        name: "Chris Bakker",
        email: "chris@example.nl",
        mobile: "+31612345603",
        vog: "2022-05-01",
        city: "Zeist",
    },
];

/// One edit the demo makes, and how it travels.
struct Edit {
    member: usize,
    acf_key: &'static str,
    value: Value,
    via_poll: bool,
    /// What the simulator must hold afterwards: (JSON key of the member, value).
    expect: (&'static str, &'static str),
}

fn edits() -> Vec<Edit> {
    vec![
        Edit {
            member: 0,
            acf_key: "email_1",
            value: json!("anna.devries@example.nl"),
            via_poll: false,
            expect: ("Email1", "anna.devries@example.nl"),
        },
        Edit {
            member: 1,
            acf_key: "mobile_1",
            value: json!("+31687654321"),
            via_poll: false,
            expect: ("Mobile1", "0687654321"),
        },
        Edit {
            member: 2,
            acf_key: "datum-vog",
            value: json!("2026-11-20"),
            via_poll: false,
            expect: ("Remarks8", "2026-11-20"),
        },
        Edit {
            member: 2,
            acf_key: "financiele-blokkade",
            value: json!(true),
            via_poll: false,
            expect: ("HasFinancialTransferBlockOwnClub", "true"),
        },
        Edit {
            member: 0,
            acf_key: "addresses",
            value: json!([{"address_label": "Home", "street_name": "Stationsplein", "house_number": "7",
                           "house_number_addition": "", "postal_code": "3811 AB", "city": "Amersfoort",
                           "country": "Nederland", "country_code": "NL"}]),
            via_poll: true,
            expect: ("City", "Amersfoort"),
        },
    ]
}

fn acf_of(m: &DemoMember) -> Value {
    json!({
        "knvb-id": m.knvb_id,
        "first_name": m.name,
        "email_1": m.email,
        "email_2": "",
        "mobile_1": m.mobile,
        "mobile_2": "",
        "telephone_1": "",
        "telephone_2": "",
        "addresses": [{"address_label": "Home", "street_name": "Dorpsstraat", "house_number": "1",
                       "house_number_addition": "", "postal_code": "1234 AB", "city": m.city,
                       "country": "Nederland", "country_code": "NL"}],
        "datum-vog": m.vog,
        "freescout-id": 100,
        "financiele-blokkade": false,
    })
}

fn sim_member(m: &DemoMember) -> SimMember {
    let mut member = SimMember::new(m.knvb_id, m.name);
    member.communication.email1 = m.email.into();
    member.communication.mobile1 = rondo_reverse_sync::normalise::phone_for_sportlink(m.mobile);
    member.address.street_name = "Dorpsstraat".into();
    member.address.address_number = "1".into();
    member.address.zip_code = "1234 AB".into();
    member.address.city = m.city.into();
    member.address.country_code = "NL".into();
    member.set_remark(8, m.vog);
    member.set_remark(3, "100");
    member
}

fn random_b64(bytes: usize) -> String {
    let mut key = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut key);
    base64::engine::general_purpose::STANDARD.encode(key)
}

fn wp_time(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// The settings the demo runs on: embedded defaults, pointed at the simulator and the stand-in.
fn demo_settings(
    dir: &Path,
    sim: &Simulator,
    sim_config: &SimConfig,
    rondo: &RondoStandIn,
    rondo_config: &StandInConfig,
    options: &DemoOptions,
) -> anyhow::Result<Settings> {
    let mut s = Settings::default();
    s.database.path = dir.join("demo.sqlite3");
    s.webhook.secret = Secret::new(format!("whsec_{}", random_b64(32)));
    s.admin.token = Secret::new(random_b64(24));
    s.sportlink.base_url = sim.base_url();
    s.sportlink.username = sim_config.username.clone();
    s.sportlink.password = Secret::new(sim_config.password.clone());
    s.sportlink.otp_secret = Secret::new(sim_config.otp_secret_base32.clone());
    s.sportlink.artefact_dir = dir.join("artefacts");
    s.sportlink.idle_close_secs = 60;
    if let Some(ms) = options.member_interval_ms {
        s.sportlink.min_member_interval_ms = ms;
        s.sportlink.member_jitter_ms = ms / 2;
    }
    s.rondo_club.base_url = rondo.base_url();
    s.rondo_club.username = rondo_config.username.clone();
    s.rondo_club.application_password = Secret::new(rondo_config.application_password.clone());
    s.rondo_club.timeout_secs = 10;
    s.validate(rondo_reverse_sync::config::Needs {
        webhook: true,
        rondo_club: true,
        sportlink: true,
        admin: true,
    })?;
    Ok(s)
}

/// Runs the demo; `Ok(true)` when every edit was verified in the simulator.
pub async fn run(options: DemoOptions) -> anyhow::Result<bool> {
    let chromium = Settings::default().sportlink.chromium_path;
    if !chromium.exists() {
        bail!(
            "Chromium is not installed at {}: install it with `apt-get install chromium` \
             (scripts/demo does this for you)",
            chromium.display()
        );
    }
    let dir = tempfile::Builder::new()
        .prefix("rondo-reverse-sync-demo-")
        .tempdir()
        .context("creating a temporary directory")?;

    let sim_config = SimConfig::default();
    let sim = Simulator::start(sim_config.clone())
        .await
        .context("starting the Sportlink simulator")?;
    let rondo_config = StandInConfig::default();
    let rondo = RondoStandIn::start(rondo_config.clone())
        .await
        .context("starting the Rondo Club stand-in")?;
    let settings = demo_settings(
        dir.path(),
        &sim,
        &sim_config,
        &rondo,
        &rondo_config,
        &options,
    )?;
    let catalogue = Arc::new(Catalogue::builtin());

    // The club as both systems hold it, imported as the starting state (no changes).
    let start = Utc::now() - chrono::TimeDelta::hours(1);
    let mut post_ids = Vec::new();
    for m in &CLUB {
        sim.state().seed_member(sim_member(m));
        let id = rondo.state().upsert_person(json!({
            "modified_gmt": wp_time(start),
            "acf": acf_of(m),
        }))?;
        post_ids.push(id);
    }
    {
        let path = settings.database.path.clone();
        let cat = catalogue.clone();
        let store =
            tokio::task::spawn_blocking(move || Store::open(&path, cat, StoreOptions::default()))
                .await??;
        let client = RondoClient::new(&settings.rondo_club, &settings.poll)?;
        let report = poll::run_baseline(&store, &client, &CancellationToken::new()).await?;
        println!(
            "baseline: imported {} people from Rondo Club (no changes emitted)",
            report.people_seen
        );
    }

    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let shutdown = CancellationToken::new();
    let service = startup::launch(
        &settings,
        catalogue.clone(),
        listener,
        shutdown.clone().cancelled_owned(),
        rondo_reverse_sync::clock::system(),
    )
    .await
    .context("starting the service")?;
    let base = format!("http://127.0.0.1:{}", service.port());
    println!("service listening on {base}");

    let outcome = drive(&settings, &base, &rondo, &post_ids).await;

    let verified = match &outcome {
        Ok(()) => report(&settings, &sim, &base).await?,
        Err(e) => {
            println!("demo failed: {e:#}");
            false
        }
    };
    if options.keep_running {
        println!(
            "\nkeeping everything running; press Ctrl-C to stop.\n  operator page: {base}/  \
             (token: {})\n  Sportlink simulator: {}",
            settings.admin.token.expose(),
            sim.base_url()
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    shutdown.cancel();
    service.wait().await.context("stopping the service")?;
    rondo.shutdown().await;
    sim.shutdown().await;
    drop(dir);
    Ok(verified)
}

/// Makes the edits: signed webhooks for most, one through the poll.
async fn drive(
    settings: &Settings,
    base: &str,
    rondo: &RondoStandIn,
    post_ids: &[i64],
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let secret = WebhookSecret::parse(settings.webhook.secret.expose())?;
    for (n, edit) in edits().iter().enumerate() {
        let member = &CLUB[edit.member];
        let id = post_ids[edit.member];
        let now = Utc::now();
        rondo
            .state()
            .set_field(id, edit.acf_key, edit.value.clone(), Some(now))?;
        if edit.via_poll {
            continue;
        }
        let person = rondo
            .state()
            .person(id)
            .context("the stand-in lost a person")?;
        let body = serde_json::to_vec(&json!({
            "type": "person.updated",
            "timestamp": now.to_rfc3339_opts(SecondsFormat::Secs, true),
            "data": {
                "id": id,
                "modified_gmt": person["modified_gmt"],
                "acf": person["acf"],
                "origin": "user_edit",
                "user": "demo-volunteer",
            }
        }))?;
        let webhook_id = format!("msg_demo_{n}_{}", now.timestamp_millis());
        let timestamp = now.timestamp();
        let answer = http
            .post(format!("{base}/webhooks/rondo-club"))
            .header("content-type", "application/json")
            .header("webhook-id", &webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                secret.sign(&webhook_id, timestamp, &body),
            )
            .body(body)
            .send()
            .await?;
        println!(
            "webhook: {} {} = {} → HTTP {}",
            member.knvb_id,
            edit.acf_key,
            edit.value,
            answer.status().as_u16()
        );
        if !answer.status().is_success() {
            bail!(
                "the service refused a signed webhook: {}",
                answer.text().await?
            );
        }
    }
    // The poll catches what no webhook reported.
    let answer = http
        .post(format!("{base}/api/poll"))
        .bearer_auth(settings.admin.token.expose())
        .json(&json!({"full": false}))
        .send()
        .await?;
    println!(
        "poll: triggered through the admin API → HTTP {}",
        answer.status().as_u16()
    );
    if !answer.status().is_success() {
        bail!(
            "the admin API refused to start a poll: {}",
            answer.text().await?
        );
    }
    Ok(())
}

/// Waits until every demo change is synced (or the deadline passes), then prints the summary.
async fn report(settings: &Settings, sim: &Simulator, base: &str) -> anyhow::Result<bool> {
    let path = settings.database.path.clone();
    let store = Store::open(
        &path,
        Arc::new(Catalogue::builtin()),
        StoreOptions::default(),
    )?;
    // The address edit changes several fields at once, so there are at least as many changes
    // as edits.
    let expected_changes = edits().len();
    let started = Instant::now();
    let changes: Vec<ChangeRecord> = loop {
        let changes = store.read(|db| db.list_changes(&[], None, 100, 0)).await?;
        let done = changes
            .iter()
            .filter(|c| c.status != ChangeStatus::Pending.as_str())
            .count();
        if changes.len() >= expected_changes && done == changes.len() {
            break changes;
        }
        if started.elapsed() > DEADLINE {
            println!("gave up waiting after {} s", DEADLINE.as_secs());
            break changes;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    println!(
        "\n{:<9} {:<20} {:<26} {:<26} {:<8} status",
        "member", "field", "old", "new", "source"
    );
    for c in changes.iter().rev() {
        println!(
            "{:<9} {:<20} {:<26} {:<26} {:<8} {}",
            c.knvb_id, c.field, c.old_value, c.new_value, c.source, c.status
        );
    }
    let mut all_verified = changes.len() >= expected_changes
        && changes
            .iter()
            .all(|c| c.status == ChangeStatus::Synced.as_str());
    println!("\nin the Sportlink simulator:");
    for edit in edits() {
        let member = &CLUB[edit.member];
        let stored = sim
            .state()
            .member(member.knvb_id)
            .and_then(|m| stored_value(&m, edit.expect.0));
        let ok = stored.as_deref() == Some(edit.expect.1);
        all_verified &= ok;
        println!(
            "  {} {:<34} {:<26} {}",
            member.knvb_id,
            edit.expect.0,
            stored.unwrap_or_default(),
            if ok { "verified" } else { "NOT as expected" }
        );
    }
    println!(
        "\n{}: {} changes, {} s. Operator page: {base}/",
        if all_verified {
            "all verified"
        } else {
            "NOT all verified"
        },
        changes.len(),
        started.elapsed().as_secs()
    );
    Ok(all_verified)
}

fn stored_value(member: &SimMember, key: &str) -> Option<String> {
    match key {
        "HasFinancialTransferBlockOwnClub" => Some(member.has_financial_block.to_string()),
        other => member.text_field(other).map(str::to_string),
    }
}

//! The admin API, the OpenAPI document, `/metrics` and the operator page, against the service
//! as `serve` starts it (`startup::launch`) on 127.0.0.1:0. Behind it: the Rondo Club stand-in
//! (the poll and re-detection are real), and for the executor's pause the Sportlink simulator
//! driven by real headless Chromium. The operator page is driven in Chromium too. Every wait is
//! a condition with a deadline.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures::FutureExt;
use reqwest::{Method, StatusCode};
use rondo_reverse_sync::catalogue::Catalogue;
use rondo_reverse_sync::config::{RondoClubSettings, Secret, Settings};
use rondo_reverse_sync::conflict::{self, ConflictInput};
use rondo_reverse_sync::detect::{Person, Sighting};
use rondo_reverse_sync::domain::{ChangeId, ChangeStatus, KnvbId, Origin, Source};
use rondo_reverse_sync::startup;
use rondo_reverse_sync::store::{DeliveryOutcome, NewDelivery, SightingContext, Store};
use rondo_reverse_sync::webhook::signature::WebhookSecret;
use rrs_standins::rondo_standin::{RondoStandIn, StandInConfig};
use rrs_standins::simulator::{Faults, Simulator};
use rrs_testkit::rig::Member;
use rrs_testkit::service::TestService;
use serde_json::{json, Value};
use tokio::sync::{oneshot, Notify};

use crate::binary;

#[path = "admin/history.rs"]
mod history;
#[path = "admin/operator_screens.rs"]
mod operator_screens;
#[path = "admin/read_only.rs"]
mod read_only;

const TOKEN: &str = "admin-token-0123456789-abcdefghij";
/// `admin.read_token`: member status and nothing else.
const READ_TOKEN: &str = "read-only-token-9876543210-zyxwv";
/// The webhook secret is not an admin token.
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What the app is started with besides its admin API, webhook and database.
enum Wiring {
    /// Rondo Club is the stand-in (it holds [`RED0001`] and knows the tests' account): the
    /// poll and re-detection are real. No Sportlink, so no executor.
    StandIn,
    /// The same, with these sign-in limits (`admin.sign_in_*`).
    Limited {
        per_client: u32,
        overall: u32,
        refill_secs: u64,
    },
    /// A Rondo Club that takes connections and never answers, and this request deadline
    /// (`server.request_timeout_secs`).
    Hanging(u64),
    /// Neither Rondo Club nor Sportlink: a service without poll, re-detection and executor.
    Unwired,
}

/// The Rondo Club stand-in's account (`rondo_club.username` / `application_password`).
const RONDO_USER: &str = "rondo-reverse-sync";
const RONDO_PASSWORD: &str = "abcd EFGH 1234 ijkl MNOP 5678";
/// The member the stand-in holds from the start, and the e-mail it has there.
const RED0001: &str = "RED0001";
const RED0001_EMAIL: &str = "fetched@example.nl";

/// A Rondo Club that accepts connections and never answers: every request to it hangs.
struct Silent {
    base_url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Silent {
    async fn start() -> Silent {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        Silent { base_url, task }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What stands in for Rondo Club behind the app.
enum Upstream {
    StandIn(RondoStandIn),
    Silent(Silent),
    None,
}

struct App {
    base: String,
    client: reqwest::Client,
    store: Store,
    service: Option<TestService>,
    /// The executor's wake-up; with no executor running nothing consumes it.
    wake: Arc<Notify>,
    upstream: Upstream,
    /// The Sportlink simulator, when the app runs an executor ([`App::tripped`]).
    sim: Option<Simulator>,
    _dir: tempfile::TempDir,
}

impl App {
    async fn start() -> App {
        Self::start_with(Wiring::StandIn).await
    }

    async fn start_unwired() -> App {
        Self::start_with(Wiring::Unwired).await
    }

    /// The settings every app here shares: a database in `dir`, the webhook secret, both admin
    /// tokens, and no scheduled poll (tests trigger it).
    fn settings(dir: &std::path::Path) -> Settings {
        let mut settings = Settings::default();
        settings.database.path = dir.join("admin.sqlite3");
        settings.webhook.secret = Secret::new(WEBHOOK_SECRET);
        settings.admin.token = Secret::new(TOKEN);
        settings.admin.read_token = Secret::new(READ_TOKEN);
        settings.poll.enabled = false;
        settings
    }

    /// The service as `serve` starts it (`startup::launch`, through the test-kit), on a fresh
    /// database, with what `wiring` names behind it.
    async fn start_with(wiring: Wiring) -> App {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Self::settings(dir.path());
        let upstream = match wiring {
            Wiring::Unwired => Upstream::None,
            Wiring::Hanging(_) => Upstream::Silent(Silent::start().await),
            Wiring::StandIn | Wiring::Limited { .. } => Upstream::StandIn(rondo_standin().await),
        };
        if let Some(base_url) = match &upstream {
            Upstream::StandIn(standin) => Some(standin.base_url()),
            Upstream::Silent(silent) => Some(silent.base_url.clone()),
            Upstream::None => None,
        } {
            settings.rondo_club = RondoClubSettings {
                base_url,
                username: RONDO_USER.into(),
                application_password: Secret::new(RONDO_PASSWORD),
                timeout_secs: 120,
            };
        }
        match wiring {
            Wiring::Limited {
                per_client,
                overall,
                refill_secs,
            } => {
                settings.admin.sign_in_burst_per_client = per_client;
                settings.admin.sign_in_burst_overall = overall;
                settings.admin.sign_in_refill_secs_per_client = refill_secs;
                settings.admin.sign_in_refill_secs_overall = refill_secs;
            }
            Wiring::Hanging(deadline) => settings.server.request_timeout_secs = deadline,
            Wiring::StandIn | Wiring::Unwired => {}
        }
        Self::launch(
            dir,
            settings,
            upstream,
            None,
            rondo_reverse_sync::clock::system(),
        )
        .await
    }

    async fn launch(
        dir: tempfile::TempDir,
        settings: Settings,
        upstream: Upstream,
        sim: Option<Simulator>,
        clock: rondo_reverse_sync::clock::SharedClock,
    ) -> App {
        // `start_with_clock` creates the database first, as `migrate` does.
        let service = TestService::start_with_clock(&settings, 0, clock)
            .await
            .expect("the service starts as serve does");
        App {
            base: service.base_url.clone(),
            // The page speaks Dutch unless asked otherwise; these tests read its English.
            client: reqwest::Client::builder()
                .default_headers(reqwest::header::HeaderMap::from_iter([(
                    reqwest::header::ACCEPT_LANGUAGE,
                    reqwest::header::HeaderValue::from_static("en"),
                )]))
                .timeout(Duration::from_secs(20))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            store: service.store.clone(),
            wake: service.service().executor_wake(),
            service: Some(service),
            upstream,
            sim,
            _dir: dir,
        }
    }

    /// The app with an executor against the Sportlink simulator (real Chromium) whose circuit
    /// breaker has tripped: Sportlink "renamed" the section the e-mail lives in, and one member
    /// with an e-mail change (through the webhook) was enough (`circuit_breaker_threshold` 1).
    /// The rename is undone before this returns, so a resume finds Sportlink as expected.
    async fn tripped() -> App {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Self::settings(dir.path());
        let standin = rondo_standin().await;
        settings.rondo_club = RondoClubSettings {
            base_url: standin.base_url(),
            username: RONDO_USER.into(),
            application_password: Secret::new(RONDO_PASSWORD),
            timeout_secs: 120,
        };
        let sim = rrs_testkit::chromium::start_sim().await;
        settings.sportlink =
            rrs_testkit::chromium::sportlink_settings(&sim, dir.path().join("artefacts"));
        settings.sportlink.circuit_breaker_threshold = 1;
        let member = Member::jan(TRIPPED);
        sim.state().seed_member(member.sim());
        sim.state().set_faults(Faults {
            renamed_sections: vec![("Communicatie".into(), "Contactgegevens".into())],
            ..Faults::default()
        });
        let clock = sim.clock();
        let app = Self::launch(dir, settings, Upstream::StandIn(standin), Some(sim), clock).await;
        let mut person = json!({"id": 900, "modified_gmt": wp_time(minutes_ago(60)), "acf": member.acf(),
                   "origin": "user_edit"});
        let (status, body) = app
            .webhook("msg_trip_1", "person.updated", person.clone())
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        person["acf"]["email_1"] = json!("tripped.new@example.nl");
        person["modified_gmt"] = json!(wp_time(minutes_ago(1)));
        let (status, body) = app.webhook("msg_trip_2", "person.updated", person).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["verdict"], "changed", "{body}");
        let paused = rrs_testkit::service::wait_for(
            "the circuit breaker to trip",
            Duration::from_secs(120),
            || async {
                let (_, status) = app.api(Method::GET, "/api/status", None).await;
                Ok((status["executor"]["state"] == "paused").then_some(status))
            },
        )
        .await
        .unwrap();
        assert!(
            paused["executor"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("Contactgegevens")),
            "{paused}"
        );
        app.sim().state().set_faults(Faults::default());
        app
    }

    fn sim(&self) -> &Simulator {
        self.sim.as_ref().expect("this app has an executor")
    }

    /// How many requests Rondo Club (the stand-in) has had. A poll asks it first thing, so
    /// nothing asked means no poll was started.
    fn rondo_requests(&self) -> usize {
        match &self.upstream {
            Upstream::StandIn(standin) => standin.state().request_count(),
            _ => 0,
        }
    }

    /// The poll runs recorded so far (scheduled, full or triggered), oldest first.
    async fn poll_runs(&self) -> Vec<Value> {
        let (_, runs) = self.api(Method::GET, "/api/runs?per_page=100", None).await;
        let mut runs: Vec<Value> = runs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == "poll" || r["kind"] == "full_poll")
            .cloned()
            .collect();
        runs.reverse();
        runs
    }

    /// Waits until `n` poll runs have finished, and returns them.
    async fn finished_polls(&self, n: usize) -> Vec<Value> {
        rrs_testkit::service::wait_for("the polls to finish", Duration::from_secs(60), || async {
            let runs = self.poll_runs().await;
            Ok((runs.len() >= n && runs.iter().all(|r| r["status"] != "running")).then_some(runs))
        })
        .await
        .unwrap()
    }

    /// The Rondo Club stand-in behind the app.
    fn standin(&self) -> &RondoStandIn {
        match &self.upstream {
            Upstream::StandIn(standin) => standin,
            _ => panic!("this app has no Rondo Club stand-in"),
        }
    }

    async fn stop(mut self) {
        // A silent Rondo Club still holds every request it took: the service stops anyway.
        if let Some(service) = self.service.take() {
            service.stop().await.expect("the service stops");
        }
        if let Upstream::StandIn(standin) = std::mem::replace(&mut self.upstream, Upstream::None) {
            standin.shutdown().await;
        }
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
    }

    /// Sends a signed webhook delivery, as the snippet does.
    async fn webhook(&self, id: &str, event_type: &str, data: Value) -> (StatusCode, Value) {
        let body = serde_json::to_vec(&json!({
            "type": event_type,
            "timestamp": Utc::now().timestamp(),
            "data": data,
        }))
        .unwrap();
        let now = Utc::now().timestamp();
        let signature = WebhookSecret::parse(WEBHOOK_SECRET)
            .unwrap()
            .sign(id, now, &body);
        let response = self
            .client
            .post(self.url("/webhooks/rondo-club"))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.text().await.unwrap())
    }

    async fn api(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (status, _, text) = self.send(method, path, Some(TOKEN), body).await;
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path}: answer is not JSON ({e}): {text}"));
        (status, value)
    }

    /// Whether the executor's wake was signalled (consumes the signal). No waiting: a stored
    /// `notify_one` permit makes `notified()` ready at once.
    fn woken(&self) -> bool {
        self.wake.notified().now_or_never().is_some()
    }
}

fn minutes_ago(m: i64) -> DateTime<Utc> {
    Utc::now() - TimeDelta::minutes(m)
}

fn wp_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// The WordPress post id [`person_json`] gives a member.
fn post_id(knvb: &str) -> i64 {
    100 + knvb.bytes().map(i64::from).sum::<i64>()
}

fn person_json(knvb: &str, email: &str, modified: DateTime<Utc>) -> Value {
    json!({
        "id": post_id(knvb),
        "modified_gmt": wp_time(modified),
        "acf": {
            "knvb-id": knvb,
            "contact_info": [{"contact_type": "email", "contact_value": email}],
            "datum-vog": "2023-10-30",
            "financiele-blokkade": false
        }
    })
}

/// The member [`App::tripped`]'s executor fails on.
const TRIPPED: &str = "TRP0001";

/// The Rondo Club stand-in with the tests' account, holding [`RED0001`].
async fn rondo_standin() -> RondoStandIn {
    let standin = RondoStandIn::start(StandInConfig {
        username: RONDO_USER.into(),
        application_password: RONDO_PASSWORD.into(),
        ..StandInConfig::default()
    })
    .await
    .expect("the Rondo Club stand-in starts");
    standin
        .state()
        .upsert_person(person_json(RED0001, RED0001_EMAIL, minutes_ago(1)))
        .expect("RED0001");
    standin
}

fn sighting(
    knvb: &str,
    email: &str,
    modified: DateTime<Utc>,
    source: Source,
    origin: Option<Origin>,
) -> Sighting {
    Sighting {
        person: Person::from_json(&person_json(knvb, email, modified)).unwrap(),
        source,
        origin,
    }
}

async fn see(store: &Store, s: Sighting) -> Vec<ChangeId> {
    store
        .write(move |db| db.apply_sighting(&s, &SightingContext::default(), Utc::now()))
        .await
        .unwrap()
        .change_ids
}

/// A member with one pending e-mail change; returns the change id.
async fn seed_pending(store: &Store, knvb: &str, new_email: &str) -> ChangeId {
    let old = format!("old.{}@example.nl", knvb.to_lowercase());
    see(
        store,
        sighting(knvb, &old, minutes_ago(60), Source::Webhook, None),
    )
    .await;
    let ids = see(
        store,
        sighting(
            knvb,
            new_email,
            minutes_ago(30),
            Source::Webhook,
            Some(Origin::UserEdit),
        ),
    )
    .await;
    assert_eq!(ids.len(), 1, "one change for {knvb}");
    ids[0]
}

const FAILURE: &str = "section Communicatie not found on /general";

async fn seed_failed(store: &Store, knvb: &str) -> ChangeId {
    let id = seed_pending(
        store,
        knvb,
        &format!("new.{}@example.nl", knvb.to_lowercase()),
    )
    .await;
    let now = Utc::now();
    let failed = store
        .write(move |db| db.record_failure(&[id], FAILURE, now, 1, now))
        .await
        .unwrap();
    assert_eq!(failed, vec![id]);
    id
}

async fn seed_conflict_lost(store: &Store, knvb: &str) -> ChangeId {
    let id = seed_pending(store, knvb, "volunteer@example.nl").await;
    let knvb_id = KnvbId::parse(knvb).unwrap();
    let now = Utc::now();
    store
        .write(move |db| {
            let input = ConflictInput {
                kind: rondo_reverse_sync::catalogue::FieldKind::Text,
                sportlink_value: "sportlink@example.nl",
                rondo_club_value: "volunteer@example.nl",
                sportlink_modified: Some(now),
                rondo_club_modified: Some(now - TimeDelta::hours(2)),
            };
            let resolution = conflict::resolve(&input);
            let field = rondo_reverse_sync::domain::FieldName::parse("email").unwrap();
            db.record_conflict(&knvb_id, &field, &input, &resolution, Some(id), now)?;
            db.resolve_without_push(
                &[id],
                ChangeStatus::ConflictLost,
                "Sportlink changed the field meanwhile and is newer (sportlink_newer)",
                now,
            )
        })
        .await
        .unwrap();
    id
}

/// A stored webhook delivery that detection has not seen (recorded through the store's own
/// delivery API, as the webhook handler records one).
async fn seed_delivery(store: &Store, id: &str, event_type: &str, data: Value) {
    let body = serde_json::to_vec(&json!({
        "type": event_type,
        "timestamp": Utc::now().timestamp(),
        "data": data,
    }))
    .unwrap();
    let id = id.to_string();
    let event_type = event_type.to_string();
    let inserted = store
        .write(move |db| {
            db.insert_delivery(&NewDelivery {
                id: &id,
                received_at: Utc::now(),
                webhook_timestamp: Utc::now().timestamp(),
                event_type: Some(&event_type),
                wp_post_id: None,
                knvb_id: None,
                outcome: DeliveryOutcome::Rejected,
                detail: Some("seeded by the test"),
                body: &body,
            })
        })
        .await
        .unwrap();
    assert!(inserted);
}

async fn change_status(store: &Store, id: ChangeId) -> ChangeStatus {
    store
        .read(move |db| db.change(id))
        .await
        .unwrap()
        .expect("change exists")
        .status
}

fn error_of(body: &Value) -> &str {
    body.get("error")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no error reason in {body}"))
}

/// Every route with a request that would otherwise be valid.
fn api_endpoints() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::POST, "/api/deliveries/d-1/replay", None),
        (Method::POST, "/api/members/ABC1234/redetect", None),
        (Method::GET, "/api/members/ABC1234", None),
        (Method::POST, "/api/changes/1/requeue", None),
        (
            Method::POST,
            "/api/changes/requeue",
            Some(json!({"ids": [1]})),
        ),
        (Method::GET, "/api/changes?status=pending", None),
        (Method::GET, "/api/conflicts", None),
        (Method::GET, "/api/runs", None),
        (Method::GET, "/api/status", None),
        (Method::POST, "/api/poll", Some(json!({"full": true}))),
        (Method::POST, "/api/executor/resume", None),
        (
            Method::POST,
            "/api/forward-sync/report",
            Some(json!({"knvb_id": "ABC1234", "fields": {"email": "a@b.nl"},
                        "rondo_club_modified": "2026-11-26T10:00:00Z"})),
        ),
        (Method::GET, "/api/openapi.json", None),
        (Method::GET, "/api/no-such-endpoint", None),
    ]
}

mod auth {
    use super::*;

    #[tokio::test]
    async fn every_api_endpoint_refuses_a_missing_or_wrong_token() {
        let app = App::start().await;
        let failed = seed_failed(&app.store, "AUTH001").await;
        for (method, path, body) in api_endpoints() {
            for token in [None, Some("wrong-token"), Some(WEBHOOK_SECRET), Some("")] {
                let (status, headers, text) =
                    app.send(method.clone(), path, token, body.clone()).await;
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} with {token:?}"
                );
                let challenge = headers
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                assert!(
                    challenge.starts_with("Bearer"),
                    "{method} {path}: {challenge:?}"
                );
                let body: Value = serde_json::from_str(&text).unwrap();
                assert!(!error_of(&body).is_empty());
                assert!(!text.contains(TOKEN));
            }
        }
        // Nothing happened behind the refused requests.
        assert_eq!(change_status(&app.store, failed).await, "failed");
        assert_eq!(app.rondo_requests(), 0, "no poll, no re-detection");
        assert!(app.poll_runs().await.is_empty());
        assert!(!app.woken());
        // And the right token works (so the 401s were about the token).
        let (status, _) = app.api(Method::GET, "/api/status", None).await;
        assert_eq!(status, StatusCode::OK);
        app.stop().await;
    }

    #[tokio::test]
    async fn the_operator_page_and_its_forms_need_the_token() {
        let app = App::start().await;
        let failed = seed_failed(&app.store, "AUTH002").await;
        for token in [None, Some("wrong-token"), Some(WEBHOOK_SECRET)] {
            let (status, _, text) = app.send(Method::GET, "/", token, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert!(text.contains("Sign in"), "{text}");
            assert!(!text.contains("AUTH002"), "no data before signing in");
        }
        let requeue = format!("/ui/changes/{failed}/requeue");
        for path in [requeue.as_str(), "/ui/executor/resume", "/logout"] {
            let response = app
                .client
                .post(app.url(path))
                .header("cookie", "rrs_session=v1.1700000000.deadbeef")
                .form(&[("csrf", "x")])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        }
        assert_eq!(change_status(&app.store, failed).await, "failed");
        // A wrong token at the login form: no cookie.
        let response = app
            .client
            .post(app.url("/login"))
            .form(&[("token", "wrong-token")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().get("set-cookie").is_none());
        // The bearer header works for the page.
        let (status, _, text) = app.send(Method::GET, "/", Some(TOKEN), None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(text.contains("AUTH002"));
        app.stop().await;
    }

    #[tokio::test]
    async fn login_sets_a_signed_http_only_strict_cookie_and_forms_need_csrf() {
        let app = App::start().await;
        let failed = seed_failed(&app.store, "AUTH003").await;
        let response = app
            .client
            .post(app.url("/login"))
            .form(&[("token", TOKEN)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let cookie = response
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Strict"), "{cookie}");
        assert!(
            !cookie.contains(TOKEN),
            "the cookie must not carry the token"
        );
        let session = cookie.split(';').next().unwrap().to_string();
        // With the cookie but without the CSRF token: refused.
        let response = app
            .client
            .post(app.url(&format!("/ui/changes/{failed}/requeue")))
            .header("cookie", &session)
            .form(&[("csrf", "forged")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(change_status(&app.store, failed).await, "failed");
        // The page's own form carries the right one.
        let page = app
            .client
            .get(app.url("/"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let marker = "name=\"csrf\" value=\"";
        let start = page.find(marker).expect("a csrf field") + marker.len();
        let csrf = &page[start..start + page[start..].find('"').unwrap()];
        let response = app
            .client
            .post(app.url(&format!("/ui/changes/{failed}/requeue")))
            .header("cookie", &session)
            .form(&[("csrf", csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(change_status(&app.store, failed).await, "pending");
        assert!(app.woken());
        app.stop().await;
    }
}

/// Signs in through the login form as a browser would; the cookie pair (`rrs_session=…`) and
/// the CSRF token of the page's forms.
async fn sign_in(app: &App) -> (String, String) {
    let response = app
        .client
        .post(app.url("/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let session = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = app
        .client
        .get(app.url("/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a csrf field") + marker.len();
    let csrf = page[start..start + page[start..].find('"').unwrap()].to_string();
    (session, csrf)
}

/// Issue 15, items 9 and 10: signing out ends the session on the server; sign-in attempts are
/// limited per client and overall.
mod sessions {
    use super::*;

    async fn page_status(app: &App, session: &str) -> StatusCode {
        app.client
            .get(app.url("/"))
            .header("cookie", session)
            .send()
            .await
            .unwrap()
            .status()
    }

    #[tokio::test]
    async fn signing_out_ends_the_session_on_the_server() {
        let app = App::start().await;
        let (session, csrf) = sign_in(&app).await;
        let (other, _) = sign_in(&app).await;
        assert_ne!(session, other, "every sign-in is its own session");
        assert_eq!(page_status(&app, &session).await, StatusCode::OK);
        let response = app
            .client
            .post(app.url("/logout"))
            .header("cookie", &session)
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        // A copy of the old cookie (a shared computer, a stolen cookie) no longer works…
        assert_eq!(page_status(&app, &session).await, StatusCode::UNAUTHORIZED);
        let resume = app
            .client
            .post(app.url("/ui/executor/resume"))
            .header("cookie", &session)
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resume.status(), StatusCode::UNAUTHORIZED);
        // …while another browser's session lives on.
        assert_eq!(page_status(&app, &other).await, StatusCode::OK);
        app.stop().await;
    }

    /// A client on its own loopback address (all of 127.0.0.0/8 reaches the service).
    fn client_from(last: u8) -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(std::net::IpAddr::from([127, 0, 0, last]))
            .build()
            .unwrap()
    }

    async fn attempt(app: &App, client: &reqwest::Client, token: &str) -> reqwest::Response {
        client
            .post(app.url("/login"))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
    }

    /// Counts, not time: the allowances refill once an hour, far beyond the test's length.
    #[tokio::test]
    async fn sign_in_attempts_are_limited_per_client_and_overall() {
        let app = App::start_with(Wiring::Limited {
            per_client: 3,
            overall: 6,
            refill_secs: 3600,
        })
        .await;
        let guesser = client_from(2);
        let mut statuses = Vec::new();
        for n in 0..10 {
            let response = attempt(&app, &guesser, &format!("guess-{n}")).await;
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                let wait: u64 = response.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(wait > 0);
            }
            statuses.push(response.status());
        }
        let checked = statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count();
        assert_eq!(checked, 3, "{statuses:?}");
        assert!(statuses[3..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS));
        // Limited, the right token is not even checked.
        assert_eq!(
            attempt(&app, &guesser, TOKEN).await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        // Another client has its own allowance…
        let operator = client_from(3);
        assert_eq!(
            attempt(&app, &operator, TOKEN).await.status(),
            StatusCode::SEE_OTHER
        );
        // …until the overall one (6) is used up: 3 + 1 so far, two more clients get one each.
        for last in [4, 5] {
            assert_eq!(
                attempt(&app, &client_from(last), "wrong").await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        assert_eq!(
            attempt(&app, &client_from(6), TOKEN).await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        app.stop().await;
    }
}

/// Issue 15, item 12: a request to `/api/` that hangs on its upstream is answered 503 at the
/// request deadline instead of holding the connection for ever. Rondo Club here takes
/// connections and never answers.
mod request_deadline {
    use super::*;

    #[tokio::test]
    async fn a_hung_admin_request_is_answered_503_at_the_deadline() {
        let app = App::start_with(Wiring::Hanging(1)).await;
        // A member the service knows, so re-detection goes on to ask Rondo Club.
        see(
            &app.store,
            sighting(
                "HNG0001",
                "h@example.nl",
                minutes_ago(60),
                Source::Webhook,
                None,
            ),
        )
        .await;
        // The client's own timeout only keeps a failing test from hanging.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let send = |method: Method, path: &'static str| {
            client
                .request(method, app.url(path))
                .bearer_auth(TOKEN)
                .send()
        };
        let expect_503 = |path: &str, response: reqwest::Response| {
            let path = path.to_owned();
            async move {
                assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
                let body: Value = response.json().await.unwrap();
                assert!(
                    error_of(&body).contains("did not finish within 1 seconds"),
                    "{path}: {body}"
                );
            }
        };
        // Re-detection asks Rondo Club while the request waits.
        let path = "/api/members/HNG0001/redetect";
        let response = send(Method::POST, path)
            .await
            .expect("answered before the client gave up");
        expect_503(path, response).await;
        // A poll is queued and answered 202 at once; the first one hangs in Rondo Club, so
        // the queue fills, and the request that would wait for room gets the 503.
        let mut accepted = 0;
        loop {
            let response = send(Method::POST, "/api/poll")
                .await
                .expect("answered before the client gave up");
            if response.status() == StatusCode::ACCEPTED {
                accepted += 1;
                assert!(accepted <= 64, "the poll queue never filled");
                continue;
            }
            expect_503("/api/poll", response).await;
            break;
        }
        assert!(accepted >= 1, "the first poll is accepted");
        // The rest of the service is unaffected.
        let (status, _) = app.api(Method::GET, "/api/status", None).await;
        assert_eq!(status, StatusCode::OK);
        app.stop().await;
    }
}

mod validation {
    use super::*;

    async fn expect(
        app: &App,
        method: Method,
        path: &str,
        body: Option<Value>,
        want: StatusCode,
    ) -> String {
        let (status, value) = app.api(method.clone(), path, body).await;
        assert_eq!(status, want, "{method} {path}: {value}");
        let reason = error_of(&value).to_string();
        assert!(!reason.is_empty());
        reason
    }

    async fn raw(
        app: &App,
        path: &str,
        content_type: &str,
        body: &'static str,
    ) -> (StatusCode, Value) {
        let response = app
            .client
            .post(app.url(path))
            .bearer_auth(TOKEN)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    #[tokio::test]
    async fn bad_input_gets_a_4xx_with_a_reason() {
        let app = App::start().await;
        let pending = seed_pending(&app.store, "VAL0001", "new@example.nl").await;
        let long = format!("/api/deliveries/{}/replay", "x".repeat(300));
        expect(&app, Method::POST, &long, None, StatusCode::BAD_REQUEST).await;
        let r = expect(
            &app,
            Method::POST,
            "/api/deliveries/unknown-id/replay",
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert!(r.contains("unknown-id"), "{r}");

        expect(
            &app,
            Method::POST,
            "/api/members/bad%21id/redetect",
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
        expect(
            &app,
            Method::POST,
            "/api/members/NOPE001/redetect",
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
        expect(
            &app,
            Method::GET,
            "/api/members/a%3Bb",
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
        expect(
            &app,
            Method::GET,
            "/api/members/NOPE001",
            None,
            StatusCode::NOT_FOUND,
        )
        .await;

        expect(
            &app,
            Method::POST,
            "/api/changes/abc/requeue",
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
        expect(
            &app,
            Method::POST,
            "/api/changes/0/requeue",
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
        expect(
            &app,
            Method::POST,
            "/api/changes/999999/requeue",
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
        let r = expect(
            &app,
            Method::POST,
            &format!("/api/changes/{pending}/requeue"),
            None,
            StatusCode::CONFLICT,
        )
        .await;
        assert!(r.contains("pending"), "{r}");

        expect(
            &app,
            Method::POST,
            "/api/changes/requeue",
            Some(json!({"ids": []})),
            StatusCode::BAD_REQUEST,
        )
        .await;
        expect(
            &app,
            Method::POST,
            "/api/changes/requeue",
            Some(json!({"ids": ["one"]})),
            StatusCode::BAD_REQUEST,
        )
        .await;
        expect(
            &app,
            Method::POST,
            "/api/changes/requeue",
            Some(json!({"ids": [-4]})),
            StatusCode::BAD_REQUEST,
        )
        .await;
        let many: Vec<i64> = (1..=201).collect();
        expect(
            &app,
            Method::POST,
            "/api/changes/requeue",
            Some(json!({ "ids": many })),
            StatusCode::BAD_REQUEST,
        )
        .await;
        let (status, v) = raw(
            &app,
            "/api/changes/requeue",
            "application/json",
            "{not json",
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(error_of(&v).contains("JSON"), "{v}");
        let (status, v) = raw(&app, "/api/changes/requeue", "text/plain", "[1]").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(error_of(&v).contains("Content-Type"), "{v}");

        expect(
            &app,
            Method::POST,
            "/api/poll",
            Some(json!({"full": "yes"})),
            StatusCode::BAD_REQUEST,
        )
        .await;
        expect(
            &app,
            Method::POST,
            "/api/poll",
            Some(json!({"fast": true})),
            StatusCode::BAD_REQUEST,
        )
        .await;
        let (status, v) = raw(&app, "/api/poll", "application/json", "[").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");

        let r = expect(
            &app,
            Method::GET,
            "/api/changes?status=pending,bogus",
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(r.contains("bogus"), "{r}");
        let r = expect(
            &app,
            Method::GET,
            "/api/changes?per_page=201",
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(r.contains("per_page"), "{r}");
        expect(
            &app,
            Method::GET,
            "/api/changes?page=0",
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
        expect(
            &app,
            Method::GET,
            "/api/changes?knvb_id=%21%21",
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
        expect(
            &app,
            Method::GET,
            "/api/conflicts?per_page=0",
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
        expect(
            &app,
            Method::GET,
            "/api/conflicts?knvb_id=a%20b",
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
        expect(
            &app,
            Method::GET,
            "/api/runs?page=x",
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;

        let report = |v: Value| Some(v);
        let now = Utc::now().to_rfc3339();
        let r = expect(&app, Method::POST, "/api/forward-sync/report",
            report(json!({"knvb_id": "VAL0001", "fields": {"shoe_size": "42"}, "rondo_club_modified": now})),
            StatusCode::BAD_REQUEST).await;
        assert!(r.contains("shoe_size"), "{r}");
        expect(&app, Method::POST, "/api/forward-sync/report",
            report(json!({"knvb_id": "VAL 0001", "fields": {"email": "a@b.nl"}, "rondo_club_modified": now})),
            StatusCode::BAD_REQUEST).await;
        let r = expect(&app, Method::POST, "/api/forward-sync/report",
            report(json!({"knvb_id": "VAL0001", "fields": {"email": "a@b.nl"}, "rondo_club_modified": "yesterday"})),
            StatusCode::BAD_REQUEST).await;
        assert!(r.contains("rondo_club_modified"), "{r}");
        expect(&app, Method::POST, "/api/forward-sync/report",
            report(json!({"knvb_id": "VAL0001", "fields": {"email": "a@b.nl"}, "rondo_club_modified": "2026-11-26T10:00:00"})),
            StatusCode::BAD_REQUEST).await;
        let future = (Utc::now() + TimeDelta::days(2)).to_rfc3339();
        let r = expect(&app, Method::POST, "/api/forward-sync/report",
            report(json!({"knvb_id": "VAL0001", "fields": {"email": "a@b.nl"}, "rondo_club_modified": future})),
            StatusCode::BAD_REQUEST).await;
        assert!(r.contains("future"), "{r}");
        expect(&app, Method::POST, "/api/forward-sync/report",
            report(json!({"knvb_id": "VAL0001", "fields": {"email": "a@b.nl"}, "rondo_club_modified": now, "sportlink_modified": 5})),
            StatusCode::BAD_REQUEST).await;
        expect(
            &app,
            Method::POST,
            "/api/forward-sync/report",
            report(json!({"knvb_id": "VAL0001", "fields": {}, "rondo_club_modified": now})),
            StatusCode::BAD_REQUEST,
        )
        .await;
        expect(&app, Method::POST, "/api/forward-sync/report",
            report(json!({"knvb_id": "VAL0001", "fields": {"email": {"nested": 1}}, "rondo_club_modified": now})),
            StatusCode::BAD_REQUEST).await;
        expect(
            &app,
            Method::POST,
            "/api/forward-sync/report",
            report(json!({"knvb_id": "VAL0001", "rondo_club_modified": now})),
            StatusCode::BAD_REQUEST,
        )
        .await;
        expect(&app, Method::POST, "/api/forward-sync/report",
            report(json!({"knvb_id": "VAL0001", "fields": {"email": "a@b.nl"}, "rondo_club_modified": now, "extra": 1})),
            StatusCode::BAD_REQUEST).await;

        let huge = format!(
            "{{\"ids\": [1], \"pad\": \"{}\"}}",
            "x".repeat(3 * 1024 * 1024)
        );
        let response = app
            .client
            .post(app.url("/api/changes/requeue"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(huge)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body: Value = response.json().await.unwrap();
        assert!(!error_of(&body).is_empty());

        let r = expect(&app, Method::GET, "/api/nope", None, StatusCode::NOT_FOUND).await;
        assert!(r.contains("openapi"), "{r}");

        // None of it changed anything.
        assert_eq!(change_status(&app.store, pending).await, "pending");
        let member: Value = app.api(Method::GET, "/api/members/VAL0001", None).await.1;
        assert_eq!(member["member"]["baseline"]["email"], "new@example.nl");
        assert!(app.poll_runs().await.is_empty(), "no poll was started");
        app.stop().await;
    }

    #[tokio::test]
    async fn parts_missing_from_this_build_answer_503_with_a_reason() {
        let app = App::start_unwired().await;
        for (method, path, body) in [
            (Method::POST, "/api/poll", Some(json!({"full": false}))),
            (Method::POST, "/api/members/ABC1234/redetect", None),
            (Method::POST, "/api/executor/resume", None),
        ] {
            let (status, value) = app.api(method, path, body).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
            assert!(
                error_of(&value).contains("not available in this build"),
                "{value}"
            );
        }
        let (_, status) = app.api(Method::GET, "/api/status", None).await;
        assert_eq!(status["executor"], Value::Null);
        app.stop().await;
    }
}

mod operations {
    use super::*;

    #[tokio::test]
    async fn a_requeued_change_is_pending_again_and_wakes_the_executor() {
        let app = App::start().await;
        let failed = seed_failed(&app.store, "REQ0001").await;
        let lost = seed_conflict_lost(&app.store, "REQ0002").await;
        let pending = seed_pending(&app.store, "REQ0003", "x@example.nl").await;
        assert!(!app.woken(), "no wake before the requeue");

        let (status, body) = app
            .api(
                Method::POST,
                &format!("/api/changes/{failed}/requeue"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "pending");
        assert_eq!(body["attempts"], 0);
        assert_eq!(change_status(&app.store, failed).await, "pending");
        assert!(app.woken(), "the executor's wake is signalled");
        // It is due now: the executor's next run picks it.
        let due = app
            .store
            .read(|db| db.due_members(Utc::now(), None, 10))
            .await
            .unwrap();
        assert!(due.contains(&KnvbId::parse("REQ0001").unwrap()), "{due:?}");

        let (status, body) = app
            .api(
                Method::POST,
                "/api/changes/requeue",
                Some(json!({ "ids": [lost.0, pending.0, 424242] })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["requeued"], json!([lost.0]));
        let refused = body["refused"].as_array().unwrap();
        assert_eq!(refused.len(), 2);
        assert!(refused.iter().all(|r| !error_of(r).is_empty()));
        assert_eq!(change_status(&app.store, lost).await, "pending");
        assert!(app.woken());
        // A bare list works too.
        let (status, body) = app
            .api(
                Method::POST,
                "/api/changes/requeue",
                Some(json!([pending.0])),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["requeued"], json!([]));
        assert!(!app.woken(), "nothing requeued, no wake");
        app.stop().await;
    }

    /// The poll and re-detection through the API reach Rondo Club (the stand-in), and the
    /// reading endpoints page and filter what is stored.
    #[tokio::test]
    async fn poll_trigger_redetect_and_reading() {
        let app = App::start().await;
        let (status, body) = app
            .api(Method::POST, "/api/poll", Some(json!({"full": true})))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["full"], true);
        let response = app
            .client
            .post(app.url("/api/poll"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "an empty body is a normal poll"
        );
        let polls = app.finished_polls(2).await;
        let kinds: Vec<&Value> = polls.iter().map(|r| &r["kind"]).collect();
        assert_eq!(kinds, [&json!("full_poll"), &json!("poll")], "{polls:?}");
        assert!(
            polls.iter().all(|r| r["status"] == "completed"),
            "{polls:?}"
        );
        assert_eq!(polls[0]["people_seen"], 1, "the stand-in holds one person");
        let watermark = app.store.read(|db| db.watermark()).await.unwrap();
        assert!(watermark.is_some(), "a full run moves the watermark");

        // A volunteer edits RED0001 in Rondo Club; re-detection fetches it now, source replay.
        app.standin()
            .state()
            .set_field(
                post_id(RED0001),
                "contact_info",
                json!([{"contact_type": "email", "contact_value": "edited@example.nl"}]),
                Some(minutes_ago(0)),
            )
            .unwrap();
        let (status, body) = app
            .api(Method::POST, "/api/members/red0001/redetect", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let changes = body["changes"].as_array().unwrap();
        assert_eq!(changes.len(), 1, "{body}");
        assert_eq!(changes[0]["source"], "replay");
        assert_eq!(changes[0]["old_value"], RED0001_EMAIL);
        assert_eq!(changes[0]["new_value"], "edited@example.nl");
        assert!(app.woken());
        assert_eq!(
            app.store.read(|db| db.watermark()).await.unwrap(),
            watermark,
            "re-detection never moves the watermark"
        );
        let (status, body) = app
            .api(Method::POST, "/api/members/NOPE999/redetect", None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        // No Sportlink account here, so no executor to resume.
        let (_, status) = app.api(Method::GET, "/api/status", None).await;
        assert_eq!(status["executor"], Value::Null);
        let (code, body) = app.api(Method::POST, "/api/executor/resume", None).await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");

        // Paging and filters.
        for i in 0..5 {
            seed_pending(&app.store, &format!("PAGE00{i}"), "p@example.nl").await;
        }
        let (_, page) = app
            .api(
                Method::GET,
                "/api/changes?status=pending&per_page=2&page=2",
                None,
            )
            .await;
        assert_eq!(page["total"], 6);
        assert_eq!(page["changes"].as_array().unwrap().len(), 2);
        assert_eq!(page["page"], 2);
        let (_, page) = app
            .api(Method::GET, "/api/changes?status=failed,synced", None)
            .await;
        assert_eq!(page["total"], 0);
        let (_, page) = app
            .api(Method::GET, "/api/changes?knvb_id=page001", None)
            .await;
        assert_eq!(page["total"], 1);
        assert_eq!(page["changes"][0]["knvb_id"], "PAGE001");

        seed_conflict_lost(&app.store, "CONF001").await;
        let (_, conflicts) = app
            .api(Method::GET, "/api/conflicts?knvb_id=CONF001", None)
            .await;
        assert_eq!(conflicts["total"], 1);
        assert_eq!(conflicts["conflicts"][0]["winning_system"], "sportlink");
        let (_, member) = app.api(Method::GET, "/api/members/CONF001", None).await;
        assert_eq!(member["changes"][0]["status"], "conflict_lost");
        assert_eq!(member["conflicts"].as_array().unwrap().len(), 1);
        assert!(member["field_timestamps"]["email"].is_object());
        let (_, runs) = app.api(Method::GET, "/api/runs?per_page=1", None).await;
        assert_eq!(runs["runs"][0]["kind"], "replay");
        app.stop().await;
    }

    #[tokio::test]
    async fn replaying_a_stored_delivery_runs_detection_with_source_replay() {
        let app = App::start().await;
        see(
            &app.store,
            sighting(
                "RPL0001",
                "first@example.nl",
                minutes_ago(90),
                Source::Webhook,
                None,
            ),
        )
        .await;
        let mut data = person_json("RPL0001", "replayed@example.nl", minutes_ago(10));
        data["origin"] = json!("user_edit");
        data["user"] = json!("volunteer");
        seed_delivery(&app.store, "msg_replay_1", "person.updated", data).await;
        let (status, body) = app
            .api(Method::POST, "/api/deliveries/msg_replay_1/replay", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["verdict"], "changed");
        assert_eq!(body["changes"][0]["new_value"], "replayed@example.nl");
        assert!(app.woken());
        let id = ChangeId(body["changes"][0]["id"].as_i64().unwrap());
        let record = app
            .store
            .read(move |db| db.change(id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.source, "replay");
        assert_eq!(record.delivery_id.as_deref(), Some("msg_replay_1"));
        // Replaying again finds nothing new: one detection path, idempotent.
        let (status, body) = app
            .api(Method::POST, "/api/deliveries/msg_replay_1/replay", None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["verdict"], "unchanged");
        // A trashed person carries nothing to detect.
        seed_delivery(
            &app.store,
            "msg_trash",
            "person.trashed",
            json!({"id": 5, "origin": "user_edit"}),
        )
        .await;
        let (status, body) = app
            .api(Method::POST, "/api/deliveries/msg_trash/replay", None)
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(error_of(&body).contains("person.trashed"), "{body}");
        app.stop().await;
    }
}

/// Issue 15, item 13: a `knvb-id` that is there but not usable (a zero-width space in it) is not
/// filed silently as "not a member": it is recorded and shown in the status and on the page,
/// until a delivery with a usable id for the same person clears it.
mod invalid_knvb_id {
    use super::*;

    #[tokio::test]
    async fn an_invalid_knvb_id_is_recorded_and_shown_to_the_operator() {
        let app = App::start().await;
        let mut data = person_json("ZWS0001", "a@example.org", minutes_ago(5));
        data["id"] = json!(4242);
        data["origin"] = json!("user_edit");
        data["acf"]["knvb-id"] = json!("ZWS\u{200b}0001");
        let (status, body) = app
            .webhook("msg_zws_1", "person.updated", data.clone())
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["verdict"], "invalid_knvb_id", "{body}");

        let (_, status) = app.api(Method::GET, "/api/status", None).await;
        assert_eq!(status["invalid_knvb_id_count"], 1, "{status}");
        let listed = &status["invalid_knvb_ids"][0];
        assert_eq!(listed["wp_post_id"], 4242, "{status}");
        assert_eq!(
            listed["value"], "ZWS\\u{200b}0001",
            "shown escaped: {status}"
        );
        assert_eq!(listed["source"], "webhook");

        let (code, _, page) = app.send(Method::GET, "/", Some(TOKEN), None).await;
        assert_eq!(code, StatusCode::OK);
        assert!(page.contains("invalid KNVB id"), "{page}");
        assert!(
            page.contains("ZWS\\u{200b}0001") && page.contains("4242"),
            "{page}"
        );

        // Corrected in Rondo Club: the next delivery clears it.
        data["acf"]["knvb-id"] = json!("ZWS0001");
        let (status, body) = app.webhook("msg_zws_2", "person.updated", data).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, status) = app.api(Method::GET, "/api/status", None).await;
        assert_eq!(status["invalid_knvb_id_count"], 0, "{status}");
        app.stop().await;
    }
}

mod forward_sync {
    use super::*;

    async fn changes_of(app: &App, knvb: &str) -> u64 {
        let (_, page) = app
            .api(Method::GET, &format!("/api/changes?knvb_id={knvb}"), None)
            .await;
        page["total"].as_u64().unwrap()
    }

    #[tokio::test]
    async fn a_reported_forward_sync_write_is_not_echoed_back() {
        let app = App::start().await;
        // Two members with the same history; only one gets the report.
        for knvb in ["FWD0001", "CTL0001"] {
            see(
                &app.store,
                sighting(
                    knvb,
                    "old@example.nl",
                    minutes_ago(120),
                    Source::Webhook,
                    None,
                ),
            )
            .await;
        }
        let written = minutes_ago(30);
        // Read once: compared to the second below (a second read could be a second later).
        let sportlink_modified = minutes_ago(40);
        let (status, body) = app
            .api(
                Method::POST,
                "/api/forward-sync/report",
                Some(json!({
                    "knvb_id": "fwd0001",
                    "fields": {"email": "  Sportlink@Example.nl ", "financiele_blokkade": "1"},
                    "rondo_club_modified": written.to_rfc3339(),
                    "sportlink_modified": sportlink_modified.to_rfc3339(),
                })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["new_member"], false);
        assert_eq!(body["baseline"]["financiele_blokkade"], "true");

        // The forward sync's write shows up in Rondo Club: through the poll (no origin) and a
        // webhook that (wrongly) says user_edit, both later than the write.
        let acf_value = |knvb: &str| {
            let mut p = person_json(knvb, "Sportlink@Example.nl", minutes_ago(20));
            p["acf"]["financiele-blokkade"] = json!(true);
            p
        };
        for knvb in ["FWD0001", "CTL0001"] {
            let s = Sighting {
                person: Person::from_json(&acf_value(knvb)).unwrap(),
                source: Source::Poll,
                origin: None,
            };
            see(&app.store, s).await;
        }
        // A signed webhook through the real handler.
        let mut data = acf_value("FWD0001");
        data["modified_gmt"] = json!(wp_time(minutes_ago(10)));
        data["origin"] = json!("user_edit");
        data["user"] = json!("volunteer");
        let (status, body) = app.webhook("msg_fwd_echo", "person.updated", data).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "processed", "{body}");
        assert_eq!(body["change_ids"], json!([]), "{body}");

        assert_eq!(
            changes_of(&app, "FWD0001").await,
            0,
            "no echo after the report"
        );
        assert_eq!(
            changes_of(&app, "CTL0001").await,
            2,
            "without the report the same values are changes (the test can fail)"
        );

        let (_, member) = app.api(Method::GET, "/api/members/FWD0001", None).await;
        let email_ts = &member["field_timestamps"]["email"];
        // Sportlink's value, copied: a Sportlink time, never a Rondo Club edit (issue 15 item 5).
        assert!(email_ts["rondo_club_modified"].is_null(), "{member}");
        assert!(member["field_timestamps"]["mobile"]["rondo_club_modified"].is_null());
        let sportlink_at: DateTime<Utc> = email_ts["sportlink_modified"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(sportlink_at.timestamp(), sportlink_modified.timestamp());

        // A real user edit after the forward sync is still detected (and wakes the executor).
        assert!(!app.woken());
        let mut data = person_json("FWD0001", "volunteer@example.nl", minutes_ago(5));
        data["origin"] = json!("user_edit");
        let (status, body) = app.webhook("msg_fwd_edit", "person.updated", data).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["change_ids"].as_array().unwrap().len(),
            2,
            "email and the block's revert: {body}"
        );
        assert!(app.woken());
        app.stop().await;
    }

    /// Issue 15, item 5: the Rondo Club side of a conflict is the time of the value being pushed
    /// (the volunteer's edit), never the time the forward sync copied Sportlink's own value.
    #[tokio::test]
    async fn a_report_of_sportlinks_value_keeps_the_volunteers_edit_time() {
        let app = App::start().await;
        see(
            &app.store,
            sighting(
                "TSP0001",
                "old@example.nl",
                minutes_ago(120),
                Source::Webhook,
                None,
            ),
        )
        .await;
        let edited = minutes_ago(60);
        let mut data = person_json("TSP0001", "volunteer@example.nl", edited);
        data["origin"] = json!("user_edit");
        let (status, body) = app.webhook("msg_tsp_edit", "person.updated", data).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["change_ids"].as_array().map(Vec::len),
            Some(1),
            "{body}"
        );

        let timestamps = |member: &Value| {
            let at = |side: &str| {
                member["field_timestamps"]["email"][side]
                    .as_str()
                    .map(|t| t.parse::<DateTime<Utc>>().unwrap().timestamp())
            };
            (at("sportlink_modified"), at("rondo_club_modified"))
        };
        let report = |email: &str, written: DateTime<Utc>, sportlink: Option<DateTime<Utc>>| {
            json!({
                "knvb_id": "TSP0001",
                "fields": {"email": email},
                "rondo_club_modified": written.to_rfc3339(),
                "sportlink_modified": sportlink.map(|t| t.to_rfc3339()),
            })
        };
        // The forward sync copies Sportlink's own (old) value over the edit in Rondo Club.
        let (status, body) = app
            .api(
                Method::POST,
                "/api/forward-sync/report",
                Some(report("old@example.nl", minutes_ago(30), None)),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, member) = app.api(Method::GET, "/api/members/TSP0001", None).await;
        assert_eq!(
            timestamps(&member),
            (None, Some(edited.timestamp())),
            "the edit's time stays; Sportlink held that value all along: {member}"
        );

        // Sportlink changed meanwhile, and the forward sync copies that: Sportlink's time is at
        // the latest the copy's, or what the report says; the edit's time still stays.
        let copied = minutes_ago(20);
        app.api(
            Method::POST,
            "/api/forward-sync/report",
            Some(report("desk@example.nl", copied, None)),
        )
        .await;
        let (_, member) = app.api(Method::GET, "/api/members/TSP0001", None).await;
        assert_eq!(
            timestamps(&member),
            (Some(copied.timestamp()), Some(edited.timestamp()))
        );
        let changed_in_sportlink = minutes_ago(45);
        app.api(
            Method::POST,
            "/api/forward-sync/report",
            Some(report(
                "desk2@example.nl",
                minutes_ago(15),
                Some(changed_in_sportlink),
            )),
        )
        .await;
        let (_, member) = app.api(Method::GET, "/api/members/TSP0001", None).await;
        let (sportlink, rondo) = timestamps(&member);
        assert_eq!(
            (sportlink, rondo),
            (
                Some(changed_in_sportlink.timestamp()),
                Some(edited.timestamp())
            )
        );

        // What the resolver decides with them: the volunteer's edit (60 min ago) is older than
        // Sportlink's change (45 min ago), so Sportlink wins.
        let at = |t: Option<i64>| t.and_then(|s| DateTime::<Utc>::from_timestamp(s, 0));
        let resolution = conflict::resolve(&ConflictInput {
            kind: rondo_reverse_sync::catalogue::FieldKind::Text,
            sportlink_value: "desk2@example.nl",
            rondo_club_value: "volunteer@example.nl",
            sportlink_modified: at(sportlink),
            rondo_club_modified: at(rondo),
        });
        assert_eq!(
            resolution.reason.as_str(),
            "sportlink_newer",
            "{resolution:?}"
        );
        app.stop().await;
    }

    #[tokio::test]
    async fn a_report_for_an_unseen_member_starts_a_baseline_without_changes() {
        let app = App::start().await;
        let (status, body) = app
            .api(
                Method::POST,
                "/api/forward-sync/report",
                Some(json!({
                    "knvb_id": "NEW0001",
                    "fields": {"email": "new@example.nl"},
                    "rondo_club_modified": minutes_ago(30).to_rfc3339(),
                    "sportlink_modified": null,
                })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["new_member"], true);
        let (_, member) = app.api(Method::GET, "/api/members/NEW0001", None).await;
        assert_eq!(
            member["member"]["sync_origin"],
            "sync_sportlink_to_rondo_club"
        );
        assert!(member["field_timestamps"]["email"]["sportlink_modified"].is_null());
        // The next sighting adopts the unreported fields and sees the reported one unchanged.
        let s = sighting(
            "NEW0001",
            "new@example.nl",
            minutes_ago(10),
            Source::Poll,
            None,
        );
        assert!(see(&app.store, s).await.is_empty());
        app.stop().await;
    }
}

mod openapi {
    use super::*;

    /// Every route the service serves (method, path); the document must list them all.
    const ROUTES: &[(&str, &str)] = &[
        ("post", "/api/deliveries/{id}/replay"),
        ("post", "/api/members/{knvb_id}/redetect"),
        ("get", "/api/members/{knvb_id}"),
        ("post", "/api/changes/{id}/requeue"),
        ("post", "/api/changes/requeue"),
        ("get", "/api/changes"),
        ("get", "/api/conflicts"),
        ("get", "/api/runs"),
        ("get", "/api/status"),
        ("post", "/api/poll"),
        ("post", "/api/executor/resume"),
        ("post", "/api/forward-sync/report"),
        ("get", "/api/openapi.json"),
        ("post", "/api/audits"),
        ("get", "/api/audits"),
        ("get", "/api/audits/{id}"),
        ("post", "/api/audits/{id}/cancel"),
        ("get", "/api/audits/{id}/results"),
        ("get", "/api/audits/{id}/results.csv"),
        ("post", "/api/audits/{id}/queue"),
        ("get", "/metrics"),
        ("post", "/webhooks/rondo-club"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/"),
        ("post", "/login"),
        ("post", "/logout"),
        ("post", "/ui/changes/{id}/requeue"),
        ("post", "/ui/executor/resume"),
    ];

    #[tokio::test]
    async fn the_document_parses_and_lists_every_route_and_only_served_ones() {
        let app = App::start().await;
        let (status, doc) = app.api(Method::GET, "/api/openapi.json", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3."),
            "{}",
            doc["openapi"]
        );
        let paths = doc["paths"].as_object().expect("paths");
        for (method, path) in ROUTES {
            assert!(
                paths.get(*path).and_then(|p| p.get(*method)).is_some(),
                "{method} {path} missing from the OpenAPI document"
            );
        }
        assert!(doc["components"]["schemas"]["ChangeRecord"].is_object());
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        // Every security requirement names a declared scheme.
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                for requirement in op["security"].as_array().into_iter().flatten() {
                    for name in requirement.as_object().unwrap().keys() {
                        assert!(schemes.contains_key(name), "{method} {path}: scheme {name}");
                    }
                }
            }
        }
        // The admin API says it needs the bearer token.
        assert!(paths["/api/changes"]["get"]["security"][0]["bearer"].is_array());
        // Every documented operation is served (no 404 from the router, no 405).
        let mut documented = 0;
        for (path, item) in paths {
            for method in item.as_object().unwrap().keys() {
                documented += 1;
                let concrete = path.replace("{knvb_id}", "ABC1234").replace("{id}", "1");
                let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let (status, _, text) = app.send(m, &concrete, Some(TOKEN), None).await;
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                let router_404 = status == StatusCode::NOT_FOUND
                    && (text.is_empty() || text.contains("no such API endpoint"));
                assert!(!router_404, "{method} {path} is documented but not served");
            }
        }
        assert!(documented >= ROUTES.len());
        app.stop().await;
    }
}

mod metrics {
    use super::*;

    /// A strict-enough reader of the Prometheus/OpenMetrics text format: families from
    /// `# TYPE`, every sample `name{labels} value` with a numeric value.
    pub(super) type Families = Vec<(String, String)>;
    pub(super) type Samples = Vec<(String, String, f64)>;

    /// `/metrics` as a scraper reads it: the text, and its samples.
    pub(super) async fn scrape(app: &App) -> (String, Samples) {
        let (status, _, text) = app.send(Method::GET, "/metrics", None, None).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let (_, samples) = parse(&text);
        (text, samples)
    }

    /// The value of the sample `name{labels}`, if there is one.
    pub(super) fn find(samples: &Samples, name: &str, labels: &str) -> Option<f64> {
        samples
            .iter()
            .find(|(n, l, _)| n == name && l == labels)
            .map(|s| s.2)
    }

    pub(super) fn parse(text: &str) -> (Families, Samples) {
        let mut families = Vec::new();
        let mut samples = Vec::new();
        assert!(text.trim_end().ends_with("# EOF"), "no # EOF");
        for line in text.lines().filter(|l| !l.is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
                families.push((name.to_string(), kind.to_string()));
                continue;
            }
            if line.starts_with("# HELP ") || line.starts_with("# UNIT ") || line == "# EOF" {
                continue;
            }
            assert!(!line.starts_with('#'), "unknown comment {line:?}");
            let (series, value) = line.rsplit_once(' ').expect("sample value");
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("value in {line:?}"));
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => {
                    assert!(l.ends_with('}'), "labels in {line:?}");
                    (n, l.trim_end_matches('}'))
                }
                None => (series, ""),
            };
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "metric name {name:?}"
            );
            samples.push((name.to_string(), labels.to_string(), value));
        }
        (families, samples)
    }

    #[tokio::test]
    async fn metrics_parse_have_the_families_and_no_secrets() {
        let app = App::start().await;
        seed_pending(&app.store, "MET0001", "m@example.nl").await;
        seed_failed(&app.store, "MET0002").await;
        // Deliveries are counted by the real webhook handler.
        let mut data = person_json("MET0003", "w@example.nl", minutes_ago(3));
        data["origin"] = json!("user_edit");
        assert_eq!(
            app.webhook("msg_met_1", "person.updated", data.clone())
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            app.webhook("msg_met_1", "person.updated", data).await.0,
            StatusCode::OK
        );
        let unsigned = app
            .client
            .post(app.url("/webhooks/rondo-club"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
        // A poll run, through the API against the stand-in.
        let (status, _) = app
            .api(Method::POST, "/api/poll", Some(json!({"full": false})))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        app.finished_polls(1).await;

        let response = app.client.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "no token needed");
        let text = response.text().await.unwrap();
        assert!(!text.contains(TOKEN) && !text.contains(WEBHOOK_SECRET));
        let (families, samples) = parse(&text);
        for (family, kind) in [
            ("rrs_webhook_deliveries", "counter"),
            ("rrs_changes", "gauge"),
            ("rrs_changes_by_status", "gauge"),
            ("rrs_executor_actions", "counter"),
            ("rrs_executor_action_seconds", "histogram"),
            ("rrs_queue_depth", "gauge"),
            ("rrs_circuit_breaker_open", "gauge"),
            ("rrs_executor_state", "gauge"),
            ("rrs_poll_runs", "counter"),
            ("rrs_poll_run_seconds", "histogram"),
            ("rrs_runs", "gauge"),
        ] {
            assert!(
                families.iter().any(|(n, k)| n == family && k == kind),
                "family {family} ({kind}) missing:\n{text}"
            );
        }
        let value = |name: &str, labels: &str| {
            find(&samples, name, labels)
                .unwrap_or_else(|| panic!("no {name}{{{labels}}} in\n{text}"))
        };
        assert_eq!(
            value("rrs_webhook_deliveries_total", "outcome=\"processed\""),
            1.0
        );
        assert_eq!(
            value("rrs_webhook_deliveries_total", "outcome=\"duplicate\""),
            1.0
        );
        assert_eq!(
            value("rrs_webhook_deliveries_total", "outcome=\"unverified\""),
            1.0
        );
        assert_eq!(value("rrs_queue_depth", ""), 1.0);
        assert_eq!(
            value(
                "rrs_changes",
                "field=\"email\",source=\"webhook\",status=\"failed\""
            ),
            1.0
        );
        assert_eq!(value("rrs_runs", "kind=\"poll\",status=\"completed\""), 1.0);
        assert_eq!(
            value("rrs_poll_runs_total", "kind=\"poll\",outcome=\"completed\""),
            1.0
        );

        // Scrape-time values follow the store.
        let failed = app
            .store
            .read(|db| db.list_changes(&[ChangeStatus::Failed], None, 1, 0))
            .await
            .unwrap()[0]
            .id;
        app.api(
            Method::POST,
            &format!("/api/changes/{failed}/requeue"),
            None,
        )
        .await;
        let (_, samples) = scrape(&app).await;
        let get = |name: &str, labels: &str| find(&samples, name, labels);
        assert_eq!(get("rrs_queue_depth", ""), Some(2.0));
        assert_eq!(
            get(
                "rrs_changes",
                "field=\"email\",source=\"webhook\",status=\"failed\""
            ),
            None
        );
        app.stop().await;
    }
}

/// The executor paused by its circuit breaker (a real trip against the simulator, see
/// [`App::tripped`]): the status and `/metrics` say so, the read-only token cannot resume it, the
/// admin token can.
mod paused {
    use super::*;

    async fn sample(app: &App, name: &str, labels: &str) -> Option<f64> {
        super::metrics::find(&super::metrics::scrape(app).await.1, name, labels)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tripped_executor_is_shown_paused_and_only_the_admin_token_resumes_it() {
        if rrs_testkit::chromium::browser_tests_skipped() {
            return;
        }
        let app = App::tripped().await;
        let (_, status) = app.api(Method::GET, "/api/status", None).await;
        assert_eq!(status["executor"]["state"], "paused", "{status}");
        assert_eq!(
            status["executor"]["consecutive_drift_failures"], 1,
            "{status}"
        );
        assert!(status["executor"]["until"].is_string(), "{status}");
        assert_eq!(
            sample(&app, "rrs_circuit_breaker_open", "").await,
            Some(1.0)
        );
        assert_eq!(
            sample(&app, "rrs_executor_state", "state=\"paused\"").await,
            Some(1.0)
        );
        // The run's members are counted when the run ends, a moment after the breaker paused
        // the board (the status above): wait for it (a hang guard).
        rrs_testkit::service::wait_for(
            "the failed member in /metrics",
            Duration::from_secs(60),
            || async {
                let n = sample(
                    &app,
                    "rrs_executor_action_seconds_count",
                    "action=\"member\"",
                )
                .await;
                Ok(n.filter(|n| *n >= 1.0))
            },
        )
        .await
        .expect("the failed member is measured");

        // The read-only token is refused and changes nothing.
        let (code, _, text) = app
            .send(Method::POST, "/api/executor/resume", Some(READ_TOKEN), None)
            .await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{text}");
        assert!(
            !text.contains(READ_TOKEN) && !text.contains(TOKEN),
            "{text}"
        );
        let (_, status) = app.api(Method::GET, "/api/status", None).await;
        assert_eq!(status["executor"]["state"], "paused", "still paused");

        // The admin token resumes it.
        let (code, body) = app.api(Method::POST, "/api/executor/resume", None).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        assert_ne!(body["state"], "paused", "{body}");
        assert_eq!(body["consecutive_drift_failures"], 0, "{body}");
        assert_eq!(
            sample(&app, "rrs_circuit_breaker_open", "").await,
            Some(0.0)
        );
        app.stop().await;
    }
}

mod operator_browser {
    use super::*;
    use anyhow::{anyhow, Context};
    use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
    use chromiumoxide::cdp::browser_protocol::network::CookieSameSite;
    use chromiumoxide::page::ScreenshotParams;
    use chromiumoxide::Page;

    use rrs_testkit::headless::{browser_tests_skipped, Headless};
    use std::path::Path;
    const WAIT: Duration = Duration::from_secs(20);

    /// Waits until `js` (an expression) is true in the page.
    async fn wait_for(page: &Page, js: &str, what: &str) -> anyhow::Result<()> {
        rrs_testkit::headless::until_true(page, js, what, WAIT).await
    }

    async fn text_of(page: &Page, selector: &str) -> anyhow::Result<String> {
        rrs_testkit::headless::inner_text(page, selector).await
    }

    async fn scenario(
        page: Page,
        app: &App,
        ids: (ChangeId, ChangeId, ChangeId),
    ) -> anyhow::Result<()> {
        let (pending, failed, lost) = ids;
        page.goto(app.url("/")).await?;
        wait_for(
            &page,
            "!!document.querySelector('#token')",
            "the sign-in form",
        )
        .await?;
        page.find_element("#token")
            .await?
            .click()
            .await?
            .type_str(TOKEN)
            .await?;
        page.find_element("button[type=submit]")
            .await?
            .click()
            .await?;
        wait_for(
            &page,
            "!!document.querySelector('#pending')",
            "the operator page",
        )
        .await?;

        let cookies = page.get_cookies().await?;
        let session = cookies
            .iter()
            .find(|c| c.name == "rrs_session")
            .context("session cookie")?;
        assert!(session.http_only, "HttpOnly");
        assert_eq!(session.same_site, Some(CookieSameSite::Strict));
        assert!(!session.value.contains(TOKEN));

        let pending_text = text_of(&page, &format!("#pending #change-{pending}")).await?;
        assert!(pending_text.contains("BRW0001"), "{pending_text}");
        assert!(
            pending_text.contains("Waiting for the executor"),
            "{pending_text}"
        );
        let failed_text = text_of(&page, &format!("#attention #change-{failed}")).await?;
        assert!(
            failed_text.contains("BRW0002") && failed_text.contains(FAILURE),
            "{failed_text}"
        );
        let lost_text = text_of(&page, &format!("#attention #change-{lost}")).await?;
        assert!(
            lost_text.contains("Conflict lost") && lost_text.contains("sportlink_newer"),
            "{lost_text}"
        );
        let conflicts = text_of(&page, "#conflicts").await?;
        assert!(
            conflicts.contains("BRW0003") && conflicts.contains("sportlink@example.nl"),
            "{conflicts}"
        );
        let executor = text_of(&page, "#executor").await?;
        assert!(
            executor.contains("Paused by the circuit breaker"),
            "{executor}"
        );
        assert!(text_of(&page, "#count-failed").await?.trim() == "1");

        let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artefacts");
        std::fs::create_dir_all(&shots)?;
        page.save_screenshot(
            ScreenshotParams::builder().full_page(true).build(),
            shots.join("operator-page.png"),
        )
        .await?;

        // The requeue button: the failed change becomes pending.
        page.find_element(format!("#attention #change-{failed} button"))
            .await?
            .click()
            .await?;
        wait_for(
            &page,
            &format!("!!document.querySelector('#pending #change-{failed}')"),
            "the requeued change in the pending list",
        )
        .await?;
        let requeued = text_of(&page, &format!("#pending #change-{failed}")).await?;
        assert!(
            requeued.contains("Waiting for the executor (requeued by operator)")
                && requeued.contains(FAILURE),
            "{requeued}"
        );
        let notice = text_of(&page, ".notice").await?;
        assert!(
            notice.contains(&format!("Change {failed} is pending again")),
            "{notice}"
        );
        assert!(text_of(&page, "#count-failed").await?.trim() == "0");
        // The executor is paused, so the requeued change waits.
        assert_eq!(change_status(&app.store, failed).await, "pending");

        // As a phone shows it.
        page.execute(SetDeviceMetricsOverrideParams::new(390, 844, 2.0, true))
            .await?;
        wait_for(&page, "window.innerWidth <= 400", "the phone viewport").await?;
        let overflow: bool = page
            .evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
            .await?
            .into_value()?;
        assert!(!overflow, "the page scrolls sideways on a phone");
        page.save_screenshot(
            ScreenshotParams::builder().full_page(true).build(),
            shots.join("operator-page-phone.png"),
        )
        .await?;
        page.execute(SetDeviceMetricsOverrideParams::new(1100, 900, 1.0, false))
            .await?;

        // The resume button.
        // After it the executor works on what is due, so the page may show it idle or working.
        page.find_element("#executor button").await?.click().await?;
        wait_for(
            &page,
            "!!document.querySelector('.notice') && \
             !document.querySelector('#executor').innerText.includes('Paused')",
            "the resumed executor",
        )
        .await?;
        page.save_screenshot(
            ScreenshotParams::builder().full_page(true).build(),
            shots.join("operator-page-after-requeue.png"),
        )
        .await?;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn operator_page_in_chromium_shows_rows_and_requeues() {
        if browser_tests_skipped() {
            return;
        }
        let app = App::tripped().await;
        // In Sportlink as their first sighting (the baseline) has them: once resumed, the
        // executor pushes the pending ones as it would any.
        for knvb in ["BRW0001", "BRW0002", "BRW0003"] {
            let mut member = Member::jan(knvb);
            member.email = format!("old.{}@example.nl", knvb.to_lowercase());
            app.sim().state().seed_member(member.sim());
        }
        let pending = seed_pending(&app.store, "BRW0001", "pending@example.nl").await;
        let failed = seed_failed(&app.store, "BRW0002").await;
        let lost = seed_conflict_lost(&app.store, "BRW0003").await;

        let headless = Headless::launch(Some((1100, 900)))
            .await
            .expect("chromium starts");
        let outcome = async {
            let page = headless.browser.new_page("about:blank").await?;
            tokio::time::timeout(
                Duration::from_secs(90),
                scenario(page, &app, (pending, failed, lost)),
            )
            .await
            .map_err(|_| anyhow!("scenario timed out"))?
        }
        .await;
        headless.close().await;
        outcome.unwrap();
        let (_, status) = app.api(Method::GET, "/api/status", None).await;
        assert_ne!(status["executor"]["state"], "paused", "{status}");
        app.stop().await;
    }
}

mod wired {
    //! The `replay` verb beside the running service, and `launch`'s own refusals and wiring.
    use super::*;
    use std::time::Instant;

    /// Issue 15, item 17: the `replay` verb of the real binary does what the admin API does,
    /// through the same code: replay a stored delivery, re-detect a member from Rondo Club,
    /// requeue a change; refusals are one line with the reason.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_replay_verb_replays_redetects_and_requeues_like_the_api() {
        let app = App::start().await;
        let store = app.store.clone();
        see(
            &store,
            sighting(
                "CLI0001",
                "first@example.nl",
                minutes_ago(90),
                Source::Webhook,
                None,
            ),
        )
        .await;
        let mut data = person_json("CLI0001", "replayed@example.nl", minutes_ago(10));
        data["origin"] = json!("user_edit");
        data["user"] = json!("volunteer");
        seed_delivery(&store, "msg_cli_1", "person.updated", data).await;
        let failed = seed_failed(&store, "CLI0002").await;

        let standin = app.standin();
        let person = person_json("CLI0001", "redetected@example.nl", minutes_ago(1));
        standin.state().upsert_person(person).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let db = store.path().display().to_string();
        let base_url = standin.base_url();
        let env = [
            ("RRS_DATABASE__PATH", db.as_str()),
            ("RRS_RONDO_CLUB__BASE_URL", base_url.as_str()),
            ("RRS_RONDO_CLUB__USERNAME", RONDO_USER),
            ("RRS_RONDO_CLUB__APPLICATION_PASSWORD", RONDO_PASSWORD),
        ];
        let run = |args: &[&str]| {
            let out = super::binary::run(dir.path(), args, &env);
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };

        let (code, out, err) = run(&["replay", "delivery", "msg_cli_1"]);
        assert_eq!(code, Some(0), "{out}{err}");
        assert!(
            out.contains("delivery msg_cli_1: changed (1 change(s))"),
            "{out}"
        );
        assert!(out.contains("replayed@example.nl"), "{out}");

        let (code, out, err) = run(&["replay", "member", "cli0001"]);
        assert_eq!(code, Some(0), "{out}{err}");
        let changes = store
            .read(|db| db.list_changes(&[], Some(&KnvbId::parse("CLI0001").unwrap()), 100, 0))
            .await
            .unwrap();
        assert!(
            changes
                .iter()
                .any(|c| c.new_value == "redetected@example.nl" && c.source == "replay"),
            "{changes:?}"
        );

        assert_eq!(change_status(&store, failed).await, "failed");
        let (code, out, err) = run(&["replay", "change", &failed.0.to_string()]);
        assert_eq!(code, Some(0), "{out}{err}");
        assert!(out.contains("pending again"), "{out}");
        assert_eq!(change_status(&store, failed).await, "pending");

        // Refusals: one line, the reason, exit 1 (2 for bad usage).
        let failed_id = failed.0.to_string();
        for (args, code_wanted, reason) in [
            (vec!["replay", "change", failed_id.as_str()], 1, "pending"),
            (vec!["replay", "delivery", "msg_nope"], 1, "not found"),
            (vec!["replay", "change", "999999"], 1, "not found"),
            (vec!["replay", "member", "not valid!"], 2, "knvb"),
        ] {
            let (code, out, err) = run(&args);
            assert_eq!(code, Some(code_wanted), "{args:?}: {out}{err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
            assert!(err.to_lowercase().contains(reason), "{args:?}: {err}");
        }
        app.stop().await;
    }

    #[tokio::test]
    async fn launch_wires_the_poller_behind_the_admin_api_and_stops_cleanly() {
        let standin = rondo_standin().await;
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::default();
        settings.database.path = dir.path().join("launch.sqlite3");
        settings.webhook.secret = Secret::new(WEBHOOK_SECRET);
        settings.admin.token = Secret::new(TOKEN);
        settings.rondo_club = RondoClubSettings {
            base_url: standin.base_url(),
            username: RONDO_USER.into(),
            application_password: Secret::new(RONDO_PASSWORD),
            timeout_secs: 5,
        };
        settings.poll.enabled = false;
        // A too-short admin token is a configuration error, and nothing is left running.
        let mut short = settings.clone();
        short.admin.token = Secret::new("short");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let refused = startup::launch(
            &short,
            Arc::new(Catalogue::builtin()),
            listener,
            async {},
            rondo_reverse_sync::clock::system(),
        )
        .await
        .err()
        .expect("refused");
        assert!(refused
            .downcast_ref::<rondo_reverse_sync::config::ConfigError>()
            .is_some());
        assert!(!refused.to_string().contains("short"), "{refused}");

        // A missing database is refused too (only `migrate` creates one), with one line.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let refused = startup::launch(
            &settings,
            Arc::new(Catalogue::builtin()),
            listener,
            async {},
            rondo_reverse_sync::clock::system(),
        )
        .await
        .err()
        .expect("refused");
        assert!(
            format!("{refused:#}").contains("does not exist"),
            "{refused:#}"
        );
        assert!(!settings.database.path.exists(), "launch created it");
        drop(rondo_reverse_sync::open_store(&settings, Arc::new(Catalogue::builtin())).unwrap());

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let service = startup::launch(
            &settings,
            Arc::new(Catalogue::builtin()),
            listener,
            async {
                let _ = rx.await;
            },
            rondo_reverse_sync::clock::system(),
        )
        .await
        .expect("service starts");
        let base = format!("http://127.0.0.1:{}", service.port());
        let client = reqwest::Client::new();
        let status: Value = client
            .get(format!("{base}/api/status"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(status["executor"], Value::Null, "no Sportlink configured");
        let answer = client
            .post(format!("{base}/api/poll"))
            .bearer_auth(TOKEN)
            .json(&json!({"full": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let runs: Value = client
                .get(format!("{base}/api/runs"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if runs["runs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["kind"] == "full_poll" && r["status"] == "completed")
            {
                break;
            }
            assert!(Instant::now() < deadline, "no completed poll: {runs}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let resume = client
            .post(format!("{base}/api/executor/resume"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resume.status(), StatusCode::SERVICE_UNAVAILABLE);
        let _ = tx.send(());
        tokio::time::timeout(Duration::from_secs(15), service.wait())
            .await
            .expect("service stops")
            .unwrap();
        standin.shutdown().await;
    }
}

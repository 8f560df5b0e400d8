//! The reconciliation poll and the baseline import: against the Rondo Club stand-in (paging,
//! faults, the watermark rules), against a real WordPress, and a bench (`--ignored`).

use rrs_testkit::wordpress;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use rondo_reverse_sync::catalogue::Catalogue;
use rondo_reverse_sync::config::{PollSettings, RondoClubSettings, Secret};
use rondo_reverse_sync::domain::{FieldName, KnvbId};
use rondo_reverse_sync::poll::{
    self, PollError, PollMode, PollReport, PollRequest, RetryPolicy, RondoClient, RondoError,
};
use rondo_reverse_sync::store::{PendingChange, RunRecord, Store, StoreOptions};
use rrs_standins::rondo_standin::{Faults, RondoStandIn, StandInConfig, StandInState};

const PASSWORD: &str = "abcd EFGH 1234 ijkl MNOP 5678";
const USER: &str = "rrs-poller";

fn at(raw: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(raw)
        .unwrap()
        .with_timezone(&Utc)
}

fn knvb(i: usize) -> KnvbId {
    KnvbId::parse(&format!("M{i:05}")).unwrap()
}

/// A person as Rondo Club holds one, with the tracked fields most clubs fill in.
fn acf(i: usize, email: &str) -> Value {
    json!({
        "knvb-id": knvb(i).as_str(),
        "first_name": format!("Voornaam{i}"),
        "last_name": format!("Achternaam{i}"),
        "email_1": email,
        "mobile_1": format!("+3161{:07}", i),
        "addresses": [{
            "address_label": "Home", "street_name": "Dorpsstraat", "house_number": format!("{}", i % 200 + 1),
            "house_number_addition": "", "postal_code": "1234 AB", "city": "Utrecht",
            "country": "Nederland", "country_code": "NL"
        }],
        "datum-vog": "2025-03-01",
        "freescout-id": i,
        "financiele-blokkade": false,
        "former_member": false,
    })
}

fn email(i: usize) -> String {
    format!("lid{i}@example.org")
}

struct Fixture {
    /// None against a real WordPress.
    standin: Option<RondoStandIn>,
    store: Store,
    poll: PollSettings,
    rondo: RondoClubSettings,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new(per_page: u32) -> Fixture {
        let standin = RondoStandIn::start(StandInConfig {
            username: USER.into(),
            application_password: PASSWORD.into(),
            ..StandInConfig::default()
        })
        .await
        .unwrap();
        let rondo = RondoClubSettings {
            base_url: standin.base_url(),
            username: USER.into(),
            application_password: Secret::new(PASSWORD),
            timeout_secs: 5,
        };
        Self::with(Some(standin), rondo, per_page).await
    }

    async fn with(
        standin: Option<RondoStandIn>,
        rondo: RondoClubSettings,
        per_page: u32,
    ) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("poll.sqlite3"),
            Arc::new(Catalogue::builtin()),
            StoreOptions::default(),
        )
        .unwrap();
        let poll = PollSettings {
            per_page,
            max_retries: 3,
            overlap_secs: 120,
            ..PollSettings::default()
        };
        Fixture {
            standin,
            store,
            poll,
            rondo,
            _dir: dir,
        }
    }

    /// The second request (page 2 of a run) is answered after `delay`.
    fn slow_second_page(&self, delay: Duration) {
        self.state().set_faults(Faults {
            after_requests: 1,
            slow_responses: 1,
            slow_delay: delay,
            ..Faults::default()
        });
    }

    /// Waits (a hang guard of 10 s) until the slow page 2 has been asked for: a fault is taken
    /// when its request arrives, the answer is recorded later.
    async fn second_page_asked(&self) {
        let state = self.state();
        let deadline = Instant::now() + Duration::from_secs(10);
        while state.faults().slow_responses > 0 {
            assert!(Instant::now() < deadline, "page 2 was never asked for");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn state(&self) -> StandInState {
        self.standin.as_ref().expect("a stand-in").state()
    }

    fn client(&self) -> RondoClient {
        self.client_with(&self.rondo)
    }

    fn client_with(&self, rondo: &RondoClubSettings) -> RondoClient {
        RondoClient::with_retry(
            rondo,
            self.poll.per_page,
            RetryPolicy {
                max_attempts: self.poll.max_retries,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(50),
            },
        )
        .unwrap()
    }

    /// People 0..n, person i modified at `start` + i minutes.
    fn seed(&self, n: usize, start: DateTime<Utc>) {
        let state = self.state();
        for i in 0..n {
            let modified = start + chrono::Duration::minutes(i as i64);
            state
                .upsert_person(json!({
                    "id": 1000 + i,
                    "modified_gmt": modified.format("%Y-%m-%dT%H:%M:%S").to_string(),
                    "acf": acf(i, &email(i)),
                }))
                .unwrap();
        }
    }

    async fn run(&self, request: PollRequest) -> Result<PollReport, PollError> {
        poll::run_poll(&self.store, &self.client(), &self.poll, request).await
    }

    async fn watermark(&self) -> Option<DateTime<Utc>> {
        self.store.read(|db| db.watermark()).await.unwrap()
    }

    async fn pending(&self, i: usize) -> Vec<PendingChange> {
        let id = knvb(i);
        self.store
            .read(move |db| db.pending_changes(&id))
            .await
            .unwrap()
    }

    async fn runs(&self) -> Vec<RunRecord> {
        self.store.read(|db| db.list_runs(100, 0)).await.unwrap()
    }

    async fn total_changes(&self) -> u64 {
        let counts = self.store.read(|db| db.change_counts()).await.unwrap();
        serde_json::to_value(counts)
            .unwrap()
            .as_object()
            .unwrap()
            .values()
            .filter_map(Value::as_u64)
            .sum()
    }

    fn people_requests(&self) -> Vec<rrs_standins::rondo_standin::RecordedRequest> {
        self.state()
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with("/wp-json/wp/v2/people"))
            .collect()
    }
}

fn for_member(i: usize, request: PollRequest) -> PollRequest {
    PollRequest {
        knvb_id: Some(knvb(i)),
        ..request
    }
}

const BASE: &str = "2026-11-20T10:00:00Z";

mod standin {
    use super::*;

    #[tokio::test]
    async fn paging_covers_every_page_and_moves_the_watermark_to_the_newest() {
        let f = Fixture::new(10).await;
        f.seed(25, at(BASE));
        let report = f.run(PollRequest::full()).await.unwrap();
        assert_eq!(report.pages, 3);
        assert_eq!(report.people_seen, 25);
        assert_eq!(report.first_sightings, 25);
        assert_eq!(report.changes, 0);
        let newest = at(BASE) + chrono::Duration::minutes(24);
        assert_eq!(report.newest_modified_gmt, Some(newest));
        assert_eq!(f.watermark().await, Some(newest));
        assert!(report.watermark_moved);

        let pages: Vec<_> = f.people_requests();
        assert_eq!(pages.len(), 3, "{pages:?}");
        for (n, r) in pages.iter().enumerate() {
            assert_eq!(r.query["page"], (n + 1).to_string());
            assert_eq!(r.query["per_page"], "10");
            assert_eq!(r.query["_fields"], "id,modified_gmt,acf");
            assert_eq!(r.query["orderby"], "id");
            assert_eq!(r.query["order"], "asc");
            assert!(!r.query.contains_key("modified_after"));
            assert!(r.authenticated);
        }
        let runs = f.runs().await;
        assert_eq!(runs[0].kind, "full_poll");
        assert_eq!(runs[0].status, "completed");
        assert_eq!(runs[0].people_seen, 25);
        for i in 0..25 {
            let id = knvb(i);
            let m = f
                .store
                .read(move |db| db.member(&id))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(m.wp_post_id, Some(1000 + i as i64));
        }
    }

    #[tokio::test]
    async fn people_saved_in_the_same_second_are_all_seen_once() {
        // As after a forward-sync run: the stand-in, like MySQL, orders equal dates differently
        // per page, so paging by `modified` would skip some and repeat others.
        let f = Fixture::new(10).await;
        let state = f.state();
        for i in 0..35 {
            state
                .upsert_person(
                    json!({"id": 1000 + i, "modified_gmt": "2026-11-20T10:00:00",
                                      "acf": acf(i, &email(i))}),
                )
                .unwrap();
        }
        let report = f.run(PollRequest::full()).await.unwrap();
        assert_eq!(report.people_seen, 35);
        assert_eq!(report.first_sightings, 35, "{report:?}");
        assert_eq!(report.note, None);
        assert_eq!(f.watermark().await, Some(at(BASE)));
    }

    #[tokio::test]
    async fn a_person_deleted_during_the_run_keeps_the_watermark() {
        // Someone trashed on a page already read shifts the rest one place left, so one person
        // is skipped this time: the run must say so and not move the watermark past them.
        let f = Fixture::new(5).await;
        f.seed(12, at(BASE));
        let state = f.state();
        // Page 2 is answered slowly; its list is computed after the delay.
        f.slow_second_page(Duration::from_millis(700));
        let run = {
            let (store, client, settings) = (f.store.clone(), f.client(), f.poll.clone());
            tokio::spawn(async move {
                poll::run_poll(&store, &client, &settings, PollRequest::full()).await
            })
        };
        f.second_page_asked().await;
        state.remove_person(1001);
        let report = run.await.unwrap().unwrap();
        assert_eq!(report.people_seen, 11, "{report:?}");
        assert!(
            report
                .note
                .as_deref()
                .unwrap_or("")
                .contains("11 of the 12"),
            "{report:?}"
        );
        assert!(!report.watermark_moved);
        assert_eq!(f.watermark().await, None);
        let id = knvb(5);
        let skipped = f.store.read(move |db| db.member(&id)).await.unwrap();
        assert!(
            skipped.is_none(),
            "person 5 slid onto page 1 after it was read"
        );
        // The next run sees everyone still there and moves it.
        let next = f.run(PollRequest::full()).await.unwrap();
        assert_eq!(next.note, None);
        assert!(next.watermark_moved);
    }

    #[tokio::test]
    async fn a_cancelled_run_stops_between_pages_and_is_recorded() {
        let f = Fixture::new(5).await;
        f.seed(12, at(BASE));
        f.slow_second_page(Duration::from_secs(3_600));
        let cancel = tokio_util::sync::CancellationToken::new();
        let run = {
            let (store, client, settings) = (f.store.clone(), f.client(), f.poll.clone());
            let cancel = cancel.clone();
            tokio::spawn(async move {
                poll::run_poll_until(&store, &client, &settings, PollRequest::full(), &cancel).await
            })
        };
        f.second_page_asked().await;
        cancel.cancel();
        // The slow page takes an hour: the run ending at all shows it did not wait for it (the
        // timeout only keeps a broken build from hanging the suite).
        let err = tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .expect("the cancelled poll did not wait for the slow page")
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, PollError::Cancelled), "{err}");
        assert_eq!(f.watermark().await, None);
        let run = &f.runs().await[0];
        assert_eq!(run.status, "failed");
        assert_eq!(run.people_seen, 5, "page 1 was committed");
    }

    #[tokio::test]
    async fn incremental_starts_at_the_watermark_minus_the_overlap_in_utc_with_z() {
        let f = Fixture::new(10).await;
        f.seed(25, at(BASE));
        f.run(PollRequest::full()).await.unwrap();
        f.state().clear_requests();
        // Watermark: BASE + 24 min; minus 120 s is BASE + 22 min, compared strictly.
        let report = f.run(PollRequest::incremental()).await.unwrap();
        let after = at(BASE) + chrono::Duration::minutes(22);
        assert_eq!(report.modified_after, Some(after));
        let pages = f.people_requests();
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].query["modified_after"], "2026-11-20T10:22:00Z");
        assert_eq!(report.people_seen, 2, "persons 23 and 24, not 22 (strict)");
        assert_eq!(report.unchanged, 2);
        assert_eq!(f.runs().await[0].kind, "poll");
    }

    #[tokio::test]
    async fn edits_after_the_watermark_are_found_before_it_not_and_full_finds_meta_only_edits() {
        let f = Fixture::new(10).await;
        f.seed(12, at(BASE));
        f.run(PollRequest::full()).await.unwrap();
        let watermark = f.watermark().await.unwrap();
        let state = f.state();
        // A save after the watermark…
        let later = watermark + chrono::Duration::minutes(5);
        state
            .set_field(1003, "email_1", json!("nieuw3@example.org"), Some(later))
            .unwrap();
        // …an edit whose modified_gmt lies before the watermark's overlap window…
        state
            .set_field(
                1001,
                "email_1",
                json!("oud1@example.org"),
                Some(watermark - chrono::Duration::hours(2)),
            )
            .unwrap();
        // …and a meta-only write (update_post_meta: modified_gmt stays).
        state
            .set_field(1002, "email_1", json!("meta2@example.org"), None)
            .unwrap();

        let report = f.run(PollRequest::incremental()).await.unwrap();
        assert_eq!(report.changes, 1);
        let found = f.pending(3).await;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].field, "email");
        assert_eq!(found[0].new_value, "nieuw3@example.org");
        assert!(f.pending(1).await.is_empty());
        assert!(f.pending(2).await.is_empty());
        assert_eq!(f.watermark().await, Some(later));

        let full = f.run(PollRequest::full()).await.unwrap();
        let meta = f.pending(2).await;
        assert_eq!(meta.len(), 1, "{full:?}");
        assert_eq!(meta[0].new_value, "meta2@example.org");
        // Person 1's modified_gmt went backwards: detection ignores it as stale, not a revert.
        assert!(f.pending(1).await.is_empty());
        assert_eq!(f.pending(3).await.len(), 1, "no second change for person 3");
        assert_eq!(f.watermark().await, Some(later));
    }

    /// Issue 15, item 2: after a forward-sync write, a member's meta-only edit leaves
    /// `modified_gmt` at the forward sync's time; its values differ from what the forward sync
    /// wrote, so it is a user edit, not absorbed into the baseline.
    #[tokio::test]
    async fn a_meta_only_edit_after_a_forward_sync_write_is_a_user_edit() {
        let f = Fixture::new(10).await;
        f.seed(2, at(BASE));
        f.run(PollRequest::full()).await.unwrap();
        let state = f.state();
        // The forward sync writes person 0's e-mail through REST (modified_gmt moves) and
        // reports it a moment later.
        let written = at(BASE) + chrono::Duration::hours(1);
        state
            .set_field(
                1000,
                "email_1",
                json!("sportlink0@example.org"),
                Some(written),
            )
            .unwrap();
        let report = rondo_reverse_sync::store::ForwardSyncReport {
            knvb_id: knvb(0),
            fields: [(
                FieldName::parse("email").unwrap(),
                json!("sportlink0@example.org"),
            )]
            .into(),
            rondo_club_modified: written + chrono::Duration::seconds(2),
            sportlink_modified: None,
        };
        f.store
            .write(move |db| db.record_forward_sync(&report, Utc::now()))
            .await
            .unwrap();
        f.run(PollRequest::full()).await.unwrap();
        assert!(
            f.pending(0).await.is_empty(),
            "the forward sync's own write"
        );

        // A volunteer's meta-only edit: modified_gmt stays at the forward sync's write.
        state
            .set_field(1000, "email_1", json!("volunteer0@example.org"), None)
            .unwrap();
        let full = f.run(PollRequest::full()).await.unwrap();
        let found = f.pending(0).await;
        assert_eq!(found.len(), 1, "{full:?}");
        assert_eq!(found[0].field, "email");
        assert_eq!(found[0].old_value, "sportlink0@example.org");
        assert_eq!(found[0].new_value, "volunteer0@example.org");
        assert!(f.pending(1).await.is_empty());
    }

    #[tokio::test]
    async fn retry_after_of_a_429_is_honoured() {
        let f = Fixture::new(10).await;
        f.seed(3, at(BASE));
        f.state().set_faults(Faults {
            too_many_requests: 1,
            retry_after_secs: 1,
            ..Faults::default()
        });
        let started = Instant::now();
        let report = f.run(PollRequest::full()).await.unwrap();
        // The client's own backoff is 10 ms: only Retry-After explains a second.
        assert!(started.elapsed() >= Duration::from_millis(950));
        assert_eq!(report.people_seen, 3);
        let statuses: Vec<u16> = f.people_requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [429, 200]);
    }

    #[tokio::test]
    async fn server_errors_are_retried_then_succeed() {
        let f = Fixture::new(10).await;
        f.seed(3, at(BASE));
        f.state().set_faults(Faults {
            server_errors: 2,
            ..Faults::default()
        });
        let report = f.run(PollRequest::full()).await.unwrap();
        assert_eq!(report.people_seen, 3);
        let statuses: Vec<u16> = f.people_requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [500, 500, 200]);
        assert!(f.watermark().await.is_some());
    }

    #[tokio::test]
    async fn a_failure_mid_run_is_bounded_recorded_and_leaves_the_watermark() {
        let f = Fixture::new(2).await;
        f.seed(6, at(BASE));
        f.run(PollRequest::full()).await.unwrap();
        let watermark = f.watermark().await;
        f.state().set_faults(Faults {
            after_requests: 1,
            server_errors: 100,
            ..Faults::default()
        });
        f.state().clear_requests();
        let err = f.run(PollRequest::full()).await.unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(
                err,
                PollError::Rondo(RondoError::Exhausted { attempts: 3, .. })
            ),
            "{text}"
        );
        assert!(
            text.contains("500") && text.contains("3 attempts"),
            "{text}"
        );
        assert_eq!(
            f.people_requests().len(),
            1 + 3,
            "page 1, then 3 attempts at page 2"
        );
        assert_eq!(f.watermark().await, watermark);
        let run = &f.runs().await[0];
        assert_eq!(run.status, "failed");
        assert_eq!(run.people_seen, 2, "page 1 was committed");
        assert!(run.error.as_deref().unwrap_or("").contains("500"));
    }

    #[tokio::test]
    async fn a_page_past_the_end_is_the_end() {
        let f = Fixture::new(10).await;
        f.seed(3, at(BASE));
        let client = f.client();
        assert!(client.people_page(None, 2).await.unwrap().is_none());
        let first = client.people_page(None, 1).await.unwrap().unwrap();
        assert_eq!(first.people.len(), 3);
        assert_eq!(first.total, Some(3));
        assert_eq!(first.total_pages, Some(1));
        // Nobody modified after the last one: an empty first page, and a completed run.
        let empty = client
            .people_page(Some(at(BASE) + chrono::Duration::hours(1)), 1)
            .await
            .unwrap()
            .unwrap();
        assert!(empty.people.is_empty());
        assert_eq!(empty.total_pages, Some(0));
    }

    #[tokio::test]
    async fn a_shrinking_list_ends_at_the_invalid_page_answer() {
        // The server's page count is stale (people trashed during the run): page 3 is past the
        // end, and that ends the run normally.
        let f = Fixture::new(2).await;
        f.seed(6, at(BASE));
        let client = f.client();
        let state = f.state();
        let first = client.people_page(None, 1).await.unwrap().unwrap();
        assert_eq!(first.total_pages, Some(3));
        state.remove_person(1004);
        state.remove_person(1005);
        assert!(client.people_page(None, 3).await.unwrap().is_none());
        let statuses: Vec<u16> = f.people_requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200, 400]);
    }

    #[tokio::test]
    async fn timeouts_are_retried_then_reported() {
        let standin_config = StandInConfig {
            username: USER.into(),
            application_password: PASSWORD.into(),
            ..StandInConfig::default()
        };
        let standin = RondoStandIn::start(standin_config).await.unwrap();
        let rondo = RondoClubSettings {
            base_url: standin.base_url(),
            username: USER.into(),
            application_password: Secret::new(PASSWORD),
            timeout_secs: 1,
        };
        let f = Fixture::with(Some(standin), rondo, 10).await;
        f.seed(3, at(BASE));
        let slow = |n| Faults {
            slow_responses: n,
            slow_delay: Duration::from_millis(2_500),
            ..Faults::default()
        };
        f.state().set_faults(slow(1));
        let report = f.run(PollRequest::full()).await.unwrap();
        assert_eq!(report.people_seen, 3);
        let watermark = f.watermark().await;

        // Three pages that would take an hour: the run ending at all shows the timeout held.
        f.state().set_faults(Faults {
            slow_delay: Duration::from_secs(3_600),
            ..slow(3)
        });
        let err = tokio::time::timeout(Duration::from_secs(120), f.run(PollRequest::full()))
            .await
            .expect("the request timeout cuts the slow pages off")
            .unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
        assert!(err.to_string().contains("3 attempts"), "{err}");
        assert_eq!(f.watermark().await, watermark);
        assert_eq!(f.runs().await[0].status, "failed");
    }

    #[tokio::test]
    async fn malformed_json_is_retried_then_reported() {
        let f = Fixture::new(10).await;
        f.seed(4, at(BASE));
        f.state().set_faults(Faults {
            malformed_json: 1,
            ..Faults::default()
        });
        let report = f.run(PollRequest::full()).await.unwrap();
        assert_eq!(report.people_seen, 4);
        let watermark = f.watermark().await;

        f.state().set_faults(Faults {
            malformed_json: 5,
            ..Faults::default()
        });
        let err = f.run(PollRequest::full()).await.unwrap_err();
        assert!(err.to_string().contains("malformed JSON"), "{err}");
        assert_eq!(f.watermark().await, watermark);
        assert_eq!(f.state().faults().malformed_json, 2, "bounded: 3 attempts");
    }

    #[tokio::test]
    async fn a_wrong_application_password_fails_loudly_and_leaves_the_watermark() {
        let f = Fixture::new(10).await;
        f.seed(3, at(BASE));
        f.run(PollRequest::full()).await.unwrap();
        let watermark = f.watermark().await;
        let runs_before = f.runs().await.len();
        f.state().clear_requests();
        let wrong_password = "wxyz WXYZ 9999 wxyz WXYZ 9999";
        let wrong = RondoClubSettings {
            application_password: Secret::new(wrong_password),
            ..f.rondo.clone()
        };
        f.state()
            .set_field(
                1000,
                "email_1",
                json!("x@example.org"),
                Some(at(BASE) + chrono::Duration::days(1)),
            )
            .unwrap();
        for mode in [PollMode::Incremental, PollMode::Full] {
            let err = poll::run_poll(
                &f.store,
                &f.client_with(&wrong),
                &f.poll,
                PollRequest {
                    mode,
                    knvb_id: None,
                    dry_run: false,
                },
            )
            .await
            .unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(err, PollError::Rondo(RondoError::Unauthorized { .. })),
                "{text}"
            );
            assert!(text.contains(USER), "{text}");
            assert!(text.contains("application password"), "{text}");
            assert!(text.contains("rest_not_logged_in"), "{text}");
            assert!(!text.contains("wxyz") && !text.contains("9999"), "{text}");
        }
        assert!(f.people_requests().is_empty(), "no anonymous poll");
        assert_eq!(f.watermark().await, watermark);
        let runs = f.runs().await;
        assert_eq!(runs.len(), runs_before + 2);
        for run in &runs[..2] {
            assert_eq!(run.status, "failed");
            let error = run.error.as_deref().unwrap_or("");
            assert!(error.contains(USER) && !error.contains("wxyz"), "{error}");
        }
        assert_eq!(f.total_changes().await, 0);
    }

    #[tokio::test]
    async fn a_token_for_another_user_is_refused() {
        let f = Fixture::new(10).await;
        let other = RondoClubSettings {
            username: "someone-else".into(),
            ..f.rondo.clone()
        };
        // The stand-in authenticates by user and password, so the same password under another
        // name is anonymous; what `WrongUser` guards against needs a server that says so.
        let err = f.client_with(&other).whoami().await.unwrap_err();
        assert!(matches!(err, RondoError::Unauthorized { .. }), "{err}");
        let me = f.client().whoami().await.unwrap();
        assert_eq!(me.username, USER);
    }

    #[tokio::test]
    async fn knvb_id_detection_and_redetect_never_move_the_watermark() {
        let f = Fixture::new(10).await;
        f.seed(5, at(BASE));
        f.run(PollRequest::full()).await.unwrap();
        let watermark = f.watermark().await;
        let state = f.state();
        let later = at(BASE) + chrono::Duration::days(2);
        state
            .set_field(1003, "email_1", json!("een@example.org"), Some(later))
            .unwrap();

        let report = f
            .run(for_member(3, PollRequest::incremental()))
            .await
            .unwrap();
        assert_eq!(report.changes, 1);
        assert_eq!(report.kind, "detect");
        assert_eq!(f.pending(3).await[0].new_value, "een@example.org");
        assert_eq!(f.watermark().await, watermark);
        let last = f.people_requests().pop().unwrap();
        assert_eq!(last.path, "/wp-json/wp/v2/people/1003");

        state
            .set_field(
                1003,
                "email_1",
                json!("twee@example.org"),
                Some(later + chrono::Duration::minutes(1)),
            )
            .unwrap();
        let report = poll::redetect_member(&f.store, &f.client(), knvb(3))
            .await
            .unwrap();
        assert_eq!(report.kind, "replay");
        assert_eq!(report.changes, 1);
        let pending = f.pending(3).await;
        assert_eq!(pending.len(), 1, "the replay superseded the first change");
        assert_eq!(pending[0].new_value, "twee@example.org");
        assert_eq!(f.watermark().await, watermark);
        let by_source = f
            .store
            .read(|db| db.change_counts_by_source())
            .await
            .unwrap();
        assert!(by_source
            .iter()
            .any(|(s, _, n)| s.as_str() == "replay" && *n == 1));

        let unknown = f
            .run(for_member(99, PollRequest::incremental()))
            .await
            .unwrap_err();
        assert!(matches!(unknown, PollError::UnknownMember(_)));
        assert!(unknown.to_string().contains("--full"), "{unknown}");
        assert_eq!(f.watermark().await, watermark);
    }

    #[tokio::test]
    async fn a_dry_run_reports_changes_but_records_none() {
        let f = Fixture::new(10).await;
        f.seed(5, at(BASE));
        f.run(PollRequest::full()).await.unwrap();
        let watermark = f.watermark().await;
        f.state()
            .set_field(
                1002,
                "email_1",
                json!("droog@example.org"),
                Some(at(BASE) + chrono::Duration::days(1)),
            )
            .unwrap();
        let report = f
            .run(PollRequest {
                dry_run: true,
                ..PollRequest::incremental()
            })
            .await
            .unwrap();
        assert_eq!(report.changes, 1, "{report:?}");
        assert!(report.dry_run);
        assert!(f.pending(2).await.is_empty());
        assert_eq!(f.watermark().await, watermark);
        // Still found by the real run afterwards.
        let real = f.run(PollRequest::incremental()).await.unwrap();
        assert_eq!(real.changes, 1);
    }

    #[tokio::test]
    async fn the_baseline_import_emits_no_changes() {
        let f = Fixture::new(10).await;
        f.seed(15, at(BASE));
        let cancel = tokio_util::sync::CancellationToken::new();
        let report = poll::run_baseline(&f.store, &f.client(), &cancel)
            .await
            .unwrap();
        assert_eq!(report.baseline_imports, 15);
        assert_eq!(report.changes, 0);
        assert_eq!(report.pages, 2);
        assert_eq!(
            f.watermark().await,
            Some(at(BASE) + chrono::Duration::minutes(14))
        );
        // Values that differ from the stored baseline: still no change, the baseline moves.
        f.state()
            .set_field(
                1004,
                "email_1",
                json!("anders@example.org"),
                Some(at(BASE) + chrono::Duration::days(1)),
            )
            .unwrap();
        let again = poll::run_baseline(&f.store, &f.client(), &cancel)
            .await
            .unwrap();
        assert_eq!(again.changes, 0);
        assert_eq!(f.total_changes().await, 0);
        let id = knvb(4);
        let member = f
            .store
            .read(move |db| db.member(&id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(member.baseline["email"], "anders@example.org");
        assert_eq!(f.runs().await[0].kind, "baseline");
        let poll = f.run(PollRequest::incremental()).await.unwrap();
        assert_eq!(poll.changes, 0);
    }

    #[tokio::test]
    async fn the_poller_runs_on_schedule_and_on_trigger_one_at_a_time_and_stops() {
        let f = Fixture::new(10).await;
        f.seed(30, at(BASE));
        let cancel = tokio_util::sync::CancellationToken::new();
        let settings = PollSettings {
            enabled: true,
            interval_secs: 1,
            ..f.poll.clone()
        };
        let metrics = std::sync::Arc::new(rondo_reverse_sync::telemetry::Metrics::new());
        let poller = poll::Poller::spawn(
            f.store.clone(),
            f.client(),
            settings,
            cancel.clone(),
            metrics.clone(),
        );
        let handle = poller.handle();
        let (a, b) = tokio::join!(
            handle.run(PollRequest::full()),
            handle.run(PollRequest::full())
        );
        assert_eq!(a.unwrap().people_seen, 30);
        assert_eq!(b.unwrap().people_seen, 30);
        // The scheduled one comes a second later; it is waited for to its end (cancelled while
        // running it would count as failed: this once failed on a loaded machine).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if f.runs()
                .await
                .iter()
                .any(|r| r.kind == "poll" && r.finished_at.is_some())
            {
                break;
            }
            assert!(Instant::now() < deadline, "no scheduled poll finished");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), poller.join())
            .await
            .expect("the poller stops when cancelled");
        assert!(handle.run(PollRequest::full()).await.is_err());
        let exposed = metrics
            .render(
                &Default::default(),
                rondo_reverse_sync::telemetry::metrics::ExecutorGauge::NotRunning,
            )
            .expect("metrics render");
        assert!(
            exposed.contains("rrs_poll_runs_total{kind=\"full_poll\",outcome=\"completed\"} 2"),
            "{exposed}"
        );
        assert!(
            exposed.contains("rrs_poll_runs_total{kind=\"poll\",outcome=\"completed\"}"),
            "{exposed}"
        );
        let mut runs = f.runs().await;
        runs.sort_by_key(|r| r.id);
        for pair in runs.windows(2) {
            let first_end = pair[0].finished_at.expect("finished");
            assert!(
                pair[1].started_at >= first_end,
                "overlapping runs: {pair:?}"
            );
        }
    }
}

mod real_wordpress {
    use super::*;
    use wordpress::WordPress;

    /// Makes `n` people named `{prefix}{i}` in one PHP process; returns their post ids. The
    /// snippet's shutdown webhooks are switched off for this bulk write.
    async fn create_people(wp: &WordPress, prefix: &str, n: usize) -> Vec<i64> {
        let code = format!(
            r#"global $wpdb;
            $ids = [];
            for ($i = 0; $i < {n}; $i++) {{
                $id = wp_insert_post(['post_type' => 'person', 'post_status' => 'publish',
                    'post_title' => "Poll test $i"], true);
                if (is_wp_error($id)) {{ fwrite(STDERR, $id->get_error_message()); exit(1); }}
                update_post_meta($id, 'knvb-id', sprintf('{prefix}%04d', $i));
                update_post_meta($id, 'email_1', "lid$i@example.org");
                // Saved over the last two days, ten minutes apart, the newest ten minutes ago.
                $at = gmdate('Y-m-d H:i:s', time() - ({n} - $i) * 600);
                $wpdb->update($wpdb->posts, ['post_modified_gmt' => $at, 'post_modified' => $at],
                    ['ID' => $id]);
                clean_post_cache($id);
                $ids[] = $id;
            }}
            remove_all_actions('shutdown');
            echo json_encode($ids);"#
        );
        let out = wp.run_php(&code).await.unwrap();
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    fn member(prefix: &str, i: usize) -> KnvbId {
        KnvbId::parse(&format!("{prefix}{i:04}")).unwrap()
    }

    async fn pending(f: &Fixture, id: KnvbId) -> Vec<PendingChange> {
        f.store
            .read(move |db| db.pending_changes(&id))
            .await
            .unwrap()
    }

    /// 250 people across 3 pages; an edit after the watermark is found, one before it is not
    /// (until a full run); a meta-only edit is found by a full run only; a wrong application
    /// password fails loudly and leaves the watermark.
    #[tokio::test]
    async fn poll_against_a_real_wordpress() {
        // A WordPress of its own: the incremental poll's counts assume nobody else edits people
        // meanwhile, and the snippet's tests in this binary do, on the shared one.
        let own = WordPress::start().await.expect("a real WordPress");
        let wp = &own;
        let prefix = format!("PT{}", Utc::now().format("%H%M%S"));
        let ids = create_people(wp, &prefix, 250).await;
        assert_eq!(ids.len(), 250);

        let rondo = RondoClubSettings {
            base_url: wp.base_url.clone(),
            username: wp.admin.user.clone(),
            application_password: Secret::new(wp.admin.app_password.clone()),
            timeout_secs: 30,
        };
        let f = Fixture::with(None, rondo, 100).await;

        let full = f.run(PollRequest::full()).await.unwrap();
        assert!(full.pages >= 3, "{full:?}");
        assert!(full.people_seen >= 250, "{full:?}");
        for i in [0, 99, 100, 199, 200, 249] {
            let id = member(&prefix, i);
            let m = f.store.read(move |db| db.member(&id)).await.unwrap();
            assert_eq!(m.unwrap().wp_post_id, Some(ids[i]));
        }
        let watermark = f
            .watermark()
            .await
            .unwrap_or_else(|| panic!("no watermark: {full:?}"));
        assert_eq!(Some(watermark), full.newest_modified_gmt);

        // After the watermark: a REST save by a volunteer.
        wp.update_person(
            &wp.volunteer,
            ids[10] as u64,
            &json!({"acf": {"email_1": "nieuw10@example.org"}}),
        )
        .await
        .unwrap();
        // Before it: a write whose modified_gmt lies an hour before the watermark; and a
        // meta-only write that leaves modified_gmt alone.
        let before = (watermark - chrono::Duration::hours(1))
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        wp.run_php(&format!(
            r#"global $wpdb;
            update_post_meta({old}, 'email_1', 'oud@example.org');
            $wpdb->update($wpdb->posts, ['post_modified_gmt' => '{before}',
                'post_modified' => '{before}'], ['ID' => {old}]);
            clean_post_cache({old});
            update_post_meta({meta}, 'email_1', 'meta@example.org');
            remove_all_actions('shutdown');"#,
            old = ids[20],
            meta = ids[30],
        ))
        .await
        .unwrap();

        let incremental = f.run(PollRequest::incremental()).await.unwrap();
        // Only the recent ones: WordPress understood the `Z` of modified_after.
        assert!(incremental.people_seen < 5, "{incremental:?}");
        let found = pending(&f, member(&prefix, 10)).await;
        assert_eq!(found.len(), 1, "{incremental:?}");
        assert_eq!(found[0].new_value, "nieuw10@example.org");
        assert!(pending(&f, member(&prefix, 20)).await.is_empty());
        assert!(pending(&f, member(&prefix, 30)).await.is_empty());
        let watermark = f.watermark().await.unwrap();
        assert!(watermark >= full.newest_modified_gmt.unwrap());

        let full_again = f.run(PollRequest::full()).await.unwrap();
        let meta = pending(&f, member(&prefix, 30)).await;
        assert_eq!(meta.len(), 1, "{full_again:?}");
        assert_eq!(meta[0].new_value, "meta@example.org");
        let old = pending(&f, member(&prefix, 20)).await;
        assert_eq!(old.len(), 1, "{full_again:?}");
        assert_eq!(old[0].new_value, "oud@example.org");
        assert_eq!(pending(&f, member(&prefix, 10)).await.len(), 1);

        let wrong = RondoClubSettings {
            application_password: Secret::new("aaaa bbbb cccc dddd eeee ffff"),
            ..f.rondo.clone()
        };
        let err = poll::run_poll(
            &f.store,
            &f.client_with(&wrong),
            &f.poll,
            PollRequest::full(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, PollError::Rondo(RondoError::Unauthorized { .. })),
            "{err}"
        );
        assert!(err.to_string().contains(&wp.admin.user), "{err}");
        assert!(!err.to_string().contains("aaaa"), "{err}");
        assert_eq!(f.watermark().await, Some(watermark));
    }
}

mod bench {
    use super::*;

    fn vm_hwm_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// `cargo test --release --test poll -- --ignored bench_poll_10k --nocapture`
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a benchmark: run by hand"]
    async fn bench_poll_10k() {
        let f = Fixture::new(100).await;
        f.seed(10_000, at(BASE));
        let seeded = vm_hwm_kib();
        let started = Instant::now();
        let first = f.run(PollRequest::full()).await.unwrap();
        let first_time = started.elapsed();
        let after_first = vm_hwm_kib();
        assert_eq!(first.people_seen, 10_000);
        assert_eq!(first.pages, 100);

        // Every 100th person edited, then the same full run again.
        for i in (0..10_000).step_by(100) {
            f.state()
                .set_field(
                    1000 + i as i64,
                    "email_1",
                    json!(format!("b{i}@example.org")),
                    Some(at(BASE) + chrono::Duration::days(30)),
                )
                .unwrap();
        }
        let started = Instant::now();
        let second = f.run(PollRequest::full()).await.unwrap();
        let second_time = started.elapsed();
        assert_eq!(second.changes, 100);
        println!(
            "bench_poll_10k: first full poll (10,000 first sightings, 100 pages): {:.2} s; \
             second (100 changes): {:.2} s; peak RSS (VmHWM) after seeding the stand-in {} MiB, \
             after the polls {} MiB (stand-in, its 10,000 people and the poll in one process)",
            first_time.as_secs_f64(),
            second_time.as_secs_f64(),
            seeded / 1024,
            vm_hwm_kib().max(after_first) / 1024,
        );
    }
}

mod cli {
    use super::*;
    use std::process::Command;

    fn verb(
        f: &Fixture,
        db: &std::path::Path,
        password: &str,
        args: &[&str],
    ) -> (i32, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_rondo-reverse-sync"))
            .args(args)
            .env("RRS_DATABASE__PATH", db)
            .env("RRS_RONDO_CLUB__BASE_URL", &f.rondo.base_url)
            .env("RRS_RONDO_CLUB__USERNAME", USER)
            .env("RRS_RONDO_CLUB__APPLICATION_PASSWORD", password)
            .env("RRS_POLL__MAX_RETRIES", "2")
            .env("RRS_POLL__PER_PAGE", "10")
            .env("RRS_LOG__LEVEL", "error")
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn baseline_and_detect_verbs_report_and_fail_with_one_line() {
        let f = Fixture::new(10).await;
        f.seed(12, at(BASE));
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cli.sqlite3");

        // Only `migrate` creates a database; every other verb refuses a missing one.
        let (code, out, err) = verb(&f, &db, PASSWORD, &["baseline"]);
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            err.contains("does not exist") && err.contains("migrate"),
            "{err}"
        );
        assert!(!db.exists(), "baseline created the database");
        let (code, out, err) = verb(&f, &db, PASSWORD, &["migrate"]);
        assert_eq!(code, 0, "{out}{err}");

        let (code, out, err) = verb(&f, &db, PASSWORD, &["baseline"]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("12 people in 2 pages, 0 changes"), "{out}");
        assert!(out.contains("baseline 12"), "{out}");

        f.state()
            .set_field(
                1003,
                "email_1",
                json!("cli@example.org"),
                Some(at(BASE) + chrono::Duration::days(1)),
            )
            .unwrap();
        let (code, out, err) = verb(&f, &db, PASSWORD, &["detect", "--dry-run"]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("dry run") && out.contains("1 changes"),
            "{out}"
        );
        let (code, out, err) = verb(&f, &db, PASSWORD, &["detect", "--knvb-id", "m00003"]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("(detect)") && out.contains("1 changes"),
            "{out}"
        );
        let (code, out, _) = verb(&f, &db, PASSWORD, &["detect", "--full"]);
        assert_eq!(code, 0);
        assert!(out.contains("0 changes"), "{out}");

        let (code, out, err) = verb(&f, &db, "wrong wrong wrong", &["detect"]);
        assert_eq!(code, 1, "{out}{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains(USER) && err.contains("application password"),
            "{err}"
        );
        assert!(!err.contains("wrong wrong"), "{err}");

        let (code, _, err) = verb(&f, &db, PASSWORD, &["detect", "--knvb-id", "not valid!"]);
        assert_eq!(code, 2, "{err}");
        let (code, _, err) = verb(&f, &db, PASSWORD, &["detect", "--knvb-id", "ZZ999"]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("--full"), "{err}");
    }
}

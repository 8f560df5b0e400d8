//! A test rig for the executor: the simulator, a fresh database fed through the real detection
//! path (baseline sighting, then a user edit), and executors against both.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rondo_reverse_sync::catalogue::Catalogue;
use rondo_reverse_sync::clock::SharedClock;
use rondo_reverse_sync::config::SportlinkSettings;
use rondo_reverse_sync::detect::{Person, Sighting};
use rondo_reverse_sync::domain::{ChangeId, FieldName, KnvbId, Origin, Source};
use rondo_reverse_sync::sportlink::driver::ChromiumDriver;
use rondo_reverse_sync::sportlink::executor::{Executor, RunReport};
use rondo_reverse_sync::sportlink::lock::AccountLock;
use rondo_reverse_sync::sportlink::setup::chromium_executor;
use rondo_reverse_sync::store::{
    ChangeRecord, ConflictRecord, SightingContext, Store, StoreOptions,
};
use rrs_standins::simulator::{SimMember, SimState, Simulator};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::chromium::{sportlink_settings, start_sim_on, USER};
use crate::clock::SkipClock;

/// Upper bound for one run in a test (two shared cores, Chromium start, login).
pub const RUN_LIMIT: Duration = Duration::from_secs(120);

/// A member as Rondo Club knows it (canonical values), convertible to the simulator's record.
#[derive(Debug, Clone)]
pub struct Member {
    pub knvb_id: String,
    pub email: String,
    pub email2: String,
    pub mobile: String,
    pub mobile2: String,
    pub phone: String,
    pub phone2: String,
    pub datum_vog: String,
    pub freescout_id: String,
    pub blokkade: bool,
    pub street: String,
    pub number: String,
    pub addition: String,
    pub postcode: String,
    pub city: String,
    pub country: String,
}

impl Member {
    pub fn jan(knvb_id: &str) -> Self {
        Self {
            knvb_id: knvb_id.into(),
            email: format!("{}@example.nl", knvb_id.to_lowercase()),
            email2: String::new(),
            mobile: "+31612345678".into(),
            mobile2: String::new(),
            phone: "+31201234567".into(),
            phone2: String::new(),
            datum_vog: "2023-10-30".into(),
            freescout_id: "1001".into(),
            blokkade: false,
            street: "Dorpsstraat".into(),
            number: "1".into(),
            addition: String::new(),
            postcode: "1234AB".into(),
            city: "Amsterdam".into(),
            country: "NL".into(),
        }
    }

    /// The person's `acf` as Rondo Club sends it (fixed contact fields and a Home address).
    pub fn acf(&self) -> Value {
        json!({
            "knvb-id": self.knvb_id,
            "email_1": self.email,
            "email_2": self.email2,
            "mobile_1": self.mobile,
            "mobile_2": self.mobile2,
            "telephone_1": self.phone,
            "telephone_2": self.phone2,
            "datum-vog": self.datum_vog,
            "freescout-id": self.freescout_id,
            "financiele-blokkade": self.blokkade,
            "addresses": [{
                "address_label": "Home",
                "street_name": self.street,
                "house_number": self.number,
                "house_number_addition": self.addition,
                "postal_code": self.postcode,
                "city": self.city,
                "country_code": self.country,
            }],
        })
    }

    /// The same member in the simulator (Sportlink holds phones in local form).
    pub fn sim(&self) -> SimMember {
        let mut m = SimMember::new(self.knvb_id.clone(), format!("Lid {}", self.knvb_id));
        m.communication.email1 = self.email.clone();
        m.communication.email2 = self.email2.clone();
        m.communication.mobile1 = local(&self.mobile);
        m.communication.mobile2 = local(&self.mobile2);
        m.communication.telephone1 = local(&self.phone);
        m.communication.telephone2 = local(&self.phone2);
        m.set_remark(3, self.freescout_id.clone());
        m.set_remark(8, self.datum_vog.clone());
        m.has_financial_block = self.blokkade;
        m.address.street_name = self.street.clone();
        m.address.address_number = self.number.clone();
        m.address.address_number_appendix = self.addition.clone();
        m.address.zip_code = self.postcode.clone();
        m.address.city = self.city.clone();
        m.address.country_code = self.country.clone();
        m
    }
}

fn local(e164: &str) -> String {
    match e164.strip_prefix("+31") {
        Some(rest) => format!("0{rest}"),
        None => e164.to_owned(),
    }
}

pub struct Rig {
    pub sim: Simulator,
    pub store: Store,
    pub dir: tempfile::TempDir,
    /// The service's `[sportlink]` settings for the executors the rig builds, which are built
    /// from them as `serve` builds its own ([`chromium_executor`]): a test changes a setting
    /// here (or per executor with [`Rig::executor_with`]), never the executor's parts.
    pub sportlink: SportlinkSettings,
    /// The clock of the simulator's one-time codes and of every session the rig makes: waiting
    /// for the next 30-second window moves it forward instead of sleeping.
    pub otp_clock: Arc<SkipClock>,
    clock: AtomicI64,
}

impl Rig {
    pub async fn start() -> Rig {
        Self::start_with_catalogue(Catalogue::builtin()).await
    }

    /// A rig whose field catalogue differs from the built-in one (as a club's own file would).
    pub async fn start_with_catalogue(catalogue: Catalogue) -> Rig {
        let otp_clock = SkipClock::shared();
        let sim = start_sim_on(otp_clock.clone()).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("rrs.sqlite3");
        let store = tokio::task::spawn_blocking(move || {
            Store::open(&path, Arc::new(catalogue), StoreOptions::default())
        })
        .await
        .expect("join")
        .expect("store opens");
        let sportlink = SportlinkSettings {
            // Quick retries within a run, a failed member due again in the next run, and a
            // browser kept open between the runs of one test.
            retry_backoff_ms: vec![100; 3],
            next_attempt_base_secs: 0,
            circuit_breaker_cooldown_secs: 600,
            idle_close_secs: 60,
            action_timeout_secs: 15,
            ..sportlink_settings(&sim, dir.path().join("artefacts"))
        };
        Rig {
            sim,
            store,
            dir,
            sportlink,
            otp_clock,
            // Sightings are an hour old and one minute apart, so anything the executor stamps
            // "now" is newer.
            clock: AtomicI64::new((Utc::now() - TimeDelta::hours(1)).timestamp()),
        }
    }

    /// Settings for `serve` on the rig's database against the rig's simulator, with no pause
    /// between members.
    pub fn serve_settings(&self) -> rondo_reverse_sync::config::Settings {
        use rondo_reverse_sync::config::{Secret, Settings};

        let mut settings = Settings::default();
        settings.database.path = self.store.path().to_path_buf();
        settings.webhook.secret = Secret::new(crate::service::SECRET);
        settings.sportlink = crate::chromium::sportlink_settings(&self.sim, self.artefact_dir());
        settings
    }

    pub fn state(&self) -> SimState {
        self.sim.state()
    }

    /// Removes the drawn variant's in-page rendering delays (up to 1.2 s a section), keeping
    /// everything else it drew: for a test whose subject is something else and whose length
    /// they would set (rendering delays have their own tests, and every other test draws them).
    pub fn without_section_delays(&self) {
        let mut variant = self.state().variant();
        variant.section_delays_ms.clear();
        self.state().set_variant(variant);
    }

    pub fn artefact_dir(&self) -> PathBuf {
        self.dir.path().join("artefacts")
    }

    /// An executor built from the rig's settings (and the account lock in the rig's directory).
    pub fn executor(&self) -> Executor<ChromiumDriver> {
        self.executor_with(|_| {})
    }

    /// An executor built from the rig's settings as `change` leaves them, the way `serve` builds
    /// its own.
    pub fn executor_with(
        &self,
        change: impl FnOnce(&mut SportlinkSettings),
    ) -> Executor<ChromiumDriver> {
        let mut sportlink = self.sportlink.clone();
        change(&mut sportlink);
        let lock = AccountLock::acquire(self.dir.path(), USER).expect("account lock");
        chromium_executor(
            &sportlink,
            self.store.clone(),
            lock,
            self.otp_clock.clone() as SharedClock,
        )
        .expect("the executor is built from the settings")
    }

    fn next_modified(&self) -> DateTime<Utc> {
        let t = self.clock.fetch_add(60, Ordering::SeqCst) + 60;
        DateTime::from_timestamp(t, 0).expect("valid time")
    }

    async fn sight(&self, acf: Value, source: Source, origin: Option<Origin>) -> Vec<ChangeId> {
        self.sight_at(100, self.next_modified(), acf, source, origin)
            .await
    }

    /// A sighting of WordPress post `post`, modified at `modified`, through the real detection
    /// path; the ids of the changes it found.
    pub async fn sight_at(
        &self,
        post: i64,
        modified: DateTime<Utc>,
        acf: Value,
        source: Source,
        origin: Option<Origin>,
    ) -> Vec<ChangeId> {
        let person = Person::from_json(&json!({
            "id": post,
            "modified_gmt": modified.format("%Y-%m-%dT%H:%M:%S").to_string(),
            "acf": acf,
        }))
        .expect("person JSON");
        let sighting = Sighting {
            person,
            source,
            origin,
        };
        self.store
            .write(move |c| c.apply_sighting(&sighting, &SightingContext::default(), Utc::now()))
            .await
            .expect("sighting stored")
            .change_ids
    }

    /// Put the member in Sportlink (simulator) and make it the baseline in the database.
    pub async fn seed(&self, m: &Member) {
        self.state().seed_member(m.sim());
        self.sight(m.acf(), Source::Baseline, None).await;
    }

    /// A volunteer saved the person in Rondo Club (webhook, user edit).
    pub async fn user_edit(&self, m: &Member) -> Vec<ChangeId> {
        self.sight(m.acf(), Source::Webhook, Some(Origin::UserEdit))
            .await
    }

    pub async fn change(&self, id: ChangeId) -> ChangeRecord {
        self.store
            .read(move |c| c.change(id))
            .await
            .expect("read")
            .expect("change exists")
    }

    pub async fn changes_of(&self, knvb_id: &str) -> Vec<ChangeRecord> {
        let id = knvb(knvb_id);
        self.store
            .read(move |c| c.list_changes(&[], Some(&id), 1000, 0))
            .await
            .expect("read")
    }

    /// (`{field}_sportlink_modified`, `{field}_rondo_club_modified`)
    pub async fn timestamps(
        &self,
        knvb_id: &str,
        field: &str,
    ) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let id = knvb(knvb_id);
        let field = FieldName::parse(field).expect("a field name");
        self.store
            .read(move |c| c.field_timestamps(&id, &field))
            .await
            .expect("read")
    }

    pub async fn sync_origin(&self, knvb_id: &str) -> Option<String> {
        let id = knvb(knvb_id);
        self.store
            .read(move |c| c.member(&id))
            .await
            .expect("read")
            .and_then(|m| m.sync_origin)
            .map(|o| o.as_str().to_owned())
    }

    pub async fn conflicts(&self, knvb_id: &str) -> Vec<ConflictRecord> {
        let id = knvb(knvb_id);
        self.store
            .read(move |c| c.list_conflicts(Some(&id), 100, 0))
            .await
            .expect("read")
    }

    /// One run, bounded in time.
    pub async fn run(
        &self,
        executor: &mut Executor<ChromiumDriver>,
        only: Option<&str>,
    ) -> RunReport {
        self.run_mode(executor, only, false).await
    }

    pub async fn run_mode(
        &self,
        executor: &mut Executor<ChromiumDriver>,
        only: Option<&str>,
        dry_run: bool,
    ) -> RunReport {
        Self::bounded_run(executor, only, dry_run, RUN_LIMIT).await
    }

    /// One run over every due member, bounded by `limit` (for runs over many members).
    /// One run of a fresh executor over everything pending; the browser is closed afterwards.
    pub async fn push(&self) -> RunReport {
        let mut executor = self.executor();
        let report = self.run(&mut executor, None).await;
        executor.close().await;
        report
    }

    pub async fn run_within(
        &self,
        executor: &mut Executor<ChromiumDriver>,
        limit: Duration,
    ) -> RunReport {
        Self::bounded_run(executor, None, false, limit).await
    }

    async fn bounded_run(
        executor: &mut Executor<ChromiumDriver>,
        only: Option<&str>,
        dry_run: bool,
        limit: Duration,
    ) -> RunReport {
        let only = only.map(knvb);
        let cancel = CancellationToken::new();
        match tokio::time::timeout(limit, executor.run(only.as_ref(), dry_run, &cancel)).await {
            Ok(Ok(report)) => report,
            Ok(Err(e)) => {
                executor.close().await;
                panic!("run failed: {e}");
            }
            Err(_) => {
                executor.close().await;
                panic!("run did not finish within {limit:?}");
            }
        }
    }

    pub async fn finish(self) {
        self.sim.shutdown().await;
    }
}

pub fn knvb(raw: &str) -> KnvbId {
    KnvbId::parse(raw).expect("valid KNVB id")
}

/// Saves the simulator received for a member, as (status, posted fields).
/// A member's saves as (status, posted fields); any success reads 200 (the simulator's variants
/// answer a save with 200 or 204).
pub fn saves(state: &SimState, knvb_id: &str) -> Vec<(u16, Vec<(String, String)>)> {
    state
        .saves_for(knvb_id)
        .into_iter()
        .map(|r| {
            let status = if (200..300).contains(&r.status) {
                200
            } else {
                r.status
            };
            (status, r.fields)
        })
        .collect()
}

/// Requests of a member's pages and data (any method), for pacing checks.
pub fn first_request_of(state: &SimState, knvb_id: &str) -> Option<DateTime<Utc>> {
    let page = format!("/member/member-details/{knvb_id}/");
    state
        .request_log()
        .into_iter()
        .filter(|r| r.path.starts_with(&page) || r.member_id.as_deref() == Some(knvb_id))
        .map(|r| r.time)
        .min()
}

/// The built-in catalogue with one heading replaced: what the executor sees when Sportlink renames
/// a section (the page shows the old text, the catalogue expects another).
pub fn catalogue_expecting_heading(heading: &str, instead: &str) -> Catalogue {
    let text = rondo_reverse_sync::catalogue::DEFAULT_CATALOGUE.replace(
        &format!("section = \"{heading}\""),
        &format!("section = \"{instead}\""),
    );
    Catalogue::parse(&text, "test catalogue").expect("the edited catalogue parses")
}

/// The first member of the run ended `Done` with `synced` changes synced.
pub fn assert_done(report: &RunReport, synced: usize) {
    assert!(
        matches!(
            report.members.first().map(|m| &m.result),
            Some(rondo_reverse_sync::sportlink::executor::MemberResult::Done { synced: n, .. }) if *n == synced
        ),
        "expected Done with {synced} synced: {report:?}"
    );
}

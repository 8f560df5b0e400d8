//! Crash during load: the real binary (`serve`) takes 2,000 deliveries while it is killed with
//! SIGKILL at random moments and restarted. The sender behaves like the snippet's retries: a
//! delivery without a 2xx is sent again (same id, same body) until it gets one. Afterwards every
//! delivery that was acknowledged is in the database, each exactly once, and every member's
//! baseline holds its newest edit: nothing acknowledged was lost, nothing applied twice.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng as _;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use rondo_reverse_sync::catalogue::Catalogue;
use rondo_reverse_sync::domain::KnvbId;
use rondo_reverse_sync::store::{Store, StoreOptions};
use rondo_reverse_sync::webhook::WebhookSecret;
use rrs_standins::loadgen::{Delivery, DeliveryFactory};

const SECRET: &str = "whsec_Q1JBU0gtVEVTVC1TRUNSRVQtMDEyMzQ1Njc4OWFiY2RlZg==";
const DELIVERIES: u64 = 2_000;
const MEMBERS: u64 = 40;
const KILLS: usize = 5;
const CONCURRENCY: usize = 8;

struct Service {
    bin: PathBuf,
    db: PathBuf,
    port: u16,
    log: PathBuf,
    /// More settings (`RRS_…`) and environment, e.g. the Sportlink account.
    env: Vec<(String, String)>,
    child: Option<Child>,
    starts: u32,
}

impl Service {
    async fn start(&mut self, client: &reqwest::Client) {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut command = Command::new(&self.bin);
        command.arg("serve");
        if self.starts == 1 {
            // Only an explicit first start may create the database.
            command.arg("--create-database");
        }
        let child = command
            .env("RRS_DATABASE__PATH", &self.db)
            .env("RRS_WEBHOOK__SECRET", SECRET)
            .env("RRS_SERVER__LISTEN", format!("127.0.0.1:{}", self.port))
            .env("RRS_LOG__LEVEL", "warn")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start the service");
        self.child = Some(child);
        let health = format!("http://127.0.0.1:{}/healthz", self.port);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(&health).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "the service exited during start-up ({status}); log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the service did not answer /healthz within 30 s (start {})",
                self.starts
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL; the process id it had.
    async fn kill(&mut self) -> Option<u32> {
        let mut child = self.child.take()?;
        let pid = child.id();
        child.start_kill().expect("SIGKILL");
        child.wait().await.expect("reap");
        pid
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Sends `delivery` until it is answered 2xx; the number of attempts.
async fn deliver(client: &reqwest::Client, url: &str, delivery: &Delivery) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut attempts = 0;
    loop {
        attempts += 1;
        if let Ok(r) = delivery.request(client, url).send().await {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            if status.is_success() {
                return attempts;
            }
            assert!(
                !status.is_client_error(),
                "{} answered {status}: {body}",
                delivery.id
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} not acknowledged within 120 s",
            delivery.id
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_deliveries_survive_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut service = Service {
        bin: PathBuf::from(env!("CARGO_BIN_EXE_rondo-reverse-sync")),
        db: dir.path().join("crash.sqlite3"),
        port: free_port(),
        log: dir.path().join("serve.log"),
        env: Vec::new(),
        child: None,
        starts: 0,
    };
    service.start(&client).await;

    let secret = WebhookSecret::parse(SECRET).expect("secret");
    let factory = Arc::new(DeliveryFactory::new(secret, MEMBERS, "crash"));
    let url = format!("http://127.0.0.1:{}/webhooks/rondo-club", service.port);
    // Every delivery is signed once (same id, same body on every retry, as the snippet does);
    // its timestamp stays within tolerance for the whole test.
    let deliveries: Arc<Vec<Delivery>> =
        Arc::new((0..DELIVERIES).map(|k| factory.delivery(k)).collect());
    let next = Arc::new(AtomicU64::new(0));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let retries = Arc::new(AtomicU64::new(0));

    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (client, url, deliveries, next, acknowledged, retries) = (
            client.clone(),
            url.clone(),
            deliveries.clone(),
            next.clone(),
            acknowledged.clone(),
            retries.clone(),
        );
        senders.spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(delivery) = deliveries.get(k as usize) else {
                    break;
                };
                let attempts = deliver(&client, &url, delivery).await;
                retries.fetch_add(u64::from(attempts - 1), Ordering::Relaxed);
                acknowledged.lock().await.push(k);
            }
        });
    }

    // Kill at random points of the stream (by progress, not by time, so a fast machine cannot
    // finish before the kills), restart each time.
    let mut thresholds: Vec<u64> = (0..KILLS)
        .map(|_| rand::thread_rng().gen_range(DELIVERIES / 20..DELIVERIES * 9 / 10))
        .collect();
    thresholds.sort_unstable();
    let mut kills = 0;
    for threshold in thresholds {
        let deadline = Instant::now() + Duration::from_secs(120);
        while (acknowledged.lock().await.len() as u64) < threshold {
            assert!(
                Instant::now() < deadline,
                "no progress towards {threshold} deliveries"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if next.load(Ordering::Relaxed) >= DELIVERIES {
            break;
        }
        service.kill().await;
        kills += 1;
        service.start(&client).await;
    }
    while let Some(joined) = senders.join_next().await {
        joined.expect("sender");
    }
    service.kill().await;
    assert!(
        kills >= 3,
        "the deliveries finished before the service was killed three times ({kills})"
    );

    let acknowledged = acknowledged.lock().await.clone();
    assert_eq!(acknowledged.len() as u64, DELIVERIES);
    let check = verify(&service.db, &deliveries, &acknowledged).await;
    eprintln!(
        "crash test: {DELIVERIES} deliveries, {kills} SIGKILLs, {} retries, {} starts; {check}",
        retries.load(Ordering::Relaxed),
        service.starts
    );
}

/// Every acknowledged delivery is recorded exactly once as processed, and every member's baseline
/// is its newest edit.
async fn verify(db: &Path, deliveries: &[Delivery], acknowledged: &[u64]) -> String {
    let store = {
        let db = db.to_path_buf();
        tokio::task::spawn_blocking(move || {
            Store::open(&db, Arc::new(Catalogue::builtin()), StoreOptions::default())
        })
        .await
        .expect("join")
        .expect("open the database after the kills")
    };
    let ids: Vec<String> = acknowledged
        .iter()
        .map(|&k| deliveries[k as usize].id.clone())
        .collect();
    let mut newest: HashMap<String, (u64, String)> = HashMap::new();
    for &k in acknowledged {
        let d = &deliveries[k as usize];
        let entry = newest
            .entry(d.knvb_id.clone())
            .or_insert((k, d.email.clone()));
        if k > entry.0 {
            *entry = (k, d.email.clone());
        }
    }
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "ids are unique");
    let (rows, missing, not_processed, baselines) = store
        .read(move |db| {
            let mut missing = Vec::new();
            let mut not_processed = Vec::new();
            for id in &ids {
                match db.delivery(id)? {
                    None => missing.push(id.clone()),
                    Some(d) if d.outcome != "processed" => {
                        not_processed.push(format!("{id}: {}", d.outcome))
                    }
                    Some(_) => {}
                }
            }
            let mut baselines = HashMap::new();
            for knvb in newest.keys() {
                let id = KnvbId::parse(knvb).expect("knvb id");
                let prior = db.load_prior(&id)?;
                baselines.insert(
                    knvb.clone(),
                    (
                        prior.and_then(|p| p.baseline.get("email").cloned()),
                        newest[knvb].1.clone(),
                    ),
                );
            }
            Ok((db.delivery_count()?, missing, not_processed, baselines))
        })
        .await
        .expect("read");
    assert!(
        missing.is_empty(),
        "{} acknowledged deliveries lost: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(not_processed.is_empty(), "{not_processed:?}");
    assert_eq!(
        rows,
        acknowledged.len() as u64,
        "one row per delivery, none twice"
    );
    let wrong: Vec<_> = baselines
        .iter()
        .filter(|(_, (stored, want))| stored.as_deref() != Some(want.as_str()))
        .collect();
    assert!(
        wrong.is_empty(),
        "baselines are not the newest edit: {wrong:?}"
    );
    format!(
        "{rows} rows, {} members at their newest edit",
        baselines.len()
    )
}

/// Reliability test 1 with the executor: the same binary, now with a Sportlink account (the
/// simulator, in this process) so it pushes changes while deliveries arrive and is killed with
/// SIGKILL several times, mostly right after a save reached Sportlink. Afterwards:
///
/// - every acknowledged delivery is in the database, once;
/// - every change is in a valid end state with a reason, and, since nobody edits Sportlink in
///   this test, none lost a conflict, failed or was skipped;
/// - no change is marked synced unless Sportlink received its value, and each member's newest
///   synced value is what Sportlink holds, which is the member's newest edit;
/// - nothing was written to Sportlink that no edit asked for: every save carried the seed values
///   or values of that member's own edits, and each member's record equals the seed apart from
///   the two edited fields;
/// - no Chromium of a killed service is left running: the restarted service kills it (and removes
///   its profile) before its executor starts; after the last kill the test runs the same sweep.
mod with_executor {
    use std::collections::{BTreeMap, HashMap, HashSet};
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use rand::Rng as _;
    use tokio::sync::Mutex;

    use rondo_reverse_sync::catalogue::Catalogue;
    use rondo_reverse_sync::domain::{ChangeStatus, FieldName};
    use rondo_reverse_sync::store::{ChangeRecord, Store, StoreOptions};
    use rondo_reverse_sync::webhook::WebhookSecret;
    use rrs_standins::loadgen::{self, Delivery, DeliveryFactory};
    use rrs_standins::simulator::{SimMember, SimState};

    use rondo_reverse_sync::sportlink::orphans;

    use super::{deliver, free_port, verify, Service, SECRET};
    use rrs_testkit::chromium::{
        browser_tests_skipped, chromium_path, start_sim_on, OTP_SECRET, PASSWORD, USER,
    };

    const DELIVERIES: u64 = 2_000;
    const MEMBERS: u64 = 40;
    const KILLS: usize = 4;
    const CONCURRENCY: usize = 8;
    /// The edits after the first sightings are spread over this long, so the executor works
    /// through all of them and the kills land while it pushes.
    const SEND_OVER: Duration = Duration::from_secs(40);
    /// After a kill point is reached, wait at most this long for the executor's next save
    /// (after a restart it may first wait for a fresh one-time-code window, up to 30 s).
    const SAVE_WAIT: Duration = Duration::from_secs(45);
    /// Everything pushed after the last delivery, at most.
    const DRAIN: Duration = Duration::from_secs(240);
    /// Simulator response delay around an in-window kill (> the 250 ms kill delay).
    const SLOW_MS: u64 = 400;

    /// The simulator's record of member `m` as the forward sync left it: the values of the
    /// member's first sighting (edit `m`).
    fn seed(m: u64) -> SimMember {
        let mut s = SimMember::new(loadgen::knvb_id(m), format!("Jan van der Berg{m}"));
        s.communication.email1 = loadgen::email(m, m);
        s.communication.mobile1 = loadgen::mobile(m, m).replace(' ', "");
        s.communication.telephone1 = "0207654321".into();
        s.address.street_name = "Dorpsstraat".into();
        s.address.address_number = (m % 200 + 1).to_string();
        s.address.zip_code = "1234AB".into();
        s.address.city = "Ergenshuizen".into();
        s.address.country_code = "NL".into();
        s.set_remark(3, (4000 + m).to_string());
        s.set_remark(8, "2025-10-30");
        s
    }

    /// A Dutch mobile number in one form for comparison: digits, `06…`.
    fn mobile_key(raw: &str) -> String {
        let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
        match digits.strip_prefix("31") {
            Some(rest) if digits.len() == 11 => format!("0{rest}"),
            _ => digits,
        }
    }

    fn same_value(field: &str, a: &str, b: &str) -> bool {
        match field {
            "mobile" => mobile_key(a) == mobile_key(b),
            _ => a.eq_ignore_ascii_case(b),
        }
    }

    /// The simulator's JSON key for a tracked field this test edits.
    fn sim_key(field: &str) -> &'static str {
        match field {
            "email" => "Email1",
            "mobile" => "Mobile1",
            other => panic!("this test edits e-mail and mobile only, not {other}"),
        }
    }

    /// Member number and edit number of a delivery (`LD00007`, `msg_…_00000123`).
    fn member_and_edit(d: &Delivery) -> (u64, u64) {
        let m = d.knvb_id[2..].parse().expect("member number");
        let k =
            d.id.rsplit('_')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("edit number");
        (m, k)
    }

    fn save_count(state: &SimState) -> usize {
        state.request_log().iter().filter(|r| r.is_save()).count()
    }

    fn pending_count(db: &Path) -> Option<i64> {
        let conn = rusqlite::Connection::open_with_flags(
            db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()?;
        conn.query_row(
            "SELECT COUNT(*) FROM rondo_club_change_detections WHERE status = 'pending'",
            [],
            |r| r.get(0),
        )
        .ok()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn changes_survive_sigkill_while_the_executor_pushes() {
        if browser_tests_skipped() {
            return;
        }
        let started = Instant::now();
        let dir = tempfile::tempdir().expect("temp dir");
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("service TMPDIR");
        let marker = tmp.display().to_string();
        // The service runs as its own process, on the system clock: so does the simulator.
        let sim = start_sim_on(rondo_reverse_sync::clock::system()).await;
        let state = sim.state();
        for m in 0..MEMBERS {
            state.seed_member(seed(m));
        }
        let seeds: HashMap<String, SimMember> = (0..MEMBERS)
            .map(|m| (loadgen::knvb_id(m), seed(m)))
            .collect();

        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let env = [
            ("TMPDIR", marker.clone()),
            ("RRS_SPORTLINK__BASE_URL", sim.base_url()),
            ("RRS_SPORTLINK__USERNAME", USER.into()),
            ("RRS_SPORTLINK__PASSWORD", PASSWORD.into()),
            ("RRS_SPORTLINK__OTP_SECRET", OTP_SECRET.into()),
            (
                "RRS_SPORTLINK__CHROMIUM_PATH",
                chromium_path().display().to_string(),
            ),
            ("RRS_SPORTLINK__MIN_MEMBER_INTERVAL_MS", "0".into()),
            ("RRS_SPORTLINK__MEMBER_JITTER_MS", "0".into()),
            (
                "RRS_SPORTLINK__ARTEFACT_DIR",
                dir.path().join("artefacts").display().to_string(),
            ),
        ];
        let mut service = Service {
            bin: std::path::PathBuf::from(env!("CARGO_BIN_EXE_rondo-reverse-sync")),
            db: dir.path().join("crash-executor.sqlite3"),
            port: free_port(),
            log: dir.path().join("serve.log"),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            child: None,
            starts: 0,
        };
        service.start(&client).await;

        let secret = WebhookSecret::parse(SECRET).expect("secret");
        let factory = Arc::new(DeliveryFactory::new(secret, MEMBERS, "crash-executor"));
        let url = format!("http://127.0.0.1:{}/webhooks/rondo-club", service.port);
        // First sightings (the baseline the forward sync left: the simulator holds it), in order.
        let mut deliveries: Vec<Delivery> = Vec::new();
        for k in 0..MEMBERS {
            let d = factory.delivery(k);
            deliver(&client, &url, &d).await;
            deliveries.push(d);
        }
        let deliveries: Arc<Vec<Delivery>> = Arc::new(
            deliveries
                .into_iter()
                .chain((MEMBERS..DELIVERIES).map(|k| factory.delivery(k)))
                .collect(),
        );

        // The edits, paced over SEND_OVER by eight senders that retry until acknowledged.
        let next = Arc::new(AtomicU64::new(MEMBERS));
        let acknowledged = Arc::new(Mutex::new((0..MEMBERS).collect::<Vec<u64>>()));
        let gap = SEND_OVER / u32::try_from(DELIVERIES - MEMBERS).unwrap_or(u32::MAX);
        let t0 = tokio::time::Instant::now();
        let mut senders = tokio::task::JoinSet::new();
        for _ in 0..CONCURRENCY {
            let (client, url, deliveries, next, acknowledged) = (
                client.clone(),
                url.clone(),
                deliveries.clone(),
                next.clone(),
                acknowledged.clone(),
            );
            senders.spawn(async move {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(delivery) = deliveries.get(k as usize) else {
                        break;
                    };
                    tokio::time::sleep_until(t0 + gap * u32::try_from(k - MEMBERS).unwrap_or(0))
                        .await;
                    deliver(&client, &url, delivery).await;
                    acknowledged.lock().await.push(k);
                }
            });
        }

        // Kill points by progress; at each, wait for the executor's next save to reach the
        // simulator and kill a moment later: between the save, the reload, the verification and
        // the database update.
        let mut thresholds: Vec<u64> = (0..KILLS)
            .map(|_| rand::thread_rng().gen_range(DELIVERIES / 10..DELIVERIES * 8 / 10))
            .collect();
        thresholds.sort_unstable();
        let (mut kills, mut in_window, mut held_kills) = (0, 0, 0);
        let mut early = 0;
        for threshold in thresholds {
            let deadline = Instant::now() + Duration::from_secs(120);
            while (acknowledged.lock().await.len() as u64) < threshold {
                assert!(Instant::now() < deadline, "no progress towards {threshold}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // The first kill lands inside the window between Sportlink's save and our record
            // of it by construction: the simulator stores the save and holds its answer until
            // the service is dead. The others land near a save, at random: mostly inside that
            // window, every fourth anywhere after it. On an idle machine a whole page takes
            // ≈ 150 ms, so for those the simulator answers slowly (each request of the reload
            // and the verification after the save waits SLOW_MS): the window is then wider than
            // the delay, whatever the machine's speed.
            let saved = if kills == 0 {
                let before = state.held_saves();
                state.update_faults(|f| f.hold_save_answers = true);
                let deadline = Instant::now() + SAVE_WAIT;
                while state.held_saves() == before {
                    assert!(
                        Instant::now() < deadline,
                        "no save reached the simulator within {SAVE_WAIT:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                held_kills += 1;
                true
            } else {
                let window = if kills % 4 == 3 { 1_500 } else { 250 };
                if window == 250 {
                    state.update_faults(|f| f.slow_response_ms = SLOW_MS);
                }
                let saves = save_count(&state);
                let deadline = Instant::now() + SAVE_WAIT;
                while save_count(&state) == saves && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                let saved = save_count(&state) > saves;
                if saved && window == 250 {
                    in_window += 1;
                }
                let delay = rand::thread_rng().gen_range(0..window);
                tokio::time::sleep(Duration::from_millis(delay)).await;
                saved
            };
            let killed_pid = service.kill().await.expect("a running service");
            kills += 1;
            let killed_member = saved
                .then(|| state.request_log().into_iter().rev().find(|r| r.is_save()))
                .flatten()
                .and_then(|r| r.member_id.clone());
            state.update_faults(|f| {
                f.slow_response_ms = 0;
                f.hold_save_answers = false;
            });
            service.start(&client).await;
            // The restarted service removed the killed one's Chromium before its executor
            // started, and says so in its log.
            let profile = format!("{}{killed_pid}-", orphans::PROFILE_PREFIX);
            let left = orphans::processes_naming(&profile);
            assert!(
                left.is_empty(),
                "Chromium of the killed service (pid {killed_pid}) still runs after the restart: \
                 {left:?}"
            );
            let dirs_left = std::fs::read_dir(&tmp)
                .expect("TMPDIR")
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&profile))
                .count();
            assert_eq!(
                dirs_left, 0,
                "the killed service's profile is left in TMPDIR"
            );
            // The member whose save the kill interrupted gets its next edit at once (its
            // sender will deliver it again later: a duplicate), before the restarted executor
            // reaches it: the unrecorded write is then an earlier value of a newer change's
            // chain, which the conflict guard must recognise as our own.
            let upcoming = killed_member
                .and_then(|id| id[2..].parse::<u64>().ok())
                .and_then(|m| {
                    (next.load(Ordering::Relaxed)..DELIVERIES).find(|k| k % MEMBERS == m)
                });
            if let Some(k) = upcoming {
                deliver(&client, &url, &deliveries[k as usize]).await;
                early += 1;
            }
        }
        while let Some(joined) = senders.join_next().await {
            joined.expect("sender");
        }
        let sent_in = t0.elapsed();

        // Let the executor finish what is pending, then one last SIGKILL.
        let deadline = Instant::now() + DRAIN;
        loop {
            if pending_count(&service.db) == Some(0) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "changes still pending {DRAIN:?} after the last delivery; log:\n{}",
                std::fs::read_to_string(&service.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        service.kill().await;
        // No restart after the last kill: the test runs the same sweep itself.
        let sweep_dir = tmp.clone();
        let reaped_at_end =
            tokio::task::spawn_blocking(move || orphans::reap_orphaned_browsers(&sweep_dir))
                .await
                .expect("sweep")
                .processes;
        assert!(
            orphans::processes_naming(&marker).is_empty(),
            "Chromium survived the sweep: {:?}",
            orphans::processes_naming(&marker)
        );
        let log = std::fs::read_to_string(&service.log).unwrap_or_default();
        let sweeps = log
            .lines()
            .filter(|l| l.contains("removed Chromium left behind by an executor that was killed"))
            .count();
        assert!(
            sweeps >= in_window + held_kills,
            "{in_window} kills hit a running browser, but the restarted service reported only \
             {sweeps} sweeps; log:\n{log}"
        );
        assert!(kills >= 3, "only {kills} kills");

        let acknowledged = acknowledged.lock().await.clone();
        assert_eq!(acknowledged.len() as u64, DELIVERIES);
        let delivery_check = verify(&service.db, &deliveries, &acknowledged).await;
        let (change_check, unrecorded) =
            verify_changes(&service.db, &state, &seeds, &deliveries).await;
        assert_eq!(held_kills, 1, "the kill inside the save→record window");
        assert!(
            unrecorded > 0,
            "a kill landed between a save and its record (the save's answer was held), yet no \
             save went unrecorded: the crash window was not exercised"
        );
        eprintln!(
            "crash test with the executor: {kills} SIGKILLs ({held_kills} with a save's answer \
             held, {in_window} more right after a save), \
             {early} edits sent early, {} starts, {sweeps} start-up sweeps of orphaned Chromium, \
             {reaped_at_end} processes reaped by the test after the last kill; \
             deliveries sent in {:.1} s; {delivery_check}; {change_check}; {} saves reached the simulator; {:.1} s in all",
            service.starts,
            sent_in.as_secs_f64(),
            save_count(&state),
            started.elapsed().as_secs_f64()
        );
        sim.shutdown().await;
    }

    async fn verify_changes(
        db: &Path,
        state: &SimState,
        seeds: &HashMap<String, SimMember>,
        deliveries: &[Delivery],
    ) -> (String, usize) {
        let store = {
            let db = db.to_path_buf();
            tokio::task::spawn_blocking(move || {
                Store::open(&db, Arc::new(Catalogue::builtin()), StoreOptions::default())
            })
            .await
            .expect("join")
            .expect("open the database")
        };
        let changes: Vec<ChangeRecord> = store
            .read(|db| db.list_changes(&[], None, u32::MAX, 0))
            .await
            .expect("changes");
        assert!(!changes.is_empty(), "the edits made changes");

        // Every change in a valid end state, with a reason where the state needs one.
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for c in &changes {
            *counts.entry(c.status.as_str()).or_default() += 1;
            match c.status {
                ChangeStatus::Synced => {
                    assert!(c.synced_at.is_some(), "synced without a time: {c:?}")
                }
                ChangeStatus::Superseded => assert!(
                    c.superseded_by.is_some() && c.status_reason.is_some(),
                    "superseded without its successor or reason: {c:?}"
                ),
                other => panic!(
                    "change {} ended {}: nobody edits Sportlink here and every value is valid \
                     ({:?}, {:?})",
                    c.id,
                    other.as_str(),
                    c.status_reason,
                    c.last_error
                ),
            }
        }

        // Values each member's edits asked for, per simulator key.
        let mut asked: HashMap<(String, &str), HashSet<String>> = HashMap::new();
        for d in deliveries {
            let (m, k) = member_and_edit(d);
            asked
                .entry((d.knvb_id.clone(), "Email1"))
                .or_default()
                .insert(loadgen::email(m, k).to_lowercase());
            asked
                .entry((d.knvb_id.clone(), "Mobile1"))
                .or_default()
                .insert(mobile_key(&loadgen::mobile(m, k)));
        }

        // Nothing written that no edit asked for.
        let mut saves = 0;
        for (knvb_id, seed) in seeds {
            for save in state.saves_for(knvb_id) {
                saves += 1;
                for (key, value) in &save.fields {
                    let allowed = match key.as_str() {
                        "Email1" => {
                            asked[&(knvb_id.clone(), "Email1")].contains(&value.to_lowercase())
                        }
                        "Mobile1" => {
                            asked[&(knvb_id.clone(), "Mobile1")].contains(&mobile_key(value))
                        }
                        other => seed.text_field(other).is_none_or(|s| s == value),
                    };
                    assert!(
                        allowed,
                        "{knvb_id}: a save wrote {key} = {value:?}, which no edit asked for"
                    );
                }
            }
        }

        // Synced means Sportlink received the value; the newest synced value is what it holds,
        // and that is the member's newest edit.
        let mut newest_synced: HashMap<(String, FieldName), &ChangeRecord> = HashMap::new();
        for c in changes.iter().filter(|c| c.status == "synced") {
            let key = sim_key(&c.field);
            let received = state.saves_for(&c.knvb_id).iter().any(|s| {
                s.status < 300
                    && s.field(key)
                        .is_some_and(|v| same_value(&c.field, v, &c.new_value))
            });
            assert!(
                received,
                "change {} ({} {} = {:?}) is synced, but Sportlink never received that value",
                c.id, c.knvb_id, c.field, c.new_value
            );
            let slot = newest_synced
                .entry((c.knvb_id.clone(), c.field.clone()))
                .or_insert(c);
            if c.id > slot.id {
                *slot = c;
            }
        }
        let mut newest_edit: HashMap<String, u64> = HashMap::new();
        for d in deliveries {
            let (_, k) = member_and_edit(d);
            let e = newest_edit.entry(d.knvb_id.clone()).or_insert(k);
            *e = (*e).max(k);
        }
        for (knvb_id, seed) in seeds {
            let m: u64 = knvb_id[2..].parse().expect("member number");
            let now = state.member(knvb_id).expect("member still there");
            let k = newest_edit[knvb_id];
            assert!(
                same_value("email", &now.communication.email1, &loadgen::email(m, k))
                    && same_value("mobile", &now.communication.mobile1, &loadgen::mobile(m, k)),
                "{knvb_id}: Sportlink holds {:?} / {:?}, the newest edit is {:?} / {:?}",
                now.communication.email1,
                now.communication.mobile1,
                loadgen::email(m, k),
                loadgen::mobile(m, k)
            );
            for field in ["email", "mobile"] {
                if let Some(c) =
                    newest_synced.get(&(knvb_id.clone(), FieldName::parse(field).unwrap()))
                {
                    let held = now.text_field(sim_key(field)).unwrap_or_default();
                    assert!(
                        same_value(field, held, &c.new_value),
                        "{knvb_id}: newest synced {field} is {:?}, Sportlink holds {held:?}",
                        c.new_value
                    );
                }
            }
            let mut expected = seed.clone();
            expected.communication.email1 = now.communication.email1.clone();
            expected.communication.mobile1 = now.communication.mobile1.clone();
            assert_eq!(
                now, expected,
                "{knvb_id}: Sportlink changed beyond the edited fields"
            );
        }
        // Saves the service made but never recorded (killed between the save and the record):
        // the case where a later run must recognise its own write in Sportlink.
        let unrecorded = seeds
            .keys()
            .flat_map(|knvb_id| state.saves_for(knvb_id))
            .filter(|save| save.status < 300)
            .filter(|save| {
                let knvb_id = save.member_id.clone().unwrap_or_default();
                let Some(email) = save.field("Email1") else {
                    return false;
                };
                !changes.iter().any(|c| {
                    c.knvb_id == knvb_id
                        && c.field == "email"
                        && c.status == "synced"
                        && same_value("email", email, &c.new_value)
                })
            })
            .count();
        let summary = format!(
            "{} changes {counts:?}, {saves} saves checked, {unrecorded} saved but not recorded \
             before a kill",
            changes.len()
        );
        (summary, unrecorded)
    }
}

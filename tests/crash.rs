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
use rondo_reverse_sync::loadgen::{Delivery, DeliveryFactory};
use rondo_reverse_sync::store::{Store, StoreOptions};
use rondo_reverse_sync::webhook::WebhookSecret;

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
        let child = Command::new(&self.bin)
            .arg("serve")
            .env("RRS_DATABASE__PATH", &self.db)
            .env("RRS_WEBHOOK__SECRET", SECRET)
            .env("RRS_SERVER__LISTEN", format!("127.0.0.1:{}", self.port))
            .env("RRS_LOG__LEVEL", "warn")
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

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("SIGKILL");
            child.wait().await.expect("reap");
        }
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

    // Kill at random moments while deliveries are flowing, restart each time.
    let mut kills = 0;
    while kills < KILLS {
        let pause = rand::thread_rng().gen_range(50..400);
        tokio::time::sleep(Duration::from_millis(pause)).await;
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
    assert_eq!(rows, DELIVERIES, "one row per delivery, none twice");
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

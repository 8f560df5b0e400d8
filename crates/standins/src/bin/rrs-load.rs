//! Webhook ingest benchmark. In one run, against
//!
//! 1. the service (in this process, started as `serve` starts it, on a temporary database),
//! 2. a bare axum handler that reads the body and answers 204,
//! 3. optionally the real `rondo-reverse-sync serve` binary in its own process (for its RSS),
//!
//! it sends unique signed `person.updated` deliveries over keep-alive connections at a fixed
//! concurrency, then runs the service at half its measured maximum rate for p50/p99, and counts
//! the delivery rows afterwards. Numbers go to stdout, a JSON summary last. See
//! docs/benchmarks.md.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use base64::Engine as _;
use clap::Parser;
use rand::RngCore as _;
use serde_json::json;

use rondo_reverse_sync::catalogue::Catalogue;
use rondo_reverse_sync::config::{Secret, Settings};
use rondo_reverse_sync::startup;
use rondo_reverse_sync::store::{Store, StoreOptions};
use rondo_reverse_sync::webhook::WebhookSecret;
use rrs_standins::loadgen::{self, DeliveryFactory, LoadPlan, LoadReport};

#[derive(Parser)]
#[command(
    name = "rrs-load",
    about = "Webhook ingest benchmark for rondo-reverse-sync"
)]
struct Args {
    /// Deliveries per maximum-rate run.
    #[arg(long, default_value_t = 20_000)]
    deliveries: u64,
    /// Requests in flight at once (keep-alive connections).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Distinct members the edits are spread over.
    #[arg(long, default_value_t = 500)]
    members: u64,
    /// Seconds of the half-load (rate-limited) run.
    #[arg(long, default_value_t = 5)]
    half_load_secs: u64,
    /// Worker threads of the in-process server runtime (the real binary uses one per core).
    #[arg(long)]
    server_threads: Option<usize>,
    /// The `rondo-reverse-sync` binary to measure in its own process; defaults to the one next
    /// to this program, if present.
    #[arg(long)]
    serve_bin: Option<PathBuf>,
    /// Skip the run against the real binary.
    #[arg(long)]
    no_external: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The service logs as it would in production (a line per webhook at info), into a sink.
    tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_writer(std::io::sink)
        .init();

    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.server_threads.unwrap_or(cores))
        .thread_name("server")
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name("client")
        .enable_all()
        .build()?;

    let dir = std::env::temp_dir().join(format!("rrs-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = client_rt.block_on(bench(&args, &server_rt, &dir));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn random_secret() -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

fn settings(db: &Path, secret: &str) -> Settings {
    let mut settings = Settings::default();
    settings.database.path = db.to_path_buf();
    settings.webhook.secret = Secret::new(secret);
    settings
}

fn line(name: &str, r: &LoadReport) {
    println!(
        "{name:<28} {:>6} ok {:>4} failed in {:>6.2} s = {:>8.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
        r.ok,
        r.failed,
        r.elapsed.as_secs_f64(),
        r.throughput(),
        ms(r.quantile(0.5)),
        ms(r.quantile(0.99)),
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn bench(args: &Args, server_rt: &tokio::runtime::Runtime, dir: &Path) -> anyhow::Result<()> {
    let secret_text = random_secret();
    let secret = WebhookSecret::parse(&secret_text).context("generated secret")?;
    let client = loadgen::client(args.concurrency)?;

    // The service, started the way `serve` starts it.
    let db = dir.join("service.sqlite3");
    let service_settings = settings(&db, &secret_text);
    let catalogue = Arc::new(Catalogue::builtin());
    let (service_port, store, stop_service) = server_rt
        .spawn(async move {
            // As `migrate` does; the service refuses a missing database.
            drop(rondo_reverse_sync::open_store(
                &service_settings,
                catalogue.clone(),
            )?);
            let store =
                rondo_reverse_sync::open_existing_store(&service_settings, catalogue.clone())?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let service = startup::launch(
                &service_settings,
                catalogue,
                listener,
                async {
                    let _ = stopped.await;
                },
                rondo_reverse_sync::clock::system(),
            )
            .await?;
            let port = service.port();
            tokio::spawn(service.wait());
            anyhow::Ok((port, store, stop))
        })
        .await??;

    // The bare handler: reads the body, answers 204.
    let bare_port = server_rt
        .spawn(async {
            let app = axum::Router::new().route(
                "/webhooks/rondo-club",
                post(|_body: Bytes| async { StatusCode::NO_CONTENT }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let port = listener.local_addr()?.port();
            tokio::spawn(async move { axum::serve(listener, app).await });
            anyhow::Ok(port)
        })
        .await??;

    let url = |port: u16| format!("http://127.0.0.1:{port}/webhooks/rondo-club");
    let factory = |tag: &str| Arc::new(DeliveryFactory::new(secret.clone(), args.members, tag));
    let full = |port: u16| LoadPlan {
        url: url(port),
        total: args.deliveries,
        concurrency: args.concurrency,
        rate: None,
    };

    println!(
        "rrs-load: {} deliveries per run, concurrency {}, {} members, {} cores",
        args.deliveries,
        args.concurrency,
        args.members,
        cores()
    );
    let mut acknowledged = Vec::new();
    // Warm-up: first sightings of every member (baselines), connections, page cache.
    let warm = LoadPlan {
        total: args.members.max(1000),
        ..full(service_port)
    };
    let warmup = loadgen::run_load(&client, factory("warm"), &warm).await;
    line("service warm-up", &warmup);
    acknowledged.extend(warmup.acknowledged.iter().cloned());
    let _ = loadgen::run_load(
        &client,
        factory("bwarm"),
        &LoadPlan {
            total: 1000,
            ..full(bare_port)
        },
    )
    .await;

    let service = loadgen::run_load(&client, factory("max"), &full(service_port)).await;
    line("service, max rate", &service);
    acknowledged.extend(service.acknowledged.iter().cloned());
    let bare = loadgen::run_load(&client, factory("bare"), &full(bare_port)).await;
    line("bare 204 handler, max rate", &bare);
    let ratio = service.throughput() / bare.throughput().max(1e-9);
    println!("ratio service/bare          {ratio:.3}");

    let half_rate = service.throughput() / 2.0;
    let half_plan = LoadPlan {
        url: url(service_port),
        total: (half_rate * args.half_load_secs as f64).round().max(1.0) as u64,
        concurrency: args.concurrency,
        rate: Some(half_rate),
    };
    let half = loadgen::run_load(&client, factory("half"), &half_plan).await;
    line(&format!("service at {half_rate:.0}/s"), &half);
    acknowledged.extend(half.acknowledged.iter().cloned());

    let (rows, present) = count_rows(&store, acknowledged.clone()).await?;
    let _ = stop_service.send(());
    println!(
        "rows: {rows} delivery rows; {present} of {} acknowledged deliveries present; lost {}",
        acknowledged.len(),
        acknowledged.len() as u64 - present
    );

    let external = match external_binary(args) {
        Some(bin) if !args.no_external => Some(run_external(args, &bin, dir, &client).await?),
        _ => None,
    };

    let summary = json!({
        "cores": cores(),
        "deliveries_per_run": args.deliveries,
        "concurrency": args.concurrency,
        "members": args.members,
        "service_per_s": service.throughput().round(),
        "service_failed": service.failed,
        "bare_per_s": bare.throughput().round(),
        "ratio": (ratio * 1000.0).round() / 1000.0,
        "half_load_rate_per_s": half_rate.round(),
        "half_load_p50_ms": ms(half.quantile(0.5)),
        "half_load_p99_ms": ms(half.quantile(0.99)),
        "half_load_failed": half.failed,
        "acknowledged": acknowledged.len(),
        "rows": rows,
        "lost": acknowledged.len() as u64 - present,
        "external": external,
    });
    println!("{summary}");
    if acknowledged.len() as u64 != present {
        bail!("acknowledged deliveries are missing from the database");
    }
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, usize::from)
}

/// Total delivery rows, and how many of `ids` are among them.
async fn count_rows(store: &Store, ids: Vec<String>) -> anyhow::Result<(u64, u64)> {
    Ok(store
        .read(move |db| {
            let mut present = 0;
            for id in &ids {
                if db.delivery(id)?.is_some() {
                    present += 1;
                }
            }
            Ok((db.delivery_count()?, present))
        })
        .await?)
}

fn external_binary(args: &Args) -> Option<PathBuf> {
    args.serve_bin.clone().or_else(|| {
        let sibling = std::env::current_exe()
            .ok()?
            .with_file_name("rondo-reverse-sync");
        sibling.is_file().then_some(sibling)
    })
}

/// `VmRSS` and `VmHWM` of a process, in kB.
fn rss_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The real binary in its own process: RSS idle, throughput and RSS under load, rows after
/// SIGKILL (a 2xx means committed, so a kill loses nothing).
async fn run_external(
    args: &Args,
    bin: &Path,
    dir: &Path,
    client: &reqwest::Client,
) -> anyhow::Result<serde_json::Value> {
    let secret_text = random_secret();
    let secret = WebhookSecret::parse(&secret_text)?;
    let db = dir.join("external.sqlite3");
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let log = std::fs::File::create(dir.join("serve.log"))?;
    let mut child = tokio::process::Command::new(bin)
        .arg("serve")
        .env("RRS_DATABASE__PATH", &db)
        .env("RRS_WEBHOOK__SECRET", &secret_text)
        .env("RRS_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("RRS_LOG__LEVEL", "info")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id().context("child pid")?;
    let health = format!("http://127.0.0.1:{port}/healthz");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get(&health).send().await {
            if r.status().is_success() {
                break;
            }
        }
        if Instant::now() > deadline {
            bail!(
                "{} serve did not answer /healthz within 20 s",
                bin.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Idle: after start-up settles (nothing to wait on but time: this is a measurement).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (idle_rss, _) = rss_kb(pid).context("reading the child's RSS")?;

    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some((rss, _)) = rss_kb(pid) {
                    peak = peak.max(rss);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        })
    };
    let url = format!("http://127.0.0.1:{port}/webhooks/rondo-club");
    let factory = Arc::new(DeliveryFactory::new(secret, args.members, "ext"));
    let report = loadgen::run_load(
        client,
        factory,
        &LoadPlan {
            url,
            total: args.deliveries,
            concurrency: args.concurrency,
            rate: None,
        },
    )
    .await;
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak_rss = sampler.await.unwrap_or(0);
    let (after_rss, hwm) = rss_kb(pid).unwrap_or((0, 0));
    line("real binary, max rate", &report);
    println!(
        "real binary RSS: idle {:.1} MB, peak during load {:.1} MB (VmHWM {:.1} MB), after {:.1} MB",
        idle_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        after_rss as f64 / 1024.0
    );
    child.start_kill()?;
    child.wait().await?;

    let store = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || {
            Store::open(&db, Arc::new(Catalogue::builtin()), StoreOptions::default())
        })
        .await??
    };
    let (rows, present) = count_rows(&store, report.acknowledged.clone()).await?;
    println!(
        "real binary rows after SIGKILL: {rows}; {present} of {} acknowledged present",
        report.acknowledged.len()
    );
    if present != report.acknowledged.len() as u64 {
        bail!("the real binary lost acknowledged deliveries");
    }
    Ok(json!({
        "per_s": report.throughput().round(),
        "failed": report.failed,
        "p50_ms": ms(report.quantile(0.5)),
        "p99_ms": ms(report.quantile(0.99)),
        "idle_rss_mb": idle_rss as f64 / 1024.0,
        "peak_rss_mb": peak_rss as f64 / 1024.0,
        "hwm_mb": hwm as f64 / 1024.0,
        "rows": rows,
        "lost": report.acknowledged.len() as u64 - present,
    }))
}

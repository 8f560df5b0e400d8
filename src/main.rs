//! The command line: one verb per job. Exit codes: 0 ok, 1 failed, 2 bad usage or configuration.
//! One file although it is longer than most: the verbs' definitions and their thin wiring to the
//! library read best side by side (each verb's work is in the library).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use rondo_reverse_sync::clock;
use rondo_reverse_sync::config::{ConfigError, Needs, Settings};
use rondo_reverse_sync::domain::KnvbId;
use rondo_reverse_sync::poll;
use rondo_reverse_sync::sportlink;
use rondo_reverse_sync::{load_catalogue, open_existing_store, open_store, startup, telemetry};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "rondo-reverse-sync", version, about, long_about = None)]
struct Cli {
    /// Configuration file (TOML); settings can also come from RRS_<SECTION>__<KEY> variables.
    #[arg(long, short, global = true, env = "RRS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: receive webhooks until SIGTERM or SIGINT. The database must exist
    /// (`migrate` creates it); a missing one is refused rather than silently started empty.
    Serve {
        /// Create the database if it is missing (a first start without `migrate`).
        #[arg(long)]
        create_database: bool,
    },
    /// Create or upgrade the database schema, then report its version.
    Migrate,
    /// Show change counts by status, the last detection time and the schema version.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Poll Rondo Club now and detect changes (people modified since the last poll).
    Detect {
        /// Only this member (by the Rondo Club post the database knows for it).
        #[arg(long)]
        knvb_id: Option<String>,
        /// Report what would be detected; record nothing, leave the watermark.
        #[arg(long)]
        dry_run: bool,
        /// Every person, whatever their modified date (finds meta-only edits).
        #[arg(long, conflicts_with = "knvb_id")]
        full: bool,
    },
    /// Import every person from Rondo Club as the starting state, without emitting changes.
    Baseline,
    /// Send one test alert through every configured alert transport (e-mail, webhook) and report.
    TestAlert,
    /// Push the pending changes into Sportlink now and report per member.
    Sync {
        /// Only this member (KNVB id).
        #[arg(long)]
        knvb_id: Option<String>,
        /// Log in, open the forms and read the values, but cancel instead of saving.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check the configuration and that the Sportlink login works.
    Check {
        /// Also look at this member's Sportlink pages against the field catalogue, read-only
        /// (never clicks Wijzig, never saves): headings, buttons, inputs, fetched values, and
        /// suggestions where the page no longer matches.
        #[arg(long)]
        member: Option<String>,
    },
    /// Compare every member's tracked fields in Sportlink (read-only: never "Wijzig", never a
    /// save) with Rondo Club and report per member and field. Resumes an unfinished audit; Ctrl-C
    /// stops between members (run it again to resume). Not while `serve` runs (it holds the
    /// Sportlink account): use the admin API there.
    Audit {
        /// Cancel an unfinished audit and start a new one.
        #[arg(long)]
        new: bool,
        /// Cancel the unfinished audit and exit.
        #[arg(long, conflicts_with = "new")]
        cancel: bool,
        /// Write the audit's rows as CSV to this file at the end.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
    },
    /// What the admin API's replay and requeue do, for an operator on the server: run a stored
    /// delivery through detection again, re-detect a member from Rondo Club, or put a change
    /// back in the queue. A running service's executor picks requeued work up on its next round.
    Replay {
        #[command(subcommand)]
        what: ReplayWhat,
    },
}

#[derive(Subcommand)]
enum ReplayWhat {
    /// Run a stored webhook delivery through detection again (source `replay`).
    Delivery {
        /// The delivery's webhook-id.
        id: String,
    },
    /// Fetch one member from Rondo Club now and run it through detection (source `replay`).
    Member {
        /// The member's KNVB id.
        knvb_id: String,
    },
    /// Put a failed, skipped or conflict-lost change back in the queue.
    Change {
        /// The change's id (as `status`, the operator page and the API show it).
        id: i64,
    },
}

impl Command {
    fn needs(&self) -> Needs {
        match self {
            Command::Serve { .. } => Needs {
                webhook: true,
                ..Needs::DATABASE_ONLY
            },
            Command::Migrate | Command::Status { .. } | Command::TestAlert => Needs::DATABASE_ONLY,
            Command::Detect { .. } | Command::Baseline => Needs {
                rondo_club: true,
                ..Needs::DATABASE_ONLY
            },
            Command::Audit { cancel: true, .. } => Needs::DATABASE_ONLY,
            Command::Sync { .. } | Command::Check { .. } | Command::Audit { .. } => Needs {
                sportlink: true,
                ..Needs::DATABASE_ONLY
            },
            Command::Replay {
                what: ReplayWhat::Member { .. },
            } => Needs {
                rondo_club: true,
                ..Needs::DATABASE_ONLY
            },
            Command::Replay { .. } => Needs::DATABASE_ONLY,
        }
    }
}

/// A failure with the exit code it deserves.
enum Failure {
    Usage(String),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Failed(e)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("rondo-reverse-sync: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(error)) => {
            eprintln!("rondo-reverse-sync: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let settings =
        Settings::load(cli.config.as_deref()).map_err(|e| Failure::Usage(e.to_string()))?;
    settings
        .validate(cli.command.needs())
        .map_err(|e| Failure::Usage(e.to_string()))?;
    telemetry::init(&settings.log);
    let catalogue = Arc::new(load_catalogue(&settings).map_err(|e| Failure::Usage(e.to_string()))?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve { create_database } => {
                if create_database {
                    let settings = settings.clone();
                    let catalogue = catalogue.clone();
                    tokio::task::spawn_blocking(move || open_store(&settings, catalogue))
                        .await
                        .context("creating the database")??;
                }
                serve(&settings, catalogue).await
            }
            Command::Migrate => {
                let store = open_store(&settings, catalogue)?;
                let info = store.read(|db| db.schema_info()).await?;
                println!(
                    "database {} is at schema version {}",
                    settings.database.path.display(),
                    info.version
                );
                Ok(())
            }
            Command::Status { json } => status(&settings, catalogue, json).await,
            Command::TestAlert => test_alert(&settings).await,
            Command::Detect {
                knvb_id,
                dry_run,
                full,
            } => {
                let knvb_id = knvb_id
                    .map(|raw| KnvbId::parse(&raw))
                    .transpose()
                    .map_err(|e| Failure::Usage(e.to_string()))?;
                let request = poll::PollRequest {
                    mode: if full {
                        poll::PollMode::Full
                    } else {
                        poll::PollMode::Incremental
                    },
                    knvb_id,
                    dry_run,
                };
                poll_verb(&settings, catalogue, Some(request)).await
            }
            Command::Baseline => poll_verb(&settings, catalogue, None).await,
            Command::Sync { knvb_id, dry_run } => {
                sync(&settings, catalogue, knvb_id.as_deref(), dry_run).await
            }
            Command::Replay { what } => replay(&settings, catalogue, what).await,
            Command::Audit { new, cancel, csv } => {
                audit(&settings, catalogue, new, cancel, csv.as_deref()).await
            }
            Command::Check { member } => {
                let member = member
                    .as_deref()
                    .map(rondo_reverse_sync::domain::KnvbId::parse)
                    .transpose()
                    .map_err(|e| Failure::Usage(format!("--member: {e}")))?;
                // Rondo Club is optional for `check` (a site may rely on webhooks alone), but
                // when it is configured its application password must really work.
                if !settings.rondo_club.base_url.trim().is_empty() {
                    settings
                        .validate(Needs {
                            rondo_club: true,
                            ..Needs::DATABASE_ONLY
                        })
                        .map_err(|e| Failure::Usage(e.to_string()))?;
                    let client = poll::RondoClient::new(&settings.rondo_club, &settings.poll)
                        .map_err(|e| Failure::Usage(e.to_string()))?;
                    client.whoami().await.context("Rondo Club credentials")?;
                    println!("Rondo Club: the application password works");
                }
                sportlink::setup::check_login(&settings, clock::system())
                    .await
                    .context("Sportlink login")?;
                println!("configuration valid; Sportlink login works");
                if let Some(member) = member {
                    let check = sportlink::setup::check_member(&settings, &catalogue, &member, clock::system())
                        .await
                        .context("checking the member's pages")?;
                    println!("{check}");
                    if !check.matches_catalogue() {
                        return Err(anyhow::anyhow!(
                            "member {member}: Sportlink's pages do not match the field catalogue (see above)"
                        )
                        .into());
                    }
                }
                Ok(())
            }
        }
    })
}

/// Serves until SIGTERM/SIGINT: stops accepting, finishes the requests in flight, joins every
/// task. The poller runs when Rondo Club is configured, the executor when Sportlink is; the
/// admin API answers 503 for a part that is not.
async fn serve(
    settings: &Settings,
    catalogue: Arc<rondo_reverse_sync::catalogue::Catalogue>,
) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(settings.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.server.listen))?;
    let service = startup::launch(
        settings,
        catalogue,
        listener,
        startup::shutdown_signal(),
        clock::system(),
    )
    .await
    .map_err(|e| match e.downcast_ref::<ConfigError>() {
        Some(config) => Failure::Usage(config.to_string()),
        None => Failure::Failed(e),
    })?;
    tracing::info!(address = %settings.server.listen, port = service.port(), "listening");
    service.wait().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn status(
    settings: &Settings,
    catalogue: Arc<rondo_reverse_sync::catalogue::Catalogue>,
    json: bool,
) -> Result<(), Failure> {
    let store = open_existing_store(settings, catalogue)?;
    let (counts, last, schema, watermark, delivery, invalid) = store
        .read(|db| {
            Ok((
                db.change_counts()?,
                db.last_detection_time()?,
                db.schema_info()?,
                db.watermark()?,
                db.last_delivery()?,
                db.invalid_knvb_ids(20)?,
            ))
        })
        .await?;
    if json {
        let value = serde_json::json!({
            "changes": counts,
            "last_detection_at": last,
            "poll_watermark": watermark,
            "schema_version": schema.version,
            "last_delivery": delivery,
            "invalid_knvb_ids": invalid,
        });
        println!("{value:#}");
    } else {
        println!("schema version      {}", schema.version);
        println!(
            "last detection      {}",
            last.map_or("never".into(), |t| t.to_rfc3339())
        );
        println!(
            "poll watermark      {}",
            watermark.map_or("none".into(), |t| t.to_rfc3339())
        );
        match &delivery {
            None => println!("last delivery       none received"),
            Some(d) => println!(
                "last delivery       {} {} {}{}{} ({})",
                d.received_at.to_rfc3339(),
                d.outcome,
                d.event_type.as_deref().unwrap_or("-"),
                d.knvb_id
                    .as_deref()
                    .map_or(String::new(), |k| format!(" member {k}")),
                d.detail
                    .as_deref()
                    .map_or(String::new(), |t| format!(": {t}")),
                d.id
            ),
        }
        for person in &invalid {
            println!(
                "invalid knvb-id     post {} holds {:?} (seen via {}, {})",
                person.wp_post_id,
                person.value,
                person.source,
                person.last_seen_at.to_rfc3339()
            );
        }
        println!("changes pending     {}", counts.pending);
        println!("changes failed      {}", counts.failed);
        println!("changes conflict    {}", counts.conflict_lost);
        println!("changes skipped     {}", counts.skipped);
        println!("changes superseded  {}", counts.superseded);
        println!("changes synced      {}", counts.synced);
    }
    Ok(())
}

/// `detect` (a request) or `baseline` (none), with a short report.
async fn poll_verb(
    settings: &Settings,
    catalogue: Arc<rondo_reverse_sync::catalogue::Catalogue>,
    request: Option<poll::PollRequest>,
) -> Result<(), Failure> {
    let store = open_existing_store(settings, catalogue)?;
    let client = poll::RondoClient::new(&settings.rondo_club, &settings.poll)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let cancel = tokio_util::sync::CancellationToken::new();
    let on_signal = cancel.clone();
    let signals = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let outcome = match request {
        Some(request) => {
            poll::run_poll_until(&store, &client, &settings.poll, request, &cancel).await
        }
        None => poll::run_baseline(&store, &client, &cancel).await,
    };
    signals.abort();
    let report = outcome.map_err(|e| Failure::Failed(e.into()))?;
    print!("{}", report.summary());
    Ok(())
}

async fn sync(
    settings: &Settings,
    catalogue: Arc<rondo_reverse_sync::catalogue::Catalogue>,
    knvb_id: Option<&str>,
    dry_run: bool,
) -> Result<(), Failure> {
    let only = knvb_id
        .map(KnvbId::parse)
        .transpose()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let store = open_existing_store(settings, catalogue)?;
    // Ctrl-C stops between members; the browser is closed either way.
    let cancel = CancellationToken::new();
    let on_ctrl_c = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        })
    };
    let report = sportlink::setup::sync(
        settings,
        store,
        only.as_ref(),
        dry_run,
        &cancel,
        clock::system(),
    )
    .await;
    on_ctrl_c.abort();
    let report = report.context("sync")?;
    print!("{}", sportlink::setup::render_report(&report));
    if sportlink::setup::report_failed(&report) {
        return Err(Failure::Failed(anyhow::anyhow!(
            "not everything was pushed"
        )));
    }
    Ok(())
}

/// `audit`: run or resume the divergence audit through a CLI executor, then print its counts
/// (and write the CSV when asked). Exit 1 when it failed.
async fn audit(
    settings: &Settings,
    catalogue: Arc<rondo_reverse_sync::catalogue::Catalogue>,
    new: bool,
    cancel_only: bool,
    csv: Option<&std::path::Path>,
) -> Result<(), Failure> {
    use rondo_reverse_sync::audit;
    let store = open_existing_store(settings, catalogue)?;
    if cancel_only {
        let cancelled = store
            .write(|c| match c.active_audit()? {
                Some(run) => c
                    .cancel_audit(run.id, chrono::Utc::now())
                    .map(|_| Some(run.id)),
                None => Ok(None),
            })
            .await?;
        match cancelled {
            Some(id) => println!("audit {id} cancelled"),
            None => println!("no unfinished audit"),
        }
        return Ok(());
    }
    // Rondo Club is read fresh when it is configured; else the service's last seen state.
    let rondo = if settings.rondo_club.base_url.trim().is_empty() {
        eprintln!("rondo_club is not configured: comparing with the last state the service saw");
        None
    } else {
        settings
            .validate(Needs {
                rondo_club: true,
                ..Needs::DATABASE_ONLY
            })
            .map_err(|e| Failure::Usage(e.to_string()))?;
        Some(
            poll::RondoClient::new(&settings.rondo_club, &settings.poll)
                .map_err(|e| Failure::Usage(e.to_string()))?,
        )
    };
    let lock = sportlink::setup::lock_account(settings).context("Sportlink account lock")?;
    let mut executor = sportlink::setup::chromium_executor(
        &settings.sportlink,
        store.clone(),
        lock,
        clock::system(),
    )
    .context("Sportlink executor")?;
    let cancel = CancellationToken::new();
    let on_ctrl_c = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        })
    };
    let options = audit::cli::AuditOptions { new };
    let end = audit::cli::run(&mut executor, rondo.as_ref(), &options, &cancel).await;
    executor.close().await;
    on_ctrl_c.abort();
    let end = end.context("audit")?;
    let id = end.run.id;
    let counts = store.read(move |c| c.audit_counts(id)).await?;
    println!("{}", audit::progress_line(&end.run));
    println!("{}", audit::summary(&counts));
    if let Some(path) = csv {
        let rows = store
            .read(move |c| c.audit_results(id, &[], u32::MAX, 0))
            .await?;
        std::fs::write(path, audit::to_csv(&rows))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("{} rows written to {}", rows.len(), path.display());
    }
    if end.interrupted {
        println!("interrupted: run `audit` again to resume");
        return Ok(());
    }
    if end.run.status == "failed" {
        return Err(Failure::Failed(anyhow::anyhow!(
            "audit {id} failed: {}",
            end.run.error.unwrap_or_default()
        )));
    }
    Ok(())
}

/// `replay`: the admin API's code paths (`replay::replay_delivery`, `poll::redetect_member`,
/// `replay::requeue_change`), reported as text.
async fn replay(
    settings: &Settings,
    catalogue: Arc<rondo_reverse_sync::catalogue::Catalogue>,
    what: ReplayWhat,
) -> Result<(), Failure> {
    use rondo_reverse_sync::domain::ChangeId;
    use rondo_reverse_sync::replay;
    let store = {
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || open_existing_store(&settings, catalogue))
            .await
            .context("opening the database")??
    };
    let now = chrono::Utc::now();
    match what {
        ReplayWhat::Delivery { id } => {
            let result = replay::replay_delivery(&store, id.clone(), now).await?;
            println!(
                "delivery {id}: {} ({} change(s))",
                result.verdict.as_str(),
                result.change_ids.len()
            );
            for (change_id, change) in result.change_ids.iter().zip(&result.changes) {
                println!(
                    "  change {change_id}: {} {:?} -> {:?}",
                    change.field, change.old_value, change.new_value
                );
            }
        }
        ReplayWhat::Member { knvb_id } => {
            let knvb_id = KnvbId::parse(&knvb_id).map_err(|e| Failure::Usage(e.to_string()))?;
            let client = poll::RondoClient::new(&settings.rondo_club, &settings.poll)
                .map_err(|e| Failure::Usage(e.to_string()))?;
            let report = poll::redetect_member(&store, &client, knvb_id)
                .await
                .map_err(|e| Failure::Failed(e.into()))?;
            print!("{}", report.summary());
        }
        ReplayWhat::Change { id } => {
            if id <= 0 {
                return Err(Failure::Usage(format!(
                    "change id {id} is not a positive integer"
                )));
            }
            let record = replay::requeue_change(&store, ChangeId(id), now).await?;
            println!(
                "change {} ({} {}) is {} again; the running service's executor picks it up \
                 on its next round (or run `sync`)",
                record.id, record.knvb_id, record.field, record.status
            );
        }
    }
    Ok(())
}

/// Exit 0 only when every configured transport took the test alert.
async fn test_alert(settings: &Settings) -> Result<(), Failure> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this machine".into());
    let note = format!("sent by `rondo-reverse-sync test-alert` on {host}");
    let checks = rondo_reverse_sync::alerts::send_test_alert(&settings.alerts, &note)
        .await
        .map_err(|e| Failure::Usage(format!("config: {e}")))?;
    if checks.is_empty() {
        return Err(Failure::Usage(
            "config: alerts: no transport configured (set alerts.smtp_server and/or alerts.webhook_url)"
                .into(),
        ));
    }
    let mut failed = 0;
    for check in &checks {
        match &check.result {
            Ok(()) => println!("{:<8} {}: sent", check.transport, check.target),
            Err(e) => {
                failed += 1;
                println!("{:<8} {}: FAILED: {e}", check.transport, check.target);
            }
        }
    }
    if failed > 0 {
        return Err(Failure::Failed(anyhow::anyhow!(
            "{failed} of {} alert transports failed",
            checks.len()
        )));
    }
    Ok(())
}

impl From<rondo_reverse_sync::store::StoreError> for Failure {
    fn from(e: rondo_reverse_sync::store::StoreError) -> Self {
        Failure::Failed(e.into())
    }
}

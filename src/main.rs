//! The command line: one verb per job. Exit codes: 0 ok, 1 failed, 2 bad usage or configuration.
//! Here the verbs are defined, their settings checked and the runtime started; each verb's wiring
//! to the library is in `cli/` (and its work in the library).

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use cli::{Failure, ReplayWhat};
use rondo_reverse_sync::config::{Needs, Settings};
use rondo_reverse_sync::{load_catalogue, telemetry};

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

fn main() -> ExitCode {
    match run(Cli::parse()) {
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

fn run(args: Cli) -> Result<(), Failure> {
    let settings =
        Settings::load(args.config.as_deref()).map_err(|e| Failure::Usage(e.to_string()))?;
    settings
        .validate(args.command.needs())
        .map_err(|e| Failure::Usage(e.to_string()))?;
    telemetry::init(&settings.log);
    let catalogue = Arc::new(load_catalogue(&settings).map_err(|e| Failure::Usage(e.to_string()))?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match args.command {
            Command::Serve { create_database } => {
                cli::serve(&settings, catalogue, create_database).await
            }
            Command::Migrate => cli::migrate(&settings, catalogue).await,
            Command::Status { json } => cli::status(&settings, catalogue, json).await,
            Command::TestAlert => cli::test_alert(&settings).await,
            Command::Detect {
                knvb_id,
                dry_run,
                full,
            } => cli::detect(&settings, catalogue, knvb_id.as_deref(), dry_run, full).await,
            Command::Baseline => cli::baseline(&settings, catalogue).await,
            Command::Sync { knvb_id, dry_run } => {
                cli::sync(&settings, catalogue, knvb_id.as_deref(), dry_run).await
            }
            Command::Replay { what } => cli::replay(&settings, catalogue, what).await,
            Command::Audit { new, cancel, csv } => {
                cli::audit(&settings, catalogue, new, cancel, csv.as_deref()).await
            }
            Command::Check { member } => cli::check(&settings, &catalogue, member.as_deref()).await,
        }
    })
}

//! The `audit` verb: the same units as the daemon's loop ([`super::step`]), one after another
//! through a CLI executor (which holds the account lock: never alongside `serve`), with progress
//! on stderr. Progress is a bar redrawn in place on a terminal and a plain line every tenth of
//! the run (or minute) otherwise, where the output goes to a log: no progress-bar crate for
//! something this small.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{progress_line, start_or_resume, step, AuditError, StepOutcome};
use crate::poll::RondoClient;
use crate::sportlink::driver::SportlinkDriver;
use crate::sportlink::executor::Executor;
use crate::store::{AuditRun, AuditRunStatus, AuditTrigger, StoreError};

/// What the verb was asked.
#[derive(Debug, Clone, Default)]
pub struct AuditOptions {
    /// Cancel an unfinished run first and start a new one.
    pub new: bool,
}

/// How the verb ended.
#[derive(Debug, Clone)]
pub struct AuditEnd {
    pub run: AuditRun,
    /// Ctrl-C: the run stays unfinished and resumes on the next `audit`.
    pub interrupted: bool,
}

const BAR_WIDTH: usize = 30;
/// A plain progress line at least this often when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(60);

/// Run (or resume) an audit to its end, or until `cancel` fires.
pub async fn run<D: SportlinkDriver>(
    executor: &mut Executor<D>,
    rondo: Option<&RondoClient>,
    options: &AuditOptions,
    cancel: &CancellationToken,
) -> Result<AuditEnd, AuditError> {
    let store = executor.store().clone();
    if options.new {
        store
            .write(|c| {
                if let Some(run) = c.active_audit()? {
                    c.cancel_audit(run.id, Utc::now())?;
                }
                Ok(())
            })
            .await?;
    }
    let run = start_or_resume(&store, AuditTrigger::Cli).await?;
    let resumed = run.status == AuditRunStatus::Reading && run.members_done > 0;
    let mut err = std::io::stderr();
    if resumed {
        let _ = writeln!(
            err,
            "resuming audit {} ({} of {} members done)",
            run.id, run.members_done, run.members_total
        );
    } else {
        let _ = writeln!(err, "audit {} started", run.id);
    }
    let id = run.id;
    let terminal = err.is_terminal();
    let mut progress = Progress::new(terminal);
    loop {
        if cancel.is_cancelled() {
            break;
        }
        match step(executor, rondo, cancel).await? {
            StepOutcome::Idle | StepOutcome::Finished { .. } => break,
            // Ctrl-C, or the run was cancelled from elsewhere: stop here.
            StepOutcome::Stopped => break,
            StepOutcome::Paused => {
                let _ = writeln!(
                    err,
                    "the executor is paused (circuit breaker): the audit stops here; resume later"
                );
                break;
            }
            StepOutcome::Listed { .. } | StepOutcome::Member { .. } => {}
        }
        if let Some(run) = store.read(move |c| c.audit_run(id)).await? {
            progress.show(&run);
        }
    }
    progress.finish();
    let run = store
        .read(move |c| c.audit_run(id))
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("audit {id}")))?;
    Ok(AuditEnd {
        interrupted: run.is_active(),
        run,
    })
}

struct Progress {
    terminal: bool,
    last_line: Option<Instant>,
    last_tenth: u64,
    drawn: bool,
}

impl Progress {
    fn new(terminal: bool) -> Self {
        Self {
            terminal,
            last_line: None,
            last_tenth: 0,
            drawn: false,
        }
    }

    fn show(&mut self, run: &AuditRun) {
        let mut err = std::io::stderr();
        if self.terminal {
            let filled = (run.members_done as usize * BAR_WIDTH)
                .checked_div(run.members_total as usize)
                .unwrap_or(0)
                .min(BAR_WIDTH);
            let bar = format!("{}{}", "#".repeat(filled), ".".repeat(BAR_WIDTH - filled));
            let _ = write!(err, "\r\x1b[2K[{bar}] {}", progress_line(run));
            let _ = err.flush();
            self.drawn = true;
            return;
        }
        let tenth = (run.members_done * 10)
            .checked_div(run.members_total)
            .unwrap_or(0);
        let due = self.last_line.is_none_or(|t| t.elapsed() >= LINE_EVERY);
        if tenth > self.last_tenth || due {
            self.last_tenth = tenth;
            self.last_line = Some(Instant::now());
            let _ = writeln!(err, "{}", progress_line(run));
        }
    }

    fn finish(&mut self) {
        if self.drawn {
            let _ = writeln!(std::io::stderr());
        }
    }
}

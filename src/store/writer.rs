//! The writer thread and the checkpoint thread: jobs committed in groups, each in its own
//! savepoint; WAL pages copied into the database file beside the writer.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::connection::FileGuard;
use super::error::commit_error;
use super::{Conn, Result, StoreError};
use crate::catalogue::Catalogue;

/// Jobs committed together at most; bounds the latency one job can add to the others.
const MAX_BATCH: usize = 512;
/// How often the checkpoint thread copies the log into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

pub(super) type Completion = Box<dyn FnOnce(Result<()>) + Send>;
/// `Err`: the job cannot run (no transaction); it answers its caller with this error.
pub(super) type Job =
    Box<dyn FnOnce(std::result::Result<&Conn<'_>, StoreError>) -> (bool, Completion) + Send>;

pub(super) fn writer_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<Job>,
    catalogue: Arc<Catalogue>,
    guard: FileGuard,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = guard.check() {
            tracing::error!(error = %e, "refusing to write");
            let gone = || StoreError::Gone {
                path: guard.path.display().to_string(),
            };
            for job in batch {
                let (_, completion) = job(Err(gone()));
                completion(Err(gone()));
            }
            continue;
        }
        run_batch(&mut conn, batch, &catalogue);
    }
}

/// Copies committed log pages into the database file, beside the writer (a passive checkpoint
/// never waits for or blocks it), until the store is dropped. SQLite restarts the log from its
/// beginning once a checkpoint has copied all of it.
pub(super) fn checkpoint_loop(conn: Connection, stop: mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "WAL checkpoint failed; will try again");
        }
    }
}

fn run_batch(conn: &mut Connection, batch: Vec<Job>, catalogue: &Catalogue) {
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, "cannot begin a write transaction");
            for job in batch {
                let (_, completion) = job(Err(commit_error(&e)));
                completion(Err(commit_error(&e)));
            }
            return;
        }
    };
    let mut completions = Vec::with_capacity(batch.len());
    for job in batch {
        let savepoint = match tx.savepoint() {
            Ok(sp) => sp,
            Err(e) => {
                let (_, completion) = job(Err(commit_error(&e)));
                completion(Err(commit_error(&e)));
                continue;
            }
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            job(Ok(&Conn {
                conn: &savepoint,
                catalogue,
            }))
        }));
        match outcome {
            Ok((true, completion)) => match savepoint.commit() {
                Ok(()) => completions.push(completion),
                Err(e) => completion(Err(commit_error(&e))),
            },
            // Dropping the savepoint rolls it back; the job's own error goes to its caller.
            Ok((false, completion)) => {
                drop(savepoint);
                completion(Ok(()));
            }
            Err(_) => {
                tracing::error!("a database job panicked; rolled back");
                drop(savepoint);
            }
        }
    }
    let committed = tx.commit();
    if let Err(e) = &committed {
        tracing::error!(error = %e, "group commit failed");
    }
    for completion in completions {
        completion(match &committed {
            Ok(()) => Ok(()),
            Err(e) => Err(commit_error(e)),
        });
    }
}

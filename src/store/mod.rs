//! The only place with SQL. SQLite through rusqlite, never on the async runtime's threads:
//!
//! - one writer thread owns the write connection and commits in groups: jobs that arrive while a
//!   commit is in progress share the next transaction, each in its own savepoint, so one failing
//!   job never takes the others down and a burst of webhooks costs one fsync, not one each;
//! - reads run on blocking threads with their own (read-only) connections, which WAL lets proceed
//!   while the writer works;
//! - WAL checkpoints (copying committed pages into the database file) run on a thread of their
//!   own, not inside a commit, so the writer only ever appends to the log.
//!
//! Callers pass closures over [`Conn`], whose methods (in the submodules) hold all the SQL. The
//! threads are in `writer`, opening a connection and guarding its file in `connection`, the
//! error type in `error`.

mod audit;
mod changes;
mod codes;
mod conflicts;
mod connection;
mod deliveries;
mod error;
mod executor;
mod forward_sync;
mod history;
mod members;
mod migrate;
mod operator;
mod runs;
mod writer;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::catalogue::Catalogue;
use connection::{open_connection, Access, FileGuard};
use writer::{checkpoint_loop, writer_loop, Completion, Job};

pub use audit::{
    AuditMember, AuditMemberContext, AuditMemberDone, AuditResult, AuditRun, AuditRunStatus,
    AuditTrigger, AuditVerdict, NewAuditResult, QueuedRow, RondoSource,
};
pub use changes::{ChangeRecord, ChangeStatusCounts, PendingChange};
pub use conflicts::ConflictRecord;
pub use deliveries::{DeliveryOutcome, DeliveryRecord, NewDelivery};
pub use error::{Result, StoreError};
pub use forward_sync::{ForwardSyncOutcome, ForwardSyncReport};
pub use history::{AttentionCounts, HistoryFilter, HistoryRow, REFUSAL_MARKER};
pub use members::{
    FieldTimestamps, InvalidKnvbId, MemberSummary, SeenThrough, SightingContext, SightingResult,
};
pub use migrate::{SchemaInfo, MIGRATIONS};
pub use operator::{DeliverySummary, FieldSourceStatusCount};
pub use runs::{RunKind, RunRecord, RunStatus};

/// Read connections kept open for reuse.
const MAX_IDLE_READERS: usize = 4;

/// A connection inside a write savepoint or a read. All SQL lives in methods of this type.
pub struct Conn<'a> {
    conn: &'a Connection,
    catalogue: &'a Catalogue,
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    guard: FileGuard,
    options: StoreOptions,
    catalogue: Arc<Catalogue>,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Dropping it stops the checkpoint thread.
    checkpoint_stop: Mutex<Option<mpsc::Sender<()>>>,
    checkpoint_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut sender) = self.writer.lock() {
            sender.take();
        }
        if let Ok(mut stop) = self.checkpoint_stop.lock() {
            stop.take();
        }
        for thread in [&self.writer_thread, &self.checkpoint_thread] {
            if let Ok(mut handle) = thread.lock() {
                if let Some(handle) = handle.take() {
                    let _ = handle.join();
                }
            }
        }
    }
}

impl Store {
    /// Opens the database, creating it when it is missing (`migrate`, `serve --create-database`,
    /// the demo, tests), applies pending migrations, and makes sure every catalogue field has its
    /// timestamp columns. Refuses a database newer than this binary.
    /// Blocking: call before the runtime serves requests, or from `spawn_blocking`.
    pub fn open(path: &Path, catalogue: Arc<Catalogue>, options: StoreOptions) -> Result<Self> {
        Self::open_with(path, catalogue, options, Access::Create)
    }

    /// Opens an existing database (as [`Store::open`] does) and refuses a missing one: a service
    /// that silently started on a new empty database would forget every member's baseline.
    pub fn open_existing(
        path: &Path,
        catalogue: Arc<Catalogue>,
        options: StoreOptions,
    ) -> Result<Self> {
        if !path.is_file() {
            return Err(StoreError::Missing {
                path: path.display().to_string(),
            });
        }
        Self::open_with(path, catalogue, options, Access::ReadWrite)
    }

    fn open_with(
        path: &Path,
        catalogue: Arc<Catalogue>,
        options: StoreOptions,
        access: Access,
    ) -> Result<Self> {
        let mut conn = open_connection(path, &options, access)?;
        migrate::apply(&mut conn, path)?;
        migrate::ensure_field_columns(&conn, &catalogue)?;

        // Checkpoints are the checkpoint thread's job, not the commit's.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = open_connection(path, &options, Access::ReadWrite)?;
        let guard = FileGuard::new(path);

        let (tx, rx) = mpsc::channel::<Job>();
        let thread_catalogue = catalogue.clone();
        let thread_guard = guard.clone();
        let handle = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, thread_catalogue, thread_guard))
            .map_err(|e| StoreError::Commit(format!("cannot start the writer thread: {e}")))?;
        let (stop, stopped) = mpsc::channel::<()>();
        let checkpoint_handle = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, stopped))
            .map_err(|e| StoreError::Commit(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                guard,
                options,
                catalogue,
                writer: Mutex::new(Some(tx)),
                writer_thread: Mutex::new(Some(handle)),
                checkpoint_stop: Mutex::new(Some(stop)),
                checkpoint_thread: Mutex::new(Some(checkpoint_handle)),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn catalogue(&self) -> &Arc<Catalogue> {
        &self.inner.catalogue
    }

    /// Runs `f` in a write transaction (its own savepoint within a group commit) and returns once
    /// the transaction is durably committed. An `Err` from `f` rolls back only its own work.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&Conn<'c>) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| match conn {
            Err(e) => {
                let _ = tx.send(Err(e));
                (false, Box::new(|_| {}))
            }
            Ok(conn) => {
                let result = f(conn);
                let ok = result.is_ok();
                let completion: Completion = Box::new(move |commit| {
                    let _ = tx.send(match commit {
                        Ok(()) => result,
                        Err(e) => Err(e),
                    });
                });
                (ok, completion)
            }
        });
        let sender = self
            .inner
            .writer
            .lock()
            .map_err(|_| StoreError::WriterGone)?
            .clone()
            .ok_or(StoreError::WriterGone)?;
        sender.send(job).map_err(|_| StoreError::WriterGone)?;
        // A dropped sender without an answer means the job panicked (and was rolled back).
        rx.await.unwrap_or(Err(StoreError::JobPanicked))
    }

    /// Runs `f` on a read-only connection on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&Conn<'c>) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            inner.guard.check()?;
            let pooled = inner.readers.lock().ok().and_then(|mut r| r.pop());
            let conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&inner.path, &inner.options, Access::ReadOnly)?,
            };
            let result = catch_unwind(AssertUnwindSafe(|| {
                f(&Conn {
                    conn: &conn,
                    catalogue: &inner.catalogue,
                })
            }))
            .unwrap_or(Err(StoreError::JobPanicked));
            if let Ok(mut readers) = inner.readers.lock() {
                if readers.len() < MAX_IDLE_READERS {
                    readers.push(conn);
                }
            }
            result
        })
        .await
        .unwrap_or(Err(StoreError::JobPanicked))
    }

    /// Commits a real (tiny) write now: `Ok` means writes can succeed, the error says why not.
    pub async fn probe_write(&self) -> Result<()> {
        self.write(|db| db.write_probe(chrono::Utc::now())).await
    }
}

/// Timestamps are stored as RFC 3339 UTC with milliseconds (`2026-11-26T11:30:20.000Z`), so text
/// order is time order.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn parse_ts(raw: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt {
            what: "timestamp".into(),
            message: format!("{raw:?}: {e}"),
        })
}

fn parse_opt_ts(raw: Option<String>) -> Result<Option<DateTime<Utc>>> {
    raw.as_deref().map(parse_ts).transpose()
}

#[cfg(test)]
mod tests;

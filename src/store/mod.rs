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
//! Callers pass closures over [`Conn`], whose methods (in the submodules) hold all the SQL.

mod audit;
mod changes;
mod codes;
mod conflicts;
mod deliveries;
mod executor;
mod forward_sync;
mod history;
mod members;
mod migrate;
mod operator;
mod runs;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tokio::sync::oneshot;

use crate::catalogue::Catalogue;

pub use audit::{
    AuditMember, AuditMemberContext, AuditMemberDone, AuditResult, AuditRun, NewAuditResult,
    QueuedRow,
};
pub use changes::{ChangeRecord, ChangeStatusCounts, PendingChange};
pub use conflicts::ConflictRecord;
pub use deliveries::{DeliveryOutcome, DeliveryRecord, NewDelivery};
pub use forward_sync::{ForwardSyncOutcome, ForwardSyncReport};
pub use history::{AttentionCounts, HistoryFilter, HistoryRow, REFUSAL_MARKER};
pub use members::{FieldTimestamps, InvalidKnvbId, MemberSummary, SightingContext, SightingResult};
pub use migrate::{SchemaInfo, MIGRATIONS};
pub use operator::{DeliverySummary, FieldSourceStatusCount};
pub use runs::{RunKind, RunRecord, RunStatus};

/// Jobs committed together at most; bounds the latency one job can add to the others.
const MAX_BATCH: usize = 512;
/// Read connections kept open for reuse.
const MAX_IDLE_READERS: usize = 4;
/// How often the checkpoint thread copies the log into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database {path}: cannot open: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this binary knows ({known}); \
         upgrade rondo-reverse-sync or restore a backup"
    )]
    SchemaTooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("database migration {version} ({name}): {message}")]
    Migration {
        version: i64,
        name: String,
        message: String,
    },
    #[error("database: stored {what} is corrupt: {message}")]
    Corrupt { what: String, message: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Rejected(String),
    #[error("database: commit failed: {0}")]
    Commit(String),
    #[error("database: the writer thread has stopped")]
    WriterGone,
    #[error("database: a job panicked; it was rolled back")]
    JobPanicked,
    #[error(
        "database {path} does not exist; create it with `rondo-reverse-sync migrate` \
         (or start once with `serve --create-database`)"
    )]
    Missing { path: String },
    #[error(
        "database {path} is gone: the file was deleted or replaced while the service ran; \
         restore it and restart"
    )]
    Gone { path: String },
    /// No write can succeed now: read-only file, disk full, lock held past the busy timeout.
    #[error("database: cannot write now: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// The database cannot take writes (or is gone): the caller should come back later (503),
    /// rather than a fault in this request (500).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Gone { .. } | Self::Missing { .. } | Self::Unavailable(_) => true,
            Self::Sqlite(e) | Self::Open { source: e, .. } => unavailable_code(e),
            _ => false,
        }
    }
}

/// SQLite errors that say "not now" rather than "this request is wrong".
fn unavailable_code(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(
        e.sqlite_error_code(),
        Some(
            DatabaseBusy
                | DatabaseLocked
                | ReadOnly
                | DiskFull
                | CannotOpen
                | SystemIoFailure
                | NotADatabase
                | DatabaseCorrupt
        )
    )
}

/// A failed `BEGIN`/`COMMIT`, kept as "unavailable" when it is one.
fn commit_error(e: &rusqlite::Error) -> StoreError {
    if unavailable_code(e) {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Commit(e.to_string())
    }
}

/// The database file as it was opened: a file deleted or replaced under the running service
/// must not be written to (SQLite would keep writing into the unlinked inode, and every
/// acknowledged delivery would be lost on restart).
#[derive(Debug, Clone)]
struct FileGuard {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl FileGuard {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            identity: file_identity(path),
        }
    }

    fn check(&self) -> Result<()> {
        if file_identity(&self.path).is_some() && file_identity(&self.path) == self.identity {
            Ok(())
        } else {
            Err(StoreError::Gone {
                path: self.path.display().to_string(),
            })
        }
    }
}

fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A connection inside a write savepoint or a read. All SQL lives in methods of this type.
pub struct Conn<'a> {
    conn: &'a Connection,
    catalogue: &'a Catalogue,
}

type Completion = Box<dyn FnOnce(Result<()>) + Send>;
/// `Err`: the job cannot run (no transaction); it answers its caller with this error.
type Job = Box<dyn FnOnce(std::result::Result<&Conn<'_>, StoreError>) -> (bool, Completion) + Send>;

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

/// How a connection is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadOnly,
    ReadWrite,
    /// Read-write, creating the file when it is missing (only `Store::open`).
    Create,
}

fn open_connection(path: &Path, options: &StoreOptions, access: Access) -> Result<Connection> {
    let read_only = access == Access::ReadOnly;
    let flags = match access {
        Access::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        Access::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        Access::Create => {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        }
    };
    let open_err = |source| StoreError::Open {
        path: path.display().to_string(),
        source,
    };
    let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    conn.busy_timeout(options.busy_timeout).map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // The ingest path runs about ten statements per delivery; parsing them once, not per
    // delivery, is a large part of the writer thread's time under load.
    conn.set_prepared_statement_cache_capacity(64);
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a 2xx for a webhook means the change survives a power cut too. Group commit
        // keeps this affordable.
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Each job runs in a savepoint, whose undo pages SQLite keeps in a sub-journal: in
        // memory, not a temporary file opened, written and closed for every job.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
    }
    Ok(conn)
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

fn writer_loop(
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
fn checkpoint_loop(conn: Connection, stop: mpsc::Receiver<()>) {
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

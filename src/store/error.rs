//! What can go wrong in the store, and which of it means "not now" (503) rather than "wrong".

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
pub(super) fn commit_error(e: &rusqlite::Error) -> StoreError {
    if unavailable_code(e) {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Commit(e.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

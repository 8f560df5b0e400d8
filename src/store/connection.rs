//! Opening a connection (pragmas per access) and guarding the file it was opened on.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::{Result, StoreError, StoreOptions};

/// How a connection is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    ReadOnly,
    ReadWrite,
    /// Read-write, creating the file when it is missing (only `Store::open`).
    Create,
}

pub(super) fn open_connection(
    path: &Path,
    options: &StoreOptions,
    access: Access,
) -> Result<Connection> {
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

/// The database file as it was opened: a file deleted or replaced under the running service
/// must not be written to (SQLite would keep writing into the unlinked inode, and every
/// acknowledged delivery would be lost on restart).
#[derive(Debug, Clone)]
pub(super) struct FileGuard {
    pub(super) path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl FileGuard {
    pub(super) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            identity: file_identity(path),
        }
    }

    pub(super) fn check(&self) -> Result<()> {
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

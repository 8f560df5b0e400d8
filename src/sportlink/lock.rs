//! One executor per Sportlink account: an OS advisory lock (`flock`) on a lock file next to the
//! database, keyed by account. The daemon holds it for its whole life, the CLI `sync`/`check` for
//! theirs, so the two never drive the same account at once. The kernel drops the lock when the
//! holding process dies, so a crashed process never blocks the next one.
//!
//! The file also carries the last TOTP time step used with the account, so a new process never
//! reuses a code that the previous holder used seconds before.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another executor already drives this Sportlink account ({holder}); lock file {path}")]
    Held { path: PathBuf, holder: String },
    #[error("cannot use the lock file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug)]
pub struct AccountLock {
    file: Arc<Mutex<File>>,
    path: PathBuf,
    last_otp_step: Arc<Mutex<Option<u64>>>,
}

/// Records a TOTP step in the lock file the moment a code is submitted, so a process started
/// after a kill never submits a code its predecessor already used.
#[derive(Debug, Clone)]
pub struct OtpStepRecorder {
    file: Arc<Mutex<File>>,
    last_otp_step: Arc<Mutex<Option<u64>>>,
}

impl OtpStepRecorder {
    pub fn record(&self, step: u64) {
        let mut last = lock_ignoring_poison(&self.last_otp_step);
        if last.is_some_and(|l| l >= step) {
            return;
        }
        *last = Some(step);
        let mut file = lock_ignoring_poison(&self.file);
        if let Err(e) = write_state(&mut file, *last) {
            tracing::debug!(error = %e, "could not record the TOTP step in the lock file");
        }
    }
}

fn lock_ignoring_poison<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl AccountLock {
    /// Take the lock for `account` (e.g. `user@club.sportlink.com`) in `dir`, without waiting.
    pub fn acquire(dir: &Path, account: &str) -> Result<Self, LockError> {
        let path = lock_path(dir, account);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut content = String::new();
                let _ = file.read_to_string(&mut content);
                let holder = field(&content, "pid")
                    .map(|p| format!("process {p}"))
                    .unwrap_or_else(|| "unknown process".into());
                return Err(LockError::Held { path, holder });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut content = String::new();
        file.read_to_string(&mut content).map_err(io)?;
        let last_otp_step = field(&content, "otp_step").and_then(|s| s.parse().ok());
        write_state(&mut file, last_otp_step).map_err(io)?;
        Ok(Self {
            file: Arc::new(Mutex::new(file)),
            path: path.clone(),
            last_otp_step: Arc::new(Mutex::new(last_otp_step)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn last_otp_step(&self) -> Option<u64> {
        *lock_ignoring_poison(&self.last_otp_step)
    }

    /// Remember the last TOTP step used (best effort: losing it only costs a wait).
    pub fn record_otp_step(&mut self, step: Option<u64>) {
        if let Some(step) = step {
            self.recorder().record(step);
        }
    }

    /// A handle that records steps from the browser session as codes are submitted.
    pub fn recorder(&self) -> OtpStepRecorder {
        OtpStepRecorder {
            file: Arc::clone(&self.file),
            last_otp_step: Arc::clone(&self.last_otp_step),
        }
    }
}

fn write_state(file: &mut File, last_otp_step: Option<u64>) -> std::io::Result<()> {
    let mut text = format!(
        "pid={}\nsince={}\n",
        std::process::id(),
        chrono::Utc::now().to_rfc3339()
    );
    if let Some(step) = last_otp_step {
        text.push_str(&format!("otp_step={step}\n"));
    }
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(text.as_bytes())?;
    file.flush()
}

impl Drop for AccountLock {
    fn drop(&mut self) {
        // Closing the file releases the lock; unlocking first makes it explicit. (A recorder
        // still held elsewhere keeps the file open, not the lock's meaning: the executor that
        // owns both drops them together.)
        let _ = lock_ignoring_poison(&self.file).unlock();
    }
}

/// `dir/sportlink-<hash of account>.lock`: the account name may hold any character.
pub fn lock_path(dir: &Path, account: &str) -> PathBuf {
    let digest = Sha256::digest(account.trim().to_lowercase().as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    dir.join(format!("sportlink-{hex}.lock"))
}

fn field<'a>(content: &'a str, key: &str) -> Option<&'a str> {
    content.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('='))
            .map(str::trim)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = AccountLock::acquire(dir.path(), "user@sportlink").unwrap();
        first.record_otp_step(Some(1234));
        let err = AccountLock::acquire(dir.path(), "USER@sportlink").unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
        assert!(err.to_string().contains(&std::process::id().to_string()));
        // Another account is independent.
        let other = AccountLock::acquire(dir.path(), "someone-else@sportlink").unwrap();
        drop(other);
        drop(first);
        let again = AccountLock::acquire(dir.path(), "user@sportlink").unwrap();
        assert_eq!(again.last_otp_step(), Some(1234));
    }

    #[test]
    fn a_dead_holder_does_not_block() {
        // A lock file left behind by a process that died holds no lock.
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path(), "acct");
        std::fs::write(&path, "pid=999999\notp_step=7\n").unwrap();
        let lock = AccountLock::acquire(dir.path(), "acct").unwrap();
        assert_eq!(lock.last_otp_step(), Some(7));
    }
}

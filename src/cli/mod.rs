//! The verbs' wiring to the library, one file per kind of job; `main.rs` parses the command line
//! and dispatches here. Each verb's work is in the library: these functions open what the verb
//! needs, call it, and print the report. `anyhow` lives here: a verb's failure is reported, not
//! handled.

mod alert;
mod poll;
mod replay;
mod serve;
mod sportlink;
mod status;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use alert::test_alert;
pub use poll::{baseline, detect};
pub use replay::{replay, ReplayWhat};
pub use serve::{migrate, serve};
pub use sportlink::{audit, check, sync};
pub use status::status;

/// A failure with the exit code it deserves.
pub enum Failure {
    Usage(String),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Failed(e)
    }
}

impl From<rondo_reverse_sync::store::StoreError> for Failure {
    fn from(e: rondo_reverse_sync::store::StoreError) -> Self {
        Failure::Failed(e.into())
    }
}

/// A token that Ctrl-C cancels (long verbs stop between members), and the task that waits for
/// it: abort that when the verb is done.
fn cancel_on_ctrl_c() -> (CancellationToken, JoinHandle<()>) {
    let cancel = CancellationToken::new();
    let on_ctrl_c = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        })
    };
    (cancel, on_ctrl_c)
}

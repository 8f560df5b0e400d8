//! The real parts behind the admin API's [`Operations`] seam in `serve`: the poller (trigger a
//! poll), the Rondo Club client (re-detect one member) and the Sportlink executor (state, resume).
//! Each is optional: a part that is not configured answers "not available" (503).

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::Notify;

use crate::domain::KnvbId;
use crate::http::{
    ExecutorStateView, ExecutorView, OperationError, Operations, PollAccepted, Redetected,
};
use crate::poll::{self, PollError, PollRequest, PollerHandle, RondoClient, RondoError};
use crate::sportlink::executor::{ExecutorState, StatusBoard};
use crate::store::Store;

/// The executor as the operator sees it: its status board and its wake-up.
#[derive(Clone)]
pub struct ExecutorControl {
    pub board: StatusBoard,
    pub wake: Arc<Notify>,
}

#[derive(Clone)]
pub struct ServiceOperations {
    pub store: Store,
    pub poller: Option<PollerHandle>,
    pub rondo: Option<RondoClient>,
    pub executor: Option<ExecutorControl>,
}

fn view(board: &StatusBoard) -> ExecutorView {
    let status = board.status();
    ExecutorView {
        state: match status.state {
            ExecutorState::Idle => ExecutorStateView::Idle,
            ExecutorState::Working { knvb_id } => ExecutorStateView::Working { knvb_id },
            ExecutorState::Paused {
                reason,
                since,
                until,
            } => ExecutorStateView::Paused {
                reason,
                since: Some(since),
                until: Some(until),
            },
        },
        consecutive_drift_failures: status.consecutive_drift_failures,
        last_run_finished_at: status.last_run_finished_at,
        last_error: status.last_error,
    }
}

fn poll_error(e: PollError) -> OperationError {
    match e {
        PollError::UnknownMember(_) | PollError::Rondo(RondoError::PersonNotFound(_)) => {
            OperationError::NotFound(e.to_string())
        }
        PollError::Store(s) => OperationError::Store(s),
        PollError::MemberMismatch { .. } => OperationError::Busy(e.to_string()),
        PollError::PollerGone | PollError::Cancelled => {
            OperationError::Busy("the poller is shutting down".into())
        }
        other => OperationError::Upstream(other.to_string()),
    }
}

impl Operations for ServiceOperations {
    fn executor_status(&self) -> Option<ExecutorView> {
        self.executor.as_ref().map(|e| view(&e.board))
    }

    fn resume_executor(&self) -> Result<(), OperationError> {
        let executor = self
            .executor
            .as_ref()
            .ok_or(OperationError::Unavailable("the Sportlink executor"))?;
        executor.board.resume();
        executor.wake.notify_one();
        Ok(())
    }

    fn trigger_poll(&self, full: bool) -> BoxFuture<'_, Result<PollAccepted, OperationError>> {
        Box::pin(async move {
            let poller = self
                .poller
                .as_ref()
                .ok_or(OperationError::Unavailable("the reconciliation poll"))?;
            let request = if full {
                PollRequest::full()
            } else {
                PollRequest::incremental()
            };
            // The receiver is dropped: the run is recorded in `runs` either way.
            poller.trigger(request).await.map_err(poll_error)?;
            Ok(PollAccepted {
                full,
                detail: "queued; it starts after any poll in progress and shows in /api/runs"
                    .into(),
            })
        })
    }

    fn redetect(&self, knvb_id: KnvbId) -> BoxFuture<'_, Result<Redetected, OperationError>> {
        Box::pin(async move {
            let client = self
                .rondo
                .as_ref()
                .ok_or(OperationError::Unavailable("re-detection from Rondo Club"))?;
            let report = poll::redetect_member(&self.store, client, knvb_id)
                .await
                .map_err(poll_error)?;
            Ok(Redetected {
                run_id: report.run_id,
                summary: report.summary().trim_end().to_string(),
            })
        })
    }
}

//! The run: members one at a time at the polite pace, retries with backoff, failures across
//! runs, the circuit breaker and the canary, and the run's report.

use super::*;

impl<D: SportlinkDriver> Executor<D> {
    /// The canary (issue 13): look at `member`'s pages read-only against the catalogue. A
    /// mismatch pauses the executor (until `pause_for` passes or an operator resumes) with the
    /// diagnosis as the reason, before any change can fail on it; a pass ends a pause the canary
    /// started. Returns whether the pages matched (`None`: the check itself could not run).
    pub async fn run_canary(&mut self, member: &KnvbId, pause_for: Duration) -> Option<bool> {
        let catalogue = self.catalogue.clone();
        match self.driver.check_pages(member.as_str(), &catalogue).await {
            Ok(None) => {
                tracing::info!(%member, "canary: Sportlink's pages match the catalogue");
                if self
                    .board
                    .paused()
                    .is_some_and(|r| r.starts_with(CANARY_REASON))
                {
                    self.board.resume();
                }
                Some(true)
            }
            Ok(Some(report)) => {
                tracing::error!(%member, "canary: Sportlink's pages do not match the catalogue");
                self.board.pause(
                    format!(
                        "{CANARY_REASON} (member {member}):\n{}{report}",
                        crate::sportlink::diagnose::DIAGNOSIS_MARK
                    ),
                    pause_for,
                );
                Some(false)
            }
            Err(e) => {
                tracing::warn!(%member, error = %error_chain(&e), "canary: the check could not run");
                None
            }
        }
    }

    /// Push what is pending and due now (optionally for one member). Stops early when cancelled,
    /// when the circuit breaker opens, or when Sportlink refuses the login.
    pub async fn run(
        &mut self,
        only: Option<&KnvbId>,
        dry_run: bool,
        cancel: &CancellationToken,
    ) -> Result<RunReport, ExecutorError> {
        let mut report = RunReport::default();
        if let Some(reason) = self.board.paused() {
            report.stopped = Some(StopReason::CircuitBreakerOpen { detail: reason });
            return Ok(report);
        }
        let only_owned = only.cloned();
        let run_id = self
            .store
            .write(move |c| {
                c.start_run(
                    RunKind::Sync,
                    only_owned.as_ref().map(KnvbId::as_str),
                    dry_run,
                    Utc::now(),
                )
            })
            .await?;
        let result = self.run_members(only, dry_run, cancel, &mut report).await;
        self.board.idle();
        self.board.run_finished();
        let (status, error) = match (&result, &report.stopped) {
            (Err(e), _) => (RunStatus::Failed, Some(e.to_string())),
            (Ok(()), Some(StopReason::LoginRefused { message })) => {
                (RunStatus::Failed, Some(message.clone()))
            }
            (Ok(()), Some(StopReason::CircuitBreakerOpen { detail })) => {
                (RunStatus::Failed, Some(detail.clone()))
            }
            _ => (RunStatus::Completed, None),
        };
        let detail = summary(&report);
        let finish = self
            .store
            .write(move |c| {
                c.finish_run(run_id, status, Some(&detail), error.as_deref(), Utc::now())
            })
            .await;
        result?;
        finish?;
        Ok(report)
    }

    pub(super) async fn run_members(
        &mut self,
        only: Option<&KnvbId>,
        dry_run: bool,
        cancel: &CancellationToken,
        report: &mut RunReport,
    ) -> Result<(), ExecutorError> {
        let mut seen: HashSet<KnvbId> = HashSet::new();
        loop {
            let only_owned = only.cloned();
            let due = self
                .store
                .read(move |c| c.due_members(Utc::now(), only_owned.as_ref(), BATCH + 1000))
                .await?;
            let batch: Vec<KnvbId> = due
                .into_iter()
                .filter(|k| !seen.contains(k))
                .take(BATCH)
                .collect();
            if batch.is_empty() {
                return Ok(());
            }
            for knvb_id in batch {
                seen.insert(knvb_id.clone());
                if dry_run && only.is_none() {
                    let knvb = knvb_id.clone();
                    let ids: Vec<ChangeId> = self
                        .store
                        .read(move |c| c.pending_changes(&knvb))
                        .await?
                        .iter()
                        .map(|c| c.id)
                        .collect();
                    if ids.iter().all(|id| self.dry_run_reported.contains(id)) {
                        continue;
                    }
                    self.dry_run_reported.extend(ids);
                }
                if cancel.is_cancelled() {
                    report.stopped = Some(StopReason::Cancelled);
                    return Ok(());
                }
                if let Some(reason) = self.board.paused() {
                    report.stopped = Some(StopReason::CircuitBreakerOpen { detail: reason });
                    return Ok(());
                }
                if !self.pace(cancel).await {
                    report.stopped = Some(StopReason::Cancelled);
                    return Ok(());
                }
                self.board.working(&knvb_id);
                let outcome = self.execute_with_retries(&knvb_id, dry_run, cancel).await;
                self.last_member_end = Some(Instant::now());
                let Some(outcome) = outcome? else {
                    // Stopping, and nothing of this member was saved: it stays due as it was.
                    self.board.idle();
                    report.stopped = Some(StopReason::Cancelled);
                    return Ok(());
                };
                let login_refused = outcome.login_refused.clone();
                let streak = self.board.record(&outcome.outcome.result);
                log_outcome(&outcome.outcome);
                report.members.push(outcome.outcome);
                if let Some(message) = login_refused {
                    self.board.pause(
                        format!("Sportlink refused the login: {message}"),
                        self.settings.breaker_cooldown,
                    );
                    report.stopped = Some(StopReason::LoginRefused { message });
                    return Ok(());
                }
                if self.settings.breaker_threshold > 0 && streak >= self.settings.breaker_threshold
                {
                    let diagnosis = self.diagnose_drift(&knvb_id).await;
                    let detail = format!(
                        "{streak} members in a row failed because Sportlink's pages no longer \
                         match the page model (section or input not found); last: {}{diagnosis}",
                        self.board.status().last_error.unwrap_or_default()
                    );
                    self.board
                        .pause(detail.clone(), self.settings.breaker_cooldown);
                    report.stopped = Some(StopReason::CircuitBreakerOpen { detail });
                    return Ok(());
                }
                if cancel.is_cancelled() {
                    report.stopped = Some(StopReason::Cancelled);
                    return Ok(());
                }
            }
        }
    }

    /// The page-model diagnosis of `member` (issue 13) for the circuit breaker's reason and
    /// alert: a read-only look at its pages, as `check --member` prints it.
    async fn diagnose_drift(&mut self, member: &KnvbId) -> String {
        use crate::sportlink::diagnose::DIAGNOSIS_MARK;
        let catalogue = self.catalogue.clone();
        match self.driver.check_pages(member.as_str(), &catalogue).await {
            Ok(Some(report)) => format!("\n{DIAGNOSIS_MARK}{report}"),
            Ok(None) => format!(
                "\n{DIAGNOSIS_MARK}member {member}'s pages match the catalogue when looked at \
                 read-only"
            ),
            Err(e) => format!(
                "\n{DIAGNOSIS_MARK}the read-only look at member {member}'s pages failed: {}",
                error_chain(&e)
            ),
        }
    }

    /// The politeness pause before other work through this executor's browser (the audit's
    /// reading): as before a member. False when cancelled.
    pub async fn pace_member(&self, cancel: &CancellationToken) -> bool {
        self.pace(cancel).await
    }

    /// Such work ended: the next member waits its interval from now.
    pub fn member_finished(&mut self) {
        self.last_member_end = Some(Instant::now());
    }

    pub fn catalogue(&self) -> &Arc<Catalogue> {
        &self.catalogue
    }

    /// The politeness pause before a member: the governor quota (at most one member per
    /// interval, plus random jitter) and, because a member can take longer than the interval, at
    /// least the interval since the previous member finished. False when cancelled.
    pub(super) async fn pace(&self, cancel: &CancellationToken) -> bool {
        let Some(limiter) = &self.limiter else {
            return !cancel.is_cancelled();
        };
        let jitter = Jitter::up_to(self.settings.member_jitter);
        let after_previous = self
            .last_member_end
            .map(|end| end + self.settings.min_member_interval);
        let wait = async {
            if let Some(at) = after_previous {
                tokio::time::sleep_until(at).await;
            }
            limiter.until_ready_with_jitter(jitter).await;
        };
        tokio::select! {
            _ = cancel.cancelled() => false,
            _ = wait => true,
        }
    }

    /// One member with the in-run retries (backoff), and the bookkeeping of a final failure.
    /// `None` when the service stops before the member's attempt reached a save: the attempt is
    /// abandoned where it was (a page that never finishes loading would otherwise hold the stop
    /// for an action timeout per step), and nothing is recorded, so the changes stay due (a
    /// retry abandoned records the failure before it). Once a save may have been sent the
    /// attempt runs to its end, so what it did is recorded.
    pub(super) async fn execute_with_retries(
        &mut self,
        knvb_id: &KnvbId,
        dry_run: bool,
        cancel: &CancellationToken,
    ) -> Result<Option<Attempted>, ExecutorError> {
        let mut attempt: u32 = 0;
        // The failure of the attempt before this one, while this one is a retry.
        let mut previous: Option<FailedAttempt> = None;
        loop {
            let last_try = attempt as usize >= self.settings.retry_backoff.len();
            let save_started = self.save_started.clone();
            save_started.store(false, std::sync::atomic::Ordering::SeqCst);
            let result = tokio::select! {
                result = self.attempt_member(knvb_id, dry_run, last_try) => Some(result),
                () = stopping_before_a_save(cancel, &save_started) => None,
            };
            let Some(result) = result else {
                return match previous {
                    // A retry abandoned: the failure before it is recorded, as a stop during
                    // the backoff records it.
                    Some(failed) => self
                        .record_member_failure(knvb_id, failed, attempt, dry_run)
                        .await
                        .map(Some),
                    None => {
                        tracing::info!(
                            knvb_id = %knvb_id,
                            "stopping: the member's attempt is abandoned before any save; \
                             its changes stay due"
                        );
                        Ok(None)
                    }
                };
            };
            attempt += 1;
            match result {
                Ok(outcome) => {
                    return Ok(Some(Attempted {
                        outcome,
                        login_refused: None,
                    }))
                }
                Err(failed) => {
                    let wait = self
                        .settings
                        .retry_backoff
                        .get(attempt as usize - 1)
                        .copied();
                    let retry = failed.error.retryable() && !cancel.is_cancelled();
                    if let (true, Some(wait)) = (retry, wait) {
                        tracing::info!(
                            knvb_id = %knvb_id, attempt, error = %failed.error.message,
                            retry_in_ms = wait.as_millis() as u64, "member failed; retrying"
                        );
                        let cancelled = tokio::select! {
                            _ = cancel.cancelled() => true,
                            _ = tokio::time::sleep(wait) => false,
                        };
                        if !cancelled {
                            previous = Some(failed);
                            continue;
                        }
                    }
                    return self
                        .record_member_failure(knvb_id, failed, attempt, dry_run)
                        .await
                        .map(Some);
                }
            }
        }
    }

    pub(super) async fn record_member_failure(
        &mut self,
        knvb_id: &KnvbId,
        failed: FailedAttempt,
        attempts: u32,
        dry_run: bool,
    ) -> Result<Attempted, ExecutorError> {
        let FailedAttempt {
            error,
            change_ids,
            fields,
            artefacts,
            page_times,
        } = failed;
        let login_refused =
            (error.kind == FailureKind::LoginRefused).then(|| error.message.clone());
        let mut gave_up = Vec::new();
        // A refused login says nothing about the changes: leave them untouched.
        if !dry_run && login_refused.is_none() && !change_ids.is_empty() {
            let message = error.message.clone();
            let ids: Vec<ChangeId> = change_ids.iter().map(|(id, _)| *id).collect();
            let max = self.settings.max_attempts;
            let knvb = knvb_id.clone();
            // The delay grows with the runs that already failed for this member.
            let attempts_so_far = self
                .store
                .read(move |c| {
                    Ok(c.pending_changes(&knvb)?
                        .iter()
                        .map(|p| p.attempts)
                        .max()
                        .unwrap_or(0))
                })
                .await?;
            let delay = next_attempt_delay(self.settings.next_attempt_base, attempts_so_far);
            let now = Utc::now();
            let next = now + chrono::TimeDelta::from_std(delay).unwrap_or(chrono::TimeDelta::MAX);
            gave_up = self
                .store
                .write(move |c| c.record_failure(&ids, &message, next, max, now))
                .await?;
            if !gave_up.is_empty() {
                tracing::error!(
                    knvb_id = %knvb_id, changes = ?gave_up, error = %error.message,
                    "changes failed for good after their attempts"
                );
            }
            for (id, field) in change_ids.iter().filter(|(id, _)| gave_up.contains(id)) {
                self.alert(AlertEvent::ChangeFailed {
                    change_id: *id,
                    knvb_id: knvb_id.clone(),
                    field: field.clone(),
                    reason: error.message.clone(),
                });
            }
        }
        Ok(Attempted {
            outcome: MemberOutcome {
                knvb_id: knvb_id.clone(),
                result: MemberResult::Failed {
                    error: error.message.clone(),
                    ui_drift: error.kind == FailureKind::Drift,
                    attempts,
                    gave_up,
                    screenshot: artefacts
                        .as_ref()
                        .and_then(|a| a.screenshot.as_ref())
                        .map(|p| p.display().to_string()),
                    html: artefacts
                        .as_ref()
                        .and_then(|a| a.html.as_ref())
                        .map(|p| p.display().to_string()),
                },
                fields,
                page_times,
            },
            login_refused,
        })
    }
}

/// Delay before a failed member is due again: base × 2^(failed runs so far), capped.
pub(super) fn next_attempt_delay(base: Duration, attempts_so_far: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempts_so_far.min(16))
        .unwrap_or(u32::MAX);
    base.checked_mul(factor)
        .unwrap_or(MAX_NEXT_ATTEMPT_DELAY)
        .min(MAX_NEXT_ATTEMPT_DELAY)
}

pub(super) fn summary(report: &RunReport) -> String {
    let mut done = 0;
    let mut failed = 0;
    let mut skipped = 0;
    let mut dry = 0;
    for m in &report.members {
        match m.result {
            MemberResult::Done { .. } => done += 1,
            MemberResult::Failed { .. } => failed += 1,
            MemberResult::Skipped { .. } => skipped += 1,
            MemberResult::DryRun => dry += 1,
            MemberResult::NothingPending => {}
        }
    }
    let mut s = format!("members: {done} done, {failed} failed, {skipped} skipped");
    if dry > 0 {
        s.push_str(&format!(", {dry} dry-run"));
    }
    if let Some(stop) = &report.stopped {
        s.push_str(&format!("; stopped: {stop:?}"));
    }
    s
}

pub(super) fn log_outcome(outcome: &MemberOutcome) {
    match &outcome.result {
        MemberResult::Done {
            synced,
            conflicts_lost,
        } => tracing::info!(knvb_id = %outcome.knvb_id, synced, conflicts_lost, "member done"),
        MemberResult::Failed { error, .. } => {
            tracing::warn!(knvb_id = %outcome.knvb_id, %error, "member failed")
        }
        MemberResult::Skipped { reason } => {
            tracing::info!(knvb_id = %outcome.knvb_id, %reason, "member skipped")
        }
        MemberResult::DryRun => {
            for f in &outcome.fields {
                tracing::info!(
                    knvb_id = %outcome.knvb_id, field = %f.field, live = %f.live_value,
                    new = %f.new_value, decision = ?f.decision, "dry run"
                );
            }
        }
        MemberResult::NothingPending => {}
    }
}

/// Completes when the service is stopping while no save of the member in progress has started;
/// once one has (`save_started`), never: the attempt is then seen through.
async fn stopping_before_a_save(
    cancel: &CancellationToken,
    save_started: &std::sync::atomic::AtomicBool,
) {
    cancel.cancelled().await;
    if save_started.load(std::sync::atomic::Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_attempt_grows_and_is_capped() {
        let base = Duration::from_secs(300);
        assert_eq!(next_attempt_delay(base, 0), Duration::from_secs(300));
        assert_eq!(next_attempt_delay(base, 1), Duration::from_secs(600));
        assert_eq!(next_attempt_delay(base, 30), MAX_NEXT_ATTEMPT_DELAY);
        assert_eq!(next_attempt_delay(Duration::ZERO, 3), Duration::ZERO);
    }
}

//! One attempt at one member (the unit of work): open its pages, push every section, and what an
//! attempt's failure is.

use super::*;

impl<D: SportlinkDriver> Executor<D> {
    /// The unit of work: one attempt at one member, committing its outcome on success. Public so
    /// tests and the CLI can drive a single member without the loop's pacing.
    pub async fn execute_member(
        &mut self,
        knvb_id: &KnvbId,
        dry_run: bool,
    ) -> Result<MemberOutcome, ExecutorError> {
        match self.attempt_member(knvb_id, dry_run, true).await {
            Ok(outcome) => Ok(outcome),
            Err(failed) => Ok(self
                .record_member_failure(knvb_id, failed, 1, dry_run)
                .await?
                .outcome),
        }
    }

    pub(super) async fn attempt_member(
        &mut self,
        knvb_id: &KnvbId,
        dry_run: bool,
        capture_on_failure: bool,
    ) -> Result<MemberOutcome, FailedAttempt> {
        let span = tracing::info_span!("member", knvb_id = %knvb_id, dry_run);
        self.attempt_member_inner(knvb_id, dry_run, capture_on_failure)
            .instrument(span)
            .await
    }

    pub(super) async fn attempt_member_inner(
        &mut self,
        knvb_id: &KnvbId,
        dry_run: bool,
        capture_on_failure: bool,
    ) -> Result<MemberOutcome, FailedAttempt> {
        let knvb = knvb_id.clone();
        let loaded = self
            .store
            .read(move |c| Ok((c.pending_changes(&knvb)?, c.member_is_deceased(&knvb)?)))
            .await;
        let (changes, deceased) =
            loaded.map_err(|e| FailedAttempt::plain(AttemptError::store(e)))?;
        if changes.is_empty() {
            return Ok(MemberOutcome::new(
                knvb_id.clone(),
                MemberResult::NothingPending,
            ));
        }
        let all_ids: Vec<ChangeId> = changes.iter().map(|c| c.id).collect();
        let pending: Vec<(ChangeId, FieldName)> =
            changes.iter().map(|c| (c.id, c.field.clone())).collect();
        if deceased {
            return self
                .skip(
                    knvb_id,
                    all_ids,
                    "deceased member: not pushed to Sportlink",
                    dry_run,
                )
                .await;
        }
        let (forms, unknown) = plan(&self.catalogue, changes);
        if !unknown.is_empty() {
            // A field the executor cannot handle is an error that shows (lessons.md 2).
            let names: Vec<&str> = unknown.iter().map(|c| c.field.as_str()).collect();
            return Err(FailedAttempt {
                error: AttemptError {
                    message: format!("fields unknown to the field catalogue: {names:?}"),
                    kind: FailureKind::Refused,
                },
                change_ids: pending,
                fields: Vec::new(),
                artefacts: None,
                page_times: Vec::new(),
            });
        }
        let mut state = AttemptState::default();
        let Some(first_form) = forms.first().map(|f| f.form.clone()) else {
            return Ok(MemberOutcome::new(
                knvb_id.clone(),
                MemberResult::NothingPending,
            ));
        };
        let started = Instant::now();
        let mut status = self
            .driver
            .member_status(knvb_id.as_str(), &first_form)
            .await;
        if matches!(&status, Err(e) if e.is_session_expired()) {
            // As for a form: a session that expired here costs a login, not an attempt.
            tracing::info!("the session expired opening the member; logging in again");
            if let Err(e) = self.driver.relogin().await {
                let error = AttemptError::from_driver(&e, "logging in again");
                return Err(self
                    .fail(error, pending, state, capture_on_failure, knvb_id, None)
                    .await);
            }
            status = self
                .driver
                .member_status(knvb_id.as_str(), &first_form)
                .await;
        }
        match status {
            Ok(MemberStatus::Active) => {}
            Ok(MemberStatus::Former(status)) => {
                return self
                    .skip(
                        knvb_id,
                        all_ids,
                        &format!("former member: Sportlink shows \"{status}\""),
                        dry_run,
                    )
                    .await;
            }
            // The first form's section is looked up with the status; a member without it is
            // told by `open_form` below (skipped), not here.
            Err(e) if e.missing_section().is_some() => {}
            Err(e) => {
                let error = AttemptError::from_driver(&e, "opening the member");
                return Err(self
                    .fail(error, pending, state, capture_on_failure, knvb_id, None)
                    .await);
            }
        }
        let mut status_time = Some(started.elapsed());
        for planned in &forms {
            let form_started = Instant::now();
            let result = self
                .process_form_with_relogin(knvb_id, planned, dry_run, &mut state)
                .await;
            if matches!(&result, Err(e) if e.kind == FailureKind::Former) {
                if let Err(e) = self.driver.cancel_form(&planned.form).await {
                    tracing::debug!(error = %e, "could not cancel the form");
                }
                return self
                    .skip(
                        knvb_id,
                        all_ids,
                        "former member: Sportlink shows \"Oud bondslid\"",
                        dry_run,
                    )
                    .await;
            }
            let mut elapsed = form_started.elapsed();
            if let Some(extra) = status_time.take() {
                elapsed += extra;
            }
            state.page_times.push(elapsed);
            if let Err(error) = result {
                // Fail fast: the member's changes stay pending; already-saved pages are found in
                // sync by the conflict guard next time and not written again.
                return Err(self
                    .fail(
                        error,
                        pending,
                        state,
                        capture_on_failure,
                        knvb_id,
                        Some(&planned.form),
                    )
                    .await);
            }
        }
        if dry_run {
            return Ok(MemberOutcome {
                knvb_id: knvb_id.clone(),
                result: MemberResult::DryRun,
                fields: state.reports,
                page_times: state.page_times,
            });
        }
        let commit = self.commit(knvb_id, &state).await;
        if commit.is_ok() {
            for a in state
                .audits
                .iter()
                .filter(|a| state.lost.contains(&a.change_id))
            {
                self.alert(AlertEvent::ConflictLost {
                    change_id: a.change_id,
                    knvb_id: knvb_id.clone(),
                    field: a.field.clone(),
                    sportlink_value: a.sportlink_value.clone(),
                    rondo_club_value: a.rondo_club_value.clone(),
                    reason: a.resolution.reason.as_str().to_owned(),
                });
            }
        }
        match commit {
            Ok((synced, lost)) if synced == 0 && lost == 0 && !state.skipped.is_empty() => {
                let reasons: Vec<&str> = state.skipped.iter().map(|(_, r)| r.as_str()).collect();
                let mut reasons = reasons;
                reasons.dedup();
                Ok(MemberOutcome {
                    knvb_id: knvb_id.clone(),
                    result: MemberResult::Skipped {
                        reason: reasons.join("; "),
                    },
                    fields: state.reports,
                    page_times: state.page_times,
                })
            }
            Ok((synced, lost)) => Ok(MemberOutcome {
                knvb_id: knvb_id.clone(),
                result: MemberResult::Done {
                    synced,
                    conflicts_lost: lost,
                },
                fields: state.reports,
                page_times: state.page_times,
            }),
            Err(e) => Err(FailedAttempt {
                error: AttemptError::store(e),
                change_ids: pending,
                fields: state.reports,
                artefacts: None,
                page_times: state.page_times,
            }),
        }
    }

    pub(super) async fn skip(
        &mut self,
        knvb_id: &KnvbId,
        ids: Vec<ChangeId>,
        reason: &str,
        dry_run: bool,
    ) -> Result<MemberOutcome, FailedAttempt> {
        if !dry_run {
            let reason_owned = reason.to_owned();
            self.store
                .write(move |c| {
                    c.resolve_without_push(&ids, ChangeStatus::Skipped, &reason_owned, Utc::now())
                })
                .await
                .map_err(|e| FailedAttempt::plain(AttemptError::store(e)))?;
        }
        Ok(MemberOutcome::new(
            knvb_id.clone(),
            MemberResult::Skipped {
                reason: reason.to_owned(),
            },
        ))
    }

    /// Failure path of an attempt: keep artefacts (on the last try), close any open section.
    pub(super) async fn fail(
        &mut self,
        error: AttemptError,
        change_ids: Vec<(ChangeId, FieldName)>,
        state: AttemptState,
        capture: bool,
        knvb_id: &KnvbId,
        form: Option<&FormSpec>,
    ) -> FailedAttempt {
        tracing::warn!(error = %error.message, "member attempt failed");
        // Keep artefacts of the attempt that ends the member's run (the last try, or a failure
        // that no retry in this run will fix).
        let final_attempt = capture || !error.retryable();
        let artefacts = if final_attempt && error.kind != FailureKind::Store {
            let label = match form {
                Some(f) => format!("{knvb_id}-{}-{}", f.page, f.section),
                None => knvb_id.to_string(),
            };
            self.driver.capture_artefacts(&label).await
        } else {
            None
        };
        if let Some(form) = form {
            if let Err(e) = self.driver.cancel_form(form).await {
                tracing::debug!(error = %e, "could not cancel the form after a failure");
            }
        }
        FailedAttempt {
            error,
            change_ids,
            fields: state.reports,
            artefacts,
            page_times: state.page_times,
        }
    }

    /// A form, retried once after a re-login when the session expired in the middle of it.
    pub(super) async fn process_form_with_relogin(
        &mut self,
        knvb_id: &KnvbId,
        planned: &PlannedForm,
        dry_run: bool,
        state: &mut AttemptState,
    ) -> Result<(), AttemptError> {
        let mut scratch = AttemptState::default();
        match self
            .process_form(knvb_id, planned, dry_run, &mut scratch)
            .await
        {
            Ok(()) => {
                state.absorb(scratch);
                Ok(())
            }
            Err(FormError::Driver(e, context)) if e.is_session_expired() => {
                tracing::info!(%context, "the session expired; logging in again");
                if let Err(e) = self.driver.relogin().await {
                    return Err(AttemptError::from_driver(&e, "logging in again"));
                }
                let mut scratch = AttemptState::default();
                match self
                    .process_form(knvb_id, planned, dry_run, &mut scratch)
                    .await
                {
                    Ok(()) => {
                        state.absorb(scratch);
                        Ok(())
                    }
                    Err(e) => Err(e.into_attempt(&planned.form)),
                }
            }
            Err(e) => Err(e.into_attempt(&planned.form)),
        }
    }
}

/// Why one attempt failed.
#[derive(Debug)]
pub(super) struct AttemptError {
    pub(super) message: String,
    pub(super) kind: FailureKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FailureKind {
    /// Section, button or input not found: Sportlink's UI changed. Not retried in the run.
    Drift,
    /// Sportlink refused the value (validation message). Not retried in the run.
    Refused,
    /// Sportlink stored something else than typed. Not retried in the run.
    Mismatch,
    /// Timeouts, server errors, expired sessions, browser trouble: retried.
    Transient,
    /// The login was refused: stop everything.
    LoginRefused,
    /// The database failed.
    Store,
    /// The member turned out to be a former member: skipped, not failed.
    Former,
}

impl AttemptError {
    pub(super) fn from_driver(e: &DriverError, context: &str) -> Self {
        let kind = if e.is_login_refused() {
            FailureKind::LoginRefused
        } else if e.is_former_member() {
            FailureKind::Former
        } else if e.is_ui_drift() {
            FailureKind::Drift
        } else if matches!(
            e.page_error(),
            Some(crate::sportlink::page::PageError::OptionNotAvailable { .. })
        ) || matches!(e, DriverError::UnknownField(_))
        {
            // The value cannot be typed at all: no retry within the run changes that.
            FailureKind::Refused
        } else if let Some((_, transient)) = e.refusal() {
            if transient {
                FailureKind::Transient
            } else {
                FailureKind::Refused
            }
        } else {
            FailureKind::Transient
        };
        Self {
            message: format!("{context}: {}", error_chain(e)),
            kind,
        }
    }

    pub(super) fn store(e: StoreError) -> Self {
        Self {
            message: format!("database: {e}"),
            kind: FailureKind::Store,
        }
    }

    pub(super) fn retryable(&self) -> bool {
        self.kind == FailureKind::Transient
    }
}

pub(super) struct Attempted {
    pub(super) outcome: MemberOutcome,
    pub(super) login_refused: Option<String>,
}

pub(super) struct FailedAttempt {
    pub(super) error: AttemptError,
    /// The member's pending changes (id, field) that the failure leaves pending.
    pub(super) change_ids: Vec<(ChangeId, FieldName)>,
    pub(super) fields: Vec<FieldReport>,
    pub(super) artefacts: Option<Artefacts>,
    pub(super) page_times: Vec<Duration>,
}

impl FailedAttempt {
    pub(super) fn plain(error: AttemptError) -> Self {
        Self {
            error,
            change_ids: Vec::new(),
            fields: Vec::new(),
            artefacts: None,
            page_times: Vec::new(),
        }
    }
}

#[derive(Default)]
pub(super) struct AttemptState {
    pub(super) reports: Vec<FieldReport>,
    pub(super) synced: Vec<ChangeId>,
    pub(super) lost: Vec<ChangeId>,
    /// Changes that cannot be pushed for a reason about the member (no such section).
    pub(super) skipped: Vec<(ChangeId, String)>,
    pub(super) audits: Vec<Audit>,
    pub(super) page_times: Vec<Duration>,
}

impl AttemptState {
    pub(super) fn absorb(&mut self, other: AttemptState) {
        self.reports.extend(other.reports);
        self.synced.extend(other.synced);
        self.lost.extend(other.lost);
        self.skipped.extend(other.skipped);
        self.audits.extend(other.audits);
    }
}

pub(super) enum FormError {
    Driver(DriverError, &'static str),
    Store(StoreError),
    VerifyMissing {
        field: FieldName,
        endpoint: String,
        pointer: String,
    },
    Mismatch {
        field: FieldName,
        expected: String,
        stored: String,
    },
}

impl FormError {
    pub(super) fn into_attempt(self, form: &FormSpec) -> AttemptError {
        let place = format!("{} page, section \"{}\"", form.page, form.section);
        match self {
            FormError::Driver(e, what) => {
                AttemptError::from_driver(&e, &format!("{place}: {what}"))
            }
            FormError::Store(e) => AttemptError::store(e),
            FormError::VerifyMissing {
                field,
                endpoint,
                pointer,
            } => AttemptError {
                message: format!(
                    "{place}: {field}: Sportlink's {endpoint} has no value at {pointer}"
                ),
                kind: FailureKind::Drift,
            },
            FormError::Mismatch {
                field,
                expected,
                stored,
            } => AttemptError {
                message: format!(
                    "{place}: {field}: after saving, Sportlink holds {stored:?}, not {expected:?}; \
                     not marked synced"
                ),
                kind: FailureKind::Mismatch,
            },
        }
    }
}

/// An error with its causes, on one line (errors are reported to people, not parsed).
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

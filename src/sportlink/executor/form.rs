//! One section of one page: open it, the conflict guard per field, fill, save, verify, and the
//! commit of the outcome (with its audit rows) in one transaction.

use super::*;

impl<D: SportlinkDriver> Executor<D> {
    /// Open the section, apply the conflict guard, write what must be written, save, reload and
    /// verify from Sportlink's JSON.
    pub(super) async fn process_form(
        &mut self,
        knvb_id: &KnvbId,
        planned: &PlannedForm,
        dry_run: bool,
        state: &mut AttemptState,
    ) -> Result<(), FormError> {
        let form = &planned.form;
        let live = match self.driver.open_form(knvb_id.as_str(), form).await {
            Ok(live) => live,
            Err(e) if e.missing_section().is_some() => {
                let reason = format!(
                    "member has no section \"{}\" on the {} page in Sportlink",
                    form.section, form.page
                );
                tracing::info!(%reason, "skipping the section's changes");
                for p in &planned.changes {
                    state.skipped.push((p.change.id, reason.clone()));
                }
                return Ok(());
            }
            Err(e) => return Err(FormError::Driver(e, "opening the section")),
        };

        let mut decided = Vec::with_capacity(planned.changes.len());
        for (index, p) in planned.changes.iter().enumerate() {
            let live_raw = live.get(p.spec.name.as_str()).cloned().unwrap_or_default();
            let d = self
                .guard(knvb_id, index, p, live_raw)
                .await
                .map_err(FormError::Store)?;
            decided.push(d);
        }

        let writes: Vec<(String, String)> = decided
            .iter()
            .filter(|d| d.decision.writes())
            .map(|d| {
                let p = &planned.changes[d.planned_index];
                (
                    p.spec.name.to_string(),
                    p.spec.kind.for_sportlink(&p.change.new_value),
                )
            })
            .collect();

        if !dry_run && !writes.is_empty() {
            // From here on the attempt is seen through to its record, even when the service is
            // stopping: a save that reached Sportlink must not go unrecorded.
            self.save_started
                .store(true, std::sync::atomic::Ordering::SeqCst);
            // A decision that leads to a write is audited before the write, whether or not the
            // attempt gets to its end (a redo after a lost session finds the value already there
            // and decides nothing).
            let audits: Vec<Audit> = decided
                .iter()
                .filter(|d| d.decision.writes())
                .filter_map(|d| d.audit.clone())
                .collect();
            if !audits.is_empty() {
                let knvb = knvb_id.clone();
                self.store
                    .write(move |c| {
                        let now = Utc::now();
                        for a in &audits {
                            a.record(c, &knvb, now)?;
                        }
                        Ok(())
                    })
                    .await
                    .map_err(FormError::Store)?;
            }
        }
        if dry_run || writes.is_empty() {
            self.driver
                .cancel_form(form)
                .await
                .map_err(|e| FormError::Driver(e, "cancelling the section"))?;
        } else {
            self.driver
                .save_form(form, &writes)
                .await
                .map_err(|e| FormError::Driver(e, "saving the section"))?;
        }

        if !dry_run {
            let stored = self
                .driver
                .read_stored(knvb_id.as_str(), form, !writes.is_empty())
                .await
                .map_err(|e| FormError::Driver(e, "reading back what Sportlink stored"))?;
            for d in &decided {
                if matches!(d.decision, FieldDecision::ConflictLost { .. }) {
                    continue;
                }
                let p = &planned.changes[d.planned_index];
                let Some(Some(raw)) = stored.get(p.spec.name.as_str()) else {
                    return Err(FormError::VerifyMissing {
                        field: p.spec.name.clone(),
                        endpoint: p.spec.verify.endpoint.clone(),
                        pointer: p.spec.verify.pointer.clone(),
                    });
                };
                let stored_norm = p.spec.kind.normalise(raw);
                if stored_norm != p.change.new_value && !p.spec.kind.same(raw, &p.change.new_value)
                {
                    return Err(FormError::Mismatch {
                        field: p.spec.name.clone(),
                        expected: p.change.new_value.clone(),
                        stored: raw.clone(),
                    });
                }
            }
        }

        for d in decided {
            let p = &planned.changes[d.planned_index];
            state.reports.push(FieldReport {
                change_id: p.change.id,
                field: p.spec.name.clone(),
                live_value: d.live.clone(),
                new_value: p.change.new_value.clone(),
                decision: d.decision.clone(),
            });
            match &d.decision {
                FieldDecision::ConflictLost { .. } => state.lost.push(p.change.id),
                _ => state.synced.push(p.change.id),
            }
            if let Some(audit) = d.audit {
                // Audits of writes were recorded before the save.
                if dry_run || !d.decision.writes() {
                    state.audits.push(audit);
                }
            }
        }
        Ok(())
    }

    /// The conflict guard (product.md §5): L = live, O = expected Sportlink value, N = new.
    pub(super) async fn guard(
        &self,
        knvb_id: &KnvbId,
        index: usize,
        p: &Planned,
        live_raw: String,
    ) -> Result<Decided, StoreError> {
        let kind = p.spec.kind;
        let live = kind.normalise(&live_raw);
        let new = kind.normalise(&p.change.new_value);
        let old = kind.normalise(&p.change.expected_sportlink_value);
        if live == new {
            return Ok(Decided {
                planned_index: index,
                live: live_raw,
                decision: FieldDecision::AlreadyInSync,
                audit: None,
            });
        }
        if live == old {
            return Ok(Decided {
                planned_index: index,
                live: live_raw,
                decision: FieldDecision::Write,
                audit: None,
            });
        }
        // A run that stopped between Sportlink's save and our record of it (kill -9, power cut)
        // left one of this chain's earlier values there: our own write, not a Sportlink edit.
        let change = p.change.id;
        let earlier = self
            .store
            .read(move |c| c.unrecorded_chain_values(change))
            .await?;
        if earlier.iter().any(|v| kind.normalise(v) == live) {
            tracing::info!(
                field = %p.spec.name, change = %change,
                "Sportlink holds an earlier value of this change's chain (a write not recorded \
                 before a stop); writing the newest"
            );
            return Ok(Decided {
                planned_index: index,
                live: live_raw,
                decision: FieldDecision::Write,
                audit: None,
            });
        }
        let knvb = knvb_id.clone();
        let field = p.spec.name.clone();
        let (sportlink_modified, member_rc_modified) = self
            .store
            .read(move |c| c.field_timestamps(&knvb, &field))
            .await?;
        // The Rondo Club side is the time of the value being pushed (the volunteer's edit), never
        // a later time at which the forward sync copied Sportlink's own value into Rondo Club.
        let rondo_club_modified = p.change.rondo_club_modified_gmt.or(member_rc_modified);
        let resolution = resolve(&ConflictInput {
            kind,
            sportlink_value: &live,
            rondo_club_value: &new,
            sportlink_modified,
            rondo_club_modified,
        });
        let audit = Audit {
            change_id: p.change.id,
            field: p.spec.name.clone(),
            kind,
            sportlink_value: live.clone(),
            rondo_club_value: new.clone(),
            sportlink_modified,
            rondo_club_modified,
            resolution,
        };
        let reason = resolution.reason.as_str().to_owned();
        let decision = match resolution.winner {
            Winner::Neither => FieldDecision::AlreadyInSync,
            Winner::RondoClub => FieldDecision::WriteAfterConflict { reason },
            Winner::Sportlink => FieldDecision::ConflictLost { reason },
        };
        tracing::info!(
            field = %p.spec.name, decision = ?decision,
            "Sportlink holds neither the expected old value nor the new value"
        );
        Ok(Decided {
            planned_index: index,
            live: live_raw,
            audit: (resolution.winner != Winner::Neither).then_some(audit),
            decision,
        })
    }

    /// One transaction for the member: synced rows (by id, with timestamps and `sync_origin`),
    /// lost conflicts, and the audit rows.
    pub(super) async fn commit(
        &self,
        knvb_id: &KnvbId,
        state: &AttemptState,
    ) -> Result<(usize, usize), StoreError> {
        let knvb = knvb_id.clone();
        let synced = state.synced.clone();
        let lost = state.lost.clone();
        let audits = state.audits.clone();
        let skipped = state.skipped.clone();
        self.store
            .write(move |c| {
                let now = Utc::now();
                for (id, reason) in &skipped {
                    c.resolve_without_push(&[*id], ChangeStatus::Skipped, reason, now)?;
                }
                let n_synced = if synced.is_empty() {
                    0
                } else {
                    c.mark_synced(&synced, now)?
                };
                for a in &audits {
                    a.record(c, &knvb, now)?;
                }
                let mut n_lost = 0;
                for a in audits.iter().filter(|a| lost.contains(&a.change_id)) {
                    n_lost += c.resolve_without_push(
                        &[a.change_id],
                        ChangeStatus::ConflictLost,
                        &format!(
                            "Sportlink holds {:?}, changed there meanwhile; Sportlink wins ({})",
                            a.sportlink_value,
                            a.resolution.reason.as_str()
                        ),
                        now,
                    )?;
                }
                Ok((n_synced, n_lost))
            })
            .await
    }
}

/// The guard's decision plus what the audit row needs.
pub(super) struct Decided {
    pub(super) planned_index: usize,
    pub(super) live: String,
    pub(super) decision: FieldDecision,
    pub(super) audit: Option<Audit>,
}

#[derive(Debug, Clone)]
pub(super) struct Audit {
    pub(super) change_id: ChangeId,
    pub(super) field: FieldName,
    pub(super) kind: FieldKind,
    pub(super) sportlink_value: String,
    pub(super) rondo_club_value: String,
    pub(super) sportlink_modified: Option<DateTime<Utc>>,
    pub(super) rondo_club_modified: Option<DateTime<Utc>>,
    pub(super) resolution: Resolution,
}

impl Audit {
    pub(super) fn record(
        &self,
        c: &crate::store::Conn<'_>,
        knvb_id: &KnvbId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let input = ConflictInput {
            kind: self.kind,
            sportlink_value: &self.sportlink_value,
            rondo_club_value: &self.rondo_club_value,
            sportlink_modified: self.sportlink_modified,
            rondo_club_modified: self.rondo_club_modified,
        };
        c.record_conflict(
            knvb_id,
            &self.field,
            &input,
            &self.resolution,
            Some(self.change_id),
            now,
        )?;
        Ok(())
    }
}

//! What an operator does by hand, shared by the admin API (`/api/deliveries/{id}/replay`,
//! `/api/changes/{id}/requeue`) and the `replay` CLI verb, so both run the same code: replay a
//! stored webhook delivery through detection, and put a resolved change back in the queue.
//! (Re-detecting a member from Rondo Club is `poll::redetect_member`, also shared.)

use chrono::{DateTime, Utc};

use crate::detect::{Person, Sighting};
use crate::domain::{ChangeId, Source};
use crate::store::{
    ChangeRecord, RunKind, RunStatus, SightingContext, SightingResult, Store, StoreError,
};
use crate::webhook::event::Event;

/// A stored delivery body as a sighting with source `replay`, parsed by the webhook's own event
/// parser. The body passed signature verification when it arrived.
fn replay_sighting(body: &[u8]) -> Result<Sighting, String> {
    let data = match Event::parse_stored(body).map_err(|e| format!("the stored delivery: {e}"))? {
        Event::PersonCreated(data) | Event::PersonUpdated(data) => data,
        other => {
            return Err(format!(
                "a {:?} event carries no person to detect changes in",
                other.event_type()
            ))
        }
    };
    let person =
        Person::from_json(&data.person_json()).map_err(|e| format!("the stored event's {e}"))?;
    Ok(Sighting {
        person,
        source: Source::Replay,
        origin: Some(data.origin),
    })
}

/// Re-runs a stored webhook delivery through detection (source `replay`), recorded as a replay
/// run. Never moves the poll's watermark. `NotFound` for an unknown id, `Rejected` for a
/// delivery that holds no person.
pub async fn replay_delivery(
    store: &Store,
    id: String,
    now: DateTime<Utc>,
) -> Result<SightingResult, StoreError> {
    let result = store
        .write(move |db| {
            let delivery = db
                .delivery(&id)?
                .ok_or_else(|| StoreError::NotFound(format!("delivery {id:?}")))?;
            let sighting = replay_sighting(&delivery.body).map_err(|reason| {
                StoreError::Rejected(format!("delivery {id:?} cannot be replayed: {reason}"))
            })?;
            let knvb = sighting.person.knvb_id().map(String::from);
            let run = db.start_run(RunKind::Replay, knvb.as_deref(), false, now)?;
            let context = SightingContext {
                run_id: Some(run),
                delivery_id: Some(&id),
                dry_run: false,
            };
            let result = db.apply_sighting(&sighting, &context, now)?;
            db.add_to_run(run, 1, result.change_ids.len() as u64)?;
            db.finish_run(
                run,
                RunStatus::Completed,
                Some(&format!("delivery {id}: {}", result.verdict.as_str())),
                None,
                now,
            )?;
            db.mark_delivery_replayed(&id, now)?;
            Ok(result)
        })
        .await?;
    tracing::info!(
        verdict = result.verdict.as_str(),
        changes = result.change_ids.len(),
        "delivery replayed"
    );
    Ok(result)
}

/// Puts a failed, skipped or conflict-lost change back in the queue (pending again).
/// `NotFound` for an unknown id, `Rejected` with the reason when it cannot be requeued.
pub async fn requeue_change(
    store: &Store,
    id: ChangeId,
    now: DateTime<Utc>,
) -> Result<ChangeRecord, StoreError> {
    let record = store
        .write(move |db| {
            db.requeue(id, now)?;
            db.change(id)?
                .ok_or_else(|| StoreError::NotFound(format!("change {id}")))
        })
        .await?;
    tracing::info!(change = %id, knvb_id = %record.knvb_id, "change requeued by the operator");
    Ok(record)
}

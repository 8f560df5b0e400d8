//! From a verified delivery to a committed record. In one transaction: the delivery row (keyed by
//! `webhook-id`, the idempotency guard), detection through the one detection path (source
//! `webhook`, the origin the snippet reported), and the new baseline. Only after the commit may
//! the sender be told 2xx.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::event::{claimed_type, Event, PersonData};
use super::signature::VerifiedBody;
use crate::detect::{Person, Sighting, Verdict};
use crate::domain::{ChangeId, KnvbId, Source};
use crate::store::{DeliveryOutcome, NewDelivery, SightingContext, Store, StoreError};

/// What became of a delivery once it is committed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Ingested {
    /// A person event went through detection.
    Processed {
        knvb_id: Option<KnvbId>,
        verdict: Verdict,
        change_ids: Vec<ChangeId>,
    },
    /// `person.trashed`: recorded, nothing detected.
    Trashed,
    /// An event type we do not handle: recorded, acknowledged.
    Ignored { event_type: String },
    /// Verified but not an event we understand: recorded, answered 400 with this reason.
    Rejected { reason: String },
    /// This `webhook-id` was recorded before; nothing was done.
    Duplicate,
}

/// What the transaction has to do, worked out before it starts (parsing is pure).
enum Plan {
    Detect {
        sighting: Sighting,
        knvb_id: Option<KnvbId>,
        event_type: String,
    },
    Trashed {
        knvb_id: Option<KnvbId>,
    },
    Ignored {
        event_type: String,
    },
    Rejected {
        reason: String,
        event_type: Option<String>,
    },
}

fn knvb_id_of(data: &PersonData) -> Option<KnvbId> {
    let raw = data.acf.get("knvb-id")?;
    KnvbId::parse(&crate::normalise::json_scalar(raw)).ok()
}

fn plan(body: &VerifiedBody) -> (Plan, Option<i64>) {
    let event = match Event::parse(body) {
        Ok(event) => event,
        Err(e) => {
            let plan = Plan::Rejected {
                reason: e.to_string(),
                event_type: claimed_type(body),
            };
            return (plan, None);
        }
    };
    let event_type = event.event_type().to_owned();
    match event {
        Event::PersonCreated(data) | Event::PersonUpdated(data) => {
            let post_id = i64::try_from(data.id).ok();
            match Person::from_json(&data.person_json()) {
                Ok(person) => (
                    Plan::Detect {
                        knvb_id: knvb_id_of(&data),
                        event_type,
                        sighting: Sighting {
                            person,
                            source: Source::Webhook,
                            origin: Some(data.origin),
                        },
                    },
                    post_id,
                ),
                Err(e) => (
                    Plan::Rejected {
                        reason: format!("data: {e}"),
                        event_type: Some(event_type),
                    },
                    post_id,
                ),
            }
        }
        Event::PersonTrashed(data) => (
            Plan::Trashed {
                knvb_id: knvb_id_of(&data),
            },
            i64::try_from(data.id).ok(),
        ),
        Event::Unknown { event_type } => (Plan::Ignored { event_type }, None),
    }
}

/// Records and processes one verified delivery; returns once it is durably committed.
pub async fn ingest(
    store: &Store,
    body: VerifiedBody,
    now: DateTime<Utc>,
) -> Result<Ingested, StoreError> {
    let (plan, wp_post_id) = plan(&body);
    store
        .write(move |db| {
            let (outcome, event_type, knvb_id, detail) = match &plan {
                Plan::Detect {
                    knvb_id,
                    event_type,
                    ..
                } => (
                    DeliveryOutcome::Processed,
                    Some(event_type.as_str()),
                    knvb_id.as_ref(),
                    None,
                ),
                Plan::Trashed { knvb_id } => (
                    DeliveryOutcome::Trashed,
                    Some("person.trashed"),
                    knvb_id.as_ref(),
                    None,
                ),
                Plan::Ignored { event_type } => (
                    DeliveryOutcome::Ignored,
                    Some(event_type.as_str()),
                    None,
                    Some("event type not handled"),
                ),
                Plan::Rejected { reason, event_type } => (
                    DeliveryOutcome::Rejected,
                    event_type.as_deref(),
                    None,
                    Some(reason.as_str()),
                ),
            };
            let inserted = db.insert_delivery(&NewDelivery {
                id: body.webhook_id(),
                received_at: now,
                webhook_timestamp: body.timestamp(),
                event_type,
                wp_post_id,
                knvb_id: knvb_id.map(KnvbId::as_str),
                outcome,
                detail,
                body: body.bytes(),
            })?;
            if !inserted {
                return Ok(Ingested::Duplicate);
            }
            Ok(match plan {
                Plan::Detect { sighting, .. } => {
                    let context = SightingContext {
                        run_id: None,
                        delivery_id: Some(body.webhook_id()),
                        dry_run: false,
                    };
                    let result = db.apply_sighting(&sighting, &context, now)?;
                    let detail = format!(
                        "{}: {} change(s)",
                        result.verdict.as_str(),
                        result.change_ids.len()
                    );
                    db.set_delivery_result(
                        body.webhook_id(),
                        result.knvb_id.as_ref().map(KnvbId::as_str),
                        DeliveryOutcome::Processed,
                        &detail,
                    )?;
                    Ingested::Processed {
                        knvb_id: result.knvb_id,
                        verdict: result.verdict,
                        change_ids: result.change_ids,
                    }
                }
                Plan::Trashed { .. } => Ingested::Trashed,
                Plan::Ignored { event_type } => Ingested::Ignored { event_type },
                Plan::Rejected { reason, .. } => Ingested::Rejected { reason },
            })
        })
        .await
}

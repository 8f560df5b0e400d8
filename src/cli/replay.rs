//! `replay`: what the admin API's replay and requeue do, for an operator on the server.

use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;

use super::Failure;
use rondo_reverse_sync::catalogue::Catalogue;
use rondo_reverse_sync::config::Settings;
use rondo_reverse_sync::domain::{ChangeId, KnvbId};
use rondo_reverse_sync::{open_existing_store, poll};

#[derive(Subcommand)]
pub enum ReplayWhat {
    /// Run a stored webhook delivery through detection again (source `replay`).
    Delivery {
        /// The delivery's webhook-id.
        id: String,
    },
    /// Fetch one member from Rondo Club now and run it through detection (source `replay`).
    Member {
        /// The member's KNVB id.
        knvb_id: String,
    },
    /// Put a failed, skipped or conflict-lost change back in the queue.
    Change {
        /// The change's id (as `status`, the operator page and the API show it).
        id: i64,
    },
}

/// `replay`: the admin API's code paths (`replay::replay_delivery`, `poll::redetect_member`,
/// `replay::requeue_change`), reported as text.
pub async fn replay(
    settings: &Settings,
    catalogue: Arc<Catalogue>,
    what: ReplayWhat,
) -> Result<(), Failure> {
    use rondo_reverse_sync::replay;
    let store = {
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || open_existing_store(&settings, catalogue))
            .await
            .context("opening the database")??
    };
    let now = chrono::Utc::now();
    match what {
        ReplayWhat::Delivery { id } => {
            let result = replay::replay_delivery(&store, id.clone(), now).await?;
            println!(
                "delivery {id}: {} ({} change(s))",
                result.verdict.as_str(),
                result.change_ids.len()
            );
            for (change_id, change) in result.change_ids.iter().zip(&result.changes) {
                println!(
                    "  change {change_id}: {} {:?} -> {:?}",
                    change.field, change.old_value, change.new_value
                );
            }
        }
        ReplayWhat::Member { knvb_id } => {
            let knvb_id = KnvbId::parse(&knvb_id).map_err(|e| Failure::Usage(e.to_string()))?;
            let client = poll::RondoClient::new(&settings.rondo_club, &settings.poll)
                .map_err(|e| Failure::Usage(e.to_string()))?;
            let report = poll::redetect_member(&store, &client, knvb_id)
                .await
                .map_err(|e| Failure::Failed(e.into()))?;
            print!("{}", report.summary());
        }
        ReplayWhat::Change { id } => {
            if id <= 0 {
                return Err(Failure::Usage(format!(
                    "change id {id} is not a positive integer"
                )));
            }
            let record = replay::requeue_change(&store, ChangeId(id), now).await?;
            println!(
                "change {} ({} {}) is {} again; the running service's executor picks it up \
                 on its next round (or run `sync`)",
                record.id, record.knvb_id, record.field, record.status
            );
        }
    }
    Ok(())
}

//! `detect` and `baseline`: the poll of Rondo Club, run once from the command line.

use std::sync::Arc;

use super::{cancel_on_ctrl_c, Failure};
use rondo_reverse_sync::catalogue::Catalogue;
use rondo_reverse_sync::config::Settings;
use rondo_reverse_sync::domain::KnvbId;
use rondo_reverse_sync::{open_existing_store, poll};

/// Polls Rondo Club now (people modified since the last poll, or everyone with `full`) and
/// detects changes.
pub async fn detect(
    settings: &Settings,
    catalogue: Arc<Catalogue>,
    knvb_id: Option<&str>,
    dry_run: bool,
    full: bool,
) -> Result<(), Failure> {
    let knvb_id = knvb_id
        .map(KnvbId::parse)
        .transpose()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let request = poll::PollRequest {
        mode: if full {
            poll::PollMode::Full
        } else {
            poll::PollMode::Incremental
        },
        knvb_id,
        dry_run,
    };
    poll_verb(settings, catalogue, Some(request)).await
}

/// Imports every person from Rondo Club as the starting state, without emitting changes.
pub async fn baseline(settings: &Settings, catalogue: Arc<Catalogue>) -> Result<(), Failure> {
    poll_verb(settings, catalogue, None).await
}

/// `detect` (a request) or `baseline` (none), with a short report.
async fn poll_verb(
    settings: &Settings,
    catalogue: Arc<Catalogue>,
    request: Option<poll::PollRequest>,
) -> Result<(), Failure> {
    let store = open_existing_store(settings, catalogue)?;
    let client = poll::RondoClient::new(&settings.rondo_club, &settings.poll)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let (cancel, on_ctrl_c) = cancel_on_ctrl_c();
    let outcome = match request {
        Some(request) => {
            poll::run_poll_until(&store, &client, &settings.poll, request, &cancel).await
        }
        None => poll::run_baseline(&store, &client, &cancel).await,
    };
    on_ctrl_c.abort();
    let report = outcome.map_err(|e| Failure::Failed(e.into()))?;
    print!("{}", report.summary());
    Ok(())
}

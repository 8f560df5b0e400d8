//! `status`: change counts, the last detection and delivery, the schema version.

use std::sync::Arc;

use super::Failure;
use rondo_reverse_sync::catalogue::Catalogue;
use rondo_reverse_sync::config::Settings;
use rondo_reverse_sync::open_existing_store;

/// Prints the counts and times as text, or as JSON.
pub async fn status(
    settings: &Settings,
    catalogue: Arc<Catalogue>,
    json: bool,
) -> Result<(), Failure> {
    let store = open_existing_store(settings, catalogue)?;
    let (counts, last, schema, watermark, delivery, invalid) = store
        .read(|db| {
            Ok((
                db.change_counts()?,
                db.last_detection_time()?,
                db.schema_info()?,
                db.watermark()?,
                db.last_delivery()?,
                db.invalid_knvb_ids(20)?,
            ))
        })
        .await?;
    if json {
        let value = serde_json::json!({
            "changes": counts,
            "last_detection_at": last,
            "poll_watermark": watermark,
            "schema_version": schema.version,
            "last_delivery": delivery,
            "invalid_knvb_ids": invalid,
        });
        println!("{value:#}");
    } else {
        println!("schema version      {}", schema.version);
        println!(
            "last detection      {}",
            last.map_or("never".into(), |t| t.to_rfc3339())
        );
        println!(
            "poll watermark      {}",
            watermark.map_or("none".into(), |t| t.to_rfc3339())
        );
        match &delivery {
            None => println!("last delivery       none received"),
            Some(d) => println!(
                "last delivery       {} {} {}{}{} ({})",
                d.received_at.to_rfc3339(),
                d.outcome,
                d.event_type.as_deref().unwrap_or("-"),
                d.knvb_id
                    .as_deref()
                    .map_or(String::new(), |k| format!(" member {k}")),
                d.detail
                    .as_deref()
                    .map_or(String::new(), |t| format!(": {t}")),
                d.id
            ),
        }
        for person in &invalid {
            println!(
                "invalid knvb-id     post {} holds {:?} (seen via {}, {})",
                person.wp_post_id,
                person.value,
                person.source,
                person.last_seen_at.to_rfc3339()
            );
        }
        println!("changes pending     {}", counts.pending);
        println!("changes failed      {}", counts.failed);
        println!("changes conflict    {}", counts.conflict_lost);
        println!("changes skipped     {}", counts.skipped);
        println!("changes superseded  {}", counts.superseded);
        println!("changes synced      {}", counts.synced);
    }
    Ok(())
}

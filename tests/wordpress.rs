//! Against a real WordPress, through the real snippet.

#[path = "support/wordpress.rs"]
mod wordpress;

use serde_json::json;
use wordpress::WordPress;

#[tokio::test]
async fn harness_smoke() -> anyhow::Result<()> {
    let wp = WordPress::shared().await?;
    let id = wp
        .create_person(
            &wp.volunteer,
            "http://127.0.0.1:9/",
            json!({"knvb-id": "SMK0001", "email_1": "a@example.org"}),
        )
        .await?;
    let person = wp.get_person(&wp.admin, id).await?;
    assert_eq!(person["acf"]["email_1"], "a@example.org");
    let pending = wp.pending_deliveries().await?;
    assert!(pending.iter().any(|p| p["post_id"] == id), "{pending:?}");
    wp.run_cron().await?;
    Ok(())
}

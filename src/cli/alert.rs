//! `test-alert`: one test alert through every configured transport.

use super::Failure;
use rondo_reverse_sync::config::Settings;

/// Exit 0 only when every configured transport took the test alert.
pub async fn test_alert(settings: &Settings) -> Result<(), Failure> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this machine".into());
    let note = format!("sent by `rondo-reverse-sync test-alert` on {host}");
    let checks = rondo_reverse_sync::alerts::send_test_alert(&settings.alerts, &note)
        .await
        .map_err(|e| Failure::Usage(format!("config: {e}")))?;
    if checks.is_empty() {
        return Err(Failure::Usage(
            "config: alerts: no transport configured (set alerts.smtp_server and/or alerts.webhook_url)"
                .into(),
        ));
    }
    let mut failed = 0;
    for check in &checks {
        match &check.result {
            Ok(()) => println!("{:<8} {}: sent", check.transport, check.target),
            Err(e) => {
                failed += 1;
                println!("{:<8} {}: FAILED: {e}", check.transport, check.target);
            }
        }
    }
    if failed > 0 {
        return Err(Failure::Failed(anyhow::anyhow!(
            "{failed} of {} alert transports failed",
            checks.len()
        )));
    }
    Ok(())
}

//! The verbs that use the Sportlink account: `sync` (push the pending changes now), `check` (the
//! configuration, the logins, and a member's pages against the catalogue) and `audit` (compare
//! every member read-only). None of them runs beside `serve`, which holds the account.

use std::sync::Arc;

use anyhow::Context;

use super::{cancel_on_ctrl_c, Failure};
use rondo_reverse_sync::catalogue::Catalogue;
use rondo_reverse_sync::clock;
use rondo_reverse_sync::config::{Needs, Settings};
use rondo_reverse_sync::domain::KnvbId;
use rondo_reverse_sync::store::AuditRunStatus;
use rondo_reverse_sync::{open_existing_store, poll, sportlink};

/// Pushes the pending changes into Sportlink now and reports per member; exit 1 when something
/// was not pushed.
pub async fn sync(
    settings: &Settings,
    catalogue: Arc<Catalogue>,
    knvb_id: Option<&str>,
    dry_run: bool,
) -> Result<(), Failure> {
    let only = knvb_id
        .map(KnvbId::parse)
        .transpose()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let store = open_existing_store(settings, catalogue)?;
    // Ctrl-C stops between members; the browser is closed either way.
    let (cancel, on_ctrl_c) = cancel_on_ctrl_c();
    let report = sportlink::setup::sync(
        settings,
        store,
        only.as_ref(),
        dry_run,
        &cancel,
        clock::system(),
    )
    .await;
    on_ctrl_c.abort();
    let report = report.context("sync")?;
    print!("{}", sportlink::setup::render_report(&report));
    if sportlink::setup::report_failed(&report) {
        return Err(Failure::Failed(anyhow::anyhow!(
            "not everything was pushed"
        )));
    }
    Ok(())
}

/// Checks the configuration and that the Sportlink login works (and Rondo Club's, when it is
/// configured); with a member, looks at its pages against the field catalogue, read-only.
pub async fn check(
    settings: &Settings,
    catalogue: &Catalogue,
    member: Option<&str>,
) -> Result<(), Failure> {
    let member = member
        .map(KnvbId::parse)
        .transpose()
        .map_err(|e| Failure::Usage(format!("--member: {e}")))?;
    // Rondo Club is optional for `check` (a site may rely on webhooks alone), but
    // when it is configured its application password must really work.
    if !settings.rondo_club.base_url.trim().is_empty() {
        settings
            .validate(Needs {
                rondo_club: true,
                ..Needs::DATABASE_ONLY
            })
            .map_err(|e| Failure::Usage(e.to_string()))?;
        let client = poll::RondoClient::new(&settings.rondo_club, &settings.poll)
            .map_err(|e| Failure::Usage(e.to_string()))?;
        client.whoami().await.context("Rondo Club credentials")?;
        println!("Rondo Club: the application password works");
    }
    sportlink::setup::check_login(settings, clock::system())
        .await
        .context("Sportlink login")?;
    println!("configuration valid; Sportlink login works");
    if let Some(member) = member {
        let check = sportlink::setup::check_member(settings, catalogue, &member, clock::system())
            .await
            .context("checking the member's pages")?;
        println!("{check}");
        if !check.matches_catalogue() {
            return Err(anyhow::anyhow!(
                "member {member}: Sportlink's pages do not match the field catalogue (see above)"
            )
            .into());
        }
    }
    Ok(())
}

/// `audit`: run or resume the divergence audit through a CLI executor, then print its counts
/// (and write the CSV when asked). Exit 1 when it failed.
pub async fn audit(
    settings: &Settings,
    catalogue: Arc<Catalogue>,
    new: bool,
    cancel_only: bool,
    csv: Option<&std::path::Path>,
) -> Result<(), Failure> {
    use rondo_reverse_sync::audit;
    let store = open_existing_store(settings, catalogue)?;
    if cancel_only {
        let cancelled = store
            .write(|c| match c.active_audit()? {
                Some(run) => c
                    .cancel_audit(run.id, chrono::Utc::now())
                    .map(|_| Some(run.id)),
                None => Ok(None),
            })
            .await?;
        match cancelled {
            Some(id) => println!("audit {id} cancelled"),
            None => println!("no unfinished audit"),
        }
        return Ok(());
    }
    // Rondo Club is read fresh when it is configured; else the service's last seen state.
    let rondo = if settings.rondo_club.base_url.trim().is_empty() {
        eprintln!("rondo_club is not configured: comparing with the last state the service saw");
        None
    } else {
        settings
            .validate(Needs {
                rondo_club: true,
                ..Needs::DATABASE_ONLY
            })
            .map_err(|e| Failure::Usage(e.to_string()))?;
        Some(
            poll::RondoClient::new(&settings.rondo_club, &settings.poll)
                .map_err(|e| Failure::Usage(e.to_string()))?,
        )
    };
    let lock = sportlink::setup::lock_account(settings).context("Sportlink account lock")?;
    let mut executor = sportlink::setup::chromium_executor(
        &settings.sportlink,
        store.clone(),
        lock,
        clock::system(),
    )
    .context("Sportlink executor")?;
    let (cancel, on_ctrl_c) = cancel_on_ctrl_c();
    let options = audit::cli::AuditOptions { new };
    let end = audit::cli::run(&mut executor, rondo.as_ref(), &options, &cancel).await;
    executor.close().await;
    on_ctrl_c.abort();
    let end = end.context("audit")?;
    let id = end.run.id;
    let counts = store.read(move |c| c.audit_counts(id)).await?;
    println!("{}", audit::progress_line(&end.run));
    println!("{}", audit::summary(&counts));
    if let Some(path) = csv {
        let rows = store
            .read(move |c| c.audit_results(id, &[], u32::MAX, 0))
            .await?;
        std::fs::write(path, audit::to_csv(&rows))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("{} rows written to {}", rows.len(), path.display());
    }
    if end.interrupted {
        println!("interrupted: run `audit` again to resume");
        return Ok(());
    }
    if end.run.status == AuditRunStatus::Failed {
        return Err(Failure::Failed(anyhow::anyhow!(
            "audit {id} failed: {}",
            end.run.error.unwrap_or_default()
        )));
    }
    Ok(())
}

//! The operator page's views without a server: reasons, escaping, and the HTML check that every
//! text on every page comes from the catalogue, in Dutch and in English.

use chrono::{TimeDelta, Utc};

use super::history::{confirm_page, history_page, member_page, HistoryScreen};
use super::i18n::{L10n, Lang, MARK};
use super::views::{changes_table, dashboard, reason, value_text, Banner, PageData};
use crate::conflict::{Reason, Winner};
use crate::domain::{ChangeId, FieldName, Source};
use crate::http::admin::history::{HistoryPage, HistoryParams};
use crate::http::admin::StatusView;
use crate::http::ops::{ExecutorStateView, ExecutorView};
use crate::store::{
    ChangeRecord, ChangeStatusCounts, ConflictRecord, DeliveryOutcome, DeliverySummary, HistoryRow,
    InvalidKnvbId, RunRecord,
};

fn l(lang: Lang) -> L10n {
    L10n {
        lang,
        tz: chrono_tz::Europe::Amsterdam,
    }
}

fn change(id: i64, status: &str) -> ChangeRecord {
    ChangeRecord {
        id: ChangeId(id),
        knvb_id: "ABC1234".into(),
        field: FieldName::parse("email").unwrap(),
        old_value: "a@b.nl".into(),
        new_value: String::new(),
        source: crate::domain::Source::Webhook,
        status: crate::domain::ChangeStatus::parse(status).expect("a change status"),
        status_reason: None,
        attempts: 0,
        last_error: None,
        next_attempt_at: None,
        superseded_by: None,
        detected_at: Utc::now(),
        synced_at: None,
        delivery_id: None,
        detection_run_id: None,
    }
}

#[test]
fn every_unsynced_change_has_a_reason() {
    let en = l(Lang::En);
    let mut c = change(7, "pending");
    assert_eq!(reason(&en, &c), "Waiting for the executor.");
    assert_eq!(reason(&l(Lang::Nl), &c), "Wacht op verwerking.");
    c.attempts = 2;
    c.last_error = Some("timeout".into());
    c.next_attempt_at = Some(Utc::now());
    assert!(reason(&en, &c).starts_with("Attempt 2 failed: timeout. Next attempt "));
    for status in ["failed", "skipped", "conflict_lost", "superseded"] {
        assert!(
            reason(&en, &change(7, status)).contains("no reason recorded"),
            "{status}"
        );
    }
    let mut c = change(7, "skipped");
    c.status_reason = Some("former member (Oud bondslid)".into());
    assert_eq!(reason(&en, &c), "former member (Oud bondslid)");
    assert_eq!(value_text(&en, ""), "(empty)");
}

#[test]
fn markup_is_escaped() {
    let mut c = change(7, "failed");
    c.status_reason = Some("<script>alert(1)</script>".into());
    let html = changes_table(&l(Lang::Nl), &[c], "csrf", true).into_string();
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;"));
}

/// Everything a page can show, with values that are easy to tell apart from texts.
struct Fixture {
    data: PageData,
    history: HistoryPage,
    /// The values from the database the pages show (not texts, so not in the catalogue).
    values: Vec<String>,
}

fn fixture() -> Fixture {
    let now = Utc::now();
    let mut pending = change(11, "pending");
    pending.attempts = 1;
    pending.last_error = Some("navigation timed out".into());
    pending.next_attempt_at = Some(now + TimeDelta::minutes(5));
    let mut failed = change(12, "failed");
    failed.status_reason = Some("gave up after 5 attempts".into());
    failed.last_error = Some("gave up after 5 attempts".into());
    failed.attempts = 5;
    let mut refused = change(13, "pending");
    refused.new_value = "99999".into();
    refused.field = FieldName::parse("postal_code").unwrap();
    refused.attempts = 1;
    refused.last_error =
        Some("Sportlink refused the save of section \"Adres\": Ongeldige postcode".into());
    let mut conflict = change(14, "conflict_lost");
    conflict.status_reason = Some("sportlink_newer".into());
    let mut synced = change(15, "synced");
    synced.synced_at = Some(now);
    let mut superseded = change(16, "superseded");
    superseded.superseded_by = Some(ChangeId(17));
    let run = |id: i64, kind: &str, detail: &str, seen: u64, changes: u64| RunRecord {
        id,
        kind: crate::store::RunKind::parse(kind).expect("a run kind"),
        status: crate::store::RunStatus::Completed,
        started_at: now - TimeDelta::minutes(id),
        finished_at: Some(now),
        knvb_id: None,
        dry_run: false,
        people_seen: seen,
        changes_detected: changes,
        detail: Some(detail.into()),
        error: None,
    };
    let status = StatusView {
        changes: ChangeStatusCounts {
            pending: 2,
            synced: 1,
            superseded: 1,
            conflict_lost: 1,
            skipped: 0,
            failed: 1,
        },
        executor: Some(ExecutorView {
            state: ExecutorStateView::Paused {
                reason: "section Communicatie not found".into(),
                since: Some(now),
                until: Some(now + TimeDelta::minutes(30)),
            },
            consecutive_drift_failures: 5,
            last_run_finished_at: Some(now),
            last_error: Some("section Communicatie not found".into()),
        }),
        poll_watermark: Some(now),
        last_webhook: Some(DeliverySummary {
            id: "msg_1".into(),
            received_at: now,
            event_type: Some("person.updated".into()),
            knvb_id: Some("ABC1234".into()),
            outcome: DeliveryOutcome::Processed,
            detail: None,
        }),
        invalid_knvb_id_count: 1,
        invalid_knvb_ids: vec![InvalidKnvbId {
            wp_post_id: 99,
            value: "AB\\u{200b}C".into(),
            source: Source::Webhook,
            delivery_id: None,
            first_seen_at: now,
            last_seen_at: now,
        }],
    };
    let rows = [&pending, &failed, &refused, &conflict, &synced, &superseded]
        .into_iter()
        .map(|c| HistoryRow {
            change: c.clone(),
            member_name: Some("Jan de Vries".into()),
            received_at: Some(now),
            run_kind: None,
            run_started_at: None,
            resolved_at: Some(now),
            conflict_winner: (c.status == "conflict_lost").then_some(Winner::Sportlink),
            conflict_reason: (c.status == "conflict_lost").then_some(Reason::SportlinkNewer),
            conflict_sportlink_value: (c.status == "conflict_lost").then(|| "s@example.nl".into()),
        })
        .collect();
    Fixture {
        data: PageData {
            audit: crate::http::audit::AuditOverview::NoneYet,
            status,
            pending: vec![pending.clone(), refused.clone()],
            attention: vec![failed.clone(), conflict.clone()],
            conflicts: vec![ConflictRecord {
                id: 1,
                knvb_id: "ABC1234".into(),
                field: FieldName::parse("email").unwrap(),
                sportlink_value: Some("s@example.nl".into()),
                rondo_club_value: Some("r@example.nl".into()),
                sportlink_modified: Some(now),
                rondo_club_modified: Some(now),
                winning_system: Winner::Sportlink,
                resolution_reason: Reason::SportlinkNewer,
                resolved_at: now,
                change_id: Some(ChangeId(14)),
            }],
            runs: vec![
                run(
                    1,
                    "poll",
                    r#"{"people_changed":1,"changes":4,"newest_modified_gmt":"2026-11-30T14:17:00Z","watermark":"2026-11-30T14:17:00Z"}"#,
                    3,
                    4,
                ),
                run(2, "sync", "members: 1 done, 0 failed, 0 skipped", 0, 0),
                run(3, "poll", r#"{"people_changed":0,"changes":0}"#, 0, 0),
                run(4, "poll", r#"{"people_changed":0,"changes":0}"#, 0, 0),
            ],
        },
        history: HistoryPage {
            changes: rows,
            next_before: Some(ChangeId(11)),
        },
        values: [
            "ABC1234",
            "email",
            "postal_code",
            "a@b.nl",
            "99999",
            "s@example.nl",
            "r@example.nl",
            "navigation timed out",
            "gave up after 5 attempts",
            "sportlink_newer",
            "Sportlink refused the save of section \"Adres\": Ongeldige postcode",
            "section Communicatie not found",
            "processed",
            "person.updated",
            "AB\\u{200b}C",
            "csrf-value",
            "datum_vog",
            "freescout_id",
            "webhook",
            "Jan de Vries",
        ]
        .map(str::to_string)
        .to_vec(),
    }
}

/// Every page the operator can see, rendered with every text marked.
fn pages(lang: Lang, f: &Fixture) -> Vec<String> {
    let l = l(lang);
    let params = HistoryParams {
        q: Some("ABC".into()),
        status: Some("failed".into()),
        ..Default::default()
    };
    let fields = ["email", "postal_code"].map(|f| FieldName::parse(f).unwrap());
    MARK.with(|m| m.set(true));
    let pages = vec![
        dashboard(
            &l,
            &f.data,
            "csrf-value",
            Some(Banner::Notice(l.t("notice-resumed"))),
        )
        .into_string(),
        history_page(
            &l,
            HistoryScreen {
                params: &params,
                page: &f.history,
                fields: &fields,
                csrf: "csrf-value",
                notice: None,
            },
        )
        .into_string(),
        member_page(&l, "ABC1234", &f.history, false, "csrf-value").into_string(),
        confirm_page(&l, &params, 3, 500, "csrf-value").into_string(),
        confirm_page(&l, &params, 900, 500, "csrf-value").into_string(),
    ];
    MARK.with(|m| m.set(false));
    pages
}

/// The texts of a page: its text nodes and its label attributes, entities decoded.
fn texts(html: &str) -> Vec<String> {
    let without_style = match (html.find("<style>"), html.find("</style>")) {
        (Some(a), Some(b)) => format!("{}{}", &html[..a], &html[b..]),
        _ => html.to_string(),
    };
    let decode = |s: &str| {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    };
    let mut out = Vec::new();
    let mut rest = without_style.as_str();
    while let Some(open) = rest.find('<') {
        out.push(decode(&rest[..open]));
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let tag = &rest[open..open + close];
        for attribute in ["aria-label=\"", "data-label=\"", "title=\""] {
            let mut t = tag;
            while let Some(at) = t.find(attribute) {
                let value = &t[at + attribute.len()..];
                let end = value.find('"').unwrap_or(value.len());
                out.push(decode(&value[..end]));
                t = &value[end..];
            }
        }
        rest = &rest[open + close + 1..];
    }
    out.push(decode(rest));
    out.into_iter().filter(|t| !t.trim().is_empty()).collect()
}

/// A text with every marked (catalogue) part taken out, nested marks included.
fn unmarked(text: &str) -> String {
    let mut depth = 0;
    let mut out = String::new();
    for ch in text.chars() {
        match ch {
            '⟦' => depth += 1,
            '⟧' => depth -= 1,
            _ if depth == 0 => out.push(ch),
            _ => {}
        }
    }
    out
}

#[test]
fn every_text_on_every_page_comes_from_the_catalogue_in_both_languages() {
    let f = fixture();
    for lang in Lang::ALL {
        for html in pages(lang, &f) {
            assert!(html.contains(&format!("<html lang=\"{}\"", lang.code())));
            for text in texts(&html) {
                let mut rest = unmarked(&text);
                for value in &f.values {
                    rest = rest.replace(value.as_str(), "");
                }
                assert!(
                    rest.chars().all(|c| c.is_whitespace()
                        || c.is_ascii_digit()
                        || "·:→–-();,.#/\"„”".contains(c)),
                    "{lang:?}: text not from the catalogue: {rest:?} in {text:?}"
                );
            }
        }
    }
}

#[test]
fn the_pages_differ_by_language_and_say_what_matters() {
    let f = fixture();
    let nl = pages(Lang::Nl, &f).join("\n").replace(['⟦', '⟧'], "");
    let en = pages(Lang::En, &f).join("\n").replace(['⟦', '⟧'], "");
    assert!(nl.contains("Wachtende wijzigingen (2)"), "{nl}");
    assert!(nl.contains(
        "controle: 3 personen gezien, 1 gewijzigd, 4 wijzigingen; peilmoment naar 15:17"
    ));
    assert!(nl.contains("2 runs zonder iets te doen"));
    assert!(en.contains("poll: 3 people seen, 1 changed, 4 changes; watermark moved to 15:17"));
    assert!(nl.contains("3 wijzigingen (mislukt, overgeslagen of conflict verloren)"));
    assert!(nl.contains("Per keer worden hooguit de 500 nieuwste verwerkt."));
    assert!(en.contains("Requeue everything matching this filter"));
    assert!(
        nl.contains("href=\"/history/requeue?q=ABC&amp;status=failed\""),
        "the filter carries over"
    );
    assert!(nl.contains("before=11"), "keyset paging link");
    assert!(!nl.contains("Pending changes") && !en.contains("Wachtende wijzigingen"));
}

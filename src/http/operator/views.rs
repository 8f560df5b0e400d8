//! The operator page's HTML (maud escapes every value): the frame, the sign-in form and the
//! overview. Every text comes from the catalogue through [`L10n`]; values from the database are
//! shown as they are.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::i18n::{L10n, Lang};
use super::runs::runs_list;
use crate::conflict::Winner;
use crate::domain::{ChangeStatus, Source};
use crate::http::admin::StatusView;
use crate::http::audit::AuditOverview;
use crate::http::ops::ExecutorStateView;
use crate::store::{ChangeRecord, ConflictRecord, RunRecord};

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#f4f5f7}
header{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:.5rem;padding:.75rem 1rem;background:#12355b;color:#fff}
header h1{font-size:1.15rem;margin:0}
header a{color:#fff}
nav{display:flex;flex-wrap:wrap;gap:.75rem;align-items:center}
.skip{position:absolute;left:-999px}.skip:focus{left:.5rem;top:.5rem;background:#fff;color:#12355b;padding:.4rem;z-index:9}
main{max-width:72rem;margin:0 auto;padding:1rem}
section{background:#fff;border-radius:8px;padding:1rem;margin:0 0 1rem;box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{font-size:1.05rem;margin:0 0 .75rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(8rem,1fr));gap:.5rem}
.card{border:1px solid #dde1e6;border-radius:6px;padding:.5rem .75rem}
.card b{display:block;font-size:1.4rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:.75rem 0 0}
dt{font-weight:600}dd{margin:0;min-width:0;overflow-wrap:anywhere}
table{width:100%;border-collapse:collapse;font-size:.93rem}
th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #e6e8eb;vertical-align:top;overflow-wrap:break-word}
th{background:#f0f2f5;white-space:nowrap}
td.value{overflow-wrap:anywhere}
ol.story{margin:0;padding-left:1.1rem}
.status{font-weight:600}
.failed,.conflict_lost{color:#a11d1d}.skipped{color:#6b5000}.pending{color:#0b5cad}.synced{color:#1f7a35}
.notice{background:#e7f4ea;border:1px solid #b6dfc0;padding:.5rem .75rem;border-radius:6px}
.error{background:#fbeaea;border:1px solid #efc0c0;padding:.5rem .75rem;border-radius:6px}
.paused{color:#a11d1d;font-weight:600}
button,.button{font:inherit;padding:.35rem .8rem;border-radius:5px;border:1px solid #12355b;background:#12355b;color:#fff;cursor:pointer;white-space:nowrap;text-decoration:none;display:inline-block}
header button{background:transparent;border-color:#fff}
input,select{font:inherit;padding:.35rem;border:1px solid #767f8a;border-radius:5px;max-width:100%}
input[type=password]{width:100%;max-width:24rem}
form.filter{display:grid;grid-template-columns:repeat(auto-fit,minmax(11rem,1fr));gap:.5rem;align-items:end}
form.filter label{display:block;font-size:.85rem;font-weight:600}
:focus-visible{outline:3px solid #f5a623;outline-offset:2px}
.muted{color:#5c6670}
details summary{cursor:pointer;color:#5c6670}
pre{white-space:pre-wrap;overflow-wrap:anywhere;max-width:100%;margin:.5rem 0 0;font-size:.85rem}
ul.runs{list-style:none;margin:0;padding:0}ul.runs li{padding:.3rem 0;border-bottom:1px solid #e6e8eb}
@media (max-width:760px){
 dl{grid-template-columns:minmax(0,1fr)}
 table,thead,tbody,tr,th,td{display:block}
 thead{display:none}
 tr{border:1px solid #e0e3e7;border-radius:6px;margin:0 0 .6rem;padding:.25rem}
 td{border:0;padding:.2rem .4rem}
 td::before{content:attr(data-label);display:block;font-size:.78rem;color:#5c6670}
}
"#;

/// The frame of every page: title, navigation, the language switch and (signed in) sign-out.
pub fn layout(l: &L10n, title: &str, csrf: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(l.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) " · " (l.t("app-title")) }
                style { (maud::PreEscaped(CSS)) }
            }
            body {
                a.skip href="#content" { (l.t("page-title")) }
                header {
                    h1 { (l.t("app-title")) }
                    nav aria-label=(l.t("lang-switch")) {
                        @if csrf.is_some() {
                            a href="/" { (l.t("nav-overview")) }
                            a href="/history" { (l.t("nav-history")) }
                        }
                        @for lang in Lang::ALL {
                            @let label = l.t(&format!("lang-{}", lang.code()));
                            @if lang == l.lang { span aria-current="true" { (label) } }
                            @else { a href={ "?lang=" (lang.code()) } hreflang=(lang.code()) lang=(lang.code()) { (label) } }
                        }
                        @if let Some(csrf) = csrf {
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" { (l.t("sign-out")) }
                            }
                        }
                    }
                }
                div #content { (body) }
            }
        }
    }
}

pub fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept-Language, Cookie"),
    );
    response
}

pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    no_store((status, Html(markup.into_string())).into_response())
}

pub fn login_page(l: &L10n, status: StatusCode, message: Option<&str>) -> Response {
    let body = html! {
        main {
            section {
                h2 { (l.t("sign-in")) }
                @if let Some(message) = message { p.error role="alert" { (message) } }
                form method="post" action="/login" {
                    p {
                        label for="token" { (l.t("admin-token")) } br;
                        input #token type="password" name="token" autocomplete="current-password" required;
                    }
                    button type="submit" { (l.t("sign-in")) }
                }
            }
        }
    };
    html_response(status, layout(l, &l.t("sign-in"), None, body))
}

pub fn error_page(l: &L10n, status: StatusCode) -> Response {
    let text = l.ta("page-unavailable", &[("status", status.as_u16().into())]);
    html_response(
        status,
        layout(l, &text, None, html! { main { p.error { (text) } } }),
    )
}

/// A `400` page that says what was wrong.
pub fn bad_request_page(l: &L10n, reason: &str) -> Response {
    html_response(
        StatusCode::BAD_REQUEST,
        layout(
            l,
            reason,
            None,
            html! { main { p.error role="alert" { (reason) } p { a href="/" { (l.t("nav-overview")) } } } },
        ),
    )
}

pub fn status_label(l: &L10n, status: &str) -> String {
    match ChangeStatus::parse(status) {
        Some(s) => l.t(&format!("status-{}", s.as_str())),
        None => l.t("status-unknown"),
    }
}

pub fn source_label(l: &L10n, source: Source) -> String {
    l.t(&format!("source-{source}"))
}

/// Why a change is not synced (yet). Every non-synced change shows one.
pub fn reason(l: &L10n, change: &ChangeRecord) -> String {
    match change.status.as_str() {
        "pending" if change.attempts > 0 && change.last_error.is_some() => {
            let error = change.last_error.clone().unwrap_or_default();
            let failed = l.ta(
                "reason-attempt-failed",
                &[
                    ("attempts", change.attempts.into()),
                    ("error", error.into()),
                ],
            );
            match change.next_attempt_at {
                Some(next) => format!(
                    "{failed} {}",
                    l.ta("reason-next-attempt", &[("when", l.when(next).into())])
                ),
                None => failed,
            }
        }
        "pending" => {
            let waiting = match &change.status_reason {
                Some(why) => l.ta("reason-waiting-because", &[("why", why.clone().into())]),
                None => l.t("reason-waiting"),
            };
            match &change.last_error {
                // Requeued after failing: the old error is still worth seeing.
                Some(error) => format!(
                    "{waiting} {}",
                    l.ta("reason-earlier-error", &[("error", error.clone().into())])
                ),
                None => waiting,
            }
        }
        "synced" => String::new(),
        _ => change
            .status_reason
            .clone()
            .or_else(|| change.last_error.clone())
            .unwrap_or_else(|| {
                l.ta(
                    "reason-none",
                    &[("status", status_label(l, change.status.as_str()).into())],
                )
            }),
    }
}

pub fn value_text(l: &L10n, v: &str) -> String {
    if v.is_empty() {
        l.t("empty-value")
    } else {
        v.to_string()
    }
}

/// A pause reason, and the page-model diagnosis that follows it (circuit breaker, canary) as a
/// preformatted block.
fn pause_reason(l: &L10n, reason: &str) -> Markup {
    match reason.split_once(crate::sportlink::diagnose::DIAGNOSIS_MARK) {
        Some((head, diagnosis)) => html! {
            (head.trim_end())
            details open {
                summary { (l.t("executor-diagnosis")) }
                pre { (diagnosis) }
            }
        },
        None => html! { (reason) },
    }
}

/// The latest divergence audit: its progress and counts, and where its rows are.
fn audit_block(l: &L10n, audit: &AuditOverview) -> Markup {
    match audit {
        AuditOverview::Unreadable => html! { p.muted { (l.t("audit-unreadable")) } },
        AuditOverview::NoneYet => html! { p.muted { (l.t("audit-none")) } },
        AuditOverview::Latest {
            id,
            progress,
            summary,
        } => html! {
            p {
                (progress)
                @if let Some(summary) = summary { br; span.muted { (summary) } }
                br; span.muted { (l.ta("audit-rows", &[("id", (*id).into())])) }
            }
        },
    }
}

fn executor_block(l: &L10n, status: &StatusView, csrf: &str) -> Markup {
    html! {
        @match status.executor.as_ref().map(|e| &e.state) {
            None => span.muted { (l.t("executor-none")) },
            Some(ExecutorStateView::Idle) => span { (l.t("executor-idle")) },
            Some(ExecutorStateView::Working { knvb_id }) => span { (l.ta("executor-working", &[("member", knvb_id.clone().into())])) },
            Some(ExecutorStateView::Paused { reason, since, until }) => {
                span.paused { (l.t("executor-paused")) }
                ": " (pause_reason(l, reason))
                @if let Some(since) = since { br; span.muted { (l.ta("executor-since", &[("when", l.when(*since).into())])) } }
                @if let Some(until) = until { br; span.muted { (l.ta("executor-until", &[("when", l.when(*until).into())])) } }
                form method="post" action="/ui/executor/resume" {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { (l.t("executor-resume")) }
                }
            }
        }
        @if let Some(error) = status.executor.as_ref().and_then(|e| e.last_error.as_ref()) {
            br; span.muted { (l.ta("executor-last-error", &[("error", error.clone().into())])) }
        }
    }
}

pub fn changes_table(l: &L10n, changes: &[ChangeRecord], csrf: &str, requeue: bool) -> Markup {
    let h = |id: &str| l.t(id);
    html! {
        table {
            thead { tr {
                th { (h("col-change")) } th { (h("col-member")) } th { (h("col-field")) }
                th { (h("col-old-new")) } th { (h("col-status")) } th { (h("col-source")) }
                th { (h("col-detected")) } th { (h("col-reason")) }
                @if requeue { th { (h("col-action")) } }
            } }
            tbody {
                @for c in changes {
                    tr id={ "change-" (c.id) } {
                        td data-label=(h("col-change")) { (c.id) }
                        td data-label=(h("col-member")) { a href={ "/members/" (c.knvb_id) } { (c.knvb_id) } }
                        td data-label=(h("col-field")) { (c.field) }
                        td.value data-label=(h("col-old-new")) { (value_text(l, &c.old_value)) " → " (value_text(l, &c.new_value)) }
                        td data-label=(h("col-status")) { span class={ "status " (c.status) } { (status_label(l, c.status.as_str())) } }
                        td data-label=(h("col-source")) { (source_label(l, c.source)) }
                        td data-label=(h("col-detected")) { (l.when(c.detected_at)) }
                        td data-label=(h("col-reason")) { (reason(l, c)) }
                        @if requeue {
                            td data-label=(h("col-action")) {
                                form method="post" action={ "/ui/changes/" (c.id) "/requeue" } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" aria-label={ (h("requeue")) " " (c.id) } { (h("requeue")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn winner_label(l: &L10n, winner: Winner) -> String {
    l.t(&format!("winner-{winner}"))
}

fn conflicts_table(l: &L10n, conflicts: &[ConflictRecord]) -> Markup {
    let h = |id: &str| l.t(id);
    html! {
        table {
            thead { tr {
                th { (h("col-member")) } th { (h("col-field")) } th { (h("col-sportlink-value")) }
                th { (h("col-rondo-value")) } th { (h("col-winner")) } th { (h("col-reason")) }
                th { (h("col-decided")) }
            } }
            tbody {
                @for c in conflicts {
                    tr {
                        td data-label=(h("col-member")) { a href={ "/members/" (c.knvb_id) } { (c.knvb_id) } }
                        td data-label=(h("col-field")) { (c.field) }
                        td.value data-label=(h("col-sportlink-value")) { (c.sportlink_value.as_deref().unwrap_or("")) }
                        td.value data-label=(h("col-rondo-value")) { (c.rondo_club_value.as_deref().unwrap_or("")) }
                        td data-label=(h("col-winner")) { (winner_label(l, c.winning_system)) }
                        td data-label=(h("col-reason")) { (c.resolution_reason) }
                        td data-label=(h("col-decided")) { (l.when(c.resolved_at)) }
                    }
                }
            }
        }
    }
}

/// What the overview shows.
pub struct PageData {
    pub status: StatusView,
    pub audit: AuditOverview,
    pub pending: Vec<ChangeRecord>,
    pub attention: Vec<ChangeRecord>,
    pub conflicts: Vec<ConflictRecord>,
    pub runs: Vec<RunRecord>,
}

pub enum Banner {
    Notice(String),
    Error(String),
}

pub fn banner(b: &Option<Banner>) -> Markup {
    html! {
        @match b {
            Some(Banner::Notice(m)) => p.notice role="status" { (m) },
            Some(Banner::Error(m)) => p.error role="alert" { (m) },
            None => {},
        }
    }
}

pub fn dashboard(l: &L10n, data: &PageData, csrf: &str, notice: Option<Banner>) -> Markup {
    let s = &data.status;
    let counts = &s.changes;
    let card =
        |id: &str, label: &str, n: u64| html! { div.card { (l.t(label)) b id=(id) { (n) } } };
    let body = html! {
        main {
            (banner(&notice))
            section #summary {
                h2 { (l.t("overview")) }
                div.cards {
                    (card("count-pending", "count-pending", counts.pending))
                    (card("count-failed", "count-failed", counts.failed))
                    (card("count-conflict-lost", "count-conflict-lost", counts.conflict_lost))
                    (card("count-skipped", "count-skipped", counts.skipped))
                    (card("count-synced", "count-synced", counts.synced))
                    (card("count-superseded", "count-superseded", counts.superseded))
                }
                dl {
                    dt { (l.t("executor")) } dd #executor { (executor_block(l, s, csrf)) }
                    dt { (l.t("audit")) } dd #audit { (audit_block(l, &data.audit)) }
                    dt { (l.t("watermark")) } dd #watermark { (l.when_opt(s.poll_watermark, "watermark-none")) }
                    dt { (l.t("last-webhook")) }
                    dd #last-webhook {
                        @match &s.last_webhook {
                            None => (l.t("last-webhook-none")),
                            Some(d) => {
                                (l.when(d.received_at)) " · " (d.outcome)
                                @if let Some(t) = &d.event_type { " · " (t) }
                                @if let Some(k) = &d.knvb_id { " · " (l.ta("webhook-member", &[("member", k.clone().into())])) }
                            }
                        }
                    }
                }
            }
            @if s.invalid_knvb_id_count > 0 {
                section #invalid-knvb-ids {
                    h2 { (l.ta("invalid-ids", &[("count", s.invalid_knvb_id_count.into())])) }
                    p.muted { (l.t("invalid-ids-hint")) }
                    table {
                        thead { tr { th { (l.t("invalid-post")) } th { (l.t("invalid-value")) } th { (l.t("invalid-via")) } th { (l.t("invalid-last")) } } }
                        tbody {
                            @for p in &s.invalid_knvb_ids {
                                tr { td { (p.wp_post_id) } td { code { (p.value) } } td { (source_label(l, p.source)) } td { (l.when(p.last_seen_at)) } }
                            }
                        }
                    }
                }
            }
            section #pending {
                h2 { (l.ta("pending-title", &[("count", counts.pending.into())])) }
                @if data.pending.is_empty() { p.muted { (l.t("pending-none")) } }
                @else { (changes_table(l, &data.pending, csrf, false)) }
            }
            section #attention {
                h2 { (l.ta("attention-title", &[("count", (counts.failed + counts.conflict_lost + counts.skipped).into())])) }
                @if data.attention.is_empty() { p.muted { (l.t("attention-none")) } }
                @else { (changes_table(l, &data.attention, csrf, true)) }
            }
            section #conflicts {
                h2 { (l.t("conflicts-title")) }
                @if data.conflicts.is_empty() { p.muted { (l.t("conflicts-none")) } }
                @else { (conflicts_table(l, &data.conflicts)) }
            }
            section #runs {
                h2 { (l.t("runs-title")) }
                @if data.runs.is_empty() { p.muted { (l.t("runs-none")) } }
                @else { (runs_list(l, &data.runs)) }
            }
        }
    };
    layout(l, &l.t("overview"), Some(csrf), body)
}

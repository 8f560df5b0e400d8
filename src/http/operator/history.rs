//! The history (every change with its story, filtered, a page at a time by keyset), a member's
//! timeline, and the confirmation before requeueing everything that matches a filter.

use maud::{html, Markup};

use super::i18n::L10n;
use super::views::{banner, layout, source_label, status_label, value_text, winner_label, Banner};
use crate::domain::{ChangeStatus, FieldName};
use crate::http::admin::history::{HistoryPage, HistoryParams};
use crate::store::HistoryRow;

/// Percent-encodes a query-string value (everything but the unreserved characters).
fn enc(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The filter as a query string (without the cursor), for links and the bulk requeue.
pub fn filter_query(params: &HistoryParams) -> String {
    [
        ("q", &params.q),
        ("status", &params.status),
        ("field", &params.field),
        ("from", &params.from),
        ("to", &params.to),
    ]
    .into_iter()
    .filter_map(|(k, v)| {
        v.as_deref()
            .filter(|v| !v.is_empty())
            .map(|v| format!("{k}={}", enc(v)))
    })
    .collect::<Vec<_>>()
    .join("&")
}

fn hidden_filter(params: &HistoryParams) -> Markup {
    html! {
        @for (name, value) in [("q", &params.q), ("status", &params.status), ("field", &params.field), ("from", &params.from), ("to", &params.to)] {
            @if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                input type="hidden" name=(name) value=(v);
            }
        }
    }
}

fn filter_form(l: &L10n, params: &HistoryParams, fields: &[FieldName], action: &str) -> Markup {
    let current = |v: &Option<String>| v.clone().unwrap_or_default();
    let status = current(&params.status);
    let field = current(&params.field);
    html! {
        form.filter method="get" action=(action) role="search" {
            div { label for="f-q" { (l.t("filter-q")) } input #f-q type="search" name="q" value=(current(&params.q)) maxlength="32" autocomplete="off"; }
            div {
                label for="f-status" { (l.t("filter-status")) }
                select #f-status name="status" {
                    option value="" { (l.t("filter-all")) }
                    @for s in ChangeStatus::ALL {
                        option value=(s.as_str()) selected[status == s.as_str()] { (status_label(l, s.as_str())) }
                    }
                }
            }
            div {
                label for="f-field" { (l.t("filter-field")) }
                select #f-field name="field" {
                    option value="" { (l.t("filter-all")) }
                    @for f in fields { option value=(f) selected[*f == field.as_str()] { (f) } }
                }
            }
            div { label for="f-from" { (l.t("filter-from")) } input #f-from type="date" name="from" value=(current(&params.from)); }
            div { label for="f-to" { (l.t("filter-to")) } input #f-to type="date" name="to" value=(current(&params.to)); }
            div { button type="submit" { (l.t("filter-apply")) } " " a href=(action) { (l.t("filter-reset")) } }
        }
    }
}

/// A change's story, in order: received, detected, attempts, how it ended.
fn story(l: &L10n, row: &HistoryRow) -> Markup {
    let c = &row.change;
    let ended = row.resolved_at.or(c.synced_at);
    let when = |t: Option<chrono::DateTime<chrono::Utc>>| l.when_opt(t, "never");
    html! {
        ol.story {
            @if let Some(received) = row.received_at { li { (l.ta("story-received", &[("when", l.when(received).into())])) } }
            @else if let (Some(kind), Some(started)) = (row.run_kind, row.run_started_at) {
                li { (l.ta("story-run", &[("kind", kind.as_str().into()), ("when", l.when(started).into())])) }
            }
            li { (l.ta("story-detected", &[("when", l.when(c.detected_at).into()), ("old", value_text(l, &c.old_value).into()), ("new", value_text(l, &c.new_value).into())])) }
            @if c.attempts > 0 {
                li {
                    (l.ta("story-attempts", &[("attempts", c.attempts.into())]))
                    @if let Some(e) = &c.last_error { "; " (l.ta("story-last-error", &[("error", e.clone().into())])) }
                    @if let (Some(next), "pending") = (c.next_attempt_at, c.status.as_str()) { "; " (l.ta("story-next", &[("when", l.when(next).into())])) }
                }
            }
            @if let (Some(winner), Some(reason)) = (row.conflict_winner, row.conflict_reason) {
                li { (l.ta("story-conflict", &[("winner", winner_label(l, winner).into()), ("reason", reason.as_str().into()), ("value", value_text(l, row.conflict_sportlink_value.as_deref().unwrap_or("")).into())])) }
            }
            li class=(c.status) {
                @match c.status.as_str() {
                    "synced" => (l.ta("story-verified", &[("when", when(c.synced_at).into())])),
                    "failed" => (l.ta("story-failed", &[("when", when(ended).into())])),
                    "skipped" => { (l.ta("story-skipped", &[("when", when(ended).into())])) @if let Some(r) = &c.status_reason { ": " (r) } },
                    "superseded" => (l.ta("story-superseded", &[("by", c.superseded_by.map_or(0, |id| id.0).into())])),
                    "conflict_lost" => (l.ta("story-conflict-lost", &[("when", when(ended).into())])),
                    _ => (l.t("story-pending")),
                }
            }
        }
    }
}

fn history_table(l: &L10n, rows: &[HistoryRow]) -> Markup {
    let h = |id: &str| l.t(id);
    html! {
        table {
            thead { tr {
                th { (h("col-change")) } th { (h("col-member")) } th { (h("col-field")) }
                th { (h("col-status")) } th { (h("col-source")) } th { (h("col-story")) }
            } }
            tbody {
                @for row in rows {
                    @let c = &row.change;
                    tr id={ "history-" (c.id) } {
                        td data-label=(h("col-change")) { (c.id) }
                        td data-label=(h("col-member")) {
                            a href={ "/members/" (c.knvb_id) } { (c.knvb_id) }
                            @if let Some(name) = &row.member_name { br; span.muted { (name) } }
                        }
                        td data-label=(h("col-field")) { (c.field) }
                        td data-label=(h("col-status")) { span class={ "status " (c.status) } { (status_label(l, c.status.as_str())) } }
                        td data-label=(h("col-source")) { (source_label(l, c.source)) }
                        td.value data-label=(h("col-story")) { (story(l, row)) }
                    }
                }
            }
        }
    }
}

fn pager(l: &L10n, base: &str, query: &str, page: &HistoryPage, first: bool) -> Markup {
    let sep = if query.is_empty() { "" } else { "&" };
    html! {
        p {
            @if !first { a href={ (base) "?" (query) } { (l.t("history-newest")) } " " }
            @if let Some(before) = page.next_before {
                a rel="next" href={ (base) "?" (query) (sep) "before=" (before.0) } { (l.t("history-older")) }
            }
        }
    }
}

pub struct HistoryScreen<'a> {
    pub params: &'a HistoryParams,
    pub page: &'a HistoryPage,
    pub fields: &'a [FieldName],
    pub csrf: &'a str,
    pub notice: Option<Banner>,
}

pub fn history_page(l: &L10n, s: HistoryScreen<'_>) -> Markup {
    let query = filter_query(s.params);
    let first = s.params.before.as_deref().is_none_or(str::is_empty);
    let body = html! {
        main {
            (banner(&s.notice))
            section #history {
                h2 { (l.t("history-title")) }
                p.muted { (l.t("history-hint")) }
                (filter_form(l, s.params, s.fields, "/history"))
            }
            section #history-rows {
                @if s.page.changes.is_empty() { p.muted { (l.t("history-none")) } }
                @else {
                    (history_table(l, &s.page.changes))
                    (pager(l, "/history", &query, s.page, first))
                    p { a.button href={ "/history/requeue?" (query) } { (l.t("requeue-matching")) } }
                }
            }
        }
    };
    layout(l, &l.t("history-title"), Some(s.csrf), body)
}

pub fn member_page(l: &L10n, knvb_id: &str, page: &HistoryPage, first: bool, csrf: &str) -> Markup {
    let name = page.changes.iter().find_map(|row| row.member_name.clone());
    let title = l.ta("member-title", &[("member", knvb_id.to_string().into())]);
    let base = format!("/members/{knvb_id}");
    let body = html! {
        main {
            section #member {
                h2 { (title) }
                @if let Some(name) = &name { p #member-name { (name) } }
                h3 { (l.t("member-timeline")) }
                @if page.changes.is_empty() { p.muted { (l.t("member-none")) } }
                @else {
                    (history_table(l, &page.changes))
                    (pager(l, &base, "", page, first))
                }
            }
        }
    };
    layout(l, &title, Some(csrf), body)
}

pub fn confirm_page(l: &L10n, params: &HistoryParams, count: u64, cap: u64, csrf: &str) -> Markup {
    let back = format!("/history?{}", filter_query(params));
    let body = html! {
        main {
            section #confirm {
                h2 { (l.t("confirm-title")) }
                p #confirm-count { (l.ta("confirm-count", &[("count", count.min(cap).into())])) }
                @if count > cap { p.muted { (l.ta("confirm-capped", &[("cap", cap.into())])) } }
                @if count > 0 {
                    form method="post" action="/ui/history/requeue" {
                        input type="hidden" name="csrf" value=(csrf);
                        (hidden_filter(params))
                        button type="submit" { (l.t("confirm-yes")) } " "
                        a href=(back) { (l.t("confirm-no")) }
                    }
                } @else {
                    p { a href=(back) { (l.t("confirm-no")) } }
                }
            }
        }
    };
    layout(l, &l.t("confirm-title"), Some(csrf), body)
}

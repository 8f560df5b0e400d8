//! The operator page `GET /` (product.md §8): server-rendered HTML (maud escapes everything),
//! no JavaScript, readable on a phone. Behind the admin token: a bearer header, or a login form
//! that sets an HttpOnly, SameSite=Strict cookie holding an HMAC-signed session value (never
//! the token). Every form posts with a CSRF token bound to that session.

use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;

use super::admin::{bearer, requeue_one, status_view, ApiError, StatusView};
use super::ops::{ExecutorStateView, OpsState, RetryAfter, SESSION_LIFETIME_SECS};
use crate::domain::{ChangeId, ChangeStatus};
use crate::store::{ChangeRecord, ConflictRecord, RunRecord};

pub const SESSION_COOKIE: &str = "rrs_session";
const LIST_LIMIT: u32 = 100;
const SHORT_LIST_LIMIT: u32 = 20;

/// How a request proved it holds the token.
enum Viewer {
    /// The login cookie; forms must carry the session's CSRF token.
    Session(String),
    /// An `Authorization: Bearer` header, which browsers never send by themselves: no CSRF risk.
    Bearer,
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn viewer(state: &OpsState, headers: &HeaderMap) -> Option<Viewer> {
    if let Some(token) = bearer(headers) {
        return state.token_matches(token).then_some(Viewer::Bearer);
    }
    let session = cookie(headers, SESSION_COOKIE)?;
    state
        .session_valid(session, Utc::now())
        .then(|| Viewer::Session(session.to_string()))
}

impl Viewer {
    fn csrf(&self, state: &OpsState) -> String {
        match self {
            Viewer::Session(session) => state.csrf_token(session).unwrap_or_default(),
            Viewer::Bearer => String::new(),
        }
    }

    fn csrf_ok(&self, state: &OpsState, presented: &str) -> bool {
        match self {
            Viewer::Session(session) => state.csrf_valid(session, presented),
            Viewer::Bearer => true,
        }
    }
}

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#f4f5f7}
header{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:.5rem;padding:.75rem 1rem;background:#12355b;color:#fff}
header h1{font-size:1.15rem;margin:0}
main{max-width:72rem;margin:0 auto;padding:1rem}
section{background:#fff;border-radius:8px;padding:1rem;margin:0 0 1rem;box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{font-size:1.05rem;margin:0 0 .75rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(8rem,1fr));gap:.5rem}
.card{border:1px solid #dde1e6;border-radius:6px;padding:.5rem .75rem}
.card b{display:block;font-size:1.4rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:.75rem 0 0}
dt{font-weight:600}dd{margin:0}
table{width:100%;border-collapse:collapse;font-size:.93rem}
th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #e6e8eb;vertical-align:top;overflow-wrap:break-word}
th{background:#f0f2f5;white-space:nowrap}
td.value{word-break:break-all}
button{white-space:nowrap}
.status{font-weight:600}
.failed,.conflict_lost{color:#a11d1d}.skipped{color:#7a5b00}.pending{color:#0b5cad}.synced{color:#1f7a35}
.notice{background:#e7f4ea;border:1px solid #b6dfc0;padding:.5rem .75rem;border-radius:6px}
.error{background:#fbeaea;border:1px solid #efc0c0;padding:.5rem .75rem;border-radius:6px}
.paused{color:#a11d1d;font-weight:600}
button{font:inherit;padding:.35rem .8rem;border-radius:5px;border:1px solid #12355b;background:#12355b;color:#fff;cursor:pointer}
header button{background:transparent;border-color:#fff}
input[type=password]{font:inherit;padding:.4rem;width:100%;max-width:24rem;border:1px solid #aab;border-radius:5px}
.muted{color:#5c6670}
@media (max-width:760px){
 table,thead,tbody,tr,th,td{display:block}
 thead{display:none}
 tr{border:1px solid #e0e3e7;border-radius:6px;margin:0 0 .6rem;padding:.25rem}
 td{border:0;padding:.2rem .4rem}
 td::before{content:attr(data-label);display:block;font-size:.78rem;color:#5c6670}
}
"#;

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) }
                style { (maud::PreEscaped(CSS)) }
            }
            body { (body) }
        }
    }
}

fn no_store(mut response: Response) -> Response {
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
    response
}

fn html_response(status: StatusCode, markup: Markup) -> Response {
    no_store((status, Html(markup.into_string())).into_response())
}

fn login_page(status: StatusCode, message: Option<&str>) -> Response {
    let body = html! {
        header { h1 { "Rondo Club → Sportlink sync" } }
        main {
            section {
                h2 { "Sign in" }
                @if let Some(message) = message { p.error role="alert" { (message) } }
                form method="post" action="/login" {
                    p {
                        label for="token" { "Admin token" } br;
                        input #token type="password" name="token" autocomplete="current-password" required;
                    }
                    button type="submit" { "Sign in" }
                }
            }
        }
    };
    html_response(status, layout("Sign in · rondo-reverse-sync", body))
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn when_opt(t: Option<DateTime<Utc>>, none: &str) -> String {
    t.map(when).unwrap_or_else(|| none.to_string())
}

fn status_label(status: &str) -> &'static str {
    match ChangeStatus::parse(status) {
        Some(ChangeStatus::Pending) => "Pending",
        Some(ChangeStatus::Synced) => "Synced",
        Some(ChangeStatus::Superseded) => "Superseded",
        Some(ChangeStatus::ConflictLost) => "Conflict lost",
        Some(ChangeStatus::Skipped) => "Skipped",
        Some(ChangeStatus::Failed) => "Failed",
        None => "Unknown",
    }
}

/// Why a change is not synced (yet). Every non-synced change shows one.
pub fn reason(change: &ChangeRecord) -> String {
    match change.status.as_str() {
        "pending" => match (&change.last_error, change.next_attempt_at) {
            (Some(error), Some(next)) if change.attempts > 0 => format!(
                "Attempt {} failed: {error}. Next attempt {}.",
                change.attempts,
                when(next)
            ),
            (Some(error), None) if change.attempts > 0 => {
                format!("Attempt {} failed: {error}.", change.attempts)
            }
            (last_error, _) => {
                let waiting = match &change.status_reason {
                    Some(r) => format!("Waiting for the executor ({r})."),
                    None => "Waiting for the executor.".into(),
                };
                match last_error {
                    // Requeued after failing: the old error is still worth seeing.
                    Some(error) => format!("{waiting} Earlier error: {error}."),
                    None => waiting,
                }
            }
        },
        "synced" => String::new(),
        _ => change
            .status_reason
            .clone()
            .or_else(|| change.last_error.clone())
            .unwrap_or_else(|| {
                format!(
                    "{} (no reason recorded)",
                    status_label(change.status.as_str())
                )
            }),
    }
}

fn change_text(c: &ChangeRecord) -> String {
    let show = |v: &str| {
        if v.is_empty() {
            "(empty)".to_string()
        } else {
            v.to_string()
        }
    };
    format!("{} → {}", show(&c.old_value), show(&c.new_value))
}

fn executor_block(status: &StatusView, csrf: &str) -> Markup {
    html! {
        @match status.executor.as_ref().map(|e| &e.state) {
            None => span.muted { "Not running in this process" },
            Some(ExecutorStateView::Idle) => span { "Idle" },
            Some(ExecutorStateView::Working { knvb_id }) => span { "Working on member " (knvb_id) },
            Some(ExecutorStateView::Paused { reason, since, until }) => {
                span.paused { "Paused by the circuit breaker" }
                ": " (super::audit::pause_reason(reason))
                @if let Some(since) = since { br; span.muted { "Since " (when(*since)) } }
                @if let Some(until) = until { br; span.muted { "Resumes by itself at " (when(*until)) } }
                form method="post" action="/ui/executor/resume" {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Resume now" }
                }
            }
        }
        @if let Some(error) = status.executor.as_ref().and_then(|e| e.last_error.as_ref()) {
            br; span.muted { "Last error: " (error) }
        }
    }
}

fn changes_table(changes: &[ChangeRecord], csrf: &str, requeue: bool) -> Markup {
    html! {
        table {
            thead { tr {
                th { "Change" } th { "Member" } th { "Field" } th { "Old → new" } th { "Status" }
                th { "Source" } th { "Detected" } th { "Reason" }
                @if requeue { th { "Action" } }
            } }
            tbody {
                @for c in changes {
                    tr id={ "change-" (c.id) } {
                        td data-label="Change" { (c.id) }
                        td data-label="Member" { (c.knvb_id) }
                        td data-label="Field" { (c.field) }
                        td.value data-label="Old → new" { (change_text(c)) }
                        td data-label="Status" { span class={ "status " (c.status) } { (status_label(c.status.as_str())) } }
                        td data-label="Source" { (c.source) }
                        td data-label="Detected" { (when(c.detected_at)) }
                        td data-label="Reason" { (reason(c)) }
                        @if requeue {
                            td data-label="Action" {
                                form method="post" action={ "/ui/changes/" (c.id) "/requeue" } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" { "Requeue" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn conflicts_table(conflicts: &[ConflictRecord]) -> Markup {
    let winner = |w: &str| match w {
        "sportlink" => "Sportlink",
        "rondo_club" => "Rondo Club",
        "neither" => "Neither",
        _ => "Unknown",
    };
    html! {
        table {
            thead { tr {
                th { "Member" } th { "Field" } th { "Sportlink value" } th { "Rondo Club value" }
                th { "Winner" } th { "Reason" } th { "Decided" }
            } }
            tbody {
                @for c in conflicts {
                    tr {
                        td data-label="Member" { (c.knvb_id) }
                        td data-label="Field" { (c.field) }
                        td data-label="Sportlink value" { (c.sportlink_value.as_deref().unwrap_or("")) }
                        td data-label="Rondo Club value" { (c.rondo_club_value.as_deref().unwrap_or("")) }
                        td data-label="Winner" { (winner(&c.winning_system)) }
                        td data-label="Reason" { (c.resolution_reason) }
                        td data-label="Decided" { (when(c.resolved_at)) }
                    }
                }
            }
        }
    }
}

fn runs_table(runs: &[RunRecord]) -> Markup {
    html! {
        table {
            thead { tr {
                th { "Run" } th { "Kind" } th { "Status" } th { "Started" } th { "Finished" }
                th { "People" } th { "Changes" } th { "Detail" }
            } }
            tbody {
                @for r in runs {
                    tr {
                        td data-label="Run" { (r.id) }
                        td data-label="Kind" { (r.kind) @if r.dry_run { " (dry run)" } }
                        td data-label="Status" { span class={ "status " (r.status) } { (r.status) } }
                        td data-label="Started" { (when(r.started_at)) }
                        td data-label="Finished" { (when_opt(r.finished_at, "—")) }
                        td data-label="People" { (r.people_seen) }
                        td data-label="Changes" { (r.changes_detected) }
                        td data-label="Detail" {
                            @if let Some(e) = &r.error { span.failed { (e) } br; }
                            (r.detail.as_deref().unwrap_or(""))
                        }
                    }
                }
            }
        }
    }
}

struct PageData {
    status: StatusView,
    pending: Vec<ChangeRecord>,
    attention: Vec<ChangeRecord>,
    conflicts: Vec<ConflictRecord>,
    runs: Vec<RunRecord>,
    audit: Markup,
}

async fn load(state: &OpsState) -> Result<PageData, ApiError> {
    let status = status_view(state).await?;
    let (pending, attention, conflicts, runs) = state
        .store()
        .read(|db| {
            Ok((
                db.list_changes(&[ChangeStatus::Pending], None, LIST_LIMIT, 0)?,
                db.list_changes(
                    &[
                        ChangeStatus::Failed,
                        ChangeStatus::ConflictLost,
                        ChangeStatus::Skipped,
                    ],
                    None,
                    LIST_LIMIT,
                    0,
                )?,
                db.list_conflicts(None, SHORT_LIST_LIMIT, 0)?,
                db.list_runs(SHORT_LIST_LIMIT, 0)?,
            ))
        })
        .await?;
    Ok(PageData {
        status,
        pending,
        attention,
        conflicts,
        runs,
        audit: super::audit::operator_block(state.store()).await,
    })
}

enum Banner {
    Notice(String),
    Error(String),
}

fn dashboard(data: &PageData, csrf: &str, banner: Option<Banner>) -> Markup {
    let s = &data.status;
    let counts = &s.changes;
    let body = html! {
        header {
            h1 { "Rondo Club → Sportlink sync" }
            form method="post" action="/logout" {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Sign out" }
            }
        }
        main {
            @match &banner {
                Some(Banner::Notice(m)) => p.notice role="status" { (m) },
                Some(Banner::Error(m)) => p.error role="alert" { (m) },
                None => {},
            }
            section #summary {
                h2 { "Overview" }
                div.cards {
                    div.card { "Pending" b #count-pending { (counts.pending) } }
                    div.card { "Failed" b #count-failed { (counts.failed) } }
                    div.card { "Conflict lost" b #count-conflict-lost { (counts.conflict_lost) } }
                    div.card { "Skipped" b #count-skipped { (counts.skipped) } }
                    div.card { "Synced" b #count-synced { (counts.synced) } }
                    div.card { "Superseded" b #count-superseded { (counts.superseded) } }
                }
                dl {
                    dt { "Executor" } dd #executor { (executor_block(s, csrf)) }
                    dt { "Divergence audit" } dd #audit { (data.audit) }
                    dt { "Poll watermark" } dd #watermark { (when_opt(s.poll_watermark, "No completed poll yet")) }
                    dt { "Last webhook" }
                    dd #last-webhook {
                        @match &s.last_webhook {
                            None => "None received yet",
                            Some(d) => {
                                (when(d.received_at)) " · " (d.outcome)
                                @if let Some(t) = &d.event_type { " · " (t) }
                                @if let Some(k) = &d.knvb_id { " · member " (k) }
                            }
                        }
                    }
                }
            }
            @if s.invalid_knvb_id_count > 0 {
                section #invalid-knvb-ids {
                    h2 { "People with an invalid KNVB id (" (s.invalid_knvb_id_count) ")" }
                    p.muted { "Their edits are not detected until the id is corrected in Rondo Club." }
                    table {
                        thead { tr { th { "Post" } th { "knvb-id as stored" } th { "Seen via" } th { "Last seen" } } }
                        tbody {
                            @for p in &s.invalid_knvb_ids {
                                tr { td { (p.wp_post_id) } td { code { (p.value) } } td { (p.source) } td { (when(p.last_seen_at)) } }
                            }
                        }
                    }
                }
            }
            section #pending {
                h2 { "Pending changes (" (counts.pending) ")" }
                @if data.pending.is_empty() { p.muted { "Nothing pending." } }
                @else { (changes_table(&data.pending, csrf, false)) }
            }
            section #attention {
                h2 { "Failed, conflict lost and skipped (" (counts.failed + counts.conflict_lost + counts.skipped) ")" }
                @if data.attention.is_empty() { p.muted { "Nothing needs attention." } }
                @else { (changes_table(&data.attention, csrf, true)) }
            }
            section #conflicts {
                h2 { "Recent conflicts" }
                @if data.conflicts.is_empty() { p.muted { "No conflicts." } }
                @else { (conflicts_table(&data.conflicts)) }
            }
            section #runs {
                h2 { "Recent runs" }
                @if data.runs.is_empty() { p.muted { "No runs yet." } }
                @else { (runs_table(&data.runs)) }
            }
        }
    };
    layout("rondo-reverse-sync", body)
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    requeued: Option<i64>,
    resumed: Option<u8>,
}

async fn render(
    state: &OpsState,
    viewer: &Viewer,
    status: StatusCode,
    banner: Option<Banner>,
) -> Response {
    match load(state).await {
        Ok(data) => html_response(status, dashboard(&data, &viewer.csrf(state), banner)),
        Err(e) => {
            e.log_if_internal();
            let status = e.status();
            html_response(
                status,
                layout(
                    "Error · rondo-reverse-sync",
                    html! { main { p.error { "The page cannot be shown right now (" (status) ")." } } },
                ),
            )
        }
    }
}

/// The operator page.
#[utoipa::path(
    get,
    path = "/",
    tag = "operator",
    responses(
        (status = 200, description = "The operator page (HTML)", content_type = "text/html"),
        (status = 401, description = "The sign-in form (HTML)", content_type = "text/html"),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
pub async fn page(
    State(state): State<OpsState>,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let Some(viewer) = viewer(&state, &headers) else {
        return login_page(StatusCode::UNAUTHORIZED, None);
    };
    // Only numbers come back from the query string: nothing a link could inject.
    let banner = query
        .ok()
        .and_then(|Query(q)| match (q.requeued, q.resumed) {
            (Some(id), _) => Some(Banner::Notice(format!(
                "Change {id} is pending again; the executor was woken."
            ))),
            (None, Some(_)) => Some(Banner::Notice("The executor was resumed.".into())),
            _ => None,
        });
    render(&state, &viewer, StatusCode::OK, banner).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginForm {
    token: String,
}

/// Signs in with the admin token; sets the session cookie.
#[utoipa::path(
    post,
    path = "/login",
    tag = "operator",
    request_body(content_type = "application/x-www-form-urlencoded", description = "token=<admin token>"),
    responses(
        (status = 303, description = "Signed in; redirect to /"),
        (status = 400, description = "Bad form"),
        (status = 401, description = "Wrong token (the sign-in form again)", content_type = "text/html"),
        (status = 429, description = "Too many attempts from this client or overall (Retry-After)", content_type = "text/html"),
    )
)]
pub async fn login(
    State(state): State<OpsState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    // Behind a reverse proxy every client is the proxy: the overall limit still holds.
    let client = peer.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.0 .0.ip());
    if let Err(RetryAfter(wait)) = state.allow_login_attempt(client) {
        let seconds = wait.as_secs() + 1;
        tracing::warn!(%client, "operator page: sign-in refused by the rate limit");
        let mut response = login_page(
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!(
                "Too many sign-in attempts. Try again in {seconds} seconds."
            )),
        );
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let Ok(Form(form)) = form else {
        return login_page(
            StatusCode::BAD_REQUEST,
            Some("The sign-in form was incomplete."),
        );
    };
    if !state.token_matches(form.token.trim()) {
        tracing::warn!("operator page: sign-in with a wrong token");
        return login_page(StatusCode::UNAUTHORIZED, Some("That token is not right."));
    }
    let Some(session) = state.new_session(Utc::now()) else {
        return login_page(
            StatusCode::UNAUTHORIZED,
            Some("No admin token is configured."),
        );
    };
    let cookie = format!(
        "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_LIFETIME_SECS}"
    );
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    no_store(response)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Why a form post was refused.
enum Refusal {
    NotSignedIn,
    BadCsrf,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NotSignedIn => login_page(StatusCode::UNAUTHORIZED, Some("Please sign in.")),
            Refusal::BadCsrf => html_response(
                StatusCode::FORBIDDEN,
                layout(
                    "Forbidden · rondo-reverse-sync",
                    html! { main { p.error { "This form has expired. " a href="/" { "Reload the page" } " and try again." } } },
                ),
            ),
        }
    }
}

/// Checks the viewer and the CSRF token of a form post.
fn authorise_post(
    state: &OpsState,
    headers: &HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Viewer, Refusal> {
    let viewer = viewer(state, headers).ok_or(Refusal::NotSignedIn)?;
    let presented = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if !viewer.csrf_ok(state, &presented) {
        return Err(Refusal::BadCsrf);
    }
    Ok(viewer)
}

/// Signs out (clears the cookie).
#[utoipa::path(
    post,
    path = "/logout",
    tag = "operator",
    responses((status = 303, description = "Signed out (the session is ended on the server); redirect to /"), (status = 403, description = "Bad CSRF token"))
)]
pub async fn logout(
    State(state): State<OpsState>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    match authorise_post(&state, &headers, form) {
        Err(refusal) => return refusal.into_response(),
        // The cookie alone would keep working until it expires: end the session here.
        Ok(Viewer::Session(session)) => state.end_session(&session),
        Ok(Viewer::Bearer) => {}
    }
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("rrs_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    no_store(response)
}

/// The requeue button.
#[utoipa::path(
    post,
    path = "/ui/changes/{id}/requeue",
    tag = "operator",
    params(("id" = i64, Path, description = "The change's id")),
    responses(
        (status = 303, description = "Requeued; redirect to /"),
        (status = 401, description = "Not signed in"),
        (status = 403, description = "Bad CSRF token"),
        (status = 404, description = "No such change"),
        (status = 409, description = "Not requeueable (the page, with the reason)"),
    )
)]
pub async fn ui_requeue(
    State(state): State<OpsState>,
    headers: HeaderMap,
    path: Result<Path<i64>, PathRejection>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let viewer = match authorise_post(&state, &headers, form) {
        Ok(v) => v,
        Err(refusal) => return refusal.into_response(),
    };
    let Ok(Path(id)) = path else {
        return render(
            &state,
            &viewer,
            StatusCode::BAD_REQUEST,
            Some(Banner::Error("That is not a change id.".into())),
        )
        .await;
    };
    match requeue_one(&state, ChangeId(id)).await {
        Ok(_) => no_store(Redirect::to(&format!("/?requeued={id}#pending")).into_response()),
        Err(e) => {
            e.log_if_internal();
            let status = e.status();
            render(
                &state,
                &viewer,
                status,
                Some(Banner::Error(format!("Change {id} was not requeued: {e}"))),
            )
            .await
        }
    }
}

/// The resume button.
#[utoipa::path(
    post,
    path = "/ui/executor/resume",
    tag = "operator",
    responses(
        (status = 303, description = "Resumed; redirect to /"),
        (status = 401, description = "Not signed in"),
        (status = 403, description = "Bad CSRF token"),
        (status = 503, description = "No executor in this process (the page, with the reason)"),
    )
)]
pub async fn ui_resume(
    State(state): State<OpsState>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let viewer = match authorise_post(&state, &headers, form) {
        Ok(v) => v,
        Err(refusal) => return refusal.into_response(),
    };
    match state.operations().resume_executor() {
        Ok(()) => {
            state.wake_executor();
            no_store(Redirect::to("/?resumed=1").into_response())
        }
        Err(e) => {
            let e = ApiError::from(e);
            e.log_if_internal();
            let status = e.status();
            render(
                &state,
                &viewer,
                status,
                Some(Banner::Error(format!("The executor was not resumed: {e}"))),
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(status: &str) -> ChangeRecord {
        ChangeRecord {
            id: ChangeId(7),
            knvb_id: "ABC1234".into(),
            field: "email".into(),
            old_value: "a@b.nl".into(),
            new_value: String::new(),
            source: crate::domain::Source::Webhook,
            status: ChangeStatus::parse(status).expect("a change status"),
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
        let mut c = change("pending");
        assert_eq!(reason(&c), "Waiting for the executor.");
        c.attempts = 2;
        c.last_error = Some("timeout".into());
        c.next_attempt_at = Some(Utc::now());
        assert!(reason(&c).starts_with("Attempt 2 failed: timeout. Next attempt "));
        for status in ["failed", "skipped", "conflict_lost", "superseded"] {
            let c = change(status);
            assert!(reason(&c).contains("no reason recorded"), "{status}");
        }
        let mut c = change("skipped");
        c.status_reason = Some("former member (Oud bondslid)".into());
        assert_eq!(reason(&c), "former member (Oud bondslid)");
        assert_eq!(change_text(&change("pending")), "a@b.nl → (empty)");
    }

    #[test]
    fn markup_is_escaped() {
        let mut c = change("failed");
        c.status_reason = Some("<script>alert(1)</script>".into());
        let html = changes_table(&[c], "csrf", true).into_string();
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
    }
}

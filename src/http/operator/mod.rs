//! The operator page (product.md §8): server-rendered HTML (maud escapes everything), no
//! JavaScript, readable on a phone, Dutch unless the reader asks for English. Behind the admin
//! token: a bearer header, or a sign-in form that sets an HttpOnly, SameSite=Strict cookie
//! holding an HMAC-signed session value (never the token). Every form posts with a CSRF token
//! bound to that session.
//!
//! `session` (who is looking, in which language), `i18n` (the message catalogues, dates),
//! `views` (frame, sign-in, overview), `runs` (runs in words), `history` (history, a member's
//! timeline, the bulk requeue's confirmation); the overview's and the forms' handlers are here,
//! the history's in `browse`.

mod browse;
mod history;
pub mod i18n;
mod runs;
mod session;
mod views;

use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Utc;
use serde::Deserialize;

use super::admin::{requeue_one, status_view, ApiError};
use super::ops::{OpsState, RetryAfter, SESSION_LIFETIME_SECS};
use crate::domain::{ChangeId, ChangeStatus};
pub use browse::*;
use i18n::{L10n, Lang, LANG_COOKIE};
pub use session::SESSION_COOKIE;
use session::{authorise_post, l10n, viewer, CsrfForm, Viewer};
use views::{dashboard, error_page, html_response, login_page, no_store, Banner, PageData};

const LIST_LIMIT: u32 = 100;
const SHORT_LIST_LIMIT: u32 = 20;

/// Remembers the language switch: `?lang=` on any page sets the cookie.
fn remember_lang(mut response: Response, query_lang: Option<&str>) -> Response {
    if let Some(lang) = query_lang.and_then(Lang::parse) {
        let cookie = format!(
            "{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000",
            lang.code()
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
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
                db.list_runs(SHORT_LIST_LIMIT * 3, 0)?,
            ))
        })
        .await?;
    Ok(PageData {
        audit: super::audit::overview(state.store()).await,
        status,
        pending,
        attention,
        conflicts,
        runs,
    })
}

async fn render(
    state: &OpsState,
    l: &L10n,
    viewer: &Viewer,
    status: StatusCode,
    banner: Option<Banner>,
) -> Response {
    match load(state).await {
        Ok(data) => html_response(status, dashboard(l, &data, &viewer.csrf(state), banner)),
        Err(e) => {
            e.log_if_internal();
            error_page(l, e.status())
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    requeued: Option<i64>,
    resumed: Option<u8>,
    bulk_requeued: Option<u64>,
    bulk_refused: Option<u64>,
    lang: Option<String>,
}

/// The operator page.
#[utoipa::path(
    get,
    path = "/",
    tag = "operator",
    params(("lang" = Option<String>, Query, description = "`nl` or `en`; remembered in a cookie")),
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
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let l = l10n(&state, &headers, q.lang.as_deref());
    let Some(viewer) = viewer(&state, &headers) else {
        return remember_lang(
            login_page(&l, StatusCode::UNAUTHORIZED, None),
            q.lang.as_deref(),
        );
    };
    // Only numbers come back from the query string: nothing a link could inject.
    let banner = match (q.requeued, q.resumed, q.bulk_requeued) {
        (Some(id), _, _) => Some(Banner::Notice(
            l.ta("notice-requeued", &[("id", id.into())]),
        )),
        (None, Some(_), _) => Some(Banner::Notice(l.t("notice-resumed"))),
        (None, None, Some(n)) => Some(Banner::Notice(l.ta(
            "notice-bulk-requeued",
            &[
                ("requeued", n.into()),
                ("refused", q.bulk_refused.unwrap_or(0).into()),
            ],
        ))),
        _ => None,
    };
    remember_lang(
        render(&state, &l, &viewer, StatusCode::OK, banner).await,
        q.lang.as_deref(),
    )
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
    headers: HeaderMap,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let l = l10n(&state, &headers, None);
    // Behind a reverse proxy every client is the proxy: the overall limit still holds.
    let client = peer.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.0 .0.ip());
    if let Err(RetryAfter(wait)) = state.allow_login_attempt(client) {
        let seconds = wait.as_secs() + 1;
        tracing::warn!(%client, "operator page: sign-in refused by the rate limit");
        let mut response = login_page(
            &l,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&l.ta("sign-in-too-many", &[("seconds", seconds.into())])),
        );
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let Ok(Form(form)) = form else {
        return login_page(
            &l,
            StatusCode::BAD_REQUEST,
            Some(&l.t("sign-in-incomplete")),
        );
    };
    if !state.token_matches(form.token.trim()) {
        tracing::warn!("operator page: sign-in with a wrong token");
        return login_page(&l, StatusCode::UNAUTHORIZED, Some(&l.t("sign-in-wrong")));
    }
    let Some(session) = state.new_session(Utc::now()) else {
        return login_page(&l, StatusCode::UNAUTHORIZED, Some(&l.t("sign-in-none")));
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
    let l = l10n(&state, &headers, None);
    match authorise_post(&state, &headers, l, form) {
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
    let l = l10n(&state, &headers, None);
    let viewer = match authorise_post(&state, &headers, l, form) {
        Ok(v) => v,
        Err(refusal) => return refusal.into_response(),
    };
    let Ok(Path(id)) = path else {
        let banner = Banner::Error(l.t("error-not-a-change"));
        return render(&state, &l, &viewer, StatusCode::BAD_REQUEST, Some(banner)).await;
    };
    match requeue_one(&state, ChangeId(id)).await {
        Ok(_) => no_store(Redirect::to(&format!("/?requeued={id}#pending")).into_response()),
        Err(e) => {
            e.log_if_internal();
            let status = e.status();
            let banner = Banner::Error(l.ta(
                "error-not-requeued",
                &[("id", id.into()), ("error", e.to_string().into())],
            ));
            render(&state, &l, &viewer, status, Some(banner)).await
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
    let l = l10n(&state, &headers, None);
    let viewer = match authorise_post(&state, &headers, l, form) {
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
            let banner =
                Banner::Error(l.ta("error-not-resumed", &[("error", e.to_string().into())]));
            render(&state, &l, &viewer, status, Some(banner)).await
        }
    }
}

#[cfg(test)]
mod tests;

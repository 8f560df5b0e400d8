//! The history's handlers: the history, a member's timeline, and requeueing everything that
//! matches a filter (a confirmation with the count first).

use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Utc;
use serde::Deserialize;

use super::history as view;
use super::session::{authorise, l10n, viewer};
use super::views::{bad_request_page, error_page, html_response, login_page, no_store, Banner};
use super::{remember_lang, render};
use crate::domain::{ChangeStatus, FieldName, KnvbId};
use crate::http::admin::history::{history_page as load_history, HistoryPage, HistoryParams};
use crate::http::admin::ApiError;
use crate::http::ops::OpsState;
use crate::store::StoreError;

const HISTORY_PAGE: u32 = 50;
/// Most changes one "requeue everything matching" takes.
pub const MAX_FILTER_REQUEUE: u64 = 500;

#[derive(Debug, Default, Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

fn catalogue_fields(state: &OpsState) -> Vec<FieldName> {
    state.store().catalogue().names().cloned().collect()
}

/// The history: every change with its story, filtered, newest first, by keyset.
#[utoipa::path(
    get,
    path = "/history",
    tag = "operator",
    params(HistoryParams, ("lang" = Option<String>, Query, description = "`nl` or `en`")),
    responses(
        (status = 200, description = "The history (HTML)", content_type = "text/html"),
        (status = 400, description = "A bad filter (the page, with the reason)", content_type = "text/html"),
        (status = 401, description = "The sign-in form (HTML)", content_type = "text/html"),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
pub async fn history(
    State(state): State<OpsState>,
    headers: HeaderMap,
    params: Result<Query<HistoryParams>, QueryRejection>,
    lang: Result<Query<LangQuery>, QueryRejection>,
) -> Response {
    let lang = lang.map(|Query(q)| q.lang).unwrap_or_default();
    let l = l10n(&state, &headers, lang.as_deref());
    let Some(viewer) = viewer(&state, &headers) else {
        return login_page(&l, StatusCode::UNAUTHORIZED, None);
    };
    let csrf = viewer.csrf(&state);
    let params = params.map(|Query(p)| p).unwrap_or_default();
    let fields = catalogue_fields(&state);
    let empty = HistoryPage {
        changes: Vec::new(),
        next_before: None,
    };
    let (status, page, notice) = match params.filter(state.store().catalogue()) {
        Ok(filter) => match load_history(&state, filter, HISTORY_PAGE).await {
            Ok(page) => (StatusCode::OK, page, None),
            Err(e) => {
                e.log_if_internal();
                return error_page(&l, e.status());
            }
        },
        Err(e) => (
            StatusCode::BAD_REQUEST,
            empty,
            Some(Banner::Error(
                l.ta("error-filter", &[("error", e.to_string().into())]),
            )),
        ),
    };
    let screen = view::HistoryScreen {
        params: &params,
        page: &page,
        fields: &fields,
        csrf: &csrf,
        notice,
    };
    remember_lang(
        html_response(status, view::history_page(&l, screen)),
        lang.as_deref(),
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct MemberQuery {
    before: Option<String>,
    lang: Option<String>,
}

/// A member's timeline: every change of theirs with its story.
#[utoipa::path(
    get,
    path = "/members/{knvb_id}",
    tag = "operator",
    params(("knvb_id" = String, Path, description = "The member's KNVB id")),
    responses(
        (status = 200, description = "The member's timeline (HTML)", content_type = "text/html"),
        (status = 400, description = "Not a KNVB id", content_type = "text/html"),
        (status = 401, description = "The sign-in form (HTML)", content_type = "text/html"),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
pub async fn member(
    State(state): State<OpsState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<MemberQuery>, QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let l = l10n(&state, &headers, q.lang.as_deref());
    let Some(viewer) = viewer(&state, &headers) else {
        return login_page(&l, StatusCode::UNAUTHORIZED, None);
    };
    let raw = path.map(|Path(raw)| raw).unwrap_or_default();
    let Ok(knvb_id) = KnvbId::parse(&raw) else {
        let value: String = raw.chars().take(40).collect();
        return bad_request_page(&l, &l.ta("error-bad-member", &[("value", value.into())]));
    };
    let params = HistoryParams {
        before: q.before.clone(),
        ..Default::default()
    };
    let mut filter = match params.filter(state.store().catalogue()) {
        Ok(filter) => filter,
        Err(e) => {
            return bad_request_page(
                &l,
                &l.ta("error-filter", &[("error", e.to_string().into())]),
            )
        }
    };
    filter.knvb_id = Some(knvb_id.clone());
    match load_history(&state, filter, HISTORY_PAGE).await {
        Ok(page) => {
            let first = q.before.as_deref().is_none_or(str::is_empty);
            let markup =
                view::member_page(&l, knvb_id.as_str(), &page, first, &viewer.csrf(&state));
            remember_lang(html_response(StatusCode::OK, markup), q.lang.as_deref())
        }
        Err(e) => {
            e.log_if_internal();
            error_page(&l, e.status())
        }
    }
}

/// The changes of a filter that a requeue can take (failed, skipped, conflict lost).
fn requeueable(
    state: &OpsState,
    params: &HistoryParams,
) -> Result<Option<crate::store::HistoryFilter>, ApiError> {
    let mut filter = params.filter(state.store().catalogue())?;
    filter.before = None;
    let takeable = [
        ChangeStatus::Failed,
        ChangeStatus::Skipped,
        ChangeStatus::ConflictLost,
    ];
    filter.statuses = if filter.statuses.is_empty() {
        takeable.to_vec()
    } else {
        takeable
            .into_iter()
            .filter(|s| filter.statuses.contains(s))
            .collect()
    };
    Ok((!filter.statuses.is_empty()).then_some(filter))
}

/// The confirmation before requeueing everything that matches the history's filter.
#[utoipa::path(
    get,
    path = "/history/requeue",
    tag = "operator",
    params(HistoryParams),
    responses(
        (status = 200, description = "How many changes would be requeued, and the form to do it (HTML)", content_type = "text/html"),
        (status = 401, description = "The sign-in form (HTML)", content_type = "text/html"),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
pub async fn confirm_requeue(
    State(state): State<OpsState>,
    headers: HeaderMap,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> Response {
    let l = l10n(&state, &headers, None);
    let Some(viewer) = viewer(&state, &headers) else {
        return login_page(&l, StatusCode::UNAUTHORIZED, None);
    };
    let params = params.map(|Query(p)| p).unwrap_or_default();
    let count = match requeueable(&state, &params) {
        Ok(None) => Ok(0),
        Ok(Some(filter)) => state
            .store()
            .read(move |db| db.count_history(&filter, MAX_FILTER_REQUEUE + 1))
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match count {
        Ok(count) => html_response(
            StatusCode::OK,
            view::confirm_page(&l, &params, count, MAX_FILTER_REQUEUE, &viewer.csrf(&state)),
        ),
        Err(e @ ApiError::BadRequest(_)) => bad_request_page(
            &l,
            &l.ta("error-filter", &[("error", e.to_string().into())]),
        ),
        Err(e) => {
            e.log_if_internal();
            error_page(&l, e.status())
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct FilterRequeueForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    params: HistoryParams,
}

/// Requeues everything (up to [`MAX_FILTER_REQUEUE`], newest first) that matches the filter.
#[utoipa::path(
    post,
    path = "/ui/history/requeue",
    tag = "operator",
    request_body(content_type = "application/x-www-form-urlencoded", description = "csrf and the history's filter (q, status, field, from, to)"),
    responses(
        (status = 303, description = "Requeued; redirect to / with the counts"),
        (status = 400, description = "A bad filter"),
        (status = 401, description = "Not signed in"),
        (status = 403, description = "Bad CSRF token"),
    )
)]
pub async fn ui_requeue_filter(
    State(state): State<OpsState>,
    headers: HeaderMap,
    form: Result<Form<FilterRequeueForm>, FormRejection>,
) -> Response {
    let l = l10n(&state, &headers, None);
    let (csrf, params) = match form {
        Ok(Form(f)) => (f.csrf, f.params),
        Err(_) => (String::new(), HistoryParams::default()),
    };
    let viewer = match authorise(&state, &headers, l, &csrf) {
        Ok(v) => v,
        Err(refusal) => return refusal.into_response(),
    };
    let filter = match requeueable(&state, &params) {
        Ok(filter) => filter,
        Err(e) => {
            let banner = Banner::Error(l.ta("error-filter", &[("error", e.to_string().into())]));
            return render(&state, &l, &viewer, StatusCode::BAD_REQUEST, Some(banner)).await;
        }
    };
    let now = Utc::now();
    let done = match filter {
        None => Ok((0u64, 0u64)),
        Some(filter) => {
            state
                .store()
                .write(move |db| {
                    let ids = db.history_ids(&filter, MAX_FILTER_REQUEUE as u32)?;
                    let (mut requeued, mut refused) = (0, 0);
                    for id in ids {
                        match db.requeue(id, now) {
                            Ok(()) => requeued += 1,
                            Err(StoreError::Rejected(_) | StoreError::NotFound(_)) => refused += 1,
                            Err(other) => return Err(other),
                        }
                    }
                    Ok((requeued, refused))
                })
                .await
        }
    };
    match done {
        Ok((requeued, refused)) => {
            if requeued > 0 {
                state.wake_executor();
            }
            tracing::info!(
                requeued,
                refused,
                "operator page: requeued the changes matching a filter"
            );
            no_store(
                Redirect::to(&format!(
                    "/?bulk_requeued={requeued}&bulk_refused={refused}#pending"
                ))
                .into_response(),
            )
        }
        Err(e) => {
            let e = ApiError::from(e);
            e.log_if_internal();
            error_page(&l, e.status())
        }
    }
}

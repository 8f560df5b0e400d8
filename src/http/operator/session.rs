//! Who is looking: the admin token as a bearer header, or the sign-in cookie (an HMAC-signed
//! session value, never the token) whose forms carry a CSRF token bound to the session; and the
//! reader's language and the club's time zone.

use axum::extract::rejection::FormRejection;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use chrono::Utc;
use maud::html;
use serde::Deserialize;

use super::i18n::{L10n, Lang, LANG_COOKIE};
use super::views::{html_response, layout, login_page};
use crate::http::admin::bearer;
use crate::http::ops::OpsState;

pub const SESSION_COOKIE: &str = "rrs_session";

/// How a request proved it holds the token.
pub enum Viewer {
    /// The login cookie; forms must carry the session's CSRF token.
    Session(String),
    /// An `Authorization: Bearer` header, which browsers never send by themselves: no CSRF risk.
    Bearer,
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The viewer, when the request holds the admin token (the read-only token opens nothing here).
pub fn viewer(state: &OpsState, headers: &HeaderMap) -> Option<Viewer> {
    if let Some(token) = bearer(headers) {
        return state.token_matches(token).then_some(Viewer::Bearer);
    }
    let session = cookie(headers, SESSION_COOKIE)?;
    state
        .session_valid(session, Utc::now())
        .then(|| Viewer::Session(session.to_string()))
}

impl Viewer {
    pub fn csrf(&self, state: &OpsState) -> String {
        match self {
            Viewer::Session(session) => state.csrf_token(session).unwrap_or_default(),
            Viewer::Bearer => String::new(),
        }
    }

    pub fn csrf_ok(&self, state: &OpsState, presented: &str) -> bool {
        match self {
            Viewer::Session(session) => state.csrf_valid(session, presented),
            Viewer::Bearer => true,
        }
    }
}

/// The reader's language (`lang` from the query string, the switch's cookie, the browser's
/// `Accept-Language`, else Dutch) and the club's time zone.
pub fn l10n(state: &OpsState, headers: &HeaderMap, query_lang: Option<&str>) -> L10n {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    L10n {
        lang: Lang::negotiate(query_lang, cookie(headers, LANG_COOKIE), accept),
        tz: state.time_zone(),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// Why a form post was refused.
pub enum Refusal {
    NotSignedIn(L10n),
    BadCsrf(L10n),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NotSignedIn(l) => {
                login_page(&l, StatusCode::UNAUTHORIZED, Some(&l.t("please-sign-in")))
            }
            Refusal::BadCsrf(l) => html_response(
                StatusCode::FORBIDDEN,
                layout(
                    &l,
                    &l.t("form-expired"),
                    None,
                    html! { main { p.error { (l.t("form-expired")) " " a href="/" { (l.t("reload-and-retry")) } } } },
                ),
            ),
        }
    }
}

/// Checks the viewer and the CSRF token a form presented.
pub fn authorise(
    state: &OpsState,
    headers: &HeaderMap,
    l: L10n,
    presented: &str,
) -> Result<Viewer, Refusal> {
    let viewer = viewer(state, headers).ok_or(Refusal::NotSignedIn(l))?;
    if !viewer.csrf_ok(state, presented) {
        return Err(Refusal::BadCsrf(l));
    }
    Ok(viewer)
}

/// [`authorise`] for a form that carries only the CSRF token.
pub fn authorise_post(
    state: &OpsState,
    headers: &HeaderMap,
    l: L10n,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Viewer, Refusal> {
    let presented = form.map(|Form(f)| f.csrf).unwrap_or_default();
    authorise(state, headers, l, &presented)
}

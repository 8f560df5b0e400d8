//! The Keycloak-style login: username/password, then a TOTP code, then a session cookie.

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;

use super::http::{
    clear_session_cookie, escape_html, found, login_url, percent_encode, query_param,
    safe_local_path, session_cookie, set_session_cookie, with_logged_fields,
};
use super::state::{SessionError, SimState};
use super::variant::LoginErrorElement;

pub(crate) const AUTH_PATH: &str = "/auth/realms/club/protocol/openid-connect/auth";
pub(crate) const PASSWORD_PATH: &str = "/auth/realms/club/login-actions/authenticate";
pub(crate) const OTP_PATH: &str = "/auth/realms/club/login-actions/otp";

const WRONG_CREDENTIALS: &str = "Ongeldige gebruikersnaam of wachtwoord.";
const WRONG_CODE: &str = "Ongeldige authenticatiecode.";
const REDACTED: &str = "[redacted]";

/// Step 1: the username/password form.
pub(crate) async fn login_page(
    State(state): State<SimState>,
    RawQuery(query): RawQuery,
) -> Html<String> {
    let errors = state.variant().login_error;
    Html(password_form(&return_path(query.as_deref()), None, errors))
}

/// Step 1 submitted: wrong credentials stay on the form with an error, right ones go to step 2.
pub(crate) async fn submit_password(
    State(state): State<SimState>,
    RawQuery(query): RawQuery,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let return_to = return_path(query.as_deref());
    let errors = state.variant().login_error;
    let username = form.get("username").map(String::as_str).unwrap_or_default();
    let password = form.get("password").map(String::as_str).unwrap_or_default();
    let logged = vec![
        ("username".to_owned(), username.to_owned()),
        ("password".to_owned(), REDACTED.to_owned()),
    ];
    if !state.credentials_match(username, password) {
        let page = Html(password_form(&return_to, Some(WRONG_CREDENTIALS), errors));
        return with_logged_fields(page, logged);
    }
    let session_code = state.start_pending_login();
    let otp_url = format!(
        "{OTP_PATH}?session_code={session_code}&redirect_uri={}",
        percent_encode(&return_to)
    );
    with_logged_fields(found(&otp_url), logged)
}

/// Step 2: the one-time code form. An unknown or stale login goes back to step 1.
pub(crate) async fn otp_page(State(state): State<SimState>, RawQuery(query): RawQuery) -> Response {
    let return_to = return_path(query.as_deref());
    let session_code = query
        .as_deref()
        .and_then(|q| query_param(q, "session_code"))
        .unwrap_or_default();
    if !state.pending_login_exists(&session_code) {
        return found(&login_url(&return_to));
    }
    let errors = state.variant().login_error;
    Html(otp_form(&session_code, &return_to, None, errors)).into_response()
}

/// Step 2 submitted: a valid, unused code creates the session and returns to `redirect_uri`.
pub(crate) async fn submit_otp(
    State(state): State<SimState>,
    RawQuery(query): RawQuery,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let return_to = return_path(query.as_deref());
    let session_code = query
        .as_deref()
        .and_then(|q| query_param(q, "session_code"))
        .unwrap_or_default();
    let otp = form.get("otp").map(|c| c.trim()).unwrap_or_default();
    let logged = vec![("otp".to_owned(), REDACTED.to_owned())];

    if !state.pending_login_exists(&session_code) {
        return with_logged_fields(found(&login_url(&return_to)), logged);
    }
    let Some(session_id) = state.complete_login(&session_code, otp) else {
        let errors = state.variant().login_error;
        let page = Html(otp_form(
            &session_code,
            &return_to,
            Some(WRONG_CODE),
            errors,
        ));
        return with_logged_fields(page, logged);
    };
    let destination = if state.variant().login_returns_to_requested_page {
        return_to
    } else {
        "/".to_owned()
    };
    let mut response = found(&destination);
    if let Some(cookie) = set_session_cookie(&session_id) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    with_logged_fields(response, logged)
}

/// Ends the session and shows the login page again.
pub(crate) async fn logout(State(state): State<SimState>, headers: HeaderMap) -> Response {
    if let Some(id) = session_cookie(&headers) {
        state.end_session(&id);
    }
    let mut response = found(&login_url("/"));
    response
        .headers_mut()
        .insert(header::SET_COOKIE, clear_session_cookie());
    response
}

/// Counts the request against the caller's session; `Err` when there is no valid session.
pub(crate) fn check_session(state: &SimState, headers: &HeaderMap) -> Result<(), SessionError> {
    state.touch_session(session_cookie(headers).as_deref())
}

/// What a page navigation without a valid session gets: a redirect to the login page.
pub(crate) fn redirect_to_login(return_to: &str, error: SessionError) -> Response {
    let mut response = found(&login_url(return_to));
    if error == SessionError::Expired {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, clear_session_cookie());
    }
    response
}

/// What a JSON call without a valid session gets: 401 with where the app should navigate to.
pub(crate) fn json_unauthorized(headers: &HeaderMap) -> Response {
    let return_to = referer_path(headers);
    let body = serde_json::json!({ "redirect": login_url(&return_to) });
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}

/// The path of the page that made a fetch, so that the login returns there.
fn referer_path(headers: &HeaderMap) -> String {
    let referer = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // Strip "scheme://host" so only a local path remains.
    let path = referer
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]));
    safe_local_path(path)
}

fn return_path(query: Option<&str>) -> String {
    let candidate = query.and_then(|q| query_param(q, "redirect_uri"));
    safe_local_path(candidate.as_deref())
}

fn password_form(return_to: &str, error: Option<&str>, errors: LoginErrorElement) -> String {
    let action = format!("{PASSWORD_PATH}?redirect_uri={}", percent_encode(return_to));
    let fields = r#"
      <div class="form-group">
        <label for="username">Gebruikersnaam of e-mail</label>
        <input id="username" name="username" type="text" autofocus autocomplete="username">
      </div>
      <div class="form-group">
        <label for="password">Wachtwoord</label>
        <input id="password" name="password" type="password" autocomplete="current-password">
      </div>"#;
    login_shell(
        "Inloggen bij Sportlink Club",
        &action,
        fields,
        error,
        errors,
    )
}

fn otp_form(
    session_code: &str,
    return_to: &str,
    error: Option<&str>,
    errors: LoginErrorElement,
) -> String {
    let action = format!(
        "{OTP_PATH}?session_code={}&redirect_uri={}",
        percent_encode(session_code),
        percent_encode(return_to)
    );
    let fields = r#"
      <div class="form-group">
        <label for="otp">Eenmalige code</label>
        <input id="otp" name="otp" type="text" inputmode="numeric" autocomplete="one-time-code" autofocus>
      </div>"#;
    login_shell("Tweestapsverificatie", &action, fields, error, errors)
}

fn login_shell(
    title: &str,
    action: &str,
    fields: &str,
    error: Option<&str>,
    errors: LoginErrorElement,
) -> String {
    let error_html = error
        .map(|message| match errors {
            LoginErrorElement::InputError => format!(
                r#"<div class="alert alert-error"><span id="input-error" class="kc-feedback-text">{}</span></div>"#,
                escape_html(message)
            ),
            LoginErrorElement::Alert => format!(
                r#"<div class="alert alert-danger" role="alert">{}</div>"#,
                escape_html(message)
            ),
        })
        .unwrap_or_default();
    format!(
        r#"<!DOCTYPE html>
<html lang="nl">
<head><meta charset="utf-8"><link rel="icon" href="data:,"><title>{title}</title></head>
<body class="login-pf">
  <div id="kc-content">
    <h1 id="kc-page-title">{title}</h1>
    {error_html}
    <form id="kc-form-login" method="post" action="{action}">
      {fields}
      <div id="kc-form-buttons">
        <input id="kc-login" name="login" type="submit" value="Inloggen">
      </div>
    </form>
  </div>
</body>
</html>"#,
        title = escape_html(title),
        action = escape_html(action),
    )
}

//! HTTP plumbing shared by the handlers: the session cookie, query strings, HTML escaping, and
//! the middleware that slows responses down and records every request.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::state::{LoggedRequest, SimState};

pub(crate) const SESSION_COOKIE: &str = "SPORTLINK_SESSION";

/// What a handler wants in the request log, attached to its response as an extension (the
/// middleware cannot read a body the handler already consumed, nor knows the variant's URLs).
#[derive(Debug, Clone, Default)]
pub(crate) struct LogDetails {
    pub(crate) fields: Vec<(String, String)>,
    pub(crate) endpoint: Option<&'static str>,
    pub(crate) member_id: Option<String>,
}

/// Attaches `fields` to `response` for the request log.
pub(crate) fn with_logged_fields(
    response: impl IntoResponse,
    fields: Vec<(String, String)>,
) -> Response {
    with_log_details(
        response,
        LogDetails {
            fields,
            ..LogDetails::default()
        },
    )
}

/// Attaches `details` to `response` for the request log.
pub(crate) fn with_log_details(response: impl IntoResponse, details: LogDetails) -> Response {
    let mut response = response.into_response();
    response.extensions_mut().insert(details);
    response
}

/// Applies the `slow_response_ms`, `data_delay_ms`, `save_delay_ms` and `hold_save_answers`
/// faults and appends the request to the log.
pub(crate) async fn log_and_delay(
    State(state): State<SimState>,
    request: Request,
    next: Next,
) -> Response {
    let time = Utc::now();
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let session_id = session_cookie(request.headers());
    let client_header = state.variant().client_header.to_ascii_lowercase();
    let app_marked = request.headers().contains_key(client_header.as_str());
    let navigation = is_navigation(request.headers());

    let faults = state.faults();
    let drawn = |range: Option<(u64, u64)>| {
        range.map_or(0, |(lo, hi)| {
            rand::Rng::gen_range(&mut rand::thread_rng(), lo.min(hi)..=hi.max(lo))
        })
    };
    let is_read = method == "GET";
    let delay = faults.slow_response_ms
        + match (app_marked, is_read) {
            (true, true) => drawn(faults.data_delay_ms),
            (true, false) => drawn(faults.save_delay_ms),
            _ => 0,
        };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let response = next.run(request).await;

    let details = response
        .extensions()
        .get::<LogDetails>()
        .cloned()
        .unwrap_or_default();
    state.record(LoggedRequest {
        time,
        method,
        path,
        query,
        session_id,
        status: response.status().as_u16(),
        fields: details.fields,
        endpoint: details.endpoint.map(str::to_owned),
        member_id: details.member_id,
        app_marked,
        navigation,
        delay_ms: delay,
    });
    if app_marked && !is_read && response.status().is_success() && state.faults().hold_save_answers
    {
        // Stored and logged; the answer waits until the test lets it go (or kills the client).
        state.note_held_save();
        while state.faults().hold_save_answers {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    response
}

/// Browsers mark navigations with `Sec-Fetch-Mode: navigate`; clients without Fetch Metadata
/// are judged by whether they ask for HTML.
fn is_navigation(headers: &HeaderMap) -> bool {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    match text("sec-fetch-mode") {
        Some(mode) => mode == "navigate",
        None => text("accept").is_some_and(|accept| accept.contains("text/html")),
    }
}

/// A 302 redirect, as Keycloak and Sportlink send them (axum's `Redirect` offers 303/307/308).
pub(crate) fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        // Locations are built from percent-encoded parts; this is unreachable in practice.
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The session id from the `Cookie` header(s), if any.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

pub(crate) fn set_session_cookie(session_id: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Lax"
    ))
    .ok()
}

pub(crate) fn clear_session_cookie() -> HeaderValue {
    HeaderValue::from_static("SPORTLINK_SESSION=; Path=/; HttpOnly; Max-Age=0")
}

/// The decoded value of `name` in a raw query string.
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key) == name).then(|| percent_decode(value))
        })
        .next()
}

/// `application/x-www-form-urlencoded` decoding; malformed escapes are kept literally.
pub(crate) fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match input.get(i + 1..i + 3).and_then(hex_byte) {
                Some(byte) => {
                    out.push(byte);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_byte(hex: &str) -> Option<u8> {
    u8::from_str_radix(hex, 16).ok().filter(|_| {
        // from_str_radix accepts a leading '+', which is not a hex digit.
        hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Percent-encodes everything except unreserved characters and `/` (readable paths in URLs).
pub(crate) fn percent_encode(input: &str) -> String {
    input
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Escapes text for HTML element content and double-quoted attributes.
pub(crate) fn escape_html(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// A redirect target after login: only a local absolute path, so the login page cannot be used
/// to send a browser elsewhere. Anything else becomes the dashboard.
pub(crate) fn safe_local_path(candidate: Option<&str>) -> String {
    match candidate {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// The login URL that sends the browser back to `return_to` afterwards.
pub(crate) fn login_url(return_to: &str) -> String {
    format!(
        "/auth/realms/club/protocol/openid-connect/auth?redirect_uri={}",
        percent_encode(return_to)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries() {
        assert_eq!(
            query_param("PersonId=AB%20C&x=1", "PersonId").as_deref(),
            Some("AB C")
        );
        assert_eq!(query_param("a=1", "PersonId"), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%+1"), "% 1");
        assert_eq!(percent_decode("a+b%C3%AB"), "a bë");
    }

    #[test]
    fn encodes_paths_round_trip() {
        let path = "/member/member-details/AB 1?x=ë&y";
        assert_eq!(percent_decode(&percent_encode(path)), path);
    }

    #[test]
    fn reads_session_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; SPORTLINK_SESSION=abc"),
        );
        assert_eq!(session_cookie(&headers).as_deref(), Some("abc"));
    }

    #[test]
    fn redirects_only_to_local_paths() {
        assert_eq!(safe_local_path(Some("/member/x")), "/member/x");
        assert_eq!(safe_local_path(Some("//evil.example")), "/");
        assert_eq!(safe_local_path(Some("https://evil.example")), "/");
        assert_eq!(safe_local_path(None), "/");
    }
}

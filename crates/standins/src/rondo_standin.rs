//! A stand-in for Rondo Club's REST API, for tests and the demo: `/wp-json/wp/v2/users/me`,
//! `/wp-json/wp/v2/people` and `/wp-json/wp/v2/people/{id}` with WordPress's behaviour where the
//! poll depends on it (see `../shared/spec/rondo-club.md`):
//!
//! - HTTP Basic with an application password; a wrong one is *anonymous*, not an error:
//!   `users/me` answers 401 `rest_not_logged_in`, the people list still answers;
//! - `modified_after` compared strictly (`>`) to the second; without a zone it is read as the
//!   site's local time (`StandInConfig::site_utc_offset_secs`), as WordPress does;
//! - `orderby=id|modified|date`, `order`; ties in a date ordered differently per page, as
//!   MySQL does (so paging by date is unreliable); `per_page` ≤ 100, `page`, `X-WP-Total`,
//!   `X-WP-TotalPages`, and 400 `rest_post_invalid_page_number` past the end;
//! - `_fields` honoured for `id`, `modified_gmt`, `acf`.
//!
//! Faults ([`Faults`]) apply to the people routes, each consumed by one request, in the order
//! 429, 500, slow, malformed JSON (after `after_requests` normal answers).
//!
//! One file although long: the routes, the people they serve and the faults they take are one
//! small WordPress; each behaviour above is a few lines next to the state it reads.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Map, Value};

use crate::local_server::LocalServer;

const MODIFIED_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

#[derive(Clone)]
pub struct StandInConfig {
    pub username: String,
    pub application_password: String,
    /// The site's time zone as an offset from UTC (WordPress reads zone-less times as local).
    pub site_utc_offset_secs: i32,
    /// 0 = any free port.
    pub port: u16,
}

impl std::fmt::Debug for StandInConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandInConfig")
            .field("username", &self.username)
            .field("application_password", &"[redacted]")
            .field("site_utc_offset_secs", &self.site_utc_offset_secs)
            .field("port", &self.port)
            .finish()
    }
}

impl Default for StandInConfig {
    fn default() -> Self {
        Self {
            username: "rondo-reverse-sync".into(),
            application_password: "abcd EFGH 1234 ijkl MNOP 5678".into(),
            // Europe/Amsterdam in winter.
            site_utc_offset_secs: 3_600,
            port: 0,
        }
    }
}

/// Injected faults, each counter consumed by one request to a people route.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Answer this many people requests normally before the faults below begin.
    pub after_requests: u32,
    /// Answer 429 with `Retry-After: retry_after_secs` this many times.
    pub too_many_requests: u32,
    pub retry_after_secs: u64,
    /// Answer 500 this many times.
    pub server_errors: u32,
    /// Wait `slow_delay` before answering, this many times.
    pub slow_responses: u32,
    pub slow_delay: Duration,
    /// Answer 200 with a truncated JSON body this many times.
    pub malformed_json: u32,
}

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub path: String,
    pub query: HashMap<String, String>,
    pub authenticated: bool,
    /// The status it was answered with.
    pub status: u16,
}

#[derive(Debug, Clone)]
struct StoredPerson {
    modified_gmt: NaiveDateTime,
    acf: Value,
}

struct Inner {
    username: String,
    /// Alphanumerics only, as WordPress compares application passwords.
    password: String,
    site_offset: chrono::Duration,
    people: BTreeMap<i64, StoredPerson>,
    faults: Faults,
    requests: Vec<RecordedRequest>,
}

/// The stand-in's data, shared with the running server; tests and the demo seed and edit it.
#[derive(Clone)]
pub struct StandInState {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StandInError {
    #[error("a person must be a JSON object with an `acf` object")]
    NotAPerson,
    #[error("person `id` must be a positive integer")]
    BadId,
    #[error("`modified_gmt` {0:?} is not like 2026-11-26T11:30:20")]
    BadModified(String),
    #[error("no person {0}")]
    NoSuchPerson(i64),
}

fn strip_password(raw: &str) -> String {
    raw.chars().filter(char::is_ascii_alphanumeric).collect()
}

impl StandInState {
    fn new(config: &StandInConfig) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                username: config.username.clone(),
                password: strip_password(&config.application_password),
                site_offset: chrono::Duration::seconds(config.site_utc_offset_secs.into()),
                people: BTreeMap::new(),
                faults: Faults::default(),
                requests: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the data half-written (plain assignments).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds or replaces a person: `{"id": N?, "modified_gmt": "..."?, "acf": {...}}`. Without an
    /// id the next free one is used; without `modified_gmt`, now. Returns the id.
    pub fn upsert_person(&self, person: Value) -> Result<i64, StandInError> {
        let obj = person.as_object().ok_or(StandInError::NotAPerson)?;
        let acf = obj
            .get("acf")
            .filter(|a| a.is_object())
            .ok_or(StandInError::NotAPerson)?
            .clone();
        let modified_gmt = match obj.get("modified_gmt").and_then(Value::as_str) {
            Some(raw) => parse_naive(raw).ok_or_else(|| StandInError::BadModified(raw.into()))?,
            None => now_naive(),
        };
        let mut inner = self.lock();
        let id = match obj.get("id") {
            None | Some(Value::Null) => inner.people.keys().next_back().map_or(1, |last| last + 1),
            Some(v) => v.as_i64().filter(|id| *id > 0).ok_or(StandInError::BadId)?,
        };
        inner.people.insert(id, StoredPerson { modified_gmt, acf });
        Ok(id)
    }

    /// Sets one ACF field. `modified_gmt: Some(t)` is a normal save (WordPress moves
    /// `modified_gmt`); `None` is a meta-only write (`update_post_meta`), which does not.
    pub fn set_field(
        &self,
        id: i64,
        key: &str,
        value: Value,
        modified_gmt: Option<DateTime<Utc>>,
    ) -> Result<(), StandInError> {
        let mut inner = self.lock();
        let person = inner
            .people
            .get_mut(&id)
            .ok_or(StandInError::NoSuchPerson(id))?;
        if let Some(acf) = person.acf.as_object_mut() {
            acf.insert(key.to_owned(), value);
        }
        if let Some(t) = modified_gmt {
            person.modified_gmt = t.naive_utc();
        }
        Ok(())
    }

    /// The person as the REST API returns it (all fields).
    pub fn person(&self, id: i64) -> Option<Value> {
        let inner = self.lock();
        inner.people.get(&id).map(|p| render(id, p, None))
    }

    pub fn remove_person(&self, id: i64) -> bool {
        self.lock().people.remove(&id).is_some()
    }

    pub fn people_count(&self) -> usize {
        self.lock().people.len()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// What is left of the injected faults.
    pub fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    pub fn request_count(&self) -> usize {
        self.lock().requests.len()
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }
}

fn now_naive() -> NaiveDateTime {
    let now = Utc::now().naive_utc();
    now.format(MODIFIED_FORMAT)
        .to_string()
        .parse::<NaiveDateTime>()
        .unwrap_or(now)
}

fn parse_naive(raw: &str) -> Option<NaiveDateTime> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc).naive_utc());
    }
    NaiveDateTime::parse_from_str(raw, MODIFIED_FORMAT).ok()
}

fn render(id: i64, person: &StoredPerson, fields: Option<&[&str]>) -> Value {
    let wanted = |key: &str| fields.is_none_or(|f| f.contains(&key));
    let mut out = Map::new();
    if wanted("id") {
        out.insert("id".into(), json!(id));
    }
    if wanted("modified_gmt") {
        out.insert(
            "modified_gmt".into(),
            json!(person.modified_gmt.format(MODIFIED_FORMAT).to_string()),
        );
    }
    if wanted("acf") {
        out.insert("acf".into(), person.acf.clone());
    }
    Value::Object(out)
}

/// A running stand-in on 127.0.0.1.
pub struct RondoStandIn {
    server: LocalServer,
    state: StandInState,
}

impl RondoStandIn {
    pub async fn start(config: StandInConfig) -> std::io::Result<RondoStandIn> {
        let state = StandInState::new(&config);
        let server =
            LocalServer::start("Rondo Club stand-in", config.port, router(state.clone())).await?;
        Ok(RondoStandIn { server, state })
    }

    /// E.g. `http://127.0.0.1:43121` (no trailing slash).
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn state(&self) -> StandInState {
        self.state.clone()
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

fn router(state: StandInState) -> Router {
    Router::new()
        .route("/wp-json/wp/v2/users/me", get(users_me))
        .route("/wp-json/wp/v2/people", get(people_list))
        .route("/wp-json/wp/v2/people/{id}", get(person_one))
        .fallback(no_route)
        .with_state(state)
}

fn wp_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "message": message, "data": {"status": status.as_u16()}})),
    )
        .into_response()
}

async fn no_route() -> Response {
    wp_error(
        StatusCode::NOT_FOUND,
        "rest_no_route",
        "No route was found matching the URL and request method.",
    )
}

fn authenticated(inner: &Inner, headers: &HeaderMap) -> bool {
    let Some(raw) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = raw.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return false;
    };
    let Some((user, password)) = text.split_once(':') else {
        return false;
    };
    user == inner.username && strip_password(password) == inner.password
}

fn record(
    state: &StandInState,
    path: String,
    query: &HashMap<String, String>,
    authenticated: bool,
    status: u16,
) {
    state.lock().requests.push(RecordedRequest {
        path,
        query: query.clone(),
        authenticated,
        status,
    });
}

async fn users_me(
    State(state): State<StandInState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (authed, username) = {
        let inner = state.lock();
        (authenticated(&inner, &headers), inner.username.clone())
    };
    let path = "/wp-json/wp/v2/users/me".to_string();
    if !authed {
        record(&state, path, &query, false, 401);
        return wp_error(
            StatusCode::UNAUTHORIZED,
            "rest_not_logged_in",
            "You are not currently logged in.",
        );
    }
    record(&state, path, &query, true, 200);
    axum::Json(json!({
        "id": 1,
        "username": username,
        "name": username,
        "slug": username.to_lowercase(),
        "email": format!("{username}@example.org"),
    }))
    .into_response()
}

/// The fault to act on for this request, consumed.
enum Fault {
    TooMany(u64),
    ServerError,
    Slow(Duration),
    Malformed,
}

fn take_fault(state: &StandInState) -> Option<Fault> {
    let mut inner = state.lock();
    let f = &mut inner.faults;
    if f.after_requests > 0 {
        f.after_requests -= 1;
        return None;
    }
    if f.too_many_requests > 0 {
        f.too_many_requests -= 1;
        return Some(Fault::TooMany(f.retry_after_secs));
    }
    if f.server_errors > 0 {
        f.server_errors -= 1;
        return Some(Fault::ServerError);
    }
    if f.slow_responses > 0 {
        f.slow_responses -= 1;
        return Some(Fault::Slow(f.slow_delay));
    }
    if f.malformed_json > 0 {
        f.malformed_json -= 1;
        return Some(Fault::Malformed);
    }
    None
}

/// Acts on a fault; `Err` is the answer to send instead of the real one.
async fn apply_fault(fault: Option<Fault>) -> Result<bool, Response> {
    match fault {
        None => Ok(false),
        Some(Fault::TooMany(secs)) => {
            let mut r = wp_error(
                StatusCode::TOO_MANY_REQUESTS,
                "rest_too_many_requests",
                "Too many requests.",
            );
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Err(r)
        }
        Some(Fault::ServerError) => Err(wp_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            "There has been a critical error on this website.",
        )),
        Some(Fault::Slow(delay)) => {
            // The injected fault itself: a slow server, so the client's timeout fires.
            tokio::time::sleep(delay).await;
            Ok(false)
        }
        Some(Fault::Malformed) => Ok(true),
    }
}

fn fields_param(query: &HashMap<String, String>) -> Option<Vec<String>> {
    query
        .get("_fields")
        .map(|f| f.split(',').map(|s| s.trim().to_owned()).collect())
}

async fn people_list(
    State(state): State<StandInState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let path = "/wp-json/wp/v2/people".to_string();
    let authed = authenticated(&state.lock(), &headers);
    let malformed = match apply_fault(take_fault(&state)).await {
        Ok(m) => m,
        Err(response) => {
            record(&state, path, &query, authed, response.status().as_u16());
            return response;
        }
    };
    let answer = list_answer(&state, &query, malformed);
    record(&state, path, &query, authed, answer.status().as_u16());
    answer
}

fn list_answer(state: &StandInState, query: &HashMap<String, String>, malformed: bool) -> Response {
    let invalid = |param: &str| {
        wp_error(
            StatusCode::BAD_REQUEST,
            "rest_invalid_param",
            &format!("Invalid parameter(s): {param}"),
        )
    };
    let per_page = match query.get("per_page").map(|v| v.parse::<u64>()) {
        None => 10,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return invalid("per_page"),
    };
    let page = match query.get("page").map(|v| v.parse::<u64>()) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => return invalid("page"),
    };
    let inner = state.lock();
    let after = match query.get("modified_after") {
        None => None,
        Some(raw) => match DateTime::parse_from_rfc3339(raw) {
            Ok(t) => Some(t.with_timezone(&Utc).naive_utc()),
            Err(_) => match NaiveDateTime::parse_from_str(raw, MODIFIED_FORMAT) {
                // No zone: the site's local time, as WordPress reads it.
                Ok(local) => Some(local - inner.site_offset),
                Err(_) => return invalid("modified_after"),
            },
        },
    };
    // WordPress compares `post_modified_gmt > 'Y-m-d H:i:s'`: to the second, strictly.
    let after = after.map(|t| {
        t.format(MODIFIED_FORMAT)
            .to_string()
            .parse::<NaiveDateTime>()
            .unwrap_or(t)
    });
    let descending = query.get("order").is_some_and(|o| o == "desc");
    let orderby = query.get("orderby").map_or("date", String::as_str);
    let mut matching: Vec<(&i64, &StoredPerson)> = inner
        .people
        .iter()
        .filter(|(_, p)| after.is_none_or(|a| p.modified_gmt > a))
        .collect();
    match orderby {
        // Ties in the date are ordered differently per page, as MySQL does for
        // `ORDER BY post_modified LIMIT n OFFSET m`: paging by date skips and repeats people.
        "modified" | "date" => {
            matching.sort_by_key(|(id, p)| (p.modified_gmt, tie_order(**id, page)))
        }
        "id" => {}
        _ => return invalid("orderby"),
    }
    if descending {
        matching.reverse();
    }
    let total = matching.len() as u64;
    let total_pages = total.div_ceil(per_page);
    if page > total_pages && total > 0 {
        return wp_error(
            StatusCode::BAD_REQUEST,
            "rest_post_invalid_page_number",
            "The page number requested is larger than the number of pages available.",
        );
    }
    let fields = fields_param(query);
    let field_refs: Option<Vec<&str>> = fields
        .as_ref()
        .map(|f| f.iter().map(String::as_str).collect());
    let start = usize::try_from((page - 1).saturating_mul(per_page)).unwrap_or(usize::MAX);
    let items: Vec<Value> = matching
        .into_iter()
        .skip(start)
        .take(per_page as usize)
        .map(|(id, p)| render(*id, p, field_refs.as_deref()))
        .collect();
    drop(inner);
    let body = serde_json::to_string(&items).unwrap_or_else(|_| "[]".into());
    let body = if malformed { cut_short(body) } else { body };
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body,
    )
        .into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        headers.insert("x-wp-total", v);
    }
    if let Ok(v) = HeaderValue::from_str(&total_pages.to_string()) {
        headers.insert("x-wp-totalpages", v);
    }
    response
}

/// An arbitrary order among equal dates that changes from page to page.
fn tie_order(id: i64, page: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (id, page).hash(&mut h);
    h.finish()
}

/// A JSON body cut short, as a proxy that dropped the connection would leave it.
fn cut_short(mut body: String) -> String {
    let mut end = (body.len() / 2).max(1).min(body.len());
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body.truncate(end);
    body
}

async fn person_one(
    State(state): State<StandInState>,
    headers: HeaderMap,
    Path(raw_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let path = format!("/wp-json/wp/v2/people/{raw_id}");
    let authed = authenticated(&state.lock(), &headers);
    let Ok(id) = raw_id.parse::<i64>() else {
        record(&state, path, &query, authed, 404);
        return no_route().await;
    };
    let malformed = match apply_fault(take_fault(&state)).await {
        Ok(m) => m,
        Err(response) => {
            record(&state, path, &query, authed, response.status().as_u16());
            return response;
        }
    };
    let fields = fields_param(&query);
    let field_refs: Option<Vec<&str>> = fields
        .as_ref()
        .map(|f| f.iter().map(String::as_str).collect());
    let found = state
        .lock()
        .people
        .get(&id)
        .map(|p| render(id, p, field_refs.as_deref()));
    let Some(person) = found else {
        record(&state, path, &query, authed, 404);
        return wp_error(
            StatusCode::NOT_FOUND,
            "rest_post_invalid_id",
            "Invalid post ID.",
        );
    };
    record(&state, path, &query, authed, 200);
    let body = person.to_string();
    let body = if malformed { cut_short(body) } else { body };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body,
    )
        .into_response()
}

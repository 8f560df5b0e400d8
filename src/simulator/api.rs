//! The JSON endpoints the member pages fetch (GET) and save to (POST), with `?PersonId=`.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::auth::{check_session, json_unauthorized};
use super::http::{query_param, session_cookie, with_logged_fields};
use super::member::{MemberStatus, Section, SimMember};
use super::save::{apply_save, parse_body, Posted, SaveError, SaveTarget, SERVER_ERROR_TEXT};
use super::state::SimState;

/// One JSON endpoint of the web app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Header,
    Communication,
    Addresses,
    FreeFields,
}

impl Endpoint {
    pub(crate) const ALL: [Endpoint; 4] = [
        Endpoint::Header,
        Endpoint::Communication,
        Endpoint::Addresses,
        Endpoint::FreeFields,
    ];

    pub(crate) fn path(self) -> &'static str {
        match self {
            Endpoint::Header => "/member/MemberHeader",
            Endpoint::Communication => "/member/persondata/MemberCommunication",
            Endpoint::Addresses => "/member/persondata/MemberAddresses",
            Endpoint::FreeFields => "/remarks/MemberFreeFields",
        }
    }

    /// The section whose data this is; the header belongs to every page.
    fn section(self) -> Option<Section> {
        match self {
            Endpoint::Header => None,
            Endpoint::Communication => Some(Section::Communication),
            Endpoint::Addresses => Some(Section::Address),
            Endpoint::FreeFields => Some(Section::FreeFields),
        }
    }

    /// What a POST here saves: the header only carries the financial block flag.
    fn save_target(self) -> SaveTarget {
        match self {
            Endpoint::Header => SaveTarget::Financial,
            Endpoint::Communication => SaveTarget::Communication,
            Endpoint::Addresses => SaveTarget::Address,
            Endpoint::FreeFields => SaveTarget::FreeFields,
        }
    }

    fn render(self, member: &SimMember) -> Value {
        match self {
            Endpoint::Header => member.header_json(),
            Endpoint::Communication => member.communication_json(),
            Endpoint::Addresses => member.addresses_json(),
            Endpoint::FreeFields => member.free_fields_json(),
        }
    }
}

pub(crate) fn is_json_endpoint(path: &str) -> bool {
    Endpoint::ALL.iter().any(|e| e.path() == path)
}

/// GET: the member's data for this endpoint.
pub(crate) async fn read(
    endpoint: Endpoint,
    state: SimState,
    headers: HeaderMap,
    query: Option<String>,
) -> Response {
    if check_session(&state, &headers).is_err() {
        return json_unauthorized(&headers);
    }
    let member = match find_member(&state, query.as_deref()) {
        Ok(member) => member,
        Err((status, text)) => return message(status, text),
    };
    if endpoint.section().is_some_and(|s| !member.has_section(s)) {
        return message(StatusCode::NOT_FOUND, "Sectie niet beschikbaar");
    }
    Json(endpoint.render(&member)).into_response()
}

/// POST: saves one section. The posted keys and values go to the request log.
pub(crate) async fn save(
    endpoint: Endpoint,
    state: SimState,
    headers: HeaderMap,
    query: Option<String>,
    body: Bytes,
) -> Response {
    let target = endpoint.save_target();
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let posted = parsed
        .map_err(|_| SaveError::Validation("Ongeldige invoer: geen geldige JSON".to_owned()))
        .and_then(|value| parse_body(target, &value));
    let logged = match &posted {
        Ok(fields) => fields
            .iter()
            .map(|(key, value)| (key.clone(), value.as_log_value()))
            .collect(),
        Err(_) => Vec::new(),
    };
    let response = save_section(&state, &headers, query.as_deref(), endpoint, posted);
    with_logged_fields(response, logged)
}

fn save_section(
    state: &SimState,
    headers: &HeaderMap,
    query: Option<&str>,
    endpoint: Endpoint,
    posted: Result<Vec<(String, Posted)>, SaveError>,
) -> Response {
    if check_session(state, headers).is_err() {
        return json_unauthorized(headers);
    }
    if expire_session_for_save_fault(state, headers) {
        return json_unauthorized(headers);
    }
    let Some(person_id) = query.and_then(|q| query_param(q, "PersonId")) else {
        return message(StatusCode::BAD_REQUEST, "PersonId ontbreekt");
    };

    let mut data = state.lock();
    let data = &mut *data;
    let Some(member) = data.members.get_mut(&person_id) else {
        return message(StatusCode::NOT_FOUND, "Lid niet gevonden");
    };
    if member.status == MemberStatus::FormerMember {
        return message(
            StatusCode::FORBIDDEN,
            "Een oud bondslid kan niet worden gewijzigd",
        );
    }
    if !member.has_section(endpoint.save_target().section()) {
        return message(StatusCode::NOT_FOUND, "Sectie niet beschikbaar");
    }
    let result = posted.and_then(|fields| apply_save(member, fields, &mut data.faults));
    match result {
        Ok(()) => Json(endpoint.render(member)).into_response(),
        Err(SaveError::Validation(text)) => message(StatusCode::BAD_REQUEST, &text),
        Err(SaveError::Server) => message(StatusCode::INTERNAL_SERVER_ERROR, SERVER_ERROR_TEXT),
    }
}

/// The one-shot `expire_session_on_next_save` fault: true when it fired.
fn expire_session_for_save_fault(state: &SimState, headers: &HeaderMap) -> bool {
    let fired = {
        let mut data = state.lock();
        std::mem::take(&mut data.faults.expire_session_on_next_save)
    };
    if fired {
        if let Some(id) = session_cookie(headers) {
            state.end_session(&id);
        }
    }
    fired
}

fn find_member(
    state: &SimState,
    query: Option<&str>,
) -> Result<SimMember, (StatusCode, &'static str)> {
    let person_id = query
        .and_then(|q| query_param(q, "PersonId"))
        .ok_or((StatusCode::BAD_REQUEST, "PersonId ontbreekt"))?;
    state
        .member(&person_id)
        .ok_or((StatusCode::NOT_FOUND, "Lid niet gevonden"))
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

/// Routes for every endpoint, GET and POST on the same path.
pub(crate) fn routes() -> axum::Router<SimState> {
    use axum::routing::get;
    Endpoint::ALL
        .into_iter()
        .fold(axum::Router::new(), |router, endpoint| {
            let method_router = get(
                move |State(state): State<SimState>,
                      headers: HeaderMap,
                      RawQuery(query): RawQuery| {
                    read(endpoint, state, headers, query)
                },
            )
            .post(
                move |State(state): State<SimState>,
                      headers: HeaderMap,
                      RawQuery(query): RawQuery,
                      body: Bytes| save(endpoint, state, headers, query, body),
            );
            router.route(endpoint.path(), method_router)
        })
}

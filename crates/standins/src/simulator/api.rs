//! The JSON endpoints the member pages fetch (GET) and save to (POST or PUT).
//!
//! Only the endpoint names and JSON keys come from sportlink.md. The URL format (a path prefix,
//! the member id in a query parameter or a path segment), the wrapper around the values, scalar
//! types, the save method and its answer follow the [`Variant`] in use; a request in any other
//! format is refused the way a real server would (404 for an unknown path, 400 for a missing
//! parameter, 405 for another method). Routing is therefore done here, at request time, so a
//! test can switch the variant while the simulator runs.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::auth::{check_session, json_unauthorized};
use super::http::{percent_decode, query_param, session_cookie, with_log_details, LogDetails};
use super::member::{MemberStatus, Section, SimMember};
use super::save::{apply_save, parse_body, Posted, SaveError, SaveTarget, FINANCIAL_BLOCK};
use super::state::SimState;
use super::variant::{FlagEncoding, MemberIdIn, MissingSection, SaveAnswer, Variant};

/// The largest save body read.
const BODY_LIMIT: usize = 1 << 20;

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

    fn from_path(path: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.path() == path)
    }

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

/// A request URL matched against the variant's format.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Data {
        endpoint: Endpoint,
        member_id: String,
    },
    /// The right path, but without the variant's id parameter.
    MissingId {
        name: String,
    },
    NotData,
}

fn route(variant: &Variant, path: &str, query: Option<&str>) -> Route {
    let Some(rest) = path.strip_prefix(variant.path_prefix.as_str()) else {
        return Route::NotData;
    };
    match &variant.member_id_in {
        MemberIdIn::Query(name) => {
            let Some(endpoint) = Endpoint::from_path(rest) else {
                return Route::NotData;
            };
            match query.and_then(|q| query_param(q, name)) {
                Some(id) if !id.is_empty() => Route::Data {
                    endpoint,
                    member_id: id,
                },
                _ => Route::MissingId { name: name.clone() },
            }
        }
        MemberIdIn::Path => {
            let Some((head, id)) = rest.rsplit_once('/') else {
                return Route::NotData;
            };
            match Endpoint::from_path(head) {
                Some(endpoint) if !id.is_empty() => Route::Data {
                    endpoint,
                    member_id: percent_decode(id),
                },
                _ => Route::NotData,
            }
        }
    }
}

/// Everything no page route took: a data request in the variant's format, or a 404.
pub(crate) async fn dispatch(State(state): State<SimState>, request: Request) -> Response {
    let variant = state.variant();
    let (parts, body) = request.into_parts();
    let (endpoint, member_id) = match route(&variant, parts.uri.path(), parts.uri.query()) {
        Route::NotData => return super::pages::fallback().await,
        Route::MissingId { name } => {
            if check_session(&state, &parts.headers).is_err() {
                return json_unauthorized(&parts.headers);
            }
            let text = format!("{name} ontbreekt");
            return message(&variant, StatusCode::BAD_REQUEST, &text);
        }
        Route::Data {
            endpoint,
            member_id,
        } => (endpoint, member_id),
    };
    let details = LogDetails {
        fields: Vec::new(),
        endpoint: Some(endpoint.path()),
        member_id: Some(member_id.clone()),
    };
    if parts.method == Method::GET {
        let response = read(endpoint, &state, &variant, &parts.headers, &member_id);
        return with_log_details(response, details);
    }
    if parts.method.as_str() != variant.save_method.as_str() {
        // Not a request the app could make, so not logged as a data request (nor a save).
        let allow = format!("GET, {}", variant.save_method.as_str());
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, allow)]).into_response();
    }
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        let response = message(&variant, StatusCode::PAYLOAD_TOO_LARGE, "Te groot");
        return with_log_details(response, details);
    };
    save(endpoint, &state, &variant, &parts.headers, details, body)
}

/// GET: the member's data for this endpoint, shaped by the variant.
fn read(
    endpoint: Endpoint,
    state: &SimState,
    variant: &Variant,
    headers: &HeaderMap,
    member_id: &str,
) -> Response {
    if check_session(state, headers).is_err() {
        return json_unauthorized(headers);
    }
    let Some(member) = state.member(member_id) else {
        return message(variant, StatusCode::NOT_FOUND, "Lid niet gevonden");
    };
    if endpoint.section().is_some_and(|s| !member.has_section(s)) {
        return match variant.missing_section {
            MissingSection::NoContent => StatusCode::NO_CONTENT.into_response(),
            MissingSection::HeaderList | MissingSection::NotFound => {
                message(variant, StatusCode::NOT_FOUND, "Sectie niet beschikbaar")
            }
        };
    }
    Json(shape(variant, endpoint.render(&member))).into_response()
}

/// POST or PUT: saves one section. The posted keys and values go to the request log.
fn save(
    endpoint: Endpoint,
    state: &SimState,
    variant: &Variant,
    headers: &HeaderMap,
    mut details: LogDetails,
    body: Bytes,
) -> Response {
    let target = endpoint.save_target();
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let posted = parsed
        .map_err(|_| SaveError::Validation("Ongeldige invoer: geen geldige JSON".to_owned()))
        .and_then(|value| parse_body(target, unwrap_body(&value)));
    if let Ok(fields) = &posted {
        details.fields = fields
            .iter()
            .map(|(key, value)| (key.clone(), value.as_log_value()))
            .collect();
    }
    let member_id = details.member_id.clone().unwrap_or_default();
    let response = save_section(state, variant, headers, &member_id, endpoint, posted);
    with_log_details(response, details)
}

fn save_section(
    state: &SimState,
    variant: &Variant,
    headers: &HeaderMap,
    member_id: &str,
    endpoint: Endpoint,
    posted: Result<Vec<(String, Posted)>, SaveError>,
) -> Response {
    if check_session(state, headers).is_err() {
        return json_unauthorized(headers);
    }
    if expire_session_for_save_fault(state, headers) {
        return json_unauthorized(headers);
    }

    let mut data = state.lock();
    let data = &mut *data;
    let Some(member) = data.members.get_mut(member_id) else {
        return message(variant, StatusCode::NOT_FOUND, "Lid niet gevonden");
    };
    if member.status == MemberStatus::FormerMember {
        return message(
            variant,
            StatusCode::FORBIDDEN,
            "Een oud bondslid kan niet worden gewijzigd",
        );
    }
    if !member.has_section(endpoint.save_target().section()) {
        return message(variant, StatusCode::NOT_FOUND, "Sectie niet beschikbaar");
    }
    let result = posted.and_then(|fields| apply_save(member, fields, &mut data.faults));
    match result {
        Ok(()) => match variant.save_answer {
            SaveAnswer::Stored => Json(shape(variant, endpoint.render(member))).into_response(),
            SaveAnswer::Success => Json(json!({ "success": true })).into_response(),
            SaveAnswer::NoContent => StatusCode::NO_CONTENT.into_response(),
        },
        Err(SaveError::Validation(text)) => message(variant, StatusCode::BAD_REQUEST, &text),
        Err(SaveError::Server) => message(
            variant,
            StatusCode::INTERNAL_SERVER_ERROR,
            &variant.server_error_text,
        ),
    }
}

/// A save body wrapped like the answers (`{"data": {...}}`, `{"Result": {...}}`) is accepted too.
fn unwrap_body(value: &Value) -> &Value {
    match value.as_object() {
        Some(object) if object.len() == 1 => ["data", "Result"]
            .iter()
            .find_map(|key| object.get(*key).filter(|inner| inner.is_object()))
            .unwrap_or(value),
        _ => value,
    }
}

/// An answer in the variant's shape: `"Sections"` only where the variant lists them, the flag
/// and digit-only values in the variant's scalar types, inside the variant's wrapper.
fn shape(variant: &Variant, mut value: Value) -> Value {
    if let Some(object) = value.as_object_mut() {
        if variant.missing_section != MissingSection::HeaderList {
            object.remove("Sections");
        }
        if let Some(flag) = object.get(FINANCIAL_BLOCK).and_then(Value::as_bool) {
            let encoded = match variant.flag_encoding {
                FlagEncoding::Bool => json!(flag),
                FlagEncoding::Text => json!(flag.to_string()),
                FlagEncoding::Number => json!(u8::from(flag)),
            };
            object.insert(FINANCIAL_BLOCK.to_owned(), encoded);
        }
    }
    if variant.numbers_as_numbers {
        numbers_as_numbers(&mut value);
    }
    match variant.json_wrapper.key() {
        None => value,
        Some(key) => {
            let mut wrapper = Map::new();
            wrapper.insert(key.to_owned(), value);
            Value::Object(wrapper)
        }
    }
}

/// Digit-only strings without a leading zero (ids, house numbers) become JSON numbers; phone
/// numbers (leading 0 or +) and postcodes stay strings.
fn numbers_as_numbers(value: &mut Value) {
    match value {
        Value::String(text) => {
            let numeric = (1..=9).contains(&text.len())
                && !text.starts_with('0')
                && text.bytes().all(|b| b.is_ascii_digit());
            if let (true, Ok(n)) = (numeric, text.parse::<u64>()) {
                *value = json!(n);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(numbers_as_numbers),
        Value::Object(map) => map.values_mut().for_each(numbers_as_numbers),
        _ => {}
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

/// A refusal with its text under the variant's error key.
fn message(variant: &Variant, status: StatusCode, text: &str) -> Response {
    let mut body = Map::new();
    body.insert(variant.error_key.clone(), json!(text));
    (status, Json(Value::Object(body))).into_response()
}

#[cfg(test)]
mod tests {
    use super::super::variant::JsonWrapper;
    use super::*;

    #[test]
    fn routes_only_the_variants_format() {
        let plain = Variant::plain();
        let communication = "/member/persondata/MemberCommunication";
        assert_eq!(
            route(&plain, communication, Some("PersonId=A1")),
            Route::Data {
                endpoint: Endpoint::Communication,
                member_id: "A1".into()
            }
        );
        assert!(matches!(
            route(&plain, communication, Some("personId=A1")),
            Route::MissingId { .. }
        ));
        assert_eq!(
            route(&plain, &format!("{communication}/A1"), None),
            Route::NotData
        );
        let path = Variant {
            path_prefix: "/api".into(),
            member_id_in: MemberIdIn::Path,
            ..Variant::plain()
        };
        assert_eq!(
            route(&path, "/api/member/MemberHeader/A%201", None),
            Route::Data {
                endpoint: Endpoint::Header,
                member_id: "A 1".into()
            }
        );
        assert_eq!(
            route(&path, "/member/MemberHeader/A1", None),
            Route::NotData
        );
        assert_eq!(
            route(&path, "/api/member/MemberHeader", Some("PersonId=A1")),
            Route::NotData
        );
    }

    #[test]
    fn shapes_answers() {
        let variant = Variant {
            json_wrapper: JsonWrapper::Result,
            numbers_as_numbers: true,
            flag_encoding: FlagEncoding::Number,
            missing_section: MissingSection::NoContent,
            ..Variant::plain()
        };
        let shaped = shape(
            &variant,
            json!({"A": "1042", "B": "0612", "C": "", "HasFinancialTransferBlockOwnClub": true, "Sections": []}),
        );
        assert_eq!(
            shaped,
            json!({"Result": {"A": 1042, "B": "0612", "C": "", "HasFinancialTransferBlockOwnClub": 1}})
        );
        assert_eq!(unwrap_body(&json!({"data": {"x": 1}})), &json!({"x": 1}));
        assert_eq!(unwrap_body(&json!({"data": 1})), &json!({"data": 1}));
    }
}

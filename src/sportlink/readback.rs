//! Finding a field's stored value in what the Sportlink app fetched.
//!
//! sportlink.md knows example endpoint paths and keys, not the exact paths, query parameters or
//! JSON wrappers. So the catalogue's `verify` entry (an endpoint path and a JSON pointer) is read
//! as a *hint*, tolerantly:
//! - an answer matches the endpoint when its path ends with the catalogue path, or has the same
//!   last segment (case-insensitive), whatever the query string;
//! - the pointer may sit under any wrapper object (`{"data": {...}}`), keys compare
//!   case-insensitively, and a trailing `/Value` is optional in both directions
//!   (`{"Remarks8": "x"}` and `{"Remarks8": {"Value": "x"}}` both answer `/Remarks8/Value`);
//! - answers of other requests are used only when the endpoint was not fetched at all and they
//!   agree on one value.
//!
//! Only reads (GET) with a 2xx status count: a save's own answer may echo what was sent.

use serde_json::Value;

use super::network::Observed;

/// Where the value was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// In an answer to the catalogue's endpoint.
    Endpoint(String),
    /// Only in the answer of another request, at this path.
    Elsewhere(String),
}

/// The stored value of one field (`""` for JSON null), newest matching answer first.
pub fn find(observed: &[Observed], endpoint: &str, pointer: &str) -> Option<(String, Found)> {
    let reads: Vec<(&Observed, Value)> = observed
        .iter()
        .rev()
        .filter(|r| r.is_read() && (200..300).contains(&r.status))
        .filter_map(|r| r.json().map(|j| (r, j)))
        .collect();
    for (r, json) in &reads {
        if path_matches(r.path(), endpoint) {
            if let Some(v) = resolve_anywhere(json, pointer) {
                return Some((v, Found::Endpoint(r.path().to_owned())));
            }
        }
    }
    let mut agreed: Option<(String, String)> = None;
    for (r, json) in &reads {
        if path_matches(r.path(), endpoint) {
            continue;
        }
        if let Some(v) = resolve_anywhere(json, pointer) {
            match &agreed {
                None => agreed = Some((v, r.path().to_owned())),
                Some((seen, _)) if *seen == v => {}
                Some(_) => return None,
            }
        }
    }
    agreed.map(|(v, path)| (v, Found::Elsewhere(path)))
}

/// Whether the app fetched the endpoint and was answered "nothing" (no content, an empty or
/// null body, an empty object or list, or 404): the member has no such data.
pub fn endpoint_answered_empty(observed: &[Observed], endpoint: &str) -> bool {
    observed
        .iter()
        .filter(|r| r.is_read() && path_matches(r.path(), endpoint))
        .any(|r| {
            if r.status == 204 || r.status == 404 {
                return true;
            }
            if !(200..300).contains(&r.status) {
                return false;
            }
            match r.body.as_deref().map(str::trim) {
                Some("") => true,
                Some(_) => {
                    matches!(r.json(), Some(Value::Null))
                        || matches!(r.json(), Some(Value::Object(ref m)) if m.is_empty())
                        || matches!(r.json(), Some(Value::Array(ref a)) if a.is_empty())
                }
                None => false,
            }
        })
}

pub fn path_matches(path: &str, endpoint: &str) -> bool {
    let p = path.trim_end_matches('/').to_ascii_lowercase();
    let e = endpoint.trim_end_matches('/').to_ascii_lowercase();
    if e.is_empty() || p.is_empty() {
        return false;
    }
    if p.ends_with(&e) {
        return true;
    }
    let last = |s: &str| s.rsplit('/').next().unwrap_or_default().to_owned();
    !last(&e).is_empty() && last(&p) == last(&e)
}

fn segments(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// Resolve the pointer at the root or under any wrapper object or list; then its shorter tails
/// (`/FreeFields/Remarks8/Value` → `/Remarks8/Value`), longest first. A tail that is only a
/// `Value` key says nothing and is not tried.
fn resolve_anywhere(json: &Value, pointer: &str) -> Option<String> {
    let segs = segments(pointer);
    for start in 0..segs.len() {
        let tail = &segs[start..];
        if tail.len() == 1 && tail[0].eq_ignore_ascii_case("value") {
            break;
        }
        if let Some(found) = search(json, tail, 0) {
            return Some(found);
        }
        if tail.len() > 1 && tail[tail.len() - 1].eq_ignore_ascii_case("value") {
            if let Some(found) = search(json, &tail[..tail.len() - 1], 0) {
                return Some(found);
            }
        }
    }
    None
}

fn search(node: &Value, segs: &[String], depth: usize) -> Option<String> {
    if depth > 6 {
        return None;
    }
    if let Some(v) = resolve(node, segs) {
        return Some(v);
    }
    match node {
        Value::Object(map) => map.values().find_map(|v| search(v, segs, depth + 1)),
        Value::Array(items) if items.len() <= 50 => {
            items.iter().find_map(|v| search(v, segs, depth + 1))
        }
        _ => None,
    }
}

fn resolve(node: &Value, segs: &[String]) -> Option<String> {
    let mut cur = node;
    for seg in segs {
        cur = match cur {
            Value::Object(map) => map.get(seg.as_str()).or_else(|| {
                map.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(seg))
                    .map(|(_, v)| v)
            })?,
            Value::Array(items) => items.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    scalar(cur)
}

/// A JSON scalar as text (`null` is empty); an object holding only a value is that value.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => Some(String::new()),
        Value::Object(map) => {
            let inner = map
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("value"))
                .map(|(_, v)| v)?;
            match inner {
                Value::Object(_) | Value::Array(_) => None,
                other => scalar(other),
            }
        }
        Value::Array(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(seq: u64, url: &str, body: &str) -> Observed {
        Observed {
            seq,
            method: "GET".into(),
            url: url.into(),
            status: 200,
            body: Some(body.into()),
        }
    }

    #[test]
    fn the_endpoint_is_matched_whatever_the_query_and_wrapper() {
        let seen = vec![read(
            0,
            "http://h/member/persondata/MemberCommunication?personid=X1",
            r#"{"data":{"email1":"a@b.nl","Mobile1":612345678}}"#,
        )];
        let ep = "/member/persondata/MemberCommunication";
        assert_eq!(
            find(&seen, ep, "/Email1"),
            Some(("a@b.nl".into(), Found::Endpoint(seen[0].path().into())))
        );
        assert_eq!(find(&seen, ep, "/Mobile1").unwrap().0, "612345678");
        assert_eq!(find(&seen, ep, "/Email2"), None);
    }

    #[test]
    fn value_wrappers_are_optional_both_ways() {
        let ep = "/remarks/MemberFreeFields";
        let plain = vec![read(
            0,
            "/api/remarks/MemberFreeFields",
            r#"{"FreeFields":{"Remarks8":"2024-01-02"}}"#,
        )];
        assert_eq!(
            find(&plain, ep, "/FreeFields/Remarks8/Value").unwrap().0,
            "2024-01-02"
        );
        let wrapped = vec![read(
            0,
            "/remarks/MemberFreeFields",
            r#"{"Remarks8":{"Value":null}}"#,
        )];
        assert_eq!(
            find(&wrapped, ep, "/FreeFields/Remarks8/Value").unwrap().0,
            ""
        );
    }

    #[test]
    fn the_newest_answer_wins_and_writes_do_not_count() {
        let ep = "/member/MemberHeader";
        let mut post = read(
            2,
            "/member/MemberHeader",
            r#"{"HasFinancialTransferBlockOwnClub":false}"#,
        );
        post.method = "POST".into();
        let seen = vec![
            read(
                0,
                "/member/MemberHeader",
                r#"{"HasFinancialTransferBlockOwnClub":false}"#,
            ),
            read(
                1,
                "/member/MemberHeader?x",
                r#"{"HasFinancialTransferBlockOwnClub":"true"}"#,
            ),
            post,
        ];
        assert_eq!(
            find(&seen, ep, "/HasFinancialTransferBlockOwnClub")
                .unwrap()
                .0,
            "true"
        );
    }

    #[test]
    fn other_answers_count_only_when_they_agree() {
        let ep = "/member/persondata/MemberCommunication";
        let one = vec![read(0, "/member/Details", r#"{"Email1":"x@y.nl"}"#)];
        assert_eq!(
            find(&one, ep, "/Email1"),
            Some(("x@y.nl".into(), Found::Elsewhere("/member/Details".into())))
        );
        let two = vec![
            read(0, "/member/Details", r#"{"Email1":"x@y.nl"}"#),
            read(1, "/member/Other", r#"{"Email1":"z@y.nl"}"#),
        ];
        assert_eq!(find(&two, ep, "/Email1"), None);
    }

    #[test]
    fn empty_answers_mean_no_data() {
        let ep = "/remarks/MemberFreeFields";
        assert!(endpoint_answered_empty(
            &[read(0, "/remarks/MemberFreeFields?id=1", "")],
            ep
        ));
        assert!(endpoint_answered_empty(
            &[read(0, "/remarks/MemberFreeFields", "{}")],
            ep
        ));
        assert!(!endpoint_answered_empty(
            &[read(0, "/remarks/MemberFreeFields", r#"{"a":1}"#)],
            ep
        ));
        assert!(!endpoint_answered_empty(&[read(0, "/other", "")], ep));
    }
}

//! HTML pages: the dashboard and the member page shells. The shells carry no sections; the inline
//! script (`member_page.js`) fetches the JSON and renders them, as Sportlink's single-page app does.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use super::auth::{check_session, redirect_to_login};
use super::http::{escape_html, percent_encode};
use super::member::{MemberStatus, Section, SimMember};
use super::state::{DateDisplay, Faults, SimState};

const MEMBER_PAGE_JS: &str = include_str!("member_page.js");

const STYLE: &str = r#"
body { font-family: sans-serif; margin: 0; }
nav { background: #003a70; padding: 8px; }
nav a { color: #fff; margin-right: 12px; }
.page-header { padding: 12px; border-bottom: 1px solid #ccc; display: flex; gap: 12px; align-items: center; }
main { padding: 12px; }
section { border: 1px solid #ddd; margin: 12px 0; padding: 8px 12px; }
.validation-error { color: #b00020; }
[hidden] { display: none !important; }
label { display: block; margin: 4px 0; }
"#;

/// The member-page tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberTab {
    General,
    Other,
    Financial,
}

impl MemberTab {
    fn parse(segment: &str) -> Option<MemberTab> {
        match segment {
            "general" => Some(MemberTab::General),
            "other" => Some(MemberTab::Other),
            "financial" => Some(MemberTab::Financial),
            _ => None,
        }
    }

    fn sections(self) -> &'static [Section] {
        match self {
            MemberTab::General => &[
                Section::PersonalDetails,
                Section::Communication,
                Section::Address,
                Section::Parents,
                Section::Nationality,
            ],
            MemberTab::Other => &[
                Section::FreeFields,
                Section::FreeFieldsOnRegistration,
                Section::Notes,
            ],
            MemberTab::Financial => &[Section::Financial],
        }
    }

    /// The page header's own button (not one of ours to click).
    fn header_button(self) -> &'static str {
        match self {
            MemberTab::General => "Wijzig lidsoort",
            MemberTab::Other | MemberTab::Financial => "Wijzig",
        }
    }
}

/// `/`: the dashboard, with links to every member.
pub(crate) async fn dashboard(
    State(state): State<SimState>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Err(error) = check_session(&state, &headers) {
        return redirect_to_login(&path_and_query(&uri), error);
    }
    let items: String = state
        .members()
        .iter()
        .map(|m| {
            format!(
                r#"<li><a href="{}">{} ({})</a></li>"#,
                escape_html(&member_url(&m.knvb_id, "general")),
                escape_html(&m.full_name),
                escape_html(&m.knvb_id)
            )
        })
        .collect();
    let body = format!(
        r#"{nav}
<div id="panelHeader-dashboard" class="page-header"><h1>Dashboard</h1></div>
<main><section id="leden"><h2>Leden</h2><ul>{items}</ul></section></main>"#,
        nav = nav_bar(None),
    );
    Html(document("Sportlink Club", &body)).into_response()
}

/// `/member/member-details/{id}/{tab}`: the page shell the script fills in.
pub(crate) async fn member_page(
    State(state): State<SimState>,
    headers: HeaderMap,
    uri: Uri,
    Path((knvb_id, tab)): Path<(String, String)>,
) -> Response {
    if let Err(error) = check_session(&state, &headers) {
        return redirect_to_login(&path_and_query(&uri), error);
    }
    let Some(tab) = MemberTab::parse(&tab) else {
        return not_found("Pagina niet gevonden");
    };
    let Some(member) = state.member(&knvb_id) else {
        return not_found("Lid niet gevonden");
    };
    let faults = state.faults();
    Html(member_shell(&member, tab, &faults)).into_response()
}

/// Anything else: a plain 404 page.
pub(crate) async fn fallback() -> Response {
    not_found("Pagina niet gevonden")
}

fn member_shell(member: &SimMember, tab: MemberTab, faults: &Faults) -> String {
    let extra_button = if faults.extra_header_button {
        r#"<button type="button" class="header-action">Wijzig</button>"#
    } else {
        ""
    };
    let body = format!(
        r#"{nav}
<div id="panelHeader-member" class="page-header">
  <h1 id="member-name"></h1>
  <span id="member-status" class="member-status"></span>
  {extra_button}
  <button type="button" class="header-action">{header_button}</button>
</div>
<div id="header-dialog" role="dialog" hidden>
  <p>Deze wijziging is in de simulator niet beschikbaar.</p>
  <button type="button" id="header-dialog-close">Sluiten</button>
</div>
<main id="member-sections" aria-busy="true"></main>
<script type="application/json" id="sim-config">{config}</script>
<script>{MEMBER_PAGE_JS}</script>"#,
        nav = nav_bar(Some(&member.knvb_id)),
        header_button = tab.header_button(),
        config = page_config(member, tab, faults),
    );
    let title = format!("{} - Sportlink Club", member.full_name);
    document(&title, &body)
}

/// What the page script needs, as JSON safe to embed in a `<script>` element.
fn page_config(member: &SimMember, tab: MemberTab, faults: &Faults) -> String {
    let date_display = match faults.date_display {
        DateDisplay::Dutch => "dutch",
        DateDisplay::DutchDot => "dutch-dot",
        DateDisplay::Numeric => "numeric",
    };
    let sections: Vec<&str> = tab.sections().iter().map(|s| s.title()).collect();
    let config = json!({
        "personId": member.knvb_id,
        "sections": sections,
        "renderDelayMs": faults.render_delay_ms,
        "oldInputNames": faults.old_input_names,
        "dateDisplay": date_display,
        "formerMemberStatus": MemberStatus::FormerMember.label(),
    });
    // "</script>" inside a string would end the element early; \u003c is the same JSON string.
    config.to_string().replace('<', "\\u003c")
}

fn nav_bar(member: Option<&str>) -> String {
    let member_links = member
        .map(|id| {
            ["general", "other", "financial"]
                .iter()
                .zip(["Algemeen", "Overig", "Financieel"])
                .map(|(tab, label)| {
                    format!(
                        r#"<a href="{}">{label}</a>"#,
                        escape_html(&member_url(id, tab))
                    )
                })
                .collect::<String>()
        })
        .unwrap_or_default();
    format!(
        r#"<nav id="main-nav"><a href="/">Dashboard</a>{member_links}<a href="/logout">Uitloggen</a></nav>"#
    )
}

fn member_url(knvb_id: &str, tab: &str) -> String {
    // The id is one path segment; `percent_encode` keeps '/' for whole paths.
    let segment = percent_encode(knvb_id).replace('/', "%2F");
    format!("/member/member-details/{segment}/{tab}")
}

fn path_and_query(uri: &Uri) -> String {
    uri.path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned())
}

fn not_found(text: &str) -> Response {
    let body = format!(
        r#"{nav}<main><h1>404</h1><p class="page-error">{}</p></main>"#,
        escape_html(text),
        nav = nav_bar(None)
    );
    (
        StatusCode::NOT_FOUND,
        Html(document("Niet gevonden", &body)),
    )
        .into_response()
}

fn document(title: &str, body: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="nl">
<head><meta charset="utf-8"><link rel="icon" href="data:,"><title>{title}</title><style>{STYLE}</style></head>
<body>
{body}
</body>
</html>"#,
        title = escape_html(title)
    )
}

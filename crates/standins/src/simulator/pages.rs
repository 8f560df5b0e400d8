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
use super::variant::{
    AfterSave, ButtonElement, CheckboxStyle, EditButtonPlace, ErrorElement, FlagEncoding,
    HeadingElement, MemberIdIn, MissingSection, ReadOnlyLayout, SaveAnswer, SectionMarkup,
    SectionRendering, Variant,
};
use rand::Rng;

const MEMBER_PAGE_JS: &str = include_str!("member_page.js");

const STYLE: &str = r#"
body { font-family: sans-serif; margin: 0; }
nav { background: #003a70; padding: 8px; }
nav a { color: #fff; margin-right: 12px; }
.page-header { padding: 12px; border-bottom: 1px solid #ccc; display: flex; gap: 12px; align-items: center; }
main { padding: 12px; }
section, article, fieldset, .panel { border: 1px solid #ddd; margin: 12px 0; padding: 8px 12px; }
.panel-heading, article > header { display: flex; gap: 12px; align-items: center; }
.validation-error, .help-block, .form-message, form [role=alert] { color: #b00020; }
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
    let variant = state.variant();
    Html(member_shell(&member, tab, &faults, &variant)).into_response()
}

/// Anything else: a plain 404 page.
pub(crate) async fn fallback() -> Response {
    not_found("Pagina niet gevonden")
}

fn member_shell(member: &SimMember, tab: MemberTab, faults: &Faults, variant: &Variant) -> String {
    let ids = ShellIds::new(variant);
    let header_class = if variant.random_ids {
        format!("page-header {}", random_class())
    } else {
        "page-header".to_owned()
    };
    let extra_button = if faults.extra_header_button {
        header_button_html(variant, "Wijzig")
    } else {
        String::new()
    };
    let status_class = if variant.random_ids {
        random_class()
    } else {
        "member-status".to_owned()
    };
    let body = format!(
        r#"{nav}
<div id="{header_id}" class="{header_class}">
  <h1{name_id}></h1>
  <span{status_id} class="{status_class}"></span>
  {extra_button}
  {header_button}
</div>
<div id="{dialog_id}" role="dialog" hidden>
  <p>Deze wijziging is in de simulator niet beschikbaar.</p>
  <button type="button" id="{dialog_close_id}">Sluiten</button>
</div>
<main id="{main_id}" aria-busy="true"></main>
<script>{MEMBER_PAGE_JS}({config});</script>"#,
        nav = nav_bar(Some(&member.knvb_id)),
        header_id = ids.header,
        name_id = id_attribute(&ids.name),
        status_id = id_attribute(&ids.status),
        dialog_id = ids.dialog,
        dialog_close_id = ids.dialog_close,
        main_id = ids.main,
        header_button = header_button_html(variant, tab.header_button()),
        config = page_config(member, tab, faults, variant, &ids),
    );
    let title = format!("{} - Sportlink Club", member.full_name);
    document(&title, &body)
}

/// The ids of the shell's elements: fixed in the plain variant, new on every page load otherwise.
#[derive(Debug)]
struct ShellIds {
    header: String,
    name: String,
    status: String,
    dialog: String,
    dialog_close: String,
    main: String,
}

impl ShellIds {
    fn new(variant: &Variant) -> ShellIds {
        if !variant.random_ids {
            return ShellIds {
                header: "panelHeader-member".to_owned(),
                name: "member-name".to_owned(),
                status: "member-status".to_owned(),
                dialog: "header-dialog".to_owned(),
                dialog_close: "header-dialog-close".to_owned(),
                main: "member-sections".to_owned(),
            };
        }
        ShellIds {
            header: format!("panelHeader_{}", random_id()),
            name: random_id(),
            status: random_id(),
            dialog: random_id(),
            dialog_close: random_id(),
            main: random_id(),
        }
    }
}

fn id_attribute(id: &str) -> String {
    format!(r#" id="{}""#, escape_html(id))
}

/// A page-header button in the variant's element type (not one of ours to click).
fn header_button_html(variant: &Variant, text: &str) -> String {
    let text = padded(variant, text);
    let class = if variant.random_ids {
        format!("btn {}", random_class())
    } else {
        "header-action".to_owned()
    };
    match variant.button_element {
        ButtonElement::Button => {
            format!(
                r#"<button type="button" class="{class}">{}</button>"#,
                escape_html(&text)
            )
        }
        ButtonElement::Link => format!(
            r##"<a href="#" role="button" class="{class}">{}</a>"##,
            escape_html(&text)
        ),
        ButtonElement::Input => format!(
            r#"<input type="button" class="{class}" value="{}">"#,
            escape_html(&text)
        ),
    }
}

/// `text` with the variant's incidental whitespace (spaces, newlines, U+00A0), chosen anew
/// every time.
fn padded(variant: &Variant, text: &str) -> String {
    if !variant.padded_texts {
        return text.to_owned();
    }
    match rand::thread_rng().gen_range(0..4) {
        0 => format!("  {text} "),
        1 => text.replacen(' ', "\u{a0}", 1),
        2 => format!("\n      {text}\n    "),
        _ => format!("\u{a0}{text}"),
    }
}

/// A fresh id, unlike anything a previous page load used.
fn random_id() -> String {
    format!("x{}", random_suffix())
}

fn random_class() -> String {
    format!("c-{}", random_suffix())
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..7)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// What the page script needs, as a JSON literal safe to embed in a `<script>` element.
fn page_config(
    member: &SimMember,
    tab: MemberTab,
    faults: &Faults,
    variant: &Variant,
    ids: &ShellIds,
) -> String {
    let date_display = match faults.date_display {
        DateDisplay::Dutch => "dutch",
        DateDisplay::DutchDot => "dutch-dot",
        DateDisplay::Numeric => "numeric",
    };
    let from_header = variant.missing_section == MissingSection::HeaderList;
    // Sections in the variant's order. When the header does not list them, the page is told
    // here which of the sections without their own endpoint the member has (as the real app
    // knows from club settings); sections with an endpoint are dropped when it has no data.
    let sections: Vec<&str> = variant
        .section_order
        .iter()
        .filter(|s| tab.sections().contains(s))
        .filter(|s| from_header || has_own_endpoint(**s) || member.has_section(**s))
        .map(|s| s.title())
        .collect();
    let delays: serde_json::Map<String, serde_json::Value> = variant
        .section_delays_ms
        .iter()
        .map(|(s, ms)| (s.title().to_owned(), json!(ms)))
        .collect();
    let (id_param, id_in_path) = match &variant.member_id_in {
        MemberIdIn::Query(name) => (name.as_str(), false),
        MemberIdIn::Path => ("", true),
    };
    let config = json!({
        "personId": member.knvb_id,
        "sections": sections,
        "sectionsFromHeader": from_header,
        "renderDelayMs": faults.render_delay_ms,
        "renamedSections": faults
            .renamed_sections
            .iter()
            .cloned()
            .collect::<std::collections::BTreeMap<String, String>>(),
        "oldInputNames": faults.old_input_names,
        "dateDisplay": date_display,
        "formerMemberStatus": MemberStatus::FormerMember.label(),
        "ids": {
            "header": ids.header,
            "name": ids.name,
            "status": ids.status,
            "dialog": ids.dialog,
            "dialogClose": ids.dialog_close,
            "main": ids.main,
        },
        "v": {
            "prefix": variant.path_prefix,
            "idParam": id_param,
            "idInPath": id_in_path,
            "wrapper": variant.json_wrapper.key(),
            "flag": match variant.flag_encoding {
                FlagEncoding::Bool => "bool",
                FlagEncoding::Text => "text",
                FlagEncoding::Number => "number",
            },
            "errorKey": variant.error_key,
            "header": [variant.client_header, variant.client_header_value],
            "saveMethod": variant.save_method.as_str(),
            "saveAnswer": match variant.save_answer {
                SaveAnswer::Stored => "stored",
                SaveAnswer::Success => "success",
                SaveAnswer::NoContent => "empty",
            },
            "refetch": variant.refetch_after_save,
            "markup": match variant.section_markup {
                SectionMarkup::Section => "section",
                SectionMarkup::Panel => "panel",
                SectionMarkup::Article => "article",
                SectionMarkup::Fieldset => "fieldset",
            },
            "heading": match variant.heading {
                HeadingElement::H2 => "h2",
                HeadingElement::H3 => "h3",
                HeadingElement::H4 => "h4",
                HeadingElement::RoleHeading => "role",
                HeadingElement::Legend => "legend",
            },
            "wrappers": variant.wrapper_depth,
            "padded": variant.padded_texts,
            "editPlace": match variant.edit_button_place {
                EditButtonPlace::Header => "header",
                EditButtonPlace::Bottom => "bottom",
            },
            "button": match variant.button_element {
                ButtonElement::Button => "button",
                ButtonElement::Link => "link",
                ButtonElement::Input => "input",
            },
            "saveText": variant.save_text,
            "cancelText": variant.cancel_text,
            "layout": match variant.read_only_layout {
                ReadOnlyLayout::DefinitionList => "dl",
                ReadOnlyLayout::Table => "table",
                ReadOnlyLayout::Rows => "rows",
            },
            "randomIds": variant.random_ids,
            "typedInputs": variant.typed_inputs,
            "statusBadge": variant.status_badge,
            "delays": delays,
            "oneByOne": variant.section_rendering == SectionRendering::OneByOne,
            "errorElement": match variant.error_element {
                ErrorElement::ValidationError => "validation-error",
                ErrorElement::HelpBlock => "help-block",
                ErrorElement::RoleAlert => "alert",
                ErrorElement::FormMessage => "form-message",
            },
            "serverErrorText": variant.server_error_text,
            "afterSave": match variant.after_save {
                AfterSave::RemoveInputs => "remove",
                AfterSave::DisableInputs => "disable",
            },
            "checkbox": match variant.checkbox {
                CheckboxStyle::Plain => "plain",
                CheckboxStyle::Transparent => "transparent",
                CheckboxStyle::CoveredByLabel => "covered",
            },
            "toastMs": variant.toast_ms,
        },
    });
    // "</script>" inside a string would end the element early; \u003c is the same JSON string.
    config.to_string().replace('<', "\\u003c")
}

/// Sections whose data has an endpoint of its own (the others come from the header or nowhere).
fn has_own_endpoint(section: Section) -> bool {
    matches!(
        section,
        Section::Communication | Section::Address | Section::FreeFields
    )
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

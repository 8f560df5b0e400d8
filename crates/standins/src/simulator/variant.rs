//! Incidental details of the simulated site, drawn per run from a seed.
//!
//! `../shared/spec/sportlink.md` promises a few things about Sportlink's UI (login ids, member
//! page URLs, heading and button texts, input names, JSON keys). Everything else (how the app
//! builds its data requests, JSON wrappers, element types, ids, classes, order, timing) is
//! unknown, so the simulator must not let automation come to depend on one shape of it. A
//! [`Variant`] holds every such choice; [`Variant::draw`] picks each one from a seeded RNG, so a
//! failing run can be repeated with `SPORTLINK_SIM_SEED`. [`Variant::plain`] is the one fixed
//! shape the simulator served before variants existed, for tests that pin a shape.
//!
//! One file although long: it is one table of choices and the one function that draws them;
//! split, a new choice would have to be added in two places.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::member::Section;

/// The environment variable that pins the variant a test run draws.
pub const SEED_ENV: &str = "SPORTLINK_SIM_SEED";

/// Where the app's data requests carry the member id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberIdIn {
    /// `{prefix}/member/persondata/MemberCommunication?{name}={id}`
    Query(String),
    /// `{prefix}/member/persondata/MemberCommunication/{id}`
    Path,
}

/// What the data answers are wrapped in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonWrapper {
    /// `{"Email1": ...}`
    Bare,
    /// `{"data": {"Email1": ...}}`
    Data,
    /// `{"Result": {"Email1": ...}}`
    Result,
}

impl JsonWrapper {
    /// The wrapping key, if any.
    pub fn key(self) -> Option<&'static str> {
        match self {
            JsonWrapper::Bare => None,
            JsonWrapper::Data => Some("data"),
            JsonWrapper::Result => Some("Result"),
        }
    }
}

/// How `HasFinancialTransferBlockOwnClub` is written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagEncoding {
    /// `true` / `false`
    Bool,
    /// `"true"` / `"false"`
    Text,
    /// `1` / `0`
    Number,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveMethod {
    Post,
    Put,
}

impl SaveMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            SaveMethod::Post => "POST",
            SaveMethod::Put => "PUT",
        }
    }
}

/// What a successful save answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveAnswer {
    /// 200 with the stored object (in the GET shape and wrapper).
    Stored,
    /// 200 `{"success": true}`.
    Success,
    /// 204, empty.
    NoContent,
}

/// The element a section is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionMarkup {
    /// `<section>` with the heading and a body div.
    Section,
    /// `<div class="panel ...">` with `panel-heading` and `panel-body` divs.
    Panel,
    /// `<article>` with a `<header>` and a body div.
    Article,
    /// `<fieldset>` whose `<legend>` is the heading.
    Fieldset,
}

/// The element holding a section's title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadingElement {
    H2,
    H3,
    H4,
    /// `<div role="heading" aria-level="3">`
    RoleHeading,
    /// `<legend>` (always, and only, with [`SectionMarkup::Fieldset`]).
    Legend,
}

/// Where a section's `Wijzig` button sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditButtonPlace {
    /// In the section's header, next to the heading (hidden while editing).
    Header,
    /// At the bottom of the section body, after the values.
    Bottom,
}

/// The element buttons are made of (section buttons and the page header's buttons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonElement {
    /// `<button type="button">Wijzig</button>`
    Button,
    /// `<a href="#" role="button">Wijzig</a>`
    Link,
    /// `<input type="button" value="Wijzig">`
    Input,
}

/// How read-only values are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOnlyLayout {
    /// `<dl><dt>label</dt><dd>value</dd></dl>` (plain: `dd[data-field=Key]`).
    DefinitionList,
    /// `<table><tr><th>label</th><td>value</td></tr></table>`
    Table,
    /// `<div><span>label</span><span>value</span></div>` per value.
    Rows,
}

/// The element showing a refused save's message, inside the section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorElement {
    /// `<div class="validation-error" role="alert">`
    ValidationError,
    /// `<span class="help-block text-danger">`
    HelpBlock,
    /// `<div role="alert">` with a random class
    RoleAlert,
    /// `<p class="form-message">`
    FormMessage,
}

/// What happens to the edit form after a successful save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterSave {
    /// The inputs are removed; only read-only values remain.
    RemoveInputs,
    /// Read-only values are shown and the inputs stay in the DOM, disabled and hidden, holding
    /// what was typed.
    DisableInputs,
}

/// How the financial checkbox is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckboxStyle {
    /// A visible native checkbox.
    Plain,
    /// The input is transparent (opacity 0) under a styled span inside its label.
    Transparent,
    /// The input is covered by its own `<label for>` (custom-styled checkbox).
    CoveredByLabel,
}

/// Whether sections appear together or each on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionRendering {
    /// All sections appear at once, after all their data (and the longest delay).
    Together,
    /// Each section appears when its own data and delay are done, at its place in the order,
    /// so some appear after others are already shown (with a quiet gap in between).
    OneByOne,
}

/// The element showing a refused login's message on the Keycloak page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginErrorElement {
    /// `<span id="input-error" class="kc-feedback-text">` in an `.alert-error` div.
    InputError,
    /// `<div class="alert alert-danger" role="alert">`, no id.
    Alert,
}

/// How a member's missing section shows in the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingSection {
    /// `MemberHeader` lists the present sections in `"Sections"`; a missing section's endpoint
    /// answers 404.
    HeaderList,
    /// `MemberHeader` has no `"Sections"`; a missing section's endpoint answers 204 (empty).
    NoContent,
    /// `MemberHeader` has no `"Sections"`; a missing section's endpoint answers 404.
    NotFound,
}

/// Every incidental choice of the simulated site. `Debug` prints all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// The seed this variant was drawn from (`None` for [`Variant::plain`] and hand-made ones).
    pub seed: Option<u64>,

    // Data requests.
    /// Prepended to every data path (`""`, `/api`, `/club/api/v2`, ...).
    pub path_prefix: String,
    pub member_id_in: MemberIdIn,
    pub json_wrapper: JsonWrapper,
    /// Digit-only values without a leading zero (a FreeScout id, a house number) are JSON
    /// numbers instead of strings.
    pub numbers_as_numbers: bool,
    pub flag_encoding: FlagEncoding,
    /// The key of the message in a refused request's JSON (`message`, `Message`, `error`, ...).
    pub error_key: String,
    pub save_method: SaveMethod,
    pub save_answer: SaveAnswer,
    /// After a successful save the page GETs the section's data again and renders that;
    /// otherwise it renders the save answer (when it is the stored object) or what was typed.
    pub refetch_after_save: bool,
    /// A header the page's own script puts on every data request (GET and save).
    pub client_header: String,
    pub client_header_value: String,
    pub missing_section: MissingSection,

    // Markup.
    pub section_markup: SectionMarkup,
    pub heading: HeadingElement,
    /// 0–2 extra `<div>`s with random classes around each section (and around inputs).
    pub wrapper_depth: u8,
    /// Headings and button texts get extra spaces, newlines and no-break spaces (U+00A0).
    pub padded_texts: bool,
    pub edit_button_place: EditButtonPlace,
    pub button_element: ButtonElement,
    /// `Sla op` or `Opslaan`.
    pub save_text: String,
    /// `Annuleer` or `Annuleren`.
    pub cancel_text: String,
    pub read_only_layout: ReadOnlyLayout,
    /// E-mail inputs are `type="email"` and phone inputs `type="tel"` instead of `text`.
    pub typed_inputs: bool,
    /// Elements get random ids (new on every render) instead of the plain shape's fixed ones,
    /// and no `data-` attributes.
    pub random_ids: bool,
    /// Wraps the member status in a badge element.
    pub status_badge: bool,

    // Timing and order.
    /// The order sections appear in within a page (a permutation of [`Section::ALL`]).
    pub section_order: Vec<Section>,
    /// Extra render delay per section, on top of the `render_delay_ms` fault.
    pub section_delays_ms: Vec<(Section, u64)>,
    pub section_rendering: SectionRendering,

    // Feedback.
    pub error_element: ErrorElement,
    /// What the page shows when a save fails with a server error (also the 500's message).
    pub server_error_text: String,
    pub after_save: AfterSave,
    pub checkbox: CheckboxStyle,
    /// A fixed-position toast ("Welkom terug" on load, "Gegevens opgeslagen" after a save) shown
    /// this long; 0 = no toasts.
    pub toast_ms: u64,

    // Login.
    /// After the login, back to the page that was asked for; otherwise always the dashboard.
    pub login_returns_to_requested_page: bool,
    pub login_error: LoginErrorElement,
}

const PREFIXES: [&str; 5] = ["", "/api", "/club/api/v2", "/rest", "/sportlink/club/api"];
const ID_PARAMS: [&str; 7] = [
    "PersonId",
    "personId",
    "personid",
    "memberId",
    "relationCode",
    "id",
    "PublicPersonId",
];
const CLIENT_HEADERS: [(&str, &str); 6] = [
    ("X-Requested-With", "XMLHttpRequest"),
    ("X-Sportlink-Client", "club-web"),
    ("X-App-Version", "4.12.0"),
    ("X-Club-Request", "1"),
    ("X-Client-Build", "2026.11.3"),
    ("X-Navajo-Service", "member"),
];
const ERROR_KEYS: [&str; 4] = ["message", "Message", "error", "errorMessage"];
const SERVER_ERRORS: [&str; 3] = [
    "Er is een fout opgetreden",
    "Er is iets misgegaan. Probeer het later opnieuw.",
    "Opslaan is mislukt door een fout op de server",
];
/// The largest per-section delay a variant may draw, per variant (ms).
const SECTION_DELAY_CAPS: [u64; 4] = [0, 250, 600, 1200];
const TOASTS_MS: [u64; 4] = [0, 1500, 3000, 6000];

impl Variant {
    /// The shape the simulator served before variants existed: `?PersonId=` on bare paths,
    /// bare JSON objects, POST answered with the stored object, `<section><h2>`, `<button>`,
    /// `.validation-error`, `dd[data-field]`, fixed ids, no delays, no toasts, back to the page
    /// asked for after the login. Its one addition is the `X-Requested-With` header on the
    /// app's data requests.
    pub fn plain() -> Variant {
        Variant {
            seed: None,
            path_prefix: String::new(),
            member_id_in: MemberIdIn::Query("PersonId".to_owned()),
            json_wrapper: JsonWrapper::Bare,
            numbers_as_numbers: false,
            flag_encoding: FlagEncoding::Bool,
            error_key: "message".to_owned(),
            save_method: SaveMethod::Post,
            save_answer: SaveAnswer::Stored,
            refetch_after_save: false,
            client_header: "X-Requested-With".to_owned(),
            client_header_value: "XMLHttpRequest".to_owned(),
            missing_section: MissingSection::HeaderList,
            section_markup: SectionMarkup::Section,
            heading: HeadingElement::H2,
            wrapper_depth: 0,
            padded_texts: false,
            edit_button_place: EditButtonPlace::Bottom,
            button_element: ButtonElement::Button,
            save_text: "Sla op".to_owned(),
            cancel_text: "Annuleer".to_owned(),
            read_only_layout: ReadOnlyLayout::DefinitionList,
            typed_inputs: false,
            random_ids: false,
            status_badge: false,
            section_order: Section::ALL.to_vec(),
            section_delays_ms: Vec::new(),
            section_rendering: SectionRendering::Together,
            error_element: ErrorElement::ValidationError,
            server_error_text: "Er is een fout opgetreden".to_owned(),
            after_save: AfterSave::RemoveInputs,
            checkbox: CheckboxStyle::Plain,
            toast_ms: 0,
            login_returns_to_requested_page: true,
            login_error: LoginErrorElement::InputError,
        }
    }

    /// A variant drawn from `seed`: the same seed always gives the same variant. Each dimension
    /// is drawn independently (a fieldset always has a legend as its heading).
    pub fn draw(seed: u64) -> Variant {
        let mut rng = StdRng::seed_from_u64(seed);
        let rng = &mut rng;
        let path_prefix = pick(rng, &PREFIXES).to_string();
        let member_id_in = if rng.gen_bool(0.3) {
            MemberIdIn::Path
        } else {
            MemberIdIn::Query(pick(rng, &ID_PARAMS).to_string())
        };
        let json_wrapper = *pick(
            rng,
            &[JsonWrapper::Bare, JsonWrapper::Data, JsonWrapper::Result],
        );
        let numbers_as_numbers = rng.gen_bool(0.5);
        let flag_encoding = *pick(
            rng,
            &[FlagEncoding::Bool, FlagEncoding::Text, FlagEncoding::Number],
        );
        let error_key = pick(rng, &ERROR_KEYS).to_string();
        let save_method = *pick(rng, &[SaveMethod::Post, SaveMethod::Put]);
        let save_answer = *pick(
            rng,
            &[
                SaveAnswer::Stored,
                SaveAnswer::Success,
                SaveAnswer::NoContent,
            ],
        );
        let refetch_after_save = rng.gen_bool(0.5);
        let (client_header, client_header_value) = *pick(rng, &CLIENT_HEADERS);
        let missing_section = *pick(
            rng,
            &[
                MissingSection::HeaderList,
                MissingSection::NoContent,
                MissingSection::NotFound,
            ],
        );
        let section_markup = *pick(
            rng,
            &[
                SectionMarkup::Section,
                SectionMarkup::Panel,
                SectionMarkup::Article,
                SectionMarkup::Fieldset,
            ],
        );
        let heading = if section_markup == SectionMarkup::Fieldset {
            HeadingElement::Legend
        } else {
            *pick(
                rng,
                &[
                    HeadingElement::H2,
                    HeadingElement::H3,
                    HeadingElement::H4,
                    HeadingElement::RoleHeading,
                ],
            )
        };
        let wrapper_depth = rng.gen_range(0..=2);
        let padded_texts = rng.gen_bool(0.5);
        let edit_button_place = *pick(rng, &[EditButtonPlace::Header, EditButtonPlace::Bottom]);
        let button_element = *pick(
            rng,
            &[
                ButtonElement::Button,
                ButtonElement::Link,
                ButtonElement::Input,
            ],
        );
        let save_text = pick(rng, &["Sla op", "Opslaan"]).to_string();
        let cancel_text = pick(rng, &["Annuleer", "Annuleren"]).to_string();
        let read_only_layout = *pick(
            rng,
            &[
                ReadOnlyLayout::DefinitionList,
                ReadOnlyLayout::Table,
                ReadOnlyLayout::Rows,
            ],
        );
        let typed_inputs = rng.gen_bool(0.5);
        let random_ids = rng.gen_bool(0.8);
        let status_badge = rng.gen_bool(0.5);
        let mut section_order = Section::ALL.to_vec();
        section_order.shuffle(rng);
        let cap = *pick(rng, &SECTION_DELAY_CAPS);
        let section_delays_ms = Section::ALL
            .iter()
            .map(|&s| (s, rng.gen_range(0..=cap)))
            .collect();
        let section_rendering = if rng.gen_bool(0.7) {
            SectionRendering::OneByOne
        } else {
            SectionRendering::Together
        };
        let error_element = *pick(
            rng,
            &[
                ErrorElement::ValidationError,
                ErrorElement::HelpBlock,
                ErrorElement::RoleAlert,
                ErrorElement::FormMessage,
            ],
        );
        let server_error_text = pick(rng, &SERVER_ERRORS).to_string();
        let after_save = *pick(rng, &[AfterSave::RemoveInputs, AfterSave::DisableInputs]);
        let checkbox = *pick(
            rng,
            &[
                CheckboxStyle::Plain,
                CheckboxStyle::Transparent,
                CheckboxStyle::CoveredByLabel,
            ],
        );
        let toast_ms = *pick(rng, &TOASTS_MS);
        let login_returns_to_requested_page = rng.gen_bool(0.5);
        let login_error = *pick(
            rng,
            &[LoginErrorElement::InputError, LoginErrorElement::Alert],
        );
        Variant {
            seed: Some(seed),
            path_prefix,
            member_id_in,
            json_wrapper,
            numbers_as_numbers,
            flag_encoding,
            error_key,
            save_method,
            save_answer,
            refetch_after_save,
            client_header: client_header.to_owned(),
            client_header_value: client_header_value.to_owned(),
            missing_section,
            section_markup,
            heading,
            wrapper_depth,
            padded_texts,
            edit_button_place,
            button_element,
            save_text,
            cancel_text,
            read_only_layout,
            typed_inputs,
            random_ids,
            status_badge,
            section_order,
            section_delays_ms,
            section_rendering,
            error_element,
            server_error_text,
            after_save,
            checkbox,
            toast_ms,
            login_returns_to_requested_page,
            login_error,
        }
    }

    /// The seed from `SPORTLINK_SIM_SEED` (decimal u64) when set, else a random one, and the
    /// variant drawn from it. Print [`Variant::repeat_hint`] so a failure can be repeated.
    ///
    /// # Panics
    /// When `SPORTLINK_SIM_SEED` is set but is not a decimal u64: a pin that is silently ignored
    /// would repeat nothing.
    pub fn from_env_or_random() -> (u64, Variant) {
        let seed = match seed_from_env() {
            Ok(Some(seed)) => seed,
            Ok(None) => rand::random(),
            Err(text) => panic!("{SEED_ENV} must be a decimal u64, got {text:?}"),
        };
        (seed, Variant::draw(seed))
    }

    /// "sportlink simulator variant seed N (set SPORTLINK_SIM_SEED=N to repeat)", or that the
    /// plain variant is in use.
    pub fn repeat_hint(&self) -> String {
        match self.seed {
            Some(seed) => {
                format!("sportlink simulator variant seed {seed} (set {SEED_ENV}={seed} to repeat)")
            }
            None => "sportlink simulator plain variant (no seed)".to_owned(),
        }
    }

    /// The URL path (and query) the page's own script uses to fetch or save `endpoint` (a path
    /// from sportlink.md such as `/member/persondata/MemberCommunication`) for `knvb_id`.
    pub fn data_url(&self, endpoint: &str, knvb_id: &str) -> String {
        let id = super::http::percent_encode(knvb_id).replace('/', "%2F");
        match &self.member_id_in {
            MemberIdIn::Query(name) => format!("{}{endpoint}?{name}={id}", self.path_prefix),
            MemberIdIn::Path => format!("{}{endpoint}/{id}", self.path_prefix),
        }
    }

    /// The per-section render delay this variant adds.
    pub fn section_delay_ms(&self, section: Section) -> u64 {
        self.section_delays_ms
            .iter()
            .find(|(s, _)| *s == section)
            .map_or(0, |(_, ms)| *ms)
    }
}

impl Default for Variant {
    fn default() -> Self {
        Variant::plain()
    }
}

/// `Ok(None)` when the variable is unset or empty, `Err(text)` when it is not a decimal u64.
fn seed_from_env() -> Result<Option<u64>, String> {
    match std::env::var(SEED_ENV) {
        Ok(text) if text.trim().is_empty() => Ok(None),
        Ok(text) => text.trim().parse().map(Some).map_err(|_| text),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(text)) => Err(text.to_string_lossy().into_owned()),
    }
}

fn pick<'a, T>(rng: &mut StdRng, choices: &'a [T]) -> &'a T {
    // Every list here is a non-empty constant.
    choices.choose(rng).unwrap_or(&choices[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_variant() {
        assert_eq!(Variant::draw(42), Variant::draw(42));
        let distinct: std::collections::HashSet<String> = (0..16)
            .map(|seed| {
                format!(
                    "{:?}",
                    Variant {
                        seed: None,
                        ..Variant::draw(seed)
                    }
                )
            })
            .collect();
        assert!(distinct.len() > 10, "seeds should vary the shape");
    }

    #[test]
    fn every_dimension_varies_over_seeds() {
        let drawn: Vec<Variant> = (0..200).map(Variant::draw).collect();
        let varies = |f: &dyn Fn(&Variant) -> String| {
            let values: std::collections::HashSet<String> = drawn.iter().map(f).collect();
            values.len() > 1
        };
        assert!(varies(&|v| v.path_prefix.clone()));
        assert!(varies(&|v| format!("{:?}", v.member_id_in)));
        assert!(drawn.iter().any(|v| v.member_id_in == MemberIdIn::Path));
        assert!(varies(&|v| format!("{:?}", v.json_wrapper)));
        assert!(varies(&|v| format!("{:?}", v.flag_encoding)));
        assert!(varies(&|v| format!("{:?}", v.save_method)));
        assert!(varies(&|v| format!("{:?}", v.save_answer)));
        assert!(varies(&|v| v.client_header.clone()));
        assert!(varies(&|v| format!("{:?}", v.section_markup)));
        assert!(varies(&|v| format!("{:?}", v.heading)));
        assert!(varies(&|v| format!("{:?}", v.button_element)));
        assert!(varies(&|v| v.save_text.clone()));
        assert!(varies(&|v| format!("{:?}", v.section_order)));
        assert!(varies(&|v| format!("{:?}", v.error_element)));
        assert!(varies(&|v| format!("{:?}", v.after_save)));
        assert!(varies(&|v| format!("{:?}", v.checkbox)));
        assert!(varies(&|v| v.toast_ms.to_string()));
        assert!(varies(&|v| v.login_returns_to_requested_page.to_string()));
        assert!(varies(&|v| format!("{:?}", v.missing_section)));
        assert!(varies(&|v| format!("{:?}", v.section_rendering)));
        assert!(varies(&|v| format!("{:?}", v.login_error)));
        assert!(varies(&|v| v.typed_inputs.to_string()));
        for v in &drawn {
            assert_eq!(
                v.heading == HeadingElement::Legend,
                v.section_markup == SectionMarkup::Fieldset
            );
            let mut order = v.section_order.clone();
            order.sort();
            assert_eq!(order, Section::ALL.to_vec());
        }
    }

    #[test]
    fn data_urls_follow_the_variant() {
        let plain = Variant::plain();
        assert_eq!(
            plain.data_url("/member/MemberHeader", "AB 1"),
            "/member/MemberHeader?PersonId=AB%201"
        );
        let path = Variant {
            path_prefix: "/api".into(),
            member_id_in: MemberIdIn::Path,
            ..Variant::plain()
        };
        assert_eq!(
            path.data_url("/member/MemberHeader", "A/B"),
            "/api/member/MemberHeader/A%2FB"
        );
    }

    #[test]
    fn the_hint_names_the_seed() {
        assert_eq!(
            Variant::draw(7).repeat_hint(),
            "sportlink simulator variant seed 7 (set SPORTLINK_SIM_SEED=7 to repeat)"
        );
    }
}

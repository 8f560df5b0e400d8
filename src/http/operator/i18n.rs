//! The operator page's texts: one message catalogue per language in Project Fluent's format
//! (`locales/nl.ftl`, `locales/en.ftl`, compiled in), read with `fluent-bundle`; the language
//! from the switch (`?lang=`, remembered in a cookie), else `Accept-Language`, else Dutch; dates
//! in the club's time zone (`admin.time_zone`) with the catalogue's month names.

use std::sync::OnceLock;

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// The cookie that remembers the language switch.
pub const LANG_COOKIE: &str = "rrs_lang";

const NL: &str = include_str!("locales/nl.ftl");
const EN: &str = include_str!("locales/en.ftl");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Nl,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Nl, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::En => "en",
        }
    }

    pub fn parse(raw: &str) -> Option<Lang> {
        let primary = raw.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "nl" => Some(Lang::Nl),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The switch (`?lang=`), else the remembered choice, else the browser's preference
    /// (`Accept-Language`, by quality), else Dutch.
    pub fn negotiate(query: Option<&str>, cookie: Option<&str>, accept: Option<&str>) -> Lang {
        if let Some(lang) = query
            .and_then(Lang::parse)
            .or_else(|| cookie.and_then(Lang::parse))
        {
            return lang;
        }
        let mut best: Option<(f32, Lang)> = None;
        for part in accept.unwrap_or("").split(',') {
            let mut pieces = part.split(';');
            let Some(lang) = pieces.next().and_then(Lang::parse) else {
                continue;
            };
            let quality = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, lang));
            }
        }
        best.map_or(Lang::Nl, |(_, lang)| lang)
    }
}

struct Catalogues {
    nl: FluentBundle<FluentResource>,
    en: FluentBundle<FluentResource>,
}

fn bundle(code: &str, source: &'static str) -> FluentBundle<FluentResource> {
    let id: LanguageIdentifier = code.parse().unwrap_or_default();
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // No Unicode isolation marks around values: the page is left-to-right only.
    bundle.set_use_isolating(false);
    let resource =
        FluentResource::try_new(source.to_string()).unwrap_or_else(|(partial, errors)| {
            tracing::error!(
                language = code,
                ?errors,
                "operator page catalogue has syntax errors"
            );
            partial
        });
    if let Err(errors) = bundle.add_resource(resource) {
        tracing::error!(
            language = code,
            ?errors,
            "operator page catalogue has errors"
        );
    }
    bundle
}

fn catalogues() -> &'static Catalogues {
    static CATALOGUES: OnceLock<Catalogues> = OnceLock::new();
    CATALOGUES.get_or_init(|| Catalogues {
        nl: bundle("nl", NL),
        en: bundle("en", EN),
    })
}

/// The message ids of a language's catalogue (for the tests that compare them): the lines
/// that start a message (`id = …`).
#[cfg(test)]
pub fn message_ids(lang: Lang) -> Vec<String> {
    let source = match lang {
        Lang::Nl => NL,
        Lang::En => EN,
    };
    source
        .lines()
        .filter_map(|line| {
            let (id, _) = line.split_once(" =")?;
            (!id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .then(|| id.to_string())
        })
        .collect()
}

#[cfg(test)]
thread_local! {
    /// Set by the HTML check: every catalogue text is wrapped in ⟦ ⟧, so text that is not
    /// wrapped did not come from the catalogue.
    pub static MARK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// One message, formatted. A missing message shows its id (and is logged), never nothing.
pub fn message(lang: Lang, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
    let bundle = match lang {
        Lang::Nl => &catalogues().nl,
        Lang::En => &catalogues().en,
    };
    let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
        tracing::warn!(id, language = lang.code(), "operator page: message missing");
        return id.to_string();
    };
    let mut fluent_args = FluentArgs::new();
    for (name, value) in args {
        fluent_args.set(*name, value.clone());
    }
    let mut errors = Vec::new();
    let text = bundle
        .format_pattern(pattern, Some(&fluent_args), &mut errors)
        .into_owned();
    if !errors.is_empty() {
        tracing::warn!(
            id,
            language = lang.code(),
            ?errors,
            "operator page: message errors"
        );
    }
    #[cfg(test)]
    if MARK.with(std::cell::Cell::get) {
        return format!("⟦{text}⟧");
    }
    text
}

/// What a view needs to speak the reader's language and the club's time.
#[derive(Debug, Clone, Copy)]
pub struct L10n {
    pub lang: Lang,
    pub tz: Tz,
}

impl L10n {
    pub fn t(&self, id: &str) -> String {
        message(self.lang, id, &[])
    }

    pub fn ta(&self, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        message(self.lang, id, args)
    }

    /// A moment in the club's time zone: "30 nov 2026 15:17".
    pub fn when(&self, t: DateTime<Utc>) -> String {
        let local = t.with_timezone(&self.tz);
        let month = message(self.lang, &format!("month-{}", local.month()), &[]);
        self.ta(
            "date-time",
            &[
                ("day", local.day().into()),
                ("month", month.into()),
                ("year", local.year().to_string().into()),
                ("time", local.format("%H:%M").to_string().into()),
            ],
        )
    }

    /// Only the time of day, for a moment today-ish: "15:17".
    pub fn time(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz).format("%H:%M").to_string()
    }

    pub fn when_opt(&self, t: Option<DateTime<Utc>>, none: &str) -> String {
        t.map_or_else(|| self.t(none), |t| self.when(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogues_have_the_same_messages_and_parse() {
        for source in [NL, EN] {
            assert!(FluentResource::try_new(source.to_string()).is_ok());
        }
        let mut nl = message_ids(Lang::Nl);
        let mut en = message_ids(Lang::En);
        nl.sort();
        en.sort();
        assert!(nl.len() > 100, "{}", nl.len());
        assert_eq!(nl, en);
    }

    #[test]
    fn the_language_is_the_switch_then_the_cookie_then_the_browser_then_dutch() {
        assert_eq!(Lang::negotiate(None, None, None), Lang::Nl);
        assert_eq!(Lang::negotiate(None, None, Some("fr-FR, de")), Lang::Nl);
        assert_eq!(
            Lang::negotiate(None, None, Some("en-US,en;q=0.9")),
            Lang::En
        );
        assert_eq!(
            Lang::negotiate(None, None, Some("en;q=0.5, nl-NL;q=0.8")),
            Lang::Nl
        );
        assert_eq!(Lang::negotiate(None, Some("en"), Some("nl")), Lang::En);
        assert_eq!(
            Lang::negotiate(Some("nl"), Some("en"), Some("en")),
            Lang::Nl
        );
        assert_eq!(Lang::negotiate(Some("xx"), None, None), Lang::Nl);
    }

    #[test]
    fn dates_are_in_the_club_time_zone_in_dutch() {
        let l = L10n {
            lang: Lang::Nl,
            tz: chrono_tz::Europe::Amsterdam,
        };
        let t = DateTime::parse_from_rfc3339("2026-10-30T14:17:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(l.when(t), "30 okt 2026 15:17");
        let summer = DateTime::parse_from_rfc3339("2026-07-01T14:17:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(l.when(summer), "1 jul 2026 16:17");
        let en = L10n {
            lang: Lang::En,
            ..l
        };
        assert_eq!(en.when(t), "30 Oct 2026 15:17");
    }

    #[test]
    fn plurals_follow_the_language() {
        let nl = |n: u64| message(Lang::Nl, "story-attempts", &[("attempts", n.into())]);
        assert_eq!(nl(1), "1 poging");
        assert_eq!(nl(3), "3 pogingen");
        assert_eq!(
            message(Lang::En, "story-attempts", &[("attempts", 1u64.into())]),
            "1 attempt"
        );
    }
}

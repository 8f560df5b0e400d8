//! Value rules (product.md §3): how Rondo Club's and Sportlink's representations of the same value
//! are brought to one canonical string, so formatting noise never looks like a change.
//!
//! The canonical forms: text trimmed, NFC, inner whitespace collapsed; empty and `-` are `""`;
//! phones in E.164 where recognisable; dates as `YYYY-MM-DD`; booleans as `true`/`false`;
//! Dutch postcodes as `1234AB`; select codes upper-case.

use chrono::NaiveDate;
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

/// Trimmed, NFC-normalised text with runs of (Unicode) whitespace collapsed to one space.
/// `-` alone means empty, as it does in Rondo Club's forms.
pub fn text(raw: &str) -> String {
    let nfc: String = raw.nfc().collect();
    let collapsed = nfc.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed == "-" {
        String::new()
    } else {
        collapsed
    }
}

/// Renders a JSON scalar as text: numbers without a fractional `.0`, `null` as empty.
/// Arrays and objects have no meaning for a tracked field and become empty.
pub fn json_scalar(value: &Value) -> String {
    match value {
        Value::Null | Value::Array(_) | Value::Object(_) => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::String(s) => text(s),
    }
}

/// Canonical phone number: E.164 when it can be recognised (`+31612345678`), otherwise the digits
/// and a leading `+` as typed. Dutch local numbers (`06 1234 5678`) become `+316…`.
pub fn phone(raw: &str) -> String {
    let cleaned = text(raw);
    if cleaned.is_empty() {
        return cleaned;
    }
    let compact: String = cleaned
        .replace("(0)", "")
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '/' | '(' | ')'))
        .collect();
    let international = if let Some(rest) = compact.strip_prefix("00") {
        Some(rest.to_string())
    } else {
        compact.strip_prefix('+').map(str::to_string)
    };
    match international {
        Some(digits) if is_digits(&digits) => {
            // `+310612345678`: the trunk 0 does not belong in E.164.
            let digits = match digits.strip_prefix("310") {
                Some(rest) if rest.len() == 9 => format!("31{rest}"),
                _ => digits,
            };
            format!("+{digits}")
        }
        None if compact.len() == 10 && compact.starts_with('0') && is_digits(&compact) => {
            format!("+31{}", &compact[1..])
        }
        // Taking out separators can bring combining marks together out of canonical order
        // (`ড়-\u{20e5}`): composed again, so normalising twice gives the same value.
        _ => compact.nfc().collect(),
    }
}

/// The form to type into Sportlink: Dutch numbers local (`0612345678`), foreign ones E.164.
pub fn phone_for_sportlink(canonical: &str) -> String {
    match canonical.strip_prefix("+31") {
        Some(rest) if rest.len() == 9 && is_digits(rest) => format!("0{rest}"),
        _ => canonical.to_string(),
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

const DUTCH_MONTHS: [(&str, u32); 24] = [
    ("januari", 1),
    ("februari", 2),
    ("maart", 3),
    ("april", 4),
    ("mei", 5),
    ("juni", 6),
    ("juli", 7),
    ("augustus", 8),
    ("september", 9),
    ("oktober", 10),
    ("november", 11),
    ("december", 12),
    ("jan", 1),
    ("feb", 2),
    ("mrt", 3),
    ("apr", 4),
    ("jun", 6),
    ("jul", 7),
    ("aug", 8),
    ("sep", 9),
    ("sept", 9),
    ("okt", 10),
    ("nov", 11),
    ("dec", 12),
];

/// Parses the date formats either side uses: `2023-10-30`, `20231030` (ACF's storage format),
/// `2023-10-30T00:00:00`, `30-10-2023`, `30/10/2023`, `30 okt 2023`, `30 okt. 2023`,
/// `30 oktober 2023`.
pub fn parse_date(raw: &str) -> Option<NaiveDate> {
    let s = text(raw);
    if s.is_empty() {
        return None;
    }
    let date_part = s.split(['T', ' ']).next().unwrap_or_default();
    for format in ["%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(date_part, format) {
            return Some(d);
        }
    }
    if date_part.len() == 8 && is_digits(date_part) {
        if let Ok(d) = NaiveDate::parse_from_str(date_part, "%Y%m%d") {
            return Some(d);
        }
    }
    let parts: Vec<&str> = s.split(' ').collect();
    if let [day, month, year] = parts.as_slice() {
        let month_name = month.trim_end_matches('.').to_lowercase();
        let month = DUTCH_MONTHS
            .iter()
            .find(|(name, _)| *name == month_name)
            .map(|(_, m)| *m)?;
        return NaiveDate::from_ymd_opt(year.parse().ok()?, month, day.parse().ok()?);
    }
    None
}

/// Canonical date `YYYY-MM-DD`; text that is no recognisable date stays as (cleaned) text so that
/// it still compares and is never silently dropped.
pub fn date(raw: &str) -> String {
    match parse_date(raw) {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => text(raw),
    }
}

/// The form to type into Sportlink's date inputs.
pub fn date_for_sportlink(canonical: &str) -> String {
    match NaiveDate::parse_from_str(canonical, "%Y-%m-%d") {
        Ok(d) => d.format("%d-%m-%Y").to_string(),
        Err(_) => canonical.to_string(),
    }
}

/// `true/false/1/0/"1"/"0"/null` → `true`/`false`; `null` and empty mean false. Anything else is
/// kept as lower-case text: it will not match either value, and the executor reports it.
pub fn boolean(raw: &str) -> String {
    // Case mapping can undo NFC composition; normalise again after it.
    let t = text(&text(raw).to_lowercase());
    match t.as_str() {
        "true" | "1" | "yes" | "ja" | "on" | "checked" => "true".into(),
        "false" | "0" | "no" | "nee" | "off" | "" | "null" => "false".into(),
        _ => t,
    }
}

/// Dutch postcodes as `1234AB`; anything else upper-case without surrounding space.
pub fn postcode(raw: &str) -> String {
    let t = text(&text(raw).to_uppercase());
    let compact: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = compact.as_bytes();
    let dutch = compact.len() == 6
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4..].iter().all(u8::is_ascii_uppercase);
    if dutch {
        compact
    } else {
        t
    }
}

/// Select option values (ISO country codes) compare upper-case.
pub fn code(raw: &str) -> String {
    text(&text(raw).to_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_trims_collapses_and_treats_dash_as_empty() {
        assert_eq!(text("  Jan\u{a0} Jansen \t"), "Jan Jansen");
        assert_eq!(text(" - "), "");
        assert_eq!(text(""), "");
        assert_eq!(text("a-b"), "a-b");
    }

    #[test]
    fn text_composes_unicode() {
        // "é" as e + combining acute, and as one code point.
        assert_eq!(text("Andre\u{301}"), text("Andr\u{e9}"));
    }

    #[test]
    fn json_numbers_and_strings_agree() {
        assert_eq!(json_scalar(&serde_json::json!(42)), "42");
        assert_eq!(json_scalar(&serde_json::json!(42.0)), "42");
        assert_eq!(json_scalar(&serde_json::json!("42")), "42");
        assert_eq!(json_scalar(&serde_json::json!(null)), "");
        assert_eq!(json_scalar(&serde_json::json!([1])), "");
    }

    #[test]
    fn phones_compare_in_any_notation() {
        let canonical = "+31612345678";
        for raw in [
            "+31612345678",
            "+31 6 12345678",
            "06 1234 5678",
            "06-12345678",
            "0612345678",
            "0031612345678",
            "+31 (0)6 12345678",
            "+310612345678",
        ] {
            assert_eq!(phone(raw), canonical, "{raw}");
        }
        assert_eq!(phone("+32 470 12 34 56"), "+32470123456");
        assert_eq!(phone(""), "");
        assert_eq!(phone("-"), "");
        assert_ne!(phone("0612345678"), phone("0612345679"));
    }

    #[test]
    fn a_phone_that_is_not_a_number_normalises_the_same_twice() {
        // Found by the property test `typed_values_read_back_the_same`: without the '-', the
        // nukta (class 7) and the enclosing mark (class 1) stood out of canonical order.
        let once = phone("ড়-\u{20e5}");
        assert_eq!(phone(&once), once);
        assert_eq!(phone(&phone_for_sportlink(&once)), once);
    }

    #[test]
    fn phones_are_typed_locally_when_dutch() {
        assert_eq!(phone_for_sportlink("+31612345678"), "0612345678");
        assert_eq!(phone_for_sportlink("+32470123456"), "+32470123456");
        assert_eq!(phone_for_sportlink(""), "");
    }

    #[test]
    fn dates_in_every_display_form_agree() {
        for raw in [
            "2023-10-30",
            "20231030",
            "2023-10-30T00:00:00",
            "30-10-2023",
            "30/10/2023",
            "30 okt 2023",
            "30 okt. 2023",
            "30 oktober 2023",
            " 30 Okt 2023 ",
        ] {
            assert_eq!(date(raw), "2023-10-30", "{raw}");
        }
        assert_eq!(date("1 mrt 2024"), "2024-03-01");
        assert_eq!(
            date("31 feb 2024"),
            "31 feb 2024",
            "impossible dates stay text"
        );
        assert_eq!(date(""), "");
        assert_eq!(date_for_sportlink("2023-10-30"), "30-10-2023");
    }

    #[test]
    fn booleans() {
        for t in ["true", "1", " 1 ", "TRUE", "ja"] {
            assert_eq!(boolean(t), "true", "{t}");
        }
        for f in ["false", "0", "", "-", "null"] {
            assert_eq!(boolean(f), "false", "{f}");
        }
    }

    #[test]
    fn postcodes_and_codes() {
        assert_eq!(postcode("1234 ab"), "1234AB");
        assert_eq!(postcode("1234AB"), "1234AB");
        assert_eq!(postcode("B-1000"), "B-1000");
        assert_eq!(code(" nl "), "NL");
    }
}

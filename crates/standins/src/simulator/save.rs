//! A section save, without I/O: read the posted JSON, apply the save faults, validate like
//! Sportlink does, and write the member record.

use chrono::{Days, NaiveDate};
use serde_json::{Map, Value};

use super::member::{remark_number, Section, SimMember, DATE_REMARK};
use super::state::Faults;

pub(crate) const FINANCIAL_BLOCK: &str = "HasFinancialTransferBlockOwnClub";

const COMMUNICATION_KEYS: [&str; 6] = [
    "Email1",
    "Email2",
    "Mobile1",
    "Mobile2",
    "Telephone1",
    "Telephone2",
];
const ADDRESS_KEYS: [&str; 6] = [
    "StreetName",
    "AddressNumber",
    "AddressNumberAppendix",
    "ZipCode",
    "City",
    "CountryCode",
];

/// Which saveable section a request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SaveTarget {
    Communication,
    Address,
    FreeFields,
    Financial,
}

impl SaveTarget {
    pub(crate) fn section(self) -> Section {
        match self {
            SaveTarget::Communication => Section::Communication,
            SaveTarget::Address => Section::Address,
            SaveTarget::FreeFields => Section::FreeFields,
            SaveTarget::Financial => Section::Financial,
        }
    }

    fn accepts(self, key: &str) -> bool {
        match self {
            SaveTarget::Communication => COMMUNICATION_KEYS.contains(&key),
            SaveTarget::Address => ADDRESS_KEYS.contains(&key),
            SaveTarget::FreeFields => remark_number(key).is_some(),
            SaveTarget::Financial => key == FINANCIAL_BLOCK,
        }
    }
}

/// One posted value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Posted {
    Text(String),
    Flag(bool),
}

impl Posted {
    pub(crate) fn as_log_value(&self) -> String {
        match self {
            Posted::Text(text) => text.clone(),
            Posted::Flag(flag) => flag.to_string(),
        }
    }
}

/// Why a save was refused; maps to the HTTP answer at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SaveError {
    /// 400 with a message shown in the section's `.validation-error`.
    Validation(String),
    /// 500, from the `server_error_on_saves` fault.
    Server,
}

/// The posted `(key, value)` pairs in the shape the page sends (the same shape as the GET answer)
/// or, leniently, as a flat object of the section's keys.
pub(crate) fn parse_body(
    target: SaveTarget,
    body: &Value,
) -> Result<Vec<(String, Posted)>, SaveError> {
    let object = body
        .as_object()
        .ok_or_else(|| invalid("Ongeldige invoer: een JSON-object verwacht"))?;
    let fields = match target {
        SaveTarget::Address => home_address(object)?,
        SaveTarget::FreeFields => free_fields(object)?,
        SaveTarget::Communication | SaveTarget::Financial => object.clone(),
    };
    fields
        .iter()
        // Identifiers the app may echo back; they are not saved.
        .filter(|(key, _)| !matches!(key.as_str(), "PersonId" | "AddressType"))
        .map(|(key, value)| {
            if !target.accepts(key) {
                return Err(invalid(&format!("Onbekend veld: {key}")));
            }
            Ok((key.clone(), posted_value(target, key, value)?))
        })
        .collect()
}

fn home_address(object: &Map<String, Value>) -> Result<Map<String, Value>, SaveError> {
    let Some(addresses) = object.get("Addresses") else {
        return Ok(object.clone());
    };
    let list = addresses
        .as_array()
        .ok_or_else(|| invalid("Ongeldige invoer: Addresses moet een lijst zijn"))?;
    let is_home = |a: &&Value| a.get("AddressType").and_then(Value::as_str) == Some("Home");
    list.iter()
        .find(is_home)
        .or_else(|| list.first())
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| invalid("Ongeldige invoer: geen adres"))
}

fn free_fields(object: &Map<String, Value>) -> Result<Map<String, Value>, SaveError> {
    let fields = match object.get("FreeFields") {
        Some(nested) => nested
            .as_object()
            .ok_or_else(|| invalid("Ongeldige invoer: FreeFields moet een object zijn"))?,
        None => object,
    };
    // Each field is {"Value": "..."} in the app's shape; a bare string is accepted too.
    Ok(fields
        .iter()
        .map(|(key, value)| {
            let inner = value.get("Value").cloned().unwrap_or_else(|| value.clone());
            (key.clone(), inner)
        })
        .collect())
}

fn posted_value(target: SaveTarget, key: &str, value: &Value) -> Result<Posted, SaveError> {
    let bad = || invalid(&format!("Ongeldige waarde voor {key}"));
    if target == SaveTarget::Financial {
        return match value {
            Value::Bool(flag) => Ok(Posted::Flag(*flag)),
            Value::String(s) if s == "true" || s == "false" => Ok(Posted::Flag(s == "true")),
            Value::Number(n) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => {
                Ok(Posted::Flag(n.as_u64() == Some(1)))
            }
            _ => Err(bad()),
        };
    }
    match value {
        Value::String(s) => Ok(Posted::Text(s.clone())),
        Value::Null => Ok(Posted::Text(String::new())),
        Value::Number(n) => Ok(Posted::Text(n.to_string())),
        _ => Err(bad()),
    }
}

/// Applies a parsed save to `member`, consuming the save faults. On error the member is
/// untouched (a refused save changes nothing, as in Sportlink).
pub(crate) fn apply_save(
    member: &mut SimMember,
    posted: Vec<(String, Posted)>,
    faults: &mut Faults,
) -> Result<(), SaveError> {
    if faults.server_error_on_saves > 0 {
        faults.server_error_on_saves -= 1;
        if let Some(ms) = faults.render_delay_after_server_error_ms.take() {
            faults.render_delay_ms = ms;
        }
        return Err(SaveError::Server);
    }
    if let Some(message) = faults.validation_error_on_save.take() {
        return Err(SaveError::Validation(message));
    }
    let mut values = posted
        .into_iter()
        .map(|(key, value)| Ok((key.clone(), normalise(&key, value)?)))
        .collect::<Result<Vec<_>, SaveError>>()?;

    alter_for_store_differs(&mut values, faults);
    for (key, value) in values {
        write_field(member, &key, value);
    }
    Ok(())
}

/// Trims, validates and converts a value to its stored form.
fn normalise(key: &str, value: Posted) -> Result<Posted, SaveError> {
    let Posted::Text(text) = value else {
        return Ok(value);
    };
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Ok(Posted::Text(text));
    }
    let stored = match key {
        "Email1" | "Email2" if !text.contains('@') => return Err(invalid("Ongeldig e-mailadres")),
        DATE_REMARK => parse_date(&text)
            .ok_or_else(|| invalid("Ongeldige datum"))?
            .format("%Y-%m-%d")
            .to_string(),
        "CountryCode" if text.len() != 2 || !text.bytes().all(|b| b.is_ascii_alphabetic()) => {
            return Err(invalid("Ongeldige landcode"))
        }
        "CountryCode" => text.to_ascii_uppercase(),
        _ => text,
    };
    Ok(Posted::Text(stored))
}

/// Dates are typed `dd-mm-yyyy` or `yyyy-mm-dd`.
pub(crate) fn parse_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, "%d-%m-%Y")
        .or_else(|_| NaiveDate::parse_from_str(text, "%Y-%m-%d"))
        .ok()
}

/// The `store_differs` fault: the named field is stored slightly wrong, once.
fn alter_for_store_differs(values: &mut [(String, Posted)], faults: &mut Faults) {
    let Some(target) = faults.store_differs.as_deref().map(canonical_key) else {
        return;
    };
    let Some((key, value)) = values.iter_mut().find(|(key, _)| *key == target) else {
        return;
    };
    *value = altered(key, value);
    faults.store_differs = None;
}

fn altered(key: &str, value: &Posted) -> Posted {
    match value {
        Posted::Flag(flag) => Posted::Flag(!flag),
        Posted::Text(text) if key == DATE_REMARK => {
            let next_day = parse_date(text).and_then(|d| d.checked_add_days(Days::new(1)));
            match next_day {
                Some(day) => Posted::Text(day.format("%Y-%m-%d").to_string()),
                None => Posted::Text(format!("{text}-")),
            }
        }
        // Truncation, as a too-short database column would do it.
        Posted::Text(text) if text.chars().count() > 1 => {
            let mut chars = text.chars();
            chars.next_back();
            Posted::Text(chars.as_str().to_owned())
        }
        Posted::Text(text) => Posted::Text(format!("{text}-")),
    }
}

fn write_field(member: &mut SimMember, key: &str, value: Posted) {
    match value {
        Posted::Flag(flag) => member.has_financial_block = flag,
        Posted::Text(text) => {
            if let Some(slot) = member.text_field_mut(key) {
                *slot = text;
            }
        }
    }
}

/// The JSON key for an input name, old or new (`Email` → `Email1`, `inputRemarks8` → `Remarks8`).
pub(crate) fn canonical_key(name: &str) -> &str {
    match name {
        "Email" => "Email1",
        "Mobile" => "Mobile1",
        "Phone" => "Telephone1",
        other => other
            .strip_prefix("input")
            .filter(|rest| remark_number(rest).is_some())
            .unwrap_or(other),
    }
}

fn invalid(message: &str) -> SaveError {
    SaveError::Validation(message.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn save(
        member: &mut SimMember,
        target: SaveTarget,
        body: Value,
        faults: &mut Faults,
    ) -> Result<(), SaveError> {
        let posted = parse_body(target, &body)?;
        apply_save(member, posted, faults)
    }

    #[test]
    fn stores_dates_as_iso() {
        let mut m = SimMember::new("A", "B");
        let body = json!({"FreeFields": {"Remarks8": {"Value": "30-10-2023"}}});
        save(&mut m, SaveTarget::FreeFields, body, &mut Faults::default()).expect("saved");
        assert_eq!(m.remark(8), Some("2023-10-30"));
    }

    #[test]
    fn rejects_bad_email_and_unknown_keys_without_writing() {
        let mut m = SimMember::new("A", "B");
        let err = save(
            &mut m,
            SaveTarget::Communication,
            json!({"Email1": "nope", "Mobile1": "06"}),
            &mut Faults::default(),
        );
        assert_eq!(
            err,
            Err(SaveError::Validation("Ongeldig e-mailadres".into()))
        );
        assert_eq!(m.communication.mobile1, "");
        let err = save(
            &mut m,
            SaveTarget::Communication,
            json!({"City": "X"}),
            &mut Faults::default(),
        );
        assert!(matches!(err, Err(SaveError::Validation(_))));
        assert!(save(
            &mut m,
            SaveTarget::Communication,
            json!([1]),
            &mut Faults::default()
        )
        .is_err());
    }

    #[test]
    fn store_differs_alters_once() {
        let mut m = SimMember::new("A", "B");
        let mut faults = Faults {
            store_differs: Some("Email".into()),
            ..Faults::default()
        };
        save(
            &mut m,
            SaveTarget::Communication,
            json!({"Email1": "a@b.nl"}),
            &mut faults,
        )
        .expect("saved");
        assert_eq!(m.communication.email1, "a@b.n");
        assert_eq!(faults.store_differs, None);
        save(
            &mut m,
            SaveTarget::Communication,
            json!({"Email1": "a@b.nl"}),
            &mut faults,
        )
        .expect("saved");
        assert_eq!(m.communication.email1, "a@b.nl");
    }

    #[test]
    fn server_errors_count_down() {
        let mut m = SimMember::new("A", "B");
        let mut faults = Faults {
            server_error_on_saves: 1,
            ..Faults::default()
        };
        let body = json!({"HasFinancialTransferBlockOwnClub": true});
        assert_eq!(
            save(&mut m, SaveTarget::Financial, body.clone(), &mut faults),
            Err(SaveError::Server)
        );
        save(&mut m, SaveTarget::Financial, body, &mut faults).expect("saved");
        assert!(m.has_financial_block);
    }

    #[test]
    fn flags_are_accepted_in_every_encoding() {
        for (value, expected) in [
            (json!(true), true),
            (json!("true"), true),
            (json!(1), true),
            (json!(false), false),
            (json!("false"), false),
            (json!(0), false),
        ] {
            let body = json!({ FINANCIAL_BLOCK: value });
            let posted = parse_body(SaveTarget::Financial, &body).expect("accepted");
            assert_eq!(
                posted,
                vec![(FINANCIAL_BLOCK.to_owned(), Posted::Flag(expected))]
            );
        }
        for value in [json!(2), json!("ja"), json!(null)] {
            let body = json!({ FINANCIAL_BLOCK: value });
            assert!(parse_body(SaveTarget::Financial, &body).is_err(), "{body}");
        }
    }

    #[test]
    fn canonical_keys() {
        assert_eq!(canonical_key("inputRemarks8"), "Remarks8");
        assert_eq!(canonical_key("Phone"), "Telephone1");
        assert_eq!(canonical_key("inputFoo"), "inputFoo");
    }
}

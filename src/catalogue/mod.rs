//! The field catalogue (product.md §3): every tracked field as data — where it lives in Rondo Club,
//! where in Sportlink, how its values compare. Detection and the executor both read this one table,
//! so a field can never be detected that the executor does not know (lessons.md 2).

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::FieldName;
use crate::normalise;

/// The catalogue compiled into the binary.
pub const DEFAULT_CATALOGUE: &str = include_str!("default.toml");

/// How a field's values are normalised, compared and typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Text,
    Phone,
    Date,
    Checkbox,
    Select,
    Postcode,
}

impl FieldKind {
    /// Canonical form of a value as text (from Sportlink, or a stored canonical value).
    pub fn normalise(self, raw: &str) -> String {
        match self {
            FieldKind::Text => normalise::text(raw),
            FieldKind::Phone => normalise::phone(raw),
            FieldKind::Date => normalise::date(raw),
            FieldKind::Checkbox => normalise::boolean(raw),
            FieldKind::Select => normalise::code(raw),
            FieldKind::Postcode => normalise::postcode(raw),
        }
    }

    /// Canonical form of a value from Rondo Club's JSON.
    pub fn normalise_json(self, value: &Value) -> String {
        match (self, value) {
            (FieldKind::Checkbox, Value::Null) => "false".into(),
            _ => self.normalise(&normalise::json_scalar(value)),
        }
    }

    /// What to type into Sportlink for a canonical value.
    pub fn for_sportlink(self, canonical: &str) -> String {
        match self {
            FieldKind::Phone => normalise::phone_for_sportlink(canonical),
            FieldKind::Date => normalise::date_for_sportlink(canonical),
            _ => canonical.to_string(),
        }
    }

    /// Whether two values mean the same after normalisation.
    pub fn same(self, a: &str, b: &str) -> bool {
        self.normalise(a) == self.normalise(b)
    }
}

/// Where a value is read in the person's `acf` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum RondoSource {
    /// A plain ACF field; present when the key exists (even with an empty value).
    Acf { acf: String },
    /// The `nth` (0-based) row of `contact_info` with this `contact_type`.
    Contact {
        contact: String,
        #[serde(default)]
        nth: usize,
    },
    /// A key of the `addresses` row whose `address_label` is `address`.
    Address { address: String, key: String },
}

/// The Sportlink member page a field is edited on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SportlinkPage {
    General,
    Other,
    Financial,
}

impl SportlinkPage {
    /// The path segment after `/member/member-details/{id}/`.
    pub fn path(self) -> &'static str {
        match self {
            SportlinkPage::General => "general",
            SportlinkPage::Other => "other",
            SportlinkPage::Financial => "financial",
        }
    }
}

impl fmt::Display for SportlinkPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// Where to read back what Sportlink stored: a JSON endpoint the app itself fetches, and the JSON
/// pointer of the value in its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySource {
    pub endpoint: String,
    pub pointer: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Becomes part of column names (`{name}_rondo_club_modified`); [`FieldName`] keeps it to a
    /// safe alphabet.
    pub name: FieldName,
    pub kind: FieldKind,
    pub sources: Vec<RondoSource>,
    pub page: SportlinkPage,
    pub section: String,
    pub selectors: Vec<String>,
    pub verify: VerifySource,
}

impl FieldSpec {
    /// Reads this field's canonical value from a person's `acf` object. A field that no source
    /// provides is empty.
    pub fn extract(&self, acf: &serde_json::Map<String, Value>) -> String {
        self.sources
            .iter()
            .find_map(|source| read_source(source, acf))
            .map(|value| self.kind.normalise_json(&value))
            .unwrap_or_else(|| self.kind.normalise(""))
    }
}

fn read_source(source: &RondoSource, acf: &serde_json::Map<String, Value>) -> Option<Value> {
    match source {
        RondoSource::Acf { acf: key } => acf.get(key).cloned(),
        RondoSource::Contact { contact, nth } => {
            let rows = acf.get("contact_info")?.as_array()?;
            rows.iter()
                .filter(|row| {
                    row.get("contact_type")
                        .and_then(Value::as_str)
                        .is_some_and(|t| t.trim().eq_ignore_ascii_case(contact))
                })
                .nth(*nth)
                .and_then(|row| row.get("contact_value").cloned())
        }
        RondoSource::Address { address, key } => {
            let rows = acf.get("addresses")?.as_array()?;
            rows.iter()
                .find(|row| {
                    row.get("address_label")
                        .and_then(Value::as_str)
                        .is_some_and(|l| l.trim().eq_ignore_ascii_case(address))
                })
                .map(|row| row.get(key).cloned().unwrap_or(Value::Null))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("field catalogue {origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("field catalogue {path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// The tracked fields, in catalogue order.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalogue {
    fields: Vec<FieldSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    field: Vec<FieldSpec>,
}

impl Catalogue {
    /// The compiled-in catalogue.
    pub fn builtin() -> Self {
        // The default is part of the binary and covered by tests; failing here is a build defect.
        Self::parse(DEFAULT_CATALOGUE, "built-in").expect("the built-in field catalogue is valid")
    }

    pub fn load(path: &Path) -> Result<Self, CatalogueError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogueError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, CatalogueError> {
        let invalid = |message: String| CatalogueError::Invalid {
            origin: origin.to_string(),
            message,
        };
        let file: CatalogueFile = toml::from_str(text).map_err(|e| invalid(e.message().into()))?;
        if file.field.is_empty() {
            return Err(invalid("no [[field]] entries".into()));
        }
        let mut seen = HashSet::new();
        for f in &file.field {
            if !seen.insert(&f.name) {
                return Err(invalid(format!("field {:?} is listed twice", f.name)));
            }
            if f.sources.is_empty() {
                return Err(invalid(format!("field {:?} has no sources", f.name)));
            }
            if f.selectors.iter().all(|s| s.trim().is_empty()) {
                return Err(invalid(format!("field {:?} has no selectors", f.name)));
            }
            if f.section.trim().is_empty() {
                return Err(invalid(format!("field {:?} has no section", f.name)));
            }
            if !f.verify.endpoint.starts_with('/') || !f.verify.pointer.starts_with('/') {
                return Err(invalid(format!(
                    "field {:?}: verify endpoint and pointer must start with /",
                    f.name
                )));
            }
        }
        Ok(Self { fields: file.field })
    }

    pub fn fields(&self) -> &[FieldSpec] {
        &self.fields
    }

    /// The field of this name: takes a [`FieldName`] or text from outside (which is how an
    /// edge learns whether a name is tracked).
    pub fn get(&self, name: &(impl AsRef<str> + ?Sized)) -> Option<&FieldSpec> {
        let name = name.as_ref();
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn names(&self) -> impl Iterator<Item = &FieldName> {
        self.fields.iter().map(|f| &f.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_the_original_seven_and_the_later_fields() {
        let c = Catalogue::builtin();
        for name in [
            "email",
            "email2",
            "mobile",
            "phone",
            "datum_vog",
            "freescout_id",
            "financiele_blokkade",
            "mobile2",
            "phone2",
            "street_name",
            "house_number",
            "house_number_addition",
            "postal_code",
            "city",
            "country_code",
        ] {
            assert!(c.get(name).is_some(), "{name} missing");
        }
        assert_eq!(c.fields().len(), 15);
        assert_eq!(
            c.get("financiele_blokkade").unwrap().page,
            SportlinkPage::Financial
        );
        assert_eq!(
            c.get("datum_vog").unwrap().selectors[0],
            r#"input[name="Remarks8"]"#
        );
    }

    #[test]
    fn a_catalogue_file_overrides_selectors() {
        let edited = DEFAULT_CATALOGUE.replace(
            r#"selectors = ['input[name="Email2"]']"#,
            r#"selectors = ['input[name="SecondEmail"]']"#,
        );
        let c = Catalogue::parse(&edited, "test").unwrap();
        assert_eq!(
            c.get("email2").unwrap().selectors,
            ["input[name=\"SecondEmail\"]"]
        );
    }

    #[test]
    fn invalid_catalogues_are_refused_with_a_reason() {
        let dup = format!(
            "{DEFAULT_CATALOGUE}\n{}",
            &DEFAULT_CATALOGUE[DEFAULT_CATALOGUE.find("[[field]]").unwrap()..]
        );
        let err = Catalogue::parse(&dup, "dup.toml").unwrap_err().to_string();
        assert!(err.contains("listed twice"), "{err}");

        let bad_name = DEFAULT_CATALOGUE.replace(r#"name = "email2""#, r#"name = "Email-2""#);
        let err = Catalogue::parse(&bad_name, "x").unwrap_err().to_string();
        assert!(err.contains("lower-case"), "{err}");

        let err = Catalogue::parse("[[field]]\nname = 1", "x")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("field catalogue x:"), "{err}");
        let bad_kind = DEFAULT_CATALOGUE.replacen(r#"kind = "text""#, r#"kind = "colour""#, 1);
        assert!(Catalogue::parse(&bad_kind, "x").is_err());
    }
}

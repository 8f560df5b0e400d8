//! The simulated member record and its JSON shapes (as Sportlink's web app fetches them).

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

/// Membership status as shown in the page header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemberStatus {
    #[default]
    Active,
    /// "Oud bondslid": read-only everywhere, saves answer 403.
    FormerMember,
}

impl MemberStatus {
    /// The text Sportlink shows (and `MemberHeader.MemberStatus` carries).
    pub fn label(self) -> &'static str {
        match self {
            MemberStatus::Active => "Actief",
            MemberStatus::FormerMember => "Oud bondslid",
        }
    }
}

/// The sections a member page can have. A member may lack some of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    PersonalDetails,
    Communication,
    Address,
    Parents,
    Nationality,
    FreeFields,
    FreeFieldsOnRegistration,
    Notes,
    Financial,
}

impl Section {
    pub const ALL: [Section; 9] = [
        Section::PersonalDetails,
        Section::Communication,
        Section::Address,
        Section::Parents,
        Section::Nationality,
        Section::FreeFields,
        Section::FreeFieldsOnRegistration,
        Section::Notes,
        Section::Financial,
    ];

    /// The section heading (`h2` text) on the member page.
    pub fn title(self) -> &'static str {
        match self {
            Section::PersonalDetails => "Persoonlijke gegevens",
            Section::Communication => "Communicatie",
            Section::Address => "Adres",
            Section::Parents => "Ouders/verzorgers",
            Section::Nationality => "Nationaliteit",
            Section::FreeFields => "Vrije invoervelden",
            Section::FreeFieldsOnRegistration => "Vrije invoervelden bij aanmelding",
            Section::Notes => "Notities",
            Section::Financial => "Financiële gegevens",
        }
    }
}

/// Contact details (`/member/persondata/MemberCommunication`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Communication {
    pub email1: String,
    pub email2: String,
    pub mobile1: String,
    pub mobile2: String,
    pub telephone1: String,
    pub telephone2: String,
}

/// Home address (`/member/persondata/MemberAddresses`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub street_name: String,
    pub address_number: String,
    pub address_number_appendix: String,
    pub zip_code: String,
    pub city: String,
    /// ISO 3166-1 alpha-2, e.g. "NL".
    pub country_code: String,
}

impl Default for Address {
    fn default() -> Self {
        Address {
            street_name: String::new(),
            address_number: String::new(),
            address_number_appendix: String::new(),
            zip_code: String::new(),
            city: String::new(),
            country_code: "NL".to_owned(),
        }
    }
}

/// One member in the simulator's store. Values are plain strings; `""` means empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMember {
    pub knvb_id: String,
    pub full_name: String,
    pub status: MemberStatus,
    pub communication: Communication,
    pub address: Address,
    /// `Remarks1..=Remarks10` at indexes `0..=9`. Remarks3 holds the FreeScout id, Remarks8 the
    /// VOG date (stored as `yyyy-mm-dd`).
    pub remarks: [String; 10],
    pub has_financial_block: bool,
    pub sections: BTreeSet<Section>,
}

/// The free field that holds a date (the VOG date) and is therefore displayed and typed as one.
pub const DATE_REMARK: &str = "Remarks8";

impl SimMember {
    /// An active member with every section present and all values empty (country "NL").
    pub fn new(knvb_id: impl Into<String>, full_name: impl Into<String>) -> SimMember {
        SimMember {
            knvb_id: knvb_id.into(),
            full_name: full_name.into(),
            status: MemberStatus::Active,
            communication: Communication::default(),
            address: Address::default(),
            remarks: Default::default(),
            has_financial_block: false,
            sections: Section::ALL.into_iter().collect(),
        }
    }

    /// Builder: the same member without `section` on its pages.
    pub fn without_section(mut self, section: Section) -> SimMember {
        self.sections.remove(&section);
        self
    }

    /// Builder: a former member ("Oud bondslid").
    pub fn former(mut self) -> SimMember {
        self.status = MemberStatus::FormerMember;
        self
    }

    pub fn has_section(&self, section: Section) -> bool {
        self.sections.contains(&section)
    }

    /// `Remarks{n}` for `n` in `1..=10`.
    pub fn remark(&self, n: usize) -> Option<&str> {
        let index = n.checked_sub(1)?;
        self.remarks.get(index).map(String::as_str)
    }

    /// Sets `Remarks{n}`; returns false when `n` is outside `1..=10`.
    pub fn set_remark(&mut self, n: usize, value: impl Into<String>) -> bool {
        match n.checked_sub(1).and_then(|i| self.remarks.get_mut(i)) {
            Some(slot) => {
                *slot = value.into();
                true
            }
            None => false,
        }
    }

    /// The stored string behind a JSON key of a saveable section (`Email1`, `ZipCode`,
    /// `Remarks8`, ...). The financial flag is a bool and is not reachable here.
    pub fn text_field(&self, key: &str) -> Option<&str> {
        let value = match key {
            "Email1" => &self.communication.email1,
            "Email2" => &self.communication.email2,
            "Mobile1" => &self.communication.mobile1,
            "Mobile2" => &self.communication.mobile2,
            "Telephone1" => &self.communication.telephone1,
            "Telephone2" => &self.communication.telephone2,
            "StreetName" => &self.address.street_name,
            "AddressNumber" => &self.address.address_number,
            "AddressNumberAppendix" => &self.address.address_number_appendix,
            "ZipCode" => &self.address.zip_code,
            "City" => &self.address.city,
            "CountryCode" => &self.address.country_code,
            _ => return remark_number(key).and_then(|n| self.remark(n)),
        };
        Some(value)
    }

    pub(crate) fn text_field_mut(&mut self, key: &str) -> Option<&mut String> {
        let value = match key {
            "Email1" => &mut self.communication.email1,
            "Email2" => &mut self.communication.email2,
            "Mobile1" => &mut self.communication.mobile1,
            "Mobile2" => &mut self.communication.mobile2,
            "Telephone1" => &mut self.communication.telephone1,
            "Telephone2" => &mut self.communication.telephone2,
            "StreetName" => &mut self.address.street_name,
            "AddressNumber" => &mut self.address.address_number,
            "AddressNumberAppendix" => &mut self.address.address_number_appendix,
            "ZipCode" => &mut self.address.zip_code,
            "City" => &mut self.address.city,
            "CountryCode" => &mut self.address.country_code,
            _ => {
                let index = remark_number(key)? - 1;
                return self.remarks.get_mut(index);
            }
        };
        Some(value)
    }

    pub(crate) fn header_json(&self) -> Value {
        let sections: Vec<&str> = self.sections.iter().map(|s| s.title()).collect();
        json!({
            "PersonId": self.knvb_id,
            "FullName": self.full_name,
            "MemberStatus": self.status.label(),
            "HasFinancialTransferBlockOwnClub": self.has_financial_block,
            // Which sections the pages render; the real app derives this from club settings.
            "Sections": sections,
        })
    }

    pub(crate) fn communication_json(&self) -> Value {
        let c = &self.communication;
        json!({
            "Email1": c.email1,
            "Email2": c.email2,
            "Mobile1": c.mobile1,
            "Mobile2": c.mobile2,
            "Telephone1": c.telephone1,
            "Telephone2": c.telephone2,
        })
    }

    pub(crate) fn addresses_json(&self) -> Value {
        let a = &self.address;
        json!({
            "Addresses": [{
                "AddressType": "Home",
                "StreetName": a.street_name,
                "AddressNumber": a.address_number,
                "AddressNumberAppendix": a.address_number_appendix,
                "ZipCode": a.zip_code,
                "City": a.city,
                "CountryCode": a.country_code,
            }]
        })
    }

    pub(crate) fn free_fields_json(&self) -> Value {
        let fields: Map<String, Value> = self
            .remarks
            .iter()
            .enumerate()
            .map(|(i, value)| (format!("Remarks{}", i + 1), json!({ "Value": value })))
            .collect();
        json!({ "FreeFields": fields })
    }
}

/// `n` of a `RemarksN` key, when it is a valid free field (1..=10).
pub(crate) fn remark_number(key: &str) -> Option<usize> {
    let digits = key.strip_prefix("Remarks")?;
    // `str::parse` would also accept "+3" and "03"; Sportlink's keys are exactly Remarks1..10.
    let n = match digits {
        "10" => 10,
        d if d.len() == 1 => d.parse().ok()?,
        _ => return None,
    };
    (1..=10).contains(&n).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remark_numbers_are_bounded() {
        assert_eq!(remark_number("Remarks1"), Some(1));
        assert_eq!(remark_number("Remarks10"), Some(10));
        assert_eq!(remark_number("Remarks0"), None);
        assert_eq!(remark_number("Remarks11"), None);
        assert_eq!(remark_number("Remarks+3"), None);
        assert_eq!(remark_number("Remarks03"), None);
        assert_eq!(remark_number("Email1"), None);
    }

    #[test]
    fn text_fields_round_trip() {
        let mut m = SimMember::new("ABC1234", "Jan Jansen");
        *m.text_field_mut("Remarks8").expect("free field") = "2023-10-30".to_owned();
        *m.text_field_mut("Email1").expect("email") = "jan@example.nl".to_owned();
        assert_eq!(m.remark(8), Some("2023-10-30"));
        assert_eq!(m.text_field("Email1"), Some("jan@example.nl"));
        assert!(m.text_field("Bogus").is_none());
        assert!(!m.set_remark(0, "x"));
        assert!(!m.set_remark(11, "x"));
    }
}

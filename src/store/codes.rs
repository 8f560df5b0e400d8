//! What the store keeps as text (change status, source, run kind and status, audit run status,
//! verdict, trigger and Rondo Club source, delivery outcome, how and with what verdict a member was last seen, its sync origin,
//! a conflict's winner and reason; field names):
//! written as their word, read back into the type, and an unknown word in the database is an error
//! rather than a string passed along.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use super::audit::{AuditRunStatus, AuditTrigger, AuditVerdict, RondoSource};
use super::deliveries::DeliveryOutcome;
use super::members::SeenThrough;
use super::runs::{RunKind, RunStatus};
use crate::conflict::{Reason, Winner};
use crate::detect::Verdict;
use crate::domain::{ChangeStatus, FieldName, Origin, Source};

macro_rules! stored_as_text {
    ($($t:ty),*) => {$(
        impl ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $t {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                <$t>::parse(text).ok_or_else(|| {
                    FromSqlError::Other(
                        format!(concat!("unknown ", stringify!($t), " {:?}"), text).into(),
                    )
                })
            }
        }
    )*};
}

stored_as_text!(
    ChangeStatus,
    Source,
    RunKind,
    RunStatus,
    AuditRunStatus,
    AuditVerdict,
    AuditTrigger,
    RondoSource,
    DeliveryOutcome,
    SeenThrough,
    Verdict,
    Origin,
    Winner,
    Reason
);

impl ToSql for FieldName {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for FieldName {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        FieldName::parse(value.as_str()?).map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DeliveryOutcome;

    /// The API and the operator page show a code by its JSON word, the database keeps its stored
    /// word: they are the same word.
    #[test]
    fn every_stored_code_is_the_same_word_in_json() {
        fn same<T: serde::Serialize>(codes: &[T], word: impl Fn(&T) -> &'static str) {
            for code in codes {
                assert_eq!(serde_json::to_value(code).unwrap(), word(code));
            }
        }
        same(&ChangeStatus::ALL, |c| c.as_str());
        same(&Source::ALL, |c| c.as_str());
        same(&RunKind::ALL, |c| c.as_str());
        same(&RunStatus::ALL, |c| c.as_str());
        same(&AuditRunStatus::ALL, |c| c.as_str());
        same(&AuditVerdict::ALL, |c| c.as_str());
        same(&AuditTrigger::ALL, |c| c.as_str());
        same(&RondoSource::ALL, |c| c.as_str());
        same(&DeliveryOutcome::ALL, |c| c.as_str());
        same(&SeenThrough::ALL, |c| c.as_str());
        same(&Verdict::ALL, |c| c.as_str());
        same(&Origin::ALL, |c| c.as_str());
        same(&Winner::ALL, |c| c.as_str());
        same(&Reason::ALL, |c| c.as_str());
    }

    #[test]
    fn every_stored_code_parses_back_from_its_word() {
        for v in Verdict::ALL {
            assert_eq!(Verdict::parse(v.as_str()), Some(v));
        }
        for s in SeenThrough::ALL {
            assert_eq!(SeenThrough::parse(s.as_str()), Some(s));
        }
        for s in AuditRunStatus::ALL {
            assert_eq!(AuditRunStatus::parse(s.as_str()), Some(s));
        }
        for v in AuditVerdict::ALL {
            assert_eq!(AuditVerdict::parse(v.as_str()), Some(v));
        }
        for t in AuditTrigger::ALL {
            assert_eq!(AuditTrigger::parse(t.as_str()), Some(t));
        }
        for s in RondoSource::ALL {
            assert_eq!(RondoSource::parse(s.as_str()), Some(s));
        }
        for w in Winner::ALL {
            assert_eq!(Winner::parse(w.as_str()), Some(w));
        }
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
        for o in DeliveryOutcome::ALL {
            assert_eq!(DeliveryOutcome::parse(o.as_str()), Some(o));
        }
        for s in Source::ALL {
            assert_eq!(SeenThrough::from(s).as_str(), s.as_str());
        }
    }
}

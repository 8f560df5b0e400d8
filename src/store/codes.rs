//! What the store keeps as text (change status, source, run kind and status, audit run status and
//! verdict, delivery outcome; field names):
//! written as their word, read back into the type, and an unknown word in the database is an error
//! rather than a string passed along.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use super::audit::{AuditRunStatus, AuditVerdict};
use super::deliveries::DeliveryOutcome;
use super::runs::{RunKind, RunStatus};
use crate::domain::{ChangeStatus, FieldName, Source};

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
    DeliveryOutcome
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

//! Versioned schema: `migrations/NNNN_name.sql`, embedded, applied in order, one transaction each,
//! recorded in `schema_migrations`.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::{Result, StoreError};
use crate::catalogue::Catalogue;

/// (version, name, SQL). Append only; never edit an applied migration.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "0001_initial",
        include_str!("../../migrations/0001_initial.sql"),
    ),
    (
        2,
        "0002_service_probe",
        include_str!("../../migrations/0002_service_probe.sql"),
    ),
    (
        3,
        "0003_invalid_knvb_ids",
        include_str!("../../migrations/0003_invalid_knvb_ids.sql"),
    ),
    (
        4,
        "0004_history_indexes",
        include_str!("../../migrations/0004_history_indexes.sql"),
    ),
    (
        5,
        "0005_audit",
        include_str!("../../migrations/0005_audit.sql"),
    ),
];

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SchemaInfo {
    pub version: i64,
    pub known: i64,
}

pub fn latest_known() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

fn current_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?)
}

pub fn apply(conn: &mut Connection, path: &Path) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TEXT NOT NULL
         );",
    )?;
    let found = current_version(conn)?;
    let known = latest_known();
    if found > known {
        return Err(StoreError::SchemaTooNew {
            path: path.display().to_string(),
            found,
            known,
        });
    }
    for &(version, name, sql) in MIGRATIONS {
        let recorded: Option<String> = conn
            .query_row(
                "SELECT name FROM schema_migrations WHERE version = ?1",
                [version],
                |r| r.get(0),
            )
            .optional()?;
        match recorded {
            Some(n) if n == name => continue,
            Some(n) => {
                return Err(StoreError::Migration {
                    version,
                    name: name.into(),
                    message: format!("the database recorded it as {n:?}; wrong database?"),
                })
            }
            None => {}
        }
        let fail = |e: rusqlite::Error| StoreError::Migration {
            version,
            name: name.into(),
            message: e.to_string(),
        };
        let tx = conn.transaction().map_err(fail)?;
        tx.execute_batch(sql).map_err(fail)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![version, name, super::ts(chrono::Utc::now())],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        tracing::info!(version, name, "applied database migration");
    }
    Ok(())
}

/// The per-field timestamp columns of `rondo_club_members` for fields a catalogue file added
/// beyond those the migrations created. Field names are validated to `[a-z][a-z0-9_]*`.
pub fn ensure_field_columns(conn: &Connection, catalogue: &Catalogue) -> Result<()> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('rondo_club_members')")?;
    let existing: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for field in catalogue.names() {
        for suffix in ["rondo_club_modified", "sportlink_modified"] {
            let column = format!("{field}_{suffix}");
            if !existing.contains(&column) {
                conn.execute_batch(&format!(
                    "ALTER TABLE rondo_club_members ADD COLUMN {column} TEXT"
                ))?;
                tracing::info!(column, "added a column for a catalogue field");
            }
        }
    }
    Ok(())
}

impl super::Conn<'_> {
    /// Rewrites the probe row: a real write, so committing it proves a write can succeed.
    pub fn write_probe(&self, now: chrono::DateTime<chrono::Utc>) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO service_probe (id, written_at) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at",
            )?
            .execute([super::ts(now)])?;
        Ok(())
    }

    pub fn schema_info(&self) -> Result<SchemaInfo> {
        Ok(SchemaInfo {
            version: current_version(self.conn)?,
            known: latest_known(),
        })
    }
}

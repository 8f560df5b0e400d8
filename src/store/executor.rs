//! Queries the Sportlink executor needs besides the change life cycle (changes.rs).

use rusqlite::OptionalExtension;

use super::{Conn, Result};
use crate::domain::KnvbId;

impl Conn<'_> {
    /// Whether Rondo Club reported the member deceased: their pending changes are skipped, never
    /// pushed.
    pub fn member_is_deceased(&self, knvb_id: &KnvbId) -> Result<bool> {
        let deceased: Option<i64> = self
            .conn
            .query_row(
                "SELECT deceased FROM rondo_club_members WHERE knvb_id = ?1",
                [knvb_id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(deceased.unwrap_or(0) != 0)
    }
}

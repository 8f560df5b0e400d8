//! The comparison of one member (pure): what Sportlink showed against Rondo Club's values and the
//! service's own records, one verdict per field.

use crate::catalogue::Catalogue;
use crate::store::{
    AuditMember, AuditMemberContext, AuditMemberDone, AuditVerdict, NewAuditResult,
};

use super::SportlinkRead;

/// The verdicts for one member (pure): Sportlink's read against Rondo Club's values.
pub fn compare(
    catalogue: &Catalogue,
    member: &AuditMember,
    read: &Result<SportlinkRead, String>,
    context: &AuditMemberContext,
) -> AuditMemberDone {
    let mut done = AuditMemberDone {
        sportlink_state: "found",
        error: None,
        results: Vec::new(),
        read_ms: 0,
        busy_ms: 0,
    };
    let (rondo_values, rondo_modified) = match (&context.newer_baseline, member.in_rondo_club) {
        (Some((values, modified)), true) => {
            (Some(values.clone()), modified.or(member.modified_gmt))
        }
        (_, true) => (member.values.clone(), member.modified_gmt),
        (_, false) => (None, None),
    };
    let found = match read {
        Err(message) => {
            done.sportlink_state = "error";
            done.error = Some(message.clone());
            done.results.push(NewAuditResult {
                detail: Some(format!("reading the member in Sportlink failed: {message}")),
                ..NewAuditResult::new(AuditVerdict::Unreadable)
            });
            return done;
        }
        Ok(SportlinkRead::Unknown { detail }) => {
            done.sportlink_state = "unknown";
            let detail = if member.in_rondo_club {
                detail.clone()
            } else {
                format!("{detail}; Rondo Club does not list the member either")
            };
            done.results.push(NewAuditResult {
                detail: Some(detail),
                ..NewAuditResult::new(AuditVerdict::UnknownInSportlink)
            });
            return done;
        }
        Ok(SportlinkRead::Found { former, values, .. }) => {
            if *former {
                done.sportlink_state = "former";
            }
            values
        }
    };
    let Some(rondo_values) = rondo_values else {
        done.results.push(NewAuditResult {
            detail: Some(
                "Sportlink has the member; Rondo Club does not list it (the service saw it before)"
                    .into(),
            ),
            ..NewAuditResult::new(AuditVerdict::UnknownInRondoClub)
        });
        return done;
    };
    let former_note =
        (done.sportlink_state == "former").then_some("Sportlink shows \"Oud bondslid\"");
    for spec in catalogue.fields() {
        let name = &spec.name;
        let (sportlink_modified, field_rc_modified) = context
            .timestamps
            .get(name)
            .copied()
            .unwrap_or((None, None));
        let rondo = rondo_values.get(name).cloned();
        let mut result = NewAuditResult {
            field: Some(name.clone()),
            rondo_club_value: rondo.clone(),
            ..NewAuditResult::new(AuditVerdict::Unreadable)
        };
        result.verdict = match (found.get(name), rondo) {
            (None, _) | (Some(Err(_)), _) => {
                result.detail = Some(match found.get(name) {
                    Some(Err(why)) => format!("Sportlink: {why}"),
                    _ => "Sportlink: not read".into(),
                });
                AuditVerdict::Unreadable
            }
            (Some(Ok(_)), None) => {
                result.detail = Some("Rondo Club's answer does not give this field".into());
                AuditVerdict::Unreadable
            }
            (Some(Ok(raw)), Some(rondo)) => {
                let sportlink = spec.kind.normalise(raw);
                result.sportlink_value = Some(sportlink.clone());
                if sportlink == spec.kind.normalise(&rondo) {
                    AuditVerdict::Equal
                } else if let Some((id, _, new)) =
                    context.pending.iter().find(|(_, f, _)| f == name)
                {
                    result.pending_change_id = Some(*id);
                    result.detail = Some(format!("change {id} is pending (new value {new:?})"));
                    AuditVerdict::DiffersPending
                } else {
                    result.sportlink_modified = sportlink_modified;
                    result.rondo_club_modified = field_rc_modified.or(rondo_modified);
                    AuditVerdict::Differs
                }
            }
        };
        if let Some(note) = former_note {
            result.detail = Some(match result.detail.take() {
                Some(d) => format!("{d}; {note}"),
                None => note.to_owned(),
            });
        }
        done.results.push(result);
    }
    done
}

//! Pure grouping of alert events into digests, with the clock passed in: the first event about a
//! subject goes out after a short gathering window, later ones wait for the end of the cool-down
//! and go out together (lessons.md 15: one stuck member is one message, not one every run).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tokio::time::Instant;

use super::{AlertEvent, Subject};

/// Events kept per subject and digest; beyond this they are counted, not listed, so a flood cannot
/// grow memory without bound.
pub const MAX_EVENTS_PER_DIGEST: usize = 500;

/// An event with the time it was raised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stamped {
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub event: AlertEvent,
}

/// One message about one subject, listing every event gathered for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Digest {
    pub subject: Subject,
    pub events: Vec<Stamped>,
    /// Events left out of `events` because the digest was full.
    pub omitted: usize,
    /// How long later events about this subject are held back, so the reader knows.
    #[serde(skip)]
    pub cooldown: Duration,
}

#[derive(Debug, Default)]
struct SubjectState {
    last_sent: Option<Instant>,
    pending: Vec<Stamped>,
    omitted: usize,
    due: Option<Instant>,
}

/// The digest state of every subject that has pending events or is in its cool-down.
#[derive(Debug)]
pub struct Grouper {
    gather: Duration,
    cooldown: Duration,
    subjects: BTreeMap<Subject, SubjectState>,
}

impl Grouper {
    pub fn new(gather: Duration, cooldown: Duration) -> Self {
        Self {
            gather,
            cooldown,
            subjects: BTreeMap::new(),
        }
    }

    pub fn add(&mut self, stamped: Stamped, now: Instant) {
        let state = self.subjects.entry(stamped.event.subject()).or_default();
        if state.due.is_none() {
            let gathered = now + self.gather;
            state.due = Some(match state.last_sent {
                Some(sent) => gathered.max(sent + self.cooldown),
                None => gathered,
            });
        }
        if state.pending.len() < MAX_EVENTS_PER_DIGEST {
            state.pending.push(stamped);
        } else {
            state.omitted += 1;
        }
    }

    /// When the next digest is due, if any event is pending.
    pub fn next_due(&self) -> Option<Instant> {
        self.subjects.values().filter_map(|s| s.due).min()
    }

    /// The digests due at `now`; their subjects enter the cool-down.
    pub fn take_due(&mut self, now: Instant) -> Vec<Digest> {
        let cooldown = self.cooldown;
        let mut digests = Vec::new();
        for (subject, state) in &mut self.subjects {
            if state.due.is_some_and(|due| due <= now) {
                digests.push(take(subject, state, cooldown));
                state.last_sent = Some(now);
            }
        }
        // Forget subjects whose cool-down is over and that have nothing pending.
        self.subjects.retain(|_, s| {
            s.due.is_some() || s.last_sent.is_some_and(|sent| sent + cooldown > now)
        });
        digests
    }

    /// Every pending digest regardless of timing (shutdown).
    pub fn take_all(&mut self) -> Vec<Digest> {
        let cooldown = self.cooldown;
        let digests = self
            .subjects
            .iter_mut()
            .filter(|(_, s)| s.due.is_some())
            .map(|(subject, state)| take(subject, state, cooldown))
            .collect();
        self.subjects.clear();
        digests
    }
}

fn take(subject: &Subject, state: &mut SubjectState, cooldown: Duration) -> Digest {
    state.due = None;
    Digest {
        subject: subject.clone(),
        events: std::mem::take(&mut state.pending),
        omitted: std::mem::take(&mut state.omitted),
        cooldown,
    }
}

impl Digest {
    /// The one-line title: e-mail subject and the webhook's `title`.
    pub fn title(&self) -> String {
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        for s in &self.events {
            *counts.entry(s.event.summary_label()).or_default() += 1;
        }
        let counts = counts
            .iter()
            .map(|(label, n)| format!("{n} {label}"))
            .collect::<Vec<_>>()
            .join(", ");
        match &self.subject {
            Subject::Member(knvb_id) => format!("rondo-reverse-sync: member {knvb_id}: {counts}"),
            Subject::CircuitBreaker => format!("rondo-reverse-sync: circuit breaker: {counts}"),
            Subject::Test => "rondo-reverse-sync: test alert".to_string(),
        }
    }

    /// The plain-text body: every event on its own line.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}\n", self.title());
        for s in &self.events {
            let _ = writeln!(
                out,
                "- {}  {}",
                s.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                s.event
            );
        }
        if self.omitted > 0 {
            let _ = writeln!(
                out,
                "- ... and {} more events, left out of this digest",
                self.omitted
            );
        }
        let about = match self.subject {
            Subject::Member(_) => Some("member"),
            Subject::CircuitBreaker => Some("circuit breaker"),
            Subject::Test => None,
        };
        if let Some(about) = about {
            let _ = writeln!(
                out,
                "\nFurther alerts about this {about} are combined into one digest per {}.",
                HumanDuration(self.cooldown),
            );
        }
        if matches!(self.subject, Subject::Member(_)) {
            let _ = writeln!(
                out,
                "Failed and lost changes can be requeued on the operator page or with the admin API."
            );
        }
        out
    }

    /// The JSON body of the webhook transport.
    pub fn payload(&self) -> Payload<'_> {
        Payload {
            source: "rondo-reverse-sync",
            subject: &self.subject,
            title: self.title(),
            text: self.text(),
            events: &self.events,
            omitted: self.omitted,
        }
    }
}

/// What the webhook transport POSTs.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    pub source: &'static str,
    pub subject: &'a Subject,
    pub title: String,
    pub text: String,
    pub events: &'a [Stamped],
    pub omitted: usize,
}

struct HumanDuration(Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        match secs {
            0 => write!(f, "{} ms", self.0.as_millis()),
            s if s % 3_600 == 0 => write!(f, "{} h", s / 3_600),
            s if s % 60 == 0 => write!(f, "{} min", s / 60),
            s => write!(f, "{s} s"),
        }
    }
}

#[cfg(test)]
mod tests;

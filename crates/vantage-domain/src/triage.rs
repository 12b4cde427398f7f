//! The triage aggregate (stream `triage-<tenant>-<fingerprint>`): what people decided about one finding
//! fingerprint, and their comments. It spans scans, so triage carries over from one scan to the next.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain_events;
use crate::ids::{CommentId, ScanId};
use crate::{Aggregate, DomainError};

/// Longest triage note or comment, in characters.
pub const MAX_NOTE_CHARS: usize = 4000;

/// A finding fingerprint: 16–128 lowercase hex characters.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let ok = (16..=128).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::invalid(
                "fingerprint",
                "must be 16-128 lowercase hexadecimal characters",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Fingerprint {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Fingerprint> for String {
    fn from(fingerprint: Fingerprint) -> Self {
        fingerprint.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's decision about a finding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TriageState {
    #[default]
    Open,
    Acknowledged,
    FalsePositive,
    AcceptedRisk,
    Fixed,
}

/// Why a triage state was set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TriageReason {
    /// Somebody decided it.
    #[default]
    Decision,
    /// A finding triaged `fixed` was seen again by a scan, so the system reopened it.
    Regressed,
}

domain_events! {
    /// Everything that can happen to a fingerprint's triage.
    pub enum TriageEvent {
        TriageSet = 2,
        CommentAdded = 1,
        CommentDeleted = 1,
    }
}

/// The triage state of a fingerprint was set (v2 added why, and the scan behind a reopening).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TriageSet {
    pub fingerprint: Fingerprint,
    pub state: TriageState,
    pub previous: TriageState,
    pub note: Option<String>,
    pub reason: TriageReason,
    /// The scan that saw a finding triaged `fixed` again (reason `regressed`).
    pub scan_id: Option<ScanId>,
}

/// A comment was added to a fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CommentAdded {
    pub fingerprint: Fingerprint,
    pub comment_id: CommentId,
    pub body: String,
}

/// A comment was deleted (the log keeps it; read models drop it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CommentDeleted {
    pub fingerprint: Fingerprint,
    pub comment_id: CommentId,
}

/// A finding triaged `fixed` that a scan saw again: the system is to reopen it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueReopen {
    pub tenant: crate::tenant::TenantId,
    pub fingerprint: Fingerprint,
    pub scan_id: ScanId,
}

/// What can be asked of a fingerprint's triage.
#[derive(Debug, Clone, PartialEq)]
pub enum TriageCommand {
    Set {
        fingerprint: Fingerprint,
        state: TriageState,
        note: Option<String>,
    },
    AddComment {
        fingerprint: Fingerprint,
        comment_id: CommentId,
        body: String,
    },
    DeleteComment {
        fingerprint: Fingerprint,
        comment_id: CommentId,
    },
    /// The system: `scan_id` saw the finding again. Reopens it if it is triaged `fixed`; otherwise
    /// (somebody decided since, or it was reopened already) nothing happens.
    Reopen {
        fingerprint: Fingerprint,
        scan_id: ScanId,
    },
}

/// The folded triage of one fingerprint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Triage {
    pub state: TriageState,
    /// The note of the last decision (a repeat of the same decision appends nothing).
    pub note: Option<String>,
    /// Live comments, oldest first (ids are time-ordered UUIDv7).
    pub comments: BTreeMap<CommentId, String>,
    pub deleted_comments: Vec<CommentId>,
}

fn bounded_text(field: &'static str, text: &str, allow_empty: bool) -> Result<String, DomainError> {
    let trimmed = text.trim();
    if !allow_empty && trimmed.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if trimmed.chars().count() > MAX_NOTE_CHARS {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {MAX_NOTE_CHARS} characters"),
        ));
    }
    crate::text::plain(field, trimmed, true)?;
    Ok(trimmed.to_owned())
}

impl Aggregate for Triage {
    type Command = TriageCommand;
    type Event = TriageEvent;

    fn handle(&self, command: TriageCommand) -> Result<Vec<TriageEvent>, DomainError> {
        let event: TriageEvent = match command {
            TriageCommand::Set {
                fingerprint,
                state,
                note,
            } => {
                let note = note
                    .map(|n| bounded_text("note", &n, true))
                    .transpose()?
                    .filter(|n| !n.is_empty());
                // The same decision again (same state, no new note) changes nothing.
                if state == self.state && (note.is_none() || note == self.note) {
                    return Ok(vec![]);
                }
                TriageSet {
                    fingerprint,
                    state,
                    previous: self.state,
                    note,
                    reason: TriageReason::Decision,
                    scan_id: None,
                }
                .into()
            }
            TriageCommand::Reopen {
                fingerprint,
                scan_id,
            } => {
                if self.state != TriageState::Fixed {
                    return Ok(vec![]);
                }
                TriageSet {
                    fingerprint,
                    state: TriageState::Open,
                    previous: TriageState::Fixed,
                    note: None,
                    reason: TriageReason::Regressed,
                    scan_id: Some(scan_id),
                }
                .into()
            }
            TriageCommand::AddComment {
                fingerprint,
                comment_id,
                body,
            } => {
                if self.comments.contains_key(&comment_id)
                    || self.deleted_comments.contains(&comment_id)
                {
                    return Err(DomainError::AlreadyExists("comment"));
                }
                CommentAdded {
                    fingerprint,
                    comment_id,
                    body: bounded_text("body", &body, false)?,
                }
                .into()
            }
            TriageCommand::DeleteComment {
                fingerprint,
                comment_id,
            } => {
                if !self.comments.contains_key(&comment_id) {
                    return Err(DomainError::NotFound("comment"));
                }
                CommentDeleted {
                    fingerprint,
                    comment_id,
                }
                .into()
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &TriageEvent) {
        match event {
            TriageEvent::TriageSet(set) => {
                self.state = set.state;
                self.note = set.note.clone();
            }
            TriageEvent::CommentAdded(added) => {
                self.comments.insert(added.comment_id, added.body.clone());
            }
            TriageEvent::CommentDeleted(deleted) => {
                self.comments.remove(&deleted.comment_id);
                self.deleted_comments.push(deleted.comment_id);
            }
        }
    }
}

//! The aggregate contract and the one error type for rejected commands.
//!
//! An aggregate is a consistency boundary: `handle` decides which events a command produces from the
//! current state alone, `apply` folds an event into the state. Both are pure and synchronous; technical
//! failures (a store that is down) cannot happen here and have no variant here.

use crate::event::DomainEvent;

/// A pure, event-sourced consistency boundary.
pub trait Aggregate: Default + Clone + Send + Sync + 'static {
    /// Whether the command pipeline may keep this aggregate's folded state between commands (and
    /// then read only the events appended since). Off for aggregates whose states are large.
    const CACHE_STATE: bool = true;

    /// What a caller asks the aggregate to do.
    type Command;
    /// What the aggregate records when it agrees.
    type Event: DomainEvent;

    /// Decide. An empty vector means "already done" (an idempotent repeat), not a rejection.
    fn handle(&self, command: Self::Command) -> Result<Vec<Self::Event>, DomainError>;

    /// Fold one recorded event into the state.
    fn apply(&mut self, event: &Self::Event);

    /// Rebuilds the state from a history of events.
    fn from_history<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        let mut state = Self::default();
        for event in events {
            state.apply(event);
        }
        state
    }
}

/// A command the domain refused. Each variant has a stable machine-readable [`DomainError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The addressed resource does not exist (or was deleted).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The resource the command would create already exists.
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    /// The scan is in a terminal state and cannot change any more.
    #[error("the scan is already {status} and cannot change")]
    ScanTerminal { status: &'static str },
    /// The scan is still queued or running; it must end first.
    #[error("the scan is still {status}; cancel it or wait for it to finish first")]
    ScanActive { status: &'static str },
    /// The worker event does not fit the scan's lifecycle (e.g. an observation before ScanStarted).
    #[error("a {event} event is not allowed while the scan is {status}")]
    OutOfOrder {
        event: &'static str,
        status: &'static str,
    },
    /// Revoking this key would leave the tenant without an active admin key.
    #[error(
        "this is the tenant's last active admin key; issue another admin key before revoking it"
    )]
    LastAdminKey,
    /// The API key was revoked before.
    #[error("the API key is already revoked")]
    KeyAlreadyRevoked,
    /// The target may not be contacted: it is not on the public internet (the SSRF guard's verdict).
    #[error("target refused: {reason}")]
    TargetRefused { reason: String },
    /// The tenant was erased: its keys authenticate nothing and no key is issued for it again.
    #[error("the tenant was erased; nothing can be done in its name any more")]
    TenantErased,
    /// A value inside the command breaks a rule (field, reason).
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl DomainError {
    /// The stable code clients match on; part of the public API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::AlreadyExists(_) => "already_exists",
            Self::ScanTerminal { .. } => "scan_terminal",
            Self::ScanActive { .. } => "scan_active",
            Self::OutOfOrder { .. } => "out_of_order",
            Self::LastAdminKey => "last_admin_key",
            Self::KeyAlreadyRevoked => "key_already_revoked",
            Self::TenantErased => "tenant_erased",
            Self::TargetRefused { .. } => "target_refused",
            Self::Invalid { .. } => "invalid_command",
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

//! The one error type of the store boundary.

/// What can go wrong talking to an event store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream was not at the expected version: somebody else appended first. Retry or report 409.
    #[error("stream {stream} is at version {actual}, expected {expected}")]
    Conflict {
        stream: String,
        expected: String,
        actual: u64,
    },
    /// The request is not something the store can hold (empty append, a payload that is not an object…).
    #[error("invalid append: {0}")]
    Invalid(String),
    /// A stored row could not be decoded; the log or schema is damaged.
    #[error("corrupt event at {location}: {reason}")]
    Corrupt { location: String, reason: String },
    /// The database failed or is unreachable.
    #[error("event store unavailable: {0}")]
    Backend(String),
    /// The database answers but cannot write: its disk is full or read-only. Nothing already written
    /// is affected; writes work again once the operator frees space or makes it writable.
    #[error("event store cannot write: {0}")]
    Unwritable(String),
}

impl StoreError {
    pub fn backend(error: impl std::fmt::Display) -> Self {
        Self::Backend(error.to_string())
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }
}

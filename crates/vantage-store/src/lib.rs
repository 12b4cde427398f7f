//! The event log contract: the envelope every event is stored in, the hash chain that makes the log
//! tamper-evident, the [`EventStore`] trait both databases implement, and what is built on top of the
//! trait alone (catch-up-then-live subscriptions, chain verification).
//!
//! This crate contains no SQL and knows no database: implementations live in `vantage-store-sqlite` and
//! `vantage-store-postgres`, and both pass one contract suite (`tests/store_contract.rs`). It knows no
//! domain event types either: payloads are JSON here, typed in the application layer.

mod chain;
mod envelope;
mod error;
mod idempotency;
mod secrets;
mod subscription;
mod verify;

pub use chain::{GENESIS_HASH, chain_hash, content_hash};
pub use envelope::{
    AppendOutcome, EventMetadata, ExpectedVersion, JsonPayload, NewEvent, RecordedEvent,
    StoredEvent, StreamName,
};
pub use error::StoreError;
pub use idempotency::{
    IDEMPOTENCY_CLAIM_TIMEOUT, IDEMPOTENCY_TTL, IdempotencyBegin, IdempotencyRow, IdempotencyStore,
    StoredResponse, decide_begin,
};
pub use secrets::{SecretStore, SideStore};
pub use subscription::{Subscription, SubscriptionOptions, subscribe_all};
pub use verify::{ChainBreak, VerifyReport, verify_chain};

use async_trait::async_trait;
use tokio::sync::watch;

/// An append-only, globally ordered, hash-chained event log.
///
/// Guarantees every implementation gives (and the contract suite checks):
/// - `append` is atomic: all of its events are stored, or none, and the stream's version moves from
///   `expected` to `expected + n`; a different current version is [`StoreError::Conflict`].
/// - `read_all` returns events by strictly increasing, gapless `global_position`, and a reader that has
///   read up to position N never later finds an event at a position ≤ N.
/// - every stored event carries the hash of its predecessor in that global order.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` if its current version is `expected`.
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Every event of one stream, by stream version (including events not yet globally ordered).
    async fn read_stream(&self, stream: &StreamName) -> Result<Vec<StoredEvent>, StoreError> {
        self.read_stream_from(stream, 0).await
    }

    /// The events of one stream whose stream version is above `version`, by stream version
    /// (including events not yet globally ordered): what was appended after a reader's last look.
    async fn read_stream_from(
        &self,
        stream: &StreamName,
        version: u64,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// Up to `limit` globally ordered events with `global_position > after`.
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The events of one stream that are globally ordered and lie after `after`, by position: what
    /// `read_all` would return of this stream, without reading the others.
    async fn read_stream_after(
        &self,
        stream: &StreamName,
        after: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The highest global position readers can see now (0 when the log is empty).
    async fn head_position(&self) -> Result<u64, StoreError>;

    /// A signal that changes whenever new events may have become readable. Subscribers re-read on it;
    /// it may fire spuriously and they also poll, so a lost wake-up delays but never loses events.
    fn wakeups(&self) -> watch::Receiver<u64>;

    /// Whether the store is reachable now (for `/ready`).
    async fn ping(&self) -> Result<(), StoreError>;
}

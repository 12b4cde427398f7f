//! `Idempotency-Key` support: the first response to a keyed request is kept for 24 hours and given back
//! to every repeat. The table lives beside the event log, in the same database, but is not part of it:
//! it is a cache of responses, never a source of truth.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// How long a key's first response is given back.
pub const IDEMPOTENCY_TTL: TimeDelta = TimeDelta::hours(24);
/// How long a claimed key may stay without a response before another request may take it over
/// (the first one crashed).
pub const IDEMPOTENCY_CLAIM_TIMEOUT: TimeDelta = TimeDelta::seconds(60);

/// A response kept for replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
}

/// What [`IdempotencyStore::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// The key is new (or expired): the caller owns it and must `complete` or `release` it.
    Started,
    /// The key was used before with the same request: give this back.
    Replay(StoredResponse),
    /// The same key is being processed right now by another request.
    InProgress,
    /// The key was used before with a different request body or route.
    Mismatch,
}

/// Claims and records idempotency keys, per tenant.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims `key` for a request whose method, path and body hash to `request_hash`.
    async fn begin(
        &self,
        tenant: &str,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<IdempotencyBegin, StoreError>;

    /// Records the response of a claimed key.
    async fn complete(
        &self,
        tenant: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError>;

    /// Gives a claimed key up (the request failed in a way a retry may fix).
    async fn release(&self, tenant: &str, key: &str) -> Result<(), StoreError>;

    /// Forgets every key of `tenant` with the responses kept for them (an erased tenant's replies
    /// may quote what it wrote). Returns how many were forgotten.
    async fn forget_tenant(&self, tenant: &str) -> Result<u64, StoreError>;
}

/// A key's row as both stores read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRow {
    pub request_hash: String,
    pub response_status: Option<i64>,
    pub response_body: Option<String>,
    pub response_location: Option<String>,
    pub claimed_at: DateTime<Utc>,
}

impl IdempotencyRow {
    fn response(self) -> Option<StoredResponse> {
        let status = self.response_status?;
        Some(StoredResponse {
            status: u16::try_from(status).unwrap_or(500),
            body: self.response_body.unwrap_or_default(),
            location: self.response_location,
        })
    }
}

/// The decision both stores share once they have the row for a key (if any).
pub fn decide_begin(
    row: Option<IdempotencyRow>,
    request_hash: &str,
    now: DateTime<Utc>,
) -> IdempotencyBegin {
    let Some(row) = row else {
        return IdempotencyBegin::Started;
    };
    if row.request_hash != request_hash {
        return IdempotencyBegin::Mismatch;
    }
    let claimed_at = row.claimed_at;
    match row.response() {
        Some(response) => IdempotencyBegin::Replay(response),
        None if now - claimed_at > IDEMPOTENCY_CLAIM_TIMEOUT => IdempotencyBegin::Started,
        None => IdempotencyBegin::InProgress,
    }
}

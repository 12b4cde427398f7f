//! The hash chain. Two hashes per event:
//! - the *content hash*, SHA-256 over every envelope field and the exact payload text, computed when
//!   the event is appended;
//! - the *chain hash*, SHA-256 over the predecessor's chain hash, the event's global position and its
//!   content hash, computed when the event takes its place in the global order.
//!
//! Editing any field of any event changes its content hash; deleting, inserting or reordering events
//! breaks the chain. Fields are length-prefixed so no two different envelopes hash alike.

use chrono::SecondsFormat;
use sha2::{Digest, Sha256};

use crate::StoredEvent;

/// The predecessor hash of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// SHA-256 (hex) over every envelope field of `event` except the hashes themselves.
pub fn content_hash(event: &StoredEvent) -> String {
    let mut hasher = Sha256::new();
    field(&mut hasher, b"vantage-event-v1");
    field(&mut hasher, event.event_id.as_bytes());
    field(&mut hasher, event.stream.as_bytes());
    field(&mut hasher, &event.stream_version.to_le_bytes());
    field(&mut hasher, event.event_type.as_bytes());
    field(&mut hasher, &event.schema_version.to_le_bytes());
    let micros = |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
    field(&mut hasher, micros(&event.occurred_at).as_bytes());
    field(&mut hasher, micros(&event.recorded_at).as_bytes());
    let meta = &event.metadata;
    field(&mut hasher, meta.tenant.as_bytes());
    field(&mut hasher, meta.actor.as_bytes());
    field(
        &mut hasher,
        meta.request_id.as_deref().unwrap_or("").as_bytes(),
    );
    field(&mut hasher, meta.correlation_id.as_bytes());
    field(
        &mut hasher,
        meta.causation_id
            .map(|id| *id.as_bytes())
            .unwrap_or_default()
            .as_slice(),
    );
    field(&mut hasher, event.payload.as_str().as_bytes());
    hex::encode(hasher.finalize())
}

/// SHA-256 (hex) linking an event at `position` to its predecessor.
pub fn chain_hash(prev_hash: &str, position: u64, content_hash: &str) -> String {
    let mut hasher = Sha256::new();
    field(&mut hasher, prev_hash.as_bytes());
    field(&mut hasher, &position.to_le_bytes());
    field(&mut hasher, content_hash.as_bytes());
    hex::encode(hasher.finalize())
}

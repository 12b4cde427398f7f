//! The event envelope of SPEC §3: what is appended ([`NewEvent`]), what a stream holds
//! ([`StoredEvent`]) and what the global log holds ([`RecordedEvent`]).

use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::StoreError;

/// Longest stream name, in bytes.
pub const MAX_STREAM_NAME: usize = 200;

/// A stream name such as `scan-0190…` or `triage-acme-<fingerprint>`: 1–200 printable ASCII bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamName(String);

impl StreamName {
    pub fn new(name: impl Into<String>) -> Result<Self, StoreError> {
        let name = name.into();
        let ok = (1..=MAX_STREAM_NAME).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(name))
        } else {
            Err(StoreError::Invalid(format!(
                "stream name {name:?} must be 1-{MAX_STREAM_NAME} printable ASCII bytes"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event payload: a JSON object kept as its exact text. The text is what is hashed and stored, and
/// consumers decode typed events straight from it, without an intermediate JSON tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JsonPayload(Box<RawValue>);

impl JsonPayload {
    /// Takes JSON text, checking that it is a JSON object.
    pub fn from_text(text: String) -> Result<Self, StoreError> {
        if !text.trim_start().starts_with('{') {
            return Err(StoreError::Invalid(
                "an event payload must be a JSON object".into(),
            ));
        }
        RawValue::from_string(text)
            .map(Self)
            .map_err(|e| StoreError::Invalid(format!("payload is not JSON: {e}")))
    }

    /// Serialises a JSON value as a payload.
    pub fn from_value(value: &Value) -> Result<Self, StoreError> {
        Self::from_text(value.to_string())
    }

    /// The exact JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The payload parsed into a JSON value.
    pub fn to_value(&self) -> Result<Value, StoreError> {
        serde_json::from_str(self.as_str()).map_err(|e| StoreError::Corrupt {
            location: "payload".into(),
            reason: e.to_string(),
        })
    }
}

impl PartialEq for JsonPayload {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

/// The stream version an append expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the current version is (still atomic, still ordered).
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must hold exactly this many events.
    Exact(u64),
}

impl ExpectedVersion {
    pub fn admits(self, actual: u64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == 0,
            Self::Exact(version) => actual == version,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::NoStream => f.write_str("no stream"),
            Self::Exact(version) => write!(f, "{version}"),
        }
    }
}

/// Who did it and why: the audit part of the envelope, shared by all events of one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    pub tenant: String,
    /// An API key id, a worker id or `system`.
    pub actor: String,
    pub request_id: Option<String>,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
}

/// An event to append. Its id and time are chosen by the caller (the application's id and clock seams).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub occurred_at: DateTime<Utc>,
    pub payload: JsonPayload,
    pub metadata: EventMetadata,
}

/// An event as its stream holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub event_id: Uuid,
    pub stream: String,
    pub stream_version: u64,
    pub event_type: String,
    pub schema_version: u32,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    #[serde(flatten)]
    pub metadata: EventMetadata,
    /// The exact JSON text that was hashed and stored.
    pub payload: JsonPayload,
    /// SHA-256 over every field above (see [`crate::content_hash`]).
    pub content_hash: String,
}

/// An event in the global log: its position and its link in the hash chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub global_position: u64,
    pub prev_hash: String,
    /// `chain_hash(prev_hash, global_position, content_hash)`.
    pub hash: String,
    #[serde(flatten)]
    pub event: StoredEvent,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The stream's version after the append (its event count).
    pub stream_version: u64,
    /// Positions of the appended events, when the store assigns them at append time (SQLite). The
    /// PostgreSQL store orders events after commit and returns `None`.
    pub first_position: Option<u64>,
}

/// Times are stored with microsecond precision everywhere (PostgreSQL's), so what is hashed at append
/// time is exactly what is read back.
pub fn storage_time(time: DateTime<Utc>) -> DateTime<Utc> {
    time.trunc_subsecs(6)
}

impl NewEvent {
    /// Checks what every store refuses alike.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.event_type.is_empty() || self.event_type.len() > 100 {
            return Err(StoreError::Invalid("event type must be 1-100 bytes".into()));
        }
        if self.metadata.tenant.is_empty() || self.metadata.actor.is_empty() {
            return Err(StoreError::Invalid("tenant and actor are required".into()));
        }
        Ok(())
    }

    /// Turns this into the stored form at `stream`/`stream_version`, hashing its content.
    pub fn into_stored(
        self,
        stream: &StreamName,
        stream_version: u64,
        recorded_at: DateTime<Utc>,
    ) -> Result<StoredEvent, StoreError> {
        self.validate()?;
        let mut event = StoredEvent {
            event_id: self.event_id,
            stream: stream.as_str().to_owned(),
            stream_version,
            event_type: self.event_type,
            schema_version: self.schema_version,
            occurred_at: storage_time(self.occurred_at),
            recorded_at: storage_time(recorded_at),
            metadata: self.metadata,
            payload: self.payload,
            content_hash: String::new(),
        };
        event.content_hash = crate::content_hash(&event);
        Ok(event)
    }
}

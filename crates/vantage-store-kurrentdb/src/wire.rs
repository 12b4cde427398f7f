//! How Vantage's log is laid out in KurrentDB, and nothing that talks to a server: stream names,
//! the bodies of stream events and of log entries, revision arithmetic, and the pure sequencing step
//! that turns newly written stream events into the next links of the hash chain.
//!
//! Layout, for a namespace `ns` (one per deployment; tests use one per run):
//! - every Vantage stream `s` is the KurrentDB stream `ns:s`, one KurrentDB event per Vantage event,
//!   its KurrentDB event id the Vantage event id and its type the Vantage event type;
//! - the global log is the KurrentDB stream `ns#log`: its event at revision `r` is the log entry of
//!   global position `r + 1`, a copy of the stream event with its hash-chain link and the `$all`
//!   position of the stream event it was made from (where the sequencer resumes).

use chrono::{DateTime, Utc};
use kurrentdb::{CurrentRevision, Position, StreamState};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vantage_store::{
    EventMetadata, ExpectedVersion, JsonPayload, RecordedEvent, StoreError, StoredEvent, chain_hash,
};

/// Longest namespace, in bytes (KurrentDB stream names are not bounded, Vantage's are).
const MAX_NAMESPACE: usize = 40;

/// The KurrentDB stream names of one namespace.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    namespace: String,
}

impl Names {
    /// A namespace is 1–40 ASCII letters, digits, `-` or `_`: nothing that could be mistaken for the
    /// separators `:` and `#`, or for a KurrentDB system stream (`$…`).
    pub(crate) fn new(namespace: &str) -> Result<Self, StoreError> {
        let ok = (1..=MAX_NAMESPACE).contains(&namespace.len())
            && namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self {
                namespace: namespace.to_owned(),
            })
        } else {
            Err(StoreError::Invalid(format!(
                "KurrentDB namespace {namespace:?} must be 1-{MAX_NAMESPACE} ASCII letters, digits, - or _"
            )))
        }
    }

    /// The KurrentDB stream that holds Vantage stream `stream`.
    pub(crate) fn stream(&self, stream: &str) -> String {
        format!("{}{stream}", self.stream_prefix())
    }

    /// What every Vantage stream's KurrentDB name starts with (the `$all` filter of the sequencer).
    pub(crate) fn stream_prefix(&self) -> String {
        format!("{}:", self.namespace)
    }

    /// The Vantage stream name of KurrentDB stream `kurrent`, if it is one of this namespace's.
    pub(crate) fn vantage_stream<'a>(&self, kurrent: &'a str) -> Option<&'a str> {
        kurrent
            .strip_prefix(self.namespace.as_str())?
            .strip_prefix(':')
    }

    /// The KurrentDB stream that holds the global log.
    pub(crate) fn log(&self) -> String {
        format!("{}#log", self.namespace)
    }
}

/// The KurrentDB revision (0-based index) of the event at stream version `version` (1-based count).
pub(crate) fn revision_of(version: u64) -> Option<u64> {
    version.checked_sub(1)
}

/// A stream holding `version` events, as KurrentDB's optimistic-concurrency state.
pub(crate) fn stream_state(version: u64) -> StreamState {
    match revision_of(version) {
        None => StreamState::NoStream,
        Some(revision) => StreamState::StreamRevision(revision),
    }
}

/// A KurrentDB stream's current revision as a Vantage stream version (its event count).
pub(crate) fn version_of(current: CurrentRevision) -> u64 {
    match current {
        CurrentRevision::NoStream => 0,
        CurrentRevision::Current(revision) => revision + 1,
    }
}

/// The version an append must find, when the caller named one (`Any` is resolved by reading first).
pub(crate) fn known_base(expected: ExpectedVersion) -> Option<u64> {
    match expected {
        ExpectedVersion::Any => None,
        ExpectedVersion::NoStream => Some(0),
        ExpectedVersion::Exact(version) => Some(version),
    }
}

/// A Vantage event as stored in its KurrentDB stream: every envelope field except the stream and
/// its version, which the KurrentDB stream and revision already say.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EventBody {
    pub(crate) event_id: Uuid,
    pub(crate) event_type: String,
    pub(crate) schema_version: u32,
    pub(crate) occurred_at: DateTime<Utc>,
    pub(crate) recorded_at: DateTime<Utc>,
    pub(crate) metadata: EventMetadata,
    pub(crate) payload: JsonPayload,
    pub(crate) content_hash: String,
}

impl EventBody {
    pub(crate) fn of(event: &StoredEvent) -> Self {
        Self {
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            occurred_at: event.occurred_at,
            recorded_at: event.recorded_at,
            metadata: event.metadata.clone(),
            payload: event.payload.clone(),
            content_hash: event.content_hash.clone(),
        }
    }

    pub(crate) fn into_stored(self, stream: &str, stream_version: u64) -> StoredEvent {
        StoredEvent {
            event_id: self.event_id,
            stream: stream.to_owned(),
            stream_version,
            event_type: self.event_type,
            schema_version: self.schema_version,
            occurred_at: self.occurred_at,
            recorded_at: self.recorded_at,
            metadata: self.metadata,
            payload: self.payload,
            content_hash: self.content_hash,
        }
    }
}

fn corrupt(location: impl Into<String>, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        location: location.into(),
        reason: reason.to_string(),
    }
}

/// Decodes an event read from the KurrentDB stream of Vantage stream `stream`.
pub(crate) fn decode_event(
    stream: &str,
    event: &kurrentdb::RecordedEvent,
) -> Result<StoredEvent, StoreError> {
    let location = || format!("{stream} revision {}", event.revision);
    let body: EventBody =
        serde_json::from_slice(&event.data).map_err(|e| corrupt(location(), e))?;
    if body.event_id != event.id {
        return Err(corrupt(
            location(),
            format!("body names event {}, KurrentDB {}", body.event_id, event.id),
        ));
    }
    Ok(body.into_stored(stream, event.revision + 1))
}

/// A position in `$all`, as a log entry remembers its source event's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct SourcePosition {
    pub(crate) commit: u64,
    pub(crate) prepare: u64,
}

impl From<Position> for SourcePosition {
    fn from(position: Position) -> Self {
        Self {
            commit: position.commit,
            prepare: position.prepare,
        }
    }
}

impl From<SourcePosition> for Position {
    fn from(position: SourcePosition) -> Self {
        Self {
            commit: position.commit,
            prepare: position.prepare,
        }
    }
}

/// One event of the global log stream: a globally ordered copy of a stream event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LogEntry {
    /// Where the stream event lies in `$all`.
    pub(crate) source: SourcePosition,
    pub(crate) stream: String,
    pub(crate) stream_version: u64,
    pub(crate) prev_hash: String,
    pub(crate) hash: String,
    pub(crate) event: EventBody,
}

/// The KurrentDB event type of log entries.
pub(crate) const LOG_ENTRY_TYPE: &str = "vantage.sequenced";

/// Namespace of the ids of log entries (UUID v5 over the stream event's id), so that a sequencer
/// that retries a write it is unsure of is deduplicated by KurrentDB instead of ordering an event twice.
const LOG_ENTRY_IDS: Uuid = Uuid::from_u128(0x6c0a_77e2_4b8e_4d2b_9f5e_1e2f_0c8a_5d31);

impl LogEntry {
    pub(crate) fn entry_id(&self) -> Uuid {
        Uuid::new_v5(&LOG_ENTRY_IDS, self.event.event_id.as_bytes())
    }

    pub(crate) fn to_event_data(&self) -> Result<kurrentdb::EventData, StoreError> {
        kurrentdb::EventData::json(LOG_ENTRY_TYPE, self)
            .map(|data| data.id(self.entry_id()))
            .map_err(|e| StoreError::Invalid(format!("encoding a log entry: {e}")))
    }

    /// Decodes the log stream's event at `revision` into the event at global position `revision + 1`.
    pub(crate) fn decode(
        revision: u64,
        data: &[u8],
    ) -> Result<(SourcePosition, RecordedEvent), StoreError> {
        let position = revision + 1;
        let entry: LogEntry = serde_json::from_slice(data)
            .map_err(|e| corrupt(format!("global position {position}"), e))?;
        Ok((entry.source, entry.into_recorded(position)))
    }

    fn into_recorded(self, global_position: u64) -> RecordedEvent {
        RecordedEvent {
            global_position,
            prev_hash: self.prev_hash,
            hash: self.hash,
            event: self.event.into_stored(&self.stream, self.stream_version),
        }
    }
}

/// Where the log ends: its last position (0 when empty), that event's hash, and the `$all` position
/// of the last stream event it orders (none when empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogTail {
    pub(crate) head: u64,
    pub(crate) hash: String,
    pub(crate) source: Option<SourcePosition>,
}

impl LogTail {
    pub(crate) fn empty() -> Self {
        Self {
            head: 0,
            hash: vantage_store::GENESIS_HASH.to_owned(),
            source: None,
        }
    }
}

/// Links `events` (stream events in `$all` order, each with its `$all` position) after `tail`: the
/// log entries to append, in order, each chained to its predecessor.
pub(crate) fn sequence(
    tail: &LogTail,
    events: impl IntoIterator<Item = (SourcePosition, StoredEvent)>,
) -> Vec<LogEntry> {
    let mut prev_hash = tail.hash.clone();
    let mut position = tail.head;
    events
        .into_iter()
        .map(|(source, event)| {
            position += 1;
            let hash = chain_hash(&prev_hash, position, &event.content_hash);
            LogEntry {
                source,
                stream: event.stream.clone(),
                stream_version: event.stream_version,
                prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
                hash,
                event: EventBody::of(&event),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vantage_store::{GENESIS_HASH, NewEvent, StreamName};

    fn stored(stream: &str, version: u64, n: u128) -> StoredEvent {
        NewEvent {
            event_id: Uuid::from_u128(n),
            event_type: "ScanRequested".into(),
            schema_version: 1,
            occurred_at: DateTime::UNIX_EPOCH,
            payload: JsonPayload::from_text(format!("{{\"n\":{n}}}")).unwrap(),
            metadata: EventMetadata {
                tenant: "acme".into(),
                actor: "test".into(),
                request_id: None,
                correlation_id: Uuid::from_u128(7),
                causation_id: None,
            },
        }
        .into_stored(
            &StreamName::new(stream).unwrap(),
            version,
            DateTime::UNIX_EPOCH,
        )
        .unwrap()
    }

    #[test]
    fn names_round_trip_and_refuse_separators() {
        let names = Names::new("vt_1").unwrap();
        assert_eq!(names.stream("scan-1"), "vt_1:scan-1");
        assert_eq!(names.vantage_stream("vt_1:scan-1"), Some("scan-1"));
        assert_eq!(names.vantage_stream("vt_12:scan-1"), None);
        assert_eq!(names.vantage_stream(&names.log()), None);
        for bad in ["", "a:b", "a#b", "$all", &"x".repeat(41)] {
            assert!(Names::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn versions_and_revisions_are_off_by_one() {
        assert_eq!(stream_state(0), StreamState::NoStream);
        assert_eq!(stream_state(3), StreamState::StreamRevision(2));
        assert_eq!(version_of(CurrentRevision::NoStream), 0);
        assert_eq!(version_of(CurrentRevision::Current(2)), 3);
        assert_eq!(known_base(ExpectedVersion::NoStream), Some(0));
        assert_eq!(known_base(ExpectedVersion::Exact(4)), Some(4));
        assert_eq!(known_base(ExpectedVersion::Any), None);
    }

    #[test]
    fn sequencing_chains_from_the_tail_and_round_trips() {
        let events = vec![
            (
                SourcePosition {
                    commit: 10,
                    prepare: 10,
                },
                stored("a", 1, 1),
            ),
            (
                SourcePosition {
                    commit: 20,
                    prepare: 20,
                },
                stored("b", 1, 2),
            ),
        ];
        let entries = sequence(&LogTail::empty(), events.clone());
        assert_eq!(entries[0].prev_hash, GENESIS_HASH);
        assert_eq!(entries[1].prev_hash, entries[0].hash);
        assert_eq!(
            entries[1].hash,
            chain_hash(&entries[0].hash, 2, &events[1].1.content_hash)
        );
        for (revision, entry) in entries.iter().enumerate() {
            let bytes = serde_json::to_vec(entry).unwrap();
            let (source, recorded) = LogEntry::decode(revision as u64, &bytes).unwrap();
            assert_eq!(source, events[revision].0);
            assert_eq!(recorded.global_position, revision as u64 + 1);
            assert_eq!(recorded.event, events[revision].1);
            assert_eq!(recorded.hash, entry.hash);
        }
        // A later batch continues the chain where the tail left it.
        let tail = LogTail {
            head: 2,
            hash: entries[1].hash.clone(),
            source: Some(events[1].0),
        };
        let next = sequence(
            &tail,
            [(
                SourcePosition {
                    commit: 30,
                    prepare: 30,
                },
                stored("a", 2, 3),
            )],
        );
        assert_eq!(next[0].prev_hash, entries[1].hash);
        assert_eq!(
            next[0].hash,
            chain_hash(&entries[1].hash, 3, &next[0].event.content_hash)
        );
    }

    #[test]
    fn entry_ids_are_stable_per_event() {
        let events = [(
            SourcePosition {
                commit: 1,
                prepare: 1,
            },
            stored("a", 1, 9),
        )];
        let one = sequence(&LogTail::empty(), events.clone());
        let two = sequence(&LogTail::empty(), events);
        assert_eq!(one[0].entry_id(), two[0].entry_id());
        assert_ne!(one[0].entry_id(), one[0].event.event_id);
    }

    #[test]
    fn bodies_round_trip() {
        let body = EventBody::of(&stored("a", 1, 5));
        let bytes = serde_json::to_vec(&body).unwrap();
        let decoded: EventBody = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(decoded.into_stored("a", 1), stored("a", 1, 5));
    }
}

//! Domain events as stored data: their type names, schema versions, JSON encoding and upcasting.
//!
//! Every aggregate's event enum is declared with [`domain_events!`], which gives each variant a payload
//! struct of the same name (`ScanEvent::ScanRequested(ScanRequested)`), so the stored `event_type` is the
//! Rust type name and each payload has its own JSON Schema. Old payload versions are upcast here, on read,
//! by pure functions on JSON; stored events are never rewritten.

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

/// One entry of an event enum's catalog: the stored name, its current version, its JSON Schema.
#[derive(Debug, Clone, Copy)]
pub struct EventTypeInfo {
    pub event_type: &'static str,
    pub schema_version: u32,
    pub schema: fn() -> schemars::Schema,
}

/// A decoding failure: unknown type, a version from the future, or a payload that does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpcastError {
    #[error("unknown event type {0}")]
    UnknownType(String),
    #[error("{event_type} v{version} is newer than this build understands (v{current})")]
    FutureVersion {
        event_type: String,
        version: u32,
        current: u32,
    },
    #[error("{event_type} v{version}: {reason}")]
    BadPayload {
        event_type: String,
        version: u32,
        reason: String,
    },
}

/// An aggregate's event enum, encoded as (`event_type`, `schema_version`, JSON payload).
pub trait DomainEvent:
    Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync
{
    /// Every event type of this enum, with its current version and schema.
    const CATALOG: &'static [EventTypeInfo];

    /// The stored name of this event, e.g. `ScanRequested`.
    fn event_type(&self) -> &'static str;

    /// The current schema version of this event's type.
    fn schema_version(&self) -> u32 {
        let event_type = self.event_type();
        Self::CATALOG
            .iter()
            .find(|info| info.event_type == event_type)
            .map_or(1, |info| info.schema_version)
    }

    /// The payload as JSON text, without the type tag.
    fn payload_json(&self) -> String;

    /// The payload as a JSON value, without the type tag.
    fn to_payload(&self) -> Value;

    /// Decodes a payload of the current version of `event_type` straight from its text.
    fn from_current(event_type: &str, payload: &str) -> Result<Self, serde_json::Error>;

    /// Decodes an (upcast) payload value of `event_type`.
    fn from_value(event_type: &str, payload: Value) -> Result<Self, serde_json::Error>;

    /// Decodes a stored event. The current version is read straight from its text; an older one is
    /// upcast first.
    fn decode(event_type: &str, version: u32, payload: &str) -> Result<Self, UpcastError> {
        let info = Self::CATALOG
            .iter()
            .find(|info| info.event_type == event_type)
            .ok_or_else(|| UpcastError::UnknownType(event_type.to_owned()))?;
        let bad = |reason: String| UpcastError::BadPayload {
            event_type: event_type.to_owned(),
            version,
            reason,
        };
        if version > info.schema_version {
            return Err(UpcastError::FutureVersion {
                event_type: event_type.to_owned(),
                version,
                current: info.schema_version,
            });
        }
        if version == info.schema_version {
            return Self::from_current(event_type, payload).map_err(|e| bad(e.to_string()));
        }
        let value: Value = serde_json::from_str(payload).map_err(|e| bad(e.to_string()))?;
        let value = upcast(event_type, version, value)?;
        Self::from_value(event_type, value).map_err(|e| bad(e.to_string()))
    }
}

/// A field an older payload version lacks (a dotted path for a field of a nested object), and the
/// value it implicitly had.
type ImpliedField = (&'static str, fn() -> Value);

/// Brings a payload of `version` up to the current version of `event_type`, one step at a time.
///
/// Each step is a pure function and is never changed once released; a new shape is a new step.
pub fn upcast(event_type: &str, version: u32, mut payload: Value) -> Result<Value, UpcastError> {
    let mut version = version;
    loop {
        // The fields missing from this version, with the value they had implicitly.
        let defaults: &[ImpliedField] = match (event_type, version) {
            // v1 predates vantage points and scan profiles: every scan ran on the default pool with
            // the standard profile.
            ("ScanRequested", 1) => &[
                ("vantage_point", || Value::from("default")),
                ("profile", || Value::from("standard")),
            ],
            // v2 predates content samples: no scan kept any.
            ("ScanRequested", 2) => &[("content_sample", || Value::Null)],
            // v3 predates projects: every scan belonged to the tenant's default project.
            ("ScanRequested", 3) => &[("project", || Value::from("default"))],
            // v1 predates projects: every webhook reported the default project's scans.
            ("WebhookCreated", 1) => &[("project", || Value::from("default"))],
            // v2 predates projects: every key saw every project.
            ("ApiKeyIssued", 2) => &[("projects", || Value::Null)],
            // v1 predates observation versions: its data is version 1 of its observation type.
            ("ProbeObserved", 1) => &[("observation_version", || Value::from(1))],
            // v2 only admits a new scope (`content:read`): a v1 payload is a v2 one as it is.
            ("ApiKeyIssued", 1) => &[],
            // v2 only admits a new probe kind (`mta_sts`): a v1 payload is a v2 one as it is.
            ("ProbeFailed", 1) => &[],
            // v1 predates system reopenings: every state was somebody's decision.
            ("TriageSet", 1) => &[
                ("reason", || Value::from("decision")),
                ("scan_id", || Value::Null),
            ],
            // v1 predates cron cadences and disabled schedules: every schedule ran on its interval.
            ("ScheduleCreated", 1) => {
                &[("cron", || Value::Null), ("enabled", || Value::Bool(true))]
            }
            // v3 only admits content sampling in the schedule's scan spec (absent: none).
            ("ScheduleCreated", 2) => &[],
            // v3 predates projects: every schedule's scans belonged to the default project.
            ("ScheduleCreated", 3) => &[("spec.project", || Value::from("default"))],
            _ => return Ok(payload),
        };
        let Value::Object(mut fields) = payload else {
            return Err(UpcastError::BadPayload {
                event_type: event_type.to_owned(),
                version,
                reason: "payload is not an object".into(),
            });
        };
        for (path, value) in defaults {
            let mut object = &mut fields;
            let mut names = path.split('.').peekable();
            while let Some(name) = names.next() {
                if names.peek().is_none() {
                    object.entry(name).or_insert_with(value);
                } else if let Some(Value::Object(inner)) = object.get_mut(name) {
                    object = inner;
                } else {
                    return Err(UpcastError::BadPayload {
                        event_type: event_type.to_owned(),
                        version,
                        reason: format!("{name} is not an object"),
                    });
                }
            }
        }
        payload = Value::Object(fields);
        version += 1;
    }
}

/// Declares an aggregate's event enum: one variant per payload struct of the same name, with versions.
#[macro_export]
macro_rules! domain_events {
    ($(#[$meta:meta])* pub enum $name:ident { $($variant:ident = $version:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "event_type", content = "payload")]
        pub enum $name {
            $($variant($variant)),+
        }

        impl $crate::event::DomainEvent for $name {
            const CATALOG: &'static [$crate::event::EventTypeInfo] = &[
                $($crate::event::EventTypeInfo {
                    event_type: stringify!($variant),
                    schema_version: $version,
                    schema: || schemars::schema_for!($variant),
                }),+
            ];

            fn event_type(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($variant)),+
                }
            }

            fn payload_json(&self) -> String {
                // Serialising plain data structs to a string cannot fail.
                match self {
                    $(Self::$variant(payload) => serde_json::to_string(payload).unwrap_or_default()),+
                }
            }

            fn to_payload(&self) -> serde_json::Value {
                match self {
                    $(Self::$variant(payload) => serde_json::to_value(payload).unwrap_or_default()),+
                }
            }

            fn from_current(event_type: &str, payload: &str) -> Result<Self, serde_json::Error> {
                match event_type {
                    $(stringify!($variant) => serde_json::from_str::<$variant>(payload).map(Self::$variant),)+
                    other => Err(<serde_json::Error as serde::de::Error>::custom(format!("unknown event type {other}"))),
                }
            }

            fn from_value(event_type: &str, payload: serde_json::Value) -> Result<Self, serde_json::Error> {
                match event_type {
                    $(stringify!($variant) => serde_json::from_value::<$variant>(payload).map(Self::$variant),)+
                    other => Err(<serde_json::Error as serde::de::Error>::custom(format!("unknown event type {other}"))),
                }
            }
        }

        $(impl From<$variant> for $name {
            fn from(event: $variant) -> Self {
                Self::$variant(event)
            }
        })+
    };
}

/// What a personal field reads as once its tenant was erased.
pub const ERASED_TEXT: &str = "(erased)";

/// The fields of an event type's payload that hold what a person wrote (a triage note, a comment,
/// a key's name). The application seals them with the tenant's personal-data key before they are
/// appended and opens them when it folds a stream, so erasing the tenant (destroying that key) makes
/// them unreadable in the log, its exports and the read models alike. Each is a string, or an
/// optional string.
pub fn personal_fields(event_type: &str) -> &'static [&'static str] {
    match event_type {
        "TriageSet" => &["note"],
        "CommentAdded" => &["body"],
        "ApiKeyIssued" => &["name"],
        _ => &[],
    }
}

/// What may be shown of an event's payload outside the log — the audit trail, live streams:
/// credentials never appear (keys are stored hashed and webhook secrets encrypted, but neither is
/// shown), an observation is summarised by its probe and asset, and what a person wrote
/// ([`personal_fields`]) is left out.
pub fn public_details(event_type: &str, payload: &str) -> Value {
    let mut details = public_fields(event_type, payload);
    if let Value::Object(fields) = &mut details {
        for field in personal_fields(event_type) {
            fields.remove(*field);
        }
    }
    details
}

fn public_fields(event_type: &str, payload: &str) -> Value {
    use serde_json::json;
    let value: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
    match event_type {
        "ApiKeyIssued" => json!({
            "key_id": value["key_id"],
            "scopes": value["scopes"],
        }),
        "ApiKeyRotated" => json!({
            "key_id": value["key_id"],
            "previous_valid_until": value["previous_valid_until"],
        }),
        "WebhookCreated" | "WebhookUpdated" => json!({
            "url": value["url"],
            "events": value["events"],
        }),
        "ProbeObserved" => json!({
            "observation_id": value["observation_id"],
            "probe": value["probe"],
            "asset": value["asset"],
        }),
        // The sealed sample itself is never shown, not even as ciphertext.
        "ContentSampleKept" => json!({
            "url": value["url"],
            "status_code": value["status_code"],
            "sample_bytes": value["sample_bytes"],
        }),
        _ => value,
    }
}

/// Every event type of every aggregate, for schema generation and validation.
pub fn catalog() -> impl Iterator<Item = &'static EventTypeInfo> {
    use crate::{
        apikey::ApiKeyEvent, badge::BadgeEvent, notification::NotificationEvent,
        project::ProjectEvent, scan::ScanEvent, schedule::ScheduleEvent, triage::TriageEvent,
        webhook::WebhookEvent,
    };
    ScanEvent::CATALOG
        .iter()
        .chain(TriageEvent::CATALOG)
        .chain(ApiKeyEvent::CATALOG)
        .chain(WebhookEvent::CATALOG)
        .chain(ScheduleEvent::CATALOG)
        .chain(NotificationEvent::CATALOG)
        .chain(BadgeEvent::CATALOG)
        .chain(ProjectEvent::CATALOG)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every personal field names a string property of its event type's current schema, so a
    /// renamed field cannot silently go unsealed.
    #[test]
    fn personal_fields_name_string_properties_of_their_event_types() {
        let mut named = 0;
        for info in catalog() {
            for field in personal_fields(info.event_type) {
                let schema = serde_json::to_value((info.schema)()).unwrap();
                let property = &schema["properties"][*field];
                let types = property["type"].clone();
                let is_string = types == "string"
                    || types
                        .as_array()
                        .is_some_and(|t| t.iter().any(|t| t == "string"));
                assert!(is_string, "{}.{field}: {property}", info.event_type);
                named += 1;
            }
        }
        assert_eq!(named, 3);
    }

    #[test]
    fn public_details_leave_out_what_people_wrote() {
        let details = public_details(
            "CommentAdded",
            r#"{"fingerprint":"ab","comment_id":"x","body":"secret words"}"#,
        );
        assert_eq!(details["fingerprint"], "ab");
        assert!(details.get("body").is_none(), "{details}");
        let details = public_details(
            "ApiKeyIssued",
            r#"{"key_id":"k","name":"Carol's laptop","scopes":["admin"]}"#,
        );
        assert_eq!(details["key_id"], "k");
        assert!(details.get("name").is_none(), "{details}");
        let details = public_details("TriageSet", r#"{"state":"fixed","note":"by Alice"}"#);
        assert!(details.get("note").is_none(), "{details}");
    }
}

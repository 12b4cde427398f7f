//! Typed identifiers. They wrap UUIDs chosen outside the domain (UUIDv7 from the application's id
//! generator), so the domain never draws randomness itself.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($($(#[$meta:meta])* $name:ident),+ $(,)?) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    )+};
}

uuid_id!(
    /// A scan; its events live in stream `scan-<id>`.
    ScanId,
    /// An API key; part of the key token, its events live in the tenant's key registry.
    ApiKeyId,
    /// A webhook subscription; stream `webhook-<id>`.
    WebhookId,
    /// One outbound event's delivery to one webhook (all its attempts).
    DeliveryId,
    /// A scan schedule; stream `schedule-<id>`.
    ScheduleId,
    /// A comment on a finding fingerprint.
    CommentId,
    /// A notification (derived by the notifications projection).
    NotificationId,
    /// One observation of a probe; unique per scan, so redelivered jobs cannot duplicate it.
    ObservationId,
);

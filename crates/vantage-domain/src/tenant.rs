//! Tenants: the unit of isolation. Every stream, key and read-model row belongs to exactly one.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::DomainError;

/// A tenant slug: 1–63 characters of `a-z`, `0-9` and `-`, starting with a letter or digit.
///
/// The slug appears in stream names and API key tokens, so it never contains `_` or `.`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    /// The tenant that embedded installations start with.
    pub fn default_tenant() -> Self {
        Self("default".to_owned())
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if crate::text::is_slug(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::invalid(
                "tenant",
                "must be 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<TenantId> for String {
    fn from(tenant: TenantId) -> Self {
        tenant.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

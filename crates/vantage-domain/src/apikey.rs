//! The API key registry of one tenant (stream `apikeys-<tenant>`).
//!
//! All of a tenant's keys share one stream because "never revoke the last active admin key" is an
//! invariant over all of them, and an aggregate is the unit that can enforce an invariant atomically.
//! Secrets never enter the domain: commands carry only the SHA-256 of the secret.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain_events;
use crate::ids::ApiKeyId;
use crate::scope::Scopes;
use crate::tenant::TenantId;
use crate::{Aggregate, DomainError};

/// Longest key name, in characters.
pub const MAX_KEY_NAME_CHARS: usize = 100;

domain_events! {
    /// Everything that can happen to a tenant's API keys.
    pub enum ApiKeyEvent {
        ApiKeyIssued = 1,
        ApiKeyRevoked = 1,
    }
}

/// A key was issued. Only the hash of its secret is recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApiKeyIssued {
    pub key_id: ApiKeyId,
    pub tenant: TenantId,
    pub name: String,
    pub scopes: Scopes,
    /// Lowercase hex SHA-256 of the secret part of the token.
    pub secret_sha256: String,
}

/// A key was revoked; it authenticates nothing from now on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApiKeyRevoked {
    pub key_id: ApiKeyId,
}

/// What can be asked of a tenant's key registry.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiKeyCommand {
    Issue {
        key_id: ApiKeyId,
        tenant: TenantId,
        name: String,
        scopes: Scopes,
        secret_sha256: String,
    },
    Revoke {
        key_id: ApiKeyId,
    },
}

/// One key as the registry knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    pub name: String,
    pub scopes: Scopes,
    pub secret_sha256: String,
    pub revoked: bool,
}

/// The folded key registry of one tenant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiKeys {
    pub keys: BTreeMap<ApiKeyId, ApiKeyRecord>,
}

impl ApiKeys {
    pub fn active_admin_count(&self) -> usize {
        self.keys
            .values()
            .filter(|key| !key.revoked && key.scopes.is_admin())
            .count()
    }
}

impl Aggregate for ApiKeys {
    type Command = ApiKeyCommand;
    type Event = ApiKeyEvent;

    fn handle(&self, command: ApiKeyCommand) -> Result<Vec<ApiKeyEvent>, DomainError> {
        let event: ApiKeyEvent = match command {
            ApiKeyCommand::Issue {
                key_id,
                tenant,
                name,
                scopes,
                secret_sha256,
            } => {
                if self.keys.contains_key(&key_id) {
                    return Err(DomainError::AlreadyExists("api key"));
                }
                let name = name.trim().to_owned();
                if name.is_empty() || name.chars().count() > MAX_KEY_NAME_CHARS {
                    return Err(DomainError::invalid(
                        "name",
                        format!("must be 1-{MAX_KEY_NAME_CHARS} characters"),
                    ));
                }
                let hash_ok = secret_sha256.len() == 64
                    && secret_sha256
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                if !hash_ok {
                    return Err(DomainError::invalid(
                        "secret_sha256",
                        "must be a lowercase hex SHA-256",
                    ));
                }
                ApiKeyIssued {
                    key_id,
                    tenant,
                    name,
                    scopes,
                    secret_sha256,
                }
                .into()
            }
            ApiKeyCommand::Revoke { key_id } => {
                let key = self
                    .keys
                    .get(&key_id)
                    .ok_or(DomainError::NotFound("api key"))?;
                if key.revoked {
                    return Err(DomainError::KeyAlreadyRevoked);
                }
                if key.scopes.is_admin() && self.active_admin_count() <= 1 {
                    return Err(DomainError::LastAdminKey);
                }
                ApiKeyRevoked { key_id }.into()
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &ApiKeyEvent) {
        match event {
            ApiKeyEvent::ApiKeyIssued(issued) => {
                self.keys.insert(
                    issued.key_id,
                    ApiKeyRecord {
                        name: issued.name.clone(),
                        scopes: issued.scopes.clone(),
                        secret_sha256: issued.secret_sha256.clone(),
                        revoked: false,
                    },
                );
            }
            ApiKeyEvent::ApiKeyRevoked(revoked) => {
                if let Some(key) = self.keys.get_mut(&revoked.key_id) {
                    key.revoked = true;
                }
            }
        }
    }
}

//! The API key registry of one tenant (stream `apikeys-<tenant>`).
//!
//! All of a tenant's keys share one stream because "never revoke the last active admin key" is an
//! invariant over all of them, and an aggregate is the unit that can enforce an invariant atomically.
//! Secrets never enter the domain: commands carry only the SHA-256 of the secret.
//!
//! Erasing the tenant (`TenantErased`) is recorded here too, because from that event on no key of
//! the tenant authenticates and none can be issued, rotated or revoked: the registry is closed.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain_events;
use crate::ids::ApiKeyId;
use crate::project::{ProjectAccess, ProjectId};
use crate::scope::Scopes;
use crate::tenant::TenantId;
use crate::{Aggregate, DomainError};

/// Longest key name, in characters.
pub const MAX_KEY_NAME_CHARS: usize = 100;

domain_events! {
    /// Everything that can happen to a tenant's API keys.
    pub enum ApiKeyEvent {
        ApiKeyIssued = 3,
        ApiKeyRevoked = 1,
        ApiKeyRotated = 1,
        TenantErased = 1,
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
    /// The projects it is limited to (v3); `None`: every project of the tenant.
    pub projects: Option<BTreeSet<ProjectId>>,
}

/// A key was revoked; it authenticates nothing from now on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApiKeyRevoked {
    pub key_id: ApiKeyId,
}

/// A key got a new secret (same id, tenant, name and scopes). The secret it had keeps working until
/// `previous_valid_until`, so clients can switch without an outage; only hashes are recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApiKeyRotated {
    pub key_id: ApiKeyId,
    /// Lowercase hex SHA-256 of the new secret.
    pub secret_sha256: String,
    /// Until when the secret the key had before is still accepted.
    pub previous_valid_until: DateTime<Utc>,
}

/// The tenant was erased at its admin's request: its keys authenticate nothing from now on, its
/// personal text and content were made unreadable (their keys destroyed), and the registry takes no
/// command again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TenantErased {
    pub tenant: TenantId,
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
        /// `None`: every project; else at least one.
        projects: Option<BTreeSet<ProjectId>>,
    },
    Revoke {
        key_id: ApiKeyId,
    },
    /// A new secret; the current one keeps working until `previous_valid_until` (the caller's clock
    /// plus the grace period).
    Rotate {
        key_id: ApiKeyId,
        secret_sha256: String,
        previous_valid_until: DateTime<Utc>,
    },
    /// Close the registry for good (erasing the tenant); repeating it appends nothing.
    EraseTenant {
        tenant: TenantId,
    },
}

/// One key as the registry knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    pub name: String,
    pub scopes: Scopes,
    pub secret_sha256: String,
    pub revoked: bool,
    /// Which projects it may see.
    pub projects: ProjectAccess,
    /// The secret replaced by the last rotation, while it is still accepted.
    pub previous: Option<RetiredSecret>,
}

/// A rotated-out secret and until when it is still accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct RetiredSecret {
    pub secret_sha256: String,
    pub valid_until: DateTime<Utc>,
}

/// The folded key registry of one tenant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiKeys {
    pub keys: BTreeMap<ApiKeyId, ApiKeyRecord>,
    /// The tenant was erased: every key counts as revoked and no command is taken.
    pub erased: bool,
}

impl ApiKeys {
    pub fn active_admin_count(&self) -> usize {
        self.keys
            .values()
            .filter(|key| !key.revoked && key.scopes.is_admin())
            .count()
    }
}

/// A secret's hash must be lowercase hex SHA-256.
fn check_hash(secret_sha256: &str) -> Result<(), DomainError> {
    let hash_ok = secret_sha256.len() == 64
        && secret_sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hash_ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "secret_sha256",
            "must be a lowercase hex SHA-256",
        ))
    }
}

impl Aggregate for ApiKeys {
    type Command = ApiKeyCommand;
    type Event = ApiKeyEvent;

    fn handle(&self, command: ApiKeyCommand) -> Result<Vec<ApiKeyEvent>, DomainError> {
        if self.erased {
            return match command {
                ApiKeyCommand::EraseTenant { .. } => Ok(Vec::new()),
                _ => Err(DomainError::TenantErased),
            };
        }
        let event: ApiKeyEvent = match command {
            ApiKeyCommand::Issue {
                key_id,
                tenant,
                name,
                scopes,
                secret_sha256,
                projects,
            } => {
                if projects.as_ref().is_some_and(BTreeSet::is_empty) {
                    return Err(DomainError::invalid(
                        "projects",
                        "give at least one project, or none to allow every project",
                    ));
                }
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
                crate::text::plain("name", &name, false)?;
                check_hash(&secret_sha256)?;
                ApiKeyIssued {
                    key_id,
                    tenant,
                    name,
                    scopes,
                    secret_sha256,
                    projects,
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
            ApiKeyCommand::Rotate {
                key_id,
                secret_sha256,
                previous_valid_until,
            } => {
                let key = self
                    .keys
                    .get(&key_id)
                    .ok_or(DomainError::NotFound("api key"))?;
                if key.revoked {
                    return Err(DomainError::KeyAlreadyRevoked);
                }
                check_hash(&secret_sha256)?;
                ApiKeyRotated {
                    key_id,
                    secret_sha256,
                    previous_valid_until,
                }
                .into()
            }
            ApiKeyCommand::EraseTenant { tenant } => TenantErased { tenant }.into(),
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
                        projects: ProjectAccess::from_recorded(issued.projects.clone()),
                        previous: None,
                    },
                );
            }
            ApiKeyEvent::ApiKeyRevoked(revoked) => {
                if let Some(key) = self.keys.get_mut(&revoked.key_id) {
                    key.revoked = true;
                }
            }
            ApiKeyEvent::ApiKeyRotated(rotated) => {
                if let Some(key) = self.keys.get_mut(&rotated.key_id) {
                    let previous =
                        std::mem::replace(&mut key.secret_sha256, rotated.secret_sha256.clone());
                    key.previous = Some(RetiredSecret {
                        secret_sha256: previous,
                        valid_until: rotated.previous_valid_until,
                    });
                }
            }
            ApiKeyEvent::TenantErased(_) => {
                self.erased = true;
                for key in self.keys.values_mut() {
                    key.name = crate::event::ERASED_TEXT.to_owned();
                    key.revoked = true;
                    key.previous = None;
                }
            }
        }
    }
}

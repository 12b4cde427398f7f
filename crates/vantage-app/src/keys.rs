//! API keys: issuing (the secret is returned once and only its SHA-256 is recorded), revoking,
//! authenticating a presented token, and the bootstrap admin key of a fresh installation.
//!
//! Token format: `vtg_<tenant>_<key id, 32 hex>_<secret, 64 hex>`. The tenant and key id in the token
//! locate the key registry stream without any index; the secret proves possession. Secrets are 256
//! random bits, so a fast hash (SHA-256) is the right tool: there is nothing to brute-force.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use vantage_domain::DomainError;
use vantage_domain::apikey::{ApiKeyCommand, ApiKeys};
use vantage_domain::ids::ApiKeyId;
use vantage_domain::project::{ProjectAccess, ProjectId};
use vantage_domain::scope::Scopes;
use vantage_domain::tenant::TenantId;

use crate::Services;
use crate::pipeline::{AppError, CommandContext};
use crate::seams::new_id;
use crate::streams::keys_stream;

const TOKEN_PREFIX: &str = "vtg";

/// A parsed API key token. Its `Debug` output hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyToken {
    pub tenant: TenantId,
    pub key_id: ApiKeyId,
    secret: String,
}

impl fmt::Debug for ApiKeyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyToken")
            .field("tenant", &self.tenant)
            .field("key_id", &self.key_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl ApiKeyToken {
    fn generate(tenant: TenantId) -> Self {
        Self::with_new_secret(tenant, ApiKeyId(new_id()))
    }

    /// A token of key `key_id` with a new random secret.
    fn with_new_secret(tenant: TenantId, key_id: ApiKeyId) -> Self {
        let bytes: [u8; 32] = crate::seams::random_bytes();
        Self {
            tenant,
            key_id,
            secret: hex::encode(bytes),
        }
    }

    /// The full token text, to show the key's owner once.
    pub fn expose(&self) -> String {
        format!(
            "{TOKEN_PREFIX}_{}_{}_{}",
            self.tenant,
            self.key_id.as_uuid().simple(),
            self.secret
        )
    }

    fn secret_sha256(&self) -> String {
        hex::encode(Sha256::digest(self.secret.as_bytes()))
    }
}

impl FromStr for ApiKeyToken {
    type Err = &'static str;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        const MALFORMED: &str = "malformed API key";
        let mut parts = raw.trim().split('_');
        let (Some(TOKEN_PREFIX), Some(tenant), Some(id), Some(secret), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(MALFORMED);
        };
        let tenant = TenantId::parse(tenant).map_err(|_| MALFORMED)?;
        // One spelling per token: lowercase hex only, fixed lengths.
        let lower_hex = |part: &str, len: usize| {
            part.len() == len
                && part
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !lower_hex(id, 32) || !lower_hex(secret, 64) {
            return Err(MALFORMED);
        }
        let key_id = Uuid::try_parse(id).map(ApiKeyId).map_err(|_| MALFORMED)?;
        Ok(Self {
            tenant,
            key_id,
            secret: secret.to_owned(),
        })
    }
}

/// A key just issued: the token is shown once, never again.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub token: ApiKeyToken,
    pub name: String,
    pub scopes: Scopes,
    /// The projects it is limited to; `None`: every project.
    pub projects: Option<BTreeSet<ProjectId>>,
}

/// One key of a tenant as listings show it: never its secret or the secret's hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct KeySummary {
    pub id: ApiKeyId,
    pub name: String,
    pub scopes: Scopes,
    /// The projects it is limited to; absent: every project of the tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projects: Option<BTreeSet<ProjectId>>,
    pub revoked: bool,
    /// After a rotation: until when the key's previous secret is still accepted.
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
}

/// A key's new secret after a rotation.
#[derive(Debug)]
pub struct RotatedKey {
    pub token: ApiKeyToken,
    pub name: String,
    pub scopes: Scopes,
    pub previous_valid_until: DateTime<Utc>,
}

/// The longest grace period of a rotated-out secret.
pub const MAX_ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: TenantId,
    pub key_id: ApiKeyId,
    pub scopes: Scopes,
    /// The projects whose resources it may see (others' are not found).
    pub projects: ProjectAccess,
}

/// How long a cached key registry is trusted: a key revoked through another process stops working
/// here within this time.
pub const REGISTRY_TTL: Duration = Duration::from_secs(1);

/// Key registries by tenant, each with the moment it was read. A std `Mutex`: it is held only to
/// look up or swap an `Arc`, never across an `.await`. The generation counts keys issued or revoked
/// through this process: a registry read before one of those is never cached after it.
#[derive(Default)]
pub(crate) struct KeyRegistryCache {
    entries: Mutex<HashMap<TenantId, (Arc<ApiKeys>, Instant)>>,
    generation: AtomicU64,
}

impl KeyRegistryCache {
    fn entries(&self) -> MutexGuard<'_, HashMap<TenantId, (Arc<ApiKeys>, Instant)>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn fresh(&self, tenant: &TenantId) -> Option<Arc<ApiKeys>> {
        self.entries()
            .get(tenant)
            .filter(|(_, read)| read.elapsed() < REGISTRY_TTL)
            .map(|(registry, _)| registry.clone())
    }

    /// Caches `registry`, read when the generation was `read_at`, unless keys changed since.
    fn insert(&self, tenant: TenantId, registry: Arc<ApiKeys>, read_at: u64) {
        let mut entries = self.entries();
        if self.generation() == read_at {
            entries.insert(tenant, (registry, Instant::now()));
        }
    }

    pub(crate) fn forget(&self, tenant: &TenantId) {
        let mut entries = self.entries();
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.remove(tenant);
    }
}

/// Compares two equal-length strings without an early exit.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Services {
    /// IssueApiKey for the context's tenant.
    pub async fn issue_api_key(
        &self,
        context: &CommandContext,
        name: &str,
        scopes: Scopes,
    ) -> Result<Result<IssuedKey, DomainError>, AppError> {
        let token = ApiKeyToken::generate(context.tenant.clone());
        self.record_key(context, token, name, scopes, None).await
    }

    /// IssueApiKey limited to `projects` of the context's tenant, each of which must exist.
    pub async fn issue_project_api_key(
        &self,
        context: &CommandContext,
        name: &str,
        scopes: Scopes,
        projects: BTreeSet<ProjectId>,
    ) -> Result<Result<IssuedKey, DomainError>, AppError> {
        for project in &projects {
            if let Err(refused) = self.vet_project(&context.tenant, project).await? {
                return Ok(Err(refused));
            }
        }
        let token = ApiKeyToken::generate(context.tenant.clone());
        self.record_key(context, token, name, scopes, Some(projects))
            .await
    }

    async fn record_key(
        &self,
        context: &CommandContext,
        token: ApiKeyToken,
        name: &str,
        scopes: Scopes,
        projects: Option<BTreeSet<ProjectId>>,
    ) -> Result<Result<IssuedKey, DomainError>, AppError> {
        let command = ApiKeyCommand::Issue {
            key_id: token.key_id,
            tenant: context.tenant.clone(),
            name: name.to_owned(),
            scopes: scopes.clone(),
            secret_sha256: token.secret_sha256(),
            projects: projects.clone(),
        };
        let executed = self
            .pipeline
            .execute::<ApiKeys>(&keys_stream(&context.tenant), context, command)
            .await;
        self.key_cache.forget(&context.tenant);
        Ok(executed?.map(|_| IssuedKey {
            token,
            name: name.trim().to_owned(),
            scopes,
            projects,
        }))
    }

    /// RevokeApiKey; refused for the tenant's last active admin key.
    pub async fn revoke_api_key(
        &self,
        context: &CommandContext,
        key_id: ApiKeyId,
    ) -> Result<Result<(), DomainError>, AppError> {
        let executed = self
            .pipeline
            .execute::<ApiKeys>(
                &keys_stream(&context.tenant),
                context,
                ApiKeyCommand::Revoke { key_id },
            )
            .await;
        self.key_cache.forget(&context.tenant);
        Ok(executed?.map(|_| ()))
    }

    /// Every key of `tenant` (revoked ones too), by id; secrets are not part of the answer.
    pub async fn api_keys(&self, tenant: &TenantId) -> Result<Vec<KeySummary>, AppError> {
        let registry = self
            .pipeline
            .load::<ApiKeys>(&keys_stream(tenant))
            .await?
            .state;
        Ok(registry
            .keys
            .into_iter()
            .map(|(id, record)| KeySummary {
                id,
                name: record.name,
                scopes: record.scopes,
                projects: record.projects.limited_to().cloned(),
                revoked: record.revoked,
                previous_secret_valid_until: record.previous.map(|p| p.valid_until),
            })
            .collect())
    }

    /// RotateApiKey: a new secret for the key, shown once; the current one is still accepted for
    /// `grace` (at most [`MAX_ROTATION_GRACE`]).
    pub async fn rotate_api_key(
        &self,
        context: &CommandContext,
        key_id: ApiKeyId,
        grace: Duration,
    ) -> Result<Result<RotatedKey, DomainError>, AppError> {
        if grace > MAX_ROTATION_GRACE {
            return Ok(Err(DomainError::Invalid {
                field: "grace_seconds",
                reason: format!("must be at most {}", MAX_ROTATION_GRACE.as_secs()),
            }));
        }
        let token = ApiKeyToken::with_new_secret(context.tenant.clone(), key_id);
        let previous_valid_until = self.pipeline.clock().now()
            + chrono::TimeDelta::from_std(grace).unwrap_or(chrono::TimeDelta::zero());
        let command = ApiKeyCommand::Rotate {
            key_id,
            secret_sha256: token.secret_sha256(),
            previous_valid_until,
        };
        let executed = self
            .pipeline
            .execute::<ApiKeys>(&keys_stream(&context.tenant), context, command)
            .await;
        self.key_cache.forget(&context.tenant);
        if let Err(refused) = executed? {
            return Ok(Err(refused));
        }
        let registry = self.key_registry(&context.tenant).await?;
        let Some(record) = registry.keys.get(&key_id) else {
            return Ok(Err(DomainError::NotFound("api key")));
        };
        Ok(Ok(RotatedKey {
            token,
            name: record.name.clone(),
            scopes: record.scopes.clone(),
            previous_valid_until,
        }))
    }

    /// A tenant's key registry, read from its stream at most once per [`REGISTRY_TTL`] (keys issued
    /// or revoked through this process are seen at once: both drop the cached registry).
    async fn key_registry(&self, tenant: &TenantId) -> Result<Arc<ApiKeys>, AppError> {
        if let Some(registry) = self.key_cache.fresh(tenant) {
            return Ok(registry);
        }
        let read_at = self.key_cache.generation();
        let registry = self
            .pipeline
            .load::<ApiKeys>(&keys_stream(tenant))
            .await?
            .state;
        let registry = Arc::new(registry);
        self.key_cache
            .insert(tenant.clone(), registry.clone(), read_at);
        Ok(registry)
    }

    /// The principal a presented token stands for, or `None` (unknown, revoked, wrong secret).
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Principal>, AppError> {
        let Ok(token) = presented.parse::<ApiKeyToken>() else {
            return Ok(None);
        };
        let registry = self.key_registry(&token.tenant).await?;
        let Some(key) = registry.keys.get(&token.key_id) else {
            return Ok(None);
        };
        let presented = token.secret_sha256();
        let current = constant_time_eq(&key.secret_sha256, &presented);
        let retired_but_valid = key.previous.as_ref().is_some_and(|previous| {
            self.pipeline.clock().now() < previous.valid_until
                && constant_time_eq(&previous.secret_sha256, &presented)
        });
        if key.revoked || !(current || retired_but_valid) {
            return Ok(None);
        }
        Ok(Some(Principal {
            tenant: token.tenant,
            key_id: token.key_id,
            scopes: key.scopes.clone(),
            projects: key.projects.clone(),
        }))
    }

    /// On a tenant without keys, issues its first admin key: `preset` (e.g. from
    /// `VANTAGE_BOOTSTRAP_ADMIN_KEY`) or a new one. Returns the key only if it was issued now; racing
    /// first starts issue exactly one.
    pub async fn bootstrap_admin_key(
        &self,
        tenant: &TenantId,
        preset: Option<&str>,
    ) -> Result<Result<Option<IssuedKey>, DomainError>, AppError> {
        let registry = self
            .pipeline
            .load::<ApiKeys>(&keys_stream(tenant))
            .await?
            .state;
        if !registry.keys.is_empty() {
            if let Some(raw) = preset {
                let known = raw.parse::<ApiKeyToken>().ok().is_some_and(|token| {
                    registry.keys.get(&token.key_id).is_some_and(|key| {
                        !key.revoked && constant_time_eq(&key.secret_sha256, &token.secret_sha256())
                    })
                });
                if !known {
                    tracing::warn!(
                        %tenant,
                        "VANTAGE_BOOTSTRAP_ADMIN_KEY is ignored: tenant {tenant} has API keys \
                         already and this is not one of its active keys"
                    );
                }
            }
            return Ok(Ok(None));
        }
        let token = match preset {
            Some(raw) => {
                let token: ApiKeyToken = raw.parse().map_err(|reason: &str| {
                    AppError::Store(vantage_store::StoreError::Invalid(format!(
                        "VANTAGE_BOOTSTRAP_ADMIN_KEY: {reason}; expected vtg_<tenant>_<32 hex \
                         digits>_<64 hex digits>, lower-case (e.g. vtg_{tenant}_$(openssl rand \
                         -hex 16)_$(openssl rand -hex 32))"
                    )))
                })?;
                if &token.tenant != tenant {
                    return Ok(Err(DomainError::Invalid {
                        field: "bootstrap admin key",
                        reason: format!("belongs to tenant {}, not {tenant}", token.tenant),
                    }));
                }
                token
            }
            None => ApiKeyToken::generate(tenant.clone()),
        };
        let context = CommandContext::system(tenant.clone());
        match self
            .record_key(&context, token, "bootstrap admin", Scopes::admin(), None)
            .await
        {
            Ok(Ok(issued)) => Ok(Ok(Some(issued))),
            // Somebody else bootstrapped first: fine.
            Ok(Err(DomainError::AlreadyExists(_))) => Ok(Ok(None)),
            Ok(Err(rejected)) => Ok(Err(rejected)),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever is presented as a key, parsing never panics, and anything accepted is exactly a
        /// well-formed token that prints back to the same text.
        #[test]
        fn token_parser_is_total(raw in "\\PC{0,200}") {
            if let Ok(token) = raw.parse::<ApiKeyToken>() {
                prop_assert_eq!(token.expose(), raw.trim());
            }
        }

        #[test]
        fn near_miss_tokens_are_refused(cut in 0usize..150, junk in "[^a-f0-9]") {
            let token = ApiKeyToken::generate(TenantId::default_tenant()).expose();
            let cut = cut.min(token.len() - 1);
            let mut damaged = token.clone();
            damaged.replace_range(cut..=cut, &junk);
            prop_assume!(damaged != token);
            prop_assert!(damaged.parse::<ApiKeyToken>().map(|t| t.expose() != token).unwrap_or(true));
        }
    }

    #[test]
    fn tokens_round_trip_and_hide_their_secret() {
        let token = ApiKeyToken::generate(TenantId::default_tenant());
        let text = token.expose();
        assert_eq!(text.parse::<ApiKeyToken>().unwrap(), token);
        assert!(!format!("{token:?}").contains(&token.secret));
        for bad in [
            "",
            "vtg_default",
            "xyz_default_0190_abc",
            &text.replace("vtg_", "vtg_UPPER_"),
            &format!("{text}_extra"),
            &text[..text.len() - 1],
        ] {
            assert!(bad.parse::<ApiKeyToken>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn a_registry_read_before_a_key_change_is_not_cached_after_it() {
        let cache = KeyRegistryCache::default();
        let tenant = TenantId::default_tenant();
        let stale = cache.generation();
        cache.forget(&tenant); // a key was issued or revoked meanwhile
        cache.insert(tenant.clone(), Arc::new(ApiKeys::default()), stale);
        assert!(cache.fresh(&tenant).is_none());
        let current = cache.generation();
        cache.insert(tenant.clone(), Arc::new(ApiKeys::default()), current);
        assert!(cache.fresh(&tenant).is_some());
        cache.forget(&tenant);
        assert!(cache.fresh(&tenant).is_none());
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}

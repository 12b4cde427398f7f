//! Erasing a tenant at its admin's request (`DELETE /api/v1/tenant`), by crypto-shredding: nothing
//! in the log changes, so its hash chain still verifies, but every key that made the tenant's
//! personal text and content readable is destroyed.
//!
//! In order, so that a crash part-way leaves the tenant's admin able to run it again (their key keeps
//! working until the last step):
//! 1. every secret of the tenant is destroyed, leaving a tombstone ([`PersonalVault::erase`]): the
//!    personal-data key (notes, comments, key names), every scan's content key, every webhook's
//!    signing secret; this process forgets the aggregate states it kept, which hold text opened;
//! 2. its idempotency records, which keep replies that may quote what it wrote, are forgotten;
//! 3. its webhooks and schedules are deleted, so nothing is sent or scanned in its name again;
//! 4. each scan that kept samples records `ContentKeyDestroyed { reason: tenant_erased }`;
//! 5. the key registry records `TenantErased`: no key of the tenant authenticates from now on.
//!
//! A confirmation token ([`Services::erasure_token`]) makes it two deliberate requests.
//!
//! [`PersonalVault::erase`]: crate::PersonalVault::erase

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use vantage_domain::DomainError;
use vantage_domain::apikey::{ApiKeyCommand, ApiKeys};
use vantage_domain::content::ShredReason;
use vantage_domain::ids::{ApiKeyId, ScanId, ScheduleId, WebhookId};
use vantage_domain::tenant::TenantId;

use crate::keyring::{ERASURE_TOKEN_SECONDS, KeyringError};
use crate::streams::keys_stream;
use crate::{AppError, CommandContext, Services};

/// What a tenant still has that erasure must end, as the read models list it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantHoldings {
    /// Scans whose content key is still to be destroyed.
    pub sampled_scans: Vec<ScanId>,
    pub schedules: Vec<ScheduleId>,
    pub webhooks: Vec<WebhookId>,
}

/// What erasing a tenant did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TenantErasure {
    pub tenant: TenantId,
    pub erased_at: DateTime<Utc>,
    /// Keys and secrets destroyed: the personal-data key, content keys, webhook signing secrets.
    pub secrets_destroyed: u64,
    /// Scans whose content samples became unreadable.
    pub content_keys_destroyed: usize,
    pub webhooks_deleted: usize,
    pub schedules_deleted: usize,
    /// API keys that authenticate nothing any more.
    pub api_keys_revoked: usize,
    /// Stored replies of idempotent requests forgotten.
    pub idempotency_records_forgotten: u64,
}

/// A confirmation token and until when it is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl Services {
    /// A token with which `key` of `tenant` can confirm erasing the tenant in the next
    /// [`ERASURE_TOKEN_SECONDS`].
    pub fn erasure_token(&self, tenant: &TenantId, key: ApiKeyId) -> ErasureToken {
        let expires_at =
            self.pipeline.clock().now() + chrono::Duration::seconds(ERASURE_TOKEN_SECONDS);
        ErasureToken {
            token: self.keyring.mint_erasure_token(tenant, key, expires_at),
            expires_at,
        }
    }

    /// Whether `token` confirms that `key` of `tenant` means to erase it, now.
    pub fn check_erasure_token(
        &self,
        token: &str,
        tenant: &TenantId,
        key: ApiKeyId,
    ) -> Result<(), KeyringError> {
        self.keyring
            .check_erasure_token(token, tenant, key, self.pipeline.clock().now())
    }

    /// Erases the context's tenant (see the module's steps). Refused with
    /// [`DomainError::TenantErased`] when it was erased before.
    pub async fn erase_tenant(
        &self,
        context: &CommandContext,
        holdings: TenantHoldings,
    ) -> Result<Result<TenantErasure, DomainError>, AppError> {
        let tenant = &context.tenant;
        let stream = keys_stream(tenant);
        let registry = self.pipeline.load::<ApiKeys>(&stream).await?.state;
        if registry.erased {
            return Ok(Err(DomainError::TenantErased));
        }
        let secrets_destroyed = self.pipeline.vault().erase(tenant.as_str()).await?;
        self.pipeline.forget_states();
        let idempotency_records_forgotten = self.idempotency.forget_tenant(tenant.as_str()).await?;
        let mut webhooks_deleted = 0;
        for id in holdings.webhooks {
            webhooks_deleted += usize::from(self.delete_webhook(context, id).await?.is_ok());
        }
        let mut schedules_deleted = 0;
        for id in holdings.schedules {
            schedules_deleted += usize::from(self.delete_schedule(context, id).await?.is_ok());
        }
        let mut content_keys_destroyed = 0;
        for scan in holdings.sampled_scans {
            let recorded = self
                .destroy_content_key(tenant, scan, ShredReason::TenantErased)
                .await?;
            content_keys_destroyed += usize::from(matches!(recorded, Ok(true)));
        }
        let api_keys_revoked = registry.keys.values().filter(|k| !k.revoked).count();
        let erased = self
            .pipeline
            .execute::<ApiKeys>(
                &stream,
                context,
                ApiKeyCommand::EraseTenant {
                    tenant: tenant.clone(),
                },
            )
            .await;
        self.key_cache.forget(tenant);
        if let Err(refused) = erased? {
            return Ok(Err(refused));
        }
        tracing::warn!(%tenant, actor = %context.actor, "tenant erased");
        Ok(Ok(TenantErasure {
            tenant: tenant.clone(),
            erased_at: self.pipeline.clock().now(),
            secrets_destroyed,
            content_keys_destroyed,
            webhooks_deleted,
            schedules_deleted,
            api_keys_revoked,
            idempotency_records_forgotten,
        }))
    }
}

//! Webhook commands: create (the signing secret is made here, shown once, sealed into the secret
//! store beside the log and only its SHA-256 logged), update, delete, ask for a test delivery — and
//! the delivery engine's two needs, opening a webhook's secret and recording an attempt.
//!
//! A webhook's URL passes the same SSRF guard as a scan target when it is set; the delivery engine
//! vets it again at every delivery, since DNS may have changed.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use vantage_domain::DomainError;
use vantage_domain::ids::{DeliveryId, WebhookId};
use vantage_domain::project::ProjectId;
use vantage_domain::tenant::TenantId;
use vantage_domain::webhook::{Webhook, WebhookCommand, WebhookDeliveryAttempted, WebhookUrl};

use crate::streams::webhook_stream;
use crate::{AppError, CommandContext, Services, new_id};

/// Signing secrets are `whsec_` and the base64 of their 32 key bytes (the Standard Webhooks form).
pub const SECRET_PREFIX: &str = "whsec_";

/// A webhook just created, with its signing secret: shown this once.
#[derive(Debug, Clone)]
pub struct CreatedWebhook {
    pub id: WebhookId,
    /// The event filter as recorded (sorted, each type once).
    pub events: BTreeSet<String>,
    pub secret: String,
}

/// The owner name a webhook's sealed secret is kept (and sealed) under.
fn secret_owner(id: WebhookId) -> String {
    format!("webhook-{id}")
}

/// What to change of a webhook (`None`: keep).
#[derive(Debug, Clone, Default)]
pub struct WebhookChange {
    pub url: Option<WebhookUrl>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

impl Services {
    /// Refuses a URL whose host the SSRF guard refuses.
    async fn vet_webhook_url(&self, url: &WebhookUrl) -> Result<(), DomainError> {
        self.vet_host(&url.host()).await
    }

    /// Creates a webhook of the context's tenant; its secret is returned once and never again.
    pub async fn create_webhook(
        &self,
        context: &CommandContext,
        url: WebhookUrl,
        events: Vec<String>,
        enabled: bool,
        project: ProjectId,
    ) -> Result<Result<CreatedWebhook, DomainError>, AppError> {
        if let Err(refused) = self.vet_project(&context.tenant, &project).await? {
            return Ok(Err(refused));
        }
        if let Err(refused) = self.vet_webhook_url(&url).await {
            return Ok(Err(refused));
        }
        let id = WebhookId(new_id());
        let key: [u8; 32] = crate::seams::random_bytes();
        // Sealed and kept before the webhook exists, so the engine never meets one without a secret.
        let sealed = self.keyring.seal(&secret_owner(id), &key);
        self.secrets
            .put_secret(context.tenant.as_str(), &secret_owner(id), &sealed)
            .await?;
        let command = WebhookCommand::Create {
            webhook_id: id,
            tenant: context.tenant.clone(),
            url,
            events,
            active: enabled,
            secret_sha256: hex::encode(Sha256::digest(key)),
            project,
        };
        match self
            .pipeline
            .execute::<Webhook>(&webhook_stream(id), context, command)
            .await?
        {
            Ok(executed) => Ok(Ok(CreatedWebhook {
                id,
                events: executed
                    .state
                    .created
                    .map(|created| created.events)
                    .unwrap_or_default(),
                secret: format!("{SECRET_PREFIX}{}", STANDARD.encode(key)),
            })),
            Err(refused) => {
                self.secrets
                    .delete_secret(context.tenant.as_str(), &secret_owner(id))
                    .await?;
                Ok(Err(refused))
            }
        }
    }

    /// Whether webhook `id` exists for `tenant` (another tenant's is not found).
    async fn own_webhook(&self, tenant: &TenantId, id: WebhookId) -> Result<bool, AppError> {
        let webhook = self
            .pipeline
            .load::<Webhook>(&webhook_stream(id))
            .await?
            .state;
        Ok(!webhook.deleted
            && webhook
                .created
                .as_ref()
                .is_some_and(|created| created.tenant == *tenant))
    }

    /// Runs `command` on webhook `id` of the context's tenant.
    async fn command_webhook(
        &self,
        context: &CommandContext,
        id: WebhookId,
        command: WebhookCommand,
    ) -> Result<Result<(), DomainError>, AppError> {
        if !self.own_webhook(&context.tenant, id).await? {
            return Ok(Err(DomainError::NotFound("webhook")));
        }
        Ok(self
            .pipeline
            .execute::<Webhook>(&webhook_stream(id), context, command)
            .await?
            .map(|_| ()))
    }

    /// Changes a webhook's URL (vetted again), event filter or enabled flag; its secret stays.
    pub async fn update_webhook(
        &self,
        context: &CommandContext,
        id: WebhookId,
        change: WebhookChange,
    ) -> Result<Result<(), DomainError>, AppError> {
        if let Some(url) = &change.url
            && let Err(refused) = self.vet_webhook_url(url).await
        {
            return Ok(Err(refused));
        }
        let command = WebhookCommand::Update {
            url: change.url,
            events: change.events,
            active: change.enabled,
        };
        self.command_webhook(context, id, command).await
    }

    /// Deletes a webhook and forgets its secret.
    pub async fn delete_webhook(
        &self,
        context: &CommandContext,
        id: WebhookId,
    ) -> Result<Result<(), DomainError>, AppError> {
        let deleted = self
            .command_webhook(context, id, WebhookCommand::Delete)
            .await?;
        if deleted.is_ok() {
            self.secrets
                .delete_secret(context.tenant.as_str(), &secret_owner(id))
                .await?;
        }
        Ok(deleted)
    }

    /// Asks for a `webhook.test` delivery; returns the delivery's id.
    pub async fn test_webhook(
        &self,
        context: &CommandContext,
        id: WebhookId,
    ) -> Result<Result<DeliveryId, DomainError>, AppError> {
        let delivery_id = DeliveryId(new_id());
        Ok(self
            .command_webhook(context, id, WebhookCommand::Test { delivery_id })
            .await?
            .map(|()| delivery_id))
    }

    /// The signing key of webhook `id` of `tenant` (the bytes `whsec_` encodes), if it has one that
    /// this server's key opens.
    pub async fn webhook_signing_key(
        &self,
        tenant: &TenantId,
        id: WebhookId,
    ) -> Result<Option<Vec<u8>>, AppError> {
        let owner = secret_owner(id);
        let Some(sealed) = self.secrets.secret(tenant.as_str(), &owner).await? else {
            return Ok(None);
        };
        match self.keyring.open(&owner, &sealed) {
            Ok(key) => Ok(Some(key)),
            Err(error) => {
                tracing::error!(webhook = %id, %error, "a webhook secret does not open");
                Ok(None)
            }
        }
    }

    /// Records a delivery attempt as the system (the engine is not a caller of the API).
    pub async fn record_delivery(
        &self,
        tenant: &TenantId,
        id: WebhookId,
        attempt: WebhookDeliveryAttempted,
    ) -> Result<Result<(), DomainError>, AppError> {
        let context = CommandContext::system(tenant.clone());
        Ok(self
            .pipeline
            .execute::<Webhook>(
                &webhook_stream(id),
                &context,
                WebhookCommand::RecordDelivery(attempt),
            )
            .await?
            .map(|_| ()))
    }
}

//! What people write — triage notes, comments, key names — sealed per tenant, so that erasing a
//! tenant makes it unreadable everywhere at once (crypto-shredding).
//!
//! Each tenant gets one random [`DataKey`] the first time one of its events carries personal text
//! ([`vantage_domain::event::personal_fields`] names those fields). The key is kept beside the log,
//! sealed by the master key, under the owner `personal-<tenant>`. The [`crate::Pipeline`] seals those
//! fields before it appends an event (`sealed:v1:<base64>`) and opens them when it folds a stream, so
//! the domain works with plain text while the log, its exports and every read model hold only
//! ciphertext; the API opens what it serves from read models with [`PersonalVault::open_text`].
//!
//! Erasing the tenant replaces its secrets with an empty tombstone ([`PersonalVault::erase`]): from
//! then on sealed text opens to [`ERASED_TEXT`], nothing recreates the key, and the hash chain is
//! untouched because no event changed. Another replica may still open text from its cache for up to
//! [`KEY_TTL`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use vantage_domain::event::personal_fields;
use vantage_store::SecretStore;

use crate::keyring::{DataKey, Keyring};
use crate::pipeline::AppError;

/// How sealed personal text starts.
pub const SEALED_PREFIX: &str = "sealed:v1:";
pub use vantage_domain::event::ERASED_TEXT;
/// How long a replica trusts what it learnt of a tenant's key.
pub const KEY_TTL: Duration = Duration::from_secs(30);

/// Where a tenant's personal-data key is kept beside the log.
fn key_owner(tenant: &str) -> String {
    format!("personal-{tenant}")
}

/// The associated data of a tenant's sealed text: it opens only as that tenant's.
fn context(tenant: &str) -> String {
    format!("personal/{tenant}")
}

/// What is known of one tenant's key.
#[derive(Clone)]
enum TenantKey {
    Live(DataKey),
    /// Never made: the tenant has written nothing personal yet.
    Absent,
    /// Destroyed by erasure (the tombstone), or gone.
    Erased,
}

/// Seals and opens tenants' personal text; cheap to clone.
#[derive(Clone)]
pub struct PersonalVault {
    secrets: Arc<dyn SecretStore>,
    keyring: Keyring,
    known: Arc<Mutex<HashMap<String, (Instant, TenantKey)>>>,
}

impl std::fmt::Debug for PersonalVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonalVault").finish_non_exhaustive()
    }
}

impl PersonalVault {
    pub fn new(secrets: Arc<dyn SecretStore>, keyring: Keyring) -> Self {
        Self {
            secrets,
            keyring,
            known: Arc::default(),
        }
    }

    /// The tenant's key; made (once, whoever races) when `create` and there is none yet.
    async fn key(&self, tenant: &str, create: bool) -> Result<TenantKey, AppError> {
        let cached = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(tenant)
            .filter(|(at, _)| at.elapsed() < KEY_TTL)
            .map(|(_, key)| key.clone());
        if let Some(key) = cached {
            return Ok(key);
        }
        let owner = key_owner(tenant);
        let stored = match self.secrets.secret(tenant, &owner).await? {
            Some(sealed) => Some(sealed),
            None if create => {
                let fresh = self.keyring.seal(&owner, &DataKey::generate().to_bytes());
                Some(
                    self.secrets
                        .put_secret_if_absent(tenant, &owner, &fresh)
                        .await?,
                )
            }
            None => None,
        };
        let key = match stored {
            None => return Ok(TenantKey::Absent),
            Some(tombstone) if tombstone.is_empty() => TenantKey::Erased,
            Some(sealed) => {
                let unsealable =
                    |e| AppError::Unsealable(format!("personal-data key of tenant {tenant}: {e}"));
                let bytes = self.keyring.open(&owner, &sealed).map_err(unsealable)?;
                TenantKey::Live(DataKey::from_bytes(&bytes).map_err(unsealable)?)
            }
        };
        self.remember(tenant, key.clone());
        Ok(key)
    }

    fn remember(&self, tenant: &str, key: TenantKey) {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(tenant.to_owned(), (Instant::now(), key));
    }

    /// `payload` of an `event_type` event of `tenant` with its personal fields sealed (unchanged
    /// when it has none). An erased tenant's text is replaced by [`ERASED_TEXT`], never stored.
    pub async fn seal_payload(
        &self,
        tenant: &str,
        event_type: &str,
        payload: String,
    ) -> Result<String, AppError> {
        let fields = personal_fields(event_type);
        if fields.is_empty() {
            return Ok(payload);
        }
        let mut value: Value = serde_json::from_str(&payload)
            .map_err(|e| AppError::Unsealable(format!("{event_type} payload: {e}")))?;
        for field in fields {
            if let Some(Value::String(plain)) = value.get_mut(*field) {
                *plain = self.seal_text(tenant, plain).await?;
            }
        }
        Ok(value.to_string())
    }

    /// `plain` sealed with the tenant's key (made now if it has none); [`ERASED_TEXT`] for an erased
    /// tenant, whose text is never stored.
    pub async fn seal_text(&self, tenant: &str, plain: &str) -> Result<String, AppError> {
        Ok(match self.key(tenant, true).await? {
            TenantKey::Live(key) => format!(
                "{SEALED_PREFIX}{}",
                STANDARD.encode(key.seal(&context(tenant), plain.as_bytes()))
            ),
            TenantKey::Absent | TenantKey::Erased => ERASED_TEXT.to_owned(),
        })
    }

    /// `payload` of a stored `event_type` event of `tenant` with its personal fields opened.
    pub async fn open_payload<'a>(
        &self,
        tenant: &str,
        event_type: &str,
        payload: &'a str,
    ) -> Result<Cow<'a, str>, AppError> {
        let fields = personal_fields(event_type);
        if fields.is_empty() || !payload.contains(SEALED_PREFIX) {
            return Ok(Cow::Borrowed(payload));
        }
        let mut value: Value = serde_json::from_str(payload)
            .map_err(|e| AppError::Unsealable(format!("{event_type} payload: {e}")))?;
        for field in fields {
            if let Some(Value::String(text)) = value.get_mut(*field) {
                *text = self.open_text(tenant, text).await?;
            }
        }
        Ok(Cow::Owned(value.to_string()))
    }

    /// `text` as `tenant` wrote it: opened when sealed ([`ERASED_TEXT`] once the tenant is erased),
    /// as it is otherwise (text recorded before sealing existed).
    pub async fn open_text(&self, tenant: &str, text: &str) -> Result<String, AppError> {
        let Some(encoded) = text.strip_prefix(SEALED_PREFIX) else {
            return Ok(text.to_owned());
        };
        let TenantKey::Live(key) = self.key(tenant, false).await? else {
            return Ok(ERASED_TEXT.to_owned());
        };
        let damaged = |what: String| {
            AppError::Unsealable(format!("personal text of tenant {tenant}: {what}"))
        };
        let sealed = STANDARD
            .decode(encoded)
            .map_err(|e| damaged(e.to_string()))?;
        let plain = key
            .open(&context(tenant), &sealed)
            .map_err(|e| damaged(e.to_string()))?;
        String::from_utf8(plain).map_err(|e| damaged(e.to_string()))
    }

    /// Destroys every secret of `tenant` — its personal-data key, its scans' content keys, its
    /// webhooks' signing secrets — leaving a tombstone so the personal-data key is never made again.
    /// Returns how many secrets were destroyed.
    pub async fn erase(&self, tenant: &str) -> Result<u64, AppError> {
        let destroyed = self
            .secrets
            .erase_tenant(tenant, &key_owner(tenant))
            .await?;
        self.remember(tenant, TenantKey::Erased);
        Ok(destroyed)
    }
}

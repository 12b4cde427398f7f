//! The application layer: runs commands against the event log and answers the few reads that need
//! no projection. It owns the seams the domain must not touch — the clock, id generation and secrets —
//! and the command pipeline: load stream → fold → decide → append with the expected version, retrying a
//! version conflict and reporting it if it persists.
//!
//! It knows no HTTP and no SQL: it speaks to the [`vantage_store::EventStore`] trait.

mod badges;
mod content;
mod erasure;
mod keyring;
mod keys;
mod live;
mod personal;
mod pipeline;
mod projects;
mod reopen;
mod scans;
mod schedules;
mod seams;
mod state_cache;
mod streams;
mod triage;
mod webhooks;

pub use content::{
    ContentRead, ContentSampleView, ContentSamples, PlainSample, SHRED_BATCH, SHRED_POLL,
    SampleEncoding, shred_expired_content, shred_expired_once,
};
pub use erasure::{ErasureToken, TenantErasure, TenantHoldings};
pub use keyring::{
    DataKey, ERASURE_TOKEN_SECONDS, EventGrant, Keyring, KeyringError, MAX_EVENT_TOKEN_SECONDS,
};
pub use keys::{
    ApiKeyToken, IssuedKey, KeySummary, MAX_ROTATION_GRACE, Principal, REGISTRY_TTL, RotatedKey,
};
pub use live::{
    CLIENT_QUEUE, Follow, HUB_CAPACITY, HubFeeder, LiveEvent, LiveHub, LiveItem, LiveSource,
    LiveVerdict, follow, run_log_feeder,
};
pub use personal::{ERASED_TEXT, KEY_TTL, PersonalVault, SEALED_PREFIX};
pub use pipeline::{AppError, CommandContext, Executed, Folded, Pipeline};
pub use reopen::{REOPEN_BATCH, REOPEN_POLL, reopen_regressions};
pub use scans::{ScanView, WorkerPools};
pub use schedules::{SlotOutcome, scheduled_scan_id};
pub use seams::{Clock, SteadyClock, SystemClock, new_id, random_bytes, random_in};
pub use streams::{
    Decode, badge_stream, keys_stream, notifications_stream, projects_stream, scan_observations,
    scan_of, scan_stream, schedule_of, schedule_stream, triage_stream, webhook_of, webhook_stream,
};
pub use webhooks::{CreatedWebhook, SECRET_PREFIX, WebhookChange};

use std::sync::Arc;

use vantage_probes::ssrf::SsrfGuard;
use vantage_reports::signing::SigningKey;
use vantage_store::{EventStore, IdempotencyStore, SecretStore, SideStore};

/// Scan views kept for polls (the scans polled most recently).
const SCAN_VIEWS: usize = 1024;

/// Everything the API and the CLI call: one value, cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub pipeline: Pipeline,
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Sealed webhook signing secrets.
    pub secrets: Arc<dyn SecretStore>,
    /// Decides which targets may be scanned at all.
    pub guard: SsrfGuard,
    /// Tenants' key registries, read at most once a second for authentication.
    key_cache: Arc<keys::KeyRegistryCache>,
    /// Scan views as last folded, so a status poll reads only what was appended since.
    scan_views: Arc<state_cache::StateCache>,
    /// Live events of this process, for SSE followers.
    pub live: LiveHub,
    /// Event tokens and sealed secrets.
    pub keyring: Keyring,
    /// Signs compliance packages: a configured key, else one derived from the keyring's master key
    /// (so replicas that share the secrets key sign alike).
    pub signing_key: Arc<SigningKey>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

impl Services {
    pub fn new(
        store: Arc<dyn EventStore>,
        side: Arc<dyn SideStore>,
        clock: Arc<dyn Clock>,
        guard: SsrfGuard,
    ) -> Self {
        let keyring = Keyring::generate();
        Self {
            pipeline: Pipeline::new(
                store,
                clock,
                PersonalVault::new(side.clone(), keyring.clone()),
            ),
            idempotency: side.clone(),
            secrets: side,
            guard,
            key_cache: Arc::default(),
            scan_views: Arc::new(state_cache::StateCache::with_capacity(SCAN_VIEWS)),
            live: LiveHub::default(),
            signing_key: Arc::new(derived_signing_key(&keyring)),
            keyring,
        }
    }

    /// These services with `keyring` (the one every replica of a deployment shares) instead of a
    /// key of their own.
    /// Uses `keyring`, and the signing key derived from it (until [`Self::with_signing_key`]).
    pub fn with_keyring(mut self, keyring: Keyring) -> Self {
        self.signing_key = Arc::new(derived_signing_key(&keyring));
        self.pipeline = Pipeline::new(
            self.pipeline.store().clone(),
            self.pipeline.clock().clone(),
            PersonalVault::new(self.secrets.clone(), keyring.clone()),
        );
        self.keyring = keyring;
        self
    }

    /// Signs packages with `key`.
    pub fn with_signing_key(mut self, key: SigningKey) -> Self {
        self.signing_key = Arc::new(key);
        self
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        self.pipeline.store()
    }
}

/// The signing key derived from the keyring's master key.
fn derived_signing_key(keyring: &Keyring) -> SigningKey {
    SigningKey::from_seed(&keyring.signing_seed()).expect("every 32-byte seed is an Ed25519 key")
}

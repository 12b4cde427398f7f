//! Sealed secrets kept beside the log, not in it: the log is exported in compliance packages, so a
//! credential that must be shown to a third party (a webhook's signing secret) is stored here,
//! encrypted by the application before it arrives (this crate never sees a plain secret), and only
//! its hash goes into the log.

use async_trait::async_trait;

use crate::StoreError;

/// Sealed secrets by owner (`webhook-<id>`), each owned by one tenant.
#[async_trait]
pub trait SecretStore: Send + Sync + 'static {
    /// Keeps `sealed` for `owner`, replacing what it had.
    async fn put_secret(&self, tenant: &str, owner: &str, sealed: &[u8]) -> Result<(), StoreError>;

    /// The sealed secret of `owner` of `tenant`, if there is one.
    async fn secret(&self, tenant: &str, owner: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Forgets the secret of `owner` of `tenant` (nothing happens if there is none).
    async fn delete_secret(&self, tenant: &str, owner: &str) -> Result<(), StoreError>;

    /// Keeps `sealed` for `owner` unless `owner` has a secret already; either way, the secret
    /// `owner` has now (so racing writers agree on one).
    async fn put_secret_if_absent(
        &self,
        tenant: &str,
        owner: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, StoreError>;

    /// Forgets every secret of `tenant` and leaves an empty secret under `tombstone`, in one
    /// transaction, so that nothing recreates that owner's secret by mistake. Returns how many
    /// secrets were forgotten.
    async fn erase_tenant(&self, tenant: &str, tombstone: &str) -> Result<u64, StoreError>;
}

/// The tables kept beside the log by one store: idempotency keys and sealed secrets.
pub trait SideStore: crate::IdempotencyStore + SecretStore {}

impl<T: crate::IdempotencyStore + SecretStore> SideStore for T {}

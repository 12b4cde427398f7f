//! Content samples, crypto-shredded (see `vantage_domain::content` for the why).
//!
//! * **Key** — when a scan asks for samples, a random [`DataKey`] is made before the scan is
//!   recorded and kept beside the log (the secret store, owner `content-<scan id>`), itself sealed
//!   by the master key. It never enters the log.
//! * **Seal** — a worker hands each sample over in the clear ([`PlainSample`]);
//!   [`Services::keep_content_sample`] seals it with the scan's key (the URL as associated data) and
//!   only then records `ContentSampleKept`. A sample that arrives after the key is gone is dropped.
//! * **Read** — [`Services::content_samples`] opens them for a caller with `content:read`.
//! * **Shred** — [`Services::destroy_content_key`] deletes the key, then records
//!   `ContentKeyDestroyed`; [`shred_expired_content`] does it for every scan whose retention ended,
//!   deletion does it for a deleted scan, tenant erasure for every scan of the tenant. Deleting first
//!   means a crash between the two steps leaves the samples unreadable, and the next sweep records
//!   why.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use vantage_domain::DomainError;
use vantage_domain::content::{ExpiredContent, MAX_SAMPLE_BYTES, SealedBytes, ShredReason};
use vantage_domain::ids::ScanId;
use vantage_domain::scan::{ContentSampleKept, Scan, ScanCommand, ScanEvent};
use vantage_domain::tenant::TenantId;

use crate::Services;
use crate::keyring::DataKey;
use crate::pipeline::{AppError, CommandContext};
use crate::streams::{Decode, scan_stream};

/// How often expired content keys are looked for.
pub const SHRED_POLL: Duration = Duration::from_secs(60);
/// Most scans shredded per round.
pub const SHRED_BATCH: usize = 100;

/// Where a scan's content key is kept beside the log.
fn key_owner(scan: ScanId) -> String {
    format!("content-{scan}")
}

/// A page's sample as a worker hands it over: in the clear, so it is sealed before anything is
/// stored and it crosses process boundaries only on the way to being sealed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlainSample {
    pub url: String,
    pub status_code: u16,
    pub content_type: Option<String>,
    /// Bytes of the response read.
    pub body_bytes: u64,
    /// The first bytes of the body (at most 4096), base64 on the wire.
    #[serde(with = "base64_bytes")]
    pub sample: Vec<u8>,
}

impl std::fmt::Debug for PlainSample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainSample")
            .field("url", &self.url)
            .field("sample", &format_args!("{} bytes", self.sample.len()))
            .finish_non_exhaustive()
    }
}

mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// One opened sample.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ContentSampleView {
    pub url: String,
    pub status_code: u16,
    pub content_type: Option<String>,
    /// Bytes of the response read.
    pub body_bytes: u64,
    /// Bytes kept (the start of the body, at most 4096).
    pub sample_bytes: u32,
    /// `utf-8` when the sample is text, else `base64`.
    pub encoding: SampleEncoding,
    pub sample: String,
}

/// How a sample's bytes are written in [`ContentSampleView::sample`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SampleEncoding {
    #[serde(rename = "utf-8")]
    Utf8,
    Base64,
}

/// The samples of one scan, readable until `expires_at`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ContentSamples {
    pub scan_id: ScanId,
    pub retention_days: u16,
    pub expires_at: DateTime<Utc>,
    pub samples: Vec<ContentSampleView>,
}

/// What can be read of a scan's content.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentRead {
    /// No such scan for this tenant.
    NotFound,
    /// The scan did not ask for samples.
    NotKept,
    /// The key was destroyed: nothing can be read. The reason and time are those the log records
    /// (none yet when the key is gone and the event recording it is still to be written).
    Destroyed {
        reason: Option<ShredReason>,
        at: Option<DateTime<Utc>>,
    },
    Samples(ContentSamples),
}

impl Services {
    /// Makes and keeps the content key of a scan that is about to be recorded.
    pub(crate) async fn create_content_key(
        &self,
        tenant: &TenantId,
        scan: ScanId,
    ) -> Result<(), AppError> {
        let owner = key_owner(scan);
        let sealed = self.keyring.seal(&owner, &DataKey::generate().to_bytes());
        self.secrets
            .put_secret(tenant.as_str(), &owner, &sealed)
            .await?;
        Ok(())
    }

    /// The content key of `scan`, while it exists.
    async fn content_key(
        &self,
        tenant: &TenantId,
        scan: ScanId,
    ) -> Result<Option<DataKey>, AppError> {
        let owner = key_owner(scan);
        let Some(sealed) = self.secrets.secret(tenant.as_str(), &owner).await? else {
            return Ok(None);
        };
        let unsealable = |e| AppError::Unsealable(format!("content key of scan {scan}: {e}"));
        let bytes = self.keyring.open(&owner, &sealed).map_err(unsealable)?;
        Ok(Some(DataKey::from_bytes(&bytes).map_err(unsealable)?))
    }

    /// Seals `sample` with the scan's content key and records it. `Ok(Ok(false))` when nothing was
    /// kept: the key is gone (the retention ended or the tenant was erased meanwhile) or the sample
    /// was already kept.
    pub async fn keep_content_sample(
        &self,
        context: &CommandContext,
        scan: ScanId,
        sample: PlainSample,
    ) -> Result<Result<bool, DomainError>, AppError> {
        let Some(key) = self.content_key(&context.tenant, scan).await? else {
            return Ok(Ok(false));
        };
        let mut plain = sample.sample;
        plain.truncate(MAX_SAMPLE_BYTES);
        let sealed = match SealedBytes::new(key.seal(&sample.url, &plain)) {
            Ok(sealed) => sealed,
            Err(refused) => return Ok(Err(refused)),
        };
        let command = ScanCommand::KeepContentSample(ContentSampleKept {
            url: sample.url,
            status_code: sample.status_code,
            content_type: sample.content_type,
            body_bytes: sample.body_bytes,
            sample_bytes: u32::try_from(plain.len()).unwrap_or(u32::MAX),
            sealed,
        });
        Ok(self
            .pipeline
            .execute::<Scan>(&scan_stream(scan), context, command)
            .await?
            .map(|executed| !executed.events.is_empty()))
    }

    /// Destroys the content key of `scan` of `tenant` and records why; `Ok(Ok(false))` when it was
    /// recorded before (repeating it appends nothing).
    pub async fn destroy_content_key(
        &self,
        tenant: &TenantId,
        scan: ScanId,
        reason: ShredReason,
    ) -> Result<Result<bool, DomainError>, AppError> {
        self.secrets
            .delete_secret(tenant.as_str(), &key_owner(scan))
            .await?;
        let context = CommandContext {
            correlation_id: scan.as_uuid(),
            ..CommandContext::system(tenant.clone())
        };
        Ok(self
            .pipeline
            .execute::<Scan>(
                &scan_stream(scan),
                &context,
                ScanCommand::RecordContentKeyDestroyed { reason },
            )
            .await?
            .map(|executed| !executed.events.is_empty()))
    }

    /// The content samples of `scan` of `tenant`, opened.
    pub async fn content_samples(
        &self,
        tenant: &TenantId,
        scan: ScanId,
    ) -> Result<ContentRead, AppError> {
        let stored = self.store().read_stream(&scan_stream(scan)).await?;
        let mut requested_at = None;
        let mut retention = None;
        let mut owned = false;
        let mut deleted = false;
        let mut destroyed = None;
        let mut sealed = Vec::new();
        for event in stored {
            match event.decode::<ScanEvent>()? {
                ScanEvent::ScanRequested(requested) => {
                    owned = &requested.tenant == tenant;
                    requested_at = Some(event.occurred_at);
                    retention = requested.content_sample;
                }
                ScanEvent::ScanDeleted(_) => deleted = true,
                ScanEvent::ContentSampleKept(sample) => sealed.push(sample),
                ScanEvent::ContentKeyDestroyed(gone) => {
                    destroyed = Some((gone.reason, event.occurred_at));
                }
                _ => {}
            }
        }
        let (Some(requested_at), true, false) = (requested_at, owned, deleted) else {
            return Ok(ContentRead::NotFound);
        };
        let Some(retention) = retention else {
            return Ok(ContentRead::NotKept);
        };
        if let Some((reason, at)) = destroyed {
            return Ok(ContentRead::Destroyed {
                reason: Some(reason),
                at: Some(at),
            });
        }
        let Some(key) = self.content_key(tenant, scan).await? else {
            return Ok(ContentRead::Destroyed {
                reason: None,
                at: None,
            });
        };
        let mut samples = Vec::with_capacity(sealed.len());
        for sample in sealed {
            let plain = key
                .open(&sample.url, sample.sealed.as_bytes())
                .map_err(|e| AppError::Unsealable(format!("sample of {}: {e}", sample.url)))?;
            let (encoding, text) = match String::from_utf8(plain) {
                Ok(text) => (SampleEncoding::Utf8, text),
                Err(bytes) => {
                    use base64::Engine;
                    (
                        SampleEncoding::Base64,
                        base64::engine::general_purpose::STANDARD.encode(bytes.into_bytes()),
                    )
                }
            };
            samples.push(ContentSampleView {
                url: sample.url,
                status_code: sample.status_code,
                content_type: sample.content_type,
                body_bytes: sample.body_bytes,
                sample_bytes: sample.sample_bytes,
                encoding,
                sample: text,
            });
        }
        Ok(ContentRead::Samples(ContentSamples {
            scan_id: scan,
            retention_days: retention.retention_days,
            expires_at: retention.expires_at(requested_at),
            samples,
        }))
    }
}

/// Destroys the content keys of the scans `due` lists as expired at the clock's now (at most
/// [`SHRED_BATCH`] a call). Returns how many were newly destroyed; a failure is logged and the scan is
/// listed again on the next round.
pub async fn shred_expired_once<F, Fut, E>(services: &Services, due: &mut F) -> Result<usize, E>
where
    F: FnMut(DateTime<Utc>, usize) -> Fut,
    Fut: Future<Output = Result<Vec<ExpiredContent>, E>>,
{
    let expired = due(services.pipeline.clock().now(), SHRED_BATCH).await?;
    let mut destroyed = 0;
    for item in &expired {
        match services
            .destroy_content_key(&item.tenant, item.scan_id, ShredReason::RetentionExpired)
            .await
        {
            Ok(Ok(true)) => destroyed += 1,
            Ok(Ok(false)) => {}
            Ok(Err(refused)) => {
                tracing::warn!(scan = %item.scan_id, %refused, "content key not destroyed");
            }
            Err(error) => {
                tracing::warn!(scan = %item.scan_id, %error, "content key not destroyed");
            }
        }
    }
    Ok(destroyed)
}

/// Runs [`shred_expired_once`] every [`SHRED_POLL`] until `stop` turns true. Safe in every process
/// at once: destroying a key twice records it once.
pub async fn shred_expired_content<F, Fut, E>(
    services: Services,
    mut due: F,
    mut stop: watch::Receiver<bool>,
) where
    F: FnMut(DateTime<Utc>, usize) -> Fut,
    Fut: Future<Output = Result<Vec<ExpiredContent>, E>>,
    E: std::fmt::Display,
{
    while !*stop.borrow() {
        match shred_expired_once(&services, &mut due).await {
            Ok(n) if n > 0 => {
                tracing::info!(destroyed = n, "content keys of expired samples destroyed")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot list expired content samples"),
        }
        tokio::select! {
            () = tokio::time::sleep(SHRED_POLL) => {}
            _ = stop.changed() => {}
        }
    }
}

//! Content samples (OutScope's `include_content_sample`): a scan may be asked to keep a capped sample
//! of each fetched page's response for a retention period of 7 to 30 days.
//!
//! A sample is personal or confidential data in the log, so it is never stored in the clear: the
//! application seals it with a data key of its scan (kept beside the log, never in it) before the
//! [`ContentSampleKept`](crate::scan::ContentSampleKept) event is written, and destroys that key when
//! the retention ends, the scan is deleted or its tenant is erased
//! ([`ContentKeyDestroyed`](crate::scan::ContentKeyDestroyed)). Without the key the ciphertext in the
//! log, in read models, in backups and in exported packages is noise, while every event and hash of
//! the chain stays as it was (crypto-shredding). This module holds the pure parts: the retention
//! setting, the rule for paths that are never sampled, and the sealed bytes as the log holds them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::DomainError;

/// Fewest days a sample may be kept.
pub const MIN_RETENTION_DAYS: u16 = 7;
/// Most days a sample may be kept.
pub const MAX_RETENTION_DAYS: u16 = 30;
/// Most bytes of a response kept in one sample.
pub const MAX_SAMPLE_BYTES: usize = 4 * 1024;
/// Most sealed bytes one sample may carry: the sample, its nonce and its tag.
const MAX_SEALED_BYTES: usize = MAX_SAMPLE_BYTES + 64;

/// A scan's request to keep content samples, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ContentSampling {
    /// Days after the scan was requested until its samples are destroyed (7–30).
    #[serde(deserialize_with = "retention_days")]
    #[schemars(range(min = 7, max = 30))]
    pub retention_days: u16,
}

fn retention_days<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    let days = u16::deserialize(deserializer)?;
    ContentSampling::new(days)
        .map(|sampling| sampling.retention_days)
        .map_err(serde::de::Error::custom)
}

impl ContentSampling {
    /// Sampling kept for `retention_days`, which must be 7 to 30.
    pub fn new(retention_days: u16) -> Result<Self, DomainError> {
        if !(MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&retention_days) {
            return Err(DomainError::invalid(
                "content_retention_days",
                format!("must be between {MIN_RETENTION_DAYS} and {MAX_RETENTION_DAYS}"),
            ));
        }
        Ok(Self { retention_days })
    }

    /// When samples of a scan requested at `requested_at` expire.
    pub fn expires_at(self, requested_at: DateTime<Utc>) -> DateTime<Utc> {
        requested_at + chrono::Duration::days(i64::from(self.retention_days))
    }

    /// The default retention (the shortest).
    pub fn default_retention() -> Self {
        Self {
            retention_days: MIN_RETENTION_DAYS,
        }
    }
}

/// Whether a URL path looks like it serves a secret — an environment file, a key, a credentials
/// store, a repository's internals. Such a response is never sampled, whatever was asked.
pub fn looks_secret(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let lower = path.to_ascii_lowercase();
    let segments: Vec<&str> = lower.split('/').filter(|s| !s.is_empty()).collect();
    let Some(last) = segments.last() else {
        return false;
    };
    const SECRET_DIRECTORIES: [&str; 5] = [".git", ".svn", ".hg", ".aws", ".ssh"];
    const SECRET_NAMES: [&str; 11] = [
        ".htpasswd",
        ".npmrc",
        ".pypirc",
        ".netrc",
        ".pgpass",
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
        "credentials",
        "wp-config.php",
    ];
    const SECRET_EXTENSIONS: [&str; 9] = [
        ".pem",
        ".key",
        ".p12",
        ".pfx",
        ".jks",
        ".keystore",
        ".kdbx",
        ".asc",
        ".gpg",
    ];
    segments.iter().any(|s| SECRET_DIRECTORIES.contains(s))
        || last.starts_with(".env")
        || last.ends_with(".env")
        || SECRET_NAMES.contains(last)
        || last.contains("secret")
        || last.contains("passwd")
        || last.contains("password")
        || SECRET_EXTENSIONS.iter().any(|ext| last.ends_with(ext))
}

/// A sample sealed with its scan's data key: nonce, ciphertext and tag, stored as base64. The
/// domain never sees the sample in the clear and cannot open it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct SealedBytes(Vec<u8>);

impl SealedBytes {
    /// Wraps sealed bytes; refuses more than a sample's worth.
    pub fn new(bytes: Vec<u8>) -> Result<Self, DomainError> {
        if bytes.len() > MAX_SEALED_BYTES {
            return Err(DomainError::invalid(
                "sealed",
                format!("at most {MAX_SEALED_BYTES} sealed bytes are kept"),
            ));
        }
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SealedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedBytes({} bytes)", self.0.len())
    }
}

impl TryFrom<String> for SealedBytes {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(text.as_bytes())
            .map_err(|e| format!("sealed bytes are not base64: {e}"))?;
        Self::new(bytes).map_err(|e| e.to_string())
    }
}

impl From<SealedBytes> for String {
    fn from(sealed: SealedBytes) -> String {
        STANDARD.encode(sealed.0)
    }
}

/// A scan whose content retention has ended and whose key is still to be destroyed (listed by the
/// scans read model, destroyed by the application's sweep).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredContent {
    pub tenant: crate::tenant::TenantId,
    pub scan_id: crate::ids::ScanId,
}

/// Why a scan's content key was destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShredReason {
    /// The retention the scan asked for ended.
    RetentionExpired,
    /// The scan was deleted.
    ScanDeleted,
    /// The whole tenant was erased on request.
    TenantErased,
}

impl ShredReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RetentionExpired => "retention_expired",
            Self::ScanDeleted => "scan_deleted",
            Self::TenantErased => "tenant_erased",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_paths_are_never_sampled() {
        for path in [
            "/.env",
            "/app/.env.local",
            "/prod.env",
            "/.git/config",
            "/.aws/credentials",
            "/server.KEY",
            "/certs/tls.pem",
            "/.htpasswd",
            "/id_rsa",
            "/wp-config.php",
            "/secrets.json",
            "/config/password.txt",
            "/.env?x=1",
        ] {
            assert!(looks_secret(path), "{path}");
        }
        for path in [
            "/",
            "/login",
            "/api/v1/users",
            "/environment",
            "/docs/keys.html",
        ] {
            assert!(!looks_secret(path), "{path}");
        }
    }

    #[test]
    fn retention_is_seven_to_thirty_days() {
        assert!(ContentSampling::new(6).is_err());
        assert!(ContentSampling::new(31).is_err());
        assert_eq!(ContentSampling::new(30).map(|s| s.retention_days), Ok(30));
        let stored: Result<ContentSampling, _> = serde_json::from_str(r#"{"retention_days": 90}"#);
        assert!(stored.is_err());
    }

    #[test]
    fn sealed_bytes_round_trip_as_base64_and_are_bounded() {
        let sealed = SealedBytes::new(vec![1, 2, 3]).unwrap();
        let text = serde_json::to_string(&sealed).unwrap();
        assert_eq!(text, "\"AQID\"");
        assert_eq!(serde_json::from_str::<SealedBytes>(&text).unwrap(), sealed);
        assert!(SealedBytes::new(vec![0; MAX_SEALED_BYTES + 1]).is_err());
        assert!(serde_json::from_str::<SealedBytes>("\"not base64!\"").is_err());
    }
}

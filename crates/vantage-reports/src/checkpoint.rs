//! Signed checkpoints of the event log's head: "at global position P the chain hash was H", signed
//! with the server's Ed25519 key and kept outside the database (a file, a ticket, another system).
//!
//! The hash chain alone cannot show that someone with write access deleted the newest events, or
//! rewrote an event and recomputed every hash after it: the chain is consistent again. A checkpoint
//! taken earlier can: the log must still hold an event at P whose chain hash is H. Checkpoints are
//! JSON lines (`{"checkpoint": {...}, "signature": "<base64>"}`). The signature is over the
//! checkpoint's canonical text — its fields in declaration order, compact — which is recomputed from
//! the parsed fields, so a client that parses and re-serialises the JSON can still verify it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::signing::{PublicKey, SigningKey};

/// The `format` of a checkpoint this code writes and reads.
pub const FORMAT: &str = "vantage-checkpoint/1";

/// What a checkpoint attests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Checkpoint {
    /// Always `vantage-checkpoint/1`.
    pub format: String,
    /// The log's head when the checkpoint was taken.
    pub position: u64,
    /// The chain hash of the event at `position`.
    pub head_hash: String,
    pub created_at: DateTime<Utc>,
    /// SHA-256 of the raw public key that signs it.
    pub public_key_sha256: String,
}

impl Checkpoint {
    /// The signed text: the fields in declaration order, compact JSON.
    fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A checkpoint with its signature, as one line of a checkpoints file or an API answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    /// Base64 of the Ed25519 signature of `checkpoint`'s text.
    pub signature: String,
}

/// Why a checkpoint is not to be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("not a signed checkpoint: {0}")]
    Unreadable(String),
    #[error("signed by key {found}, not by the expected key {expected}")]
    OtherKey { found: String, expected: String },
    #[error("the signature does not match the checkpoint")]
    BadSignature,
}

impl SignedCheckpoint {
    /// Signs "the log's head is `head_hash` at `position`".
    pub fn sign(
        key: &SigningKey,
        position: u64,
        head_hash: &str,
        created_at: DateTime<Utc>,
    ) -> Self {
        let checkpoint = Checkpoint {
            format: FORMAT.to_owned(),
            position,
            head_hash: head_hash.to_owned(),
            created_at,
            public_key_sha256: key.public_key().fingerprint(),
        };
        let signature = STANDARD.encode(key.sign(&checkpoint.canonical()));
        Self {
            checkpoint,
            signature,
        }
    }

    /// The checkpoint, once its signature is checked against `key`.
    pub fn verify(&self, key: &PublicKey) -> Result<Checkpoint, CheckpointError> {
        let checkpoint = self.checkpoint.clone();
        if checkpoint.format != FORMAT {
            return Err(CheckpointError::Unreadable(format!(
                "format {:?} is not {FORMAT:?}",
                checkpoint.format
            )));
        }
        if checkpoint.public_key_sha256 != key.fingerprint() {
            return Err(CheckpointError::OtherKey {
                found: checkpoint.public_key_sha256,
                expected: key.fingerprint(),
            });
        }
        let signature = STANDARD
            .decode(&self.signature)
            .map_err(|_| CheckpointError::BadSignature)?;
        if key.verifies(&checkpoint.canonical(), &signature) {
            Ok(checkpoint)
        } else {
            Err(CheckpointError::BadSignature)
        }
    }

    /// One line of a checkpoints file.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads one line of a checkpoints file.
    pub fn from_line(line: &str) -> Result<Self, CheckpointError> {
        serde_json::from_str(line).map_err(|e| CheckpointError::Unreadable(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn key() -> SigningKey {
        SigningKey::from_seed(&[9; 32]).unwrap()
    }

    #[test]
    fn a_checkpoint_round_trips_through_a_line_and_verifies() {
        let at = Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
        let signed = SignedCheckpoint::sign(&key(), 42, &"ab".repeat(32), at);
        let read = SignedCheckpoint::from_line(&signed.to_line()).unwrap();
        let checkpoint = read.verify(&key().public_key()).unwrap();
        assert_eq!((checkpoint.position, checkpoint.created_at), (42, at));
    }

    #[test]
    fn a_parsed_and_reserialised_checkpoint_still_verifies() {
        let at = Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap()
            + chrono::Duration::nanoseconds(123_456_789);
        let line = SignedCheckpoint::sign(&key(), 7, &"cd".repeat(32), at).to_line();
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let again: SignedCheckpoint = serde_json::from_value(value).unwrap();
        assert!(again.verify(&key().public_key()).is_ok());
    }

    #[test]
    fn an_edited_checkpoint_or_another_key_is_refused() {
        let at = Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
        let line = SignedCheckpoint::sign(&key(), 42, &"ab".repeat(32), at).to_line();
        let edited = SignedCheckpoint::from_line(&line.replace(":42,", ":41,")).unwrap();
        assert_eq!(
            edited.verify(&key().public_key()),
            Err(CheckpointError::BadSignature)
        );
        let other = SigningKey::from_seed(&[1; 32]).unwrap().public_key();
        let original = SignedCheckpoint::from_line(&line).unwrap();
        assert!(matches!(
            original.verify(&other),
            Err(CheckpointError::OtherKey { .. })
        ));
        assert!(SignedCheckpoint::from_line("{").is_err());
    }
}

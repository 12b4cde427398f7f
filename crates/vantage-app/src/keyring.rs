//! The server's secret key material: one 32-byte master key, from which a key per purpose is
//! derived (HMAC-SHA256 of the master key and the purpose's name), so that no key serves two ends.
//!
//! * **Event tokens** — short-lived, read-only grants to one scan's live stream, for browsers whose
//!   `EventSource` cannot send headers: `vte_<payload>.<tag>`, the payload naming the tenant, the
//!   scan and the expiry, the tag an HMAC over it. Any replica holding the same master key accepts a
//!   token another one minted.
//! * **Erasure confirmations** — `DELETE /tenant` asks first for a token (`vtx_<expiry>.<tag>`) that
//!   only the same key of the same tenant can hand back within [`ERASURE_TOKEN_SECONDS`], so erasing
//!   a tenant always takes two deliberate requests.
//! * **Sealing** — webhook signing secrets and scans' content keys are kept encrypted at rest
//!   (ChaCha20-Poly1305, a random nonce per secret, the owner's identity as associated data), so a
//!   copy of the database alone does not yield them. [`DataKey`] is the same sealing under a key of
//!   its own (a scan's content key).
//!
//! Where the master key comes from is the binary's business (a file in the data directory, created
//! on first start, or the same key given to every replica); it is never logged.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use vantage_domain::ids::{ApiKeyId, ScanId};
use vantage_domain::tenant::TenantId;

/// Longest life of an event token.
pub const MAX_EVENT_TOKEN_SECONDS: i64 = 300;
const EVENT_TOKEN_PREFIX: &str = "vte_";
/// How long an erasure confirmation token is accepted.
pub const ERASURE_TOKEN_SECONDS: i64 = 300;
const ERASURE_TOKEN_PREFIX: &str = "vtx_";

/// The master key and what is derived from it.
#[derive(Clone)]
pub struct Keyring {
    master: [u8; 32],
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(..)")
    }
}

/// What an event token grants: read the live stream of one scan of one tenant, until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventGrant {
    pub tenant: TenantId,
    pub scan_id: ScanId,
    pub expires_at: DateTime<Utc>,
}

/// Why a sealed secret or a token is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("the token was not issued by this server for this use")]
    BadToken,
    #[error("the token has expired")]
    Expired,
    #[error("the sealed secret cannot be opened with this server's key")]
    Unsealable,
    #[error("a secrets key is 64 hex digits (32 bytes)")]
    BadKey,
}

impl Keyring {
    /// A keyring over `master` (32 bytes of key material).
    pub fn new(master: [u8; 32]) -> Self {
        Self { master }
    }

    /// A keyring with a fresh random master key (tests, and a first start).
    pub fn generate() -> Self {
        Self::new(crate::seams::random_bytes())
    }

    /// The master key as 64 hex digits, the form it is kept in (a key file, a secret store).
    pub fn to_hex(&self) -> String {
        use std::fmt::Write;
        self.master
            .iter()
            .fold(String::with_capacity(64), |mut out, b| {
                let _ = write!(out, "{b:02x}");
                out
            })
    }

    /// A keyring from 64 hex digits (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Result<Self, KeyringError> {
        let text = text.trim();
        if text.len() != 64 || !text.is_ascii() {
            return Err(KeyringError::BadKey);
        }
        let mut master = [0u8; 32];
        for (byte, pair) in master.iter_mut().zip(text.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| KeyringError::BadKey)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| KeyringError::BadKey)?;
        }
        Ok(Self::new(master))
    }

    fn derive(&self, purpose: &str) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.master);
        let tag = hmac::sign(&key, purpose.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// The seed of the package signing key every replica derives alike when no key file is given.
    pub fn signing_seed(&self) -> [u8; 32] {
        self.derive("vantage package signing key v1")
    }

    fn token_key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.derive("vantage event token v1"))
    }

    /// A token granting `grant`.
    pub fn mint_event_token(&self, grant: &EventGrant) -> String {
        let payload = format!(
            "v1.{}.{}.{}",
            grant.tenant,
            grant.scan_id,
            grant.expires_at.timestamp()
        );
        let tag = hmac::sign(&self.token_key(), payload.as_bytes());
        format!(
            "{EVENT_TOKEN_PREFIX}{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// What `token` grants, if this keyring minted it and it has not expired at `now`.
    pub fn check_event_token(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<EventGrant, KeyringError> {
        let body = token
            .strip_prefix(EVENT_TOKEN_PREFIX)
            .ok_or(KeyringError::BadToken)?;
        let (payload, tag) = body.split_once('.').ok_or(KeyringError::BadToken)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| KeyringError::BadToken)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| KeyringError::BadToken)?;
        hmac::verify(&self.token_key(), &payload, &tag).map_err(|_| KeyringError::BadToken)?;
        let payload = String::from_utf8(payload).map_err(|_| KeyringError::BadToken)?;
        let mut parts = payload.split('.');
        let (Some("v1"), Some(tenant), Some(scan), Some(expiry), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(KeyringError::BadToken);
        };
        let expires_at = expiry
            .parse::<i64>()
            .ok()
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .ok_or(KeyringError::BadToken)?;
        if expires_at <= now {
            return Err(KeyringError::Expired);
        }
        Ok(EventGrant {
            tenant: TenantId::parse(tenant).map_err(|_| KeyringError::BadToken)?,
            scan_id: scan.parse().map_err(|_| KeyringError::BadToken)?,
            expires_at,
        })
    }

    fn sealing_key(&self) -> DataKey {
        DataKey(self.derive("vantage sealed secret v1"))
    }

    fn erasure_key(&self) -> hmac::Key {
        hmac::Key::new(
            hmac::HMAC_SHA256,
            &self.derive("vantage erasure confirmation v1"),
        )
    }

    /// What an erasure token's tag covers.
    fn erasure_claim(tenant: &TenantId, key: ApiKeyId, expiry: i64) -> String {
        format!("v1.{tenant}.{key}.{expiry}")
    }

    /// A token confirming that `key` of `tenant` means to erase the tenant, accepted until
    /// `expires_at`.
    pub fn mint_erasure_token(
        &self,
        tenant: &TenantId,
        key: ApiKeyId,
        expires_at: DateTime<Utc>,
    ) -> String {
        let expiry = expires_at.timestamp();
        let claim = Self::erasure_claim(tenant, key, expiry);
        let tag = hmac::sign(&self.erasure_key(), claim.as_bytes());
        format!(
            "{ERASURE_TOKEN_PREFIX}{expiry}.{}",
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// Whether `token` was minted for `key` of `tenant` and is still valid at `now`.
    pub fn check_erasure_token(
        &self,
        token: &str,
        tenant: &TenantId,
        key: ApiKeyId,
        now: DateTime<Utc>,
    ) -> Result<(), KeyringError> {
        let (expiry, tag) = token
            .strip_prefix(ERASURE_TOKEN_PREFIX)
            .and_then(|body| body.split_once('.'))
            .ok_or(KeyringError::BadToken)?;
        let expiry: i64 = expiry.parse().map_err(|_| KeyringError::BadToken)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| KeyringError::BadToken)?;
        let claim = Self::erasure_claim(tenant, key, expiry);
        hmac::verify(&self.erasure_key(), claim.as_bytes(), &tag)
            .map_err(|_| KeyringError::BadToken)?;
        if expiry <= now.timestamp() {
            return Err(KeyringError::Expired);
        }
        Ok(())
    }

    /// Encrypts `secret` for `owner` (associated data: a sealed secret opens only for its owner).
    pub fn seal(&self, owner: &str, secret: &[u8]) -> Vec<u8> {
        self.sealing_key().seal(owner, secret)
    }

    /// Decrypts what [`Keyring::seal`] made for `owner`.
    pub fn open(&self, owner: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyringError> {
        self.sealing_key().open(owner, sealed)
    }
}

/// A 32-byte data key: the master key's sealing key, or a random key of its own that is kept sealed
/// beside the log and destroyed to make what it sealed unreadable (a scan's content key). Sealing is
/// ChaCha20-Poly1305 with a random nonce, stored in front of the ciphertext, and the sealed thing's
/// identity as associated data, so a ciphertext opens only for what it was sealed for.
#[derive(Clone)]
pub struct DataKey([u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self(crate::seams::random_bytes())
    }

    /// The key from its 32 bytes (as [`DataKey::to_bytes`] gave them); anything else is refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyringError> {
        bytes
            .try_into()
            .map(Self)
            .map_err(|_| KeyringError::Unsealable)
    }

    /// The key's bytes, to be sealed by the master key and kept.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    fn aead(&self) -> LessSafeKey {
        let key = UnboundKey::new(&CHACHA20_POLY1305, &self.0)
            .unwrap_or_else(|_| unreachable!("a 32-byte key fits ChaCha20-Poly1305"));
        LessSafeKey::new(key)
    }

    /// Encrypts `plain` for `context`.
    pub fn seal(&self, context: &str, plain: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = crate::seams::random_bytes();
        let mut sealed = plain.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .unwrap_or_else(|_| unreachable!("sealing a bounded buffer cannot fail"));
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    /// Decrypts what [`DataKey::seal`] made for `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyringError> {
        if sealed.len() < NONCE_LEN {
            return Err(KeyringError::Unsealable);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyringError::Unsealable)?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .aead()
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut in_out)
            .map_err(|_| KeyringError::Unsealable)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(expires_in: i64) -> EventGrant {
        EventGrant {
            tenant: TenantId::default_tenant(),
            scan_id: ScanId(uuid::Uuid::from_u128(7)),
            expires_at: DateTime::from_timestamp(1_800_000_000 + expires_in, 0).unwrap(),
        }
    }

    #[test]
    fn erasure_tokens_confirm_one_key_of_one_tenant_until_they_expire() {
        let keyring = Keyring::generate();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let tenant = TenantId::default_tenant();
        let key = ApiKeyId(uuid::Uuid::from_u128(9));
        let token = keyring.mint_erasure_token(&tenant, key, now + chrono::Duration::seconds(300));
        assert_eq!(
            keyring.check_erasure_token(&token, &tenant, key, now),
            Ok(())
        );
        assert_eq!(
            keyring.check_erasure_token(&token, &tenant, key, now + chrono::Duration::seconds(300)),
            Err(KeyringError::Expired)
        );
        let other_tenant = TenantId::parse("other").unwrap();
        let other_key = ApiKeyId(uuid::Uuid::from_u128(10));
        for (tenant, key) in [(&other_tenant, key), (&tenant, other_key)] {
            assert_eq!(
                keyring.check_erasure_token(&token, tenant, key, now),
                Err(KeyringError::BadToken)
            );
        }
        // A later expiry with the old tag, another server's key, an event token: refused.
        let (_, tag) = token.split_once('.').unwrap();
        let extended = format!("vtx_{}.{tag}", now.timestamp() + 10_000);
        let event_token = keyring.mint_event_token(&grant(60));
        for forged in [
            extended.as_str(),
            event_token.as_str(),
            "",
            "vtx_",
            "vtx_1.x",
        ] {
            assert_eq!(
                keyring.check_erasure_token(forged, &tenant, key, now),
                Err(KeyringError::BadToken)
            );
        }
        assert_eq!(
            Keyring::generate().check_erasure_token(&token, &tenant, key, now),
            Err(KeyringError::BadToken)
        );
    }

    #[test]
    fn event_tokens_grant_what_they_say_until_they_expire() {
        let keyring = Keyring::generate();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let token = keyring.mint_event_token(&grant(60));
        assert_eq!(keyring.check_event_token(&token, now), Ok(grant(60)));
        assert_eq!(
            keyring.check_event_token(&token, now + chrono::Duration::seconds(61)),
            Err(KeyringError::Expired)
        );
        // Another server's key, a changed payload or tag: refused.
        assert_eq!(
            Keyring::generate().check_event_token(&token, now),
            Err(KeyringError::BadToken)
        );
        let (payload, tag) = token.split_once('.').unwrap();
        let forged = format!("{}x.{tag}", &payload[..payload.len() - 1]);
        assert_eq!(
            keyring.check_event_token(&forged, now),
            Err(KeyringError::BadToken)
        );
        assert_eq!(
            keyring.check_event_token("vtg_default_x_y", now),
            Err(KeyringError::BadToken)
        );
    }

    #[test]
    fn sealed_secrets_open_only_for_their_owner_with_the_same_key() {
        let keyring = Keyring::generate();
        let sealed = keyring.seal("webhook-1", b"whsec_secret");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(keyring.open("webhook-1", &sealed).unwrap(), b"whsec_secret");
        assert!(keyring.open("webhook-2", &sealed).is_err());
        assert!(Keyring::generate().open("webhook-1", &sealed).is_err());
        assert_ne!(
            sealed,
            keyring.seal("webhook-1", b"whsec_secret"),
            "a fresh nonce each time"
        );
    }

    #[test]
    fn a_key_round_trips_through_its_hex_form_and_bad_text_is_refused() {
        let keyring = Keyring::generate();
        let hex = keyring.to_hex();
        assert_eq!(hex.len(), 64);
        let again = Keyring::from_hex(&format!("  {hex}\n")).unwrap();
        let sealed = keyring.seal("owner", b"s");
        assert_eq!(again.open("owner", &sealed).unwrap(), b"s");
        for bad in [
            "",
            "00",
            &hex[..63],
            &format!("{}zz", &hex[..62]),
            &"é".repeat(32),
        ] {
            assert_eq!(
                Keyring::from_hex(bad).err(),
                Some(KeyringError::BadKey),
                "{bad:?}"
            );
        }
    }
}

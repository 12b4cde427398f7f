//! The Ed25519 key that signs compliance packages (and, later, log checkpoints), in the formats
//! OpenSSL reads: the private key as a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, what `openssl
//! genpkey -algorithm ed25519` writes), the public key as an SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
//! A signature is the raw 64 bytes, so `openssl pkeyutl -verify -pubin -inkey key.pem -rawin -in
//! manifest.json -sigfile manifest.sig` checks a package without Vantage.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SecureRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest, Sha256};

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the key's 32 bytes follow.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Why a key could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("it is not a PEM document ({0})")]
    NotPem(&'static str),
    #[error("it is not an Ed25519 {0} key")]
    NotEd25519(&'static str),
    #[error("no random numbers are available")]
    Random,
}

/// A private signing key.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// A public key that checks signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn unpem(label: &'static str, text: &str) -> Result<Vec<u8>, KeyError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).ok_or(KeyError::NotPem(label))? + begin.len();
    let stop = text[start..].find(&end).ok_or(KeyError::NotPem(label))? + start;
    let body: String = text[start..stop].split_whitespace().collect();
    STANDARD.decode(body).map_err(|_| KeyError::NotPem(label))
}

impl SigningKey {
    /// A new random key.
    pub fn generate(random: &dyn SecureRandom) -> Result<Self, KeyError> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(random).map_err(|_| KeyError::Random)?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    /// The key whose 32-byte seed this is (a key derived from another secret).
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self, KeyError> {
        let pair =
            Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| KeyError::NotEd25519("seed"))?;
        // PKCS#8 v1 (RFC 8410): version 0, the algorithm, the seed as an OCTET STRING in an OCTET
        // STRING.
        let mut pkcs8 = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        pkcs8.extend_from_slice(seed);
        Ok(Self { pair, pkcs8 })
    }

    fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|_| KeyError::NotEd25519("private"))?;
        Ok(Self {
            pair,
            pkcs8: der.to_vec(),
        })
    }

    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        Self::from_pkcs8(&unpem("PRIVATE KEY", text)?)
    }

    /// The key as a PKCS#8 PEM document (keep it secret).
    pub fn to_pem(&self) -> String {
        pem("PRIVATE KEY", &self.pkcs8)
    }

    pub fn public_key(&self) -> PublicKey {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(key)
    }

    /// The 64-byte Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

impl PublicKey {
    /// Reads an SPKI PEM public key (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let der = unpem("PUBLIC KEY", text)?;
        match der.strip_prefix(&SPKI_PREFIX[..]) {
            Some(key) if key.len() == 32 => {
                let mut bytes = [0u8; 32];
                bytes.copy_from_slice(key);
                Ok(Self(bytes))
            }
            _ => Err(KeyError::NotEd25519("public")),
        }
    }

    pub fn to_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.0);
        pem("PUBLIC KEY", &der)
    }

    /// SHA-256 of the raw key, hex: how people compare keys.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.0))
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, self.0)
            .verify(message, signature)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    #[test]
    fn keys_round_trip_through_pem_and_sign() {
        let key = SigningKey::generate(&SystemRandom::new()).unwrap();
        let again = SigningKey::from_pem(&key.to_pem()).unwrap();
        assert_eq!(key.public_key(), again.public_key());
        let public = PublicKey::from_pem(&key.public_key().to_pem()).unwrap();
        let signature = key.sign(b"manifest");
        assert_eq!(signature.len(), 64);
        assert!(public.verifies(b"manifest", &signature));
        assert!(!public.verifies(b"manifest!", &signature));
        let other = SigningKey::generate(&SystemRandom::new()).unwrap();
        assert!(!other.public_key().verifies(b"manifest", &signature));
    }

    #[test]
    fn a_seeded_key_is_the_same_key_every_time_and_round_trips() {
        let a = SigningKey::from_seed(&[7; 32]).unwrap();
        let b = SigningKey::from_pem(&a.to_pem()).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(a.sign(b"x"), b.sign(b"x"));
    }

    #[test]
    fn garbage_is_refused_with_what_was_expected() {
        assert!(matches!(
            SigningKey::from_pem("hello"),
            Err(KeyError::NotPem("PRIVATE KEY"))
        ));
        let rsa_like = pem("PUBLIC KEY", &[0x30, 0x03, 0x02, 0x01, 0x00]);
        assert!(matches!(
            PublicKey::from_pem(&rsa_like),
            Err(KeyError::NotEd25519("public"))
        ));
    }
}

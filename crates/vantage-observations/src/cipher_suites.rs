//! The TLS cipher suites Vantage knows by their IANA code: what each one's key exchange and bulk
//! cipher are, which protocol versions may carry it, and whether it is an export suite. The TLS
//! probe offers exactly these when it enumerates a server's suites, and the rules judge a suite by
//! its entry here (forward secrecy, RC4, 3DES, CBC, NULL, anonymous, export) — a suite's meaning is
//! fixed by its code, so a recorded code is all a verdict needs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How the two sides agree on keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyExchange {
    /// The client encrypts the secret to the server's RSA key: no forward secrecy.
    Rsa,
    /// Ephemeral finite-field Diffie-Hellman, signed by the server.
    Dhe,
    /// Ephemeral elliptic-curve Diffie-Hellman, signed by the server.
    Ecdhe,
    /// Diffie-Hellman without any authentication of the server.
    DhAnon,
    /// Elliptic-curve Diffie-Hellman without any authentication of the server.
    EcdhAnon,
    /// TLS 1.3: always ephemeral (EC)DHE, negotiated apart from the suite.
    Tls13,
}

/// The bulk encryption of a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BulkCipher {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20Poly1305,
    Aes128Ccm,
    Aes256Ccm,
    Aes128Ccm8,
    Aria128Gcm,
    Aria256Gcm,
    Aes128Cbc,
    Aes256Cbc,
    Camellia128Cbc,
    Camellia256Cbc,
    SeedCbc,
    IdeaCbc,
    /// Triple DES: a 64-bit block (SWEET32).
    TripleDesCbc,
    /// Single DES (56-bit key).
    DesCbc,
    /// DES with a 40-bit key (export).
    Des40Cbc,
    Rc2Cbc40,
    Rc4_128,
    Rc4_40,
    Rc4_56,
    /// No encryption at all.
    Null,
}

impl BulkCipher {
    /// A block cipher in CBC mode (BEAST in TLS 1.0, Lucky 13).
    pub fn is_cbc(self) -> bool {
        matches!(
            self,
            Self::Aes128Cbc
                | Self::Aes256Cbc
                | Self::Camellia128Cbc
                | Self::Camellia256Cbc
                | Self::SeedCbc
                | Self::IdeaCbc
                | Self::TripleDesCbc
                | Self::DesCbc
                | Self::Des40Cbc
                | Self::Rc2Cbc40
        )
    }

    /// RC4, whatever its key length.
    pub fn is_rc4(self) -> bool {
        matches!(self, Self::Rc4_128 | Self::Rc4_40 | Self::Rc4_56)
    }

    /// A key of fewer than 112 bits (DES, export ciphers).
    pub fn is_weak_key(self) -> bool {
        matches!(
            self,
            Self::DesCbc | Self::Des40Cbc | Self::Rc2Cbc40 | Self::Rc4_40 | Self::Rc4_56
        )
    }
}

/// One known suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuiteInfo {
    /// The IANA code.
    pub id: u16,
    /// The IANA name, e.g. `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`.
    pub name: &'static str,
    pub key_exchange: KeyExchange,
    pub cipher: BulkCipher,
    /// An export-grade suite (deliberately weakened, FREAK / Logjam).
    pub export: bool,
    /// Defined only for TLS 1.2 (AEAD ciphers and SHA-256/384 MACs): not offered to 1.0/1.1.
    pub tls12_only: bool,
}

impl SuiteInfo {
    /// Keys are ephemeral and the server is authenticated: a stolen server key cannot decrypt
    /// recorded traffic.
    pub fn forward_secret(&self) -> bool {
        matches!(
            self.key_exchange,
            KeyExchange::Dhe | KeyExchange::Ecdhe | KeyExchange::Tls13
        )
    }

    /// The server is not authenticated at all.
    pub fn anonymous(&self) -> bool {
        matches!(
            self.key_exchange,
            KeyExchange::DhAnon | KeyExchange::EcdhAnon
        )
    }

    /// Export-grade, anonymous, unencrypted (NULL) or single-DES: broken whatever else the server
    /// offers (SSL Labs grades such a server F).
    pub fn insecure(&self) -> bool {
        self.export
            || self.anonymous()
            || self.cipher == BulkCipher::Null
            || self.cipher.is_weak_key()
    }

    /// A TLS 1.3 suite.
    pub fn is_tls13(&self) -> bool {
        self.key_exchange == KeyExchange::Tls13
    }
}

macro_rules! suites {
    (@has $wanted:ident) => { false };
    (@has export export $($rest:ident)*) => { true };
    (@has tls12 tls12 $($rest:ident)*) => { true };
    (@has $wanted:ident $other:ident $($rest:ident)*) => { suites!(@has $wanted $($rest)*) };
    ($($id:literal $name:ident $kx:ident $cipher:ident $($flag:ident)*;)+) => {
        /// Every suite Vantage knows, in the order the probe offers them (strongest first).
        pub const SUITES: &[SuiteInfo] = &[$(SuiteInfo {
            id: $id,
            name: stringify!($name),
            key_exchange: KeyExchange::$kx,
            cipher: BulkCipher::$cipher,
            export: suites!(@has export $($flag)*),
            tls12_only: suites!(@has tls12 $($flag)*),
        }),+];
    };
}

suites! {
    0x1301 TLS_AES_128_GCM_SHA256 Tls13 Aes128Gcm;
    0x1302 TLS_AES_256_GCM_SHA384 Tls13 Aes256Gcm;
    0x1303 TLS_CHACHA20_POLY1305_SHA256 Tls13 Chacha20Poly1305;
    0x1304 TLS_AES_128_CCM_SHA256 Tls13 Aes128Ccm;
    0x1305 TLS_AES_128_CCM_8_SHA256 Tls13 Aes128Ccm8;
    0xc02c TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 Ecdhe Aes256Gcm tls12;
    0xc030 TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 Ecdhe Aes256Gcm tls12;
    0xc02b TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 Ecdhe Aes128Gcm tls12;
    0xc02f TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 Ecdhe Aes128Gcm tls12;
    0xcca9 TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 Ecdhe Chacha20Poly1305 tls12;
    0xcca8 TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 Ecdhe Chacha20Poly1305 tls12;
    0xc0ad TLS_ECDHE_ECDSA_WITH_AES_256_CCM Ecdhe Aes256Ccm tls12;
    0xc0ac TLS_ECDHE_ECDSA_WITH_AES_128_CCM Ecdhe Aes128Ccm tls12;
    0xc05d TLS_ECDHE_ECDSA_WITH_ARIA_256_GCM_SHA384 Ecdhe Aria256Gcm tls12;
    0xc061 TLS_ECDHE_RSA_WITH_ARIA_256_GCM_SHA384 Ecdhe Aria256Gcm tls12;
    0xc05c TLS_ECDHE_ECDSA_WITH_ARIA_128_GCM_SHA256 Ecdhe Aria128Gcm tls12;
    0xc060 TLS_ECDHE_RSA_WITH_ARIA_128_GCM_SHA256 Ecdhe Aria128Gcm tls12;
    0x009f TLS_DHE_RSA_WITH_AES_256_GCM_SHA384 Dhe Aes256Gcm tls12;
    0x009e TLS_DHE_RSA_WITH_AES_128_GCM_SHA256 Dhe Aes128Gcm tls12;
    0x00a3 TLS_DHE_DSS_WITH_AES_256_GCM_SHA384 Dhe Aes256Gcm tls12;
    0x00a2 TLS_DHE_DSS_WITH_AES_128_GCM_SHA256 Dhe Aes128Gcm tls12;
    0xccaa TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256 Dhe Chacha20Poly1305 tls12;
    0xc09f TLS_DHE_RSA_WITH_AES_256_CCM Dhe Aes256Ccm tls12;
    0xc09e TLS_DHE_RSA_WITH_AES_128_CCM Dhe Aes128Ccm tls12;
    0xc053 TLS_DHE_RSA_WITH_ARIA_256_GCM_SHA384 Dhe Aria256Gcm tls12;
    0xc052 TLS_DHE_RSA_WITH_ARIA_128_GCM_SHA256 Dhe Aria128Gcm tls12;
    0xc024 TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384 Ecdhe Aes256Cbc tls12;
    0xc028 TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384 Ecdhe Aes256Cbc tls12;
    0xc023 TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 Ecdhe Aes128Cbc tls12;
    0xc027 TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256 Ecdhe Aes128Cbc tls12;
    0xc073 TLS_ECDHE_ECDSA_WITH_CAMELLIA_256_CBC_SHA384 Ecdhe Camellia256Cbc tls12;
    0xc077 TLS_ECDHE_RSA_WITH_CAMELLIA_256_CBC_SHA384 Ecdhe Camellia256Cbc tls12;
    0xc072 TLS_ECDHE_ECDSA_WITH_CAMELLIA_128_CBC_SHA256 Ecdhe Camellia128Cbc tls12;
    0xc076 TLS_ECDHE_RSA_WITH_CAMELLIA_128_CBC_SHA256 Ecdhe Camellia128Cbc tls12;
    0x006b TLS_DHE_RSA_WITH_AES_256_CBC_SHA256 Dhe Aes256Cbc tls12;
    0x0067 TLS_DHE_RSA_WITH_AES_128_CBC_SHA256 Dhe Aes128Cbc tls12;
    0x00c4 TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA256 Dhe Camellia256Cbc tls12;
    0x00be TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA256 Dhe Camellia128Cbc tls12;
    0xc00a TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA Ecdhe Aes256Cbc;
    0xc014 TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA Ecdhe Aes256Cbc;
    0xc009 TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA Ecdhe Aes128Cbc;
    0xc013 TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA Ecdhe Aes128Cbc;
    0x0039 TLS_DHE_RSA_WITH_AES_256_CBC_SHA Dhe Aes256Cbc;
    0x0033 TLS_DHE_RSA_WITH_AES_128_CBC_SHA Dhe Aes128Cbc;
    0x0038 TLS_DHE_DSS_WITH_AES_256_CBC_SHA Dhe Aes256Cbc;
    0x0032 TLS_DHE_DSS_WITH_AES_128_CBC_SHA Dhe Aes128Cbc;
    0x0088 TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA Dhe Camellia256Cbc;
    0x0045 TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA Dhe Camellia128Cbc;
    0x009d TLS_RSA_WITH_AES_256_GCM_SHA384 Rsa Aes256Gcm tls12;
    0x009c TLS_RSA_WITH_AES_128_GCM_SHA256 Rsa Aes128Gcm tls12;
    0xc09d TLS_RSA_WITH_AES_256_CCM Rsa Aes256Ccm tls12;
    0xc09c TLS_RSA_WITH_AES_128_CCM Rsa Aes128Ccm tls12;
    0xc051 TLS_RSA_WITH_ARIA_256_GCM_SHA384 Rsa Aria256Gcm tls12;
    0xc050 TLS_RSA_WITH_ARIA_128_GCM_SHA256 Rsa Aria128Gcm tls12;
    0x003d TLS_RSA_WITH_AES_256_CBC_SHA256 Rsa Aes256Cbc tls12;
    0x003c TLS_RSA_WITH_AES_128_CBC_SHA256 Rsa Aes128Cbc tls12;
    0x00c0 TLS_RSA_WITH_CAMELLIA_256_CBC_SHA256 Rsa Camellia256Cbc tls12;
    0x00ba TLS_RSA_WITH_CAMELLIA_128_CBC_SHA256 Rsa Camellia128Cbc tls12;
    0x0035 TLS_RSA_WITH_AES_256_CBC_SHA Rsa Aes256Cbc;
    0x002f TLS_RSA_WITH_AES_128_CBC_SHA Rsa Aes128Cbc;
    0x0084 TLS_RSA_WITH_CAMELLIA_256_CBC_SHA Rsa Camellia256Cbc;
    0x0041 TLS_RSA_WITH_CAMELLIA_128_CBC_SHA Rsa Camellia128Cbc;
    0x0096 TLS_RSA_WITH_SEED_CBC_SHA Rsa SeedCbc;
    0x0007 TLS_RSA_WITH_IDEA_CBC_SHA Rsa IdeaCbc;
    0xc012 TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA Ecdhe TripleDesCbc;
    0xc008 TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA Ecdhe TripleDesCbc;
    0x0016 TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA Dhe TripleDesCbc;
    0x000a TLS_RSA_WITH_3DES_EDE_CBC_SHA Rsa TripleDesCbc;
    0xc011 TLS_ECDHE_RSA_WITH_RC4_128_SHA Ecdhe Rc4_128;
    0xc007 TLS_ECDHE_ECDSA_WITH_RC4_128_SHA Ecdhe Rc4_128;
    0x0005 TLS_RSA_WITH_RC4_128_SHA Rsa Rc4_128;
    0x0004 TLS_RSA_WITH_RC4_128_MD5 Rsa Rc4_128;
    0x0015 TLS_DHE_RSA_WITH_DES_CBC_SHA Dhe DesCbc;
    0x0009 TLS_RSA_WITH_DES_CBC_SHA Rsa DesCbc;
    0x0064 TLS_RSA_EXPORT1024_WITH_RC4_56_SHA Rsa Rc4_56 export;
    0x0062 TLS_RSA_EXPORT1024_WITH_DES_CBC_SHA Rsa DesCbc export;
    0x0014 TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA Dhe Des40Cbc export;
    0x0008 TLS_RSA_EXPORT_WITH_DES40_CBC_SHA Rsa Des40Cbc export;
    0x0006 TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5 Rsa Rc2Cbc40 export;
    0x0003 TLS_RSA_EXPORT_WITH_RC4_40_MD5 Rsa Rc4_40 export;
    0x00a7 TLS_DH_anon_WITH_AES_256_GCM_SHA384 DhAnon Aes256Gcm tls12;
    0x00a6 TLS_DH_anon_WITH_AES_128_GCM_SHA256 DhAnon Aes128Gcm tls12;
    0x006d TLS_DH_anon_WITH_AES_256_CBC_SHA256 DhAnon Aes256Cbc tls12;
    0x006c TLS_DH_anon_WITH_AES_128_CBC_SHA256 DhAnon Aes128Cbc tls12;
    0x00c5 TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA256 DhAnon Camellia256Cbc tls12;
    0x00bf TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA256 DhAnon Camellia128Cbc tls12;
    0x003a TLS_DH_anon_WITH_AES_256_CBC_SHA DhAnon Aes256Cbc;
    0x0034 TLS_DH_anon_WITH_AES_128_CBC_SHA DhAnon Aes128Cbc;
    0x0089 TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA DhAnon Camellia256Cbc;
    0x0046 TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA DhAnon Camellia128Cbc;
    0x001b TLS_DH_anon_WITH_3DES_EDE_CBC_SHA DhAnon TripleDesCbc;
    0x0018 TLS_DH_anon_WITH_RC4_128_MD5 DhAnon Rc4_128;
    0x0019 TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA DhAnon Des40Cbc export;
    0x0017 TLS_DH_anon_EXPORT_WITH_RC4_40_MD5 DhAnon Rc4_40 export;
    0xc019 TLS_ECDH_anon_WITH_AES_256_CBC_SHA EcdhAnon Aes256Cbc;
    0xc018 TLS_ECDH_anon_WITH_AES_128_CBC_SHA EcdhAnon Aes128Cbc;
    0xc017 TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA EcdhAnon TripleDesCbc;
    0xc016 TLS_ECDH_anon_WITH_RC4_128_SHA EcdhAnon Rc4_128;
    0xc006 TLS_ECDHE_ECDSA_WITH_NULL_SHA Ecdhe Null;
    0xc010 TLS_ECDHE_RSA_WITH_NULL_SHA Ecdhe Null;
    0xc015 TLS_ECDH_anon_WITH_NULL_SHA EcdhAnon Null;
    0x003b TLS_RSA_WITH_NULL_SHA256 Rsa Null tls12;
    0x0002 TLS_RSA_WITH_NULL_SHA Rsa Null;
    0x0001 TLS_RSA_WITH_NULL_MD5 Rsa Null;
}

/// The suite with IANA code `id`, if Vantage knows it.
pub fn suite(id: u16) -> Option<&'static SuiteInfo> {
    SUITES.iter().find(|s| s.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_names_say_what_the_entry_says() {
        for (i, s) in SUITES.iter().enumerate() {
            assert!(
                SUITES[i + 1..].iter().all(|o| o.id != s.id),
                "{:#06x} twice",
                s.id
            );
            assert!(s.name.starts_with("TLS_"), "{}", s.name);
            let says = |part: &str| s.name.contains(part);
            match s.key_exchange {
                KeyExchange::Tls13 => assert!(!says("_WITH_"), "{}", s.name),
                KeyExchange::Rsa => assert!(s.name.starts_with("TLS_RSA_"), "{}", s.name),
                KeyExchange::Dhe => assert!(says("_DHE_"), "{}", s.name),
                KeyExchange::Ecdhe => assert!(says("_ECDHE_"), "{}", s.name),
                KeyExchange::DhAnon => assert!(says("_DH_anon_"), "{}", s.name),
                KeyExchange::EcdhAnon => assert!(says("_ECDH_anon_"), "{}", s.name),
            }
            assert_eq!(s.export, says("EXPORT"), "{}", s.name);
            assert_eq!(s.cipher.is_rc4(), says("RC4"), "{}", s.name);
            assert_eq!(
                s.cipher == BulkCipher::TripleDesCbc,
                says("3DES"),
                "{}",
                s.name
            );
            assert_eq!(s.cipher == BulkCipher::Null, says("NULL"), "{}", s.name);
            assert_eq!(
                s.cipher.is_cbc(),
                says("CBC") || says("IDEA") || says("SEED"),
                "{}",
                s.name
            );
            let aead = says("GCM") || says("CCM") || says("CHACHA20");
            if !s.is_tls13() && (aead || says("SHA256") || says("SHA384")) {
                assert!(s.tls12_only, "{} is TLS 1.2 only", s.name);
            }
        }
        assert_eq!(
            suite(0xc02f).unwrap().name,
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        );
        assert!(suite(0xc02f).unwrap().forward_secret());
        assert!(!suite(0x002f).unwrap().forward_secret());
        assert!(suite(0x0034).unwrap().anonymous());
        assert!(suite(0xffff).is_none());
    }
}

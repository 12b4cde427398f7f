//! What the TLS probe saw at one address: protocol versions accepted, the cipher suites accepted
//! under each (with the server's order and key exchange groups), the certificate chain, and whether
//! it is trusted and covers the name.

use std::net::SocketAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One certificate, described by its public facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CertificateSummary {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    /// Whole days from the observation to `not_after` (negative once expired).
    pub days_left: i64,
    pub key_type: String,
    pub key_bits: Option<usize>,
    pub signature_algorithm: String,
    pub self_signed: bool,
    /// Signed certificate timestamps embedded in the certificate (certificate transparency);
    /// absent in observations recorded before it was read.
    #[serde(default)]
    pub embedded_scts: Option<u32>,
    /// The certificate demands a stapled OCSP response (TLS Feature `status_request`, "OCSP
    /// Must-Staple").
    #[serde(default)]
    pub must_staple: bool,
}

/// A protocol version, as the enumeration names it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum TlsVersion {
    #[serde(rename = "TLSv1.0")]
    Tls10,
    #[serde(rename = "TLSv1.1")]
    Tls11,
    #[serde(rename = "TLSv1.2")]
    Tls12,
    #[serde(rename = "TLSv1.3")]
    Tls13,
}

impl TlsVersion {
    /// Every version enumerated, oldest first.
    pub const ALL: [Self; 4] = [Self::Tls10, Self::Tls11, Self::Tls12, Self::Tls13];

    /// The version's two bytes on the wire.
    pub fn wire(self) -> [u8; 2] {
        match self {
            Self::Tls10 => [0x03, 0x01],
            Self::Tls11 => [0x03, 0x02],
            Self::Tls12 => [0x03, 0x03],
            Self::Tls13 => [0x03, 0x04],
        }
    }
}

/// One suite a server accepted, with the key exchange it used for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AcceptedSuite {
    /// The IANA code (its meaning: [`crate::cipher_suites::suite`]).
    pub id: u16,
    /// The IANA name.
    pub name: String,
    /// The named group the server chose for the key exchange (`x25519`, `secp256r1`, `ffdhe2048`, …);
    /// absent for RSA key exchange, for finite-field parameters of the server's own (see
    /// `dh_bits`), or when not seen.
    pub group: Option<String>,
    /// The size of the finite-field Diffie-Hellman prime, in bits (DHE suites, `ffdhe*` groups).
    pub dh_bits: Option<u32>,
}

/// The suites accepted under one protocol version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VersionSuites {
    pub version: TlsVersion,
    /// In the order the server chose them, each time offered every known suite not yet chosen.
    pub suites: Vec<AcceptedSuite>,
    /// The server picks by its own order (true) or the client's (false); absent with fewer than
    /// two suites.
    pub server_order: Option<bool>,
}

/// What the TLS probe saw at one address (version 2: the cipher suite enumeration; version 3: how
/// the presented chain is built; version 4: certificate transparency stapled or in the extension).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TlsObservation {
    pub address: SocketAddr,
    pub server_name: String,
    pub handshake: bool,
    pub error: Option<String>,
    pub protocol: Option<String>,
    pub cipher_suite: Option<String>,
    /// Legacy versions, detected with a hand-built ClientHello.
    pub tls10: bool,
    pub tls11: bool,
    pub tls12: bool,
    pub tls13: bool,
    pub chain: Vec<CertificateSummary>,
    /// The chain leads to a trusted root and is valid now (the name aside).
    pub trusted: Option<bool>,
    /// The leaf certificate covers the server name.
    pub hostname_match: Option<bool>,
    /// Why verification failed, if it did.
    pub verification_error: Option<String>,
    pub ocsp_stapled: bool,
    /// Signed certificate timestamps in the stapled OCSP response (RFC 6962 §3.3, its
    /// `SignedCertificateTimestampList` extension); absent when nothing was stapled, and in
    /// observations of version 3 and older.
    pub ocsp_scts: Option<u32>,
    /// The cipher suites accepted per protocol version, found with hand-built ClientHellos (so
    /// suites no modern library speaks are seen too), for every version that accepted one; absent
    /// when not enumerated (the quick profile, or observations recorded before it existed).
    pub cipher_suites: Option<Vec<VersionSuites>>,
    /// How the server handles the protocol's optional parts; absent when not probed (as
    /// `cipher_suites`).
    #[serde(default)]
    pub protocol_facts: Option<TlsProtocolFacts>,
    /// How the presented chain is built; absent when no certificate was presented (or the chain
    /// could not be read), and in observations of version 2 and older.
    pub chain_facts: Option<ChainFacts>,
}

/// How a presented chain is built (RFC 8446 §4.4.2: each certificate certifies the one before it,
/// and the root, which the client must already have, may be left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChainFacts {
    /// Each certificate is issued by the one after it (the issuer of one is the subject of the
    /// next).
    pub ordered: bool,
    /// The last certificate presented signs itself and is not the only one: the root was sent,
    /// which clients ignore (extra bytes in every handshake).
    pub root_sent: bool,
    /// The last certificate presented signs nothing of its own and neither it nor any trust
    /// anchor of the scanner is its issuer: an intermediate is missing, so clients that do not
    /// fetch it themselves fail.
    pub incomplete: bool,
    /// The last certificate names where its issuer can be fetched (Authority Information Access
    /// `caIssuers`), which some browsers do for an incomplete chain.
    pub issuer_fetchable: bool,
}

/// How a server handles the protocol's optional parts, each `None` when it could not be asked.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct TlsProtocolFacts {
    /// TLS 1.2 or older answered the `renegotiation_info` extension (RFC 5746, secure
    /// renegotiation).
    pub secure_renegotiation: Option<bool>,
    /// TLS 1.2 or older chose DEFLATE when it was offered (TLS compression: CRIME).
    pub compression: Option<bool>,
    /// A ClientHello for an older version than the server's best, carrying TLS_FALLBACK_SCSV, was
    /// refused (RFC 7507), or answered with RFC 8446's downgrade sentinel (a TLS 1.3 server, whose
    /// TLS 1.3 clients then refuse the downgrade); absent when the server speaks one version only.
    pub fallback_scsv: Option<bool>,
    /// The application protocol chosen when `h2` and `http/1.1` are offered (ALPN); absent when
    /// the server chose none.
    pub alpn: Option<String>,
    /// Signed certificate timestamps the server sent in the `signed_certificate_timestamp`
    /// extension (RFC 6962 §3.3) to a hello for its best version up to TLS 1.2; absent when it
    /// speaks none of those (TLS 1.3 sends the extension encrypted), and in observations of version
    /// 3 and older.
    pub extension_scts: Option<u32>,
}

/// Version 1 → 2: the enumeration did not exist.
pub(crate) fn upcast_v1(mut data: serde_json::Value) -> Result<serde_json::Value, String> {
    let object = data.as_object_mut().ok_or("not an object")?;
    object.insert("cipher_suites".into(), serde_json::Value::Null);
    Ok(data)
}

/// Version 2 → 3: how the chain is built was not recorded (`chain_facts` absent).
pub(crate) fn upcast_v2(mut data: serde_json::Value) -> Result<serde_json::Value, String> {
    let object = data.as_object_mut().ok_or("not an object")?;
    object.insert("chain_facts".into(), serde_json::Value::Null);
    Ok(data)
}

/// Version 3 → 4: certificate transparency delivered outside the certificate was not recorded
/// (`ocsp_scts` and the protocol facts' `extension_scts` absent).
pub(crate) fn upcast_v3(mut data: serde_json::Value) -> Result<serde_json::Value, String> {
    let object = data.as_object_mut().ok_or("not an object")?;
    object.insert("ocsp_scts".into(), serde_json::Value::Null);
    if let Some(facts) = object
        .get_mut("protocol_facts")
        .and_then(serde_json::Value::as_object_mut)
    {
        facts.insert("extension_scts".into(), serde_json::Value::Null);
    }
    Ok(data)
}

impl TlsObservation {
    /// Something at the address speaks TLS (a modern handshake completed, or a legacy version was
    /// accepted).
    pub fn speaks_tls(&self) -> bool {
        self.handshake || self.tls10 || self.tls11
    }

    /// The leaf certificate, when a handshake sent one.
    pub fn leaf(&self) -> Option<&CertificateSummary> {
        self.chain.first()
    }
}

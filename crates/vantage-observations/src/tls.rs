//! What the TLS probe saw at one address: protocol versions accepted, the certificate chain, and
//! whether it is trusted and covers the name.

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
}

/// What the TLS probe saw at one address (version 1).
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

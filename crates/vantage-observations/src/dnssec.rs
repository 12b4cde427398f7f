//! What DNSSEC validation proved about a domain's answers, and what DANE (TLSA records) says a
//! TLS server's certificate must be, beside the certificate the server presented.
//!
//! Validation runs in the scanner, against a trust anchor (the root zone's keys by default; a lab's
//! own zone key in tests), so every observation names the anchors it was judged against.

use std::net::SocketAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dns::DnsStatus;

/// What validation proved about an answer, in RFC 4035's terms (§4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DnssecProof {
    /// Signed, and the signatures chain up to a trust anchor.
    Secure,
    /// Provably unsigned: a signed parent proves the zone has no DS record (or no anchor covers it).
    Insecure,
    /// Signatures that should validate do not: expired, not yet valid, wrong key, or missing where
    /// the parent says they must be. Validating resolvers refuse such answers (SERVFAIL).
    Bogus,
    /// Validation could not be attempted or finished: the resolver returns no DNSSEC data for the
    /// trust anchor itself, or did not answer.
    Indeterminate,
}

/// One question asked through the validating resolver, and what validation proved (version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DnssecObservation {
    pub name: String,
    pub record_type: String,
    pub status: DnsStatus,
    pub proof: DnssecProof,
    /// Why the proof is not `secure`, in the validator's words.
    pub reason: Option<String>,
    /// Records in presentation format, sorted (capped like the DNS probe's).
    pub records: Vec<String>,
    pub truncated: bool,
    /// The zones whose keys served as trust anchors (`.` for the root zone's).
    pub trust_anchors: Vec<String>,
}

/// One TLSA record (RFC 6698 §2.1) and which presented certificate it matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TlsaRecord {
    /// 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE.
    pub usage: u8,
    /// 0 the whole certificate, 1 its SubjectPublicKeyInfo.
    pub selector: u8,
    /// 0 exact, 1 SHA-256, 2 SHA-512.
    pub matching_type: u8,
    /// The association data, lowercase hex (cut at [`TLSA_DATA_MAX_HEX`] characters; exact matches
    /// are compared in full before the cut).
    pub data: String,
    /// The position in the presented chain (0 is the server's own certificate) of the first
    /// certificate whose selected part matches; absent when none does or no chain was seen.
    pub matched_position: Option<u32>,
}

/// Longest association data kept in an observation, in hex characters (a SHA-512 digest is 128).
pub const TLSA_DATA_MAX_HEX: usize = 128;

impl TlsaRecord {
    /// The record names a usage, selector and matching type RFC 6698 defines.
    pub fn known_parameters(&self) -> bool {
        self.usage <= 3 && self.selector <= 1 && self.matching_type <= 2
    }

    /// The usage binds the server's own certificate (PKIX-EE, DANE-EE), not an issuer's.
    pub fn binds_end_entity(&self) -> bool {
        matches!(self.usage, 1 | 3)
    }

    /// The usage also requires a chain valid in the web PKI (PKIX-TA, PKIX-EE).
    pub fn requires_pkix(&self) -> bool {
        matches!(self.usage, 0 | 1)
    }
}

/// The TLSA records for one TLS service of a domain, validated, and the chain one of its addresses
/// presented (version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DaneObservation {
    /// The TLS server the chain was fetched from.
    pub address: SocketAddr,
    /// The TLSA owner name asked (`_443._tcp.www.example.com`).
    pub name: String,
    pub status: DnsStatus,
    pub proof: DnssecProof,
    /// Why the proof is not `secure`, in the validator's words.
    pub reason: Option<String>,
    pub records: Vec<TlsaRecord>,
    pub truncated: bool,
    /// Certificates the server presented; absent when there were no records to check or the
    /// handshake failed.
    pub chain_length: Option<u32>,
    /// Why no chain was seen, when records were published.
    pub error: Option<String>,
    /// The zones whose keys served as trust anchors.
    pub trust_anchors: Vec<String>,
}

impl DaneObservation {
    /// Records a DANE client would use: validated as secure, with parameters it understands.
    pub fn usable_records(&self) -> impl Iterator<Item = &TlsaRecord> {
        self.records
            .iter()
            .filter(move |r| self.proof == DnssecProof::Secure && r.known_parameters())
    }
}

//! What a domain's mail exchangers offer a sending server: SMTP's STARTTLS (RFC 3207) and the TLS
//! behind it — the transport every other mail-security record (MTA-STS, DANE, TLS-RPT) is about.

use std::net::SocketAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::tls::{CertificateSummary, ChainFacts};

/// One mail exchanger as an SMTP client meets it (version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SmtpTlsObservation {
    /// The domain whose MX record names the exchanger.
    pub domain: String,
    /// The exchanger's name, from the MX record.
    pub mx: String,
    pub preference: u16,
    /// The address connected to (port 25 on the Internet).
    pub address: Option<SocketAddr>,
    /// The first line of the server's greeting, cut at 200 characters.
    pub banner: Option<String>,
    /// The EHLO answer lists STARTTLS; absent when the conversation ended before it.
    pub starttls_offered: Option<bool>,
    pub handshake: bool,
    pub protocol: Option<String>,
    pub cipher_suite: Option<String>,
    /// The certificates presented after STARTTLS, leaf first.
    pub chain: Vec<CertificateSummary>,
    /// The chain leads to a trusted root.
    pub trusted: Option<bool>,
    /// The leaf covers the exchanger's name.
    pub hostname_match: Option<bool>,
    pub verification_error: Option<String>,
    /// How the presented chain is built.
    #[serde(default)]
    pub chain_facts: Option<ChainFacts>,
    /// Why the conversation ended early.
    pub error: Option<String>,
}

impl SmtpTlsObservation {
    /// The exchanger could be talked to (it greeted), whatever it offered.
    pub fn answered(&self) -> bool {
        self.banner.is_some()
    }
}

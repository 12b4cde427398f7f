//! Ruleset 5: DNSSEC, DANE, mail transport and how certificate chains are built.
//!
//! Scans run by a scanner that validates DNSSEC record, for a named target, what validation proved
//! about its addresses and mail exchangers (`dnssec` observations), and for every TLS service — web
//! ports, and the mail exchangers after STARTTLS — the TLSA records published for it beside the
//! certificates it presented (`dane` observations); standard and deep scans also talk SMTP to the
//! mail exchangers up to STARTTLS (`smtp_tls` observations); and the TLS probe records how each
//! presented chain is built. On top of ruleset 4's rules, unchanged, ruleset 5 judges them: answers
//! that fail validation, a zone left unsigned, TLSA records no presented certificate satisfies,
//! TLSA records DANE clients ignore because nothing signs them, mail exchangers without STARTTLS,
//! whose TLS fails, or whose certificate senders that authenticate (MTA-STS) would refuse, and a
//! missing intermediate, a chain out of order or a root sent. An `indeterminate` proof (the
//! scanner's resolver returned no DNSSEC data, or no trust anchor covers the name) is never judged:
//! it says nothing about the domain. Scans without these observations are judged as under ruleset
//! 4.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde_json::json;
use vantage_observations::dnssec::{DaneObservation, DnssecProof, TlsaRecord};

use crate::ScanFacts;
use crate::finding::{Category, Finding, Severity};
use crate::site::host_and_path;
use crate::v1::Rule;
use crate::v4;

const DNSSEC_REFS: &[&str] = &[
    "https://www.rfc-editor.org/rfc/rfc4033",
    "https://www.rfc-editor.org/rfc/rfc4035",
    "https://internet.nl/faqs/dnssec/",
];
const DANE_REFS: &[&str] = &[
    "https://www.rfc-editor.org/rfc/rfc6698",
    "https://www.rfc-editor.org/rfc/rfc7671",
];

pub(crate) const DNSSEC_BOGUS: Rule = Rule {
    id: "dns.dnssec-bogus",
    version: 1,
    title: "The domain's DNSSEC signatures do not validate, so validating resolvers refuse its answers",
    category: Category::Dns,
    severity: Severity::High,
    confidence: 0.9,
    impact: 5,
    effort: 2,
    fix: "Re-sign the zone (signatures expire) and make the DS record at the parent match a key the zone publishes.",
    steps: &[
        "Check the chain with `delv @<resolver> <name>` or https://dnsviz.net/.",
        "Re-sign the zone, and automate re-signing (BIND: dnssec-policy; Knot: automatic signing) so RRSIGs never expire.",
        "If the keys changed, publish the new key's DS at the registrar, or remove the DS to take the zone back to unsigned while repairing.",
    ],
    minutes: 60,
    references: DNSSEC_REFS,
    compliance: &[],
};

pub(crate) const DNSSEC_UNSIGNED: Rule = Rule {
    id: "dns.dnssec-unsigned",
    version: 1,
    title: "The domain is not signed with DNSSEC",
    category: Category::Dns,
    severity: Severity::Low,
    confidence: 0.9,
    impact: 2,
    effort: 3,
    fix: "Sign the zone with DNSSEC and publish its DS record at the parent (the registrar), so resolvers can detect forged answers.",
    steps: &[
        "Turn on DNSSEC signing at the DNS provider (or dnssec-policy in BIND, automatic signing in Knot).",
        "Publish the DS record the provider shows at the registrar.",
    ],
    minutes: 60,
    references: DNSSEC_REFS,
    compliance: &[],
};

pub(crate) const DANE_MISMATCH: Rule = Rule {
    id: "tls.dane-mismatch",
    version: 1,
    title: "No TLSA record matches the certificates the server presents, so DANE clients refuse it",
    category: Category::Tls,
    severity: Severity::High,
    confidence: 0.9,
    impact: 4,
    effort: 2,
    fix: "Publish a TLSA record for the certificate (or key) the server now presents before removing the old one, and roll records ahead of every certificate change.",
    steps: &[
        "Compute the record for the current key: `openssl x509 -in cert.pem -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256` gives the data of a `3 1 1` record.",
        "Publish the new TLSA record beside the old one, wait two TTLs, then change the certificate; remove the old record afterwards.",
    ],
    minutes: 30,
    references: DANE_REFS,
    compliance: &[],
};

pub(crate) const DANE_NOT_VALIDATED: Rule = Rule {
    id: "tls.dane-not-validated",
    version: 1,
    title: "TLSA records are published in a zone DNSSEC does not secure, so DANE clients ignore them",
    category: Category::Tls,
    severity: Severity::Medium,
    confidence: 0.9,
    impact: 2,
    effort: 3,
    fix: "Sign the zone with DNSSEC (DANE needs validated records), or remove the TLSA records.",
    steps: &[
        "Sign the zone and publish its DS record at the registrar.",
        "Check with `delv _443._tcp.<host> TLSA` that the answer is fully validated.",
    ],
    minutes: 60,
    references: DANE_REFS,
    compliance: &[],
};

const MAIL_REFS: &[&str] = &[
    "https://www.rfc-editor.org/rfc/rfc3207",
    "https://www.rfc-editor.org/rfc/rfc8461",
    "https://internet.nl/faqs/mailauth/",
];

pub(crate) const STARTTLS_MISSING: Rule = Rule {
    id: "email.starttls-missing",
    version: 1,
    title: "A mail exchanger does not offer STARTTLS, so mail to the domain travels in cleartext",
    category: Category::Email,
    severity: Severity::Medium,
    confidence: 0.9,
    impact: 4,
    effort: 2,
    fix: "Enable STARTTLS on every mail exchanger, with a certificate for its MX name.",
    steps: &[
        "Postfix: smtpd_tls_cert_file, smtpd_tls_key_file and smtpd_tls_security_level = may.",
        "Exim: tls_certificate, tls_privatekey and tls_advertise_hosts = *.",
    ],
    minutes: 30,
    references: MAIL_REFS,
    compliance: &["PCI-DSS-4.0:4.2.1"],
};

pub(crate) const STARTTLS_FAILED: Rule = Rule {
    id: "email.starttls-failed",
    version: 1,
    title: "A mail exchanger offers STARTTLS but the TLS handshake after it fails",
    category: Category::Email,
    severity: Severity::Medium,
    confidence: 0.85,
    impact: 4,
    effort: 2,
    fix: "Make the exchanger complete TLS 1.2 or 1.3 handshakes after STARTTLS (senders fall back to cleartext, or give up, when it fails).",
    steps: &[
        "Test with `openssl s_client -starttls smtp -connect <mx>:25`.",
        "Enable TLS 1.2 and 1.3 with Mozilla's intermediate cipher list.",
    ],
    minutes: 30,
    references: MAIL_REFS,
    compliance: &["PCI-DSS-4.0:4.2.1"],
};

pub(crate) const MX_CERTIFICATE_INVALID: Rule = Rule {
    id: "email.mx-certificate-invalid",
    version: 1,
    title: "A mail exchanger's certificate is not trusted for its name, so senders that authenticate (MTA-STS) refuse it",
    category: Category::Email,
    severity: Severity::Medium,
    confidence: 0.85,
    impact: 3,
    effort: 2,
    fix: "Install a certificate from a public CA that covers the MX name (or publish a DANE-EE TLSA record for it in a signed zone).",
    steps: &[
        "Issue a certificate for the exchanger's name (e.g. with an ACME client) and configure it for SMTP.",
        "Check with `openssl s_client -starttls smtp -connect <mx>:25 -verify_hostname <mx>`.",
    ],
    minutes: 30,
    references: MAIL_REFS,
    compliance: &[],
};

const CHAIN_REFS: &[&str] = &[
    "https://www.rfc-editor.org/rfc/rfc8446#section-4.4.2",
    "https://github.com/ssllabs/research/wiki/SSL-and-TLS-Deployment-Best-Practices",
];

pub(crate) const CHAIN_INCOMPLETE: Rule = Rule {
    id: "tls.chain-incomplete",
    version: 1,
    title: "The server does not send the intermediate certificate its certificate needs",
    category: Category::Tls,
    severity: Severity::Medium,
    confidence: 0.85,
    impact: 3,
    effort: 1,
    fix: "Serve the full chain: the certificate followed by every intermediate up to (not including) the root.",
    steps: &[
        "nginx: ssl_certificate must name the full-chain file (fullchain.pem with certbot), not the certificate alone.",
        "Check with `openssl s_client -connect <host>:443 -servername <host>`: the verify return code must be 0.",
    ],
    minutes: 15,
    references: CHAIN_REFS,
    compliance: &[],
};

pub(crate) const CHAIN_MISORDERED: Rule = Rule {
    id: "tls.chain-misordered",
    version: 1,
    title: "The server sends its certificate chain out of order",
    category: Category::Tls,
    severity: Severity::Low,
    confidence: 0.9,
    impact: 1,
    effort: 1,
    fix: "Send the server's certificate first, then each issuer in turn (older TLS 1.2 clients and strict libraries reject other orders).",
    steps: &["Concatenate the chain file as: certificate, intermediate(s), in that order."],
    minutes: 10,
    references: CHAIN_REFS,
    compliance: &[],
};

pub(crate) const CHAIN_ROOT_SENT: Rule = Rule {
    id: "tls.chain-root-sent",
    version: 1,
    title: "The server sends the root certificate, which clients ignore",
    category: Category::Tls,
    severity: Severity::Info,
    confidence: 0.95,
    impact: 1,
    effort: 1,
    fix: "Leave the root out of the served chain: clients use their own copy, and the extra certificate costs bytes in every handshake.",
    steps: &["Remove the last, self-signed certificate from the chain file."],
    minutes: 5,
    references: CHAIN_REFS,
    compliance: &[],
};

/// Every rule of ruleset 5 besides ruleset 4's.
pub(crate) const RULES: &[&Rule] = &[
    &DNSSEC_BOGUS,
    &DNSSEC_UNSIGNED,
    &DANE_MISMATCH,
    &DANE_NOT_VALIDATED,
    &STARTTLS_MISSING,
    &STARTTLS_FAILED,
    &MX_CERTIFICATE_INVALID,
    &CHAIN_INCOMPLETE,
    &CHAIN_MISORDERED,
    &CHAIN_ROOT_SENT,
];

pub(crate) fn evaluate(facts: &ScanFacts<'_>) -> Vec<Finding> {
    let mut out = v4::evaluate(facts);
    // Fingerprints on the site, as ruleset 3's.
    // Fingerprints on the site's host, as ruleset 3's (no other part of the site view is read).
    let (host, _) = host_and_path(facts.target);
    let facts = ScanFacts {
        target: &host,
        ..*facts
    };
    dnssec_rules(&facts, &mut out);
    dane_rules(&facts, &mut out);
    mail_rules(&facts, &mut out);
    chain_rules(&facts, &mut out);
    out
}

/// One finding per name: the record types whose answers were bogus, or the name's unsigned zone.
fn dnssec_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    let mut by_name: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for (_, seen) in facts.dnssec() {
        by_name.entry(seen.name.as_str()).or_default().push(seen);
    }
    for (name, answers) in by_name {
        let bogus: Vec<_> = answers
            .iter()
            .filter(|seen| seen.proof == DnssecProof::Bogus)
            .collect();
        if let Some(first) = bogus.first() {
            let evidence = json!({
                "name": name,
                "record_types": bogus.iter().map(|seen| &seen.record_type).collect::<Vec<_>>(),
                "reason": first.reason,
                "trust_anchors": first.trust_anchors,
            });
            out.push(DNSSEC_BOGUS.fire(facts, name, evidence));
        } else if let Some(unsigned) = answers
            .iter()
            .find(|seen| seen.proof == DnssecProof::Insecure)
        {
            let evidence = json!({
                "name": name,
                "record_type": unsigned.record_type,
                "proof": "insecure",
                "reason": unsigned.reason,
                "trust_anchors": unsigned.trust_anchors,
            });
            out.push(DNSSEC_UNSIGNED.fire(facts, name, evidence));
        }
    }
}

/// Whether `record` is satisfied by what the server presented (RFC 7671 §5): the end-entity usages
/// by the server's own certificate, the trust-anchor usages by any certificate of the chain, and the
/// PKIX usages only when the chain is also valid in the web PKI for the name.
fn satisfied(record: &TlsaRecord, pkix_valid: bool) -> bool {
    let matched = if record.binds_end_entity() {
        record.matched_position == Some(0)
    } else {
        record.matched_position.is_some()
    };
    matched && (!record.requires_pkix() || pkix_valid)
}

fn records_evidence(seen: &DaneObservation) -> serde_json::Value {
    json!({
        "address": seen.address,
        "name": seen.name,
        "proof": seen.proof,
        "chain_length": seen.chain_length,
        "records": seen.records.iter().map(|r| json!({
            "usage": r.usage,
            "selector": r.selector,
            "matching_type": r.matching_type,
            "data": r.data,
            "matched_position": r.matched_position,
        })).collect::<Vec<_>>(),
    })
}

/// The TLS service at `address` presented a chain valid in the web PKI for its name (a web port's
/// or a mail exchanger's).
fn pkix_valid(facts: &ScanFacts<'_>, address: SocketAddr) -> bool {
    facts.tls().iter().any(|(_, seen)| {
        seen.address == address && seen.trusted == Some(true) && seen.hostname_match == Some(true)
    }) || facts.smtp_tls().iter().any(|(_, seen)| {
        seen.address == Some(address)
            && seen.trusted == Some(true)
            && seen.hostname_match == Some(true)
    })
}

/// A secure TLSA record published for `address` is satisfied by the chain it presented.
fn dane_satisfied(facts: &ScanFacts<'_>, address: SocketAddr) -> bool {
    let pkix_valid = pkix_valid(facts, address);
    facts.dane().iter().any(|(_, seen)| {
        seen.address == address && seen.usable_records().any(|r| satisfied(r, pkix_valid))
    })
}

fn dane_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    for (asset, seen) in facts.dane() {
        if seen.records.is_empty() {
            continue;
        }
        match seen.proof {
            DnssecProof::Secure => {
                // Judged only against a chain that was seen.
                if seen.chain_length.is_none() {
                    continue;
                }
                let pkix_valid = pkix_valid(facts, seen.address);
                let usable: Vec<&TlsaRecord> = seen.usable_records().collect();
                if !usable.is_empty() && !usable.iter().any(|r| satisfied(r, pkix_valid)) {
                    out.push(DANE_MISMATCH.fire(facts, asset, records_evidence(seen)));
                }
            }
            DnssecProof::Insecure => {
                out.push(DANE_NOT_VALIDATED.fire(facts, asset, records_evidence(seen)));
            }
            DnssecProof::Bogus | DnssecProof::Indeterminate => {}
        }
    }
}

fn mail_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    for (asset, seen) in facts.smtp_tls() {
        let evidence = json!({
            "domain": seen.domain,
            "mx": seen.mx,
            "preference": seen.preference,
            "address": seen.address,
            "banner": seen.banner,
            "starttls_offered": seen.starttls_offered,
            "protocol": seen.protocol,
            "trusted": seen.trusted,
            "hostname_match": seen.hostname_match,
            "verification_error": seen.verification_error,
            "error": seen.error,
        });
        match seen.starttls_offered {
            Some(false) => out.push(STARTTLS_MISSING.fire(facts, asset, evidence)),
            Some(true) if !seen.handshake => out.push(STARTTLS_FAILED.fire(facts, asset, evidence)),
            Some(true)
                if (seen.trusted != Some(true) || seen.hostname_match != Some(true))
                    && !seen.address.is_some_and(|a| dane_satisfied(facts, a)) =>
            {
                out.push(MX_CERTIFICATE_INVALID.fire(facts, asset, evidence));
            }
            _ => {}
        }
    }
}

/// One finding per way a web TLS endpoint's chain is built wrong.
fn chain_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    for (asset, seen) in facts.tls() {
        let Some(built) = seen.chain_facts else {
            continue;
        };
        let evidence = json!({
            "address": seen.address,
            "chain": seen.chain.iter().map(|c| json!({"subject": c.subject, "issuer": c.issuer})).collect::<Vec<_>>(),
            "ordered": built.ordered,
            "root_sent": built.root_sent,
            "incomplete": built.incomplete,
            "issuer_fetchable": built.issuer_fetchable,
        });
        if built.incomplete {
            out.push(CHAIN_INCOMPLETE.fire(facts, asset, evidence.clone()));
        }
        if !built.ordered {
            out.push(CHAIN_MISORDERED.fire(facts, asset, evidence.clone()));
        }
        if built.root_sent {
            out.push(CHAIN_ROOT_SENT.fire(facts, asset, evidence));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(usage: u8, matched_position: Option<u32>) -> TlsaRecord {
        TlsaRecord {
            usage,
            selector: 1,
            matching_type: 1,
            data: "00".into(),
            matched_position,
        }
    }

    #[test]
    fn end_entity_usages_need_the_servers_own_certificate() {
        assert!(satisfied(&record(3, Some(0)), false));
        assert!(!satisfied(&record(3, Some(1)), false));
        assert!(!satisfied(&record(3, None), true));
        assert!(satisfied(&record(1, Some(0)), true));
        assert!(!satisfied(&record(1, Some(0)), false));
    }

    #[test]
    fn trust_anchor_usages_accept_any_certificate_of_the_chain() {
        assert!(satisfied(&record(2, Some(1)), false));
        assert!(satisfied(&record(2, Some(0)), false));
        assert!(!satisfied(&record(2, None), false));
        assert!(satisfied(&record(0, Some(2)), true));
        assert!(!satisfied(&record(0, Some(2)), false));
    }
}

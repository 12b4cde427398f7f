//! Ruleset 6: IPv6 — whether the site can be reached over it, and serves the same there.
//!
//! A named target's DNS answers say whether it has IPv6 addresses at all; for a name with addresses
//! of both families, the scanner asks each web origin's start page of the first address of each at
//! the same time (`dual_stack` observations). On top of ruleset 5's rules, unchanged, ruleset 6
//! judges a name with IPv4 addresses and none for IPv6, a site that answers over IPv4 and not over
//! IPv6, and one that answers both differently: another status, redirect target or certificate
//! verdict, or a security header present on one family and not the other (or with another value,
//! a policy's per-response nonces aside). Scans without these observations are judged as under
//! ruleset 5.

use serde_json::json;
use vantage_observations::dns::DnsStatus;
use vantage_observations::dual_stack::{DualStackObservation, FamilyAnswer};

use crate::ScanFacts;
use crate::finding::{Category, Finding, Severity};
use crate::site::host_and_path;
use crate::v1::Rule;
use crate::v5;

const IPV6_REFS: &[&str] = &[
    "https://internet.nl/faqs/ipv6/",
    "https://www.rfc-editor.org/rfc/rfc8305",
];

pub(crate) const IPV6_MISSING: Rule = Rule {
    id: "dns.ipv6-missing",
    version: 1,
    title: "The site has no IPv6 address, so IPv6-only visitors reach it only through translation",
    category: Category::Dns,
    severity: Severity::Info,
    confidence: 0.9,
    impact: 2,
    effort: 3,
    fix: "Publish AAAA records for the site's name, pointing at servers (or a CDN) that serve it over IPv6.",
    steps: &[
        "Enable IPv6 at the hosting provider or CDN, and note the IPv6 address it gives the site.",
        "Publish an AAAA record for the name beside its A record.",
        "Scan again: the site must answer the same over both (http.ipv6-unreachable, http.ipv6-mismatch).",
    ],
    minutes: 60,
    references: IPV6_REFS,
    compliance: &[],
};

pub(crate) const IPV6_UNREACHABLE: Rule = Rule {
    id: "http.ipv6-unreachable",
    version: 1,
    title: "The site answers over IPv4 but not at its IPv6 address, so visitors preferring IPv6 wait or fail",
    category: Category::Availability,
    severity: Severity::Medium,
    confidence: 0.85,
    impact: 4,
    effort: 2,
    fix: "Make the web server listen on the IPv6 address the AAAA record names (and let the firewall pass it), or remove the AAAA record until it does.",
    steps: &[
        "Check with `curl -6 -v https://<name>/` from a host with IPv6.",
        "Configure the server to listen on IPv6 (nginx: `listen [::]:443 ssl;`), and open the port for IPv6 in the firewall and security groups.",
        "If IPv6 cannot be served now, remove the AAAA record: a wrong one is worse than none.",
    ],
    minutes: 30,
    references: IPV6_REFS,
    compliance: &[],
};

pub(crate) const IPV6_MISMATCH: Rule = Rule {
    id: "http.ipv6-mismatch",
    version: 1,
    title: "The site answers differently over IPv6 and IPv4",
    category: Category::Availability,
    severity: Severity::Medium,
    confidence: 0.8,
    impact: 3,
    effort: 2,
    fix: "Serve the same site, certificate and security headers on both families: point the A and AAAA records at the same server or configuration.",
    steps: &[
        "Compare `curl -4 -sI https://<name>/` with `curl -6 -sI https://<name>/`.",
        "Find the server or virtual host that answers on the other family (often a default site, an old server or a CDN setting) and give it the site's configuration.",
    ],
    minutes: 30,
    references: IPV6_REFS,
    compliance: &[],
};

pub(crate) const RULES: &[&Rule] = &[&IPV6_MISSING, &IPV6_UNREACHABLE, &IPV6_MISMATCH];

pub(crate) fn evaluate(facts: &ScanFacts<'_>) -> Vec<Finding> {
    let mut out = v5::evaluate(facts);
    // Fingerprints on the site's host, as ruleset 5's.
    let (host, _) = host_and_path(facts.target);
    let facts = ScanFacts {
        target: &host,
        ..*facts
    };
    missing_rules(&facts, &mut out);
    dual_stack_rules(&facts, &mut out);
    out
}

/// A name answered with IPv4 addresses and, asked for IPv6 ones, with none.
fn missing_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    let dns = facts.dns();
    for (_, v4) in dns.iter().filter(|(_, seen)| {
        seen.record_type == "A" && seen.status == DnsStatus::Ok && !seen.records.is_empty()
    }) {
        let none_for_v6 = dns.iter().any(|(_, seen)| {
            seen.record_type == "AAAA"
                && seen.name == v4.name
                && seen.status == DnsStatus::NoRecords
        });
        if none_for_v6 {
            let evidence = json!({ "name": v4.name, "a": v4.records, "aaaa": [] });
            out.push(IPV6_MISSING.fire(facts, &v4.name, evidence));
        }
    }
}

/// The kept headers compared across families: the security policies a browser applies (not the
/// content type, server banner or redirect target, which are compared apart or not at all).
const COMPARED_HEADERS: [&str; 12] = [
    "access-control-allow-credentials",
    "access-control-allow-origin",
    "content-security-policy",
    "content-security-policy-report-only",
    "cross-origin-embedder-policy",
    "cross-origin-opener-policy",
    "cross-origin-resource-policy",
    "permissions-policy",
    "referrer-policy",
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
];

/// A header's value with a policy's per-response nonces blanked (`'nonce-…'` differs on every
/// answer by design).
fn comparable(value: &str) -> String {
    value
        .split_whitespace()
        .map(|token| {
            if token.to_ascii_lowercase().starts_with("'nonce-") {
                "'nonce'"
            } else {
                token
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What differs between the two answers, one plain sentence each.
pub(crate) fn differences(ipv4: &FamilyAnswer, ipv6: &FamilyAnswer) -> Vec<String> {
    let mut differ = Vec::new();
    if ipv4.status != ipv6.status {
        differ.push(format!(
            "status {} over IPv4, {} over IPv6",
            ipv4.status.map_or("none".into(), |s| s.to_string()),
            ipv6.status.map_or("none".into(), |s| s.to_string())
        ));
    }
    let location = |answer: &FamilyAnswer| answer.headers.get("location").cloned();
    if location(ipv4) != location(ipv6) {
        differ.push(format!(
            "redirect to {:?} over IPv4, {:?} over IPv6",
            location(ipv4),
            location(ipv6)
        ));
    }
    if ipv4.certificate_valid != ipv6.certificate_valid {
        differ.push(format!(
            "certificate valid: {:?} over IPv4, {:?} over IPv6",
            ipv4.certificate_valid, ipv6.certificate_valid
        ));
    }
    for header in COMPARED_HEADERS {
        let v4 = ipv4.headers.get(header).map(|v| comparable(v));
        let v6 = ipv6.headers.get(header).map(|v| comparable(v));
        match (v4, v6) {
            (Some(_), None) => differ.push(format!("{header} sent over IPv4 only")),
            (None, Some(_)) => differ.push(format!("{header} sent over IPv6 only")),
            (Some(a), Some(b)) if a != b => differ.push(format!("{header} differs")),
            _ => {}
        }
    }
    differ
}

fn answer_evidence(answer: &FamilyAnswer) -> serde_json::Value {
    json!({
        "address": answer.address,
        "status": answer.status,
        "certificate_valid": answer.certificate_valid,
        "error": answer.error,
    })
}

fn dual_stack_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    for (asset, seen) in facts.dual_stack() {
        let DualStackObservation { url, ipv4, ipv6 } = seen;
        let evidence = |differences: Vec<String>| {
            json!({
                "url": url,
                "ipv4": answer_evidence(ipv4),
                "ipv6": answer_evidence(ipv6),
                "differences": differences,
            })
        };
        match (ipv4.answered(), ipv6.answered()) {
            // Neither answered: the site is down, which other findings and the grade say.
            (false, false) => {}
            (true, false) => out.push(IPV6_UNREACHABLE.fire(facts, asset, evidence(Vec::new()))),
            _ => {
                let differ = differences(ipv4, ipv6);
                if !differ.is_empty() {
                    out.push(IPV6_MISMATCH.fire(facts, asset, evidence(differ)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn answer(status: Option<u16>, headers: &[(&str, &str)]) -> FamilyAnswer {
        FamilyAnswer {
            address: "127.0.0.1:443".parse().unwrap(),
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            certificate_valid: Some(true),
            error: status.is_none().then(|| "connection failed".to_owned()),
        }
    }

    #[test]
    fn nonces_and_unjudged_headers_are_not_differences() {
        let v4 = answer(
            Some(200),
            &[
                ("content-security-policy", "script-src 'nonce-abc' 'self'"),
                ("server", "nginx/1"),
            ],
        );
        let v6 = answer(
            Some(200),
            &[
                ("content-security-policy", "script-src 'nonce-xyz' 'self'"),
                ("server", "nginx/2"),
            ],
        );
        assert_eq!(differences(&v4, &v6), Vec::<String>::new());
    }

    #[test]
    fn each_difference_is_named() {
        let v4 = answer(
            Some(301),
            &[
                ("location", "https://a.example/"),
                ("strict-transport-security", "max-age=63072000"),
                ("x-frame-options", "DENY"),
            ],
        );
        let mut v6 = answer(
            Some(200),
            &[
                ("strict-transport-security", "max-age=0"),
                ("referrer-policy", "no-referrer"),
            ],
        );
        v6.certificate_valid = Some(false);
        assert_eq!(
            differences(&v4, &v6),
            vec![
                "status 301 over IPv4, 200 over IPv6".to_owned(),
                "redirect to Some(\"https://a.example/\") over IPv4, None over IPv6".to_owned(),
                "certificate valid: Some(true) over IPv4, Some(false) over IPv6".to_owned(),
                "referrer-policy sent over IPv6 only".to_owned(),
                "strict-transport-security differs".to_owned(),
                "x-frame-options sent over IPv4 only".to_owned(),
            ]
        );
    }
}

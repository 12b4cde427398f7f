//! Ruleset 4: what the cipher suite enumeration and the protocol facts show.
//!
//! Scans of the standard and deep profiles record, per address, every cipher suite each protocol
//! version accepts (the TLS observation's `cipher_suites`). On top of ruleset 3's rules, unchanged,
//! ruleset 4 judges them — one rule per weakness, each naming the suites and versions it saw — and
//! grades TLS with the SSL Labs caps they make possible (`ssllabs-caps-2`, in `grade.rs`); and it
//! judges the protocol facts recorded beside them (secure renegotiation, compression, downgrade
//! protection), and a domain's HSTS preload state against its header. Scans without them (the quick
//! profile, or scans recorded before these facts existed) are judged as under ruleset 3.

use serde_json::json;
use vantage_observations::cipher_suites::BulkCipher;
use vantage_observations::tls::TlsVersion;

use crate::ScanFacts;
use crate::finding::{Category, Finding, Severity};
use crate::grade::{EnumeratedSuite, enumerated_suites};
use crate::site::SiteView;
use crate::v1::Rule;
use crate::v3;

const SUITE_REFS: &[&str] = &[
    "https://github.com/ssllabs/research/wiki/SSL-Server-Rating-Guide",
    "https://wiki.mozilla.org/Security/Server_Side_TLS",
];
const STRONG_CRYPTO: &[&str] = &["PCI-DSS-4.0:4.2.1"];
const CONFIGURE: &str = "Configure the server's cipher list from Mozilla's \"intermediate\" \
     profile (https://ssl-config.mozilla.org/), which offers only forward-secret AEAD suites.";

pub(crate) const INSECURE_SUITES: Rule = Rule {
    id: "tls.insecure-cipher-suites",
    version: 1,
    title: "The server accepts export-grade, NULL (unencrypted) or anonymous cipher suites",
    category: Category::Tls,
    severity: Severity::Critical,
    confidence: 0.95,
    impact: 5,
    effort: 1,
    fix: "Remove every export, NULL, anonymous (aNULL) and single-DES suite from the server's cipher list.",
    steps: &[
        "OpenSSL-based servers: append :!aNULL:!eNULL:!EXPORT:!DES to the cipher string, or use Mozilla's intermediate list.",
        CONFIGURE,
    ],
    minutes: 15,
    references: SUITE_REFS,
    compliance: STRONG_CRYPTO,
};

pub(crate) const RC4: Rule = Rule {
    id: "tls.rc4",
    version: 1,
    title: "The server accepts RC4 cipher suites",
    category: Category::Tls,
    severity: Severity::High,
    confidence: 0.95,
    impact: 4,
    effort: 1,
    fix: "Remove RC4 from the server's cipher list (RFC 7465 prohibits it).",
    steps: &["Append :!RC4 to an OpenSSL cipher string.", CONFIGURE],
    minutes: 15,
    references: &[
        "https://www.rfc-editor.org/rfc/rfc7465",
        "https://github.com/ssllabs/research/wiki/SSL-Server-Rating-Guide",
    ],
    compliance: STRONG_CRYPTO,
};

pub(crate) const TRIPLE_DES: Rule = Rule {
    id: "tls.3des",
    version: 1,
    title: "The server accepts 3DES cipher suites (64-bit block, SWEET32)",
    category: Category::Tls,
    severity: Severity::Medium,
    confidence: 0.95,
    impact: 3,
    effort: 1,
    fix: "Remove 3DES suites from the server's cipher list.",
    steps: &["Append :!3DES to an OpenSSL cipher string.", CONFIGURE],
    minutes: 15,
    references: &["https://sweet32.info/", SUITE_REFS[0]],
    compliance: STRONG_CRYPTO,
};

pub(crate) const NO_FORWARD_SECRECY: Rule = Rule {
    id: "tls.no-forward-secrecy",
    version: 1,
    title: "No cipher suite the server accepts has forward secrecy",
    category: Category::Tls,
    severity: Severity::Medium,
    confidence: 0.95,
    impact: 3,
    effort: 2,
    fix: "Offer ECDHE suites (and TLS 1.3), so a stolen server key cannot decrypt recorded traffic.",
    steps: &[
        "Enable TLS 1.3, and ECDHE-ECDSA / ECDHE-RSA suites for TLS 1.2.",
        CONFIGURE,
    ],
    minutes: 30,
    references: SUITE_REFS,
    compliance: STRONG_CRYPTO,
};

pub(crate) const WEAK_DH: Rule = Rule {
    id: "tls.weak-dh",
    version: 1,
    title: "The server's Diffie-Hellman prime is shorter than 2048 bits",
    category: Category::Tls,
    severity: Severity::Medium,
    confidence: 0.95,
    impact: 3,
    effort: 2,
    fix: "Use DH parameters of at least 2048 bits (an RFC 7919 ffdhe group), or drop DHE suites for ECDHE.",
    steps: &[
        "Generate 2048-bit or larger parameters (openssl dhparam 2048), or configure ffdhe2048.",
        CONFIGURE,
    ],
    minutes: 20,
    references: &["https://weakdh.org/", SUITE_REFS[0]],
    compliance: STRONG_CRYPTO,
};

pub(crate) const CBC_IN_TLS10: Rule = Rule {
    id: "tls.cbc-in-tls1.0",
    version: 1,
    title: "CBC cipher suites are accepted with TLS 1.0 (BEAST)",
    category: Category::Tls,
    severity: Severity::Low,
    confidence: 0.9,
    impact: 2,
    effort: 2,
    fix: "Disable TLS 1.0; with TLS 1.2 and 1.3 only, CBC in TLS 1.0 cannot be negotiated.",
    steps: &["Remove TLSv1 from the server's protocol list."],
    minutes: 20,
    references: &["https://www.rfc-editor.org/rfc/rfc8996", SUITE_REFS[0]],
    compliance: STRONG_CRYPTO,
};

pub(crate) const INSECURE_RENEGOTIATION: Rule = Rule {
    id: "tls.insecure-renegotiation",
    version: 1,
    title: "The server does not support secure renegotiation (RFC 5746)",
    category: Category::Tls,
    severity: Severity::Medium,
    confidence: 0.9,
    impact: 3,
    effort: 2,
    fix: "Update the TLS library: every maintained one supports RFC 5746 and sends renegotiation_info.",
    steps: &[
        "Upgrade OpenSSL, GnuTLS or the server's TLS stack, and do not disable safe renegotiation.",
    ],
    minutes: 30,
    references: &["https://www.rfc-editor.org/rfc/rfc5746", SUITE_REFS[0]],
    compliance: STRONG_CRYPTO,
};

pub(crate) const COMPRESSION: Rule = Rule {
    id: "tls.compression",
    version: 1,
    title: "The server accepts TLS compression (CRIME)",
    category: Category::Tls,
    severity: Severity::Medium,
    confidence: 0.95,
    impact: 3,
    effort: 1,
    fix: "Disable TLS-level compression.",
    steps: &[
        "OpenSSL-based servers: set SSL_OP_NO_COMPRESSION (nginx and Apache do by default in current versions).",
    ],
    minutes: 15,
    references: &["https://en.wikipedia.org/wiki/CRIME", SUITE_REFS[0]],
    compliance: STRONG_CRYPTO,
};

pub(crate) const NO_FALLBACK_SCSV: Rule = Rule {
    id: "tls.no-fallback-scsv",
    version: 1,
    title: "The server does not refuse protocol downgrades marked with TLS_FALLBACK_SCSV",
    category: Category::Tls,
    severity: Severity::Low,
    confidence: 0.9,
    impact: 2,
    effort: 2,
    fix: "Update the TLS library so that it honours TLS_FALLBACK_SCSV (RFC 7507), or offer one protocol version only.",
    steps: &["Upgrade the server's TLS stack; disable TLS 1.0 and 1.1."],
    minutes: 30,
    references: &["https://www.rfc-editor.org/rfc/rfc7507"],
    compliance: STRONG_CRYPTO,
};

pub(crate) const MUST_STAPLE_NOT_STAPLED: Rule = Rule {
    id: "tls.must-staple-not-stapled",
    version: 1,
    title: "The certificate demands OCSP stapling (Must-Staple) but the server staples nothing",
    category: Category::Tls,
    severity: Severity::High,
    confidence: 0.9,
    impact: 4,
    effort: 2,
    fix: "Turn on OCSP stapling (or reissue the certificate without the Must-Staple extension); browsers that honour Must-Staple refuse the site until then.",
    steps: &[
        "nginx: ssl_stapling on; ssl_stapling_verify on; with a resolver the server can use.",
        "Apache: SSLUseStapling On with an SSLStaplingCache.",
    ],
    minutes: 30,
    references: &["https://www.rfc-editor.org/rfc/rfc7633"],
    compliance: &["NIST-SP-800-52r2:3.5"],
};

pub(crate) const PRELOADED_BELOW_REQUIREMENTS: Rule = Rule {
    id: "hsts.preloaded-header-below-requirements",
    version: 1,
    title: "The domain is on the HSTS preload list, but its HSTS header no longer meets the list's requirements",
    category: Category::Headers,
    severity: Severity::Low,
    confidence: 0.9,
    impact: 2,
    effort: 1,
    fix: "Send Strict-Transport-Security: max-age=63072000; includeSubDomains; preload on the HTTPS response of the domain itself.",
    steps: &[
        "Keep max-age at one year (31536000) or more, with includeSubDomains and preload.",
        "Check the domain at https://hstspreload.org/.",
    ],
    minutes: 10,
    references: &["https://hstspreload.org/#continued-requirements"],
    compliance: &["OWASP-ASVS-4.0.3:V14.4.5"],
};

pub(crate) const PRELOAD_NOT_LISTED: Rule = Rule {
    id: "hsts.preload-requested-not-listed",
    version: 1,
    title: "The HSTS header asks for preloading and meets the requirements, but the domain is not on the preload list",
    category: Category::Headers,
    severity: Severity::Info,
    confidence: 0.8,
    impact: 1,
    effort: 1,
    fix: "Submit the domain at https://hstspreload.org/ so browsers use HTTPS before the first visit.",
    steps: &[
        "Submit the domain at https://hstspreload.org/ (the list bundled with this scanner may also be older than a recent submission).",
    ],
    minutes: 10,
    references: &["https://hstspreload.org/#submission-requirements"],
    compliance: &["OWASP-ASVS-4.0.3:V14.4.5"],
};

/// One year: the least `max-age` the preload list accepts.
const PRELOAD_MIN_AGE: u64 = 31_536_000;

/// What an HSTS header lacks for the preload list: nothing, when it meets every requirement.
fn preload_shortfalls(header: Option<&str>) -> Vec<&'static str> {
    let Some(header) = header else {
        return vec!["no Strict-Transport-Security header"];
    };
    let directives: Vec<String> = header
        .split(';')
        .map(|d| d.trim().to_ascii_lowercase())
        .collect();
    let mut missing = Vec::new();
    if crate::v2::hsts_max_age(header).is_none_or(|age| age < PRELOAD_MIN_AGE) {
        missing.push("max-age under one year (31536000)");
    }
    if !directives.iter().any(|d| d == "includesubdomains") {
        missing.push("no includeSubDomains");
    }
    if !directives.iter().any(|d| d == "preload") {
        missing.push("no preload directive");
    }
    missing
}

fn preload_rules(facts: &ScanFacts<'_>, site: &SiteView<'_>, out: &mut Vec<Finding>) {
    let Some(https) = site.https.filter(|page| page.status.is_some()) else {
        return;
    };
    let header = https.header("strict-transport-security");
    for (asset, preload) in facts.hsts_preload() {
        let shortfalls = preload_shortfalls(header);
        let evidence = json!({
            "host": preload.host,
            "list_date": preload.list_date,
            "entry": preload.entry,
            "strict-transport-security": header,
            "shortfalls": shortfalls,
        });
        if preload.listed_itself() && !shortfalls.is_empty() {
            out.push(PRELOADED_BELOW_REQUIREMENTS.fire(facts, asset, evidence));
        } else if !preload.preloaded() && shortfalls.is_empty() {
            out.push(PRELOAD_NOT_LISTED.fire(facts, asset, evidence));
        }
    }
}

/// Every rule of ruleset 4.
pub(crate) const RULES: &[&Rule] = &[
    &INSECURE_SUITES,
    &RC4,
    &TRIPLE_DES,
    &NO_FORWARD_SECRECY,
    &WEAK_DH,
    &CBC_IN_TLS10,
    &INSECURE_RENEGOTIATION,
    &COMPRESSION,
    &NO_FALLBACK_SCSV,
    &MUST_STAPLE_NOT_STAPLED,
    &PRELOADED_BELOW_REQUIREMENTS,
    &PRELOAD_NOT_LISTED,
];

fn protocol_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    for (asset, data) in facts.tls() {
        if data.handshake
            && !data.ocsp_stapled
            && let Some(leaf) = data.leaf().filter(|leaf| leaf.must_staple)
        {
            out.push(MUST_STAPLE_NOT_STAPLED.fire(
                facts,
                asset,
                json!({ "address": asset, "subject": leaf.subject, "ocsp_stapled": false }),
            ));
        }
        let Some(seen) = &data.protocol_facts else {
            continue;
        };
        let evidence = json!({
            "address": asset,
            "secure_renegotiation": seen.secure_renegotiation,
            "compression": seen.compression,
            "fallback_scsv": seen.fallback_scsv,
        });
        if seen.secure_renegotiation == Some(false) {
            out.push(INSECURE_RENEGOTIATION.fire(facts, asset, evidence.clone()));
        }
        if seen.compression == Some(true) {
            out.push(COMPRESSION.fire(facts, asset, evidence.clone()));
        }
        if seen.fallback_scsv == Some(false) {
            out.push(NO_FALLBACK_SCSV.fire(facts, asset, evidence));
        }
    }
}

fn names<'a>(seen: impl Iterator<Item = &'a EnumeratedSuite>) -> Vec<serde_json::Value> {
    seen.map(|e| json!({ "version": e.version, "suite": e.suite.name }))
        .collect()
}

fn cipher_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    for (asset, data) in facts.tls() {
        let Some(all) = enumerated_suites(data).filter(|all| !all.is_empty()) else {
            continue;
        };
        let fire = |rule: &Rule, matching: Vec<serde_json::Value>, out: &mut Vec<Finding>| {
            if !matching.is_empty() {
                out.push(rule.fire(
                    facts,
                    asset,
                    json!({ "address": asset, "suites": matching }),
                ));
            }
        };
        let matching = |test: fn(&EnumeratedSuite) -> bool| names(all.iter().filter(|e| test(e)));
        fire(&INSECURE_SUITES, matching(|e| e.suite.insecure()), out);
        fire(&RC4, matching(|e| e.suite.cipher.is_rc4()), out);
        fire(
            &TRIPLE_DES,
            matching(|e| e.suite.cipher == BulkCipher::TripleDesCbc),
            out,
        );
        if !all.iter().any(|e| e.suite.forward_secret()) {
            fire(&NO_FORWARD_SECRECY, names(all.iter()), out);
        }
        let weak_dh: Vec<serde_json::Value> = all
            .iter()
            .filter_map(|e| {
                e.dh_bits
                    .filter(|b| *b < 2048)
                    .map(|b| json!({ "version": e.version, "suite": e.suite.name, "dh_bits": b }))
            })
            .collect();
        fire(&WEAK_DH, weak_dh, out);
        fire(
            &CBC_IN_TLS10,
            matching(|e| e.version == TlsVersion::Tls10 && e.suite.cipher.is_cbc()),
            out,
        );
    }
}

pub(crate) fn evaluate(facts: &ScanFacts<'_>) -> Vec<Finding> {
    let mut out = v3::evaluate(facts);
    let site = SiteView::of(facts);
    // Fingerprints on the site, as ruleset 3's.
    let facts = ScanFacts {
        target: &site.host,
        ..*facts
    };
    cipher_rules(&facts, &mut out);
    protocol_rules(&facts, &mut out);
    preload_rules(&facts, &site, &mut out);
    out
}

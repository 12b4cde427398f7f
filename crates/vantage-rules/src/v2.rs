//! Ruleset 2: every rule of ruleset 1, unchanged, plus the exposure rules, the HTML rules
//! (Subresource Integrity, mixed content) and the TLS rules (expired, expiring, untrusted, name
//! mismatch, weak key, SHA-1 signature, no TLS 1.3, legacy protocols) and HSTS.

use serde_json::json;
use vantage_observations::exposure::{ExposureCheck, ExposureDetails};

use crate::ScanFacts;
use crate::finding::{Category, Finding, Severity};
use crate::v1::{self, Rule};

pub(crate) const GIT_EXPOSED: Rule = Rule {
    id: "exposure.git-repository",
    version: 1,
    title: "The site's .git directory is publicly readable",
    category: Category::Exposure,
    severity: Severity::High,
    confidence: 0.95,
    impact: 4,
    effort: 1,
    fix: "Block every path under /.git on the web server and remove the directory from the web root.",
    steps: &[
        "Deny /.git (and other dot-directories) in the web server configuration.",
        "Deploy build artefacts without the repository metadata.",
        "Assume the source history leaked: rotate any credential that was ever committed.",
    ],
    minutes: 30,
    references: &[
        "https://owasp.org/www-project-web-security-testing-guide/latest/4-Web_Application_Security_Testing/02-Configuration_and_Deployment_Management_Testing/04-Review_Old_Backup_and_Unreferenced_Files_for_Sensitive_Information",
    ],
    compliance: &["OWASP-ASVS-4.0.3:V14.3.2"],
};

pub(crate) const ENV_EXPOSED: Rule = Rule {
    id: "exposure.env-file",
    version: 1,
    title: "An environment file (.env) with configuration is publicly readable",
    category: Category::Exposure,
    severity: Severity::Critical,
    confidence: 0.9,
    impact: 5,
    effort: 1,
    fix: "Remove .env from the web root, block dot-files, and rotate every secret it held.",
    steps: &[
        "Stop serving the file now (block dot-files on the web server).",
        "Rotate every credential listed in the evidence, starting with databases and cloud keys.",
        "Keep configuration outside the document root.",
    ],
    minutes: 90,
    references: &[
        "https://cheatsheetseries.owasp.org/cheatsheets/Secrets_Management_Cheat_Sheet.html",
    ],
    compliance: &["OWASP-ASVS-4.0.3:V14.3.2", "PCI-DSS-4.0:8.6.2"],
};

pub(crate) const SERVER_STATUS: Rule = Rule {
    id: "exposure.server-status",
    version: 1,
    title: "The web server's status page is public",
    category: Category::Exposure,
    severity: Severity::Medium,
    confidence: 0.9,
    impact: 3,
    effort: 1,
    fix: "Restrict /server-status to local or administrative addresses.",
    steps: &["Require local access for the status handler (Apache: Require local)."],
    minutes: 15,
    references: &["https://httpd.apache.org/docs/2.4/mod/mod_status.html"],
    compliance: &["OWASP-ASVS-4.0.3:V14.3.3"],
};

pub(crate) const DIRECTORY_LISTING: Rule = Rule {
    id: "exposure.directory-listing",
    version: 1,
    title: "The server lists directory contents",
    category: Category::Exposure,
    severity: Severity::Medium,
    confidence: 0.8,
    impact: 2,
    effort: 1,
    fix: "Turn automatic directory indexes off.",
    steps: &["Disable autoindex (nginx) or Options -Indexes (Apache)."],
    minutes: 10,
    references: &["https://cwe.mitre.org/data/definitions/548.html"],
    compliance: &["OWASP-ASVS-4.0.3:V12.5.1"],
};

pub(crate) const API_DOCS_PUBLIC: Rule = Rule {
    id: "exposure.api-docs-public",
    version: 1,
    title: "API documentation is publicly available",
    category: Category::Exposure,
    severity: Severity::Info,
    confidence: 0.9,
    impact: 1,
    effort: 2,
    fix: "Make sure public API documentation is intended; otherwise require authentication for it.",
    steps: &[
        "Decide whether the API description should be public; if not, move it behind authentication.",
    ],
    minutes: 30,
    references: &[
        "https://owasp.org/API-Security/editions/2023/en/0xa9-improper-inventory-management/",
    ],
    compliance: &[],
};

pub(crate) const SECURITY_TXT_MISSING: Rule = Rule {
    id: "exposure.security-txt-missing",
    version: 1,
    title: "No security.txt tells researchers how to report a vulnerability",
    category: Category::Exposure,
    severity: Severity::Low,
    confidence: 0.9,
    impact: 1,
    effort: 1,
    fix: "Publish /.well-known/security.txt with Contact and Expires (RFC 9116).",
    steps: &["Serve /.well-known/security.txt containing at least Contact: and Expires: fields."],
    minutes: 15,
    references: &["https://www.rfc-editor.org/rfc/rfc9116"],
    compliance: &[],
};

pub(crate) const SRI_MISSING: Rule = Rule {
    id: "http.sri-missing",
    version: 1,
    title: "External scripts are loaded without Subresource Integrity",
    category: Category::Headers,
    severity: Severity::Low,
    confidence: 0.8,
    impact: 3,
    effort: 2,
    fix: "Add integrity (and crossorigin) attributes to scripts loaded from other origins.",
    steps: &[
        "Compute the sha384 digest of each third-party script version you load.",
        "Add integrity=\"sha384-…\" crossorigin=\"anonymous\" to its <script> tag.",
    ],
    minutes: 30,
    references: &["https://developer.mozilla.org/en-US/docs/Web/Security/Subresource_Integrity"],
    compliance: &["OWASP-ASVS-4.0.3:V14.2.3"],
};

pub(crate) const MIXED_CONTENT: Rule = Rule {
    id: "http.mixed-content",
    version: 1,
    title: "An HTTPS page loads resources over plain HTTP",
    category: Category::Tls,
    severity: Severity::Medium,
    confidence: 0.9,
    impact: 3,
    effort: 2,
    fix: "Load every script, stylesheet, image and frame over HTTPS.",
    steps: &[
        "Change http:// sub-resource URLs to https:// (or relative URLs).",
        "Add Content-Security-Policy: upgrade-insecure-requests while migrating.",
    ],
    minutes: 45,
    references: &["https://developer.mozilla.org/en-US/docs/Web/Security/Mixed_content"],
    compliance: &["OWASP-ASVS-4.0.3:V9.1.1"],
};

pub(crate) const HSTS_MISSING: Rule = Rule {
    id: "http.hsts-missing",
    version: 1,
    title: "HTTPS responses do not send Strict-Transport-Security",
    category: Category::Headers,
    severity: Severity::Medium,
    confidence: 0.95,
    impact: 3,
    effort: 1,
    fix: "Send Strict-Transport-Security with a max-age of at least six months on HTTPS responses.",
    steps: &[
        "Add Strict-Transport-Security: max-age=31536000; includeSubDomains to HTTPS responses.",
        "Once every subdomain serves HTTPS, consider preloading.",
    ],
    minutes: 15,
    references: &[
        "https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Strict-Transport-Security",
    ],
    compliance: &["OWASP-ASVS-4.0.3:V14.4.5"],
};

pub(crate) const HSTS_SHORT: Rule = Rule {
    id: "http.hsts-short-max-age",
    version: 1,
    title: "Strict-Transport-Security is set with a max-age under six months",
    category: Category::Headers,
    severity: Severity::Low,
    confidence: 0.95,
    impact: 2,
    effort: 1,
    fix: "Raise the HSTS max-age to at least 15552000 seconds (six months).",
    steps: &["Set Strict-Transport-Security: max-age=31536000 (one year)."],
    minutes: 10,
    references: &[
        "https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Strict-Transport-Security",
    ],
    compliance: &["OWASP-ASVS-4.0.3:V14.4.5"],
};

/// Six months, the Mozilla HTTP Observatory's threshold for a sufficient HSTS max-age.
const HSTS_MIN_AGE: u64 = 15_552_000;

/// The max-age of an HSTS header value, if it has a readable one.
pub(crate) fn hsts_max_age(value: &str) -> Option<u64> {
    value.split(';').find_map(|directive| {
        let (name, age) = directive.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| age.trim().trim_matches('"').parse().ok())
            .flatten()
    })
}

pub(crate) const CORS_REFLECTS: Rule = Rule {
    id: "http.cors-reflects-any-origin",
    version: 1,
    title: "CORS lets any website read authenticated responses (origin reflected with credentials)",
    category: Category::Headers,
    severity: Severity::High,
    confidence: 0.9,
    impact: 4,
    effort: 2,
    fix: "Only allow known origins; never echo the request's Origin when credentials are allowed.",
    steps: &[
        "Replace Origin reflection with an explicit allow-list of trusted origins.",
        "Send Access-Control-Allow-Credentials: true only for those origins.",
    ],
    minutes: 60,
    references: &["https://portswigger.net/web-security/cors"],
    compliance: &["OWASP-ASVS-4.0.3:V14.5.3"],
};

pub(crate) const MTA_STS_UNAVAILABLE: Rule = Rule {
    id: "email.mta-sts-policy-unavailable",
    version: 1,
    title: "MTA-STS is advertised but its policy cannot be fetched",
    category: Category::Email,
    severity: Severity::Low,
    confidence: 0.9,
    impact: 2,
    effort: 1,
    fix: "Serve the policy at https://mta-sts.<domain>/.well-known/mta-sts.txt with a valid certificate.",
    steps: &[
        "Publish the policy file over HTTPS on the mta-sts host, or remove the _mta-sts record.",
    ],
    minutes: 30,
    references: &["https://www.rfc-editor.org/rfc/rfc8461"],
    compliance: &["NIST-SP-800-177r1:4.5"],
};

pub(crate) const MTA_STS_NOT_ENFORCED: Rule = Rule {
    id: "email.mta-sts-not-enforced",
    version: 1,
    title: "The MTA-STS policy does not enforce TLS (mode testing or none)",
    category: Category::Email,
    severity: Severity::Low,
    confidence: 0.95,
    impact: 2,
    effort: 1,
    fix: "Switch the MTA-STS policy to mode: enforce once TLS reports are clean.",
    steps: &["Review TLS-RPT reports, then set mode: enforce and bump the _mta-sts id."],
    minutes: 20,
    references: &["https://www.rfc-editor.org/rfc/rfc8461#section-5"],
    compliance: &["NIST-SP-800-177r1:4.5"],
};

pub(crate) fn mta_sts_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    for (asset, data) in facts.mta_sts() {
        let evidence = json!({
            "policy_url": data.policy_url,
            "status": data.status,
            "mode": data.mode,
            "error": data.error,
        });
        match data.mode.as_deref() {
            None => out.push(MTA_STS_UNAVAILABLE.fire(facts, asset, evidence)),
            Some("enforce") => {}
            Some(_) => out.push(MTA_STS_NOT_ENFORCED.fire(facts, asset, evidence)),
        }
    }
}

pub(crate) fn cors_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    for (asset, data) in facts.http() {
        if crate::grade::reflects_origin_with_credentials(data) {
            let final_url = data.final_url.as_deref().unwrap_or(asset);
            out.push(CORS_REFLECTS.fire(
                facts,
                final_url,
                json!({
                    "url": final_url,
                    "allow_origin": data.header("access-control-allow-origin"),
                    "preflight": data.cors_preflight,
                }),
            ));
        }
    }
}

pub(crate) fn hsts_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    for (_, data) in facts.http() {
        let Some(final_url) = data.final_url.as_deref() else {
            continue;
        };
        if !final_url.starts_with("https://") || data.status.is_none() {
            continue;
        }
        match data.header("strict-transport-security") {
            None => out.push(HSTS_MISSING.fire(facts, final_url, json!({ "url": final_url }))),
            Some(value) => {
                if hsts_max_age(value).is_none_or(|age| age < HSTS_MIN_AGE) {
                    out.push(HSTS_SHORT.fire(
                        facts,
                        final_url,
                        json!({ "url": final_url, "strict-transport-security": value }),
                    ));
                }
            }
        }
    }
}

pub(crate) fn html_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    for (asset, data) in facts.http() {
        let Some(html) = &data.html else {
            continue;
        };
        let final_url = data.final_url.as_deref().unwrap_or(asset);
        let without_sri = html.external_scripts_without_sri;
        if without_sri > 0 {
            out.push(SRI_MISSING.fire(
                facts,
                final_url,
                json!({
                    "url": final_url,
                    "external_scripts": html.external_scripts,
                    "without_integrity": without_sri,
                }),
            ));
        }
        let insecure = html.insecure_subresources;
        if final_url.starts_with("https://") && insecure > 0 {
            out.push(MIXED_CONTENT.fire(
                facts,
                final_url,
                json!({
                    "url": final_url,
                    "insecure_subresources": insecure,
                }),
            ));
        }
    }
}

pub(crate) const TLS_REFS: &[&str] = &[
    "https://cheatsheetseries.owasp.org/cheatsheets/Transport_Layer_Security_Cheat_Sheet.html",
    "https://github.com/ssllabs/research/wiki/SSL-Server-Rating-Guide",
];

pub(crate) const CERT_EXPIRED: Rule = Rule {
    id: "tls.certificate-expired",
    version: 1,
    title: "The TLS certificate has expired",
    category: Category::Tls,
    severity: Severity::Critical,
    confidence: 0.95,
    impact: 5,
    effort: 1,
    fix: "Renew the certificate and automate renewal.",
    steps: &[
        "Issue a new certificate (e.g. with ACME) and deploy it.",
        "Monitor expiry and renew automatically.",
    ],
    minutes: 30,
    references: TLS_REFS,
    compliance: &["NIST-SP-800-52r2:3.5", "PCI-DSS-4.0:4.2.1"],
};

pub(crate) const CERT_EXPIRING: Rule = Rule {
    id: "tls.certificate-expiring",
    version: 1,
    title: "The TLS certificate expires within 30 days",
    category: Category::Tls,
    severity: Severity::Medium,
    confidence: 0.95,
    impact: 4,
    effort: 1,
    fix: "Renew the certificate before it expires; automate renewal.",
    steps: &[
        "Renew and deploy the certificate now.",
        "Alert on certificates with fewer than 30 days left.",
    ],
    minutes: 30,
    references: TLS_REFS,
    compliance: &["NIST-SP-800-52r2:3.5"],
};

pub(crate) const CERT_UNTRUSTED: Rule = Rule {
    id: "tls.certificate-untrusted",
    version: 1,
    title: "The TLS certificate is not issued by a trusted authority",
    category: Category::Tls,
    severity: Severity::High,
    confidence: 0.9,
    impact: 4,
    effort: 2,
    fix: "Serve a certificate from a publicly trusted CA, with its full intermediate chain.",
    steps: &[
        "Obtain a certificate from a public CA.",
        "Configure the server to send the leaf and every intermediate.",
    ],
    minutes: 45,
    references: TLS_REFS,
    compliance: &["NIST-SP-800-52r2:3.5", "PCI-DSS-4.0:4.2.1"],
};

pub(crate) const NAME_MISMATCH: Rule = Rule {
    id: "tls.hostname-mismatch",
    version: 1,
    title: "The TLS certificate does not cover the host name",
    category: Category::Tls,
    severity: Severity::High,
    confidence: 0.9,
    impact: 4,
    effort: 1,
    fix: "Serve a certificate whose Subject Alternative Names include this host name.",
    steps: &["Reissue the certificate with the host name in its SANs and deploy it."],
    minutes: 30,
    references: TLS_REFS,
    compliance: &["NIST-SP-800-52r2:3.5"],
};

pub(crate) const WEAK_KEY: Rule = Rule {
    id: "tls.weak-key",
    version: 1,
    title: "The certificate's key is too short",
    category: Category::Tls,
    severity: Severity::Medium,
    confidence: 0.95,
    impact: 3,
    effort: 2,
    fix: "Use an RSA key of at least 2048 bits or an ECDSA P-256 key.",
    steps: &["Generate a new key (RSA ≥ 2048 or ECDSA P-256), reissue and deploy the certificate."],
    minutes: 45,
    references: TLS_REFS,
    compliance: &["NIST-SP-800-52r2:3.3.2"],
};

pub(crate) const SHA1_SIGNATURE: Rule = Rule {
    id: "tls.sha1-signature",
    version: 1,
    title: "The certificate is signed with SHA-1",
    category: Category::Tls,
    severity: Severity::Medium,
    confidence: 0.95,
    impact: 3,
    effort: 2,
    fix: "Reissue the certificate with a SHA-256 (or stronger) signature.",
    steps: &["Request a new certificate signed with SHA-256 and deploy it."],
    minutes: 30,
    references: TLS_REFS,
    compliance: &["NIST-SP-800-52r2:3.3.2"],
};

pub(crate) const NO_TLS13: Rule = Rule {
    id: "tls.no-tls13",
    version: 1,
    title: "TLS 1.3 is not supported",
    category: Category::Tls,
    severity: Severity::Low,
    confidence: 0.9,
    impact: 2,
    effort: 2,
    fix: "Enable TLS 1.3 on the server.",
    steps: &[
        "Upgrade the TLS library or server if needed, then enable TLSv1.3 in its protocol list.",
    ],
    minutes: 30,
    references: TLS_REFS,
    compliance: &["NIST-SP-800-52r2:3.1"],
};

pub(crate) const LEGACY_PROTOCOL: Rule = Rule {
    id: "tls.legacy-protocol",
    version: 1,
    title: "TLS 1.0 or 1.1 is still accepted",
    category: Category::Tls,
    severity: Severity::Medium,
    confidence: 0.95,
    impact: 3,
    effort: 2,
    fix: "Disable TLS 1.0 and 1.1; offer TLS 1.2 and 1.3 only.",
    steps: &[
        "Remove TLSv1 and TLSv1.1 from the server's protocol list (e.g. nginx ssl_protocols TLSv1.2 TLSv1.3).",
    ],
    minutes: 20,
    references: &["https://www.rfc-editor.org/rfc/rfc8996"],
    compliance: &["NIST-SP-800-52r2:3.1", "PCI-DSS-4.0:4.2.1"],
};

pub(crate) fn tls_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    for (asset, data) in facts.tls() {
        let legacy: Vec<&str> = [(data.tls10, "TLSv1.0"), (data.tls11, "TLSv1.1")]
            .into_iter()
            .filter(|(accepted, _)| *accepted)
            .map(|(_, name)| name)
            .collect();
        if !legacy.is_empty() {
            out.push(LEGACY_PROTOCOL.fire(
                facts,
                asset,
                json!({ "address": asset, "accepted": legacy }),
            ));
        }
        if !data.handshake {
            continue;
        }
        let leaf = data.leaf();
        let days_left = leaf.map(|l| l.days_left);
        let evidence = json!({
            "address": asset,
            "server_name": data.server_name,
            "subject": leaf.map(|l| &l.subject),
            "issuer": leaf.map(|l| &l.issuer),
            "not_after": leaf.map(|l| &l.not_after),
            "days_left": days_left,
            "verification_error": data.verification_error,
        });
        let expired = days_left.is_some_and(|d| d < 0);
        if expired {
            out.push(CERT_EXPIRED.fire(facts, asset, evidence.clone()));
        } else if days_left.is_some_and(|d| d < 30) {
            out.push(CERT_EXPIRING.fire(facts, asset, evidence.clone()));
        }
        if data.trusted == Some(false) && !expired {
            out.push(CERT_UNTRUSTED.fire(facts, asset, evidence.clone()));
        }
        if data.hostname_match == Some(false) {
            out.push(NAME_MISMATCH.fire(facts, asset, evidence.clone()));
        }
        let bits = leaf.and_then(|l| l.key_bits).map(|b| b as u64);
        let weak = match leaf.map(|l| l.key_type.as_str()) {
            Some("RSA") => bits.is_some_and(|b| b < 2048),
            Some("EC") => bits.is_some_and(|b| b < 256),
            _ => false,
        };
        if weak {
            out.push(WEAK_KEY.fire(
                facts,
                asset,
                json!({ "address": asset, "key_type": leaf.map(|l| &l.key_type), "key_bits": bits }),
            ));
        }
        let signature = leaf.map(|l| l.signature_algorithm.as_str());
        if signature.is_some_and(|s| s.starts_with("sha1")) {
            out.push(SHA1_SIGNATURE.fire(
                facts,
                asset,
                json!({ "address": asset, "signature_algorithm": signature }),
            ));
        }
        if !data.tls13 {
            out.push(NO_TLS13.fire(
                facts,
                asset,
                json!({ "address": asset, "tls12": data.tls12 }),
            ));
        }
    }
}

pub(crate) const SECURITY_TXT_INVALID: Rule = Rule {
    id: "exposure.security-txt-invalid",
    version: 1,
    title: "security.txt has expired or has no valid Expires field",
    category: Category::Exposure,
    severity: Severity::Low,
    confidence: 0.95,
    impact: 1,
    effort: 1,
    fix: "Give security.txt a future Expires date (RFC 3339) and renew it before it passes.",
    steps: &["Set Expires: to a date less than a year ahead, and renew it regularly."],
    minutes: 10,
    references: &["https://www.rfc-editor.org/rfc/rfc9116#section-2.5.5"],
    compliance: &[],
};

/// Whether a security.txt is invalid — expired, or without a readable Expires (which counts as
/// invalid like one in the past) — and its Expires as written.
pub(crate) fn security_txt_validity(details: &ExposureDetails) -> (bool, Option<&str>) {
    match details {
        ExposureDetails::SecurityTxt {
            expires, expired, ..
        } => (expired.is_none_or(|e| e), expires.as_deref()),
        _ => (true, None),
    }
}

fn exposure_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    for (asset, data) in facts.exposure() {
        let found = data.found;
        let reached = data.status.is_some();
        let rule = match data.check {
            ExposureCheck::GitHead if found => Some(&GIT_EXPOSED),
            ExposureCheck::EnvFile if found => Some(&ENV_EXPOSED),
            ExposureCheck::ServerStatus if found => Some(&SERVER_STATUS),
            ExposureCheck::DirectoryListing if found => Some(&DIRECTORY_LISTING),
            check if check.is_api_document() && found => Some(&API_DOCS_PUBLIC),
            ExposureCheck::SecurityTxt if !found && reached => Some(&SECURITY_TXT_MISSING),
            _ => None,
        };
        if let Some(rule) = rule {
            out.push(rule.fire(
                facts,
                asset,
                json!({ "url": asset, "details": data.details }),
            ));
        }
        if data.check == ExposureCheck::SecurityTxt && found {
            let (invalid, expires) = security_txt_validity(&data.details);
            if invalid {
                out.push(SECURITY_TXT_INVALID.fire(
                    facts,
                    asset,
                    json!({ "url": asset, "expires": expires }),
                ));
            }
        }
    }
}

/// The rules ruleset 2 adds to ruleset 1.
pub(crate) const RULES: &[&Rule] = &[
    &GIT_EXPOSED,
    &ENV_EXPOSED,
    &SERVER_STATUS,
    &DIRECTORY_LISTING,
    &API_DOCS_PUBLIC,
    &SECURITY_TXT_MISSING,
    &SRI_MISSING,
    &MIXED_CONTENT,
    &HSTS_MISSING,
    &HSTS_SHORT,
    &CORS_REFLECTS,
    &MTA_STS_UNAVAILABLE,
    &MTA_STS_NOT_ENFORCED,
    &CERT_EXPIRED,
    &CERT_EXPIRING,
    &CERT_UNTRUSTED,
    &NAME_MISMATCH,
    &WEAK_KEY,
    &SHA1_SIGNATURE,
    &NO_TLS13,
    &LEGACY_PROTOCOL,
    &SECURITY_TXT_INVALID,
];

pub(crate) fn evaluate(facts: &ScanFacts<'_>) -> Vec<Finding> {
    let mut out = v1::evaluate(facts);
    exposure_rules(facts, &mut out);
    html_rules(facts, &mut out);
    hsts_rules(facts, &mut out);
    cors_rules(facts, &mut out);
    mta_sts_rules(facts, &mut out);
    tls_rules(facts, &mut out);
    out
}

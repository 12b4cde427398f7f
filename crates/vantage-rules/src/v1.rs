//! Ruleset 1. Every rule here is released: never change what one does; add a new rule version in a
//! new ruleset instead.

use serde_json::{Value, json};
use vantage_observations::dns::DnsStatus;
use vantage_observations::http::CookieSummary;
use vantage_observations::tcp::PortState;

use crate::ScanFacts;
use crate::finding::{Category, Finding, RecommendedFix, Severity, capped, fingerprint, priority};

/// What a rule says, apart from where it fired.
pub(crate) struct Rule {
    pub(crate) id: &'static str,
    pub(crate) version: u32,
    pub(crate) title: &'static str,
    pub(crate) category: Category,
    pub(crate) severity: Severity,
    pub(crate) confidence: f64,
    pub(crate) impact: u8,
    pub(crate) effort: u8,
    pub(crate) fix: &'static str,
    pub(crate) steps: &'static [&'static str],
    pub(crate) minutes: u32,
    pub(crate) references: &'static [&'static str],
    pub(crate) compliance: &'static [&'static str],
}

impl Rule {
    pub(crate) fn fire(&self, facts: &ScanFacts<'_>, asset: &str, evidence: Value) -> Finding {
        Finding {
            rule_id: self.id.to_owned(),
            rule_version: self.version,
            fingerprint: fingerprint(facts.tenant, facts.target, self.id, asset),
            title: self.title.to_owned(),
            category: self.category,
            severity: self.severity,
            confidence: self.confidence,
            priority: priority(self.severity, self.confidence, self.impact, self.effort),
            asset: asset.to_owned(),
            evidence: capped(evidence),
            recommended_fix: RecommendedFix {
                summary: self.fix.to_owned(),
                steps: self.steps.iter().map(|s| (*s).to_owned()).collect(),
                estimated_minutes: self.minutes,
            },
            references: self.references.iter().map(|s| (*s).to_owned()).collect(),
            compliance: self.compliance.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// Every rule of ruleset 1.
pub(crate) const RULES: &[&Rule] = &[
    &HTTPS_NOT_ENFORCED,
    &CSP_MISSING,
    &XCTO_MISSING,
    &CLICKJACKING,
    &REFERRER_POLICY_MISSING,
    &VERSION_DISCLOSURE,
    &REDIRECT_TO_PRIVATE,
    &COOKIE_SECURE,
    &COOKIE_HTTPONLY,
    &COOKIE_SAMESITE,
    &SPF_MISSING,
    &SPF_ALLOWS_ALL,
    &DMARC_MISSING,
    &DMARC_NOT_ENFORCED,
    &CAA_MISSING,
    &RISKY_SERVICE,
];

const HEADERS_REF: &str = "https://owasp.org/www-project-secure-headers/";

pub(crate) const HTTPS_NOT_ENFORCED: Rule = Rule {
    id: "http.https-not-enforced",
    version: 1,
    title: "Plain HTTP is served instead of redirecting to HTTPS",
    category: Category::Tls,
    severity: Severity::Medium,
    confidence: 0.9,
    impact: 3,
    effort: 2,
    fix: "Redirect every plain-HTTP request to the same URL over HTTPS.",
    steps: &[
        "Answer requests on port 80 with a 301 redirect to https:// and the same host and path.",
        "Once HTTPS works everywhere, send Strict-Transport-Security on HTTPS responses.",
    ],
    minutes: 30,
    references: &[
        "https://cheatsheetseries.owasp.org/cheatsheets/Transport_Layer_Security_Cheat_Sheet.html",
    ],
    compliance: &["OWASP-ASVS-4.0.3:V9.1.1", "PCI-DSS-4.0:4.2.1"],
};

pub(crate) const CSP_MISSING: Rule = Rule {
    id: "http.csp-missing",
    version: 1,
    title: "No Content-Security-Policy on an HTML page",
    category: Category::Headers,
    severity: Severity::Medium,
    confidence: 0.9,
    impact: 3,
    effort: 3,
    fix: "Send a Content-Security-Policy that limits where scripts may load from.",
    steps: &[
        "Start with Content-Security-Policy-Report-Only: default-src 'self'; object-src 'none'; base-uri 'self'.",
        "Review the reports, allow what the page needs, then switch to the enforcing header.",
    ],
    minutes: 120,
    references: &[
        "https://developer.mozilla.org/en-US/docs/Web/HTTP/CSP",
        HEADERS_REF,
    ],
    compliance: &["OWASP-ASVS-4.0.3:V14.4.3"],
};

pub(crate) const XCTO_MISSING: Rule = Rule {
    id: "http.x-content-type-options-missing",
    version: 1,
    title: "X-Content-Type-Options: nosniff is not set",
    category: Category::Headers,
    severity: Severity::Low,
    confidence: 0.95,
    impact: 2,
    effort: 1,
    fix: "Send X-Content-Type-Options: nosniff on every response.",
    steps: &["Add the header X-Content-Type-Options: nosniff in the web server or application."],
    minutes: 10,
    references: &[
        "https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/X-Content-Type-Options",
    ],
    compliance: &["OWASP-ASVS-4.0.3:V14.4.4"],
};

pub(crate) const CLICKJACKING: Rule = Rule {
    id: "http.clickjacking-unprotected",
    version: 1,
    title: "HTML page can be framed by any site (no X-Frame-Options or frame-ancestors)",
    category: Category::Headers,
    severity: Severity::Medium,
    confidence: 0.8,
    impact: 3,
    effort: 1,
    fix: "Forbid framing with Content-Security-Policy: frame-ancestors 'self' (and X-Frame-Options: DENY for old browsers).",
    steps: &[
        "Add frame-ancestors 'self' (or 'none') to the Content-Security-Policy.",
        "Also send X-Frame-Options: DENY or SAMEORIGIN.",
    ],
    minutes: 15,
    references: &[
        "https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Content-Security-Policy/frame-ancestors",
    ],
    compliance: &["OWASP-ASVS-4.0.3:V14.4.7"],
};

pub(crate) const REFERRER_POLICY_MISSING: Rule = Rule {
    id: "http.referrer-policy-missing",
    version: 1,
    title: "No Referrer-Policy is set",
    category: Category::Headers,
    severity: Severity::Low,
    confidence: 0.9,
    impact: 1,
    effort: 1,
    fix: "Send Referrer-Policy: strict-origin-when-cross-origin (or stricter).",
    steps: &["Add the header Referrer-Policy: strict-origin-when-cross-origin."],
    minutes: 10,
    references: &["https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Referrer-Policy"],
    compliance: &["OWASP-ASVS-4.0.3:V14.4.6"],
};

pub(crate) const VERSION_DISCLOSURE: Rule = Rule {
    id: "http.version-disclosure",
    version: 1,
    title: "Server software and version are disclosed in response headers",
    category: Category::Exposure,
    severity: Severity::Low,
    confidence: 0.9,
    impact: 2,
    effort: 1,
    fix: "Remove version numbers from Server and drop X-Powered-By.",
    steps: &[
        "Configure the web server to send a generic Server header (e.g. nginx: server_tokens off).",
        "Remove X-Powered-By in the application framework.",
    ],
    minutes: 15,
    references: &[
        "https://owasp.org/www-project-web-security-testing-guide/latest/4-Web_Application_Security_Testing/01-Information_Gathering/02-Fingerprint_Web_Server",
    ],
    compliance: &["OWASP-ASVS-4.0.3:V14.3.3"],
};

pub(crate) const REDIRECT_TO_PRIVATE: Rule = Rule {
    id: "http.redirect-to-private-address",
    version: 1,
    title: "A public URL redirects into private or internal address space",
    category: Category::Exposure,
    severity: Severity::High,
    confidence: 0.9,
    impact: 4,
    effort: 2,
    fix: "Never redirect public clients to internal addresses; check redirect targets against an allow-list.",
    steps: &[
        "Find the handler that builds the Location header and where its value comes from.",
        "Restrict redirect targets to your own public hosts.",
    ],
    minutes: 60,
    references: &[
        "https://cheatsheetseries.owasp.org/cheatsheets/Unvalidated_Redirects_and_Forwards_Cheat_Sheet.html",
    ],
    compliance: &["OWASP-ASVS-4.0.3:V5.1.5"],
};

pub(crate) const COOKIE_SECURE: Rule = Rule {
    id: "cookies.secure-missing",
    version: 1,
    title: "Cookie is set without the Secure attribute",
    category: Category::Cookies,
    severity: Severity::Medium,
    confidence: 0.9,
    impact: 3,
    effort: 1,
    fix: "Set the Secure attribute so the cookie is only sent over HTTPS.",
    steps: &["Add ; Secure to the Set-Cookie header (most frameworks have a setting for it)."],
    minutes: 15,
    references: &[
        "https://developer.mozilla.org/en-US/docs/Web/HTTP/Cookies#restrict_access_to_cookies",
    ],
    compliance: &["OWASP-ASVS-4.0.3:V3.4.1"],
};

pub(crate) const COOKIE_HTTPONLY: Rule = Rule {
    id: "cookies.httponly-missing",
    version: 1,
    title: "Cookie is readable by scripts (no HttpOnly)",
    category: Category::Cookies,
    severity: Severity::Low,
    confidence: 0.7,
    impact: 2,
    effort: 1,
    fix: "Set HttpOnly on cookies that scripts do not need to read, session cookies above all.",
    steps: &["Add ; HttpOnly to the Set-Cookie header of session and authentication cookies."],
    minutes: 15,
    references: &[
        "https://developer.mozilla.org/en-US/docs/Web/HTTP/Cookies#restrict_access_to_cookies",
    ],
    compliance: &["OWASP-ASVS-4.0.3:V3.4.2"],
};

pub(crate) const COOKIE_SAMESITE: Rule = Rule {
    id: "cookies.samesite-missing",
    version: 1,
    title: "Cookie has no SameSite attribute",
    category: Category::Cookies,
    severity: Severity::Low,
    confidence: 0.8,
    impact: 2,
    effort: 1,
    fix: "Set SameSite=Lax (or Strict) to limit cross-site sending.",
    steps: &["Add ; SameSite=Lax to the Set-Cookie header."],
    minutes: 15,
    references: &[
        "https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Set-Cookie#samesitesamesite-value",
    ],
    compliance: &["OWASP-ASVS-4.0.3:V3.4.3"],
};

pub(crate) const SPF_MISSING: Rule = Rule {
    id: "email.spf-missing",
    version: 1,
    title: "The domain publishes no SPF record",
    category: Category::Email,
    severity: Severity::Medium,
    confidence: 0.85,
    impact: 3,
    effort: 1,
    fix: "Publish an SPF record listing the servers allowed to send mail for the domain.",
    steps: &[
        "Publish a TXT record such as v=spf1 include:<your mail provider> -all.",
        "For a domain that sends no mail at all: v=spf1 -all.",
    ],
    minutes: 20,
    references: &["https://www.rfc-editor.org/rfc/rfc7208"],
    compliance: &["NIST-SP-800-177r1:4.4"],
};

pub(crate) const SPF_ALLOWS_ALL: Rule = Rule {
    id: "email.spf-allows-all",
    version: 1,
    title: "The SPF record lets any server send mail for the domain (+all)",
    category: Category::Email,
    severity: Severity::High,
    confidence: 0.95,
    impact: 4,
    effort: 1,
    fix: "End the SPF record with -all (or ~all while testing), never +all.",
    steps: &["Replace +all (or a bare all) at the end of the SPF record with -all."],
    minutes: 10,
    references: &["https://www.rfc-editor.org/rfc/rfc7208#section-5.1"],
    compliance: &["NIST-SP-800-177r1:4.4"],
};

pub(crate) const DMARC_MISSING: Rule = Rule {
    id: "email.dmarc-missing",
    version: 1,
    title: "The domain publishes no DMARC policy",
    category: Category::Email,
    severity: Severity::Medium,
    confidence: 0.9,
    impact: 3,
    effort: 1,
    fix: "Publish a DMARC record at _dmarc.<domain>.",
    steps: &[
        "Publish TXT _dmarc.<domain>: v=DMARC1; p=none; rua=mailto:<reports address>.",
        "After reviewing the reports, move to p=quarantine and then p=reject.",
    ],
    minutes: 30,
    references: &["https://www.rfc-editor.org/rfc/rfc7489"],
    compliance: &["NIST-SP-800-177r1:4.6"],
};

pub(crate) const DMARC_NOT_ENFORCED: Rule = Rule {
    id: "email.dmarc-not-enforced",
    version: 1,
    title: "The DMARC policy only monitors (p=none)",
    category: Category::Email,
    severity: Severity::Low,
    confidence: 0.9,
    impact: 2,
    effort: 2,
    fix: "Move the DMARC policy to p=quarantine, then p=reject.",
    steps: &[
        "Check the aggregate reports for legitimate senders failing SPF/DKIM, fix them, then tighten p=.",
    ],
    minutes: 60,
    references: &["https://www.rfc-editor.org/rfc/rfc7489#section-6.3"],
    compliance: &["NIST-SP-800-177r1:4.6"],
};

pub(crate) const CAA_MISSING: Rule = Rule {
    id: "dns.caa-missing",
    version: 1,
    title: "No CAA record restricts which CAs may issue certificates",
    category: Category::Dns,
    severity: Severity::Low,
    confidence: 0.9,
    impact: 1,
    effort: 1,
    fix: "Publish CAA records naming the certificate authorities you use.",
    steps: &["Publish e.g. CAA 0 issue \"letsencrypt.org\" at the domain (and an iodef contact)."],
    minutes: 15,
    references: &["https://www.rfc-editor.org/rfc/rfc8659"],
    compliance: &[],
};

pub(crate) const RISKY_SERVICE: Rule = Rule {
    id: "exposure.risky-service",
    version: 1,
    title: "A database, remote-access or admin service is reachable from the internet",
    category: Category::Exposure,
    severity: Severity::High,
    confidence: 0.8,
    impact: 4,
    effort: 2,
    fix: "Close the port to the internet; reach the service over a VPN or private network.",
    steps: &[
        "Restrict the port with a firewall or security group to the addresses that need it.",
        "If it must stay reachable, require strong authentication and TLS.",
    ],
    minutes: 30,
    references: &["https://www.cisa.gov/news-events/cybersecurity-advisories"],
    compliance: &["PCI-DSS-4.0:1.3.1"],
};

/// Ports whose services should not face the internet, with their usual names.
const RISKY_PORTS: [(u64, &str); 15] = [
    (21, "ftp"),
    (23, "telnet"),
    (445, "smb"),
    (1433, "mssql"),
    (1521, "oracle"),
    (2375, "docker"),
    (3306, "mysql"),
    (3389, "rdp"),
    (5432, "postgresql"),
    (5900, "vnc"),
    (6379, "redis"),
    (9200, "elasticsearch"),
    (11211, "memcached"),
    (27017, "mongodb"),
    (5984, "couchdb"),
];

/// The page rules: HTTPS enforcement, security headers, version disclosure, redirects into private
/// space.
pub(crate) fn page_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    for (asset, data) in facts.http() {
        if let Some(refused) = &data.refused_redirect {
            out.push(REDIRECT_TO_PRIVATE.fire(
                facts,
                asset,
                json!({
                    "redirect_to": refused.url,
                    "reason": refused.reason,
                }),
            ));
        }
        let Some(status) = data.status else {
            continue;
        };
        let final_url = data.final_url.as_deref().unwrap_or(asset);
        if final_url.starts_with("http://") && (200..300).contains(&status) {
            out.push(HTTPS_NOT_ENFORCED.fire(
                facts,
                final_url,
                json!({ "url": final_url, "status": status }),
            ));
        }
        let html = data
            .header("content-type")
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("text/html"));
        let csp = data.header("content-security-policy");
        if html && csp.is_none() {
            out.push(CSP_MISSING.fire(facts, final_url, json!({ "url": final_url })));
        }
        let xcto = data.header("x-content-type-options");
        if xcto.is_none_or(|v| !v.eq_ignore_ascii_case("nosniff")) {
            out.push(XCTO_MISSING.fire(
                facts,
                final_url,
                json!({
                    "url": final_url,
                    "x-content-type-options": xcto,
                }),
            ));
        }
        let frame_ancestors =
            csp.is_some_and(|c| c.to_ascii_lowercase().contains("frame-ancestors"));
        if html && data.header("x-frame-options").is_none() && !frame_ancestors {
            out.push(CLICKJACKING.fire(facts, final_url, json!({ "url": final_url })));
        }
        if data.header("referrer-policy").is_none() {
            out.push(REFERRER_POLICY_MISSING.fire(facts, final_url, json!({ "url": final_url })));
        }
        let server = data.header("server");
        let powered_by = data.header("x-powered-by");
        if server.is_some_and(|s| s.chars().any(|c| c.is_ascii_digit())) || powered_by.is_some() {
            out.push(VERSION_DISCLOSURE.fire(
                facts,
                final_url,
                json!({
                    "server": server,
                    "x-powered-by": powered_by,
                }),
            ));
        }
    }
}

/// The cookie rules over the cookies `data` set at `url`, with these rule versions.
pub(crate) fn cookie_rules_at(
    facts: &ScanFacts<'_>,
    url: &str,
    cookies: &[CookieSummary],
    rules: [&Rule; 3],
    out: &mut Vec<Finding>,
) {
    let [secure, http_only, same_site] = rules;
    for cookie in cookies {
        let name = cookie.name.as_str();
        let asset = format!("{url} cookie {name}");
        let evidence = json!({ "cookie": name, "url": url });
        if !cookie.secure {
            out.push(secure.fire(facts, &asset, evidence.clone()));
        }
        if !cookie.http_only {
            out.push(http_only.fire(facts, &asset, evidence.clone()));
        }
        if cookie.same_site.is_none() {
            out.push(same_site.fire(facts, &asset, evidence));
        }
    }
}

/// Ruleset 1's cookie rules: the cookies of each final response.
fn cookie_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    for (asset, data) in facts.http() {
        if data.status.is_none() {
            continue;
        }
        let final_url = data.final_url.as_deref().unwrap_or(asset);
        cookie_rules_at(
            facts,
            final_url,
            &data.cookies,
            [&COOKIE_SECURE, &COOKIE_HTTPONLY, &COOKIE_SAMESITE],
            out,
        );
    }
}

pub(crate) fn dns_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    for (_, data) in facts.dns() {
        let name = data.name.as_str();
        let answered = data.status.answered();
        match data.record_type.as_str() {
            "TXT" if name.starts_with("_dmarc.") && answered => {
                let policy = data
                    .records
                    .iter()
                    .find(|r| r.to_ascii_lowercase().starts_with("v=dmarc1"));
                match policy {
                    None => out.push(DMARC_MISSING.fire(facts, name, json!({ "name": name }))),
                    Some(policy) => {
                        let tags = policy.to_ascii_lowercase().replace(' ', "");
                        if tags.split(';').any(|tag| tag == "p=none") {
                            out.push(DMARC_NOT_ENFORCED.fire(
                                facts,
                                name,
                                json!({ "record": policy }),
                            ));
                        }
                    }
                }
            }
            "TXT" if !name.starts_with('_') && answered => {
                let spf = data
                    .records
                    .iter()
                    .find(|r| r.to_ascii_lowercase().starts_with("v=spf1"));
                match spf {
                    None => out.push(SPF_MISSING.fire(facts, name, json!({ "name": name }))),
                    Some(record) => {
                        let allows_all = record.split_whitespace().any(|term| {
                            term.eq_ignore_ascii_case("+all") || term.eq_ignore_ascii_case("all")
                        });
                        if allows_all {
                            out.push(SPF_ALLOWS_ALL.fire(facts, name, json!({ "record": record })));
                        }
                    }
                }
            }
            "CAA" if data.status != DnsStatus::Ok && answered => {
                out.push(CAA_MISSING.fire(facts, name, json!({ "name": name })));
            }
            _ => {}
        }
    }
}

pub(crate) fn tcp_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    for (asset, data) in facts.tcp() {
        if data.state != PortState::Open {
            continue;
        }
        let port = u64::from(data.port);
        if let Some((_, service)) = RISKY_PORTS.iter().find(|(p, _)| *p == port) {
            out.push(RISKY_SERVICE.fire(
                facts,
                asset,
                json!({ "address": asset, "port": port, "service": service }),
            ));
        }
    }
}

pub(crate) fn evaluate(facts: &ScanFacts<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    page_rules(facts, &mut out);
    cookie_rules(facts, &mut out);
    dns_rules(facts, &mut out);
    tcp_rules(facts, &mut out);
    out
}

//! Ruleset 3: findings that do not depend on how the target was typed.
//!
//! Scans recorded for ruleset 3 look at a site over both HTTP and HTTPS on every web port, whatever
//! scheme was typed, so a name, an `http://` URL and an `https://` URL of one site hold the same
//! observations; and fingerprints are taken on the site's host (not on the typed target), so they
//! are the same too. On top of ruleset 2's rules (unchanged unless listed here):
//!
//! * the exposure rules judge the response a check ends on after same-site redirects, and name it
//!   (version 2 of each); `exposure.security-txt-missing` fires once per site, only when no origin
//!   of the site serves one;
//! * the cookie rules look at every cookie the redirect chain set, not only the final response's
//!   (version 2 of each), and cookie name prefixes are checked against their rules;
//! * a site that serves web pages but no HTTPS at all is `http.no-https`;
//! * Content-Security-Policy is evaluated, after Google's CSP Evaluator, one rule per weakness.

use std::collections::BTreeMap;

use serde_json::json;
use vantage_observations::exposure::ExposureCheck;
use vantage_observations::http::{CookieSummary, HttpObservation};

use crate::ScanFacts;
use crate::finding::{Category, Finding, Severity};
use crate::site::SiteView;
use crate::v1::{self, Rule};
use crate::v2;

const CSP_REFS: &[&str] = &[
    "https://csp-evaluator.withgoogle.com/",
    "https://developer.mozilla.org/en-US/docs/Web/HTTP/CSP",
];
const CSP_ASVS: &[&str] = &["OWASP-ASVS-4.0.3:V14.4.3"];

pub(crate) const NO_HTTPS: Rule = Rule {
    id: "http.no-https",
    version: 1,
    title: "The site serves web pages over plain HTTP only, with no HTTPS at all",
    category: Category::Tls,
    severity: Severity::High,
    confidence: 0.95,
    impact: 4,
    effort: 2,
    fix: "Serve the site over HTTPS with a publicly trusted certificate, and redirect HTTP to it.",
    steps: &[
        "Obtain a certificate for the site's names (e.g. with ACME / Let's Encrypt).",
        "Configure the web server to listen on 443 with that certificate.",
        "Redirect every plain-HTTP request to the same URL over HTTPS, then send HSTS.",
    ],
    minutes: 60,
    references: &[
        "https://cheatsheetseries.owasp.org/cheatsheets/Transport_Layer_Security_Cheat_Sheet.html",
    ],
    compliance: &[
        "OWASP-ASVS-4.0.3:V9.1.1",
        "PCI-DSS-4.0:4.2.1",
        "NIST-SP-800-52r2:3.1",
    ],
};

pub(crate) const CSP_UNSAFE_INLINE: Rule = Rule {
    id: "csp.script-unsafe-inline",
    version: 1,
    title: "The Content-Security-Policy allows inline scripts ('unsafe-inline')",
    category: Category::Headers,
    severity: Severity::High,
    confidence: 0.9,
    impact: 4,
    effort: 3,
    fix: "Remove 'unsafe-inline' from script-src; allow inline scripts by nonce or hash instead.",
    steps: &[
        "Move inline scripts and event handlers into script files, or give each a nonce or hash.",
        "Replace 'unsafe-inline' in script-src (or default-src) with 'nonce-…' or 'sha256-…' sources.",
    ],
    minutes: 240,
    references: CSP_REFS,
    compliance: CSP_ASVS,
};

pub(crate) const CSP_UNSAFE_INLINE_IGNORED: Rule = Rule {
    id: "csp.unsafe-inline-ignored",
    version: 1,
    title: "'unsafe-inline' in the Content-Security-Policy is ignored (a nonce or hash is present)",
    category: Category::Headers,
    severity: Severity::Info,
    confidence: 0.95,
    impact: 1,
    effort: 1,
    fix: "Nothing to fix: browsers that support nonces and hashes ignore 'unsafe-inline'; it only keeps old browsers working.",
    steps: &["Keep 'unsafe-inline' only as a fallback for browsers without CSP level 2."],
    minutes: 5,
    references: CSP_REFS,
    compliance: &[],
};

pub(crate) const CSP_UNSAFE_EVAL: Rule = Rule {
    id: "csp.script-unsafe-eval",
    version: 1,
    title: "The Content-Security-Policy allows eval() ('unsafe-eval')",
    category: Category::Headers,
    severity: Severity::Medium,
    confidence: 0.9,
    impact: 3,
    effort: 3,
    fix: "Remove 'unsafe-eval' from script-src; stop building code from strings.",
    steps: &[
        "Find the scripts that call eval(), new Function() or string timers and rewrite them.",
        "Remove 'unsafe-eval' from script-src (or default-src).",
    ],
    minutes: 180,
    references: CSP_REFS,
    compliance: CSP_ASVS,
};

pub(crate) const CSP_WILDCARD: Rule = Rule {
    id: "csp.wildcard-source",
    version: 1,
    title: "The Content-Security-Policy lets scripts, plugins or <base> load from any host ('*')",
    category: Category::Headers,
    severity: Severity::High,
    confidence: 0.9,
    impact: 4,
    effort: 2,
    fix: "Replace '*' in script-src, object-src and base-uri with the hosts the page needs, or 'self'.",
    steps: &[
        "List the origins scripts really load from.",
        "Replace '*' with those origins (or 'self'); set object-src 'none' and base-uri 'self'.",
    ],
    minutes: 60,
    references: CSP_REFS,
    compliance: CSP_ASVS,
};

pub(crate) const CSP_SCHEME_SOURCE: Rule = Rule {
    id: "csp.scheme-source",
    version: 1,
    title: "The Content-Security-Policy allows a whole scheme (data:, http: or https:) for scripts",
    category: Category::Headers,
    severity: Severity::High,
    confidence: 0.9,
    impact: 4,
    effort: 2,
    fix: "Remove scheme-only sources from script-src, object-src and base-uri; name hosts instead.",
    steps: &[
        "Replace https: / http: / data: in script-src, object-src and base-uri with specific origins.",
    ],
    minutes: 60,
    references: CSP_REFS,
    compliance: CSP_ASVS,
};

pub(crate) const CSP_OBJECT_SRC_MISSING: Rule = Rule {
    id: "csp.object-src-missing",
    version: 1,
    title: "The Content-Security-Policy does not restrict plugins (no object-src or default-src)",
    category: Category::Headers,
    severity: Severity::Medium,
    confidence: 0.9,
    impact: 3,
    effort: 1,
    fix: "Add object-src 'none' to the Content-Security-Policy.",
    steps: &["Add the directive object-src 'none' (plugins can otherwise run script)."],
    minutes: 10,
    references: CSP_REFS,
    compliance: CSP_ASVS,
};

pub(crate) const CSP_BASE_URI_MISSING: Rule = Rule {
    id: "csp.base-uri-missing",
    version: 1,
    title: "A nonce-based Content-Security-Policy does not restrict <base> (no base-uri)",
    category: Category::Headers,
    severity: Severity::Medium,
    confidence: 0.9,
    impact: 3,
    effort: 1,
    fix: "Add base-uri 'none' (or 'self'): an injected <base> would point relative script URLs elsewhere.",
    steps: &["Add the directive base-uri 'none' (or 'self' if the page uses <base>)."],
    minutes: 10,
    references: CSP_REFS,
    compliance: CSP_ASVS,
};

pub(crate) const CSP_FRAME_ANCESTORS_MISSING: Rule = Rule {
    id: "csp.frame-ancestors-missing",
    version: 1,
    title: "The Content-Security-Policy does not say who may frame the page (no frame-ancestors)",
    category: Category::Headers,
    severity: Severity::Low,
    confidence: 0.9,
    impact: 2,
    effort: 1,
    fix: "Add frame-ancestors 'self' (or 'none') to the Content-Security-Policy.",
    steps: &["Add frame-ancestors 'none' (or 'self', or the origins allowed to embed the page)."],
    minutes: 10,
    references: CSP_REFS,
    compliance: &["OWASP-ASVS-4.0.3:V14.4.7"],
};

pub(crate) const CSP_REPORT_ONLY: Rule = Rule {
    id: "csp.report-only",
    version: 1,
    title: "The Content-Security-Policy is only reported, not enforced",
    category: Category::Headers,
    severity: Severity::Medium,
    confidence: 0.95,
    impact: 3,
    effort: 2,
    fix: "Once the reports are clean, send the policy as Content-Security-Policy to enforce it.",
    steps: &[
        "Review the violation reports and adjust the policy.",
        "Send the same policy in the Content-Security-Policy header (keep report-only for changes).",
    ],
    minutes: 60,
    references: CSP_REFS,
    compliance: CSP_ASVS,
};

pub(crate) const COOKIE_PREFIX_VIOLATED: Rule = Rule {
    id: "cookies.prefix-violated",
    version: 1,
    title: "A cookie breaks the rules of its __Host- or __Secure- prefix, so browsers refuse it",
    category: Category::Cookies,
    severity: Severity::Medium,
    confidence: 0.95,
    impact: 2,
    effort: 1,
    fix: "Set __Secure- cookies with Secure; set __Host- cookies with Secure, Path=/ and no Domain.",
    steps: &[
        "For __Secure-…: add the Secure attribute.",
        "For __Host-…: add Secure, set Path=/ and remove the Domain attribute.",
    ],
    minutes: 15,
    references: &[
        "https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Set-Cookie#cookie_prefixes",
    ],
    compliance: &["OWASP-ASVS-4.0.3:V3.4.1"],
};

pub(crate) const COOKIE_SESSION_UNPREFIXED: Rule = Rule {
    id: "cookies.session-without-prefix",
    version: 1,
    title: "A session cookie has no __Host- prefix",
    category: Category::Cookies,
    severity: Severity::Info,
    confidence: 0.7,
    impact: 1,
    effort: 1,
    fix: "Name session cookies __Host-… (Secure, Path=/, no Domain) so no subdomain or plain-HTTP page can set or overwrite them.",
    steps: &["Rename the cookie to __Host-<name> and set it with Secure; Path=/ and no Domain."],
    minutes: 30,
    references: &[
        "https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Set-Cookie#cookie_prefixes",
    ],
    compliance: &[],
};

pub(crate) const COOKIE_SECURE: Rule = Rule {
    version: 2,
    ..v1::COOKIE_SECURE
};
pub(crate) const COOKIE_HTTPONLY: Rule = Rule {
    version: 2,
    ..v1::COOKIE_HTTPONLY
};
pub(crate) const COOKIE_SAMESITE: Rule = Rule {
    version: 2,
    ..v1::COOKIE_SAMESITE
};
pub(crate) const GIT_EXPOSED: Rule = Rule {
    version: 2,
    ..v2::GIT_EXPOSED
};
pub(crate) const ENV_EXPOSED: Rule = Rule {
    version: 2,
    ..v2::ENV_EXPOSED
};
pub(crate) const SERVER_STATUS: Rule = Rule {
    version: 2,
    ..v2::SERVER_STATUS
};
pub(crate) const DIRECTORY_LISTING: Rule = Rule {
    version: 2,
    ..v2::DIRECTORY_LISTING
};
pub(crate) const API_DOCS_PUBLIC: Rule = Rule {
    version: 2,
    ..v2::API_DOCS_PUBLIC
};
pub(crate) const SECURITY_TXT_MISSING: Rule = Rule {
    version: 2,
    ..v2::SECURITY_TXT_MISSING
};
pub(crate) const SECURITY_TXT_INVALID: Rule = Rule {
    version: 2,
    ..v2::SECURITY_TXT_INVALID
};

/// Every rule of ruleset 3.
pub(crate) const RULES: &[&Rule] = &[
    &v1::HTTPS_NOT_ENFORCED,
    &v1::CSP_MISSING,
    &v1::XCTO_MISSING,
    &v1::CLICKJACKING,
    &v1::REFERRER_POLICY_MISSING,
    &v1::VERSION_DISCLOSURE,
    &v1::REDIRECT_TO_PRIVATE,
    &COOKIE_SECURE,
    &COOKIE_HTTPONLY,
    &COOKIE_SAMESITE,
    &v1::SPF_MISSING,
    &v1::SPF_ALLOWS_ALL,
    &v1::DMARC_MISSING,
    &v1::DMARC_NOT_ENFORCED,
    &v1::CAA_MISSING,
    &v1::RISKY_SERVICE,
    &GIT_EXPOSED,
    &ENV_EXPOSED,
    &SERVER_STATUS,
    &DIRECTORY_LISTING,
    &API_DOCS_PUBLIC,
    &SECURITY_TXT_MISSING,
    &v2::SRI_MISSING,
    &v2::MIXED_CONTENT,
    &v2::HSTS_MISSING,
    &v2::HSTS_SHORT,
    &v2::CORS_REFLECTS,
    &v2::MTA_STS_UNAVAILABLE,
    &v2::MTA_STS_NOT_ENFORCED,
    &v2::CERT_EXPIRED,
    &v2::CERT_EXPIRING,
    &v2::CERT_UNTRUSTED,
    &v2::NAME_MISMATCH,
    &v2::WEAK_KEY,
    &v2::SHA1_SIGNATURE,
    &v2::NO_TLS13,
    &v2::LEGACY_PROTOCOL,
    &SECURITY_TXT_INVALID,
    &NO_HTTPS,
    &CSP_UNSAFE_INLINE,
    &CSP_UNSAFE_INLINE_IGNORED,
    &CSP_UNSAFE_EVAL,
    &CSP_WILDCARD,
    &CSP_SCHEME_SOURCE,
    &CSP_OBJECT_SRC_MISSING,
    &CSP_BASE_URI_MISSING,
    &CSP_FRAME_ANCESTORS_MISSING,
    &CSP_REPORT_ONLY,
    &COOKIE_PREFIX_VIOLATED,
    &COOKIE_SESSION_UNPREFIXED,
];

/// Cookies set by every response of every page's chain, with the URL that set them.
fn set_cookies<'a>(facts: &ScanFacts<'a>) -> Vec<(&'a str, &'a CookieSummary)> {
    facts
        .http()
        .into_iter()
        .flat_map(|(_, page)| {
            page.hops.iter().flat_map(|hop| {
                hop.set_cookies
                    .iter()
                    .map(move |cookie| (hop.url.as_str(), cookie))
            })
        })
        .collect()
}

fn cookie_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    for (url, cookie) in set_cookies(facts) {
        v1::cookie_rules_at(
            facts,
            url,
            std::slice::from_ref(cookie),
            [&COOKIE_SECURE, &COOKIE_HTTPONLY, &COOKIE_SAMESITE],
            out,
        );
    }
}

/// Names that mark a cookie as a session or authentication cookie.
const SESSION_HINTS: [&str; 7] = ["session", "sess", "sid", "auth", "token", "login", "jwt"];

fn cookie_prefix_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    for (url, cookie) in set_cookies(facts) {
        let name = cookie.name.as_str();
        let asset = format!("{url} cookie {name}");
        let broken = if name.starts_with("__Secure-") {
            (!cookie.secure).then_some("__Secure- cookies must be set with Secure")
        } else if name.starts_with("__Host-") {
            if !cookie.secure {
                Some("__Host- cookies must be set with Secure")
            } else if cookie.domain.is_some() {
                Some("__Host- cookies must not have a Domain")
            } else if cookie.path.as_deref() != Some("/") {
                Some("__Host- cookies must have Path=/")
            } else {
                None
            }
        } else {
            None
        };
        if let Some(reason) = broken {
            out.push(COOKIE_PREFIX_VIOLATED.fire(
                facts,
                &asset,
                json!({
                    "cookie": name,
                    "url": url,
                    "reason": reason,
                    "secure": cookie.secure,
                    "path": cookie.path,
                    "domain": cookie.domain,
                }),
            ));
        }
        let lower = name.to_ascii_lowercase();
        let prefixed = name.starts_with("__Host-") || name.starts_with("__Secure-");
        if !prefixed && SESSION_HINTS.iter().any(|hint| lower.contains(hint)) {
            out.push(COOKIE_SESSION_UNPREFIXED.fire(
                facts,
                &asset,
                json!({ "cookie": name, "url": url }),
            ));
        }
    }
}

fn no_https_rule(facts: &ScanFacts<'_>, site: &SiteView<'_>, out: &mut Vec<Finding>) {
    if site.serves_web() && !site.serves_https() {
        let asset = format!("http://{}/", site.host);
        out.push(NO_HTTPS.fire(
            facts,
            &asset,
            json!({
                "host": site.host,
                "https_tried": site
                    .pages
                    .iter()
                    .filter(|(_, page)| page.url.starts_with("https://"))
                    .map(|(_, page)| json!({ "url": page.url, "error": page.error }))
                    .collect::<Vec<_>>(),
            }),
        ));
    }
}

/// An enforced or reported policy: directive → its sources, lower-cased (the first of a repeated
/// directive counts, as in browsers).
fn directives(policy: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for directive in policy.split(';') {
        let mut words = directive.split_whitespace();
        let Some(name) = words.next() else {
            continue;
        };
        out.entry(name.to_ascii_lowercase())
            .or_insert_with(|| words.map(str::to_ascii_lowercase).collect());
    }
    out
}

fn is_nonce(source: &str) -> bool {
    source.starts_with("'nonce-") && source.ends_with('\'') && source.len() > "'nonce-'".len()
}

fn is_hash(source: &str) -> bool {
    ["'sha256-", "'sha384-", "'sha512-"]
        .iter()
        .any(|p| source.starts_with(p))
        && source.ends_with('\'')
}

/// A source without its scheme (`https://*` → `*`), as CSP Evaluator compares them.
fn scheme_free(source: &str) -> &str {
    source.split_once("://").map_or(source, |(_, rest)| rest)
}

fn csp_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    for (_, page) in facts.http() {
        let Some(final_url) = page.final_url.as_deref().filter(|_| page.answered()) else {
            continue;
        };
        let html = page
            .header("content-type")
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("text/html"));
        if html {
            csp_page_rules(facts, final_url, page, out);
        }
    }
}

fn csp_page_rules(
    facts: &ScanFacts<'_>,
    url: &str,
    page: &HttpObservation,
    out: &mut Vec<Finding>,
) {
    let enforced = page.header("content-security-policy");
    let reported = page.header("content-security-policy-report-only");
    let Some(policy) = enforced else {
        if let Some(reported) = reported {
            out.push(CSP_REPORT_ONLY.fire(
                facts,
                url,
                json!({ "url": url, "report_only_policy": reported }),
            ));
        }
        return;
    };
    let csp = directives(policy);
    let get = |name: &str| csp.get(name);
    let script = get("script-src").or_else(|| get("default-src"));
    let script_directive = if get("script-src").is_some() {
        "script-src"
    } else {
        "default-src"
    };
    let evidence = |directive: &str, source: Option<&str>| json!({ "url": url, "policy": policy, "directive": directive, "source": source });
    if let Some(script) = script {
        let nonces = script.iter().any(|s| is_nonce(s));
        let hashes = script.iter().any(|s| is_hash(s));
        let strict_dynamic = script.iter().any(|s| s == "'strict-dynamic'");
        if script.iter().any(|s| s == "'unsafe-inline'") {
            if nonces || hashes {
                out.push(CSP_UNSAFE_INLINE_IGNORED.fire(
                    facts,
                    url,
                    evidence(script_directive, Some("'unsafe-inline'")),
                ));
            } else {
                out.push(CSP_UNSAFE_INLINE.fire(
                    facts,
                    url,
                    evidence(script_directive, Some("'unsafe-inline'")),
                ));
            }
        }
        if script.iter().any(|s| s == "'unsafe-eval'") {
            out.push(CSP_UNSAFE_EVAL.fire(
                facts,
                url,
                evidence(script_directive, Some("'unsafe-eval'")),
            ));
        }
        if (nonces || (hashes && strict_dynamic)) && get("base-uri").is_none() {
            out.push(CSP_BASE_URI_MISSING.fire(facts, url, evidence("base-uri", None)));
        }
    }
    // The directives through which script can run: scripts, plugins, and <base>.
    let mut wildcard: Option<(&str, &str)> = None;
    let mut scheme: Option<(&str, &str)> = None;
    for (directive, sources) in [
        (script_directive, script),
        (
            if get("object-src").is_some() {
                "object-src"
            } else {
                "default-src"
            },
            get("object-src").or_else(|| get("default-src")),
        ),
        ("base-uri", get("base-uri")),
    ] {
        for source in sources.into_iter().flatten() {
            if wildcard.is_none() && scheme_free(source) == "*" {
                wildcard = Some((directive, source));
            }
            if scheme.is_none() && matches!(source.as_str(), "data:" | "http:" | "https:") {
                scheme = Some((directive, source));
            }
        }
    }
    if let Some((directive, source)) = wildcard {
        out.push(CSP_WILDCARD.fire(facts, url, evidence(directive, Some(source))));
    }
    if let Some((directive, source)) = scheme {
        out.push(CSP_SCHEME_SOURCE.fire(facts, url, evidence(directive, Some(source))));
    }
    let objects = get("object-src").or_else(|| get("default-src"));
    if objects.is_none_or(Vec::is_empty) {
        out.push(CSP_OBJECT_SRC_MISSING.fire(facts, url, evidence("object-src", None)));
    }
    if get("frame-ancestors").is_none() {
        out.push(CSP_FRAME_ANCESTORS_MISSING.fire(facts, url, evidence("frame-ancestors", None)));
    }
}

fn exposure_rules(facts: &ScanFacts<'_>, out: &mut Vec<Finding>) {
    let exposures = facts.exposure();
    for (_, data) in &exposures {
        let url = data.judged_url();
        let evidence = || {
            json!({
                "url": url,
                "requested": data.url,
                "redirects": data.redirects,
                "details": data.details,
            })
        };
        let rule = match data.check {
            ExposureCheck::GitHead if data.found => Some(&GIT_EXPOSED),
            ExposureCheck::EnvFile if data.found => Some(&ENV_EXPOSED),
            ExposureCheck::ServerStatus if data.found => Some(&SERVER_STATUS),
            ExposureCheck::DirectoryListing if data.found => Some(&DIRECTORY_LISTING),
            check if check.is_api_document() && data.found => Some(&API_DOCS_PUBLIC),
            _ => None,
        };
        if let Some(rule) = rule {
            out.push(rule.fire(facts, url, evidence()));
        }
        if data.check == ExposureCheck::SecurityTxt && data.found {
            let (invalid, expires) = v2::security_txt_validity(&data.details);
            if invalid {
                out.push(SECURITY_TXT_INVALID.fire(
                    facts,
                    url,
                    json!({ "url": url, "expires": expires }),
                ));
            }
        }
    }
    // security.txt is missing only when no origin of the site serves it; it is reported on the
    // site's primary origin (HTTPS first, then the usual port).
    let security_txt: Vec<_> = exposures
        .iter()
        .filter(|(_, d)| d.check == ExposureCheck::SecurityTxt)
        .collect();
    let served = security_txt.iter().any(|(_, d)| d.found);
    let primary = security_txt
        .iter()
        .filter(|(_, d)| d.status.is_some())
        .min_by_key(|(_, d)| {
            let url = url::Url::parse(&d.url).ok();
            let https = url.as_ref().is_some_and(|u| u.scheme() == "https");
            let port = url.and_then(|u| u.port_or_known_default()).unwrap_or(0);
            (!https, !matches!(port, 80 | 443), port)
        });
    if let (false, Some((_, primary))) = (served, primary) {
        out.push(SECURITY_TXT_MISSING.fire(
            facts,
            &primary.url,
            json!({
                "url": primary.url,
                "checked": security_txt
                    .iter()
                    .map(|(_, d)| json!({ "url": d.judged_url(), "status": d.status }))
                    .collect::<Vec<_>>(),
            }),
        ));
    }
}

pub(crate) fn evaluate(facts: &ScanFacts<'_>) -> Vec<Finding> {
    let site = SiteView::of(facts);
    // Fingerprints on the site, not on how it was typed.
    let facts = ScanFacts {
        target: &site.host,
        ..*facts
    };
    let facts = &facts;
    let mut out = Vec::new();
    v1::page_rules(facts, &mut out);
    cookie_rules(facts, &mut out);
    v1::dns_rules(facts, &mut out);
    v1::tcp_rules(facts, &mut out);
    exposure_rules(facts, &mut out);
    v2::html_rules(facts, &mut out);
    v2::hsts_rules(facts, &mut out);
    v2::cors_rules(facts, &mut out);
    v2::mta_sts_rules(facts, &mut out);
    v2::tls_rules(facts, &mut out);
    no_https_rule(facts, &site, &mut out);
    csp_rules(facts, &mut out);
    cookie_prefix_rules(facts, &mut out);
    out
}

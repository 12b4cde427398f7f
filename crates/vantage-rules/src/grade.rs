//! The HTTP headers grade, after the Mozilla HTTP Observatory's method (see `docs/scoring.md`):
//! start at 100, apply each test's modifier, count bonuses only when the score without them is at
//! least 90, never go below 0, and read the grade off the Observatory's chart.
//!
//! Pure and versioned like the rules: [`HEADERS_ALGORITHM`] names the exact table below, and a change
//! to it is a new version.

use serde::{Deserialize, Serialize};
use vantage_observations::http::{CookieSummary, FOREIGN_ORIGIN, HttpObservation};
use vantage_observations::tls::TlsObservation;
use vantage_observations::{Observation, ProbeKind};

/// The version of the table and chart below; returned with every grade.
pub const HEADERS_ALGORITHM: &str = "observatory-headers-1";

/// One test's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HeaderTest {
    pub test: String,
    pub result: String,
    pub modifier: i32,
}

/// The grade of one response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HeaderGrade {
    pub algorithm: String,
    pub score: u32,
    pub grade: String,
    pub tests: Vec<HeaderTest>,
}

/// The Observatory's grade chart.
pub fn letter(score: u32) -> &'static str {
    match score {
        100.. => "A+",
        90..=99 => "A",
        85..=89 => "A-",
        80..=84 => "B+",
        70..=79 => "B",
        65..=69 => "B-",
        60..=64 => "C+",
        50..=59 => "C",
        45..=49 => "C-",
        40..=44 => "D+",
        30..=39 => "D",
        25..=29 => "D-",
        _ => "F",
    }
}

/// CSP directives, lower-cased: name → sources.
fn csp_directives(policy: &str) -> Vec<(String, Vec<String>)> {
    policy
        .split(';')
        .filter_map(|directive| {
            let mut parts = directive.split_whitespace();
            let name = parts.next()?.to_ascii_lowercase();
            Some((name, parts.map(str::to_ascii_lowercase).collect()))
        })
        .collect()
}

fn csp_test(data: &HttpObservation) -> (&'static str, i32) {
    let Some(policy) = data.header("content-security-policy") else {
        return ("csp-not-implemented", -25);
    };
    let directives = csp_directives(policy);
    if directives.is_empty() {
        return ("csp-header-invalid", -25);
    }
    let get = |name: &str| directives.iter().find(|(n, _)| n == name).map(|(_, s)| s);
    let scripts = get("script-src").or_else(|| get("default-src"));
    let Some(scripts) = scripts else {
        // No script-src and no default-src: scripts are not restricted at all.
        return ("csp-implemented-with-unsafe-inline", -20);
    };
    let has = |source: &str| scripts.iter().any(|s| s == source);
    let nonce_or_hash = scripts
        .iter()
        .any(|s| s.starts_with("'nonce-") || s.starts_with("'sha"));
    if has("'unsafe-inline'") && !nonce_or_hash || has("*") || has("https:") || has("http:") {
        return ("csp-implemented-with-unsafe-inline", -20);
    }
    if scripts.iter().any(|s| s.starts_with("http://")) {
        return ("csp-implemented-with-insecure-scheme", -20);
    }
    if has("'unsafe-eval'") {
        return ("csp-implemented-with-unsafe-eval", -10);
    }
    if get("default-src").is_some_and(|d| d.iter().any(|s| s == "'none'")) {
        return ("csp-implemented-with-no-unsafe-default-src-none", 10);
    }
    ("csp-implemented-with-no-unsafe", 5)
}

fn is_session_cookie(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["session", "sess", "sid", "auth", "token", "login", "jwt"]
        .iter()
        .any(|hint| name.contains(hint))
}

fn hsts_ok(data: &HttpObservation) -> bool {
    data.header("strict-transport-security")
        .is_some_and(|v| v.to_ascii_lowercase().contains("max-age="))
}

fn cookies_test(data: &HttpObservation) -> (&'static str, i32) {
    let cookies = &data.cookies;
    if cookies.is_empty() {
        return ("cookies-not-found", 0);
    }
    let session = |c: &CookieSummary| is_session_cookie(&c.name);
    let hsts = hsts_ok(data);
    if cookies.iter().any(|c| session(c) && !c.secure) {
        return if hsts {
            (
                "cookies-session-without-secure-flag-but-protected-by-hsts",
                -10,
            )
        } else {
            ("cookies-session-without-secure-flag", -40)
        };
    }
    if cookies.iter().any(|c| session(c) && !c.http_only) {
        return ("cookies-session-without-httponly-flag", -30);
    }
    if cookies.iter().any(|c| !c.secure) {
        return if hsts {
            ("cookies-without-secure-flag-but-protected-by-hsts", -5)
        } else {
            ("cookies-without-secure-flag", -20)
        };
    }
    if cookies.iter().all(|c| c.same_site.is_some()) {
        ("cookies-secure-with-httponly-sessions-and-samesite", 5)
    } else {
        ("cookies-secure-with-httponly-sessions", 0)
    }
}

/// Whether the response or its CORS preflight reflects the foreign origin with credentials allowed:
/// any site could then read authenticated responses.
pub fn reflects_origin_with_credentials(data: &HttpObservation) -> bool {
    let reflected = |origin: Option<&str>, credentials: Option<&str>| {
        origin == Some(FOREIGN_ORIGIN)
            && credentials.is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    reflected(
        data.header("access-control-allow-origin"),
        data.header("access-control-allow-credentials"),
    ) || data.cors_preflight.as_ref().is_some_and(|preflight| {
        reflected(
            preflight.allow_origin.as_deref(),
            preflight.allow_credentials.as_deref(),
        )
    })
}

fn cors_test(data: &HttpObservation) -> (&'static str, i32) {
    if reflects_origin_with_credentials(data) {
        return (
            "cross-origin-resource-sharing-implemented-with-universal-access",
            -50,
        );
    }
    match data.header("access-control-allow-origin") {
        None => ("cross-origin-resource-sharing-not-implemented", 0),
        Some("*") => (
            "cross-origin-resource-sharing-implemented-with-public-access",
            0,
        ),
        Some(_) => (
            "cross-origin-resource-sharing-implemented-with-restricted-access",
            0,
        ),
    }
}

fn redirection_test(data: &HttpObservation) -> (&'static str, i32) {
    let first = data.url.as_str();
    if first.starts_with("https://") {
        return ("redirection-not-needed-no-http", 0);
    }
    let hops = &data.hops;
    let final_url = data.final_url.as_deref().unwrap_or_default();
    let host = |u: &str| {
        u.split("://")
            .nth(1)
            .and_then(|r| r.split(['/', ':']).next())
            .unwrap_or("")
            .to_owned()
    };
    let Some(first_hop) = hops.first() else {
        return ("redirection-missing", -20);
    };
    let Some(location) = first_hop.location.as_deref() else {
        return ("redirection-missing", -20);
    };
    if !final_url.starts_with("https://") {
        return ("redirection-not-to-https", -20);
    }
    let first_target = hops.get(1).map_or(location, |h| h.url.as_str());
    if !first_target.starts_with("https://") {
        return ("redirection-not-to-https-on-initial-redirection", -10);
    }
    if host(first_target) != host(first) {
        return ("redirection-off-host-from-http", -5);
    }
    ("redirection-to-https", 0)
}

fn referrer_test(data: &HttpObservation) -> (&'static str, i32) {
    let Some(value) = data.header("referrer-policy") else {
        return ("referrer-policy-not-implemented", 0);
    };
    // The last recognised token wins, as in browsers.
    let policy = value
        .split(',')
        .map(|t| t.trim().to_ascii_lowercase())
        .rfind(|t| {
            matches!(
                t.as_str(),
                "no-referrer"
                    | "same-origin"
                    | "strict-origin"
                    | "strict-origin-when-cross-origin"
                    | "no-referrer-when-downgrade"
                    | "origin"
                    | "origin-when-cross-origin"
                    | "unsafe-url"
            )
        });
    match policy.as_deref() {
        Some(
            "no-referrer" | "same-origin" | "strict-origin" | "strict-origin-when-cross-origin",
        ) => ("referrer-policy-private", 5),
        Some("no-referrer-when-downgrade") => ("referrer-policy-no-referrer-when-downgrade", 0),
        Some(_) => ("referrer-policy-unsafe", -5),
        None => ("referrer-policy-header-invalid", -5),
    }
}

fn hsts_test(data: &HttpObservation) -> (&'static str, i32) {
    let final_url = data.final_url.as_deref().unwrap_or_default();
    if !final_url.starts_with("https://") {
        return ("hsts-not-implemented-no-https", -20);
    }
    let Some(value) = data.header("strict-transport-security") else {
        return ("hsts-not-implemented", -20);
    };
    let age = value.split(';').find_map(|d| {
        let (name, age) = d.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| age.trim().trim_matches('"').parse::<u64>().ok())
            .flatten()
    });
    match age {
        None => ("hsts-header-invalid", -20),
        Some(age) if age < 15_552_000 => ("hsts-implemented-max-age-less-than-six-months", -10),
        Some(_) => ("hsts-implemented-max-age-at-least-six-months", 0),
    }
}

fn sri_test(data: &HttpObservation) -> (&'static str, i32) {
    let Some(html) = &data.html else {
        return ("sri-not-implemented-response-not-html", 0);
    };
    let external = html.external_scripts;
    if html.scripts == 0 {
        return ("sri-not-implemented-but-no-scripts-loaded", 0);
    }
    if external == 0 {
        return (
            "sri-not-implemented-but-all-scripts-loaded-from-secure-origin",
            0,
        );
    }
    let secure = data
        .final_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
        && html.insecure_subresources == 0;
    let without = html.external_scripts_without_sri;
    match (without == 0, secure) {
        (true, true) => ("sri-implemented-and-all-scripts-loaded-securely", 5),
        (true, false) => (
            "sri-implemented-but-external-scripts-not-loaded-securely",
            -20,
        ),
        (false, true) => (
            "sri-not-implemented-but-external-scripts-loaded-securely",
            -5,
        ),
        (false, false) => (
            "sri-not-implemented-and-external-scripts-not-loaded-securely",
            -50,
        ),
    }
}

fn xcto_test(data: &HttpObservation) -> (&'static str, i32) {
    match data.header("x-content-type-options") {
        None => ("x-content-type-options-not-implemented", -5),
        Some(v) if v.trim().eq_ignore_ascii_case("nosniff") => {
            ("x-content-type-options-nosniff", 0)
        }
        Some(_) => ("x-content-type-options-header-invalid", -5),
    }
}

fn xfo_test(data: &HttpObservation) -> (&'static str, i32) {
    let via_csp = data.header("content-security-policy").is_some_and(|p| {
        csp_directives(p)
            .iter()
            .any(|(n, _)| n == "frame-ancestors")
    });
    if via_csp {
        return ("x-frame-options-implemented-via-csp", 5);
    }
    match data
        .header("x-frame-options")
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => ("x-frame-options-not-implemented", -20),
        Some(v) if v == "deny" || v == "sameorigin" => ("x-frame-options-sameorigin-or-deny", 0),
        Some(v) if v.starts_with("allow-from") => ("x-frame-options-allow-from-origin", 0),
        Some(_) => ("x-frame-options-header-invalid", -20),
    }
}

fn corp_test(data: &HttpObservation) -> (&'static str, i32) {
    match data
        .header("cross-origin-resource-policy")
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => ("corp-not-implemented", 0),
        Some(v) if v == "same-origin" || v == "same-site" => {
            ("corp-implemented-with-same-origin", 0)
        }
        Some(v) if v == "cross-origin" => ("corp-implemented-with-cross-origin", 0),
        Some(_) => ("corp-header-invalid", -5),
    }
}

/// Grades one HTTP observation (the response a browser ends on for the target's root).
/// `None` when the fetch never got a response.
pub fn grade_headers(data: &HttpObservation) -> Option<HeaderGrade> {
    data.status?;
    let tests = [
        ("content-security-policy", csp_test(data)),
        ("cookies", cookies_test(data)),
        ("cross-origin-resource-sharing", cors_test(data)),
        ("redirection", redirection_test(data)),
        ("referrer-policy", referrer_test(data)),
        ("strict-transport-security", hsts_test(data)),
        ("subresource-integrity", sri_test(data)),
        ("x-content-type-options", xcto_test(data)),
        ("x-frame-options", xfo_test(data)),
        ("cross-origin-resource-policy", corp_test(data)),
    ];
    let penalties: i32 = tests.iter().map(|(_, (_, m))| (*m).min(0)).sum();
    let bonuses: i32 = tests.iter().map(|(_, (_, m))| (*m).max(0)).sum();
    let base = 100 + penalties;
    let score = if base >= 90 { base + bonuses } else { base }.max(0);
    let score = u32::try_from(score).unwrap_or(0);
    Some(HeaderGrade {
        algorithm: HEADERS_ALGORITHM.to_owned(),
        score,
        grade: letter(score).to_owned(),
        tests: tests
            .iter()
            .map(|(test, (result, modifier))| HeaderTest {
                test: (*test).to_owned(),
                result: (*result).to_owned(),
                modifier: *modifier,
            })
            .collect(),
    })
}

/// The version of the TLS grading of rulesets 1–3; returned with every TLS grade it gives.
pub const TLS_ALGORITHM: &str = "ssllabs-caps-1";
/// The TLS grading of ruleset 4: the caps of `ssllabs-caps-1`, with the cipher suite caps judged on
/// every suite the enumeration found (when the scan enumerated them).
pub const TLS_SUITES_ALGORITHM: &str = "ssllabs-caps-2";

/// One suite an enumeration found, with its catalogue entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EnumeratedSuite {
    pub version: vantage_observations::tls::TlsVersion,
    pub suite: &'static vantage_observations::cipher_suites::SuiteInfo,
    pub dh_bits: Option<u32>,
}

/// Every (version, suite) the address accepted, when its suites were enumerated (suites the
/// catalogue does not know are left out: they were never offered).
pub(crate) fn enumerated_suites(data: &TlsObservation) -> Option<Vec<EnumeratedSuite>> {
    let versions = data.cipher_suites.as_ref()?;
    Some(
        versions
            .iter()
            .flat_map(|v| {
                v.suites.iter().filter_map(move |s| {
                    vantage_observations::cipher_suites::suite(s.id).map(|suite| EnumeratedSuite {
                        version: v.version,
                        suite,
                        dh_bits: s.dh_bits,
                    })
                })
            })
            .collect(),
    )
}

/// Which TLS grading to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMethod {
    /// `ssllabs-caps-1`: forward secrecy judged on the negotiated suite.
    Caps1,
    /// `ssllabs-caps-2`: every accepted suite judged (forward secrecy, RC4, 3DES, export, NULL,
    /// anonymous, DH size).
    Caps2,
}

/// A TLS grade: the best grade the caps leave, with the caps that applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TlsGrade {
    pub algorithm: String,
    pub grade: String,
    pub caps: Vec<String>,
}

/// Grades one TLS observation after the SSL Labs rating guide's caps (`ssllabs-caps-1`, see
/// `docs/scoring.md`). `hsts_sufficient`: the HTTPS response sends HSTS with at least six months
/// (needed for A+). `None` when nothing at the address speaks TLS.
pub fn grade_tls(data: &TlsObservation, hsts_sufficient: bool) -> Option<TlsGrade> {
    grade_tls_with(data, hsts_sufficient, TlsMethod::Caps1)
}

/// Grades one TLS observation with `method`.
pub fn grade_tls_with(
    data: &TlsObservation,
    hsts_sufficient: bool,
    method: TlsMethod,
) -> Option<TlsGrade> {
    use vantage_observations::cipher_suites::BulkCipher;
    use vantage_observations::tls::TlsVersion;
    // Under caps-2, what the enumeration saw.
    let enumerated = (method == TlsMethod::Caps2)
        .then(|| enumerated_suites(data))
        .flatten();
    let spoken = |wanted: &[TlsVersion]| {
        enumerated
            .iter()
            .flatten()
            .any(|seen| wanted.contains(&seen.version))
    };
    let legacy = data.tls10 || data.tls11 || spoken(&[TlsVersion::Tls10, TlsVersion::Tls11]);
    let modern = data.tls12 || data.tls13 || spoken(&[TlsVersion::Tls12, TlsVersion::Tls13]);
    // Caps-1 grades what completed a handshake or spoke a legacy version; caps-2 also a server
    // only the enumeration could speak to (RC4 or 3DES only, anonymous only).
    if !(data.handshake || legacy || (method == TlsMethod::Caps2 && modern)) {
        return None;
    }
    let algorithm = match method {
        TlsMethod::Caps1 => TLS_ALGORITHM,
        TlsMethod::Caps2 => TLS_SUITES_ALGORITHM,
    };
    let grade = |grade: &str, caps: Vec<String>| {
        Some(TlsGrade {
            algorithm: algorithm.to_owned(),
            grade: grade.to_owned(),
            caps,
        })
    };
    if data.trusted == Some(false) {
        return grade("T", vec!["the certificate is not trusted".into()]);
    }
    if data.hostname_match == Some(false) {
        return grade("M", vec!["the certificate does not match the name".into()]);
    }
    // Ranks: A+ 5, A 4, B 3, C 2, F 0.
    let mut rank = 4;
    let mut caps = Vec::new();
    let mut cap = |limit: u8, why: &str| {
        caps.push(why.to_owned());
        rank = rank.min(limit);
    };
    if !modern {
        cap(2, "neither TLS 1.2 nor TLS 1.3 is supported: capped at C");
    }
    if legacy {
        cap(3, "TLS 1.0 or 1.1 is accepted: capped at B");
    }
    if let Some(leaf) = data.leaf().filter(|leaf| leaf.key_type == "RSA") {
        match leaf.key_bits {
            Some(bits) if bits < 1024 => cap(0, "RSA key under 1024 bits: F"),
            Some(bits) if bits < 2048 => cap(3, "RSA key under 2048 bits: capped at B"),
            _ => {}
        }
    }
    match enumerated.as_deref() {
        Some(all) if !all.is_empty() => {
            let any = |test: fn(&EnumeratedSuite) -> bool| all.iter().any(test);
            if any(|e| e.suite.insecure()) {
                cap(
                    0,
                    "export, anonymous, NULL or DES cipher suites are accepted: F",
                );
            }
            if any(|e| e.dh_bits.is_some_and(|b| b < 1024)) {
                cap(0, "a Diffie-Hellman prime under 1024 bits: F");
            }
            if any(|e| e.suite.cipher.is_rc4()) {
                cap(2, "RC4 is accepted: capped at C");
            }
            if any(|e| e.suite.cipher == BulkCipher::TripleDesCbc && e.version >= TlsVersion::Tls11)
            {
                cap(2, "3DES is accepted with TLS 1.1 or newer: capped at C");
            }
            if !any(|e| e.suite.forward_secret()) {
                cap(3, "no cipher suite has forward secrecy: capped at B");
            }
            if any(|e| e.dh_bits.is_some_and(|b| (1024..2048).contains(&b))) {
                cap(3, "a Diffie-Hellman prime under 2048 bits: capped at B");
            }
        }
        _ => {
            let suite = data.cipher_suite.as_deref().unwrap_or_default();
            let forward_secret =
                suite.starts_with("TLS13_") || suite.contains("ECDHE") || suite.contains("_DHE_");
            if data.handshake && !forward_secret {
                cap(3, "no forward secrecy: capped at B");
            }
        }
    }
    let tls13 = data.tls13 || spoken(&[TlsVersion::Tls13]);
    if rank == 4 && tls13 && hsts_sufficient {
        rank = 5;
    }
    let letter = match rank {
        5 => "A+",
        4 => "A",
        3 => "B",
        2 => "C",
        _ => "F",
    };
    grade(letter, caps)
}

/// Both grades of a scan, each with its algorithm version.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScanGrades {
    pub headers: Option<HeaderGrade>,
    pub tls: Option<TlsGrade>,
}

/// Grades a scan: the headers of its root page (or the first page fetched) and its first address
/// that speaks TLS (A+ needs the root page's HSTS). Observations in log order.
pub(crate) fn grade_scan(observations: &[vantage_domain::scan::ProbeObserved]) -> ScanGrades {
    let pages: Vec<(&str, &HttpObservation)> = observations
        .iter()
        .filter_map(|o| match &o.observation {
            Observation::Http(page) => Some((o.asset.as_str(), page.as_ref())),
            _ => None,
        })
        .collect();
    let root = pages
        .iter()
        .find(|(asset, _)| asset.ends_with('/') && asset.matches('/').count() == 3)
        .or(pages.first());
    let headers = root.and_then(|(_, page)| grade_headers(page));
    let hsts_sufficient = headers.as_ref().is_some_and(|g| {
        g.tests
            .iter()
            .any(|t| t.result == "hsts-implemented-max-age-at-least-six-months")
    });
    let tls = observations
        .iter()
        .filter(|o| o.probe() == ProbeKind::Tls)
        .find_map(|o| match &o.observation {
            Observation::Tls(seen) => grade_tls(seen, hsts_sufficient),
            _ => None,
        });
    ScanGrades { headers, tls }
}

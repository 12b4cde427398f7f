//! The HTTP headers grade, after the Mozilla HTTP Observatory's method (see `docs/scoring.md`):
//! start at 100, apply each test's modifier, count bonuses only when the score without them is at
//! least 90, never go below 0, and read the grade off the Observatory's chart.
//!
//! Pure and versioned like the rules: [`HEADERS_ALGORITHM`] names the exact table below, and a change
//! to it is a new version.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

fn header<'a>(data: &'a Value, name: &str) -> Option<&'a str> {
    data["headers"][name].as_str()
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

fn csp_test(data: &Value) -> (&'static str, i32) {
    let Some(policy) = header(data, "content-security-policy") else {
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

fn hsts_ok(data: &Value) -> bool {
    header(data, "strict-transport-security")
        .is_some_and(|v| v.to_ascii_lowercase().contains("max-age="))
}

fn cookies_test(data: &Value) -> (&'static str, i32) {
    let cookies: Vec<&Value> = data["cookies"]
        .as_array()
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    if cookies.is_empty() {
        return ("cookies-not-found", 0);
    }
    let flag = |c: &Value, f: &str| c[f] == Value::Bool(true);
    let session = |c: &Value| is_session_cookie(c["name"].as_str().unwrap_or_default());
    let hsts = hsts_ok(data);
    if cookies.iter().any(|c| session(c) && !flag(c, "secure")) {
        return if hsts {
            (
                "cookies-session-without-secure-flag-but-protected-by-hsts",
                -10,
            )
        } else {
            ("cookies-session-without-secure-flag", -40)
        };
    }
    if cookies.iter().any(|c| session(c) && !flag(c, "http_only")) {
        return ("cookies-session-without-httponly-flag", -30);
    }
    if cookies.iter().any(|c| !flag(c, "secure")) {
        return if hsts {
            ("cookies-without-secure-flag-but-protected-by-hsts", -5)
        } else {
            ("cookies-without-secure-flag", -20)
        };
    }
    if cookies.iter().all(|c| c["same_site"].is_string()) {
        ("cookies-secure-with-httponly-sessions-and-samesite", 5)
    } else {
        ("cookies-secure-with-httponly-sessions", 0)
    }
}

/// Whether the response or its CORS preflight reflects the foreign origin with credentials allowed:
/// any site could then read authenticated responses.
pub fn reflects_origin_with_credentials(data: &Value) -> bool {
    let reflected = |origin: Option<&str>, credentials: Option<&str>| {
        origin == Some(FOREIGN_ORIGIN)
            && credentials.is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    let preflight = &data["cors_preflight"];
    reflected(
        header(data, "access-control-allow-origin"),
        header(data, "access-control-allow-credentials"),
    ) || reflected(
        preflight["allow_origin"].as_str(),
        preflight["allow_credentials"].as_str(),
    )
}

fn cors_test(data: &Value) -> (&'static str, i32) {
    if reflects_origin_with_credentials(data) {
        return (
            "cross-origin-resource-sharing-implemented-with-universal-access",
            -50,
        );
    }
    match header(data, "access-control-allow-origin") {
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

/// The Origin the HTTP probe sends with every request (`vantage_probes::http::FOREIGN_ORIGIN`; a test
/// keeps the two equal, so the rules crate needs no probe code).
pub const FOREIGN_ORIGIN: &str = "https://cors-check.vantage.invalid";

fn redirection_test(data: &Value) -> (&'static str, i32) {
    let first = data["url"].as_str().unwrap_or_default();
    if first.starts_with("https://") {
        return ("redirection-not-needed-no-http", 0);
    }
    let hops: Vec<&Value> = data["hops"]
        .as_array()
        .map(|h| h.iter().collect())
        .unwrap_or_default();
    let final_url = data["final_url"].as_str().unwrap_or_default();
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
    let Some(location) = first_hop["location"].as_str() else {
        return ("redirection-missing", -20);
    };
    if !final_url.starts_with("https://") {
        return ("redirection-not-to-https", -20);
    }
    let first_target = hops
        .get(1)
        .and_then(|h| h["url"].as_str())
        .unwrap_or(location);
    if !first_target.starts_with("https://") {
        return ("redirection-not-to-https-on-initial-redirection", -10);
    }
    if host(first_target) != host(first) {
        return ("redirection-off-host-from-http", -5);
    }
    ("redirection-to-https", 0)
}

fn referrer_test(data: &Value) -> (&'static str, i32) {
    let Some(value) = header(data, "referrer-policy") else {
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

fn hsts_test(data: &Value) -> (&'static str, i32) {
    let final_url = data["final_url"].as_str().unwrap_or_default();
    if !final_url.starts_with("https://") {
        return ("hsts-not-implemented-no-https", -20);
    }
    let Some(value) = header(data, "strict-transport-security") else {
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

fn sri_test(data: &Value) -> (&'static str, i32) {
    let html = &data["html"];
    if !html.is_object() {
        return ("sri-not-implemented-response-not-html", 0);
    }
    let external = html["external_scripts"].as_u64().unwrap_or(0);
    if html["scripts"].as_u64().unwrap_or(0) == 0 {
        return ("sri-not-implemented-but-no-scripts-loaded", 0);
    }
    if external == 0 {
        return (
            "sri-not-implemented-but-all-scripts-loaded-from-secure-origin",
            0,
        );
    }
    let secure = data["final_url"]
        .as_str()
        .is_some_and(|u| u.starts_with("https://"))
        && html["insecure_subresources"].as_u64().unwrap_or(0) == 0;
    let without = html["external_scripts_without_sri"].as_u64().unwrap_or(0);
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

fn xcto_test(data: &Value) -> (&'static str, i32) {
    match header(data, "x-content-type-options") {
        None => ("x-content-type-options-not-implemented", -5),
        Some(v) if v.trim().eq_ignore_ascii_case("nosniff") => {
            ("x-content-type-options-nosniff", 0)
        }
        Some(_) => ("x-content-type-options-header-invalid", -5),
    }
}

fn xfo_test(data: &Value) -> (&'static str, i32) {
    let via_csp = header(data, "content-security-policy").is_some_and(|p| {
        csp_directives(p)
            .iter()
            .any(|(n, _)| n == "frame-ancestors")
    });
    if via_csp {
        return ("x-frame-options-implemented-via-csp", 5);
    }
    match header(data, "x-frame-options").map(|v| v.trim().to_ascii_lowercase()) {
        None => ("x-frame-options-not-implemented", -20),
        Some(v) if v == "deny" || v == "sameorigin" => ("x-frame-options-sameorigin-or-deny", 0),
        Some(v) if v.starts_with("allow-from") => ("x-frame-options-allow-from-origin", 0),
        Some(_) => ("x-frame-options-header-invalid", -20),
    }
}

fn corp_test(data: &Value) -> (&'static str, i32) {
    match header(data, "cross-origin-resource-policy").map(|v| v.trim().to_ascii_lowercase()) {
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
pub fn grade_headers(data: &Value) -> Option<HeaderGrade> {
    data["status"].as_u64()?;
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

/// The version of the TLS grading below; returned with every TLS grade.
pub const TLS_ALGORITHM: &str = "ssllabs-caps-1";

/// A TLS grade: the best grade the caps leave, with the caps that applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TlsGrade {
    pub algorithm: String,
    pub grade: String,
    pub caps: Vec<String>,
}

/// Grades one TLS observation after the SSL Labs rating guide's caps (see `docs/scoring.md`).
/// `hsts_sufficient`: the HTTPS response sends HSTS with at least six months (needed for A+).
/// `None` when nothing at the address speaks TLS.
pub fn grade_tls(data: &Value, hsts_sufficient: bool) -> Option<TlsGrade> {
    let flag = |name: &str| data[name] == Value::Bool(true);
    let legacy = flag("tls10") || flag("tls11");
    let modern = flag("tls12") || flag("tls13");
    if !flag("handshake") && !legacy {
        return None;
    }
    let grade = |grade: &str, caps: Vec<String>| {
        Some(TlsGrade {
            algorithm: TLS_ALGORITHM.to_owned(),
            grade: grade.to_owned(),
            caps,
        })
    };
    if data["trusted"] == Value::Bool(false) {
        return grade("T", vec!["the certificate is not trusted".into()]);
    }
    if data["hostname_match"] == Value::Bool(false) {
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
    let leaf = &data["chain"][0];
    if leaf["key_type"] == "RSA" {
        match leaf["key_bits"].as_u64() {
            Some(bits) if bits < 1024 => cap(0, "RSA key under 1024 bits: F"),
            Some(bits) if bits < 2048 => cap(3, "RSA key under 2048 bits: capped at B"),
            _ => {}
        }
    }
    let suite = data["cipher_suite"].as_str().unwrap_or_default();
    let forward_secret =
        suite.starts_with("TLS13_") || suite.contains("ECDHE") || suite.contains("_DHE_");
    if flag("handshake") && !forward_secret {
        cap(3, "no forward secrecy: capped at B");
    }
    if rank == 4 && flag("tls13") && hsts_sufficient {
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
/// that speaks TLS (A+ needs the root page's HSTS).
pub fn grade_scan(observations: &[vantage_domain::scan::ProbeObserved]) -> ScanGrades {
    use vantage_domain::scan::ProbeKind;
    let pages: Vec<&vantage_domain::scan::ProbeObserved> = observations
        .iter()
        .filter(|o| o.probe == ProbeKind::Http)
        .collect();
    let root = pages
        .iter()
        .find(|o| o.asset.ends_with('/') && o.asset.matches('/').count() == 3)
        .or(pages.first());
    let headers = root.and_then(|o| grade_headers(&o.data));
    let hsts_sufficient = headers.as_ref().is_some_and(|g| {
        g.tests
            .iter()
            .any(|t| t.result == "hsts-implemented-max-age-at-least-six-months")
    });
    let tls = observations
        .iter()
        .filter(|o| o.probe == ProbeKind::Tls)
        .find_map(|o| grade_tls(&o.data, hsts_sufficient));
    ScanGrades { headers, tls }
}

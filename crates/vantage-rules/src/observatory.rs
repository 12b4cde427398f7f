//! The HTTP headers grade of ruleset 3: Mozilla HTTP Observatory's published method, algorithm
//! version 4 (npm `@mdn/mdn-http-observatory` 1.4), test by test — every result name, modifier and
//! order of precedence — read from Vantage's observations instead of live requests, with one
//! deliberate difference (below). `tests/observatory.rs` holds the two implementations to the same
//! results on the same lab sites.
//!
//! The Observatory fetches `http://host/` and `https://host/`; its tests read the HTTPS response
//! when HTTPS answered (the "auto" response) and the HTTP one otherwise, the redirect chain of the
//! HTTP fetch, the cookie jar of the auto fetch's chain, and a CORS preflight. [`SiteView`] holds
//! the same two fetches.
//!
//! **Deliberate difference.** The Observatory's CORS test compares the reflected origin with a
//! header it reads from the wrong object, so its "universal access" result never fires. Vantage
//! sends a foreign `Origin` with every request and its preflight; a reflection of it together with
//! `Access-Control-Allow-Credentials: true` (on the page or the preflight) is
//! `cross-origin-resource-sharing-implemented-with-universal-access`, −50, as the Observatory's
//! table intends. HSTS preloading is not looked up (as with an empty preload list).
//!
//! Where the Observatory reads a page as HTML it builds a DOM; Vantage reads the facts its probe
//! recorded (`<meta>` policies, script sources). Where it sorts CSP sources with ICU collation,
//! Vantage sorts by code point: the order only decides which of two sources where one is a prefix
//! of the other is dropped as superfluous, and the shorter one is kept either way.

use std::collections::{BTreeMap, BTreeSet};

use vantage_observations::http::{CookieSummary, HttpObservation, ScriptLocation};

use crate::grade::{HeaderGrade, HeaderTest, letter};
use crate::site::SiteView;

/// The algorithm of this grade; returned with every grade it gives.
pub const OBSERVATORY_ALGORITHM: &str = "mozilla-observatory-4";

/// Bonuses count only when the score without them is at least this.
const MINIMUM_SCORE_FOR_EXTRA_CREDIT: i32 = 90;

/// The Observatory's modifier for a result.
fn modifier(result: &str) -> i32 {
    match result {
        "csp-implemented-with-no-unsafe-default-src-none" => 10,
        "csp-implemented-with-no-unsafe" => 5,
        "csp-implemented-with-unsafe-inline-in-style-src-only" => 0,
        "csp-implemented-with-insecure-scheme-in-passive-content-only" => -10,
        "csp-implemented-with-unsafe-eval" => -10,
        "csp-implemented-with-unsafe-inline" => -20,
        "csp-implemented-with-insecure-scheme" => -20,
        "csp-header-invalid" => -25,
        "csp-not-implemented" => -25,
        "csp-not-implemented-but-reporting-enabled" => -25,
        "csp-implemented-but-duplicate-directives" => 0,
        "cookies-secure-with-httponly-sessions-and-samesite" => 5,
        "cookies-secure-with-httponly-sessions" => 0,
        "cookies-not-found" => 0,
        "cookies-without-secure-flag-but-protected-by-hsts" => -5,
        "cookies-session-without-secure-flag-but-protected-by-hsts" => -10,
        "cookies-without-secure-flag" => -20,
        "cookies-samesite-flag-invalid" => -20,
        "cookies-anticsrf-without-samesite-flag" => -20,
        "cookies-session-without-httponly-flag" => -30,
        "cookies-session-without-secure-flag" => -40,
        "cross-origin-resource-sharing-implemented-with-universal-access" => -50,
        "redirection-off-host-from-http" => -5,
        "redirection-not-to-https-on-initial-redirection" => -10,
        "redirection-not-to-https" => -20,
        "redirection-missing" => -20,
        "redirection-invalid-cert" => -20,
        "referrer-policy-private" => 5,
        "referrer-policy-unsafe" => -5,
        "referrer-policy-header-invalid" => -5,
        "hsts-preloaded" => 5,
        "hsts-implemented-max-age-less-than-six-months" => -10,
        "hsts-not-implemented" => -20,
        "hsts-header-invalid" => -20,
        "hsts-not-implemented-no-https" => -20,
        "hsts-invalid-cert" => -20,
        "sri-implemented-and-all-scripts-loaded-securely" => 5,
        "sri-implemented-and-external-scripts-loaded-securely" => 5,
        "sri-not-implemented-but-external-scripts-loaded-securely" => -5,
        "sri-implemented-but-external-scripts-not-loaded-securely" => -20,
        "sri-not-implemented-and-external-scripts-not-loaded-securely" => -50,
        "x-content-type-options-not-implemented" => -5,
        "x-content-type-options-header-invalid" => -5,
        "x-frame-options-implemented-via-csp" => 5,
        "x-frame-options-not-implemented" => -20,
        "x-frame-options-header-invalid" => -20,
        "corp-header-invalid" => -5,
        "corp-implemented-with-same-origin" => 10,
        "corp-implemented-with-same-site" => 10,
        _ => 0,
    }
}

/// The worse of two results, by `order` (best first); a first result always takes.
fn only_if_worse(new: &'static str, old: Option<&'static str>, order: &[&str]) -> &'static str {
    let rank = |r: &str| order.iter().position(|o| *o == r);
    match old {
        None => new,
        Some(old) if rank(new) > rank(old) => new,
        Some(old) => old,
    }
}

/// The first value of a header (repeats are joined, as the Observatory reads them).
fn header<'p>(page: &'p HttpObservation, name: &str) -> Option<&'p str> {
    page.header(name)
}

/// The response's media type exactly as the Observatory reads it: before the first `;`.
fn is_html(page: &HttpObservation) -> bool {
    let mime = header(page, "content-type")
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default();
    matches!(mime, "text/html" | "application/xhtml+xml")
}

// ---- Content-Security-Policy --------------------------------------------------------------------

/// The shortest policy the Observatory accepts (`img-src` less one character).
const SHORTEST_POLICY: usize = "img-src".len() - 1;
const ALLOWED_DUPLICATES: [&str; 2] = ["report-uri", "report-to"];
const DISALLOWED_IN_META: [&str; 3] = ["frame-ancestors", "report-uri", "sandbox"];
const DANGEROUSLY_BROAD: [&str; 8] = [
    "ftp:",
    "http:",
    "https:",
    "*",
    "http://*",
    "http://*.*",
    "https://*",
    "https://*.*",
];
const UNSAFE_INLINE: [&str; 2] = ["'unsafe-inline'", "data:"];
const PASSIVE_DIRECTIVES: [&str; 2] = ["img-src", "media-src"];
const NONCES_HASHES: [&str; 4] = ["'sha256-", "'sha384-", "'sha512-", "'nonce-"];

fn broad(source: &str) -> bool {
    DANGEROUSLY_BROAD.contains(&source)
}

fn broad_or_unsafe_inline(source: &str) -> bool {
    broad(source) || UNSAFE_INLINE.contains(&source)
}

/// A parsed policy: directive → sources; and whether an allowed duplicate directive was seen.
#[derive(Debug, Clone, Default)]
struct Csp {
    directives: BTreeMap<String, BTreeSet<String>>,
    duplicate_warnings: bool,
}

struct Source {
    source: String,
    index: usize,
    keep: bool,
}

/// `decodeURIComponent`: percent-decoding as UTF-8, failing on a malformed escape.
fn decode_uri_component(piece: &str) -> Result<String, ()> {
    let bytes = piece.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = piece.get(i + 1..i + 3).ok_or(())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

/// The Observatory's `pathPartMatch`.
fn path_part_match(a: &str, b: &str) -> Result<bool, ()> {
    if a.is_empty() || (a == "/" && b.is_empty()) {
        return Ok(true);
    }
    let exact = !a.ends_with('/');
    let mut parts_a: Vec<&str> = a.split('/').collect();
    let parts_b: Vec<&str> = b.split('/').collect();
    if parts_a.len() > parts_b.len() || (exact && parts_a.len() != parts_b.len()) {
        return Ok(false);
    }
    if !exact {
        parts_a.pop();
    }
    for (x, y) in parts_a.iter().zip(&parts_b) {
        if decode_uri_component(x)? != decode_uri_component(y)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The Observatory's `parseCsp`: each policy's directives, intersected across policies; an invalid
/// policy (too short, a repeated directive, a malformed escape) is an error.
fn parse_csp(policies: &[&str]) -> Result<Csp, ()> {
    let clean: Vec<String> = policies
        .iter()
        .map(|p| p.replace(['\r', '\n'], "").trim().to_owned())
        .collect();
    let mut csp = Csp::default();
    if clean.is_empty() {
        return Ok(csp);
    }
    if clean
        .iter()
        .any(|p| p.is_empty() || p.len() < SHORTEST_POLICY)
    {
        return Err(());
    }
    let mut sources: BTreeMap<String, Vec<Source>> = BTreeMap::new();
    for (index, policy) in clean.iter().enumerate() {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for entry in policy.split(';') {
            let mut words = entry.split_whitespace();
            let Some(directive) = words.next() else {
                continue;
            };
            let directive = directive.to_lowercase();
            if !seen.insert(directive.clone()) {
                if ALLOWED_DUPLICATES.contains(&directive.as_str()) {
                    csp.duplicate_warnings = true;
                } else {
                    return Err(());
                }
            }
            let keep = index == 0;
            let mut values: Vec<Source> = words
                .map(|w| Source {
                    source: w.trim().to_lowercase(),
                    index,
                    keep,
                })
                .collect();
            if values.is_empty() && directive.ends_with("-src") {
                values.push(Source {
                    source: "'none'".into(),
                    index,
                    keep,
                });
            }
            let mut combined = if index == 0 {
                values
            } else {
                let mut before = sources.remove(&directive).unwrap_or_default();
                before.extend(values);
                before
            };
            combined.sort_by(|a, b| a.source.cmp(&b.source));
            for i in 1..combined.len() {
                let (prev, rest) = combined.split_at_mut(i);
                let prev = &prev[i - 1];
                let source = &mut rest[0];
                if source.index == prev.index && source.source.starts_with(&prev.source) {
                    source.keep = false;
                }
                if source.index != prev.index && path_part_match(&prev.source, &source.source)? {
                    source.keep = true;
                }
            }
            let mut kept: Vec<Source> = combined.into_iter().filter(|s| s.keep).collect();
            if index == 0 && clean.len() > 1 {
                for source in &mut kept {
                    source.keep = false;
                }
            }
            sources.insert(directive, kept);
        }
    }
    csp.directives = sources
        .into_iter()
        .map(|(directive, kept)| {
            let set: BTreeSet<String> = if kept.is_empty() {
                ["'none'".to_owned()].into()
            } else {
                kept.into_iter().map(|s| s.source).collect()
            };
            (directive, set)
        })
        .collect();
    Ok(csp)
}

/// Which set a directive of the test resolves to: a directive of the policy (shared, as in the
/// Observatory, by every name that falls back to it), or the `*` of an absent one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resolved {
    Directive(String),
    Everything,
}

fn resolve(csp: &Csp, names: &[&str]) -> Resolved {
    names
        .iter()
        .find(|n| csp.directives.contains_key(**n))
        .map_or(Resolved::Everything, |n| {
            Resolved::Directive((*n).to_owned())
        })
}

fn sources<'c>(
    csp: &'c Csp,
    resolved: &Resolved,
    everything: &'c BTreeSet<String>,
) -> &'c BTreeSet<String> {
    match resolved {
        Resolved::Directive(name) => csp.directives.get(name).unwrap_or(everything),
        Resolved::Everything => everything,
    }
}

fn has_nonce_or_hash(set: &BTreeSet<String>) -> bool {
    set.iter()
        .any(|s| NONCES_HASHES.iter().any(|prefix| s.starts_with(prefix)))
}

/// The CSP test's result and the parsed policy the X-Frame-Options test looks into.
struct CspOutcome {
    result: &'static str,
    data: Option<Csp>,
}

fn csp_test(site: &SiteView<'_>) -> CspOutcome {
    let not_implemented = CspOutcome {
        result: "csp-not-implemented",
        data: None,
    };
    let Some(page) = site.auto() else {
        return not_implemented;
    };
    let header_policies: Vec<&str> = header(page, "content-security-policy")
        .into_iter()
        .collect();
    let meta_policies: Vec<&str> = match &page.html {
        Some(html) if is_html(page) => html.meta_csp.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    let all: Vec<&str> = header_policies
        .iter()
        .chain(&meta_policies)
        .copied()
        .collect();
    let Ok(mut csp) = parse_csp(&all) else {
        return CspOutcome {
            result: "csp-header-invalid",
            data: None,
        };
    };
    let header_only = parse_csp(&header_policies).unwrap_or_default();
    let mut meta_only = parse_csp(&meta_policies).unwrap_or_default();
    for directive in DISALLOWED_IN_META {
        meta_only.directives.remove(directive);
    }
    if header_only.directives.len() + meta_only.directives.len() == 0 {
        let result =
            if header(page, "content-security-policy-report-only").is_some_and(|v| !v.is_empty()) {
                "csp-not-implemented-but-reporting-enabled"
            } else {
                "csp-not-implemented"
            };
        return CspOutcome { result, data: None };
    }
    let https = page.url.starts_with("https://");
    let mut result: Option<&'static str> = None;
    let mut set_once = |r: &'static str| {
        if result.is_none() {
            result = Some(r);
        }
    };
    let everything_script: BTreeSet<String> = ["*".to_owned()].into();
    let script = resolve(&csp, &["script-src", "default-src"]);
    let style = resolve(&csp, &["style-src", "default-src"]);
    let object = resolve(&csp, &["object-src", "default-src"]);
    // 'unsafe-inline' beside a nonce or a hash is ignored by browsers: drop it (from the shared set
    // when the directive falls back to default-src, as the Observatory does).
    let mut script_fallback = everything_script.clone();
    let mut style_fallback = everything_script.clone();
    for (resolved, fallback) in [
        (&script, &mut script_fallback),
        (&style, &mut style_fallback),
    ] {
        let set = match resolved {
            Resolved::Directive(name) => csp.directives.get_mut(name),
            Resolved::Everything => Some(fallback),
        };
        if let Some(set) = set
            && has_nonce_or_hash(set)
        {
            set.remove("'unsafe-inline'");
        }
    }
    {
        let set = match &script {
            Resolved::Directive(name) => csp.directives.get_mut(name),
            Resolved::Everything => Some(&mut script_fallback),
        };
        if let Some(set) = set {
            if has_nonce_or_hash(set) && set.contains("'strict-dynamic'") {
                set.retain(|s| {
                    !(DANGEROUSLY_BROAD.iter().any(|b| s.starts_with(b))
                        || s == "'self'"
                        || s == "'unsafe-inline'")
                });
            } else if set.contains("'strict-dynamic'") {
                set_once("csp-header-invalid");
            }
        }
    }
    let script_src = sources(&csp, &script, &script_fallback).clone();
    let style_src = sources(&csp, &style, &style_fallback).clone();
    let object_src = sources(&csp, &object, &everything_script).clone();
    let mut active: Vec<&str> = csp
        .directives
        .iter()
        .filter(|(d, _)| !PASSIVE_DIRECTIVES.contains(&d.as_str()) && d.as_str() != "script-src")
        .flat_map(|(_, set)| set.iter().map(String::as_str))
        .collect();
    active.extend(script_src.iter().map(String::as_str));
    let passive: Vec<&str> = PASSIVE_DIRECTIVES
        .iter()
        .flat_map(|d| {
            csp.directives
                .get(*d)
                .or(csp.directives.get("default-src"))
                .into_iter()
                .flatten()
                .map(String::as_str)
        })
        .collect();
    let insecure = |s: &&str| s.starts_with("http:") || s.starts_with("ftp:");
    if script_src.iter().any(|s| broad_or_unsafe_inline(s)) || object_src.iter().any(|s| broad(s)) {
        set_once("csp-implemented-with-unsafe-inline");
    }
    if https && active.iter().any(insecure) {
        set_once("csp-implemented-with-insecure-scheme");
    }
    if script_src.contains("'unsafe-eval'") || style_src.contains("'unsafe-eval'") {
        set_once("csp-implemented-with-unsafe-eval");
    }
    if https && passive.iter().any(insecure) {
        set_once("csp-implemented-with-insecure-scheme-in-passive-content-only");
    }
    if style_src.iter().any(|s| broad_or_unsafe_inline(s)) {
        set_once("csp-implemented-with-unsafe-inline-in-style-src-only");
    }
    let default_none = csp
        .directives
        .get("default-src")
        .is_some_and(|d| d.len() == 1 && d.contains("'none'"));
    if default_none {
        set_once("csp-implemented-with-no-unsafe-default-src-none");
    } else {
        set_once("csp-implemented-with-no-unsafe");
    }
    let mut result = result.unwrap_or("csp-implemented-with-no-unsafe");
    let passed = matches!(
        result,
        "csp-implemented-with-no-unsafe"
            | "csp-implemented-with-no-unsafe-default-src-none"
            | "csp-implemented-with-unsafe-inline-in-style-src-only"
            | "csp-implemented-with-insecure-scheme-in-passive-content-only"
    );
    if passed && csp.duplicate_warnings {
        result = "csp-implemented-but-duplicate-directives";
    }
    CspOutcome {
        result,
        data: Some(csp),
    }
}

// ---- Strict-Transport-Security -------------------------------------------------------------------

/// 15768000 is six months, but the Observatory accepts the common 15552000.
const SIX_MONTHS: i64 = 15_552_000;

/// JavaScript's `parseInt(text, 10)`: leading whitespace, a sign, then digits; `None` is NaN.
fn parse_int(text: &str) -> Option<i64> {
    let text = text.trim_start();
    let (sign, digits) = match text.as_bytes().first() {
        Some(b'-') => (-1, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => (1, text),
    };
    let digits: String = digits.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    Some(sign * digits.parse::<i64>().unwrap_or(i64::MAX))
}

fn hsts_test(site: &SiteView<'_>) -> &'static str {
    let Some(page) = site.https.filter(|p| p.answered()) else {
        return "hsts-not-implemented-no-https";
    };
    if !site.verified(page) {
        return "hsts-invalid-cert";
    }
    let Some(value) = header(page, "strict-transport-security") else {
        return "hsts-not-implemented";
    };
    let data: String = value.chars().take(1024).collect();
    if data.contains(',') {
        return "hsts-header-invalid";
    }
    // `Some(None)`: a max-age whose number JavaScript cannot read (NaN, which no comparison holds).
    let mut max_age: Option<Option<i64>> = None;
    for parameter in data.split(';').map(|p| p.trim().to_lowercase()) {
        if let Some(age) = parameter.strip_prefix("max-age=") {
            let age: String = age.chars().take(120).collect();
            max_age = Some(parse_int(&age));
        }
    }
    match max_age {
        None => "hsts-header-invalid",
        Some(Some(age)) if age < SIX_MONTHS => "hsts-implemented-max-age-less-than-six-months",
        Some(_) => "hsts-implemented-max-age-at-least-six-months",
    }
}

fn hsts_passes(result: &str) -> bool {
    matches!(
        result,
        "hsts-implemented-max-age-at-least-six-months" | "hsts-preloaded"
    )
}

// ---- Cookies ------------------------------------------------------------------------------------

/// A cookie as a browser's jar keeps it.
#[derive(Debug, Clone)]
struct JarCookie<'p> {
    cookie: &'p CookieSummary,
    domain: String,
    path: String,
}

/// The default path of a cookie set by a response to `url` (RFC 6265 §5.1.4).
fn default_path(url: &str) -> String {
    let path = url::Url::parse(url)
        .map(|u| u.path().to_owned())
        .unwrap_or_default();
    if !path.starts_with('/') || path == "/" {
        return "/".into();
    }
    match path.rfind('/') {
        Some(0) | None => "/".into(),
        Some(at) => path[..at].to_owned(),
    }
}

/// Whether `host` is `domain` or a name under it (RFC 6265 §5.1.3).
fn domain_match(host: &str, domain: &str) -> bool {
    host == domain
        || (host.ends_with(domain)
            && host.as_bytes().get(host.len() - domain.len() - 1) == Some(&b'.')
            && host.parse::<std::net::IpAddr>().is_err())
}

/// The cookies the auto fetch's chain left in its jar (tough-cookie's rules: a Domain must cover
/// the host and not be a top-level label; `__Secure-` needs Secure; `__Host-` needs Secure, no
/// Domain and path `/`; a later cookie of the same name, domain and path replaces an earlier one).
/// tough-cookie also refuses a Domain that is a multi-label public suffix (`co.uk`); the rules hold
/// no copy of the Public Suffix List (it changes, and a released rule must not), so such a cookie is
/// kept here.
fn jar<'p>(page: &'p HttpObservation) -> Vec<JarCookie<'p>> {
    let mut jar: Vec<JarCookie<'p>> = Vec::new();
    for hop in &page.hops {
        let host = url::Url::parse(&hop.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .unwrap_or_default();
        for cookie in &hop.set_cookies {
            let (domain, host_only) = match cookie
                .domain
                .as_deref()
                .map(|d| d.trim_start_matches('.').to_ascii_lowercase())
            {
                Some(domain) if !domain.is_empty() => {
                    if !domain.contains('.') || !domain_match(&host, &domain) {
                        continue;
                    }
                    (domain, false)
                }
                _ => (host.clone(), true),
            };
            let path = match cookie.path.as_deref() {
                Some(path) if path.starts_with('/') => path.to_owned(),
                _ => default_path(&hop.url),
            };
            let name = cookie.name.as_str();
            if name.starts_with("__Secure-") && !cookie.secure {
                continue;
            }
            if name.starts_with("__Host-") && !(cookie.secure && host_only && path == "/") {
                continue;
            }
            jar.retain(|c| !(c.cookie.name == cookie.name && c.domain == domain && c.path == path));
            jar.push(JarCookie {
                cookie,
                domain,
                path,
            });
        }
    }
    jar
}

/// SameSite as tough-cookie reads it: `strict`, `lax` or `none`, anything else as absent.
fn same_site(cookie: &CookieSummary) -> Option<String> {
    cookie
        .same_site
        .as_deref()
        .map(str::to_ascii_lowercase)
        .filter(|v| matches!(v.as_str(), "strict" | "lax" | "none"))
}

fn cookies_test(site: &SiteView<'_>, hsts: &str) -> &'static str {
    const ORDER: [&str; 7] = [
        "cookies-without-secure-flag-but-protected-by-hsts",
        "cookies-without-secure-flag",
        "cookies-session-without-secure-flag-but-protected-by-hsts",
        "cookies-samesite-flag-invalid",
        "cookies-anticsrf-without-samesite-flag",
        "cookies-session-without-httponly-flag",
        "cookies-session-without-secure-flag",
    ];
    let hsts = hsts_passes(hsts);
    let mut result: Option<&'static str> = None;
    let Some(page) = site.auto() else {
        return "cookies-not-found";
    };
    // A SameSite attribute without a value, or with one no browser knows, on the final response.
    if page.cookies.iter().any(|c| {
        c.same_site.as_deref().is_some_and(|v| {
            !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "lax" | "strict" | "none"
            )
        })
    }) {
        result = Some(only_if_worse(
            "cookies-samesite-flag-invalid",
            result,
            &ORDER,
        ));
    }
    let cookies: Vec<JarCookie<'_>> = jar(page)
        .into_iter()
        .filter(|c| !c.cookie.name.is_empty() && c.cookie.name != "heroku-session-affinity")
        .collect();
    if cookies.is_empty() {
        return "cookies-not-found";
    }
    let mut missing_same_site = false;
    for JarCookie { cookie, .. } in &cookies {
        let name = cookie.name.to_lowercase();
        let session = name.contains("login") || name.contains("sess");
        let anticsrf = name.contains("csrf");
        let same_site = same_site(cookie);
        let mut worse = |r: &'static str| result = Some(only_if_worse(r, result, &ORDER));
        if !cookie.secure && same_site.as_deref() == Some("none") {
            worse("cookies-samesite-flag-invalid");
        }
        if !cookie.secure && hsts {
            worse("cookies-without-secure-flag-but-protected-by-hsts");
        } else if !cookie.secure {
            worse("cookies-without-secure-flag");
        }
        if anticsrf && same_site.is_none() {
            worse("cookies-anticsrf-without-samesite-flag");
        }
        if session && !cookie.secure && hsts {
            worse("cookies-session-without-secure-flag-but-protected-by-hsts");
        } else if session && !cookie.secure {
            worse("cookies-session-without-secure-flag");
        }
        if session && !cookie.http_only {
            worse("cookies-session-without-httponly-flag");
        }
        missing_same_site |= same_site.is_none();
    }
    result.unwrap_or(if missing_same_site {
        "cookies-secure-with-httponly-sessions"
    } else {
        "cookies-secure-with-httponly-sessions-and-samesite"
    })
}

// ---- the other tests -----------------------------------------------------------------------------

fn cors_test(site: &SiteView<'_>) -> &'static str {
    let Some(page) = site.auto() else {
        return "cross-origin-resource-sharing-not-implemented";
    };
    if crate::grade::reflects_origin_with_credentials(page) {
        return "cross-origin-resource-sharing-implemented-with-universal-access";
    }
    let allowed = page
        .cors_preflight
        .as_ref()
        .and_then(|p| p.allow_origin.as_deref())
        .filter(|v| !v.is_empty());
    match allowed {
        None => "cross-origin-resource-sharing-not-implemented",
        Some(origin) => {
            let origin: String = origin.chars().take(256).collect();
            if origin.trim().to_lowercase() == "*" {
                "cross-origin-resource-sharing-implemented-with-public-access"
            } else {
                "cross-origin-resource-sharing-implemented-with-restricted-access"
            }
        }
    }
}

fn redirection_test(site: &SiteView<'_>) -> &'static str {
    let Some(page) = site.http.filter(|p| p.answered()) else {
        return "redirection-not-needed-no-http";
    };
    if !site.verified(page) {
        return "redirection-invalid-cert";
    }
    let route = &page.hops;
    let scheme = |url: &str| {
        url.split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    let host = |url: &str| {
        url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default()
    };
    match route.as_slice() {
        [] | [_] => "redirection-missing",
        [.., last] if scheme(&last.url) != "https" => "redirection-not-to-https",
        [_, second, ..] if scheme(&second.url) == "http" => {
            "redirection-not-to-https-on-initial-redirection"
        }
        [first, second, ..]
            if scheme(&first.url) == "http"
                && scheme(&second.url) == "https"
                && host(&first.url) != host(&second.url) =>
        {
            "redirection-off-host-from-http"
        }
        _ => "redirection-to-https",
    }
}

fn referrer_test(site: &SiteView<'_>) -> &'static str {
    const GOOD: [&str; 4] = [
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
    ];
    const BAD: [&str; 4] = [
        "origin",
        "origin-when-cross-origin",
        "unsafe-url",
        "no-referrer-when-downgrade",
    ];
    let Some(page) = site.auto() else {
        return "referrer-policy-not-implemented";
    };
    let mut values: Vec<&str> = header(page, "referrer-policy").into_iter().collect();
    if is_html(page)
        && let Some(meta) = page.html.as_ref().and_then(|h| h.meta_referrer.as_deref())
    {
        values.push(meta);
    }
    if values.is_empty() {
        return "referrer-policy-not-implemented";
    }
    let data = values.join(", ");
    let policy = data
        .split(',')
        .map(|e| e.trim().to_lowercase())
        .rfind(|e| GOOD.contains(&e.as_str()) || BAD.contains(&e.as_str()))
        .unwrap_or_default();
    if GOOD.contains(&policy.as_str()) {
        "referrer-policy-private"
    } else if BAD.contains(&policy.as_str()) {
        "referrer-policy-unsafe"
    } else {
        "referrer-policy-header-invalid"
    }
}

fn sri_test(site: &SiteView<'_>) -> &'static str {
    const ORDER: [&str; 6] = [
        "sri-implemented-and-all-scripts-loaded-securely",
        "sri-implemented-and-external-scripts-loaded-securely",
        "sri-implemented-but-external-scripts-not-loaded-securely",
        "sri-not-implemented-but-external-scripts-loaded-securely",
        "sri-not-implemented-and-external-scripts-not-loaded-securely",
        "sri-not-implemented-response-not-html",
    ];
    let Some(page) = site.auto() else {
        return "sri-not-implemented-but-no-scripts-loaded";
    };
    if !is_html(page) {
        return "sri-not-implemented-response-not-html";
    }
    let Some(html) = &page.html else {
        return "sri-not-implemented-but-no-scripts-loaded";
    };
    let page_https = page.url.starts_with("https://");
    let mut result: Option<&'static str> = None;
    let mut foreign = false;
    for script in &html.script_sources {
        let relative = script.location == ScriptLocation::Relative;
        let protocol_relative = script.location == ScriptLocation::ProtocolRelative;
        let same_site = match script.location {
            ScriptLocation::Absolute => script.same_site,
            _ => true,
        };
        let secure_origin = relative || (same_site && !protocol_relative);
        if !secure_origin {
            foreign = true;
        }
        let secure_scheme = script.secure_scheme || (relative && page_https);
        if !secure_origin {
            let next = match (script.integrity, secure_scheme) {
                (true, false) => Some("sri-implemented-but-external-scripts-not-loaded-securely"),
                (false, true) => Some("sri-not-implemented-but-external-scripts-loaded-securely"),
                (false, false) => {
                    Some("sri-not-implemented-and-external-scripts-not-loaded-securely")
                }
                (true, true) => None,
            };
            if let Some(next) = next {
                result = Some(only_if_worse(next, result, &ORDER));
            }
        } else if script.integrity && secure_scheme && result.is_none() {
            result = Some("sri-implemented-and-all-scripts-loaded-securely");
        }
    }
    if html.scripts == 0 {
        return "sri-not-implemented-but-no-scripts-loaded";
    }
    result.unwrap_or(if foreign {
        "sri-implemented-and-external-scripts-loaded-securely"
    } else {
        "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
    })
}

fn xcto_test(site: &SiteView<'_>) -> &'static str {
    match site
        .auto()
        .and_then(|p| header(p, "x-content-type-options"))
    {
        Some(value) if !value.is_empty() => {
            let value: String = value.chars().take(256).collect();
            if value.trim().to_lowercase() == "nosniff" {
                "x-content-type-options-nosniff"
            } else {
                "x-content-type-options-header-invalid"
            }
        }
        _ => "x-content-type-options-not-implemented",
    }
}

fn xfo_test(site: &SiteView<'_>, csp: &CspOutcome) -> &'static str {
    let result = match site.auto().and_then(|p| header(p, "x-frame-options")) {
        Some(value) if !value.is_empty() => {
            let value: String = value.chars().take(1024).collect();
            let value = value.trim().to_lowercase();
            if value == "deny" || value == "sameorigin" {
                "x-frame-options-sameorigin-or-deny"
            } else if value.starts_with("allow-from") {
                "x-frame-options-allow-from-origin"
            } else {
                "x-frame-options-header-invalid"
            }
        }
        _ => "x-frame-options-not-implemented",
    };
    let via_csp = csp
        .data
        .as_ref()
        .is_some_and(|csp| csp.directives.contains_key("frame-ancestors"));
    if via_csp {
        "x-frame-options-implemented-via-csp"
    } else {
        result
    }
}

fn corp_test(site: &SiteView<'_>) -> &'static str {
    match site
        .auto()
        .and_then(|p| header(p, "cross-origin-resource-policy"))
        .filter(|v| !v.is_empty())
    {
        None => "corp-not-implemented",
        Some(value) => {
            let value: String = value.chars().take(256).collect();
            match value.trim().to_lowercase().as_str() {
                "same-site" => "corp-implemented-with-same-site",
                "same-origin" => "corp-implemented-with-same-origin",
                "cross-origin" => "corp-implemented-with-cross-origin",
                _ => "corp-header-invalid",
            }
        }
    }
}

/// Grades the site's headers; `None` when the Observatory would give no grade: nothing answered,
/// or the judged response's status is not 2xx, 3xx, 401 or 403.
pub(crate) fn grade(site: &SiteView<'_>) -> Option<HeaderGrade> {
    let status = site.auto()?.status?;
    if status < 200 || (status >= 400 && status != 401 && status != 403) {
        return None;
    }
    let csp = csp_test(site);
    let hsts = hsts_test(site);
    let results = [
        ("content-security-policy", csp.result),
        ("cookies", cookies_test(site, hsts)),
        ("cross-origin-resource-sharing", cors_test(site)),
        ("redirection", redirection_test(site)),
        ("referrer-policy", referrer_test(site)),
        ("strict-transport-security", hsts),
        ("subresource-integrity", sri_test(site)),
        ("x-content-type-options", xcto_test(site)),
        ("x-frame-options", xfo_test(site, &csp)),
        ("cross-origin-resource-policy", corp_test(site)),
    ];
    let tests: Vec<HeaderTest> = results
        .iter()
        .map(|(test, result)| HeaderTest {
            test: (*test).to_owned(),
            result: (*result).to_owned(),
            modifier: modifier(result),
        })
        .collect();
    let with_extra: i32 = 100 + tests.iter().map(|t| t.modifier).sum::<i32>();
    let uncurved: i32 = 100 + tests.iter().map(|t| t.modifier.min(0)).sum::<i32>();
    let score = if uncurved >= MINIMUM_SCORE_FOR_EXTRA_CREDIT {
        with_extra
    } else {
        uncurved
    };
    let score = u32::try_from(score.max(0)).unwrap_or(0);
    Some(HeaderGrade {
        algorithm: OBSERVATORY_ALGORITHM.to_owned(),
        score,
        grade: letter(score).to_owned(),
        tests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_parsing_follows_the_observatory() {
        let csp = parse_csp(&["default-src 'self' https://a.example https://a.example/x; img-src"])
            .unwrap();
        assert_eq!(
            csp.directives["default-src"],
            ["'self'", "https://a.example"].map(str::to_owned).into()
        );
        assert_eq!(csp.directives["img-src"], ["'none'".to_owned()].into());
        assert!(
            parse_csp(&["default-src 'self'; default-src *"]).is_err(),
            "repeats are invalid"
        );
        assert!(parse_csp(&["x"]).is_err(), "too short");
        assert!(
            parse_csp(&["report-uri /a; report-uri /b; default-src 'self'"])
                .unwrap()
                .duplicate_warnings
        );
        // Two policies: a source counts only if both allow it.
        let both = parse_csp(&[
            "script-src 'self' https://cdn.example",
            "script-src https://cdn.example",
        ])
        .unwrap();
        assert_eq!(
            both.directives["script-src"],
            ["https://cdn.example".to_owned()].into()
        );
    }

    #[test]
    fn javascript_integers() {
        assert_eq!(parse_int("31536000"), Some(31_536_000));
        assert_eq!(parse_int(" 300abc"), Some(300));
        assert_eq!(parse_int("-5"), Some(-5));
        assert_eq!(parse_int("\"31536000\""), None);
        assert_eq!(parse_int(""), None);
    }

    #[test]
    fn cookie_paths_and_domains() {
        assert_eq!(default_path("https://a.example/"), "/");
        assert_eq!(default_path("https://a.example/app/login"), "/app");
        assert_eq!(default_path("https://a.example/login"), "/");
        assert!(domain_match("www.a.example", "a.example"));
        assert!(!domain_match("wwwa.example", "a.example"));
        assert!(!domain_match("a.example", "www.a.example"));
    }
}

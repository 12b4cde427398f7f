//! The HTTP probe: fetch one URL (http or https) as a browser would reach it, following redirects by
//! hand (at most [`MAX_REDIRECTS`]) so that every hop passes the SSRF guard first; a hop the guard
//! refuses is
//! recorded, never fetched.
//!
//! Public-safe at the source: only security-relevant header values are kept (capped), cookies are
//! reported by name and attributes (never their values), and no body is stored — only its size.
//!
//! Every HTTPS response notes whether its certificate was valid for its host (the handshake
//! completes either way, so a site behind a broken certificate is still observed), and every
//! response in the chain notes the cookies it set.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use url::Url;
pub use vantage_observations::http::FOREIGN_ORIGIN;
use vantage_observations::http::{
    CookieSummary, CorsPreflight, HttpHop, HttpObservation, RefusedRedirect,
};

use crate::ssrf::SsrfGuard;
use crate::tls::TlsRoots;

/// Most redirects followed.
pub const MAX_REDIRECTS: usize = 10;
/// Longest header value kept, in characters.
pub const MAX_HEADER_CHARS: usize = 1024;
/// Most body bytes read (to measure and, later, to parse HTML); the body is never stored.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// How long one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// What Vantage calls itself on the wire.
pub const USER_AGENT: &str = concat!(
    "Vantage/",
    env!("CARGO_PKG_VERSION"),
    " (external attack-surface scanner)"
);

/// Most HTTP requests in flight to one address, across every scan of this process (politeness).
pub const REQUESTS_PER_HOST: usize = 4;
/// After this many timeouts in a row, an address that stopped answering is skipped for a while.
const GIVE_UP_AFTER_TIMEOUTS: u32 = 2;
/// How long a host that stopped answering is skipped.
const UNRESPONSIVE_FOR: Duration = Duration::from_secs(60);
/// Why a request was not sent.
const SKIPPED: &str = "skipped: the host stopped answering";

/// Per-address state shared by every scan in the process: request slots (politeness) and a circuit
/// breaker, so a host that accepts connections and never answers costs one timeout, not one per
/// request.
#[derive(Debug)]
struct HostState {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    timeouts_in_a_row: u32,
    last_timeout: Option<Instant>,
}

impl HostState {
    fn unresponsive(&self) -> bool {
        self.timeouts_in_a_row >= GIVE_UP_AFTER_TIMEOUTS
            && self
                .last_timeout
                .is_some_and(|t| t.elapsed() < UNRESPONSIVE_FOR)
    }
}

static HOSTS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, HostState>>,
> = std::sync::LazyLock::new(Default::default);

/// Waits for a request slot to `address`, or refuses at once if the host stopped answering.
async fn host_slot(address: std::net::IpAddr) -> Result<tokio::sync::OwnedSemaphorePermit, String> {
    let slots = {
        let mut hosts = HOSTS.lock().map_err(|_| SKIPPED.to_owned())?;
        hosts.retain(|_, state| {
            std::sync::Arc::strong_count(&state.slots) > 1
                || state
                    .last_timeout
                    .is_some_and(|t| t.elapsed() < UNRESPONSIVE_FOR)
        });
        let state = hosts.entry(address).or_insert_with(|| HostState {
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(REQUESTS_PER_HOST)),
            timeouts_in_a_row: 0,
            last_timeout: None,
        });
        if state.unresponsive() {
            return Err(SKIPPED.to_owned());
        }
        state.slots.clone()
    };
    let permit = slots
        .acquire_owned()
        .await
        .map_err(|_| SKIPPED.to_owned())?;
    // The breaker may have tripped while this request waited for its slot.
    let tripped = HOSTS
        .lock()
        .map(|hosts| hosts.get(&address).is_some_and(HostState::unresponsive))
        .unwrap_or(false);
    if tripped {
        return Err(SKIPPED.to_owned());
    }
    Ok(permit)
}

/// Records whether a request to `address` timed out.
fn record_outcome(address: std::net::IpAddr, timed_out: bool) {
    if let Ok(mut hosts) = HOSTS.lock()
        && let Some(state) = hosts.get_mut(&address)
    {
        if timed_out {
            state.timeouts_in_a_row += 1;
            state.last_timeout = Some(Instant::now());
        } else {
            state.timeouts_in_a_row = 0;
        }
    }
}

/// Headers a repeat of which is dropped rather than joined (as browsers and Node read them).
const FIRST_VALUE_WINS: [&str; 3] = ["content-type", "location", "server"];

/// Headers whose values are kept; every other header is reported by name only.
const KEPT_HEADERS: [&str; 19] = [
    "access-control-allow-credentials",
    "access-control-allow-origin",
    "alt-svc",
    "content-security-policy",
    "content-security-policy-report-only",
    "content-type",
    "cross-origin-embedder-policy",
    "cross-origin-opener-policy",
    "cross-origin-resource-policy",
    "location",
    "permissions-policy",
    "referrer-policy",
    "server",
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
    "x-powered-by",
    "x-xss-protection",
    "www-authenticate",
];

fn cap(value: &str) -> String {
    value.chars().take(MAX_HEADER_CHARS).collect()
}

/// Parses a `Set-Cookie` header into its attributes, dropping the value.
pub fn summarize_cookie(header: &str) -> Option<CookieSummary> {
    let mut parts = header.split(';');
    let (name, _value) = parts.next()?.split_once('=')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let mut cookie = CookieSummary {
        name: cap(name),
        secure: false,
        http_only: false,
        same_site: None,
        path: None,
        domain: None,
        persistent: false,
    };
    for attribute in parts {
        let (key, value) = attribute
            .split_once('=')
            .map_or((attribute.trim(), ""), |(k, v)| (k.trim(), v.trim()));
        match key.to_ascii_lowercase().as_str() {
            "secure" => cookie.secure = true,
            "httponly" => cookie.http_only = true,
            "samesite" => cookie.same_site = Some(cap(value)),
            "path" => cookie.path = Some(cap(value)),
            "domain" => cookie.domain = Some(cap(value)),
            "expires" | "max-age" => cookie.persistent = true,
            _ => {}
        }
    }
    Some(cookie)
}

fn default_port(url: &Url) -> u16 {
    url.port_or_known_default().unwrap_or(80)
}

/// The start of a page's final response body, kept only when a scan asks for content samples (the
/// application seals it before anything is stored; it is never part of an observation).
#[derive(Clone, PartialEq, Eq)]
pub struct BodySample {
    pub status_code: u16,
    pub content_type: Option<String>,
    /// Bytes of the body read (at most [`MAX_BODY_BYTES`]).
    pub body_bytes: u64,
    /// Its first bytes.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for BodySample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodySample")
            .field("status_code", &self.status_code)
            .field("bytes", &format_args!("{} bytes", self.bytes.len()))
            .finish_non_exhaustive()
    }
}

/// Fetches `url`, whose host the guard has vetted to `addresses`, following redirects by hand;
/// certificates are judged against `roots`.
pub async fn probe_url(
    guard: &SsrfGuard,
    roots: &TlsRoots,
    url: Url,
    addresses: &[IpAddr],
) -> HttpObservation {
    probe_page(guard, roots, url, addresses, 0).await.0
}

/// [`probe_url`], also keeping the first `sample_bytes` bytes of the final response's body (no
/// sample when 0, or when no final response came).
pub async fn probe_page(
    guard: &SsrfGuard,
    roots: &TlsRoots,
    url: Url,
    addresses: &[IpAddr],
    sample_bytes: usize,
) -> (HttpObservation, Option<BodySample>) {
    let mut sample = None;
    let page_host = url.host_str().unwrap_or_default().to_owned();
    let started = Instant::now();
    let mut seen = HttpObservation {
        url: url.to_string(),
        hops: vec![],
        final_url: None,
        status: None,
        headers: BTreeMap::new(),
        header_names: vec![],
        cookies: vec![],
        body_bytes: None,
        html: None,
        cors_preflight: None,
        elapsed_ms: 0,
        refused_redirect: None,
        error: None,
    };
    let mut current = url;
    let mut vetted: Vec<IpAddr> = addresses.to_vec();
    for hop in 0..=MAX_REDIRECTS {
        let Some(host) = current.host_str().map(str::to_owned) else {
            seen.error = Some("URL without a host".into());
            break;
        };
        let Some(ip) = vetted.first().copied() else {
            seen.error = Some("no vetted address".into());
            break;
        };
        let address = SocketAddr::new(ip, default_port(&current));
        match fetch(&host, address, &current, roots).await {
            Err(error) => {
                seen.error = Some(error);
                break;
            }
            Ok(response) => {
                let location = response.location.clone();
                seen.hops.push(HttpHop {
                    url: current.to_string(),
                    address,
                    status: response.status,
                    location: location.clone(),
                    set_cookies: response.cookies.clone(),
                    certificate_valid: response.certificate_valid,
                });
                let is_redirect = (300..400).contains(&response.status) && location.is_some();
                if !is_redirect {
                    seen.final_url = Some(current.to_string());
                    seen.status = Some(response.status);
                    seen.headers = response.headers;
                    seen.header_names = response.header_names;
                    seen.cookies = response.cookies;
                    seen.body_bytes = Some(response.body_bytes);
                    if sample_bytes > 0 {
                        let kept = response.body.len().min(sample_bytes);
                        sample = Some(BodySample {
                            status_code: response.status,
                            content_type: seen.headers.get("content-type").cloned(),
                            body_bytes: response.body_bytes as u64,
                            bytes: response.body[..kept].to_vec(),
                        });
                    }
                    let is_html = seen
                        .headers
                        .get("content-type")
                        .is_some_and(|t| t.to_ascii_lowercase().starts_with("text/html"));
                    if is_html {
                        seen.html = Some(crate::html::summarize_html(
                            &String::from_utf8_lossy(&response.body),
                            &page_host,
                        ));
                    }
                    seen.cors_preflight = preflight(&host, address, &current, roots).await;
                    break;
                }
                if hop == MAX_REDIRECTS {
                    seen.error = Some(format!("more than {MAX_REDIRECTS} redirects"));
                    break;
                }
                let next = match location.as_deref().map(|l| current.join(l)) {
                    Some(Ok(next)) if matches!(next.scheme(), "http" | "https") => next,
                    _ => {
                        seen.error = Some("redirect to an unusable location".into());
                        break;
                    }
                };
                let next_host = next.host_str().unwrap_or_default().to_owned();
                match guard.vet_host(&next_host).await {
                    Ok(addresses) => vetted = addresses,
                    Err(refusal) => {
                        seen.refused_redirect = Some(RefusedRedirect {
                            url: next.to_string(),
                            reason: refusal.to_string(),
                        });
                        break;
                    }
                }
                current = next;
            }
        }
    }
    seen.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    (seen, sample)
}

/// A client for one request to `host`, pinned to `address`; its TLS configuration records whether
/// the certificate was valid.
fn client(
    host: &str,
    address: SocketAddr,
    roots: &TlsRoots,
) -> Result<(reqwest::Client, crate::tls::CertificateVerdict), String> {
    let (config, verdict) = crate::tls::observing_client_config(roots);
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .redirect(reqwest::redirect::Policy::none())
        .resolve(host, address)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(USER_AGENT)
        .no_proxy()
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    Ok((client, verdict))
}

/// Asks, as a browser would before a credentialed cross-origin request, what a foreign origin may do.
async fn preflight(
    host: &str,
    address: SocketAddr,
    url: &Url,
    roots: &TlsRoots,
) -> Option<CorsPreflight> {
    let _slot = host_slot(address.ip()).await.ok()?;
    let response = client(host, address, roots)
        .ok()?
        .0
        .request(reqwest::Method::OPTIONS, url.clone())
        .header("origin", FOREIGN_ORIGIN)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .ok()?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| cap(&String::from_utf8_lossy(v.as_bytes())))
    };
    Some(CorsPreflight {
        status: response.status().as_u16(),
        allow_origin: header("access-control-allow-origin"),
        allow_credentials: header("access-control-allow-credentials"),
        allow_methods: header("access-control-allow-methods"),
        allow_headers: header("access-control-allow-headers"),
    })
}

/// One response. The body prefix is for in-memory inspection only and is never stored.
pub(crate) struct Fetched {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) header_names: Vec<String>,
    pub(crate) cookies: Vec<CookieSummary>,
    pub(crate) body_bytes: usize,
    pub(crate) body: Vec<u8>,
    /// For HTTPS: whether the certificate was valid for `host` against the roots.
    pub(crate) certificate_valid: Option<bool>,
}

/// One request to `url`, connecting to `address` (the vetted one) whatever DNS would say.
pub(crate) async fn fetch(
    host: &str,
    address: SocketAddr,
    url: &Url,
    roots: &TlsRoots,
) -> Result<Fetched, String> {
    let _slot = host_slot(address.ip()).await?;
    let (client, verdict) = client(host, address, roots)?;
    let sent = client
        .get(url.clone())
        .header("origin", FOREIGN_ORIGIN)
        .send()
        .await;
    record_outcome(
        address.ip(),
        matches!(&sent, Err(error) if error.is_timeout()),
    );
    let mut response = sent.map_err(|e| {
        if e.is_timeout() {
            "timeout".to_owned()
        } else if e.is_connect() {
            "connection failed".to_owned()
        } else {
            "request failed".to_owned()
        }
    })?;
    let status = response.status().as_u16();
    let mut headers = BTreeMap::new();
    let mut header_names: Vec<String> = Vec::new();
    let mut cookies = Vec::new();
    for (name, value) in response.headers() {
        let name = name.as_str().to_ascii_lowercase();
        let value = String::from_utf8_lossy(value.as_bytes());
        if name == "set-cookie" {
            cookies.extend(summarize_cookie(&value));
        } else if KEPT_HEADERS.contains(&name.as_str()) {
            match headers.entry(name.clone()) {
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(cap(&value));
                }
                std::collections::btree_map::Entry::Occupied(mut joined)
                    if !FIRST_VALUE_WINS.contains(&name.as_str()) =>
                {
                    let both = format!("{}, {value}", joined.get());
                    joined.insert(cap(&both));
                }
                std::collections::btree_map::Entry::Occupied(_) => {}
            }
        }
        if !header_names.contains(&name) {
            header_names.push(name);
        }
    }
    header_names.sort();
    let location = headers.get("location").cloned();
    let mut body: Vec<u8> = Vec::new();
    while body.len() < MAX_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(MAX_BODY_BYTES);
    let certificate_valid = if url.scheme() == "https" {
        Some(verdict.lock().ok().and_then(|v| *v).unwrap_or(false))
    } else {
        None
    };
    Ok(Fetched {
        certificate_valid,
        status,
        location,
        headers,
        header_names,
        cookies,
        body_bytes: body.len(),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_lose_their_values() {
        let cookie = summarize_cookie(
            "session=s3cr3t-v4lue; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=60",
        )
        .unwrap();
        assert_eq!(cookie.name, "session");
        assert!(cookie.secure && cookie.http_only && cookie.persistent);
        assert_eq!(cookie.same_site.as_deref(), Some("Lax"));
        assert!(!format!("{cookie:?}").contains("s3cr3t"));
        assert_eq!(summarize_cookie("no-equals-sign"), None);
    }
}

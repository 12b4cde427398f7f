//! What the HTTP probe saw fetching one URL: the redirect chain, the final response's
//! security-relevant headers, its cookies (names and attributes, never values) and facts about its
//! HTML. No body is ever kept.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The Origin every HTTP request of the probe carries, so a server that reflects arbitrary origins
/// (CORS) shows it. `.invalid` can never be a real site (RFC 2606).
pub const FOREIGN_ORIGIN: &str = "https://cors-check.vantage.invalid";

/// A cookie as set by the server, without its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CookieSummary {
    pub name: String,
    pub secure: bool,
    pub http_only: bool,
    /// The SameSite attribute as written (possibly empty or invalid).
    pub same_site: Option<String>,
    pub path: Option<String>,
    pub domain: Option<String>,
    pub persistent: bool,
}

/// One response in the redirect chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HttpHop {
    pub url: String,
    pub address: SocketAddr,
    pub status: u16,
    pub location: Option<String>,
    /// The cookies this response set (v2; a v1 chain only knew the final response's).
    pub set_cookies: Vec<CookieSummary>,
    /// For an `https://` hop: whether its certificate chain validated, unexpired, for the hop's host
    /// against the scanner's trust anchors (v2; unknown for v1 and for `http://` hops).
    pub certificate_valid: Option<bool>,
}

/// Where a script's `src` points, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScriptLocation {
    /// A path on the page's own origin (`/app.js`, `app.js`).
    Relative,
    /// `//host/…`: the page's scheme, another host.
    ProtocolRelative,
    /// `http://…` or `https://…`.
    Absolute,
}

/// One `<script src>` of a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ScriptSource {
    /// The `src` as written, at most [`MAX_SCRIPT_SRC_CHARS`] characters.
    pub src: String,
    pub location: ScriptLocation,
    /// An absolute `https://` source.
    pub secure_scheme: bool,
    /// An absolute source on the same registrable domain (the same site, by the Public Suffix List)
    /// as the host the fetch started at.
    pub same_site: bool,
    /// A non-empty `integrity` attribute (Subresource Integrity).
    pub integrity: bool,
}

/// Longest script `src` kept, in characters.
pub const MAX_SCRIPT_SRC_CHARS: usize = 200;
/// Most script sources described per page.
pub const MAX_SCRIPT_SOURCES: usize = 50;
/// Longest `<meta>` policy value kept, in characters.
pub const MAX_META_CHARS: usize = 1024;

/// Facts about an HTML page: counts and the policies it declares, never its content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HtmlSummary {
    pub scripts: usize,
    pub external_scripts: usize,
    pub external_scripts_without_sri: usize,
    /// `src`/`href` of scripts, stylesheets, images, frames and media that use `http://`.
    pub insecure_subresources: usize,
    pub forms: usize,
    pub password_inputs: usize,
    /// `<meta http-equiv="Content-Security-Policy" content=…>` policies, in page order (v2).
    pub meta_csp: Vec<String>,
    /// `<meta name="referrer" content=…>`, the last one (v2).
    pub meta_referrer: Option<String>,
    /// The page's `<script src>` elements, in page order, at most [`MAX_SCRIPT_SOURCES`] (v2).
    pub script_sources: Vec<ScriptSource>,
}

/// What a CORS preflight (`OPTIONS` with a foreign Origin) was answered with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CorsPreflight {
    pub status: u16,
    pub allow_origin: Option<String>,
    pub allow_credentials: Option<String>,
    pub allow_methods: Option<String>,
    pub allow_headers: Option<String>,
}

/// A redirect that was recorded but not followed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RefusedRedirect {
    pub url: String,
    pub reason: String,
}

/// What fetching one URL showed (version 2).
///
/// Version 2 added, per hop, the cookies each response set and whether an HTTPS hop's certificate
/// validated; the HTML's `<meta>` policies and script sources; and, for a header sent more than once,
/// its values joined with ", " (as HTTP allows and browsers read them; `set-cookie` apart, and the
/// headers whose repeats are dropped keep their first value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HttpObservation {
    pub url: String,
    /// Every response, in order; the last is the final one unless the chain was cut.
    pub hops: Vec<HttpHop>,
    pub final_url: Option<String>,
    pub status: Option<u16>,
    /// Kept header values of the final response (lower-case names; repeats joined with ", ").
    pub headers: BTreeMap<String, String>,
    /// Names of every header of the final response.
    pub header_names: Vec<String>,
    /// The cookies the final response set.
    pub cookies: Vec<CookieSummary>,
    pub body_bytes: Option<usize>,
    /// Facts about the final page when it is HTML.
    pub html: Option<HtmlSummary>,
    /// The CORS preflight sent to the final URL.
    pub cors_preflight: Option<CorsPreflight>,
    pub elapsed_ms: u64,
    /// A redirect the SSRF guard refused: the target and why. It was not fetched.
    pub refused_redirect: Option<RefusedRedirect>,
    /// Why the chain ended early (timeout, too many redirects, connection refused…).
    pub error: Option<String>,
}

impl HttpObservation {
    /// A kept header of the final response.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// A response was received at the end of the chain.
    pub fn answered(&self) -> bool {
        self.status.is_some()
    }

    /// The final response came over `https://`.
    pub fn ended_on_https(&self) -> bool {
        self.final_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}

/// Upcasts version 1 data to version 2: the final response's cookies become its hop's, nothing is
/// known of certificates, and pages declare no `<meta>` policies and no script sources.
pub(crate) fn upcast_v1(mut data: serde_json::Value) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    let object = data.as_object_mut().ok_or("not an object")?;
    let final_cookies = object
        .get("cookies")
        .cloned()
        .unwrap_or(Value::Array(vec![]));
    let answered = object.get("status").is_some_and(|s| !s.is_null());
    if let Some(Value::Array(hops)) = object.get_mut("hops") {
        let last = hops.len().saturating_sub(1);
        for (index, hop) in hops.iter_mut().enumerate() {
            let hop = hop.as_object_mut().ok_or("a hop is not an object")?;
            let cookies = if answered && index == last {
                final_cookies.clone()
            } else {
                Value::Array(vec![])
            };
            hop.insert("set_cookies".into(), cookies);
            hop.insert("certificate_valid".into(), Value::Null);
        }
    }
    if let Some(Value::Object(html)) = object.get_mut("html") {
        html.insert("meta_csp".into(), Value::Array(vec![]));
        html.insert("meta_referrer".into(), Value::Null);
        html.insert("script_sources".into(), Value::Array(vec![]));
    }
    Ok(data)
}

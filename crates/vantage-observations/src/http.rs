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
}

/// Facts about an HTML page: counts only, never content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HtmlSummary {
    pub scripts: usize,
    pub external_scripts: usize,
    pub external_scripts_without_sri: usize,
    /// `src`/`href` of scripts, stylesheets, images, frames and media that use `http://`.
    pub insecure_subresources: usize,
    pub forms: usize,
    pub password_inputs: usize,
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

/// What fetching one URL showed (version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HttpObservation {
    pub url: String,
    /// Every response, in order; the last is the final one unless the chain was cut.
    pub hops: Vec<HttpHop>,
    pub final_url: Option<String>,
    pub status: Option<u16>,
    /// Kept header values of the final response (lower-case names).
    pub headers: BTreeMap<String, String>,
    /// Names of every header of the final response.
    pub header_names: Vec<String>,
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
}

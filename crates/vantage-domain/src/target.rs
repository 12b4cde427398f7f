//! What a scan looks at and how: the target, ports, paths, profile, trigger and vantage point, each
//! parsed once into a validated, normalised value.
//!
//! Parsing here is syntactic. Whether a target's addresses may be contacted at all (the SSRF guard)
//! needs DNS and is decided by the scanner before a scan is accepted.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::DomainError;

/// Longest target accepted, in bytes.
pub const MAX_TARGET_LEN: usize = 2048;
/// Most ports one scan may probe.
pub const MAX_PORTS: usize = 32;
/// Most paths one scan may fetch.
pub const MAX_PATHS: usize = 32;
/// Longest path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 1024;

/// A scan target: an `http(s)://` URL or a bare host name (or IP literal), normalised.
///
/// Normalisation lower-cases the host, converts internationalised names to punycode, canonicalises
/// IPv4 spellings (`0x7f.1` → `127.0.0.1`), drops default ports, fragments and user info (user info is
/// refused outright), so two spellings of one target compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct ScanTarget(String);

/// Whether a target names a URL or a bare domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    Url,
    Domain,
}

impl ScanTarget {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(DomainError::invalid("target", "must not be empty"));
        }
        if raw.len() > MAX_TARGET_LEN {
            return Err(DomainError::invalid(
                "target",
                format!("must be at most {MAX_TARGET_LEN} bytes"),
            ));
        }
        if raw.contains("://") {
            Self::parse_url(raw)
        } else {
            let host = parse_host(raw)?;
            Ok(Self(host))
        }
    }

    fn parse_url(raw: &str) -> Result<Self, DomainError> {
        let mut url = url::Url::parse(raw)
            .map_err(|e| DomainError::invalid("target", format!("is not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(DomainError::invalid(
                "target",
                format!(
                    "scheme {:?} is not supported; use http or https",
                    url.scheme()
                ),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(DomainError::invalid(
                "target",
                "must not contain user info (credentials) in the URL",
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| DomainError::invalid("target", "URL has no host"))?;
        // Validates the host the same way as a bare domain (label rules, length).
        if !host.starts_with('[') {
            parse_host(host)?;
        }
        if url.port() == Some(0) {
            return Err(DomainError::invalid(
                "target",
                "port 0 is not a port anything listens on",
            ));
        }
        url.set_fragment(None);
        Ok(Self(url.into()))
    }

    pub fn kind(&self) -> TargetKind {
        if self.0.contains("://") {
            TargetKind::Url
        } else {
            TargetKind::Domain
        }
    }

    /// The host part (domain name, IPv4 literal or bracket-less IPv6 literal).
    pub fn host(&self) -> &str {
        match self.kind() {
            TargetKind::Domain => &self.0,
            TargetKind::Url => {
                let rest = self.0.split_once("://").map_or("", |(_, rest)| rest);
                let authority = rest.split(['/', '?']).next().unwrap_or("");
                if let Some(v6) = authority.strip_prefix('[') {
                    v6.split(']').next().unwrap_or("")
                } else {
                    authority.split(':').next().unwrap_or("")
                }
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses a bare host: a DNS name (IDNA to punycode, lower case) or an IP literal.
fn parse_host(raw: &str) -> Result<String, DomainError> {
    // An IPv6 literal is kept without brackets (its canonical text), so it must parse as typed that
    // way too: the stored target is parsed again whenever its event is read.
    if let Ok(ip) = raw.parse::<std::net::Ipv6Addr>() {
        return Ok(ip.to_string());
    }
    let trimmed = raw.strip_suffix('.').unwrap_or(raw);
    let host = url::Host::parse(trimmed)
        .map_err(|e| DomainError::invalid("target", format!("is not a valid host name: {e}")))?;
    match host {
        url::Host::Domain(name) => {
            validate_dns_name(&name)?;
            Ok(name)
        }
        url::Host::Ipv4(ip) => Ok(ip.to_string()),
        url::Host::Ipv6(ip) => Ok(ip.to_string()),
    }
}

fn validate_dns_name(name: &str) -> Result<(), DomainError> {
    if name.len() > 253 {
        return Err(DomainError::invalid(
            "target",
            "host name must be at most 253 characters",
        ));
    }
    for label in name.split('.') {
        let ok = (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(DomainError::invalid(
                "target",
                format!("host name label {label:?} is not valid"),
            ));
        }
    }
    Ok(())
}

impl TryFrom<String> for ScanTarget {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<ScanTarget> for String {
    fn from(target: ScanTarget) -> Self {
        target.0
    }
}

impl fmt::Display for ScanTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The TCP ports to probe: 1 to [`MAX_PORTS`] distinct ports, sorted. Default `[80, 443]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "Vec<u16>", into = "Vec<u16>")]
pub struct Ports(Vec<u16>);

impl Ports {
    pub fn new(mut ports: Vec<u16>) -> Result<Self, DomainError> {
        if ports.contains(&0) {
            return Err(DomainError::invalid("ports", "port 0 is not a valid port"));
        }
        ports.sort_unstable();
        ports.dedup();
        if ports.is_empty() || ports.len() > MAX_PORTS {
            return Err(DomainError::invalid(
                "ports",
                format!("must list between 1 and {MAX_PORTS} distinct ports"),
            ));
        }
        Ok(Self(ports))
    }

    pub fn as_slice(&self) -> &[u16] {
        &self.0
    }
}

impl Default for Ports {
    fn default() -> Self {
        Self(vec![80, 443])
    }
}

impl TryFrom<Vec<u16>> for Ports {
    type Error = DomainError;
    fn try_from(ports: Vec<u16>) -> Result<Self, Self::Error> {
        Self::new(ports)
    }
}

impl From<Ports> for Vec<u16> {
    fn from(ports: Ports) -> Self {
        ports.0
    }
}

/// The HTTP paths to fetch: 1 to [`MAX_PATHS`] distinct absolute paths. Default `["/"]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Paths(Vec<String>);

impl Paths {
    pub fn new(paths: Vec<String>) -> Result<Self, DomainError> {
        let mut out: Vec<String> = Vec::with_capacity(paths.len());
        for path in paths {
            if !path.starts_with('/') {
                return Err(DomainError::invalid(
                    "paths",
                    format!("{path:?} must start with '/'"),
                ));
            }
            if path.len() > MAX_PATH_LEN {
                return Err(DomainError::invalid(
                    "paths",
                    format!("each path must be at most {MAX_PATH_LEN} bytes"),
                ));
            }
            if path
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == '#')
            {
                return Err(DomainError::invalid(
                    "paths",
                    format!("{path:?} contains whitespace, a control character or '#'"),
                ));
            }
            if !out.contains(&path) {
                out.push(path);
            }
        }
        if out.is_empty() || out.len() > MAX_PATHS {
            return Err(DomainError::invalid(
                "paths",
                format!("must list between 1 and {MAX_PATHS} distinct paths"),
            ));
        }
        Ok(Self(out))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl Default for Paths {
    fn default() -> Self {
        Self(vec!["/".to_owned()])
    }
}

impl TryFrom<Vec<String>> for Paths {
    type Error = DomainError;
    fn try_from(paths: Vec<String>) -> Result<Self, Self::Error> {
        Self::new(paths)
    }
}

impl From<Paths> for Vec<String> {
    fn from(paths: Paths) -> Self {
        paths.0
    }
}

/// How thorough a scan is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    Quick,
    #[default]
    Standard,
    Deep,
}

/// Why a scan was started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    #[default]
    Manual,
    Scheduled,
    PostDeploy,
    Api,
}

/// The worker pool a scan runs on: 1–64 characters of `a-z`, `0-9`, `-`. Default `default`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct VantagePoint(String);

impl VantagePoint {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let ok = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::invalid(
                "vantage_point",
                "must be 1-64 characters of a-z, 0-9 and '-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for VantagePoint {
    fn default() -> Self {
        Self("default".to_owned())
    }
}

impl TryFrom<String> for VantagePoint {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<VantagePoint> for String {
    fn from(point: VantagePoint) -> Self {
        point.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_equivalent_spellings() {
        let a = ScanTarget::parse("HTTPS://Example.COM:443/a#frag").unwrap();
        let b = ScanTarget::parse("https://example.com/a").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.host(), "example.com");
        assert_eq!(a.kind(), TargetKind::Url);
        assert_eq!(
            ScanTarget::parse("Example.com.").unwrap().as_str(),
            "example.com"
        );
        assert_eq!(ScanTarget::parse("0x7f.1").unwrap().as_str(), "127.0.0.1");
        assert_eq!(
            ScanTarget::parse("bücher.de").unwrap().as_str(),
            "xn--bcher-kva.de"
        );
        let v6 = ScanTarget::parse("http://[::1]:8080/").unwrap();
        assert_eq!(v6.host(), "::1");
        // A bare IPv6 literal, bracketed or not, is kept in its canonical form, which parses again
        // (found by the fuzzer: "[::]" was stored as "::", which did not).
        for typed in ["[::]", "::", "[2001:DB8::1]", "2001:db8:0::1"] {
            let target = ScanTarget::parse(typed).unwrap();
            assert_eq!(
                ScanTarget::parse(target.as_str()).unwrap(),
                target,
                "{typed}"
            );
        }
        assert_eq!(
            ScanTarget::parse("[2001:DB8::1]").unwrap().as_str(),
            "2001:db8::1"
        );
    }

    #[test]
    fn refuses_bad_targets() {
        for bad in [
            "",
            "ftp://example.com",
            "https://user:pw@example.com/",
            "exa mple.com",
            "-bad.example",
            "javascript:alert(1)",
            "https://",
            &"a".repeat(3000),
        ] {
            assert!(ScanTarget::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn ports_and_paths_are_bounded() {
        assert_eq!(
            Ports::new(vec![443, 80, 443]).unwrap().as_slice(),
            &[80, 443]
        );
        assert!(Ports::new(vec![]).is_err());
        assert!(Ports::new(vec![0]).is_err());
        assert!(Ports::new((1..=33).collect()).is_err());
        assert!(Paths::new(vec!["relative".into()]).is_err());
        assert!(Paths::new(vec!["/a b".into()]).is_err());
        assert!(Paths::new((0..33).map(|i| format!("/{i}")).collect()).is_err());
        assert_eq!(
            Paths::new(vec!["/".into(), "/".into()]).unwrap().as_slice(),
            &["/"]
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_is_idempotent(raw in "\\PC{0,80}") {
            if let Ok(target) = ScanTarget::parse(&raw) {
                let again = ScanTarget::parse(target.as_str()).expect("normalised target reparses");
                prop_assert_eq!(again, target);
            }
        }

        #[test]
        fn slugs_and_fingerprints_parse_totally(raw in "\\PC{0,140}") {
            if let Ok(tenant) = crate::tenant::TenantId::parse(&raw) {
                prop_assert_eq!(tenant.as_str(), raw.as_str());
            }
            if let Ok(point) = VantagePoint::parse(&raw) {
                prop_assert_eq!(point.as_str(), raw.as_str());
            }
            if let Ok(fingerprint) = crate::triage::Fingerprint::parse(&raw) {
                prop_assert!(fingerprint.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
            }
            let _ = crate::webhook::WebhookUrl::parse(&raw);
        }

        #[test]
        fn ports_and_paths_parse_totally(
            ports in proptest::collection::vec(any::<u16>(), 0..40),
            paths in proptest::collection::vec("\\PC{0,20}", 0..40),
        ) {
            if let Ok(parsed) = Ports::new(ports) {
                prop_assert!((1..=MAX_PORTS).contains(&parsed.as_slice().len()));
                prop_assert!(parsed.as_slice().windows(2).all(|w| w[0] < w[1]));
            }
            if let Ok(parsed) = Paths::new(paths) {
                prop_assert!(parsed.as_slice().iter().all(|p| p.starts_with('/')));
            }
        }

        #[test]
        fn url_targets_reparse(host in "[a-z]{1,10}(\\.[a-z]{2,5}){1,3}", path in "(/[a-z0-9]{0,8}){0,3}") {
            let target = ScanTarget::parse(&format!("https://{host}{path}")).unwrap();
            prop_assert_eq!(target.host(), host.as_str());
            prop_assert_eq!(ScanTarget::parse(target.as_str()).unwrap(), target);
        }
    }
}

//! `Alt-Svc` (RFC 7838): the alternative services a response advertises, above all HTTP/3 (`h3`),
//! which a browser learns of only this way (or from an HTTPS DNS record). Parsed from the header
//! value the HTTP probe keeps: an alternative that breaks the grammar is left out, never guessed
//! at, and what is returned is bounded ([`MAX_ALTERNATIVES`]). Pure; the analysis summary is its
//! one caller.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most alternatives read from one header value; the rest are ignored.
pub const MAX_ALTERNATIVES: usize = 16;

/// How long an alternative may be used when the header gives no `ma` (RFC 7838 §3.1: 24 hours).
pub const DEFAULT_MAX_AGE_SECONDS: u64 = 24 * 60 * 60;

/// The protocol ID of HTTP/3 (RFC 9114 §3.1).
pub const HTTP3: &str = "h3";

/// One alternative service of an origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AlternativeService {
    /// The ALPN protocol ID, percent-decoded: `h3` (HTTP/3), `h2`, a draft's `h3-29` …
    pub protocol: String,
    /// Another host serving the origin; absent: the origin's own host.
    pub host: Option<String>,
    pub port: u16,
    /// How long, in seconds, a client may use it (`ma`, else 24 hours).
    pub max_age_seconds: u64,
    /// `persist=1`: kept when the client's network changes.
    pub persist: bool,
}

impl std::fmt::Display for AlternativeService {
    /// `h3 on port 443`, `h2 at alt.example.com:8443`: as reports list them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.host {
            None => write!(f, "{} on port {}", self.protocol, self.port),
            Some(host) => write!(f, "{} at {host}:{}", self.protocol, self.port),
        }
    }
}

/// The alternatives an `Alt-Svc` header value advertises, in the header's order. `clear`, and a
/// value of which nothing parses, advertise none.
pub fn parse(value: &str) -> Vec<AlternativeService> {
    if value.trim() == "clear" {
        return Vec::new();
    }
    split_outside_quotes(value, ',')
        .into_iter()
        .filter_map(alternative)
        .take(MAX_ALTERNATIVES)
        .collect()
}

/// One `alt-value`: `protocol-id "=" alt-authority *( OWS ";" OWS parameter )`.
fn alternative(text: &str) -> Option<AlternativeService> {
    let mut parts = split_outside_quotes(text, ';').into_iter();
    let (protocol, authority) = parts.next()?.trim().split_once('=')?;
    let protocol = protocol_id(protocol)?;
    let (host, port) = authority_of(&unquote(authority)?)?;
    let mut service = AlternativeService {
        protocol,
        host,
        port,
        max_age_seconds: DEFAULT_MAX_AGE_SECONDS,
        persist: false,
    };
    for parameter in parts {
        let Some((name, value)) = parameter.trim().split_once('=') else {
            continue;
        };
        let value = if value.starts_with('"') {
            unquote(value)
        } else {
            Some(value.to_owned())
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("ma", Some(seconds)) if is_digits(&seconds) => {
                // A delta-seconds too large to represent is as good as forever (RFC 9111 §1.2.2).
                service.max_age_seconds = seconds.parse().unwrap_or(u64::MAX);
            }
            ("persist", Some(flag)) => service.persist = flag == "1",
            _ => {}
        }
    }
    Some(service)
}

/// A `token` whose `%XX` escapes are decoded (RFC 7838 §3: the ALPN ID, percent-encoded).
fn protocol_id(token: &str) -> Option<String> {
    if token.is_empty() || !token.bytes().all(is_tchar) {
        return None;
    }
    let mut bytes = Vec::with_capacity(token.len());
    let mut rest = token.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// `[ uri-host ] ":" port`; the host is a DNS name or a bracketed IPv6 address.
fn authority_of(text: &str) -> Option<(Option<String>, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    if !is_digits(port) {
        return None;
    }
    let port: u16 = port.parse().ok().filter(|&port| port > 0)?;
    let host = if host.is_empty() {
        None
    } else if let Some(address) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        address.parse::<std::net::Ipv6Addr>().ok()?;
        Some(host.to_ascii_lowercase())
    } else if host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        Some(host.to_ascii_lowercase())
    } else {
        return None;
    };
    Some((host, port))
}

/// The content of a `quoted-string` (its escapes undone), or `None` when `text` is not one.
fn unquote(text: &str) -> Option<String> {
    let inner = text.trim().strip_prefix('"')?.strip_suffix('"')?;
    let mut content = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => content.push(chars.next()?),
            '"' => return None,
            c => content.push(c),
        }
    }
    Some(content)
}

/// `text` cut at every `separator` outside a quoted string.
fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (index, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == separator && !quoted {
            parts.push(&text[start..index]);
            start = index + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// RFC 9110 §5.6.2.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn service(protocol: &str, host: Option<&str>, port: u16) -> AlternativeService {
        AlternativeService {
            protocol: protocol.into(),
            host: host.map(str::to_owned),
            port,
            max_age_seconds: DEFAULT_MAX_AGE_SECONDS,
            persist: false,
        }
    }

    #[test]
    fn what_large_sites_send_is_read() {
        assert_eq!(
            parse(r#"h3=":443"; ma=2592000,h3-29=":443"; ma=2592000"#),
            [
                AlternativeService {
                    max_age_seconds: 2_592_000,
                    ..service("h3", None, 443)
                },
                AlternativeService {
                    max_age_seconds: 2_592_000,
                    ..service("h3-29", None, 443)
                },
            ]
        );
        assert_eq!(
            parse(r#"h2="alt.example.com:8443"; persist=1; ma="60""#),
            [AlternativeService {
                max_age_seconds: 60,
                persist: true,
                ..service("h2", Some("alt.example.com"), 8443)
            }]
        );
        assert_eq!(
            parse(r#"h3="[2001:DB8::1]:443""#),
            [service("h3", Some("[2001:db8::1]"), 443)]
        );
    }

    #[test]
    fn reports_name_an_alternative_by_protocol_and_place() {
        assert_eq!(service("h3", None, 443).to_string(), "h3 on port 443");
        assert_eq!(
            service("h2", Some("alt.example"), 8443).to_string(),
            "h2 at alt.example:8443"
        );
    }

    #[test]
    fn protocol_ids_are_percent_decoded() {
        assert_eq!(parse(r#"w%3Dx%3Ay=":80""#), [service("w=x:y", None, 80)]);
        assert_eq!(parse(r#"h%33=":443""#), [service("h3", None, 443)]);
    }

    #[test]
    fn clear_and_broken_alternatives_advertise_nothing() {
        assert_eq!(parse("clear"), []);
        for broken in [
            "",
            "h3",
            "h3=:443",            // the authority must be quoted
            r#"h3="443""#,        // no port separator
            r#"h3=":0""#,         // port 0
            r#"h3=":99999""#,     // not a port
            r#"h3=":+443""#,      // not digits
            r#"h3="a b:443""#,    // not a host
            r#"h3="[::zz]:443""#, // not an IPv6 address
            r#"h 3=":443""#,      // not a token
            r#"h%3=":443""#,      // a broken escape
            r#"h%FF=":443""#,     // not UTF-8
            r#"h3=":443"#,        // an unterminated quote
            r#"h3=":4"43""#,      // a stray quote
        ] {
            assert_eq!(parse(broken), [], "{broken:?}");
        }
    }

    #[test]
    fn a_broken_alternative_leaves_the_others() {
        assert_eq!(
            parse(r#"h3=":443"; ma=oops, x=broken, h2=":8443"; note="a, b; c""#),
            [service("h3", None, 443), service("h2", None, 8443)]
        );
    }

    #[test]
    fn at_most_the_bound_is_read() {
        let many = vec![r#"h3=":443""#; MAX_ALTERNATIVES + 5].join(", ");
        assert_eq!(parse(&many).len(), MAX_ALTERNATIVES);
    }

    proptest! {
        #[test]
        fn any_text_parses_without_panicking_and_within_bounds(value in ".{0,300}") {
            let services = parse(&value);
            prop_assert!(services.len() <= MAX_ALTERNATIVES);
            for service in services {
                prop_assert!(service.port > 0);
                prop_assert!(!service.protocol.is_empty());
            }
        }

        #[test]
        fn a_well_formed_alternative_reads_back(
            protocol in "[a-z][a-z0-9-]{0,8}",
            host in proptest::option::of("[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5})?"),
            port in 1u16..,
            max_age in proptest::option::of(0u64..10_000_000),
        ) {
            let mut value = format!("{protocol}=\"{}:{port}\"", host.clone().unwrap_or_default());
            if let Some(seconds) = max_age {
                value.push_str(&format!("; ma={seconds}"));
            }
            prop_assert_eq!(
                parse(&value),
                vec![AlternativeService {
                    protocol,
                    host,
                    port,
                    max_age_seconds: max_age.unwrap_or(DEFAULT_MAX_AGE_SECONDS),
                    persist: false,
                }]
            );
        }
    }
}

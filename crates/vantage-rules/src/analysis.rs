//! The analysis summary of a scan, in the shape OutScope users know: was the target reachable, does
//! it speak HTTP, could it be analysed, what kind of site it is, and per port and per path what was
//! seen. Facts, not verdicts: it is derived from the typed observations alone, by this one function,
//! which the scan resource, the scans read model and the reports all use.
//!
//! Definitions: *reachable* — a TCP port answered open, or an HTTP request got an answer;
//! *speaks_http* — an HTTP request got an answer; *analyzable* — an answer below 500 arrived (a page
//! there was to analyse). A port's TLS is *valid* when the handshake completed with a certificate
//! trusted and matching the name; `expires_at` is the leaf certificate's `notAfter`; `alpn` is the
//! application protocol the server chose when offered `h2` and `http/1.1` (asked in standard and deep
//! scans). A path's `alternative_services` are what its final response's `Alt-Svc` advertises: an
//! `h3` there is how a browser learns the site speaks HTTP/3.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vantage_domain::scan::ProbeObserved;
use vantage_observations::Observation;
use vantage_observations::classification::{AuthDetected, SiteKind};
use vantage_observations::tcp::PortState;

use crate::alt_svc::AlternativeService;

/// What a scan saw of its target, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Analysis {
    pub reachable: bool,
    pub speaks_http: bool,
    pub analyzable: bool,
    /// `web`, `api`, `static`, `redirect` or `unknown` (the classification).
    pub kind: SiteKind,
    pub auth_detected: bool,
    pub api_doc_detected: bool,
    /// By port number.
    pub ports: Vec<PortSummary>,
    /// By URL, as fetched.
    pub paths: Vec<PathSummary>,
}

/// One scanned port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PortSummary {
    pub port: u16,
    /// Open on at least one of the target's addresses.
    pub tcp_open: bool,
    /// When the port speaks TLS.
    pub tls: Option<TlsSummary>,
}

/// A port's TLS, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TlsSummary {
    /// Handshake completed with a trusted certificate that matches the name.
    pub valid: bool,
    /// The leaf certificate's `notAfter`.
    pub expires_at: Option<String>,
    /// The negotiated protocol (`TLSv1_3`, …).
    pub protocol: Option<String>,
    /// The application protocol chosen when `h2` and `http/1.1` are offered (ALPN): `h2` is
    /// HTTP/2. Absent when none was chosen or the question was not asked (quick scans).
    #[serde(default)]
    pub alpn: Option<String>,
}

/// One fetched path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PathSummary {
    pub path: String,
    /// The URL fetched (scheme, host and port tell the paths of several origins apart).
    pub url: String,
    /// The final response's status, after redirects (absent: no answer).
    pub status_code: Option<u16>,
    pub content_type: Option<String>,
    /// What the final response's `Alt-Svc` header advertises (HTTP/3 is `h3`), in its order.
    #[serde(default)]
    pub alternative_services: Vec<AlternativeService>,
}

/// The path part of a URL (`/` when it has none or cannot be read).
fn path_of(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.path().to_owned())
        .unwrap_or_else(|_| "/".to_owned())
}

/// Summarises a scan's observations (in log order).
pub fn analyze(observations: &[ProbeObserved]) -> Analysis {
    let mut ports: BTreeMap<u16, PortSummary> = BTreeMap::new();
    let mut paths = Vec::new();
    let mut classification = None;
    for observed in observations {
        match &observed.observation {
            Observation::Tcp(tcp) => {
                let entry = ports.entry(tcp.port).or_insert(PortSummary {
                    port: tcp.port,
                    tcp_open: false,
                    tls: None,
                });
                entry.tcp_open |= tcp.state == PortState::Open;
            }
            Observation::Tls(tls) if tls.handshake => {
                let entry = ports.entry(tls.address.port()).or_insert(PortSummary {
                    port: tls.address.port(),
                    tcp_open: true,
                    tls: None,
                });
                let summary = TlsSummary {
                    valid: tls.trusted == Some(true) && tls.hostname_match == Some(true),
                    expires_at: tls.chain.first().map(|c| c.not_after.clone()),
                    protocol: tls.protocol.clone(),
                    alpn: tls
                        .protocol_facts
                        .as_ref()
                        .and_then(|facts| facts.alpn.clone()),
                };
                // The first handshake of a port speaks for it; a later valid one does not hide an
                // invalid one (any address with a bad certificate makes the port's TLS invalid).
                entry.tls = Some(match entry.tls.take() {
                    Some(first) => TlsSummary {
                        valid: first.valid && summary.valid,
                        ..first
                    },
                    None => summary,
                });
            }
            Observation::Http(page) => paths.push(PathSummary {
                path: path_of(&page.url),
                url: page.url.clone(),
                status_code: page.status,
                content_type: page.header("content-type").map(str::to_owned),
                alternative_services: page
                    .header("alt-svc")
                    .map(crate::alt_svc::parse)
                    .unwrap_or_default(),
            }),
            Observation::Classification(c) => classification = Some(c.clone()),
            _ => {}
        }
    }
    paths.sort_by(|a, b| a.url.cmp(&b.url));
    paths.dedup_by(|a, b| a.url == b.url);
    let speaks_http = paths.iter().any(|p| p.status_code.is_some());
    Analysis {
        reachable: speaks_http || ports.values().any(|p| p.tcp_open),
        speaks_http,
        analyzable: paths.iter().any(|p| p.status_code.is_some_and(|s| s < 500)),
        kind: classification
            .as_ref()
            .map_or(SiteKind::Unknown, |c| c.kind),
        auth_detected: classification
            .as_ref()
            .is_some_and(|c| c.auth != AuthDetected::None),
        api_doc_detected: classification.as_ref().is_some_and(|c| c.api_docs),
        ports: ports.into_values().collect(),
        paths,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{observed, page};
    use vantage_observations::classification::Classification;
    use vantage_observations::tcp::TcpObservation;

    #[test]
    fn nothing_seen_is_unreachable_and_unknown() {
        let analysis = analyze(&[]);
        assert!(!analysis.reachable && !analysis.speaks_http && !analysis.analyzable);
        assert_eq!(analysis.kind, SiteKind::Unknown);
    }

    #[test]
    fn ports_paths_and_classification_are_summarised() {
        let tcp = |port, state| {
            observed(
                u128::from(port),
                &format!("example.com:{port}"),
                Observation::Tcp(TcpObservation {
                    address: format!("93.184.215.14:{port}").parse().unwrap(),
                    port,
                    state,
                    latency_ms: Some(3),
                }),
            )
        };
        let analysis = analyze(&[
            tcp(80, PortState::Open),
            tcp(443, PortState::Closed),
            tcp(8080, PortState::Filtered),
            observed(
                1,
                "https://example.com/",
                Observation::Http(Box::new(page(
                    &[
                        ("content-type", "text/html"),
                        ("alt-svc", r#"h3=":443"; ma=86400, h2=":443""#),
                    ],
                    vec![],
                ))),
            ),
            observed(
                2,
                "example.com",
                Observation::Classification(Classification {
                    kind: SiteKind::Api,
                    auth: AuthDetected::HttpAuth,
                    api_docs: true,
                }),
            ),
        ]);
        assert!(analysis.reachable && analysis.speaks_http && analysis.analyzable);
        assert_eq!(analysis.kind, SiteKind::Api);
        assert!(analysis.auth_detected && analysis.api_doc_detected);
        let open: Vec<(u16, bool)> = analysis
            .ports
            .iter()
            .map(|p| (p.port, p.tcp_open))
            .collect();
        assert_eq!(open, [(80, true), (443, false), (8080, false)]);
        assert_eq!(analysis.paths.len(), 1);
        assert_eq!(analysis.paths[0].path, "/");
        assert_eq!(analysis.paths[0].content_type.as_deref(), Some("text/html"));
        let advertised: Vec<(&str, u16)> = analysis.paths[0]
            .alternative_services
            .iter()
            .map(|s| (s.protocol.as_str(), s.port))
            .collect();
        assert_eq!(advertised, [("h3", 443), ("h2", 443)]);
    }
}

//! What ruleset 3 sees of a scanned site as a whole, whatever scheme was typed: the page a user
//! typed as fetched over HTTP and over HTTPS (from the site's primary origin of each scheme — port
//! 80 and 443 when they answer), and the TLS endpoints.
//!
//! This is the counterpart of the Mozilla HTTP Observatory's pair of fetches (`http://host/` and
//! `https://host/`), which its tests and ours read.

use vantage_observations::http::HttpObservation;
use vantage_observations::tls::TlsObservation;
use vantage_observations::{Observation, TcpObservation};

use crate::ScanFacts;

/// One scanned site.
#[derive(Debug, Clone)]
pub(crate) struct SiteView<'a> {
    /// The scanned host (a name or an IP literal), lower case.
    pub host: String,
    /// The starting page fetched over `http://`, if any was fetched.
    pub http: Option<&'a HttpObservation>,
    /// The starting page fetched over `https://`, if any was fetched.
    pub https: Option<&'a HttpObservation>,
    pub tls: Vec<&'a TlsObservation>,
    pub tcp: Vec<&'a TcpObservation>,
    /// Every page fetched, in log order.
    pub pages: Vec<(&'a str, &'a HttpObservation)>,
}

/// The scheme and port of a fetched URL.
fn origin(url: &str) -> Option<(String, u16)> {
    let url = url::Url::parse(url).ok()?;
    Some((url.scheme().to_owned(), url.port_or_known_default()?))
}

/// The host and the starting path of a typed target (a bare name starts at `/`).
pub(crate) fn host_and_path(target: &str) -> (String, String) {
    match url::Url::parse(target) {
        Ok(url) if target.contains("://") => {
            let mut path = url.path().to_owned();
            if let Some(query) = url.query() {
                path = format!("{path}?{query}");
            }
            let host = url
                .host_str()
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase();
            (host, path)
        }
        _ => (target.to_ascii_lowercase(), "/".to_owned()),
    }
}

impl<'a> SiteView<'a> {
    pub(crate) fn of(facts: &ScanFacts<'a>) -> Self {
        let (host, path) = host_and_path(facts.target);
        let pages: Vec<(&'a str, &'a HttpObservation)> = facts
            .observations
            .iter()
            .filter_map(|o| match &o.observation {
                Observation::Http(page) => Some((o.asset.as_str(), page.as_ref())),
                _ => None,
            })
            .collect();
        let tls = facts
            .observations
            .iter()
            .filter_map(|o| match &o.observation {
                Observation::Tls(seen) => Some(seen),
                _ => None,
            })
            .collect();
        let tcp = facts
            .observations
            .iter()
            .filter_map(|o| match &o.observation {
                Observation::Tcp(seen) => Some(seen),
                _ => None,
            })
            .collect();
        let starting = |scheme: &str, default_port: u16| {
            let on = |port: u16| {
                pages
                    .iter()
                    .filter(|(_, page)| origin(&page.url) == Some((scheme.to_owned(), port)))
                    .map(|(_, page)| *page)
                    .collect::<Vec<_>>()
            };
            let mut ports: Vec<u16> = pages
                .iter()
                .filter_map(|(_, page)| origin(&page.url))
                .filter(|(s, _)| s == scheme)
                .map(|(_, port)| port)
                .collect();
            ports.sort_unstable();
            ports.dedup();
            let primary = if ports.contains(&default_port) {
                Some(default_port)
            } else {
                ports.first().copied()
            }?;
            let fetched = on(primary);
            let typed = fetched.iter().copied().find(|page| {
                url::Url::parse(&page.url).is_ok_and(|u| {
                    let mut p = u.path().to_owned();
                    if let Some(q) = u.query() {
                        p = format!("{p}?{q}");
                    }
                    p == path
                })
            });
            typed.or(fetched.first().copied())
        };
        Self {
            http: starting("http", 80),
            https: starting("https", 443),
            host,
            tls,
            tcp,
            pages,
        }
    }

    /// The response the site is judged on: the HTTPS one when HTTPS answered, else the HTTP one.
    pub(crate) fn auto(&self) -> Option<&'a HttpObservation> {
        self.https
            .filter(|page| page.answered())
            .or(self.http.filter(|page| page.answered()))
    }

    /// Whether every HTTPS response of `page`'s chain was served with a valid certificate. A chain
    /// recorded before that was noted per response (observation v1) is judged by the TLS probe's
    /// verdict on the same address.
    pub(crate) fn verified(&self, page: &HttpObservation) -> bool {
        page.hops
            .iter()
            .filter(|hop| hop.url.starts_with("https://"))
            .all(|hop| {
                hop.certificate_valid.unwrap_or_else(|| {
                    self.tls
                        .iter()
                        .find(|seen| seen.address == hop.address)
                        .is_none_or(|seen| {
                            seen.trusted == Some(true) && seen.hostname_match == Some(true)
                        })
                })
            })
    }

    /// Some web page answered over plain HTTP or HTTPS.
    pub(crate) fn serves_web(&self) -> bool {
        self.pages.iter().any(|(_, page)| page.answered())
    }

    /// Some page fetched over `https://` got a response (its first, before any redirect).
    pub(crate) fn serves_https(&self) -> bool {
        self.pages
            .iter()
            .any(|(_, page)| page.url.starts_with("https://") && !page.hops.is_empty())
    }

    /// Nothing of the target answered: no port open and no page fetched.
    pub(crate) fn unreachable(&self) -> bool {
        !self
            .tcp
            .iter()
            .any(|seen| seen.state == vantage_observations::tcp::PortState::Open)
            && !self.serves_web()
    }
}

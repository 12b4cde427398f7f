//! Dual stack: one web origin's start page asked for over the name's first IPv4 and first IPv6
//! address at the same time, with the same request the HTTP probe makes, so the two answers can be
//! compared (reachability, status, redirect target, certificate, kept headers).

use std::net::{IpAddr, SocketAddr};

use url::Url;
use vantage_observations::dual_stack::{DualStackObservation, FamilyAnswer};

use crate::http::fetch;
use crate::tls::TlsRoots;

/// Asks `url` (its host, the port it names or its scheme's) of `ipv4` and of `ipv6` at once; the
/// addresses are the vetted ones the scan was given. Redirects are not followed.
pub async fn probe_dual_stack(
    url: &Url,
    ipv4: IpAddr,
    ipv6: IpAddr,
    roots: &TlsRoots,
) -> DualStackObservation {
    let port = url.port_or_known_default().unwrap_or(80);
    let ask = |ip: IpAddr| async move {
        let address = SocketAddr::new(ip, port);
        let host = url.host_str().unwrap_or_default();
        match fetch(host, address, url, roots).await {
            Ok(answer) => FamilyAnswer {
                address,
                status: Some(answer.status),
                headers: answer.headers,
                certificate_valid: answer.certificate_valid,
                error: None,
            },
            Err(error) => FamilyAnswer {
                address,
                status: None,
                headers: Default::default(),
                certificate_valid: None,
                error: Some(error),
            },
        }
    };
    let (ipv4, ipv6) = tokio::join!(ask(ipv4), ask(ipv6));
    DualStackObservation {
        url: url.to_string(),
        ipv4,
        ipv6,
    }
}

//! MTA-STS (RFC 8461): when `_mta-sts.<domain>` publishes `v=STSv1`, the policy at
//! `https://mta-sts.<domain>/.well-known/mta-sts.txt` says whether senders must use TLS. The policy
//! host passes the SSRF guard like any other; the policy is a public document and is kept parsed.

use std::net::SocketAddr;

use url::Url;
use vantage_observations::dns::MtaStsObservation;

use crate::http::fetch;
use crate::ssrf::SsrfGuard;
use crate::tls::TlsRoots;

/// Parses a policy body (`key: value` lines).
pub fn parse_policy(body: &str) -> (Option<String>, Option<String>, Option<u64>, Vec<String>) {
    let (mut version, mut mode, mut max_age, mut mx) = (None, None, None, Vec::new());
    for line in body.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().chars().take(255).collect::<String>();
        match key.trim().to_ascii_lowercase().as_str() {
            "version" => version = Some(value),
            "mode" => mode = Some(value.to_ascii_lowercase()),
            "max_age" => max_age = value.parse().ok(),
            "mx" if mx.len() < 20 => mx.push(value),
            _ => {}
        }
    }
    (version, mode, max_age, mx)
}

/// Fetches and parses the MTA-STS policy of `domain` (port 443 on the Internet; labs pass theirs).
pub async fn probe_mta_sts(
    guard: &SsrfGuard,
    roots: &TlsRoots,
    domain: &str,
    port: u16,
) -> MtaStsObservation {
    let host = format!("mta-sts.{}", domain.trim_end_matches('.'));
    let policy_url = format!("https://{host}:{port}/.well-known/mta-sts.txt");
    let mut seen = MtaStsObservation {
        domain: domain.to_owned(),
        policy_url: format!("https://{host}/.well-known/mta-sts.txt"),
        status: None,
        version: None,
        mode: None,
        max_age: None,
        mx: vec![],
        error: None,
    };
    let addresses = match guard.vet_host(&host).await {
        Ok(addresses) => addresses,
        Err(refusal) => {
            seen.error = Some(refusal.to_string());
            return seen;
        }
    };
    let (Some(ip), Ok(url)) = (addresses.first(), Url::parse(&policy_url)) else {
        seen.error = Some("no address for the policy host".into());
        return seen;
    };
    match fetch(&host, SocketAddr::new(*ip, port), &url, roots).await {
        Ok(response) => {
            seen.status = Some(response.status);
            if response.status == 200 {
                let (version, mode, max_age, mx) =
                    parse_policy(&String::from_utf8_lossy(&response.body));
                seen.version = version;
                seen.mode = mode;
                seen.max_age = max_age;
                seen.mx = mx;
            }
        }
        Err(error) => seen.error = Some(error),
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::parse_policy;

    #[test]
    fn parses_the_policy_lines() {
        let (version, mode, max_age, mx) = parse_policy(
            "version: STSv1\r\nmode: Testing\nmx: mx1.shop.example\nmx: *.mail.example\nmax_age: 86400\n",
        );
        assert_eq!(version.as_deref(), Some("STSv1"));
        assert_eq!(mode.as_deref(), Some("testing"));
        assert_eq!(max_age, Some(86400));
        assert_eq!(mx, ["mx1.shop.example", "*.mail.example"]);
    }
}
